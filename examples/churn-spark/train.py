"""Train a churn classifier with Spark ML and log it to MLflow.

Plain PySpark and MLflow code: `SparkSession.builder.getOrCreate()` takes the master from how
it is started (local Spark in CI, the Spark Operator's cluster in the training DAG), and
`mlflow.start_run()` attaches to the run named by MLFLOW_RUN_ID when that is set. By hand:

    MLFLOW_TRACKING_URI=sqlite:///mlflow.db python train.py --rows 4000
"""

from __future__ import annotations

import argparse

import mlflow
import mlflow.spark
import pyspark
from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "late_payments"]


def customers(spark: SparkSession, rows: int, seed: int) -> DataFrame:
    """A synthetic customer table whose churn depends on the features (plus noise)."""
    table = spark.range(rows).select(
        (F.rand(seed) * 72).alias("tenure_months"),
        (F.rand(seed + 1) * 100 + 20).alias("monthly_charges"),
        F.floor(F.rand(seed + 2) * 6).alias("support_calls"),
        F.floor(F.rand(seed + 3) * 4).alias("late_payments"),
        F.randn(seed + 4).alias("noise"),
    )
    risk = (
        F.col("support_calls") * 0.6
        + F.col("late_payments") * 0.8
        - F.col("tenure_months") * 0.05
        + F.col("monthly_charges") * 0.01
        + F.col("noise") * 0.5
    )
    return table.withColumn("label", (risk > 1.0).cast("double")).drop("noise")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    spark = SparkSession.builder.appName("churn-spark").getOrCreate()
    train, test = customers(spark, args.rows, args.seed).randomSplit([0.75, 0.25], args.seed)
    pipeline = Pipeline(
        stages=[
            VectorAssembler(inputCols=FEATURES, outputCol="features"),
            LogisticRegression(maxIter=50),
        ]
    )
    with mlflow.start_run() as run:
        mlflow.log_params(
            {"rows": args.rows, "seed": args.seed, "master": spark.sparkContext.master}
        )
        model = pipeline.fit(train)
        predictions = model.transform(test)
        accuracy = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(predictions)
        mlflow.log_metric("accuracy", accuracy)
        # Listing requirements by hand skips MLflow's slow requirement inference.
        mlflow.spark.log_model(
            model,
            "model",  # mlflow.spark still takes the artifact path as its second argument
            pip_requirements=[f"mlflow=={mlflow.__version__}", f"pyspark=={pyspark.__version__}"],
        )
        print(f"run {run.info.run_id}: accuracy={accuracy:.3f} on {spark.sparkContext.master}")
    spark.stop()


if __name__ == "__main__":
    main()
