"""The fleet site from a fleet model: every section and chart drawn, names from outside only
ever text (the hostile sets of the DAG tests), a source that could not be read named in the
sections built from it, and the command's refusals."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from modelci.cli import main
from modelci.fleet.model import (
    GITLAB,
    MLFLOW,
    PLATFORM_SCOPE,
    PROJECT_SCOPE,
    SOURCES,
    AuditRow,
    BranchEnvironment,
    Fleet,
    Link,
    ModelView,
    Monitoring,
    MonitoringBounds,
    MonitoringPoint,
    ProjectView,
    Serving,
    Source,
    Threshold,
    VersionMetrics,
)
from modelci.fleet.render import INDEX, project_page, render_site
from tests.integration.test_airflow import HOSTILE as HOSTILE_TEMPLATES
from tests.integration.test_airflow import HOSTILE_BRANCH
from tests.unit.test_dags import HOSTILE as HOSTILE_CODE

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
HOSTILE_HTML = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
    "</title></svg><script>x()</script>",
    "javascript:alert(1)",
    "<!--",
    "]]><x>",
    "&amp;&lt;",
]
HOSTILE = [*HOSTILE_CODE, *HOSTILE_TEMPLATES, HOSTILE_BRANCH, *HOSTILE_HTML]


def a_week(drift_day: int = 3) -> tuple[MonitoringPoint, ...]:
    points = []
    for day in range(7):
        drift = day == drift_day
        points.append(
            MonitoringPoint(
                at=NOW - timedelta(days=6 - day),
                run_id=f"m{day}",
                verdict="failed" if drift else "passed",
                decision="triggered" if drift else "none",
                psi={"tenure": 0.6 if drift else 0.02, "charges": 0.05},
                data={"null_share.tenure": 0.0, "out_of_range.products": 0.002},
                quality=0.7 if drift else 0.86,
            )
        )
    return tuple(points)


def a_model(name: str = "churn", metric: str = "accuracy", feature: str = "") -> ModelView:
    week = a_week()
    if feature:
        week = tuple(replace(p, psi={**p.psi, feature: 0.1}) for p in week)
    return ModelView(
        name=name,
        registered_model=f"ml-a-1a2b3c.{name}",
        serving=(
            Serving(
                "staging",
                "3",
                "r3",
                "2026-12-05T10:00:00+00:00",
                "ana",
                "deploy",
                "",
                "https://gitlab.example.com/p/-/pipelines/9",
                (Link("MLflow run", "http://m/r3"),),
            ),
            Serving(
                "production",
                "1",
                "r1",
                "2026-12-05T11:00:00+00:00",
                "bo",
                "rollback",
                "",
                "https://gitlab.example.com/p/-/pipelines/8",
            ),
        ),
        audit=(
            AuditRow(
                "2026-12-05T11:00:00+00:00", "production", "rollback", "1", "2", "bo", "", "p8", ""
            ),
            AuditRow(
                "2026-12-05T10:00:00+00:00",
                "staging",
                "deploy",
                "3",
                "2",
                "ana",
                "",
                "p7",
                "hotfix",
            ),
            AuditRow(
                "2026-12-04T10:00:00+00:00",
                "production",
                "promote",
                "2",
                "1",
                "ana",
                "mr!4",
                "p6",
                "",
            ),
        ),
        versions=tuple(
            VersionMetrics(n, f"r{n}", "passed", {metric: 0.8 + n / 100}) for n in (1, 2, 3)
        ),
        thresholds=(Threshold(metric, minimum=0.7),),
        monitoring=(Monitoring("production", week, MonitoringBounds(0.2, 0.01, "accuracy", 0.8)),),
        links=(Link("MLflow registered model", "http://mlflow/#/models/x"),),
    )


def a_fleet(
    scope: str = PROJECT_SCOPE,
    *,
    model: ModelView | None = None,
    branch: str = "feature/live",
    problems: dict[str, str] | None = None,
) -> Fleet:
    live = BranchEnvironment(
        "b-feature-live-0123456789", branch, True, ("churn",), ("DAG bundle repo", "S3"),
        NOW - timedelta(days=2), NOW - timedelta(hours=3), NOW + timedelta(days=5), 2048,
    )  # fmt: skip
    stale = BranchEnvironment(
        "b-gone", "", False, ("churn",), ("GitOps repo",), None, None, None, 0
    )
    project = ProjectView(
        "ml/a", "ml-a-1a2b3c", (model or a_model(),), (live, stale), 10 << 20, 2, cap=3
    )
    sources = tuple(
        Source(name, f"http://{name.lower().replace(' ', '-')}", 3, (problems or {}).get(name, ""))
        for name in SOURCES
    )
    return Fleet(scope, NOW, ("staging", "production"), (project,), sources, "ml/a")


class Structure(HTMLParser):
    """Every element (tag and attribute names), the text, and what a browser would run."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, tuple[str, ...]]] = []
        self.text: list[str] = []
        self.active: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, tuple(sorted(name for name, _ in attrs))))
        if tag in ("script", "iframe", "object", "embed", "foreignobject", "base", "link"):
            self.active.append(tag)
        for name, value in attrs:
            linked = name in ("href", "src", "xlink:href", "action", "formaction")
            scheme = urlsplit((value or "").strip()).scheme.lower()
            if name.startswith("on") or (linked and scheme not in ("http", "https", "")):
                self.active.append(f"{tag} {name}={value}")

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.active.append(f"comment {data!r}")


def parsed(page: str) -> Structure:
    parser = Structure()
    parser.feed(page)
    parser.close()
    return parser


def test_a_project_page_shows_stands_audit_charts_and_environments() -> None:
    (name, page), = render_site(a_fleet()).items()  # fmt: skip

    assert name == INDEX
    found = parsed(page)
    assert not found.active
    assert 'http-equiv="Content-Security-Policy" content="default-src &#x27;none&#x27;;' in page
    assert 'data-stand="staging" data-version="3"' in page
    assert 'data-stand="production" data-version="1"' in page
    audit = page.split('class="audit"')[1].split("</table>")[0]
    assert audit.index('data-action="rollback"') < audit.index('data-action="deploy"')
    assert audit.index('data-action="deploy"') < audit.index('data-action="promote"')
    for chart in ("gated-metric", "ground-truth"):
        svg = page.split(f'data-chart="{chart}"')[1].split("</svg>")[0]
        assert svg.count('<circle class="mark') == (3 if chart == "gated-metric" else 7), chart
    for chart, rows in (("psi", 2), ("data-quality", 2)):
        svg = page.split(f'data-chart="{chart}"')[1].split("</svg>")[0]
        checks = [int(n) for n in re.findall(r'data-checks="(\d+)"', svg)]
        assert sum(checks) == rows * 7, chart  # every check of every row, calm days merged
    psi = page.split('data-chart="psi"')[1].split("</svg>")[0]
    assert psi.count('class="mark over"') == 1  # the drift day's tenure
    assert '<rect class="mark over" data-checks="1"' in psi  # alone, between calm days
    assert psi.count('class="decision"') == 1  # its retraining, on the same time axis
    assert 'data-bound="min"' in page.split('data-chart="ground-truth"')[1].split("</svg>")[0]
    assert '<p class="totals" data-live="1" data-cap="3" data-stale="1">' in page
    live = page.split('<table class="live">')[1].split("</table>")[0]
    stale = page.split('<table class="stale">')[1].split("</table>")[0]
    assert 'data-environment="b-feature-live-0123456789"' in live and "2.0 KB" in live
    assert 'data-environment="b-gone"' in stale
    assert 'Built <time datetime="2026-12-06T12:00:00+00:00">' in page


def test_the_platform_scope_has_an_index_and_a_page_per_project() -> None:
    pages = render_site(a_fleet(PLATFORM_SCOPE))

    assert set(pages) == {INDEX, project_page("ml-a-1a2b3c")}
    index = pages[INDEX]
    assert f'href="{project_page("ml-a-1a2b3c")}"' in index
    assert 'data-registered="ml-a-1a2b3c.churn"' in index
    assert '<td data-stand="production">v1</td>' in index
    assert 'href="index.html"' in pages[project_page("ml-a-1a2b3c")]


@pytest.mark.parametrize("scope", [PROJECT_SCOPE, PLATFORM_SCOPE])
@pytest.mark.parametrize("evil", HOSTILE)
def test_hostile_names_reach_the_page_only_as_text(scope: str, evil: str) -> None:
    reference = render_site(a_fleet(scope, model=a_model("x", "x", "x"), branch="x"))
    hostile = render_site(a_fleet(scope, model=a_model(evil, evil, evil), branch=evil))

    assert hostile.keys() == reference.keys()
    shown = evil.replace("\r\n", "\n").replace("\r", "\n").replace("\ud800", "\ufffd")
    for name, page in hostile.items():
        page.encode("utf-8")  # what the command writes: no lone surrogate left
        found, expected = parsed(page), parsed(reference[name])
        # Not one element or attribute more or less (rows sort by name, so in another order).
        assert Counter(found.tags) == Counter(expected.tags), name
        assert not found.active, found.active
        visible = "".join(found.text)
        if not any("\x00" <= char <= "\x1f" and char not in "\t\n\r" for char in evil):
            assert shown in visible or shown.strip() == "", (name, evil)


def test_links_only_go_to_web_addresses() -> None:
    model = a_model()
    bad = replace(model.serving[0], links=(Link("run", "javascript:alert(1)"),))
    page = render_site(a_fleet(model=replace(model, serving=(bad, model.serving[1]))))[INDEX]

    assert "javascript:" not in page
    assert not parsed(page).active


def test_a_source_that_could_not_be_read_is_named_in_its_sections() -> None:
    problems = {MLFLOW: "MLflow at http://127.0.0.1:9 is unreachable", GITLAB: "HTTP 401"}
    fleet = a_fleet(problems=problems)
    fleet = replace(fleet, projects=(replace(fleet.projects[0], models=()),))
    page = render_site(fleet)[INDEX]

    models = page.split('id="models"')[1].split("</section>")[0]
    environments = page.split('id="environments"')[1]
    assert 'data-source="MLflow"' in models and "127.0.0.1:9 is unreachable" in models
    assert 'data-source="GitLab"' in environments and "HTTP 401" in environments
    assert 'data-source="MLflow"' not in environments
    assert 'data-environment="b-feature-live-0123456789"' in environments  # still built
    assert '<tr data-source="MLflow" data-ok="no">' in page


def test_the_command_refuses_bad_input_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CI_PROJECT_PATH", raising=False)
    out = tmp_path / "public"
    cases = [
        (["fleet", "--out", str(out)], "give --project"),
        (["fleet", "--project", "ml/a", "--days", "0", "--out", str(out)], "--days is 0"),
        (["fleet", "--platform", "--max-environments", "-1", "--out", str(out)], "give 0"),
    ]
    for argv, message in cases:
        assert main(argv) != 0
        assert message in capsys.readouterr().err
    monkeypatch.setenv("MODELCI_MAX_ENVIRONMENTS", "many")
    assert main(["fleet", "--platform", "--out", str(out)]) != 0
    assert "MODELCI_MAX_ENVIRONMENTS is 'many'" in capsys.readouterr().err
    monkeypatch.delenv("MODELCI_MAX_ENVIRONMENTS")
    (tmp_path / "file").write_text("x")
    assert main(["fleet", "--platform", "--out", str(tmp_path / "file")]) != 0
    assert "is a file" in capsys.readouterr().err
    (tmp_path / "mlops.yaml").write_text("version: 1\nmodels: nope\n")
    assert main(["fleet", "--project", "ml/a", "--out", str(out)]) != 0
    assert "mlops.yaml" in capsys.readouterr().err
    assert not out.exists()


def test_a_year_of_daily_checks_stays_small_and_bad_days_stand_alone() -> None:
    year = tuple(
        replace(a_week()[0], at=NOW - timedelta(days=364 - day), run_id=f"d{day}",
                psi={"tenure": 0.6 if day % 30 == 29 else 0.02, "charges": 0.05},
                decision="triggered" if day % 30 == 29 else "none",
                quality=0.7 if day % 30 == 29 else 0.86)
        for day in range(365)
    )  # fmt: skip
    model = replace(
        a_model(),
        monitoring=(Monitoring("production", year, MonitoringBounds(0.2, None, "accuracy", 0.8)),),
    )
    page = render_site(a_fleet(model=model))[INDEX]

    psi = page.split('data-chart="psi"')[1].split("</svg>")[0]
    checks = [int(n) for n in re.findall(r'data-checks="(\d+)"', psi)]
    assert sum(checks) == 2 * 365
    assert psi.count('class="mark over" data-checks="1"') == 12  # each drift day on its own
    assert psi.count('class="decision"') == 12
    truth = page.split('data-chart="ground-truth"')[1].split("</svg>")[0]
    assert 'data-points="365"' in truth  # the line through every day, dots where it matters
    assert truth.count("<circle") == 12 + 1  # the bad days, and the last
    assert len(page) < 200_000


def test_a_model_shows_its_own_projects_stands_not_another_projects() -> None:
    fleet = replace(a_fleet(), stands=("staging", "production", "b-feature-x", "prod"))
    (page,) = render_site(fleet).values()
    assert 'data-stand="prod"' not in page and 'data-stand="b-feature-x"' not in page
    assert 'data-stand="staging" data-version="3"' in page

    own = replace(a_model(), stands=("dev", "staging", "production"))
    (page,) = render_site(
        replace(fleet, projects=(replace(fleet.projects[0], models=(own,)),))
    ).values()
    rows = re.findall(r'<tr data-stand="([^"]*)"', page.split('class="audit"')[0])
    assert rows[:3] == ["dev", "staging", "production"]  # its own order, dev serving nothing
