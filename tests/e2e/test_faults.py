"""Bad input and faults on a feature branch: each fails early, with a message that says what
to fix, a non-zero exit, no traceback, no secret in the log, and nothing written to the shared
repos or S3. Real MLflow, S3 and git remotes; the real CI templates run by gitlab-ci-local where
the CI rules are the point (a failed job stops the jobs after it), `modelci` directly elsewhere.
"""

from __future__ import annotations

import ast
import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import git
from mlflow import MlflowClient

from modelci.config.naming import Names, names_for
from tests.harness.lifecycle import (
    EXAMPLE_REPO,
    NEIGHBOURS,
    PUSH_JOBS,
    LocalPlatform,
    commit_change,
    make_model_repo,
    run_pipeline,
)
from tests.harness.ports import HOST
from tests.harness.tools import GITLAB_CI_LOCAL, VENV_BIN, require

MODEL = "churn"
BRANCH = "feature/faults"
# As odd as a branch name gets while GitLab can still name an environment after it.
ODD_BRANCH = "Feat/UBER_model.v2--1.x"
# Git takes this one, GitLab cannot name an environment after it (Ü, # and ').
UNNAMEABLE_BRANCH = "feat/ÜBER_model#1'x"
# A training script that logs metrics but forgets the model.
NO_MODEL_TRAIN = """\
import mlflow

with mlflow.start_run():
    mlflow.log_metric("accuracy", 0.9)
print("trained, but logged no model")
"""
CRASHING_TRAIN = """\
import sys

print("loading data...", flush=True)
sys.exit(3)
"""
SEGMENT = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
DNS_LABEL = re.compile(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class ModelRepo:
    path: Path
    project: str
    branch: str

    @property
    def names(self) -> Names:
        return names_for(self.project, self.branch, MODEL)

    @property
    def commit(self) -> str:
        return git.Repo(self.path).head.commit.hexsha


def model_repo(
    tmp_path: Path,
    project: str,
    *,
    branch: str = BRANCH,
    config_edits: dict[str, str] | None = None,
    files: dict[str, str] | None = None,
) -> ModelRepo:
    """The example model repo on `branch`, with `files` committed and `config_edits` (old
    text -> new text) made to its mlops.yaml. Each test passes its own `project`, so its MLflow
    experiment and shared-repo paths are its own."""
    path = make_model_repo(tmp_path / "model", project=project, branch=branch)
    for name, text in (files or {}).items():
        commit_change(path, name, text, f"Add {name}")
    if config_edits:
        text = (EXAMPLE_REPO / "mlops.yaml").read_text(encoding="utf-8")
        for old, new in config_edits.items():
            assert text.count(old) == 1, f"{old!r} is not in the example mlops.yaml exactly once"
            text = text.replace(old, new)
        commit_change(path, "mlops.yaml", text, "Change mlops.yaml")
    return ModelRepo(path, project, branch)


def modelci(
    platform: LocalPlatform, repo: ModelRepo, *args: str, **variables: str
) -> subprocess.CompletedProcess[str]:
    """One `modelci` step in the repo, with the CI variables a pipeline job has."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "AWS_", "CI_", "MODELCI_"))
    }
    env.update(platform.ci_variables())
    env.update(
        CI_PROJECT_PATH=repo.project,
        CI_COMMIT_REF_NAME=repo.branch,
        CI_COMMIT_SHA=repo.commit,
        CI_PIPELINE_ID="7",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    env.update(variables)
    result = subprocess.run(
        [str(VENV_BIN / "modelci"), *args],
        cwd=repo.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert_safe_output(result.stdout + result.stderr, platform)
    return result


def pipeline(
    platform: LocalPlatform, repo: ModelRepo, jobs: tuple[str, ...] = ()
) -> tuple[int, str]:
    """The real CI templates under gitlab-ci-local: (exit code, log)."""
    require(GITLAB_CI_LOCAL)
    result = run_pipeline(repo.path, platform.ci_variables(), jobs=jobs)
    output = result.stdout + result.stderr
    assert_safe_output(output, platform)
    return result.returncode, output


def assert_safe_output(output: str, platform: LocalPlatform) -> None:
    """No secret and no traceback in anything a user sees."""
    for secret in platform.s3.secret_keys:
        assert len(secret) >= 8, "the S3 secret is too short for this check to mean anything"
        assert secret not in output, "an S3 secret key appears in the output"
    assert "Traceback (most recent call last)" not in output, output[-4000:]


def job_states(output: str) -> dict[str, str]:
    """{job: "PASS" | "FAIL"} from gitlab-ci-local's summary lines."""
    found = re.findall(r"^\s*(PASS|FAIL)\s+(\S+)", output, flags=re.MULTILINE)
    return {job: state for state, job in found}


def refs(bare: Path) -> str:
    return git.Repo(bare).git.for_each_ref()


@dataclass(frozen=True)
class SharedState:
    dag_refs: str
    gitops_refs: str
    s3_keys: frozenset[str]


def shared_state(platform: LocalPlatform) -> SharedState:
    """Everything a pipeline could write outside its own workspace (MLflow aside)."""
    client = platform.s3.client()
    keys = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=platform.s3.bucket):
        keys.update(item["Key"] for item in page.get("Contents", []))
    return SharedState(refs(platform.dag_repo), refs(platform.gitops_repo), frozenset(keys))


def assert_nothing_deployed(platform: LocalPlatform, repo: ModelRepo, before: SharedState) -> None:
    after = shared_state(platform)
    assert after.dag_refs == before.dag_refs, "the DAG bundle repo changed"
    assert after.gitops_refs == before.gitops_refs, "the GitOps repo changed"
    scratch = f"modelci-scratch/{repo.names.s3_prefix}"
    assert not [key for key in after.s3_keys if key.startswith(scratch)], "code was uploaded"


def runs_of(platform: LocalPlatform, repo: ModelRepo) -> list:
    client = MlflowClient(platform.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(repo.names.experiment)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id])


def line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# --- bad input: stops at validate ----------------------------------------------------------------


def test_a_missing_entrypoint_stops_the_pipeline_at_validate(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    repo = model_repo(
        tmp_path,
        "faults/missing-entrypoint",
        config_edits={"entrypoint: train.py": "entrypoint: trian.py"},
    )
    before = shared_state(platform)

    code, output = pipeline(platform, repo)

    assert code != 0
    assert job_states(output).get("modelci-validate") == "FAIL", output[-4000:]
    assert "modelci-train starting" not in output, "train ran after validate failed"
    line = line_of(repo.path / "mlops.yaml", "entrypoint: trian.py")
    assert f"mlops.yaml:{line}:" in output and "models[0].train.entrypoint" in output
    assert '"trian.py"' in output and "does not exist" in output
    assert runs_of(platform, repo) == []
    assert shared_state(platform) == before


# --- faults in training --------------------------------------------------------------------------


def test_a_training_script_that_logs_no_model_fails_train(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    repo = model_repo(
        tmp_path,
        "faults/no-model",
        files={"train_no_model.py": NO_MODEL_TRAIN},
        config_edits={"entrypoint: train.py": "entrypoint: train_no_model.py"},
    )
    before = shared_state(platform)

    result = modelci(platform, repo, "train")

    assert result.returncode == 1
    assert "trained, but logged no model" in result.stdout
    (run,) = runs_of(platform, repo)
    assert result.stderr.startswith("modelci train: error: train_no_model.py logged no model")
    assert run.info.run_id in result.stderr
    assert "mlflow.sklearn.log_model(model, name='model')" in result.stderr
    assert run.info.status == "FAILED"
    assert modelci(platform, repo, "resolve").returncode == 1  # nothing a deploy could pick
    assert_nothing_deployed(platform, repo, before)


def test_a_crashing_training_script_fails_train_with_its_exit_code(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    repo = model_repo(
        tmp_path,
        "faults/crash",
        files={"train_crash.py": CRASHING_TRAIN},
        config_edits={"entrypoint: train.py": "entrypoint: train_crash.py"},
    )
    before = shared_state(platform)

    result = modelci(platform, repo, "train")

    assert result.returncode == 1
    assert "loading data..." in result.stdout
    (run,) = runs_of(platform, repo)
    assert "train_crash.py exited with code 3" in result.stderr
    assert f"run {run.info.run_id} is marked FAILED" in result.stderr
    assert run.info.status == "FAILED"
    assert_nothing_deployed(platform, repo, before)


def test_a_model_logged_with_another_flavor_than_the_config_names_fails_train(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    repo = model_repo(
        tmp_path, "faults/flavor", config_edits={"flavor: sklearn": "flavor: xgboost"}
    )
    before = shared_state(platform)

    result = modelci(platform, repo, "train")

    assert result.returncode == 1
    (run,) = runs_of(platform, repo)
    assert run.info.status == "FAILED"
    assert (
        "modelci train: error: mlops.yaml: models[churn].flavor is xgboost, but train.py "
        "logged a model with flavor(s) sklearn"
    ) in result.stderr
    assert "Set flavor: sklearn in mlops.yaml" in result.stderr
    assert modelci(platform, repo, "resolve").returncode == 1  # nothing a deploy could pick
    assert_nothing_deployed(platform, repo, before)


def test_an_unreachable_mlflow_fails_train_quickly_naming_it(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    repo = model_repo(tmp_path, "faults/unreachable")
    tracking_uri = f"http://{HOST}:{closed_port()}"
    before = shared_state(platform)

    started = time.monotonic()
    result = modelci(platform, repo, "train", MLFLOW_TRACKING_URI=tracking_uri)
    elapsed = time.monotonic() - started

    assert result.returncode == 1
    assert elapsed < 30, f"train took {elapsed:.1f} s to give up on an unreachable MLflow"
    assert result.stderr.startswith(
        f"modelci train: error: MLflow at {tracking_uri} is unreachable"
    )
    assert "Check that MLFLOW_TRACKING_URI is right" in result.stderr
    assert f"{tracking_uri}/health" in result.stderr
    assert "MLflow run" not in result.stdout  # no run started, so no training either
    assert not (repo.path / ".modelci").exists()
    assert shared_state(platform) == before


# --- the quality gate ----------------------------------------------------------------------------


def test_a_gate_metric_the_run_never_logged_stops_the_pipeline_at_gate(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    repo = model_repo(
        tmp_path, "faults/gate-metric", config_edits={"- name: accuracy": "- name: auc"}
    )
    before = shared_state(platform)

    code, output = pipeline(platform, repo)

    states = job_states(output)
    assert code != 0
    assert states.get("modelci-train") == "PASS", output[-4000:]
    assert states.get("modelci-gate") == "FAIL", output[-4000:]
    assert not set(states) & set(PUSH_JOBS[3:]), f"jobs after the gate ran: {states}"
    assert "metric 'auc' was not logged by the training run" in output
    assert "metrics it logged: accuracy, f1" in output
    assert "quality gate failed for churn; nothing will be deployed" in output

    (run,) = runs_of(platform, repo)
    assert run.info.status == "FINISHED"
    assert run.data.tags["modelci.gate"] == "failed"
    assert "metric 'auc' was not logged" in run.data.tags["modelci.gate_reasons"]

    # The report GitLab collects from the failed job (`artifacts: when: always`).
    report = repo.path / ".gitlab-ci-local/artifacts/modelci-gate/.modelci/gate-report.xml"
    failures = ElementTree.parse(report).getroot().findall(".//testcase/failure")
    assert [failure.get("message") for failure in failures] == [
        run.data.tags["modelci.gate_reasons"].split(": ", 1)[1]
    ]
    assert_nothing_deployed(platform, repo, before)


def test_a_threshold_not_met_fails_the_gate_and_nothing_can_be_deployed(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    repo = model_repo(tmp_path, "faults/gate-threshold", config_edits={"min: 0.7": "min: 0.99"})
    before = shared_state(platform)
    trained = modelci(platform, repo, "train")
    assert trained.returncode == 0, trained.stderr

    gated = modelci(platform, repo, "gate")

    assert gated.returncode == 1
    assert re.search(
        r"\[FAIL\] accuracy >= 0.99: accuracy = 0\.\d+, required at least 0.99", gated.stdout
    )
    assert "quality gate failed for churn; nothing will be deployed" in gated.stderr
    (run,) = runs_of(platform, repo)
    assert run.data.tags["modelci.gate"] == "failed"
    assert "required at least 0.99" in run.data.tags["modelci.gate_reasons"]
    # Even a deploy started by hand finds no run that passed the gate.
    resolved = modelci(platform, repo, "resolve")
    assert resolved.returncode == 1
    assert f"no run to serve for environment '{repo.names.environment}'" in resolved.stderr
    for step in ("deploy-batch", "deploy-online"):
        deployed = modelci(platform, repo, step)
        assert deployed.returncode == 1
        assert "modelci resolve" in deployed.stderr, deployed.stderr  # says what to run first
    assert_nothing_deployed(platform, repo, before)


# --- odd but valid input -------------------------------------------------------------------------


def test_a_branch_gitlab_cannot_name_an_environment_after_is_refused_before_training(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    repo = model_repo(tmp_path, "faults/unnameable", branch=UNNAMEABLE_BRANCH)
    output = refused_by_validate(platform, repo)
    assert f"branch {UNNAMEABLE_BRANCH} cannot name its GitLab environment" in output
    assert "'Ü'" in output and "Rename the branch" in output


def refused_by_validate(platform: LocalPlatform, repo: ModelRepo) -> str:
    """The push pipeline's log, after asserting that its validate job refused the push and
    that nothing was trained or written."""
    before = shared_state(platform)
    code, output = pipeline(platform, repo)
    assert code != 0
    assert job_states(output).get("modelci-validate") == "FAIL", output[-4000:]
    assert "modelci-train starting" not in output
    assert runs_of(platform, repo) == []
    assert shared_state(platform) == before
    return output


def test_a_branch_with_odd_characters_deploys_under_valid_names(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    repo = model_repo(tmp_path, "faults/odd-branch", branch=ODD_BRANCH)
    names = repo.names

    code, output = pipeline(platform, repo)

    assert code == 0, output[-6000:]
    assert all(job_states(output).get(job) == "PASS" for job in PUSH_JOBS), job_states(output)
    (run,) = runs_of(platform, repo)
    assert run.data.tags["modelci.branch"] == ODD_BRANCH
    assert run.data.tags["modelci.environment"] == names.environment

    dags, gitops = git.Repo(platform.dag_repo), git.Repo(platform.gitops_repo)
    seeded = {"README.md", *NEIGHBOURS}
    dag_files = {b.path for b in dags.commit("main").tree.traverse() if b.type == "blob"} - seeded
    gitops_files = {b.path for b in gitops.commit("main").tree.traverse() if b.type == "blob"}
    gitops_files -= seeded
    assert dag_files == {names.dag_path("inference"), names.dag_path("monitoring")}
    assert gitops_files == {names.values_path, names.app_config_path}
    for path in dag_files | gitops_files:
        *directories, _file = path.split("/")
        assert all(SEGMENT.fullmatch(part) for part in directories), path
    assert DNS_LABEL.fullmatch(names.k8s_name) and DNS_LABEL.fullmatch(names.namespace)
    for path in sorted(dag_files):
        source = dags.git.show(f"main:{path}")
        ast.parse(source)  # the branch name in it is escaped, not pasted
        assert ODD_BRANCH in source
    values = gitops.git.show(f"main:{names.values_path}")
    assert f"name: {names.k8s_name}\n" in values
    assert f"Branch: {ODD_BRANCH}" in dags.commit("main").message
