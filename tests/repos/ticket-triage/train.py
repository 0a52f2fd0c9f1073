"""Route support tickets to a team. Autologging records the parameters, metrics and model."""

import mlflow
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from tickets import tickets

mlflow.sklearn.autolog()

texts, teams = tickets(3000, seed=11)
x_train, x_test, y_train, y_test = train_test_split(texts, teams, random_state=0)

with mlflow.start_run():
    model = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=200))
    model.fit(x_train, y_train)
    mlflow.log_metric("test_f1", f1_score(y_test, model.predict(x_test), average="macro"))
