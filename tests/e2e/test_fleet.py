"""The fleet site after a real lifecycle, read in a real browser.

Two projects and three models go through the product's own commands (real MLflow, S3 and git
remotes; GitLab's API is the fake): a promotion through both stands, a rollback, a
chosen-version deployment, a week of daily monitoring checks of production with one drift
day, a live branch environment and a stale one. `modelci fleet --platform` builds the site,
headless Chromium opens it from file URLs with no network, and the DOM must show exactly
what MLflow, the repos and S3 hold, with every chart drawn. With MLflow at a dead port the
models section says so and the branch environments are still built. Screenshots go to
test-artifacts/fleet/."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import time
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from modelci.config.naming import feature_environment, names_for, project_slug_of
from modelci.fleet.render import INDEX, project_page, render_site
from tests.e2e.test_faults import ModelRepo, closed_port, model_repo, modelci
from tests.e2e.test_monitoring_loop import dag_constants, shifted
from tests.e2e.test_promotion import ok, on_main, push_branch
from tests.harness.browser import ARTIFACTS, open_page
from tests.harness.gitremotes import files_on
from tests.harness.lifecycle import EXAMPLE_REPO, LocalPlatform
from tests.harness.tools import VENV_BIN
from tests.integration.fake_gitlab import running
from tests.unit.test_fleet_render import HOSTILE, a_fleet, a_model

PROJECT_A = "ml/fleet-a"
PROJECT_B = "ml/fleet-b"
MODEL = "churn"
SECOND = "churn-lite"
TOKEN = "glpat-fleet-reader"
SHOTS = ARTIFACTS / "fleet"
# Project B serves two models: the example's, and a second one trained by the same script.
SECOND_MODEL = f"""
  - name: {SECOND}
    flavor: sklearn
    train:
      entrypoint: train.py
    gate:
      metrics:
        - name: accuracy
          min: 0.7
      compare_with_production: false
    online:
      enabled: true
      resources: {{cpu: 500m, memory: 1Gi}}
"""


class Dom(HTMLParser):
    """The rows, charts and notes of a page, by their data attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self.scripts += tag == "script"

    def having(self, tag: str, attribute: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and attribute in a]


def dom_of(html: str) -> Dom:
    parser = Dom()
    parser.feed(html)
    return parser


def section(html: str, marker: str) -> str:
    """The HTML from `marker` to the end of its section."""
    return html.split(marker, 1)[1].split("</section>", 1)[0]


def tables(html: str, kind: str) -> str:
    return html.split(f'<table class="{kind}">', 1)[1].split("</table>", 1)[0] if (
        f'<table class="{kind}">' in html
    ) else ""  # fmt: skip


def monitor_day(
    platform: LocalPlatform, repo: ModelRepo, day: date, rows: list[dict[str, str]]
) -> subprocess.CompletedProcess[str]:
    """The production monitoring DAG's check of `day`: the day's data written where the
    scoring DAG writes it, then the DAG's command (`modelci monitor`) with the DAG's variables."""
    source = stand_dag_of(platform, "monitoring")
    constants = dag_constants(source)
    data_uri = constants["ENV_VARS"]["MODELCI_DATA_URI"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    bucket, _, key = f"{data_uri}scores/{day.isoformat()}.csv".removeprefix("s3://").partition("/")
    platform.s3.client().put_object(Bucket=bucket, Key=key, Body=out.getvalue().encode())
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_", "CI_"))},
        **constants["ENV_VARS"],
        "AWS_ACCESS_KEY_ID": platform.s3.access_key,
        "AWS_SECRET_ACCESS_KEY": platform.s3.secret_key,
        "AWS_DEFAULT_REGION": platform.s3.region,
        "MODELCI_MACRO_DS": day.isoformat(),
        "PATH": f"{VENV_BIN}{os.pathsep}/usr/bin:/bin",
    }
    argv = [str(VENV_BIN / "modelci"), *constants["COMMAND"][1:]]
    return subprocess.run(argv, cwd=repo.path, env=env, capture_output=True, text=True, timeout=120)


def stand_dag_of(platform: LocalPlatform, kind: str) -> str:
    import git

    from tests.harness.gitremotes import STANDS_BRANCH

    path = names_for(PROJECT_A, "main", MODEL, stand="production").dag_path(kind)
    return git.Repo(platform.dag_repo).git.show(f"{STANDS_BRANCH}:{path}")


def served_reference(platform: LocalPlatform, tmp_path: Path) -> list[dict[str, str]]:
    client = MlflowClient(platform.mlflow.tracking_uri)
    registered = names_for(PROJECT_A, "main", MODEL).registered_model
    run_id = client.get_model_version_by_alias(registered, "production").run_id
    path = client.download_artifacts(run_id, "reference.csv", str(tmp_path))
    return list(csv.DictReader(io.StringIO(Path(path).read_text())))[:400]


def lifecycle(platform: LocalPlatform, tmp_path: Path, timings: dict[str, float]) -> dict:
    """Both projects' lifecycles, as their pipelines run them; what the site must show."""
    started = time.monotonic()
    a = model_repo(tmp_path / "a", PROJECT_A)
    first = push_branch(platform, a, "feature/first")
    main = on_main(first)
    ok(modelci(platform, main, "promote", "--branch", "feature/first", GITLAB_USER_LOGIN="lead"))
    second = push_branch(platform, main, "feature/second")
    main = on_main(second)
    ok(modelci(platform, main, "promote", "--branch", "feature/second", GITLAB_USER_LOGIN="ana"))
    ok(modelci(platform, main, "rollback", "--stand", "staging", GITLAB_USER_LOGIN="oncall"))
    ok(modelci(platform, main, "promote", "--stand", "production", GITLAB_USER_LOGIN="lead"))
    timings["project A: 2 pushes, 4 promotions, a rollback"] = time.monotonic() - started

    started = time.monotonic()
    reference = served_reference(platform, tmp_path)
    for offset in range(7):
        day = date(2026, 11, 30) + timedelta(days=offset)
        drift = offset == 4
        rows = shifted(reference, "tenure_months", 40.0) if drift else reference
        result = monitor_day(platform, main, day, rows)
        assert result.returncode == (1 if drift else 0), (
            result.stdout[-2000:] + result.stderr[-2000:]
        )
    timings["a week of monitoring"] = time.monotonic() - started

    started = time.monotonic()
    config = (EXAMPLE_REPO / "mlops.yaml").read_text(encoding="utf-8") + SECOND_MODEL
    b = model_repo(tmp_path / "b", PROJECT_B, files={"mlops.yaml": config})
    live = push_branch(platform, b, "feature/live")
    client = MlflowClient(platform.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(f"{PROJECT_B}/{MODEL}")
    (run,) = client.search_runs(
        [experiment.experiment_id], "tags.`modelci.branch` = 'feature/live'"
    )
    b_main = ModelRepo(live.path, PROJECT_B, "main")
    ok(modelci(platform, b_main, "deploy-version", "--model", MODEL, "--stand", "staging",
               "--run-id", run.info.run_id, GITLAB_USER_LOGIN="ana"))  # fmt: skip
    # A branch whose environment outlived it: the run chosen for it by hand in MLflow (the
    # documented pin tag), its environment deployed, then the branch deleted without a stop.
    client.set_tag(run.info.run_id, "modelci.pin", feature_environment("feature/old"))
    old = ModelRepo(live.path, PROJECT_B, "feature/old")
    for step in ("resolve", "deploy-online"):
        ok(modelci(platform, old, step, "--model", MODEL))
    timings["project B: a push, a chosen version, a stale environment"] = time.monotonic() - started
    return {"repos": {PROJECT_A: main, PROJECT_B: b_main}}


def gitlab_state(gitlab, now: datetime) -> None:
    """What GitLab holds: A's branches are merged and gone; B has a live branch and its
    environment, and the environment of a branch deleted without its stop job."""
    gitlab.project_branches = {PROJECT_A: ["main"], PROJECT_B: ["main", "feature/live"]}
    gitlab.committed = {
        "main": (now - timedelta(hours=1)).isoformat(),
        "feature/live": (now - timedelta(hours=5)).isoformat(),
    }
    gitlab.environments = {
        PROJECT_B: [
            {"name": "review/feature/live", "state": "available",
             "created_at": (now - timedelta(days=1)).isoformat(),
             "auto_stop_at": (now + timedelta(days=6)).isoformat()},
            {"name": "review/feature/old", "state": "available",
             "created_at": (now - timedelta(days=9)).isoformat(), "auto_stop_at": None},
        ]
    }  # fmt: skip


def build(platform: LocalPlatform, repo: ModelRepo, out: Path, **variables: str) -> str:
    result = modelci(platform, repo, "fleet", "--platform", "--out", str(out), "--days", "30",
                     "--max-environments", "5", **variables)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def truth(platform: LocalPlatform) -> dict:
    """What MLflow, the repos and S3 hold, read with their own clients."""
    client = MlflowClient(platform.mlflow.tracking_uri)
    served, audit = {}, {}
    for project, model in ((PROJECT_A, MODEL), (PROJECT_B, MODEL), (PROJECT_B, SECOND)):
        registered = names_for(project, "main", model).registered_model
        try:
            found = client.get_registered_model(registered)
        except MlflowException:  # trained, never registered
            continue
        served[registered] = dict(found.aliases)
        rows = []
        for version in client.search_model_versions(f"name = '{registered}'"):
            for key, value in version.tags.items():
                if key.startswith("modelci.stand.") and key.endswith(".action"):
                    stand = key.split(".")[2]
                    rows.append(
                        (version.tags[f"modelci.stand.{stand}.at"], stand, value, version.version)
                    )
        audit[registered] = [row[1:] for row in sorted(rows, reverse=True)]
    environments = {}
    for project in (PROJECT_A, PROJECT_B):
        slug = project_slug_of(project)
        found = {
            p.split("/")[2] for p in files_on(platform.dag_repo) if p.startswith(f"dags/{slug}/")
        }
        found |= {
            p.split("/")[2]
            for p in files_on(platform.gitops_repo)
            if p.startswith(f"environments/{slug}/")
        }
        environments[project] = sorted(name for name in found if name.startswith("b-"))
    return {"served": served, "audit": audit, "environments": environments}


def scratch_bytes(platform: LocalPlatform, project: str, environment: str) -> int:
    prefix = f"modelci-scratch/branches/{project_slug_of(project)}/{environment}/"
    client = platform.s3.client()
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=platform.s3.bucket, Prefix=prefix
    )
    return sum(item["Size"] for page in pages for item in page.get("Contents", []))


def test_the_fleet_site_shows_what_the_systems_hold(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    timings: dict[str, float] = {}
    made = lifecycle(platform, tmp_path, timings)
    expected = truth(platform)
    now = datetime.now(UTC)
    a_main = made["repos"][PROJECT_A]
    with running(TOKEN) as gitlab:
        gitlab_state(gitlab, now)
        started = time.monotonic()
        output = build(
            platform,
            a_main,
            tmp_path / "public",
            CI_SERVER_URL=gitlab.url,
            MODELCI_GITLAB_TOKEN=TOKEN,
        )
        timings["modelci fleet --platform"] = time.monotonic() - started
        dead = f"http://127.0.0.1:{closed_port()}"
        reader = {"CI_SERVER_URL": gitlab.url, "MODELCI_GITLAB_TOKEN": TOKEN}
        down = build(platform, a_main, tmp_path / "down", **reader, MLFLOW_TRACKING_URI=dead)
    assert "MLflow" in output and "NOT READ" not in output, output
    assert "MLflow" in down and "NOT READ" in down

    started = time.monotonic()
    pages = {}
    for name in [
        INDEX,
        project_page(project_slug_of(PROJECT_A)),
        project_page(project_slug_of(PROJECT_B)),
    ]:
        page = open_page(
            tmp_path / "public" / name, SHOTS / name.replace(".html", ".png"), height=2400
        )
        pages[name] = page.dom
    down_page = open_page(
        tmp_path / "down" / project_page(project_slug_of(PROJECT_B)), SHOTS / "mlflow-down.png"
    ).dom
    timings["chromium: 4 pages"] = time.monotonic() - started
    print("timings:", {k: round(v, 1) for k, v in timings.items()})

    for name, html in pages.items():
        dom = dom_of(html)
        assert dom.scripts == 0, name
        assert "Built" in html and 'data-source="MLflow" data-ok="yes"' in html, name

    # Served versions: each stand's row names the version its alias points at.
    for project in (PROJECT_A, PROJECT_B):
        html = pages[project_page(project_slug_of(project))]
        for model in (MODEL, SECOND):
            registered = names_for(project, "main", model).registered_model
            if project == PROJECT_A and model == SECOND:
                assert f'data-model="{model}"' not in html  # A has no such model
                continue
            if registered not in expected["served"]:  # trained, never on a stand
                assert (project, model) == (PROJECT_B, SECOND)
                block = section(html, f'data-model="{model}"')
                assert "serves nothing" in block and "No metrics on the registered" in block
                continue
            block = section(html, f'data-model="{model}"')
            rows = dom_of(block).having("tr", "data-stand")
            serving = {
                r["data-stand"]: r["data-version"]
                for r in rows
                if "data-run" in r or r["data-version"] == ""
            }
            shown = {stand: version for stand, version in serving.items() if version}
            assert shown == expected["served"][registered], (project, model, rows)
            audit = dom_of(tables(block, "audit")).having("tr", "data-action")
            assert [
                (r["data-stand"], r["data-action"], r["data-version"]) for r in audit
            ] == expected["audit"][registered]
    assert expected["served"][names_for(PROJECT_A, "main", MODEL).registered_model] == {
        "staging": "1",
        "production": "1",
    }
    actions = {
        row[1] for row in expected["audit"][names_for(PROJECT_A, "main", MODEL).registered_model]
    }
    assert actions == {"promote", "rollback"}
    assert ("staging", "deploy", "1") in expected["audit"][
        names_for(PROJECT_B, "main", MODEL).registered_model
    ]

    # Every chart drawn: the gated metric by version, and the week of monitoring of production.
    a_page = pages[project_page(project_slug_of(PROJECT_A))]
    monitoring = a_page.split('data-environment="production"', 1)[1]
    for chart in ("psi", "data-quality"):
        svg = monitoring.split(f'data-chart="{chart}"', 1)[1].split("</svg>", 1)[0]
        rows = svg.count('font-size="11">') - 1  # the labelled rows, less the decisions' row
        checks = [int(n) for n in re.findall(r'data-checks="(\d+)"', svg)]
        assert rows >= 4 and sum(checks) == rows * 7, chart  # every day of every row drawn
    truth_chart = monitoring.split('data-chart="ground-truth"', 1)[1].split("</svg>", 1)[0]
    assert truth_chart.count('<circle class="mark') == 7
    psi = monitoring.split('data-chart="psi"', 1)[1].split("</svg>", 1)[0]
    assert 'class="mark over"' in psi  # the drift day
    assert "7 checks" in monitoring
    gated = a_page.split('data-chart="gated-metric"', 1)[1].split("</svg>", 1)[0]
    assert gated.count('<circle class="mark') == 2 and 'data-bound="min"' in gated
    for html in pages.values():
        for svg in html.split("<svg")[1:]:
            assert 'class="mark' in svg.split("</svg>", 1)[0]  # no empty frame

    # Branch environments: exactly the repos' ones, live and stale as GitLab's branches say.
    b_page = pages[project_page(project_slug_of(PROJECT_B))]
    live = [
        r["data-environment"]
        for r in dom_of(tables(b_page, "live")).having("tr", "data-environment")
    ]
    stale = [
        r["data-environment"]
        for r in dom_of(tables(b_page, "stale")).having("tr", "data-environment")
    ]
    assert sorted(live + stale) == expected["environments"][PROJECT_B]
    assert live == [feature_environment("feature/live")]
    assert stale == [feature_environment("feature/old")]
    (row,) = dom_of(tables(b_page, "live")).having("tr", "data-environment")
    assert row["data-branch"] == "feature/live"
    (gone,) = dom_of(tables(b_page, "stale")).having("tr", "data-environment")
    assert gone["data-branch"] == "feature/old"  # named by its GitLab environment
    assert int(row["data-bytes"]) == scratch_bytes(platform, PROJECT_B, live[0]) > 0
    assert expected["environments"][PROJECT_A] == []
    assert 'data-live="1" data-cap="5" data-stale="1"' in b_page

    # MLflow down: the models section says so; the environments are still there.
    assert 'class="unavailable" data-source="MLflow"' in section(down_page, 'id="models"')
    assert feature_environment("feature/live") in section(down_page, 'id="environments"')


class Shape(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def shape(html: str) -> list[str]:
    parser = Shape()
    parser.feed(html)
    return parser.tags


def dom_text(html: str) -> str:
    parser = Shape()
    parser.feed(html)
    return "".join(parser.text)


def test_hostile_names_stay_text_in_the_browser(tmp_path: Path) -> None:
    """Chromium's DOM after the page loaded: the same elements as with plain names, no
    script, and each name shown as text (the whole hostile set is checked without a browser
    in test_fleet_render.py)."""
    model, metric, feature, branch = (
        "<script>alert(1)</script>",
        '"><img src=x onerror=alert(1)>',
        "{{ var.value.secret }}</title></svg><script>x()</script>",
        "feature/{{ var.value.secret }}'><svg onload=alert(1)>",
    )
    pages = {}
    for label, names in (
        ("plain", ("x", "x", "x", "x")),
        ("hostile", (model, metric, feature, branch)),
    ):
        site = render_site(a_fleet(model=a_model(*names[:3]), branch=names[3]))
        path = tmp_path / label / INDEX
        path.parent.mkdir()
        path.write_text(site[INDEX], encoding="utf-8")
        pages[label] = open_page(path, SHOTS / f"hostile-{label}.png").dom
    assert HOSTILE
    assert shape(pages["hostile"]) == shape(pages["plain"])
    assert "<script" not in pages["hostile"] and "<img" not in pages["hostile"]
    text = dom_text(pages["hostile"])
    for name in (model, metric, feature, branch):
        assert name in text, name
