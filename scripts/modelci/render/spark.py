"""Spark training: the SparkApplication (Spark Operator, `sparkoperator.k8s.io/v1beta2`) a
training DAG submits for a model with `train.engine: spark`, and how a CI job runs the same
entrypoint with local Spark.

Pure: builds data from the config and the deployment's URIs; the DAG template writes it as a
literal, the tests hold it against the operator's CRD schema. (Only `refuse_spark_model` reads
anything: one MLmodel file, through the store it is given.)

The application runs its training DAG's entrypoint and args (`batch.dags[]` of kind training,
which default to `train.entrypoint` and `train.args`), as a training DAG in a pod does.

How the application finds its code and Python:
- the model's environment archive (the one it was trained and is served in) and the code
  archive of the deployed commit are Spark `deps.archives`, unpacked as `./environment` and
  `./code` in the driver's and every executor's working directory;
- `spark.pyspark.python` is `./environment/bin/python` (the archive is a virtualenv of the
  image's Python, so the image needs that Python at the path the environment was built with:
  the platform's runtime image);
- the entrypoint itself is the main application file, an object beside the code archive
  (`main_file_uri`), and `./code` is on PYTHONPATH for what it imports.

Spark scoring (an inference DAG with `engine: spark`) submits a SparkApplication the same way:
the environment archive the served run was trained in is its Python, and its main file is
modelci's own scoring program (`jobs/spark_score.py`, self-contained: modelci is not installed
in the model's environment), staged beside the code archive under a name that carries its
digest. Its arguments come from the DAG's `spark:` section; the day scored is the one value
Airflow renders when the task runs (RUN_DATE_ARGUMENTS, written by modelci into the DAG file).

A Spark ML model (what `mlflow.spark.log_model` logs) is another matter: its python_function
loads it into a SparkSession, so it needs pyspark and Java where it is loaded. MLServer's mlflow
runtime (online serving) and the pod of an inference DAG have neither: such a model may be
trained (its training DAG) and scored on Spark (an inference DAG with `engine: spark`), never
served or scored in a pod.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config.macros import expand
from ..config.types import Dag, Model, Spark, SparkPart, SparkScoring
from ..errors import ModelciError
from ..systems.mlflow_uris import MLMODEL_FILE

if TYPE_CHECKING:
    from ..lifecycle.modelenv import ObjectStore

API_VERSION = "sparkoperator.k8s.io/v1beta2"
ENVIRONMENT_DIR = "environment"
CODE_DIR = "code"
SPARK_FLAVOR = "spark"  # the MLmodel flavor of mlflow.spark.log_model, and mlops.yaml's name
SPARK_LOADER = "mlflow.spark"  # the loader_module of its python_function flavor
SCORING_PROGRAM = Path(__file__).resolve().parents[1] / "jobs" / "spark_score.py"
# The day a scoring run scores: its logical date, rendered by Airflow when the task runs (the
# only rendered value of a scoring DAG's application; empty for a run without a logical date,
# which the scoring program then refuses).
RUN_DATE_ARGUMENTS = ("--date", "{{ ds | default('') }}")


def spark_training_dag(model: Model) -> Dag | None:
    """The training DAG whose task submits a SparkApplication: a model with
    `train.engine: spark` that has a training DAG. None for any other model."""
    if model.train.engine != "spark":
        return None
    return next((dag for dag in model.batch.dags if dag.kind == "training"), None)


def spark_scoring_dag(model: Model) -> Dag | None:
    """The inference DAG scored by a SparkApplication (`engine: spark`), if any."""
    return next((dag for dag in model.batch.dags if dag.spark is not None), None)


def runs_on_spark(model: Model) -> bool:
    """Whether a DAG of `model` submits a SparkApplication (training or scoring)."""
    return spark_training_dag(model) is not None or spark_scoring_dag(model) is not None


def require_environment(model: Model, environment_uri: str | None) -> None:
    """A Spark DAG's Python is the environment archive the run trained in: without one there
    is no application to write (ModelciError naming the fix)."""
    if environment_uri or not runs_on_spark(model):
        return
    which = "training" if spark_training_dag(model) is not None else "inference"
    raise ModelciError(
        f"{model.name}: its {which} DAG runs as a SparkApplication whose Python is the "
        "environment archive the served run was trained in, and the run records none (no "
        "modelci.env_archive tag: its train job ran without MODELCI_SCRATCH_URI, or it was not "
        "trained by modelci). Nothing was deployed. Set MODELCI_SCRATCH_URI in the group's CI/CD "
        "variables and run the branch's pipeline again: its train job builds the archive and "
        "records it on the run"
    )


def main_file_uri(code_uri: str, entrypoint: str) -> str:
    """Where the entrypoint of the code archive `code_uri` is kept as a file of its own."""
    return f"{code_uri.removesuffix('.tar.gz')}/{entrypoint}"


def scoring_main_file_uri(code_uri: str) -> str:
    """Where the scoring program is kept beside the code archive `code_uri`: its name carries
    its digest, so another modelci's program is another file."""
    digest = hashlib.sha256(SCORING_PROGRAM.read_bytes()).hexdigest()[:16]
    return main_file_uri(code_uri, f"modelci-spark-score-{digest}.py")


def s3a(uri: str) -> str:
    """Hadoop's name for an s3:// URI (what Spark reads through the S3A connector)."""
    return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri


def spark_application(
    *,
    name: str,
    namespace: str,
    model: Model,
    image: str,
    code_uri: str,
    environment_uri: str,
    env_vars: Mapping[str, str],
    s3_secret: str,
    s3_endpoint: str,
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """The SparkApplication of `model`'s training DAG (`train.engine: spark`): it runs that
    DAG's entrypoint and args in the environment archive `environment_uri`."""
    spark, dag = model.train.spark, spark_training_dag(model)
    if spark is None or dag is None:
        raise ValueError(f"model {model.name!r} has no training DAG on Spark")
    require_environment(model, environment_uri)
    env = [{"name": key, "value": value} for key, value in env_vars.items()]
    env.append({"name": "PYTHONPATH", "value": CODE_DIR})
    return _application(
        name=name,
        namespace=namespace,
        labels=labels,
        spec={
            "image": image,
            "sparkVersion": spark.version,
            "mainApplicationFile": s3a(main_file_uri(code_uri, dag.entrypoint)),
            # No run values here (the config refuses them), only `$${`, a literal `${`.
            "arguments": [expand(arg, {}) for arg in dag.args],
            "deps": {
                "archives": [
                    f"{s3a(environment_uri)}#{ENVIRONMENT_DIR}",
                    f"{s3a(code_uri)}#{CODE_DIR}",
                ]
            },
            "sparkConf": _spark_conf(s3_endpoint),
        },
        parts=(spark.driver, spark.executor),
        env=env,
        s3_secret=s3_secret,
    )


def spark_scoring_application(
    *,
    name: str,
    namespace: str,
    model: Model,
    image: str,
    code_uri: str,
    environment_uri: str,
    model_uri: str,
    data_uri: str,
    env_vars: Mapping[str, str],
    s3_secret: str,
    s3_endpoint: str,
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """The SparkApplication of `model`'s Spark inference DAG: modelci's scoring program, in
    the environment archive `environment_uri`, scoring `model_uri` over the DAG's input and
    writing under `data_uri` (the environment's data prefix). The day is not in it: the DAG
    adds RUN_DATE_ARGUMENTS when the task runs."""
    dag = spark_scoring_dag(model)
    if dag is None or dag.spark is None:
        raise ValueError(f"model {model.name!r} has no inference DAG on Spark")
    require_environment(model, environment_uri)
    scoring = dag.spark
    return _application(
        name=name,
        namespace=namespace,
        labels=labels,
        spec={
            "image": image,
            "sparkVersion": scoring.version,
            "mainApplicationFile": s3a(scoring_main_file_uri(code_uri)),
            "arguments": scoring_arguments(scoring, model_uri, data_uri),
            "deps": {"archives": [f"{s3a(environment_uri)}#{ENVIRONMENT_DIR}"]},
            "sparkConf": _spark_conf(s3_endpoint),
        },
        parts=(scoring.driver, scoring.executor),
        env=[{"name": key, "value": value} for key, value in env_vars.items()],
        s3_secret=s3_secret,
    )


def scoring_arguments(scoring: SparkScoring, model_uri: str, data_uri: str) -> list[str]:
    """The scoring program's arguments but the day (jobs/spark_score.py)."""
    output = f"{data_uri.rstrip('/')}/{scoring.output}"
    return [
        "--model-uri", model_uri,
        "--input", s3a(scoring.input),
        "--format", scoring.format,
        "--partition", scoring.partition,
        "--output", s3a(output),
        "--prediction", scoring.prediction,
    ]  # fmt: skip


def _application(
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    spec: dict[str, Any],
    parts: tuple[SparkPart, SparkPart],
    env: list[dict[str, str]],
    s3_secret: str,
) -> dict[str, Any]:
    driver, executor = parts
    secrets = [{"secretRef": {"name": s3_secret}}]
    return {
        "apiVersion": API_VERSION,
        "kind": "SparkApplication",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "type": "Python",
            "pythonVersion": "3",
            "mode": "cluster",
            **spec,
            "restartPolicy": {"type": "Never"},
            "driver": {
                "cores": driver.cores,
                "memory": driver.memory,
                "labels": dict(labels),
                "env": env,
                "envFrom": secrets,
            },
            "executor": {
                "instances": executor.instances,
                "cores": executor.cores,
                "memory": executor.memory,
                "labels": dict(labels),
                "env": env,
                "envFrom": secrets,
            },
        },
    }


def _spark_conf(s3_endpoint: str) -> dict[str, str]:
    # S3A's default credential chain reads AWS_ACCESS_KEY_ID/... from the S3 Secret.
    conf = {"spark.pyspark.python": f"./{ENVIRONMENT_DIR}/bin/python"}
    if s3_endpoint:  # an S3-compatible store rather than AWS
        conf["spark.hadoop.fs.s3a.endpoint"] = s3_endpoint
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
    return conf


def local_submit_args(spark: Spark) -> str:
    """PYSPARK_SUBMIT_ARGS for a CI job: `SparkSession.builder.getOrCreate()` in the
    entrypoint then starts local Spark, with the driver memory of the config."""
    return (
        f"--master {spark.ci_master} --conf spark.driver.memory={spark.driver.memory} pyspark-shell"
    )


# --- Spark ML models: trained, never served -----------------------------------------------------


def pod_loaders(model: Model) -> list[str]:
    """What loads `model` with mlflow.pyfunc outside Spark, as mlops.yaml configures it: the
    model server of online serving and the pod of an inference DAG. (The product's monitoring
    reads CSV files, and a training DAG trains a new model: neither loads the served one.)"""
    loaders = []
    if model.online.enabled:
        loaders.append("online serving (online.enabled, MLServer's mlflow runtime)")
    loaders += [
        f"the pod of its inference DAG (batch.dags[{index}])"
        for index, dag in enumerate(model.batch.dags)
        if dag.kind == "inference" and dag.spark is None  # on Spark it loads into Spark
    ]
    return loaders


def spark_model_problem(model: Model, found: str) -> str:
    """Why `model`, a Spark ML model (`found` says how that is known), cannot be deployed as
    configured; "" when nothing it configures would load it outside Spark."""
    loaders = pod_loaders(model)
    if not loaders:
        return ""
    return (
        f"model {model.name} is a Spark ML model ({found}): mlflow.pyfunc loads it only into "
        f"a SparkSession, which needs pyspark and Java, and {' and '.join(loaders)} would load "
        "it without them: every prediction request would answer 500 and every scoring run "
        "would fail. Log a model that loads without Spark (e.g. train it with scikit-learn, "
        "log it with mlflow.sklearn.log_model and set flavor: sklearn), or turn online serving "
        "off and remove the inference DAG, or score on Spark instead (engine: spark on the "
        "inference DAG): a Spark ML model is trained and scored on Spark only"
    )


def loads_with_spark(flavors: Mapping[str, Any]) -> bool:
    """Whether a model with these MLmodel `flavors` loads only into a SparkSession: it has the
    spark flavor, or a python_function flavor whose loader is mlflow.spark
    (mlflow.spark.log_model writes both)."""
    pyfunc = flavors.get("python_function")
    loader = pyfunc.get("loader_module") if isinstance(pyfunc, Mapping) else None
    return SPARK_FLAVOR in flavors or loader == SPARK_LOADER


def refuse_spark_model(store: ObjectStore, model: Model, storage_uri: str) -> None:
    """ModelciError when the model directory `storage_uri` holds a Spark ML model that online
    serving or an inference DAG of `model` would load. Its MLmodel is read only then."""
    if not pod_loaders(model):
        return
    uri = f"{storage_uri.rstrip('/')}/{MLMODEL_FILE}"
    flavors = mlmodel_flavors(store.get_bytes(uri), uri)
    if loads_with_spark(flavors):
        found = f"{uri} has the flavors {', '.join(sorted(flavors))}"
        raise ModelciError(f"{spark_model_problem(model, found)}. Nothing was deployed")


def mlmodel_flavors(text: bytes, uri: str) -> dict[str, Any]:
    """The `flavors` of an MLmodel file (`uri`), read as the plain YAML MLflow writes."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        document = YAML(typ="safe").load(text.decode("utf-8"))
    except (UnicodeDecodeError, YAMLError) as error:
        raise ModelciError(
            f"{uri} cannot be read as YAML ({error}); it is not an MLmodel file MLflow wrote. "
            "Nothing was deployed. Log the model again with mlflow.<flavor>.log_model"
        ) from None
    flavors = document.get("flavors") if isinstance(document, dict) else None
    return flavors if isinstance(flavors, dict) else {}
