"""The merge request's comparison: this branch's candidate model against what each stand
serves, as the markdown of one merge request note and as plain lines for the job log.

Pure: dataclasses in, text out; no I/O. `modelci compare` gathers the data.

Every string that comes from a user (model, metric, branch and stand names, gate reasons)
goes through `md_code` (a code span: no markdown, no HTML, no GitLab references, no way out
of a table cell) or `mermaid_label` (a short whitelisted label); URLs through `md_url`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..config.mlops import MetricThreshold
from ..lifecycle.gate import higher_is_better
from ..systems.tracking import GATE_FAILED, GATE_PASSED  # tag values only: mlflow is not imported

NOTE_MARKER = "<!-- modelci:compare -->"

BETTER, WORSE, SAME, UNKNOWN = "better", "worse", "same", "n/a"
_MARKS = {BETTER: "✅ better", WORSE: "❌ worse", SAME: "= same", UNKNOWN: "n/a"}
_MAX_REASONS = 600
_MAX_LABEL = 40
_MAX_METRIC_LABEL = 16  # then the stand's name (at most 20 characters) or "candidate"
_MERMAID_SAFE = re.compile(r"[^A-Za-z0-9 _.:/()+-]")


@dataclass(frozen=True)
class Link:
    label: str  # written by modelci; escaped anyway
    url: str


@dataclass(frozen=True)
class Candidate:
    """The run this branch would promote: `Tracker.find_run`'s choice."""

    run_id: str
    run_url: str
    metrics: Mapping[str, float]
    gate: str  # the run tag modelci.gate: "passed", "failed", or "" when never gated
    gate_reasons: str = ""
    pinned: bool = False  # chosen by the tag modelci.pin rather than as the newest passed run


@dataclass(frozen=True)
class StandModel:
    """What a stand serves: the version its alias points at (None: it serves nothing)."""

    stand: str
    version: str | None
    run_id: str = ""
    run_url: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Promotion:
    """What a merge does: the first stand's alias moves to `version` of `registered_model`."""

    stand: str
    version: str
    already_registered: bool  # the candidate run already has that version
    manual: bool = False  # the first stand is promoted by a manual job


@dataclass(frozen=True)
class ModelComparison:
    model: str
    registered_model: str
    thresholds: Sequence[MetricThreshold]  # the gated metrics of mlops.yaml
    candidate: Candidate | None
    stands: Sequence[StandModel]
    promotion: Promotion | None  # None: nothing to promote (no candidate, no stand)
    no_candidate_reason: str = ""
    links: Sequence[Link] = ()  # DAGs, model API, ...


@dataclass(frozen=True)
class NoteContext:
    branch: str
    environment: str
    commit: str = ""
    pipeline_url: str = ""
    gitlab_environment_url: str = ""


@dataclass(frozen=True)
class MetricDelta:
    name: str
    candidate: float | None
    stand: float | None
    delta: float | None
    verdict: str  # BETTER, WORSE, SAME or UNKNOWN


def _usable(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def compare_metric(
    threshold: MetricThreshold, candidate: float | None, stand: float | None
) -> MetricDelta:
    """Candidate minus stand, judged by the gate's direction (a metric with `min` should go
    up, one with only `max` down)."""
    if not (_usable(candidate) and _usable(stand)):
        return MetricDelta(threshold.name, candidate, stand, None, UNKNOWN)
    delta = candidate - stand
    if delta == 0:
        verdict = SAME
    elif (delta > 0) == higher_is_better(threshold):
        verdict = BETTER
    else:
        verdict = WORSE
    return MetricDelta(threshold.name, candidate, stand, delta, verdict)


def deltas(comparison: ModelComparison, stand: StandModel) -> list[MetricDelta]:
    metrics = comparison.candidate.metrics if comparison.candidate else {}
    return [
        compare_metric(t, metrics.get(t.name), stand.metrics.get(t.name) if stand.version else None)
        for t in comparison.thresholds
    ]


# --- escaping -------------------------------------------------------------------------------


def _visible(text: str) -> str:
    """`text` on one line: line breaks and other control or invisible characters as escapes."""
    out = []
    for char in str(text):
        if char != " " and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Zs", "Cs"):
            out.append(char.encode("unicode_escape", "backslashreplace").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


def md_code(text: str, *, table: bool = True) -> str:
    """`text` as an inline code span: one line, fenced with more backticks than it holds, so
    no markdown, HTML or GitLab reference inside it is interpreted. With `table`, pipes are
    escaped so the span cannot end a table cell (GitLab's tables unescape them)."""
    line = _visible(text)
    if table:
        line = line.replace("|", "\\|")
    if not line:
        return "*(empty)*"
    longest = max((len(run) for run in re.findall(r"`+", line)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if line.startswith("`") or line.endswith("`") or line.strip() == "" else ""
    return f"{fence}{pad}{line}{pad}{fence}"


_URL_UNSAFE = {c: f"%{ord(c):02X}" for c in " ()<>[]|`\"'\\"}


def md_url(url: str) -> str | None:
    """A URL usable as a markdown link target, or None when it is not http(s)."""
    url = _visible(url)
    if not re.match(r"^https?://", url, re.IGNORECASE):
        return None
    return "".join(_URL_UNSAFE.get(char, char) for char in url)


def md_link(label: str, url: str) -> str:
    """A link whose label is `label` in a code span; just the label when the URL is unusable."""
    target = md_url(url)
    return f"[{md_code(label, table=False)}]({target})" if target else md_code(label, table=False)


def mermaid_label(text: str, limit: int = _MAX_LABEL) -> str:
    """A double-quoted Mermaid string: only letters, digits and ` _.:/()+-`, cut short."""
    return f'"{_mermaid_text(text, limit)}"'


def _mermaid_text(text: str, limit: int) -> str:
    cleaned = _MERMAID_SAFE.sub("_", _visible(text))
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 2] + ".."


def _number(value: float | None) -> str:
    return f"{value:.4g}" if _usable(value) else "—"


def _signed(value: float | None) -> str:
    return f"{value:+.4g}" if _usable(value) else "—"


def _mermaid_number(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _goal(threshold: MetricThreshold) -> str:
    bounds = []
    if threshold.min is not None:
        bounds.append(f"≥ {threshold.min:g}")
    if threshold.max is not None:
        bounds.append(f"≤ {threshold.max:g}")
    direction = "higher is better" if higher_is_better(threshold) else "lower is better"
    return f"{direction} ({', '.join(bounds)})" if bounds else direction


def _stand_title(stand: StandModel) -> str:
    return f"{stand.stand} v{stand.version}" if stand.version else f"{stand.stand} (nothing)"


# --- markdown -------------------------------------------------------------------------------


def render_note(context: NoteContext, comparisons: Sequence[ModelComparison]) -> str:
    """The note's markdown (without the marker, which the GitLab adapter puts first)."""
    text = _text_code
    commit = f", commit {text(context.commit[:12])}" if context.commit else ""
    pipeline = md_url(context.pipeline_url)
    pipeline = f" ([pipeline]({pipeline}))" if pipeline else ""
    lines = [
        "### modelci: this branch's models against the stands",
        "",
        f"Branch {text(context.branch)} (environment {text(context.environment)})"
        f"{commit}{pipeline}. This note is updated by every pipeline of the merge request.",
        "",
    ]
    for comparison in comparisons:
        lines.extend(_model_section(comparison, context))
    return "\n".join(lines).rstrip() + "\n"


def _model_section(comparison: ModelComparison, context: NoteContext) -> list[str]:
    lines = [f"#### Model {_text_code(comparison.model)}", ""]
    candidate = comparison.candidate
    if candidate is None:
        reason = comparison.no_candidate_reason or "no run of this branch passed the gate"
        lines += [f"**No candidate**: {_text_code(_cut(reason))}", ""]
    else:
        how = "pinned by hand (`modelci.pin`)" if candidate.pinned else "newest run that passed"
        lines += [
            f"Candidate: run {md_link(candidate.run_id[:12], candidate.run_url)}, {how}; "
            f"quality gate {_gate_verdict(candidate)}",
            "",
        ]
    lines += [f"**On merge**: {_promotion_text(comparison)}", ""]
    lines += _metrics_table(comparison)
    lines += _chart(comparison)
    lines += _links(comparison, context)
    return lines


def _text_code(text: str) -> str:
    return md_code(text, table=False)


def already_served(comparison: ModelComparison) -> bool:
    """The first stand already serves the version the merge would give it."""
    promotion, candidate = comparison.promotion, comparison.candidate
    first = comparison.stands[0] if comparison.stands else None
    return (
        promotion is not None
        and first is not None
        and candidate is not None
        and first.version == promotion.version
        and first.run_id == candidate.run_id
    )


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_REASONS else text[: _MAX_REASONS - 3] + "..."


def _gate_verdict(candidate: Candidate) -> str:
    if candidate.gate == GATE_PASSED:
        verdict = "✅ **passed**"
    elif candidate.gate == GATE_FAILED:
        verdict = "❌ **failed**"
    else:
        verdict = "⚪ **not evaluated**"
    if candidate.gate_reasons:
        verdict += f": {_text_code(_cut(candidate.gate_reasons))}"
    return verdict


def _promotion_text(comparison: ModelComparison) -> str:
    promotion = comparison.promotion
    registered = _text_code(comparison.registered_model)
    if promotion is None:
        if not comparison.stands:
            return "nothing is promoted: `mlops.yaml` has no stand."
        return "nothing is promoted: there is no candidate."
    stand = _text_code(promotion.stand)
    candidate = comparison.candidate
    if already_served(comparison):
        return f"{stand} already serves version {promotion.version} of {registered}."
    origin = (
        "already registered from the candidate run"
        if promotion.already_registered
        else "a new version, registered from the candidate run"
    )
    text = f"{stand} will serve version **{promotion.version}** of {registered} ({origin})"
    if promotion.manual:
        text += ", once the manual promotion job of the merge pipeline is run"
    text += "."
    if candidate is not None and candidate.gate != GATE_PASSED:
        text += " ⚠️ The candidate did not pass the quality gate."
    return text


def _metrics_table(comparison: ModelComparison) -> list[str]:
    if not comparison.thresholds:
        return ["No gated metric in `mlops.yaml`.", ""]
    header = ["metric", "goal", "candidate"]
    for stand in comparison.stands:
        title = md_code(_stand_title(stand))
        header += [title, f"Δ vs {md_code(stand.stand)}"]
    rows = [header, ["---"] * len(header)]
    per_stand = [deltas(comparison, stand) for stand in comparison.stands]
    metrics = comparison.candidate.metrics if comparison.candidate else {}
    for index, threshold in enumerate(comparison.thresholds):
        candidate_value = metrics.get(threshold.name)
        row = [md_code(threshold.name), _goal(threshold), _number(candidate_value)]
        for stand_deltas in per_stand:
            delta = stand_deltas[index]
            mark = _MARKS[delta.verdict]
            shown = f"{_signed(delta.delta)} {mark}" if delta.delta is not None else mark
            row += [_number(delta.stand), shown]
        rows.append(row)
    return ["| " + " | ".join(row) + " |" for row in rows] + [""]


def chart_points(comparison: ModelComparison) -> list[tuple[str, float]]:
    """(label, value) bars: each gated metric for the candidate and each stand, where known."""
    points = []
    metrics = comparison.candidate.metrics if comparison.candidate else {}
    for threshold in comparison.thresholds:
        sources = [("candidate", metrics)] + [
            (stand.stand, stand.metrics) for stand in comparison.stands if stand.version
        ]
        for who, values in sources:
            value = values.get(threshold.name)
            if _usable(value):
                label = f"{_mermaid_text(threshold.name, _MAX_METRIC_LABEL)} {who}"
                points.append((label, float(value)))
    return points


def render_chart(comparison: ModelComparison) -> str:
    """A Mermaid `xychart-beta` bar chart (GitLab renders it), "" when there is nothing to
    draw. One bar per (metric, candidate or stand): Mermaid draws several bar series on top
    of each other, so the pairs sit side by side instead."""
    points = chart_points(comparison)
    if not points:
        return ""
    labels = ", ".join(mermaid_label(label) for label, _ in points)
    values = ", ".join(_mermaid_number(value) for _, value in points)
    low = min(0.0, *(value for _, value in points))
    high = max(value for _, value in points)
    high = high * 1.1 if high > 0 else 1.0
    title = mermaid_label(f"{comparison.model}: candidate vs stands")
    return "\n".join(
        [
            "```mermaid",
            "xychart-beta",
            f"    title {title}",
            f"    x-axis [{labels}]",
            f'    y-axis "value" {_mermaid_number(low)} --> {_mermaid_number(high)}',
            f"    bar [{values}]",
            "```",
        ]
    )


def _chart(comparison: ModelComparison) -> list[str]:
    chart = render_chart(comparison)
    return [chart, ""] if chart else []


def _links(comparison: ModelComparison, context: NoteContext) -> list[str]:
    links = []
    if comparison.candidate is not None:
        links.append(Link("candidate run (MLflow)", comparison.candidate.run_url))
    for stand in comparison.stands:
        if stand.version and stand.run_url:
            links.append(Link(f"{stand.stand} v{stand.version} run (MLflow)", stand.run_url))
    links.extend(comparison.links)
    if context.gitlab_environment_url:
        links.append(Link("GitLab environment", context.gitlab_environment_url))
    if not links:
        return []
    return ["Links: " + " · ".join(md_link(link.label, link.url) for link in links), ""]


# --- the job log ----------------------------------------------------------------------------


def render_log(context: NoteContext, comparisons: Sequence[ModelComparison]) -> str:
    """Plain lines for the job log (control characters of user strings escaped)."""
    out = [f"branch {_visible(context.branch)}, environment {_visible(context.environment)}"]
    for comparison in comparisons:
        out.append("")
        out.append(f"model {_visible(comparison.model)} ({_visible(comparison.registered_model)})")
        candidate = comparison.candidate
        if candidate is None:
            out.append(f"  no candidate: {_visible(comparison.no_candidate_reason)}")
        else:
            gate = candidate.gate or "not evaluated"
            pinned = ", pinned" if candidate.pinned else ""
            out.append(f"  candidate run {candidate.run_id}{pinned}: gate {_visible(gate)}")
            if candidate.gate_reasons:
                out.append(f"    {_visible(_cut(candidate.gate_reasons))}")
        out.append("  on merge: " + _log_promotion(comparison))
        for stand in comparison.stands:
            served = f"version {stand.version} (run {stand.run_id or '?'})"
            out.append(f"  {stand.stand}: " + (served if stand.version else "serves nothing"))
            for delta in deltas(comparison, stand):
                out.append(
                    f"    {_visible(delta.name):<24} candidate {_number(delta.candidate):>10}"
                    f"  {stand.stand} {_number(delta.stand):>10}"
                    f"  delta {_signed(delta.delta):>10}  {delta.verdict}"
                )
        for link in _log_links(comparison, context):
            out.append(f"  {link.label}: {_visible(link.url)}")
    return "\n".join(out)


def _log_promotion(comparison: ModelComparison) -> str:
    promotion = comparison.promotion
    if promotion is None:
        return "nothing is promoted"
    if already_served(comparison):
        return f"{promotion.stand} already serves version {promotion.version}"
    manual = " (after the manual promotion job)" if promotion.manual else ""
    return (
        f"{promotion.stand} will serve version {promotion.version} of "
        f"{_visible(comparison.registered_model)}{manual}"
    )


def _log_links(comparison: ModelComparison, context: NoteContext) -> list[Link]:
    links = []
    if comparison.candidate is not None and comparison.candidate.run_url:
        links.append(Link("candidate run", comparison.candidate.run_url))
    links += [
        Link(f"{s.stand} run", s.run_url) for s in comparison.stands if s.version and s.run_url
    ]
    links += list(comparison.links)
    if context.gitlab_environment_url:
        links.append(Link("GitLab environment", context.gitlab_environment_url))
    return links
