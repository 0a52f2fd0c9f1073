"""The model's input contract (the signature in its MLmodel file) against production's.

Pure: the MLmodel document in, a diff and its markdown out. For a model served online, an
input the API's clients send that the candidate no longer takes, or takes as another type, or
a new input it requires that they do not send, breaks those clients: the merge request's check
fails on it unless the merge request carries an acknowledgement (the label `ACK_LABEL` or the
CI/CD variable `ACK_VARIABLE`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .markdown import md_code, table, text_code

ACK_LABEL = "modelci-breaking-change"
ACK_VARIABLE = "MODELCI_ACCEPT_BREAKING_CHANGE"
MAX_ROWS = 40


@dataclass(frozen=True)
class Column:
    name: str  # "#<position>" for an unnamed tensor input
    type: str  # "double", "string", "tensor float64 (-1, 8)", ...
    required: bool = True


@dataclass(frozen=True)
class Signature:
    inputs: tuple[Column, ...]
    outputs: tuple[Column, ...]
    params: tuple[Column, ...] = ()


@dataclass(frozen=True)
class Retyped:
    name: str
    production: str
    candidate: str


@dataclass(frozen=True)
class ContractDiff:
    candidate: Signature | None  # None: the candidate was logged without a signature
    production: Signature | None  # None: production's model has none
    added: tuple[Column, ...] = ()
    removed: tuple[Column, ...] = ()
    retyped: tuple[Retyped, ...] = ()
    renamed: Mapping[str, str] = field(default_factory=dict)  # production name -> candidate's
    outputs_changed: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.retyped or self.outputs_changed)

    def breaking(self) -> list[str]:
        """Why the change breaks clients that send what production takes ([] when it does
        not): removed or retyped inputs, and new required ones."""
        reasons = [f"input `{c.name}` is removed" for c in self.removed]
        reasons += [
            f"input `{r.name}` is now {r.candidate} (was {r.production})" for r in self.retyped
        ]
        reasons += [f"input `{c.name}` is new and required" for c in self.added if c.required]
        return reasons


@dataclass(frozen=True)
class Acknowledgement:
    """How the merge request accepted a breaking change: "" when it did not."""

    how: str = ""


def signature_of(mlmodel: Mapping[str, Any]) -> Signature | None:
    """The signature of a parsed MLmodel document; None when it has none."""
    signature = mlmodel.get("signature") if isinstance(mlmodel, Mapping) else None
    if not isinstance(signature, Mapping) or not signature.get("inputs"):
        return None
    return Signature(
        inputs=_columns(signature.get("inputs")),
        outputs=_columns(signature.get("outputs")),
        params=_columns(signature.get("params")),
    )


def _columns(spec: Any) -> tuple[Column, ...]:
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError:
            return (Column("#0", f"unreadable: {spec[:80]}"),)
    if not isinstance(spec, list):
        return ()
    return tuple(_column(item, index) for index, item in enumerate(spec))


def _column(item: Any, index: int) -> Column:
    if not isinstance(item, Mapping):
        return Column(f"#{index}", str(item))
    name = str(item.get("name") or f"#{index}")
    kind = str(item.get("type", "?"))
    if kind == "tensor":
        tensor = item.get("tensor-spec") or {}
        shape = ", ".join(str(n) for n in tensor.get("shape", ()))
        kind = f"tensor {tensor.get('dtype', '?')} ({shape})"
    elif kind in ("array", "object", "map"):
        rest = {k: v for k, v in item.items() if k not in ("name", "required")}
        kind = json.dumps(rest, sort_keys=True, separators=(",", ":"))
    return Column(name, kind, bool(item.get("required", True)))


def diff_contract(candidate: Signature | None, production: Signature | None) -> ContractDiff:
    if candidate is None or production is None:
        return ContractDiff(candidate, production)
    theirs = {c.name: c for c in production.inputs}
    ours = {c.name: c for c in candidate.inputs}
    removed = tuple(c for c in production.inputs if c.name not in ours)
    added = tuple(c for c in candidate.inputs if c.name not in theirs)
    retyped = tuple(
        Retyped(c.name, theirs[c.name].type, c.type)
        for c in candidate.inputs
        if c.name in theirs and theirs[c.name].type != c.type
    )
    return ContractDiff(
        candidate,
        production,
        added=added,
        removed=removed,
        retyped=retyped,
        renamed=_renames(production.inputs, candidate.inputs),
        outputs_changed=_plain(candidate.outputs) != _plain(production.outputs),
    )


def _plain(columns: Sequence[Column]) -> list[tuple[str, str]]:
    return [(c.name, c.type) for c in columns]


def _renames(production: Sequence[Column], candidate: Sequence[Column]) -> dict[str, str]:
    """Inputs that look renamed: same position, same type, another name, in signatures of the
    same length. Used only to give production the same rows; the note says so."""
    if len(production) != len(candidate):
        return {}
    ours = {c.name for c in candidate}
    theirs = {c.name for c in production}
    return {
        old.name: new.name
        for old, new in zip(production, candidate, strict=True)
        if old.name != new.name
        and old.type == new.type
        and old.name not in ours
        and new.name not in theirs
    }


def acknowledgement(labels: str, variable: str) -> Acknowledgement:
    """From GitLab's `CI_MERGE_REQUEST_LABELS` (comma-separated) and the CI/CD variable."""
    if ACK_LABEL in {label.strip() for label in labels.split(",")}:
        return Acknowledgement(f"label {ACK_LABEL}")
    if variable.strip().lower() in ("1", "true", "yes"):
        return Acknowledgement(f"variable {ACK_VARIABLE}={variable.strip()}")
    return Acknowledgement()


def signature_hint(flavor: str) -> str:
    """The one line of MLflow code that logs a model with a signature."""
    return (
        f'mlflow.{flavor or "pyfunc"}.log_model(model, name="model", '
        "signature=mlflow.models.infer_signature(X, model.predict(X)))"
    )


# --- markdown -------------------------------------------------------------------------------


def render_contract(
    diff: ContractDiff,
    *,
    production: str,
    online: bool,
    flavor: str,
    ack: Acknowledgement,
) -> list[str]:
    """The note's lines for the contract."""
    if diff.candidate is None:
        return [
            "⚠️ The candidate was logged **without a signature**: nobody can tell which input it "
            "accepts, and MLflow checks none. Log it with one:",
            "",
            "```python",
            signature_hint(flavor),
            "```",
            "",
        ]
    if diff.production is None:
        return [f"{text_code(production)} has no signature to compare with.", ""]
    if not diff.changed:
        return [f"✅ Same inputs and outputs as {text_code(production)}.", ""]
    lines = _verdict(diff, production, online, ack)
    rows = [[md_code(c.name), "added", "—", md_code(_typed(c))] for c in diff.added]
    rows += [[md_code(c.name), "removed", md_code(_typed(c)), "—"] for c in diff.removed]
    rows += [
        [md_code(r.name), "retyped", md_code(r.production), md_code(r.candidate)]
        for r in diff.retyped
    ]
    if len(rows) > MAX_ROWS:
        rows = [*rows[:MAX_ROWS], [f"… {len(rows) - MAX_ROWS} more", "", "", ""]]
    lines += table(["input", "change", md_code(production), "candidate"], rows)
    if diff.renamed:
        pairs = ", ".join(f"{text_code(a)} → {text_code(b)}" for a, b in diff.renamed.items())
        lines += [f"Looks renamed (same position and type): {pairs}.", ""]
    if diff.outputs_changed:
        theirs = ", ".join(_typed(c) for c in diff.production.outputs) or "none"
        ours = ", ".join(_typed(c) for c in diff.candidate.outputs) or "none"
        lines += [f"⚠️ Output changed: {text_code(theirs)} → {text_code(ours)}.", ""]
    return lines


def _typed(column: Column) -> str:
    optional = "" if column.required else " (optional)"
    return f"{column.name}: {column.type}{optional}"


def _verdict(diff: ContractDiff, production: str, online: bool, ack: Acknowledgement) -> list[str]:
    breaking = diff.breaking()
    if not breaking:
        return [f"The inputs changed against {text_code(production)}, compatibly:", ""]
    if not online:
        return [
            f"The inputs changed against {text_code(production)} in a way that would break an "
            "API's clients; this model is not served online, so the check does not fail:",
            "",
        ]
    if ack.how:
        return [
            f"⚠️ **Breaking change** for the model API's clients, acknowledged by the "
            f"{text_code(ack.how)}:",
            "",
        ]
    return [
        "❌ **Breaking change** for the model API's clients: this check fails until the "
        f"merge request carries the label {text_code(ACK_LABEL)} (then run its pipeline again) "
        f"or the pipeline the variable {text_code(ACK_VARIABLE + '=true')}.",
        "",
    ]
