"""Fraud score: a hand-written rule score, logged as a custom MLflow pyfunc model."""

import argparse

import mlflow
import numpy as np
import pandas as pd
from transactions import transactions

parser = argparse.ArgumentParser()
parser.add_argument("--threshold", type=float, default=0.5)
threshold = parser.parse_args().threshold


class FraudScore(mlflow.pyfunc.PythonModel):
    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.Series:
        score = (
            0.5 * (np.log1p(model_input["amount"]) > 5)
            + 0.3 * model_input["foreign"].astype(float)
            + 0.2 * model_input["night"].astype(float)
        )
        return (score >= self.threshold).rename("flagged")


data = transactions(5000, seed=3)
features = data[["amount", "foreign", "night"]]
flagged = FraudScore(threshold).predict(None, features)
true_positives = float((flagged & data["fraud"]).sum())

with mlflow.start_run():
    mlflow.log_param("threshold", threshold)
    mlflow.log_metric("precision", true_positives / max(flagged.sum(), 1))
    mlflow.log_metric("recall", true_positives / max(data["fraud"].sum(), 1))
    mlflow.pyfunc.log_model(
        name="model",
        python_model=FraudScore(threshold),
        input_example=features.head(3),
        pip_requirements=["mlflow==3.17.2", "numpy==2.4.6", "pandas==3.1.1"],
        code_paths=["model/transactions.py"],
    )
