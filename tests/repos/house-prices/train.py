"""House prices: a ridge regression on a synthetic sample of sold houses."""

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def houses(rows: int = 4000) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "area_m2": rng.uniform(30, 250, rows),
            "rooms": rng.integers(1, 7, rows).astype("float64"),
            "age_years": rng.uniform(0, 80, rows),
            "distance_km": rng.uniform(0.5, 40, rows),
            "floor": rng.integers(0, 20, rows).astype("float64"),
            "has_garden": rng.integers(0, 2, rows).astype("float64"),
        }
    )
    price = (
        2500 * frame.area_m2
        + 8000 * frame.rooms
        - 900 * frame.age_years
        - 3000 * frame.distance_km
        + 15000 * frame.has_garden
        + rng.normal(0, 20000, rows)
    )
    return frame, pd.Series(price, name="price")


features, prices = houses()
x_train, x_test, y_train, y_test = train_test_split(features, prices, random_state=1)
model = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(x_train, y_train)
predicted = model.predict(x_test)

with mlflow.start_run():
    mlflow.log_param("alpha", 1.0)
    mlflow.log_metric("rmse", float(np.sqrt(mean_squared_error(y_test, predicted))))
    mlflow.log_metric("mae", float(mean_absolute_error(y_test, predicted)))
    mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(x_test, predicted),
        input_example=x_test.head(3),
    )
