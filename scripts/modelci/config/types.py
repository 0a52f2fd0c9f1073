"""The typed form of `mlops.yaml`: one frozen dataclass per section, as the loader returns it.

Apart from the loader (`mlops.py` and the section readers it is composed of) because every
other part of the package reads these types and none of it needs to know how the file is
checked: the renderers, the gate, the monitoring checks and the review import them from here.
Pure: no I/O, no import of the rest of the package.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resources:
    cpu: str  # Kubernetes quantity, always a string: "500m", "1"
    memory: str  # Kubernetes quantity: "512Mi", "2Gi"
    gpu: int = 0  # nvidia.com/gpu count


@dataclass(frozen=True)
class MetricThreshold:
    name: str  # an MLflow metric key the training run logs
    min: float | None = None  # pass when value >= min
    max: float | None = None  # pass when value <= max


@dataclass(frozen=True)
class Gate:
    metrics: tuple[MetricThreshold, ...]
    compare_with_production: bool = True
    tolerance: float = 0.0  # absolute degradation allowed against the production model


@dataclass(frozen=True)
class SparkPart:
    """The driver's or the executors' share of a Spark application."""

    cores: int = 1
    memory: str = "2g"  # Spark's notation: 512m, 2g
    instances: int = 1  # executors only


@dataclass(frozen=True)
class Spark:
    version: str = "4.0.1"  # the Spark of the runtime image (SparkApplication sparkVersion)
    driver: SparkPart = SparkPart(cores=1, memory="2g")
    executor: SparkPart = SparkPart(cores=1, memory="2g", instances=2)
    ci_master: str = "local[2]"  # how the CI train job runs it: local Spark in the job
    ci_args: tuple[str, ...] = ()  # added to train.args in CI, e.g. ["--sample", "0.1"]


@dataclass(frozen=True)
class SparkScoring:
    """The SparkApplication of an inference DAG with `engine: spark`: it scores the partition
    `<input>/<partition>=<date>` and writes `<data prefix>/<output>/<partition>=<date>/`."""

    input: str  # s3:// directory of the feature table
    partition: str  # its date partition column
    output: str  # relative to the environment's data prefix
    prediction: str  # the column the predictions are written to
    format: str = "parquet"  # one of SPARK_FORMATS
    version: str = "4.0.1"
    driver: SparkPart = SparkPart(cores=1, memory="2g")
    executor: SparkPart = SparkPart(cores=1, memory="2g", instances=2)

    def day_file(self, day: str) -> str:
        """The day's predictions, relative to the data prefix (one Parquet file)."""
        return f"{self.output}/{self.partition}={day}/{SPARK_DAY_FILE}"


SPARK_DAY_FILE = "scores.parquet"  # jobs/spark_score.py's DAY_FILE
SPARK_SCORING_PROGRAM = "modelci's Spark scoring"  # what a Spark inference DAG runs


@dataclass(frozen=True)
class Train:
    entrypoint: str  # path relative to the repository root
    args: tuple[str, ...] = ()
    resources: Resources = Resources(cpu="1", memory="2Gi")
    engine: str = "python"  # one of ENGINES
    spark: Spark | None = None  # set when engine is "spark"


@dataclass(frozen=True)
class Dag:
    kind: str  # one of DAG_KINDS, unique per model
    entrypoint: str  # path relative to the repository root
    args: tuple[str, ...] = ()
    schedule: str | None = None  # cron expression or preset ("@daily"); None: triggered by hand
    retries: int = 1
    resources: Resources = Resources(cpu="1", memory="2Gi")
    builtin: bool = False  # the product's own command (`modelci monitor`), not an entrypoint
    engine: str = "python"  # one of ENGINES: "spark" scores with a SparkApplication
    spark: SparkScoring | None = None  # set when engine is "spark"


@dataclass(frozen=True)
class Batch:
    dags: tuple[Dag, ...] = ()


@dataclass(frozen=True)
class Online:
    enabled: bool = False
    min_replicas: int = 1
    max_replicas: int = 1
    resources: Resources = Resources(cpu="1", memory="2Gi")


@dataclass(frozen=True)
class GroundTruth:
    label: str  # the column of the monitoring data holding the true outcome
    metric: str = "accuracy"  # one of MONITOR_METRICS, of the score against the label
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class Retrain:
    enabled: bool = True
    cooldown_hours: float = 24.0  # no new retraining sooner after the last one
    timeout_hours: float = 6.0  # a retraining that reported nothing by then is no longer waited on


@dataclass(frozen=True)
class Review:
    """What the merge request's review of the model uses besides MLflow (`review:`)."""

    sample: str | None = None  # CSV in the repository: rows both models predict on


@dataclass(frozen=True)
class Monitoring:
    data: str  # CSV under the environment's data prefix the scoring DAG writes ("${ds}" allowed)
    reference: str  # CSV artifact of the served run: the data the model was trained on
    features: tuple[str, ...]  # columns whose PSI is checked
    score: str | None = None  # the model's output column: PSI and the ground-truth metric
    ranges: tuple[tuple[str, float, float], ...] = ()  # (column, low, high)
    max_psi: float = 0.2
    max_null_share: float = 0.0
    max_out_of_range: float = 0.0
    ground_truth: GroundTruth | None = None
    schedule: str | None = "@daily"
    resources: Resources = Resources(cpu="1", memory="2Gi")
    retrain: Retrain = Retrain()


@dataclass(frozen=True)
class Model:
    name: str  # [a-z][a-z0-9-]*, at most 20 characters, unique in the file
    flavor: str  # the MLflow flavor the training script logs with ("sklearn", "pyfunc", ...)
    train: Train
    gate: Gate
    batch: Batch = Batch()
    online: Online = Online()
    monitoring: Monitoring | None = None
    review: Review = Review()


@dataclass(frozen=True)
class Stand:
    name: str  # e.g. "staging", "production"
    manual: bool = False  # promotion into this stand needs a manual, protected job


@dataclass(frozen=True)
class Code:
    """What of the repository the code archive batch pods unpack leaves out (`code:`)."""

    exclude: tuple[str, ...] = ()  # globs relative to the repository root, git's pathspecs


@dataclass(frozen=True)
class Config:
    path: str  # the file it was read from, as given
    version: int
    python: str  # "3.11": the Python version of the model code
    image: str | None  # image for batch pods; None: the platform's runtime image
    models: tuple[Model, ...]
    stands: tuple[Stand, ...]
    code: Code = Code()

    def model(self, name: str) -> Model:
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(name)


DEFAULT_RESOURCES = Resources(cpu="1", memory="2Gi")  # a pod's, where mlops.yaml names none
