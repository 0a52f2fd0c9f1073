"""Score a day's customers with the model in MODEL_URI and write the scores.

The pipeline sets MODEL_URI (an s3:// or models:/ URI) for the pod that runs this script, and
MODELCI_OUTPUT_DIR: what is written there is uploaded to the environment's data prefix, where
the monitoring DAG reads it (mlops.yaml, `monitoring.data: scores/${ds}.csv`). By hand:

    MODEL_URI=runs:/<run id>/model python score.py --date 2026-12-01 --output-dir out
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path

import mlflow.pyfunc
from train import make_customers


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--date", default="", help="the day scored, YYYY-MM-DD (default: today)")
    parser.add_argument("--output-dir", default=os.environ.get("MODELCI_OUTPUT_DIR", "."))
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    model_uri = os.environ.get("MODEL_URI")
    if not model_uri:
        print("MODEL_URI is not set: give the URI of the model to score with.", file=sys.stderr)
        return 2
    day = date.fromisoformat(args.date) if args.date else date.today()
    model = mlflow.pyfunc.load_model(model_uri)
    # A new sample each day, from the same population the model was trained on; the label
    # (churned) stands in for the ground truth that arrives later in real life.
    customers, churned = make_customers(args.rows, seed=day.toordinal())
    scores = customers.assign(churn_predicted=model.predict(customers), churned=churned)
    churn_rate = scores["churn_predicted"].mean()
    print(f"scored {len(scores)} customers with {model_uri}: predicted churn rate {churn_rate:.3f}")
    output = Path(args.output_dir) / "scores" / f"{day.isoformat()}.csv"
    output.parent.mkdir(parents=True, exist_ok=True)
    scores.to_csv(output, index=False)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
