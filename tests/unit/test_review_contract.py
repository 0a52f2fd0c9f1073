"""The input contract: the MLmodel signature against production's, what breaks an API's
clients, the acknowledgement, and how the note says it."""

from __future__ import annotations

import json

from modelci.review.contract import (
    ACK_LABEL,
    ACK_VARIABLE,
    Acknowledgement,
    Column,
    acknowledgement,
    diff_contract,
    render_contract,
    signature_of,
)

NOT_ACKNOWLEDGED = Acknowledgement()


def mlmodel(inputs: list[dict], outputs: list[dict] | None = None) -> dict:
    """An MLmodel document as MLflow writes it: the specs are JSON strings."""
    outputs = outputs or [{"type": "tensor", "tensor-spec": {"dtype": "bool", "shape": [-1]}}]
    return {
        "flavors": {"python_function": {}},
        "signature": {"inputs": json.dumps(inputs), "outputs": json.dumps(outputs), "params": None},
    }


BASE = [
    {"type": "double", "name": "tenure", "required": True},
    {"type": "long", "name": "calls", "required": True},
    {"type": "string", "name": "plan", "required": True},
]


def diff(candidate: list[dict], production: list[dict] = BASE, **outputs):
    return diff_contract(
        signature_of(mlmodel(candidate, outputs.get("candidate_outputs"))),
        signature_of(mlmodel(production, outputs.get("production_outputs"))),
    )


def render(d, online=True, ack=NOT_ACKNOWLEDGED) -> str:
    lines = render_contract(d, production="production v3", online=online, flavor="sklearn", ack=ack)
    return "\n".join(lines)


def test_signature_is_read_from_mlflow_json_strings_and_tensors():
    tensor = [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 8]}}]
    signature = signature_of(mlmodel(tensor))
    assert signature.inputs == (Column("#0", "tensor float64 (-1, 8)"),)
    assert signature_of({"flavors": {}}) is None
    assert signature_of({"signature": {"inputs": None}}) is None
    optional = signature_of(mlmodel([{"type": "double", "name": "x", "required": False}]))
    assert optional.inputs[0].required is False


def test_same_inputs_break_nothing():
    same = diff(BASE)
    assert not same.changed and same.breaking() == []
    assert "✅ Same inputs and outputs as `production v3`." in render(same)


def test_removed_retyped_and_new_required_inputs_break_clients():
    changed = diff(
        [
            {"type": "string", "name": "tenure"},  # retyped
            {"type": "long", "name": "calls"},  # plan removed
            {"type": "double", "name": "region_id"},  # new, required
            {"type": "double", "name": "promo", "required": False},  # new, optional: fine
        ]
    )
    assert changed.breaking() == [
        "input `plan` is removed",
        "input `tenure` is now string (was double)",
        "input `region_id` is new and required",
    ]
    text = render(changed)
    assert "❌ **Breaking change**" in text and f"`{ACK_LABEL}`" in text
    assert f"`{ACK_VARIABLE}=true`" in text
    assert "| `tenure` | retyped | `double` | `string` |" in text
    assert "| `promo` | added | — | `promo: double (optional)` |" in text
    assert changed.renamed == {}  # signatures of different length: no guess


def test_an_optional_new_input_alone_is_compatible():
    added = diff([*BASE, {"type": "double", "name": "promo", "required": False}])
    assert added.changed and added.breaking() == []
    assert "compatibly" in render(added)


def test_a_rename_is_recognised_by_position_and_type():
    renamed = diff([{**BASE[0], "name": "tenure_months"}, *BASE[1:]])
    assert renamed.renamed == {"tenure": "tenure_months"}
    assert [c.name for c in renamed.removed] == ["tenure"]
    text = render(renamed)
    assert "Looks renamed (same position and type): `tenure` → `tenure_months`." in text


def test_a_changed_output_is_shown():
    changed = diff(
        BASE,
        candidate_outputs=[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}],
    )
    assert changed.outputs_changed and changed.breaking() == []
    assert "⚠️ Output changed: `#0: tensor bool (-1)` → `#0: tensor float64 (-1)`." in render(
        changed
    )


def test_acknowledged_or_offline_breaking_change_is_shown_not_failed():
    breaking = diff(BASE[:2])
    acknowledged = render(breaking, ack=Acknowledgement(f"label {ACK_LABEL}"))
    assert "⚠️ **Breaking change**" in acknowledged and f"`label {ACK_LABEL}`" in acknowledged
    assert "this check fails" not in acknowledged
    offline = render(breaking, online=False)
    assert "not served online, so the check does not fail" in offline


def test_acknowledgement_by_label_among_others_or_by_variable():
    assert acknowledgement(f"bug, {ACK_LABEL} ,ui", "").how == f"label {ACK_LABEL}"
    assert acknowledgement("bug", "true").how == f"variable {ACK_VARIABLE}=true"
    assert acknowledgement(f"{ACK_LABEL}-not", "no").how == ""
    assert acknowledgement("", "").how == ""


def test_a_candidate_without_signature_gets_the_line_that_adds_one():
    text = render(diff_contract(None, signature_of(mlmodel(BASE))))
    assert "**without a signature**" in text
    assert (
        'mlflow.sklearn.log_model(model, name="model", '
        "signature=mlflow.models.infer_signature(X, model.predict(X)))"
    ) in text
    assert "has no signature to compare with" in render(
        diff_contract(signature_of(mlmodel(BASE)), None)
    )


def test_hostile_column_names_stay_in_code_spans():
    hostile = "x|y`z\n| a | b |"
    text = render(diff([{"type": "double", "name": hostile}]))
    assert "\n| a | b |" not in text
    row = next(line for line in text.splitlines() if "added" in line)
    assert row.count(" | ") == 3  # four cells, none injected
