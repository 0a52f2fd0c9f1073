"""The loop after a model ships: the monitoring DAG generated from the example config checks
the production stand's data, logs to MLflow, and on drift triggers a retraining pipeline,
which trains, gates against production and promotes (or records why not).

Real MLflow, S3, git remotes and Airflow (the DAG file is imported by a DagBag); the pods are
the DAG files' own commands (`modelci pod-run ...` with the DAG's variables); the GitLab API is
the fake of `tests/integration/fake_gitlab.py` (a GitLab server cannot run here), and the
retraining pipeline it was asked for runs step by step as its jobs would, with the trigger's
variables. The CI rules that make up that pipeline are shown under gitlab-ci-local."""

from __future__ import annotations

import ast
import contextlib
import csv
import io
import itertools
import math
import os
import subprocess
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from pathlib import Path

import git
import pytest
from mlflow import MlflowClient

from modelci.config.macros import env_name
from modelci.config.naming import names_for
from tests.e2e.test_faults import ModelRepo, model_repo, modelci
from tests.e2e.test_promotion import ok, on_main, push_branch
from tests.harness.airflow import parse_dag_folder
from tests.harness.gitremotes import STANDS_BRANCH
from tests.harness.lifecycle import EXAMPLE_REPO, LocalPlatform, commit_change, run_pipeline
from tests.harness.tools import GITLAB_CI_LOCAL, VENV_BIN, require
from tests.integration.fake_gitlab import running

PROJECT = "ml/monitored"
MODEL = "churn"
TRIGGER_TOKEN = "glptt-monitoring-trigger-secret"
EXAMPLE_TRAIN = (EXAMPLE_REPO / "train.py").read_text()
PRODUCTION = names_for(PROJECT, "main", MODEL, stand="production")
# Retrain again as soon as the last retraining has reported (the cool-down is unit-tested).
NO_COOL_DOWN = {"retrain: {cooldown_hours: 24}": "retrain: {cooldown_hours: 0}"}


def dag_constants(source: str) -> dict:
    """The module-level literals of a generated DAG file (POD_RUN, COMMAND, ENV_VARS...)."""
    found = {}
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name):
            with contextlib.suppress(ValueError):
                found[statement.targets[0].id] = ast.literal_eval(statement.value)
    return found


def stand_dag(platform: LocalPlatform, kind: str) -> str:
    return git.Repo(platform.dag_repo).git.show(f"{STANDS_BRANCH}:{PRODUCTION.dag_path(kind)}")


def run_pod(
    platform: LocalPlatform, source: str, day: date, **extra: str
) -> subprocess.CompletedProcess[str]:
    """The pod of a DAG run for `day`: its command, its variables, the Secrets' keys."""
    constants = dag_constants(source)
    argv = [*constants["POD_RUN"], *constants["COMMAND"]]
    env = {
        **constants["ENV_VARS"],
        "AWS_ACCESS_KEY_ID": platform.s3.access_key,  # from the S3 Secret (envFrom)
        "AWS_SECRET_ACCESS_KEY": platform.s3.secret_key,
        "AWS_DEFAULT_REGION": platform.s3.region,
        env_name("ds"): day.isoformat(),
        env_name("run_id"): f"scheduled__{day.isoformat()}",
        "MODELCI_ENV_CACHE": str(platform.env_cache),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PATH": f"{VENV_BIN}{os.pathsep}/usr/bin:/bin",
        **extra,
    }
    return subprocess.run(
        [str(VENV_BIN / argv[0]), *argv[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def psi_by_hand(reference: list[float], current: list[float]) -> float:
    """PSI over the reference's deciles, written independently of the product's code."""
    ordered = sorted(reference)
    edges = sorted({ordered[len(ordered) * i // 10] for i in range(1, 10)})

    def shares(values: list[float]) -> list[float]:
        counts = [sum(1 for v in values if v < edges[0])]
        counts += [sum(1 for v in values if lo <= v < hi) for lo, hi in itertools.pairwise(edges)]
        counts += [sum(1 for v in values if v >= edges[-1])]
        return [max(c / len(values), 1e-4) for c in counts]

    return sum(
        (a - e) * math.log(a / e) for e, a in zip(shares(reference), shares(current), strict=False)
    )


def table(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def monitoring_runs(platform: LocalPlatform) -> list:
    client = MlflowClient(platform.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(f"{PROJECT}/{MODEL}/monitoring")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return runs


def alias(platform: LocalPlatform, stand: str) -> str | None:
    client = MlflowClient(platform.mlflow.tracking_uri)
    return client.get_registered_model(PRODUCTION.registered_model).aliases.get(stand)


def retraining_pipeline(
    platform: LocalPlatform, main: ModelRepo, trigger: dict, pipeline_id: str
) -> list[subprocess.CompletedProcess[str]]:
    """The pipeline the trigger asked for, job by job as train.yml and promote.yml run them;
    it stops at the first failed job."""
    variables = {
        **trigger["variables"],
        "CI_PIPELINE_SOURCE": "trigger",
        "CI_PIPELINE_ID": pipeline_id,
        "CI_COMMIT_REF_NAME": trigger["ref"],
    }
    results = []
    for step in (("train",), ("gate",), ("promote", "--stand", "staging")):
        results.append(modelci(platform, main, *step, **variables))
        if results[-1].returncode != 0:
            break
    return results


def test_monitoring_finds_drift_and_retraining_goes_through_the_gate_and_promotion(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    repo = model_repo(tmp_path, PROJECT, config_edits=NO_COOL_DOWN)
    main = on_main(push_branch(platform, repo, "feature/first"))
    with running("glpat-api-token") as gitlab:
        gitlab.trigger_token = TRIGGER_TOKEN
        server = {"CI_SERVER_URL": gitlab.url}
        ok(modelci(platform, main, "promote", "--branch", "feature/first", **server))
        ok(modelci(platform, main, "promote", "--stand", "production", **server))
        assert alias(platform, "production") == "1"

        # The production stand's monitoring DAG imports in Airflow and runs `modelci monitor`.
        monitoring_dag = stand_dag(platform, "monitoring")
        folder = tmp_path / "dags"
        folder.mkdir()
        (folder / "monitoring.py").write_text(monitoring_dag)
        parsed = parse_dag_folder(folder, tmp_path / "parsed.json")
        assert parsed["import_errors"] == {}
        assert list(parsed["dags"]) == [PRODUCTION.dag_id("monitoring")]
        # The trigger Secret's keys: the trigger token, and the API token it reads pipelines with.
        pod = {"MODELCI_TRIGGER_TOKEN": TRIGGER_TOKEN, "MODELCI_GITLAB_TOKEN": gitlab.token}

        # Day 1: the scoring DAG writes the day's scores; the monitoring finds no drift.
        day = date(2026, 12, 1)
        scored = run_pod(platform, stand_dag(platform, "inference"), day)
        assert scored.returncode == 0, scored.stdout + scored.stderr
        data_uri = dag_constants(monitoring_dag)["ENV_VARS"]["MODELCI_DATA_URI"]
        scores_uri = f"{data_uri}scores/{day.isoformat()}.csv"
        assert f"uploaded {scores_uri}" in scored.stdout
        calm = run_pod(platform, monitoring_dag, day, **pod)
        assert calm.returncode == 0, calm.stdout + calm.stderr
        assert "retraining: none (every check passed)" in calm.stdout
        (first,) = monitoring_runs(platform)
        served_run = first.data.tags["modelci.monitors_run"]
        assert first.data.tags["modelci.monitor"] == "passed"
        # The logged PSI is the hand computation on the same two tables.
        scores = table(platform.s3.client().get_object(**s3_key(scores_uri))["Body"].read())
        reference = table(
            Path(
                MlflowClient(platform.mlflow.tracking_uri).download_artifacts(
                    served_run, "reference.csv", str(tmp_path)
                )
            ).read_bytes()
        )
        for feature in ("tenure_months", "monthly_charges"):
            expected = psi_by_hand(
                [float(r[feature]) for r in reference], [float(r[feature]) for r in scores]
            )
            assert first.data.metrics[f"psi.{feature}"] == pytest.approx(expected)
        assert first.data.metrics["accuracy"] > 0.8
        # Beside the figures, the picture of what the check saw: every column, the threshold.
        picture = MlflowClient(platform.mlflow.tracking_uri).download_artifacts(
            first.info.run_id, "monitoring.svg", str(tmp_path)
        )
        shown = {"".join(t.itertext()) for t in ET.parse(picture).iter(f"{SVG}text")}
        assert {"tenure_months", "monthly_charges", "churn_predicted", "max_psi 0.2"} <= shown
        assert gitlab.triggered == []

        # Day 2: the customers changed (drift): the check fails and retraining is triggered.
        day2 = day + timedelta(days=1)
        drifted = shifted(scores, "tenure_months", 2.0)
        put_csv(platform, f"{data_uri}scores/{day2.isoformat()}.csv", drifted)
        drift = run_pod(platform, monitoring_dag, day2, **pod)
        assert drift.returncode == 1
        assert "FAILED  PSI of tenure_months" in drift.stdout
        assert "retraining triggered" in drift.stdout
        (trigger,) = gitlab.triggered
        drift_run = monitoring_runs(platform)[-1]
        assert trigger["project"] == PROJECT and trigger["ref"] == "main"
        assert trigger["variables"] == {
            "MODELCI_RETRAIN": MODEL,
            "MODELCI_RETRAIN_TRIGGER": drift_run.info.run_id,
            "MODELCI_RETRAIN_EVENT": drift_run.data.tags["modelci.retrain.event"],
        }
        assert drift_run.data.tags["modelci.retrain.decision"] == "triggered"
        assert drift_run.data.metrics["psi.tenure_months"] > 0.2

        # While that pipeline runs, the next check fails again but triggers nothing more.
        again = run_pod(platform, monitoring_dag, day2, **pod)
        assert (
            again.returncode == 1 and "retraining: skip (a retraining is in flight" in again.stdout
        )
        assert len(gitlab.triggered) == 1

        # The retraining pipeline: a new run, gated against production, promoted to staging.
        for job in retraining_pipeline(platform, main, trigger, pipeline_id="501"):
            ok(job)
        assert alias(platform, "staging") == "2" and alias(platform, "production") == "1"
        outcome = tag_of(platform, drift_run.info.run_id, "modelci.retrain.outcome")
        assert "passed the gate and is version 2 on staging" in outcome
        retrained = MlflowClient(platform.mlflow.tracking_uri).get_run(
            MlflowClient(platform.mlflow.tracking_uri)
            .get_model_version(PRODUCTION.registered_model, "2")
            .run_id
        )
        assert retrained.data.tags["modelci.retrain.triggered_by"] == drift_run.info.run_id
        assert retrained.data.tags["modelci.gate"] == "passed"
        # Production moves only by the manual, protected job, as after a merge.
        ok(modelci(platform, main, "promote", "--stand", "production", **server))
        assert alias(platform, "production") == "2"

        # A retraining that fails (a broken commit on main): recorded, the stands untouched.
        commit_change(main.path, "train.py", "raise SystemExit(3)\n", "Break training")
        broken_main = ModelRepo(main.path, main.project, "main")
        monitoring_dag = stand_dag(platform, "monitoring")
        put_csv(platform, f"{data_uri}scores/{day2.isoformat()}.csv", drifted)
        triggered = run_pod(platform, monitoring_dag, day2, **pod)
        assert "retraining triggered" in triggered.stdout
        failed = retraining_pipeline(platform, broken_main, gitlab.triggered[-1], "502")
        assert failed[-1].returncode != 0 and len(failed) == 1
        outcome = tag_of(platform, monitoring_runs(platform)[-1].info.run_id, TAG_OUTCOME)
        assert outcome.startswith("training failed, production unchanged: train.py exited")
        assert (alias(platform, "staging"), alias(platform, "production")) == ("2", "2")

        # A challenger the gate rejects (main now asks more than the model reaches): recorded.
        commit_change(main.path, "train.py", EXAMPLE_TRAIN, "Mend training")
        config = (main.path / "mlops.yaml").read_text().replace("min: 0.7\n", "min: 0.99\n")
        commit_change(main.path, "mlops.yaml", config, "Ask for more")
        stricter = ModelRepo(main.path, main.project, "main")
        assert "retraining triggered" in run_pod(platform, monitoring_dag, day2, **pod).stdout
        rejected = retraining_pipeline(platform, stricter, gitlab.triggered[-1], "503")
        assert [job.returncode == 0 for job in rejected] == [True, False]  # train, gate
        outcome = tag_of(platform, monitoring_runs(platform)[-1].info.run_id, TAG_OUTCOME)
        assert "rejected by the gate, production unchanged: accuracy" in outcome
        assert (alias(platform, "staging"), alias(platform, "production")) == ("2", "2")

        # GitLab down: the trigger's 503 may have started a pipeline, and its pipelines cannot
        # be read (bounded retries) to know: not sent again, recorded in doubt beside the reason.
        gitlab.fail_with(503)
        down = run_pod(platform, monitoring_dag, day2, **pod)
        assert down.returncode == 1 and "retraining NOT KNOWN to be triggered" in down.stdout
        assert "after 3 attempts" in down.stdout and TRIGGER_TOKEN not in down.stdout
        last = monitoring_runs(platform)[-1]
        assert last.data.tags["modelci.retrain.decision"] == "trigger-unknown"
        assert last.data.tags["modelci.retrain.reason"].startswith("failed checks: ")
        assert "HTTP 503" in last.data.tags["modelci.retrain.trigger_error"]
        gitlab.fail_with(503, count=0)

        # No data for a day: a clear failed check, and no retraining.
        triggers = len(gitlab.triggered)
        missing = run_pod(platform, monitoring_dag, day2 + timedelta(days=1), **pod)
        assert missing.returncode == 1
        assert "FAILED  data: the monitoring data could not be read" in missing.stdout
        assert "retraining: none (the monitoring data could not be checked" in missing.stdout
        assert monitoring_runs(platform)[-1].data.tags["modelci.monitor"] == "no-data"
        empty_day = day2 + timedelta(days=2)
        put_csv(platform, f"{data_uri}scores/{empty_day.isoformat()}.csv", [], header=scores[0])
        empty = run_pod(platform, monitoring_dag, empty_day, **pod)
        assert empty.returncode == 1 and "has no rows" in empty.stdout
        assert monitoring_runs(platform)[-1].data.tags["modelci.monitor"] == "no-data"
        assert len(gitlab.triggered) == triggers

        # Empty cells in a fifth of a feature's rows: a data problem. The check fails and says
        # so, but a data problem is not drift: nothing is retrained.
        holes_day = day2 + timedelta(days=3)
        holes = [
            {**row, "support_calls": "" if i % 5 == 0 else row["support_calls"]}
            for i, row in enumerate(scores)
        ]
        put_csv(platform, f"{data_uri}scores/{holes_day.isoformat()}.csv", holes)
        broken = run_pod(platform, monitoring_dag, holes_day, **pod)
        assert broken.returncode == 1, broken.stdout + broken.stderr
        assert "FAILED  null share of support_calls: 20.00% of the rows are empty" in broken.stdout
        assert "retraining: skip (data problems are not drift" in broken.stdout
        assert monitoring_runs(platform)[-1].data.tags["modelci.retrain.decision"] == "skip"
        assert len(gitlab.triggered) == triggers


TAG_OUTCOME = "modelci.retrain.outcome"
SVG = "{http://www.w3.org/2000/svg}"


def tag_of(platform: LocalPlatform, run_id: str, tag: str) -> str:
    return MlflowClient(platform.mlflow.tracking_uri).get_run(run_id).data.tags.get(tag, "")


def s3_key(uri: str) -> dict[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return {"Bucket": bucket, "Key": key}


def shifted(rows: list[dict[str, str]], column: str, by: float) -> list[dict[str, str]]:
    return [{**row, column: str(float(row[column]) + by)} for row in rows]


def put_csv(
    platform: LocalPlatform, uri: str, rows: list[dict[str, str]], header: dict | None = None
) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(header or rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    platform.s3.client().put_object(**s3_key(uri), Body=out.getvalue().encode())


def test_the_retraining_pipeline_is_train_gate_and_the_stands_promotions(tmp_path: Path) -> None:
    """What GitLab runs for the trigger: the CI templates' rules under gitlab-ci-local."""
    require(GITLAB_CI_LOCAL)
    repo = model_repo(tmp_path, "ml/retrain-rules")
    git.Repo(repo.path).git.checkout("main")
    trigger = {"CI_PIPELINE_SOURCE": "trigger", "MODELCI_RETRAIN": MODEL}
    listed = run_pipeline(repo.path, {}, jobs=("--list",), predefined=trigger)
    pushed = run_pipeline(repo.path, {}, jobs=("--list",), predefined={})
    assert listed.returncode == 0, listed.stderr
    jobs = {line.split()[0]: line for line in listed.stdout.splitlines() if is_job(line)}
    assert set(jobs) == {
        "modelci-validate",
        "modelci-train",
        "modelci-gate",
        "modelci-promote-staging",
        "modelci-promote-production",
    }, listed.stdout
    assert jobs["modelci-promote-staging"].split()[-1] == "[modelci-gate]"  # after the gate
    assert "manual" in jobs["modelci-promote-production"].split()
    pushed_jobs = {line.split()[0] for line in pushed.stdout.splitlines() if is_job(line)}
    assert "modelci-train" not in pushed_jobs and "modelci-promote-staging" in pushed_jobs


def is_job(line: str) -> bool:
    return line.startswith("modelci-")
