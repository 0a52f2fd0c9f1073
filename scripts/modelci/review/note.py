"""The merge request's review: this branch's candidate model against what each stand serves,
as the markdown of one merge request note and as plain lines for the job log.

Pure: dataclasses in, text out; no I/O. `modelci compare` gathers the data. Each part of the
review (input contract, behaviour, cost, what changed, charts) renders itself in its own
module; a part that could not be computed is shown with its reason; the job log says how long
each part took. The note stays under `MAX_NOTE_CHARS`.

Escaping: see `markdown.py`; every user string goes through it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config.types import MetricThreshold
from ..lifecycle.gate import higher_is_better
from ..systems.tracking import GATE_FAILED, GATE_PASSED  # tag values only: mlflow is not imported
from .behaviour import Behaviour, render_behaviour
from .changes import RunFacts, render_changes
from .charts import MetricHistory, render_metric_chart
from .contract import Acknowledgement, ContractDiff, render_contract
from .cost import ServingCost, render_cost
from .markdown import (
    cut,
    md_code,
    md_link,
    md_url,
    mermaid_label,
    seconds,
    shown,
    signed,
    text_code,
    visible,
)
from .parts import Part

NOTE_MARKER = "<!-- modelci:compare -->"
MAX_NOTE_CHARS = 60_000  # GitLab takes a million; a reviewer reads far less

BETTER, WORSE, SAME, UNKNOWN = "better", "worse", "same", "n/a"
_MARKS = {BETTER: "✅ better", WORSE: "❌ worse", SAME: "= same", UNKNOWN: "n/a"}

__all__ = ["md_code", "md_url", "mermaid_label"]  # re-exported: the escaping's tests use them


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
    review: ModelReview | None = None  # None: not reviewed (no candidate)

    def contract_failure(self) -> list[str]:
        """Why the merge request's check fails on this model's input contract ([] when it
        does not): a breaking change of an online model, not acknowledged."""
        review = self.review
        if review is None or not review.online or review.ack.how or review.contract.value is None:
            return []
        return review.contract.value.breaking()


@dataclass(frozen=True)
class ModelReview:
    """The candidate against `production` (the last stand), part by part."""

    production: str
    production_version: str | None  # None: the stand serves nothing
    online: bool  # served by a model API: a breaking input change fails the check
    flavor: str
    ack: Acknowledgement
    contract: Part[ContractDiff]
    behaviour: Part[Behaviour]
    cost: Part[tuple[ServingCost, ServingCost]]  # (candidate, production)
    changes: Part[tuple[RunFacts, RunFacts]]  # (candidate, production)
    charts: Part[tuple[MetricHistory, ...]]

    def parts(self) -> list[Part[Any]]:
        return [self.contract, self.behaviour, self.cost, self.changes, self.charts]


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
    return value is not None and value == value and abs(value) != float("inf")


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


# --- formatting ---------------------------------------------------------------------------

_number = shown
_signed = signed
_visible = visible
_cut = cut
_text_code = text_code


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
    """The note's markdown (without the marker, which the GitLab adapter puts first), at most
    `MAX_NOTE_CHARS` long: the detailed tables go first when it would be longer."""
    note = _note(context, comparisons, detailed=True)
    if len(note) <= MAX_NOTE_CHARS:
        return note
    note = _note(context, comparisons, detailed=False)
    if len(note) <= MAX_NOTE_CHARS:
        return note
    return _hard_cut(note)


def _note(context: NoteContext, comparisons: Sequence[ModelComparison], detailed: bool) -> str:
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
    if not detailed:
        lines += [
            f"*The detailed tables are left out to keep this note under {MAX_NOTE_CHARS} "
            "characters; the compare job's log has them.*",
            "",
        ]
    for comparison in comparisons:
        lines.extend(_model_section(comparison, context, detailed))
    return "\n".join(lines).rstrip() + "\n"


def _hard_cut(note: str) -> str:
    """The note's first lines within the bound, never ending inside a code block."""
    tail = "\n*(cut: the note would be longer than the bound; the job log has it all)*\n"
    kept: list[str] = []
    length, fenced, last_safe = 0, False, 0
    for line in note.splitlines():
        length += len(line) + 1
        if length > MAX_NOTE_CHARS - len(tail):
            break
        kept.append(line)
        if line.startswith("```"):
            fenced = not fenced
        if not fenced:
            last_safe = len(kept)
    return "\n".join(kept[:last_safe]) + "\n" + tail


def _model_section(comparison: ModelComparison, context: NoteContext, detailed: bool):
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
    if comparison.review is not None:
        lines += _review(comparison.review, comparison.thresholds, detailed)
    lines += _links(comparison, context)
    return lines


def _review(
    review: ModelReview, thresholds: Sequence[MetricThreshold], detailed: bool
) -> list[str]:
    version = review.production_version
    against = f"{review.production} v{version}" if version else f"{review.production} (nothing)"
    contract, behaviour, cost = review.contract, review.behaviour, review.cost
    changes, charts = review.changes, review.charts
    lines = _part(
        f"Input contract against {text_code(against)}",
        contract,
        lambda diff: render_contract(
            diff,
            production=against,
            online=review.online,
            flavor=review.flavor,
            ack=review.ack,
        ),
    )
    lines += _part(
        f"Behaviour against {text_code(against)} on the same rows",
        behaviour,
        lambda value: render_behaviour(_shortened(value, detailed), against),
    )
    lines += _part("Cost of serving", cost, lambda pair: render_cost(pair[0], pair[1], against))
    lines += _part(
        f"Gated metrics across {text_code(review.production)}'s versions",
        charts,
        lambda histories: (
            [
                line
                for history in histories
                for line in render_metric_chart(history, review.production)
            ]
            or ["No gated metric has a value to draw.", ""]
        ),
    )
    if detailed:
        lines += _part(
            f"What changed against {text_code(against)}",
            changes,
            lambda pair: render_changes(pair[0], pair[1], [t.name for t in thresholds], against),
        )
    # How long each part took is in the job log only: a note that changed at every pipeline
    # would be edited (and notified) each time for nothing.
    return lines


def _shortened(behaviour: Behaviour, detailed: bool) -> Behaviour:
    if detailed:
        return behaviour
    from dataclasses import replace

    return replace(behaviour, differing=())


def _part(title: str, part: Part[Any], render) -> list[str]:
    lines = [f"##### {title}", ""]
    if part.value is None:
        return [*lines, f"Not available: {text_code(_cut(part.reason or 'unknown'))}", ""]
    return lines + render(part.value)


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
        if comparison.review is not None:
            out.extend(_log_review(comparison))
        for link in _log_links(comparison, context):
            out.append(f"  {link.label}: {_visible(link.url)}")
    return "\n".join(out)


def _log_review(comparison: ModelComparison) -> list[str]:
    review = comparison.review
    took = {part.title: part.seconds for part in review.parts()}  # one entry per run
    timings = ", ".join(f"{title} {seconds(spent)}" for title, spent in took.items())
    version = review.production_version
    against = f"{review.production} v{version}" if version else f"{review.production} (nothing)"
    out = [f"  review against {against} (time taken: {timings}):"]
    for part in review.parts():
        state = _log_part(part) if part.value is not None else f"not available: {part.reason}"
        out.append(f"    {part.title} ({seconds(part.seconds)}): {_visible(_cut(state, 300))}")
    failure = comparison.contract_failure()
    if failure:
        out.append("    BREAKING CHANGE, not acknowledged: " + _visible("; ".join(failure)))
    elif review.ack.how and review.contract.value and review.contract.value.breaking():
        out.append(f"    breaking change acknowledged by the {_visible(review.ack.how)}")
    return out


def _log_part(part: Part[Any]) -> str:
    value = part.value
    if isinstance(value, ContractDiff):
        if value.candidate is None:
            return "the candidate has no signature"
        return "; ".join(value.breaking()) or ("changed" if value.changed else "same")
    if isinstance(value, Behaviour):
        if value.agreement is not None:
            return f"agreement {value.agreement * 100:.1f} % on {value.rows} rows"
        stats = ", ".join(f"{k} {shown(v)}" for k, v in value.differences.items())
        return f"differences on {value.rows} rows: {stats}"
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], ServingCost):
        from .cost import percentile

        ours, theirs = value
        return (
            f"p50 1 row {shown(percentile(ours.single_ms, 0.5))} ms against "
            f"{shown(percentile(theirs.single_ms, 0.5))} ms; load {shown(ours.load_seconds)} s "
            f"against {shown(theirs.load_seconds)} s"
        )
    return "done"


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
