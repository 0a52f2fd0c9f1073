"""Train for whatever mlops.yaml a test drew: fits a small classifier, logs every gated metric
at a value its thresholds accept (read from mlops.yaml, MODELCI_MODEL names the model) and
the model with scikit-learn. Ignores its arguments, which the drawn config chose."""

import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import yaml
from sklearn.linear_model import LogisticRegression

with open("mlops.yaml", encoding="utf-8") as file:
    config = yaml.safe_load(file)
model_config = next(m for m in config["models"] if m["name"] == os.environ["MODELCI_MODEL"])


def passing(threshold: dict) -> float:
    low, high = threshold.get("min"), threshold.get("max")
    if low is not None and high is not None:
        return (low + high) / 2
    return low + 0.01 if low is not None else high - 0.01


rng = np.random.default_rng(0)
features = pd.DataFrame(rng.normal(size=(200, 3)), columns=["tenure", "amount", "is_new"])
model = LogisticRegression().fit(features, features["tenure"] > 0)

with mlflow.start_run():
    for threshold in model_config["gate"]["metrics"]:
        mlflow.log_metric(threshold["name"], passing(threshold))
    requirements = Path("requirements.txt").read_text(encoding="utf-8").split()
    mlflow.sklearn.log_model(
        model, name="model", input_example=features.head(2), pip_requirements=requirements
    )
