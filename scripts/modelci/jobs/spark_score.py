"""Score one day of a feature table with an MLflow model on Spark: the main application file of
a Spark scoring DAG's SparkApplication (`batch.dags[]` with `engine: spark`).

It runs in the model's own environment archive on the driver and on every executor, where
modelci is not installed: it imports only the standard library, pyspark and mlflow (with the
pandas and pyarrow that mlflow.pyfunc.spark_udf needs).

What it does, in order:
1. the day's input partition, `<input>/<partition>=<date>` (Parquet), must exist and hold files;
2. its columns are held against the model's signature: every required input column present,
   each of a Spark type the signature's type accepts. Any problem stops the run here, naming
   every missing or mistyped column, before an executor scores a row or anything is written;
3. the model scores every row through `mlflow.pyfunc.spark_udf` (the executors already run the
   model's environment, so `env_manager="local"`), its columns passed as a struct so the model
   sees them by name, as a pod's `model.predict(frame)` does;
4. the input's columns and the prediction are written to `<output>/<partition>=<date>/` with
   dynamic partition overwrite: a re-run of a day replaces that day and no other. The day is
   one Parquet file, `scores.parquet` (DAY_FILE): scoring runs on every executor, one task
   writes, and the monitoring DAG reads the day the way it reads a scoring pod's file.

Run by hand with local Spark, in the model's environment:

    PYSPARK_SUBMIT_ARGS="--master local[2] pyspark-shell" python spark_score.py \
        --model-uri runs:/<run id>/model --input s3a://features/customers --partition ds \
        --date 2026-12-01 --output s3a://data/scores --prediction churn_predicted
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from datetime import date
from typing import Any

DAY_FILE = "scores.parquet"
FORMATS = ("parquet",)
EXIT_REFUSED = 2
# The Spark types a column may have for each type of an MLflow signature's column: the type
# itself and the ones MLflow's schema enforcement widens to it without loss.
ACCEPTED_TYPES = {
    "boolean": ("boolean",),
    "integer": ("byte", "short", "integer"),
    "long": ("byte", "short", "integer", "long"),
    "float": ("byte", "short", "float"),
    "double": ("byte", "short", "integer", "float", "double"),
    "string": ("string",),
    "binary": ("binary",),
    "datetime": ("date", "timestamp", "timestamp_ntz"),
}
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ScoringRefused(Exception):
    """The day cannot be scored as asked; nothing was scored or written."""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-uri", required=True, help="the MLflow model to score with")
    parser.add_argument("--input", required=True, help="the feature table, partitioned by date")
    parser.add_argument("--format", default="parquet", choices=FORMATS)
    parser.add_argument("--partition", required=True, help="the input's date partition column")
    parser.add_argument("--date", required=True, help="the day scored, YYYY-MM-DD")
    parser.add_argument("--output", required=True, help="where the predictions go, by date")
    parser.add_argument("--prediction", required=True, help="the column of the predictions")
    args = parser.parse_args(list(argv))
    try:
        date.fromisoformat(args.date)
    except ValueError:
        parser.error(
            f"--date {args.date!r} is not a day (YYYY-MM-DD); nothing was scored. A DAG run "
            "without a logical date has none: trigger it with one"
        )
    for name in ("partition", "prediction"):
        if not _COLUMN.match(getattr(args, name)):
            parser.error(f"--{name} {getattr(args, name)!r} is not a plain column name")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.appName(f"modelci scoring {args.date}")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .getOrCreate()
    )
    try:
        rows = score_day(spark, args)
    except ScoringRefused as refused:
        print(f"modelci spark scoring: error: {refused}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        spark.stop()
    print(f"scored {rows} rows of {args.date} into {day_directory(args)}/{DAY_FILE}")
    return 0


def input_day(args: argparse.Namespace) -> str:
    return f"{args.input.rstrip('/')}/{args.partition}={args.date}"


def day_directory(args: argparse.Namespace) -> str:
    return f"{args.output.rstrip('/')}/{args.partition}={args.date}"


def score_day(spark: Any, args: argparse.Namespace) -> int:
    """Check, score and write the day; the number of rows written."""
    import mlflow.pyfunc
    from pyspark.sql import functions

    source = input_day(args)
    require_partition(spark, source)
    frame = spark.read.format(args.format).load(source)
    inputs = signature_inputs(args.model_uri)
    names = check_columns(frame.schema, inputs, source)
    if args.prediction in frame.columns or args.partition in frame.columns:
        taken = args.prediction if args.prediction in frame.columns else args.partition
        raise ScoringRefused(
            f"{source} has a column {taken!r} already, which the output needs for the "
            "prediction or the date: rename it in the input, or choose another spark.prediction"
        )
    predict = mlflow.pyfunc.spark_udf(spark, args.model_uri, env_manager="local")
    scored = frame.withColumn(
        args.prediction, predict(functions.struct(*[functions.col(_quoted(n)) for n in names]))
    ).withColumn(args.partition, functions.lit(args.date))
    # Scoring runs in every task; the shuffle gathers the day for one writer (one file).
    scored.repartition(1).write.mode("overwrite").partitionBy(args.partition).format(
        "parquet"
    ).save(args.output)
    name_day_file(spark, day_directory(args))
    return spark.read.parquet(f"{day_directory(args)}/{DAY_FILE}").count()


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _filesystem(spark: Any, path: str) -> tuple[Any, Any]:
    """Hadoop's FileSystem of `path` and the path itself, as Spark reads it (s3a, file)."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hadoop_path


def require_partition(spark: Any, source: str) -> None:
    filesystem, path = _filesystem(spark, source)
    if not filesystem.exists(path) or not any(
        not status.getPath().getName().startswith(("_", "."))
        for status in filesystem.listStatus(path)
    ):
        raise ScoringRefused(
            f"the input partition {source} does not exist or holds no files: the day has no "
            "data to score. Nothing was scored or written. Write the day's partition first (or "
            "check spark.input and spark.partition of the DAG), then run the day again"
        )


def signature_inputs(model_uri: str) -> list[tuple[str, str, bool]]:
    """(column, MLflow type, required) of each input column of the model's signature."""
    from mlflow.models import get_model_info

    signature = get_model_info(model_uri).signature
    inputs = signature.inputs if signature is not None else None
    if inputs is None or not inputs.has_input_names() or inputs.is_tensor_spec():
        raise ScoringRefused(
            f"the model {model_uri} has no signature with named input columns, so its input "
            "cannot be checked before scoring. Nothing was scored or written. Log the model "
            "with one (mlflow.<flavor>.log_model(..., input_example=<a few input rows>))"
        )
    return [(spec.name, spec.type.name, spec.required) for spec in inputs.inputs]


def check_columns(schema: Any, inputs: list[tuple[str, str, bool]], source: str) -> list[str]:
    """The input columns the model reads, in its signature's order; ScoringRefused naming every
    column missing or of a type the signature does not accept."""
    found = {field.name: field.dataType.typeName() for field in schema.fields}
    missing = [name for name, _, required in inputs if required and name not in found]
    mistyped = [
        f"{name} is {found[name]}, expected {kind}"
        for name, kind, _ in inputs
        if name in found and found[name] not in ACCEPTED_TYPES.get(kind, (found[name],))
    ]
    problems = []
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    if mistyped:
        problems.append(f"mistyped column(s): {'; '.join(mistyped)}")
    if problems:
        raise ScoringRefused(
            f"{source} does not match the model's signature ({' and '.join(problems)}; "
            f"its columns: {', '.join(f'{k} {v}' for k, v in found.items()) or 'none'}). "
            "Nothing was scored or written. Fix the feature table or train the model on the "
            "columns the table has"
        )
    return [name for name, _, _ in inputs if name in found]


def name_day_file(spark: Any, directory: str) -> None:
    """The day's one part file renamed to DAY_FILE, where monitoring reads it."""
    filesystem, path = _filesystem(spark, directory)
    jvm = spark.sparkContext._jvm
    parts = [
        status.getPath()
        for status in filesystem.listStatus(path)
        if status.getPath().getName().startswith("part-")
    ]
    if len(parts) != 1:
        raise RuntimeError(f"{directory} holds {len(parts)} part files, expected 1")
    if not filesystem.rename(parts[0], jvm.org.apache.hadoop.fs.Path(path, DAY_FILE)):
        raise RuntimeError(f"could not rename {parts[0]} to {DAY_FILE} in {directory}")


if __name__ == "__main__":
    sys.exit(main())
