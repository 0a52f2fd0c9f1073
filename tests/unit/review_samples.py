"""A complete review of one model, built from the review's own dataclasses: shared by the unit
tests of the note and by the browser test that renders it."""

from __future__ import annotations

from modelci.config.types import MetricThreshold
from modelci.review.behaviour import Row, compare_predictions
from modelci.review.changes import Dataset, RunFacts
from modelci.review.charts import metric_history
from modelci.review.contract import Acknowledgement, Column, Signature, diff_contract
from modelci.review.cost import ServingCost
from modelci.review.note import (
    Candidate,
    ModelComparison,
    ModelReview,
    NoteContext,
    Promotion,
    StandModel,
)
from modelci.review.parts import Part

ACCURACY = MetricThreshold(name="accuracy", min=0.7)
LOG_LOSS = MetricThreshold(name="log_loss", max=0.6)
LATENCY = MetricThreshold(name="latency_ms", max=25000.0)  # another scale entirely
CONTEXT = NoteContext(
    branch="feature/rename",
    environment="b-feature-rename-0123456789",
    commit="a" * 40,
    pipeline_url="https://gitlab.example.com/ml/churn/-/pipelines/42",
)
PRODUCTION_SIGNATURE = Signature(
    inputs=(Column("tenure", "double"), Column("calls", "long"), Column("plan", "string")),
    outputs=(Column("#0", "tensor bool (-1)"),),
)
RENAMED_SIGNATURE = Signature(
    inputs=(Column("tenure_months", "double"), Column("calls", "long"), Column("plan", "string")),
    outputs=(Column("#0", "tensor bool (-1)"),),
)
LOCK = "mlflow==3.17.2\nnumpy==2.4.6\nscikit-learn==1.9.1\n"


NOT_ACKNOWLEDGED = Acknowledgement()


def rows(count: int) -> list[Row]:
    return [
        Row("input example", i, {"tenure_months": i * 1.5, "calls": i, "plan": "basic"})
        for i in range(count)
    ]


def cost(single: float, batch: float, size: int, memory: int | None) -> ServingCost:
    return ServingCost(
        model_bytes=size,
        load_seconds=3.25,
        single_ms=[single, single * 1.1, single * 2],
        batch_ms=[batch, batch * 1.2],
        batch_rows=5,
        peak_memory_bytes=memory,
    )


def full_review(ack: Acknowledgement = NOT_ACKNOWLEDGED, online: bool = True) -> ModelReview:
    candidate_predictions = [True, False, True, True, False]
    production_predictions = [True, True, True, True, False]
    behaviour = compare_predictions(
        rows(5), candidate_predictions, production_predictions, {"tenure": "tenure_months"}
    )
    histories = (
        metric_history(ACCURACY, [("1", 0.75), ("2", 0.8125), ("3", 0.79)], 0.84),
        metric_history(LOG_LOSS, [("1", 0.52), ("3", 0.41)], 0.39),
        metric_history(LATENCY, [("2", 12000.0)], 21000.5),
    )
    candidate_facts = RunFacts(
        {"accuracy": 0.84, "log_loss": 0.39, "f1": 0.8},
        {"c": "0.2", "rows": "3000"},
        (Dataset("train", "abc123", "training", "code", 3000),),
        LOCK.replace("numpy==2.4.6", "numpy==2.5.0") + "skops==0.16.0\n",
    )
    production_facts = RunFacts(
        {"accuracy": 0.79, "log_loss": 0.41, "f1": 0.78},
        {"c": "0.5", "rows": "3000"},
        (Dataset("train", "def456", "training", "code", 2500),),
        LOCK,
    )
    return ModelReview(
        production="production",
        production_version="3",
        online=online,
        flavor="sklearn",
        ack=ack,
        contract=Part("contract", 0.2, diff_contract(RENAMED_SIGNATURE, PRODUCTION_SIGNATURE)),
        behaviour=Part("behaviour and cost", 14.5, behaviour),
        cost=Part(
            "behaviour and cost",
            14.5,
            (cost(48.0, 95.5, 40_000_000, 350_000_000), cost(2.5, 3.0, 9_000, 300_000_000)),
        ),
        changes=Part("changes", 0.4, (candidate_facts, production_facts)),
        charts=Part("charts", 0.3, histories),
    )


def full_comparison(review: ModelReview | None = None) -> ModelComparison:
    return ModelComparison(
        model="churn",
        registered_model="ml-churn-abcdef.churn",
        thresholds=(ACCURACY, LOG_LOSS, LATENCY),
        candidate=Candidate(
            run_id="c" * 32,
            run_url="https://mlflow.example.com/#/experiments/1/runs/" + "c" * 32,
            metrics={"accuracy": 0.84, "log_loss": 0.39, "latency_ms": 21000.5},
            gate="passed",
        ),
        stands=(
            StandModel("staging", "3", "s" * 32, "", {"accuracy": 0.79, "log_loss": 0.41}),
            StandModel("production", "3", "s" * 32, "", {"accuracy": 0.79, "log_loss": 0.41}),
        ),
        promotion=Promotion("staging", "4", already_registered=False),
        review=review if review is not None else full_review(),
    )
