"""Route the last hour's tickets with the model in MODEL_URI."""

import os

import mlflow.pyfunc
from tickets import tickets

model = mlflow.pyfunc.load_model(os.environ["MODEL_URI"])
texts, _ = tickets(200, seed=1)
for team in sorted(set(model.predict(texts))):
    print(team)
