"""The fleet as a static site: HTML pages with inline SVG charts and inline CSS, no script,
nothing fetched (a Content-Security-Policy forbids it), so the artifact works offline and a
name from outside can only ever be text. Pure: `Fleet` in, {file name: HTML} out.

Platform scope: `index.html` lists the projects (and what each stand serves), one
`project-<slug>.html` per project. Project scope: `index.html` is the project's page.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from .charts import Column, heat_map, line_chart
from .model import (
    ENVIRONMENT_SOURCES,
    MODEL_SOURCES,
    PLATFORM_SCOPE,
    BranchEnvironment,
    Fleet,
    Link,
    ModelView,
    Monitoring,
    ProjectView,
)
from .text import attr, href, text

INDEX = "index.html"
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1f2328;max-width:1100px}
h1{font-size:1.5rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.85rem}
th,td{border:1px solid #d0d7de;padding:.2rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}.unavailable{background:#fff8c5;border:1px solid #d4a72c;padding:.5rem}
.over{stroke:#000;stroke-width:.5}.model{border:1px solid #d0d7de;padding:0 1rem;margin:1rem 0}
.built{color:#57606a}svg.chart{display:block;margin:.3rem 0 .8rem;max-width:100%;height:auto}
.num{text-align:right;font-variant-numeric:tabular-nums}
"""


def project_page(slug: str) -> str:
    return f"project-{slug}.html"


def render_site(fleet: Fleet) -> dict[str, str]:
    """Every page of the site, by file name."""
    if fleet.scope == PLATFORM_SCOPE:
        pages = {INDEX: _page(fleet, fleet.title or "The fleet", _platform_body(fleet))}
        for project in fleet.projects:
            body = _project_body(fleet, project, back=True)
            pages[project_page(project.slug)] = _page(fleet, project.path, body)
        return pages
    (project,) = fleet.projects or (ProjectView(fleet.title, "", (), ()),)
    return {INDEX: _page(fleet, project.path, _project_body(fleet, project, back=False))}


def _page(fleet: Fleet, title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{attr(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{text(title)}: modelci fleet</title><style>{STYLE}</style></head>"
        f"<body><header><h1>{text(title)}</h1>{_built(fleet)}</header>"
        f"<main>{body}</main></body></html>\n"
    )


def _built(fleet: Fleet) -> str:
    rows = "".join(
        f'<tr data-source="{attr(s.name)}" data-ok="{"no" if s.problem else "yes"}">'
        f"<td>{text(s.name)}</td><td>{text(s.where)}</td>"
        f'<td class="num">{s.requests}</td>'
        f"<td>{text(s.problem) if s.problem else 'read'}</td></tr>"
        for s in fleet.sources
    )
    return (
        f'<p class="built">Built <time datetime="{attr(_iso(fleet.built_at))}">'
        f"{text(_when(fleet.built_at))}</time> ({text(fleet.scope)} scope) from:</p>"
        '<table class="sources"><thead><tr><th>source</th><th>where</th><th>requests</th>'
        f"<th>state</th></tr></thead><tbody>{rows}</tbody></table>"
    )


# --- the platform page --------------------------------------------------------------------


def _platform_body(fleet: Fleet) -> str:
    rows = []
    for project in fleet.projects:
        cap = str(project.cap) if project.cap else "none"
        rows.append(
            f'<tr data-project="{attr(project.path)}">'
            f'<td><a href="{attr(project_page(project.slug))}">{text(project.path)}</a></td>'
            f'<td class="num">{len(project.models)}</td>'
            f'<td class="num">{len(project.live)}</td><td class="num">{text(cap)}</td>'
            f'<td class="num">{len(project.stale)}</td>'
            f'<td class="num">{text(_bytes(project.scratch_bytes))}</td>'
            f'<td class="num">{text(_bytes(project.archive_bytes))}</td></tr>'
        )
    projects = (
        '<section id="projects"><h2>Projects</h2><table class="projects"><thead><tr>'
        "<th>project</th><th>models</th><th>live branch environments</th><th>cap</th>"
        "<th>branch gone</th><th>scratch</th><th>environment archives</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )
    return projects + _fleet_serving(fleet)


def _fleet_serving(fleet: Fleet) -> str:
    head = "".join(f"<th>{text(stand)}</th>" for stand in fleet.stands)
    rows = []
    for project in fleet.projects:
        for model in project.models:
            served = {s.stand: s for s in model.serving}
            cells = "".join(
                f'<td data-stand="{attr(stand)}">'
                + (text(f"v{served[stand].version}") if stand in served else "&#8212;")
                + "</td>"
                for stand in fleet.stands
            )
            rows.append(
                f'<tr data-registered="{attr(model.registered_model)}"><td>'
                f'<a href="{attr(project_page(project.slug))}#{attr(_anchor(model.name))}">'
                f"{text(project.path)} {text(model.name)}</a></td>{cells}</tr>"
            )
    note = _problems(fleet.sources, MODEL_SOURCES)
    return (
        f'<section id="serving"><h2>What each stand serves</h2>{note}'
        f'<table class="fleet-serving"><thead><tr><th>model</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


# --- a project's page ---------------------------------------------------------------------


def _project_body(fleet: Fleet, project: ProjectView, *, back: bool) -> str:
    up = f'<p><a href="{INDEX}">All projects</a></p>' if back else ""
    models = "".join(_model(fleet, model) for model in project.models)
    if not models and not fleet.problem("MLflow"):
        models = "<p>No registered model of this project in MLflow.</p>"
    return (
        f'{up}<section id="models"><h2>Models</h2>'
        f"{_problems(fleet.sources, MODEL_SOURCES)}{models}</section>"
        f"{_environments(fleet, project)}"
    )


def _problems(sources, names: Sequence[str]) -> str:
    return "".join(
        f'<p class="unavailable" data-source="{attr(s.name)}">{text(s.name)} could not be '
        f"read, so this section lacks what it holds: {text(s.problem)}</p>"
        for s in sources
        if s.name in names and s.problem
    )


def _anchor(name: str) -> str:
    return f"model-{name}"


def _model(fleet: Fleet, model: ModelView) -> str:
    return (
        f'<section class="model" id="{attr(_anchor(model.name))}" data-model="{attr(model.name)}">'
        f"<h3>{text(model.name)} <small>({text(model.registered_model)})</small></h3>"
        f"{_links(model.links)}{_serving(fleet, model)}{_audit(model)}{_gated(model)}"
        f"{''.join(_monitoring(model, m) for m in model.monitoring)}</section>"
    )


def _links(links: Iterable[Link]) -> str:
    items = [
        f'<a href="{target}">{text(link.label)}</a>' for link in links if (target := href(link.url))
    ]
    return f'<p class="links">{" &#183; ".join(items)}</p>' if items else ""


def _ordered_aliases(order: Iterable[str], served: Iterable[str]) -> list[str]:
    """The aliases a model without a known config carries, in the fleet's stand order."""
    return [stand for stand in order if stand in set(served)]


def _serving(fleet: Fleet, model: ModelView) -> str:
    served = {s.stand: s for s in model.serving}
    # The model's own project's stands: another project's stand names are not its stands.
    known = model.stands or _ordered_aliases(fleet.stands, served)
    stands = list(known) + sorted(set(served) - set(known))
    rows = [] if stands else ['<tr><td colspan="7">serves nothing on any stand</td></tr>']
    for stand in stands:
        s = served.get(stand)
        if s is None:
            rows.append(
                f'<tr data-stand="{attr(stand)}" data-version=""><td>{text(stand)}</td>'
                '<td colspan="6">serves nothing</td></tr>'
            )
            continue
        rows.append(
            f'<tr data-stand="{attr(stand)}" data-version="{attr(s.version)}" '
            f'data-run="{attr(s.run_id)}"><td>{text(stand)}</td><td>{text(s.version)}</td>'
            f"<td><code>{text(s.run_id)}</code></td><td>{text(_when_text(s.since))}</td>"
            f"<td>{text(s.by)} ({text(s.action or 'not recorded')})</td>"
            f"<td>{_maybe_link(s.merge_request)} {_maybe_link(s.pipeline)}</td>"
            f"<td>{_links(s.links)}</td></tr>"
        )
    return (
        '<h4>Stands</h4><table class="serving"><thead><tr><th>stand</th><th>version</th>'
        "<th>run</th><th>since</th><th>moved by</th><th>merge request, pipeline</th>"
        f"<th>links</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _maybe_link(value: str) -> str:
    target = href(value)
    return f'<a href="{target}">{text(value)}</a>' if target else text(value)


def _audit(model: ModelView) -> str:
    if not model.audit:
        return "<h4>Audit trail</h4><p>No move of a stand recorded.</p>"
    rows = "".join(
        f'<tr data-stand="{attr(a.stand)}" data-action="{attr(a.action)}" '
        f'data-version="{attr(a.version)}" data-at="{attr(a.at)}">'
        f"<td>{text(_when_text(a.at))}</td><td>{text(a.stand)}</td><td>{text(a.action)}</td>"
        f"<td>{text(a.previous_version or '-')} &#8594; {text(a.version)}</td>"
        f"<td>{text(a.by)}</td><td>{_maybe_link(a.merge_request)} {_maybe_link(a.pipeline)}</td>"
        f"<td>{text(a.reason)}</td></tr>"
        for a in model.audit
    )
    return (
        '<h4>Audit trail</h4><table class="audit"><thead><tr><th>when</th><th>stand</th>'
        "<th>action</th><th>version</th><th>by</th><th>merge request, pipeline</th>"
        f"<th>gate override</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _gated(model: ModelView) -> str:
    thresholds = {t.metric: t for t in model.thresholds}
    names = sorted({name for v in model.versions for name in v.metrics} & set(thresholds))
    if not thresholds:  # another project's model: its gate is in its own mlops.yaml
        names = sorted({name for v in model.versions for name in v.metrics})
    if not names:
        return "<h4>Gated metrics</h4><p>No metrics on the registered versions.</p>"
    columns = [Column(f"v{v.version}") for v in model.versions]
    charts = []
    for name in names:
        bound = thresholds.get(name)
        values = [v.metrics.get(name) for v in model.versions]
        charts.append(
            line_chart(
                "gated-metric",
                f"{name} by registered version",
                columns,
                values,
                bound.minimum if bound else None,
                bound.maximum if bound else None,
                metric=name,
            )
        )
    return f"<h4>Gated metrics across the registered versions</h4>{''.join(charts)}"


def _monitoring(model: ModelView, monitoring: Monitoring) -> str:
    points, bounds = monitoring.points, monitoring.bounds
    if not points:
        return ""
    columns = [Column(_when(p.at), p.decision) for p in points]
    features = sorted({name for p in points for name in p.psi})
    checks = sorted({name for p in points for name in p.data})
    charts = [
        heat_map(
            "psi",
            f"PSI per feature and check, {monitoring.environment}",
            features,
            columns,
            [[p.psi.get(name) for p in points] for name in features],
            bounds.max_psi,
        )
    ]
    if checks:
        charts.append(
            heat_map(
                "data-quality",
                f"data checks (share of rows), {monitoring.environment}",
                checks,
                columns,
                [[p.data.get(name) for p in points] for name in checks],
                bounds.max_null_share,
            )
        )
    quality = [p.quality for p in points]
    if any(value is not None for value in quality):
        label = bounds.quality_metric or "ground truth"
        charts.append(
            line_chart(
                "ground-truth",
                f"{label} against ground truth, {monitoring.environment}",
                columns,
                quality,
                bounds.quality_min,
                bounds.quality_max,
            )
        )
    decisions = sum(1 for c in columns if c.decision not in ("", "none"))
    return (
        f'<div class="monitoring" data-environment="{attr(monitoring.environment)}">'
        f"<h4>Monitoring of {text(monitoring.environment)}: {len(points)} checks from "
        f"{text(columns[0].label)} to {text(columns[-1].label)}, {decisions} retraining "
        f"decisions</h4>{''.join(charts)}</div>"
    )


def _environments(fleet: Fleet, project: ProjectView) -> str:
    cap = f"of a cap of {project.cap}" if project.cap else "(no cap)"
    totals = (
        f'<p class="totals" data-live="{len(project.live)}" data-cap="{project.cap}" '
        f'data-stale="{len(project.stale)}">{len(project.live)} live {text(cap)}; '
        f"{len(project.stale)} whose branch is gone; scratch "
        f"{text(_bytes(project.scratch_bytes))}; environment archives "
        f"{text(_bytes(project.archive_bytes))} in {project.archive_count}.</p>"
    )
    unknown = [env for env in project.environments if env.live is None]
    return (
        '<section id="environments"><h2>Branch environments</h2>'
        f"{_problems(fleet.sources, ENVIRONMENT_SOURCES)}{totals}"
        f"<h3>Live</h3>{_environment_table('live', project.live, fleet.built_at)}"
        "<h3>Branch gone: the scheduled clean-up removes these</h3>"
        f"{_environment_table('stale', project.stale, fleet.built_at)}"
        + (
            "<h3>Branch unknown (GitLab could not be read)</h3>"
            + _environment_table("unknown", unknown, fleet.built_at)
            if unknown
            else ""
        )
        + "</section>"
    )


def _environment_table(kind: str, environments: Sequence[BranchEnvironment], now: datetime) -> str:
    if not environments:
        return f'<p class="none" data-table="{attr(kind)}">None.</p>'
    rows = "".join(
        f'<tr data-environment="{attr(env.name)}" data-branch="{attr(env.branch)}" '
        f'data-bytes="{"" if env.scratch_bytes is None else env.scratch_bytes}">'
        f"<td>{text(env.branch or '?')}</td><td><code>{text(env.name)}</code></td>"
        f"<td>{text(_age(env.created, now))}</td><td>{text(_when(env.last_push))}</td>"
        f"<td>{text(_when(env.auto_stop_at))}</td>"
        f'<td class="num">{text(_bytes(env.scratch_bytes))}</td>'
        f"<td>{text(', '.join(env.models))}</td><td>{text(', '.join(env.places))}</td></tr>"
        for env in environments
    )
    return (
        f'<table class="{attr(kind)}"><thead><tr><th>branch</th><th>environment</th>'
        "<th>age</th><th>last push</th><th>auto stop</th><th>scratch</th><th>models</th>"
        f"<th>found in</th></tr></thead><tbody>{rows}</tbody></table>"
    )


# --- formatting ---------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "-"


def _when_text(value: str) -> str:
    try:
        return _when(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return value or "-"


def _age(created: datetime | None, now: datetime) -> str:
    if created is None:
        return "-"
    seconds = max(0.0, (now - created).total_seconds())
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _bytes(size: int | None) -> str:
    if size is None:
        return "unknown"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"
