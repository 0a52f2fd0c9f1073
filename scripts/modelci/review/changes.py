"""What changed between production's run and the candidate's: every logged metric (the gated
ones marked), the parameters that differ, the training data's fingerprint (MLflow dataset
inputs) and the environment's lock (packages added, removed, moved to another version).

Pure: what MLflow and the locks say in, the note's markdown out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .markdown import cut, md_code, shown, signed, table, text_code

MAX_ROWS = 40
_LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#\\]+)")


@dataclass(frozen=True)
class Dataset:
    """An MLflow dataset input of a run."""

    name: str
    digest: str
    context: str = ""  # "training", "eval", ... (the mlflow.data.context tag)
    source_type: str = ""
    rows: int | None = None  # from the dataset's profile, when it says


@dataclass(frozen=True)
class RunFacts:
    metrics: Mapping[str, float]
    params: Mapping[str, str]
    datasets: Sequence[Dataset]
    lock: str | None  # the environment's requirements.lock; None when unknown


@dataclass(frozen=True)
class PackageChange:
    name: str
    production: str | None  # None: added
    candidate: str | None  # None: removed


def parse_lock(text: str) -> dict[str, str]:
    """`name==version` lines of a pip/uv lock, names normalised as pip does."""
    packages = {}
    for line in text.splitlines():
        match = _LOCK_LINE.match(line.strip())
        if match:
            packages[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return packages


def lock_changes(production: str, candidate: str) -> list[PackageChange]:
    theirs, ours = parse_lock(production), parse_lock(candidate)
    return [
        PackageChange(name, theirs.get(name), ours.get(name))
        for name in sorted(set(theirs) | set(ours))
        if theirs.get(name) != ours.get(name)
    ]


# --- markdown -------------------------------------------------------------------------------


def render_changes(
    candidate: RunFacts, production: RunFacts, gated: Sequence[str], stand: str
) -> list[str]:
    return (
        _metrics(candidate, production, gated, stand)
        + _params(candidate, production, stand)
        + _datasets(candidate, production, stand)
        + _lock(candidate, production, stand)
    )


def _bounded(rows: list[list[str]], width: int) -> list[list[str]]:
    if len(rows) <= MAX_ROWS:
        return rows
    return [*rows[:MAX_ROWS], [f"… {len(rows) - MAX_ROWS} more"] + [""] * (width - 1)]


def _metrics(candidate: RunFacts, production: RunFacts, gated: Sequence[str], stand: str):
    names = [n for n in gated if n in candidate.metrics or n in production.metrics]
    names += sorted((set(candidate.metrics) | set(production.metrics)) - set(gated))
    if not names:
        return ["**Metrics**: neither run logged any.", ""]
    rows = []
    for name in names:
        ours, theirs = candidate.metrics.get(name), production.metrics.get(name)
        delta = ours - theirs if ours is not None and theirs is not None else None
        mark = "gated" if name in gated else ""
        rows.append([md_code(name), mark, shown(theirs), shown(ours), signed(delta)])
    header = ["metric", "", md_code(stand), "candidate", "Δ"]
    return ["**Metrics** (all logged):", "", *table(header, _bounded(rows, len(header)))]


def _params(candidate: RunFacts, production: RunFacts, stand: str) -> list[str]:
    names = sorted(set(candidate.params) | set(production.params))
    differing = [n for n in names if candidate.params.get(n) != production.params.get(n)]
    if not differing:
        return [f"**Parameters**: the same {len(names)} as {text_code(stand)}.", ""]
    rows = [
        [
            md_code(name),
            _param(production.params.get(name)),
            _param(candidate.params.get(name)),
        ]
        for name in differing
    ]
    header = ["parameter", md_code(stand), "candidate"]
    same = len(names) - len(differing)
    title = f"**Parameters** that differ ({same} more are the same):"
    return [title, "", *table(header, _bounded(rows, len(header)))]


def _param(value: str | None) -> str:
    return "—" if value is None else md_code(cut(value, 120))


def _datasets(candidate: RunFacts, production: RunFacts, stand: str) -> list[str]:
    if not candidate.datasets and not production.datasets:
        return [
            "**Training data**: neither run logged a dataset input, so its fingerprint is "
            "unknown; the training code logs one with `mlflow.log_input("
            'mlflow.data.from_pandas(df, name="train"), context="training")`.',
            "",
        ]
    theirs = {(d.name, d.context): d for d in production.datasets}
    ours = {(d.name, d.context): d for d in candidate.datasets}
    rows = []
    for key in sorted(set(theirs) | set(ours)):
        before, after = theirs.get(key), ours.get(key)
        if before and after:
            verdict = "same" if before.digest == after.digest else "**changed**"
        else:
            verdict = "added" if after else "removed"
        rows.append(
            [
                md_code(key[0]),
                md_code(key[1]) if key[1] else "—",
                _dataset(before),
                _dataset(after),
                verdict,
            ]
        )
    header = ["dataset", "context", md_code(stand), "candidate", ""]
    return [
        "**Training data** (MLflow dataset inputs):",
        "",
        *table(header, _bounded(rows, len(header))),
    ]


def _dataset(dataset: Dataset | None) -> str:
    if dataset is None:
        return "—"
    rows = f", {dataset.rows} rows" if dataset.rows is not None else ""
    return md_code(f"{dataset.digest}{rows}")


def _lock(candidate: RunFacts, production: RunFacts, stand: str) -> list[str]:
    if candidate.lock is None or production.lock is None:
        missing = "the candidate's" if candidate.lock is None else f"{text_code(stand)}'s"
        return [f"**Environment**: {missing} lock is unknown (no environment archive).", ""]
    changes = lock_changes(production.lock, candidate.lock)
    if not changes:
        count = len(parse_lock(candidate.lock))
        return [f"**Environment**: the same lock ({count} packages).", ""]
    rows = [
        [
            md_code(c.name),
            md_code(c.production) if c.production else "—",
            md_code(c.candidate) if c.candidate else "—",
            _package_verdict(c),
        ]
        for c in changes
    ]
    header = ["package", md_code(stand), "candidate", ""]
    return [
        "**Environment** (the lock's changes):",
        "",
        *table(header, _bounded(rows, len(header))),
    ]


def _package_verdict(change: PackageChange) -> str:
    if change.production is None:
        return "added"
    if change.candidate is None:
        return "removed"
    return "moved"
