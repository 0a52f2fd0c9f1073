"""Score today's customers with the model in MODEL_URI; with --monitor, check its accuracy.

The pipeline sets MODEL_URI (an s3:// or models:/ URI) for the pod that runs this script.
By hand:

    MODEL_URI=runs:/<run id>/model python score.py --output scores.csv
    MODEL_URI=... python score.py --monitor --min-accuracy 0.7
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date

import mlflow.pyfunc
from sklearn.metrics import accuracy_score
from train import make_customers


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--output", help="CSV file to write the scores to")
    parser.add_argument("--monitor", action="store_true", help="score labelled data and check it")
    parser.add_argument("--min-accuracy", type=float, default=0.7)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    model_uri = os.environ.get("MODEL_URI")
    if not model_uri:
        print("MODEL_URI is not set: give the URI of the model to score with.", file=sys.stderr)
        return 2
    model = mlflow.pyfunc.load_model(model_uri)
    # A new sample each day, from the same population the model was trained on.
    customers, churned = make_customers(args.rows, seed=date.today().toordinal())
    scores = customers.assign(churn_predicted=model.predict(customers))
    churn_rate = scores["churn_predicted"].mean()
    print(f"scored {len(scores)} customers with {model_uri}: predicted churn rate {churn_rate:.3f}")
    if args.output:
        scores.to_csv(args.output, index=False)
        print(f"wrote {args.output}")
    if args.monitor:
        accuracy = accuracy_score(churned, scores["churn_predicted"])
        print(f"accuracy on today's labelled sample: {accuracy:.3f} (minimum {args.min_accuracy})")
        if accuracy < args.min_accuracy:
            print("accuracy is below the minimum: retrain the model.", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
