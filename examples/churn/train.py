"""Train the churn classifier and log it to MLflow.

Plain MLflow code: it reads MLFLOW_TRACKING_URI and MLFLOW_EXPERIMENT_NAME from the
environment, and `mlflow.start_run()` attaches to the run named by MLFLOW_RUN_ID when that is
set. Run it by hand the same way CI does:

    MLFLOW_TRACKING_URI=sqlite:///mlflow.db python train.py --c 0.5
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import sklearn
import skops
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = [
    "tenure_months",
    "monthly_charges",
    "support_calls",
    "late_payments",
    "data_usage_gb",
    "contract_months_left",
    "num_products",
    "days_since_last_login",
]


POPULATION_SEED = 42  # every sample comes from the same customer population
POPULATION_ROWS = 20_000


def make_customers(rows: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """A sample of a synthetic customer table with a churn label (stands in for real data)."""
    features, labels = make_classification(
        n_samples=POPULATION_ROWS,
        n_features=len(FEATURES),
        n_informative=5,
        n_redundant=2,
        class_sep=1.5,
        flip_y=0.03,
        random_state=POPULATION_SEED,
    )
    picked = np.random.default_rng(seed).choice(POPULATION_ROWS, size=rows, replace=False)
    return (
        pd.DataFrame(features[picked], columns=FEATURES),
        pd.Series(labels[picked].astype(bool), name="churned"),
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--max-iter", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    features, labels = make_customers(args.rows, args.seed)
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.25, random_state=args.seed, stratify=labels
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=args.c, max_iter=args.max_iter))

    with mlflow.start_run() as run:
        mlflow.log_params(
            {
                "rows": args.rows,
                "c": args.c,
                "max_iter": args.max_iter,
                "seed": args.seed,
            }
        )
        model.fit(x_train, y_train)
        predictions = model.predict(x_test)
        metrics = {
            "accuracy": accuracy_score(y_test, predictions),
            "f1": f1_score(y_test, predictions),
        }
        mlflow.log_metrics(metrics)
        # Listing requirements by hand skips MLflow's slow requirement inference.
        mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=x_test.head(5),
            pip_requirements=[
                f"mlflow=={mlflow.__version__}",
                f"scikit-learn=={sklearn.__version__}",
                f"skops=={skops.__version__}",
                f"pandas=={pd.__version__}",
                f"numpy=={np.__version__}",
            ],
        )
        # The data the model was trained on, with its scores: the monitoring's reference.
        reference = x_train.assign(churn_predicted=model.predict(x_train), churned=y_train)
        with tempfile.TemporaryDirectory() as where:
            path = Path(where) / "reference.csv"
            reference.to_csv(path, index=False)
            mlflow.log_artifact(str(path))
        summary = ", ".join(f"{key}={value:.3f}" for key, value in metrics.items())
        print(f"run {run.info.run_id}: {summary}")


if __name__ == "__main__":
    main()
