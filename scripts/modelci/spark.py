"""Spark training: the SparkApplication (Spark Operator, `sparkoperator.k8s.io/v1beta2`) a
training DAG submits for a model with `train.engine: spark`, and how a CI job runs the same
entrypoint with local Spark.

Pure: builds data from the config and the deployment's URIs; the DAG template writes it as a
literal, the tests hold it against the operator's CRD schema.

How the application finds its code and Python:
- the model's environment archive (the one it was trained and is served in) and the code
  archive of the deployed commit are Spark `deps.archives`, unpacked as `./environment` and
  `./code` in the driver's and every executor's working directory;
- `spark.pyspark.python` is `./environment/bin/python` (the archive is a virtualenv of the
  image's Python, so the image needs that Python at the path the environment was built with:
  the platform's runtime image);
- the entrypoint itself is the main application file, an object beside the code archive
  (`main_file_uri`), and `./code` is on PYTHONPATH for what it imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .config import Model, Spark

API_VERSION = "sparkoperator.k8s.io/v1beta2"
ENVIRONMENT_DIR = "environment"
CODE_DIR = "code"


def main_file_uri(code_uri: str, entrypoint: str) -> str:
    """Where the entrypoint of the code archive `code_uri` is kept as a file of its own."""
    return f"{code_uri.removesuffix('.tar.gz')}/{entrypoint}"


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
    """The SparkApplication that trains `model` (whose `train.engine` is spark)."""
    spark = model.train.spark
    if spark is None:
        raise ValueError(f"model {model.name!r} does not train on Spark")
    if not environment_uri:
        raise ValueError("a Spark application needs the model's environment archive")
    env = [{"name": key, "value": value} for key, value in env_vars.items()]
    env.append({"name": "PYTHONPATH", "value": CODE_DIR})
    secrets = [{"secretRef": {"name": s3_secret}}]
    return {
        "apiVersion": API_VERSION,
        "kind": "SparkApplication",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "type": "Python",
            "pythonVersion": "3",
            "mode": "cluster",
            "image": image,
            "sparkVersion": spark.version,
            "mainApplicationFile": s3a(main_file_uri(code_uri, model.train.entrypoint)),
            "arguments": list(model.train.args),
            "deps": {
                "archives": [
                    f"{s3a(environment_uri)}#{ENVIRONMENT_DIR}",
                    f"{s3a(code_uri)}#{CODE_DIR}",
                ]
            },
            "sparkConf": _spark_conf(s3_endpoint),
            "restartPolicy": {"type": "Never"},
            "driver": {
                "cores": spark.driver.cores,
                "memory": spark.driver.memory,
                "labels": dict(labels),
                "env": env,
                "envFrom": secrets,
            },
            "executor": {
                "instances": spark.executor.instances,
                "cores": spark.executor.cores,
                "memory": spark.executor.memory,
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
