"""The model config file (`mlops.yaml`) a data scientist keeps in a model repository.

This module holds the typed, validated form of the file and `load_config`, which reads it.
It is pure: no I/O beyond reading the file itself and checking that the entry points it
names exist; no knowledge of MLflow, git, S3 or GitLab. The checks of single values, with
the limits of the systems downstream, are in `config_checks.py`. The structure (the keys of
each section, which are required) comes from `config_fields.py`, which also generates the JSON
Schema and docs/data-scientists/mlops-yaml-reference.md.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ..errors import ConfigError, Problem
from .checks import (
    MAX_RETRIES,
    Invalid,
    advice,
    as_arg,
    as_bool,
    as_column_name,
    as_cpu,
    as_flavor,
    as_gpu,
    as_image,
    as_int_between,
    as_local_master,
    as_max_replicas,
    as_memory,
    as_metric_name,
    as_min_replicas,
    as_model_name,
    as_non_negative_number,
    as_number,
    as_one_of,
    as_optional_number,
    as_python,
    as_relative_path,
    as_s3_table_uri,
    as_schedule,
    as_spark_column,
    as_spark_cores,
    as_spark_instances,
    as_spark_memory,
    as_spark_version,
    as_stand_name,
    as_text,
    as_version,
    describe,
    key_text,
    spark_executors_problem,
    word_list,
    wrong,
)
from .fields import DAG_KINDS, ENGINES, MONITOR_METRICS, SPARK_FORMATS, examples, section
from .yamlio import node_position, problem_at, read_yaml, value_position

CONFIG_FILE_NAME = "mlops.yaml"
# Ground-truth metrics that are errors (lower is better): bounded by `max`; the others
# (accuracy: higher is better) by `min`. A bound on the other side fails the better models.
LOWER_IS_BETTER = frozenset({"mae", "rmse"})


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


# --- what the loader accepts and fills in -------------------------------------------------------

DEFAULT_PYTHON = "3.11"
DEFAULT_RESOURCES = Resources(cpu="1", memory="2Gi")
# The stands of ci-templates/full.yml's defaults: the first after every merge, the last by a
# manual job. A config without `stands:` therefore works with full.yml as it comes.
DEFAULT_STANDS = (Stand(name="staging"), Stand(name="production", manual=True))

# The keys each section accepts and requires, and the example shown for a missing required key,
# all from the one definition of the file's structure (config_fields.py), which also gives the
# JSON Schema and the field reference.
_TOP_KEYS = section("").keys()
_CODE_KEYS = section("code").keys()
_STAND_KEYS = section("stands").keys()
_MODEL_KEYS = section("models").keys()
_TRAIN_KEYS = section("models.train").keys()
_SPARK_KEYS = section("models.train.spark").keys()
_SPARK_DRIVER_KEYS = section("models.train.spark.driver").keys()
_SPARK_EXECUTOR_KEYS = section("models.train.spark.executor").keys()
_SPARK_CI_KEYS = section("models.train.spark.ci").keys()
_GATE_KEYS = section("models.gate").keys()
_METRIC_KEYS = section("models.gate.metrics").keys()
_BATCH_KEYS = section("models.batch").keys()
_DAG_KEYS = section("models.batch.dags").keys()
_SCORING_SPARK_KEYS = section("models.batch.dags.spark").keys()
_SCORING_DRIVER_KEYS = section("models.batch.dags.spark.driver").keys()
_SCORING_EXECUTOR_KEYS = section("models.batch.dags.spark.executor").keys()
_ONLINE_KEYS = section("models.online").keys()
_MONITORING_KEYS = section("models.monitoring").keys()
_REVIEW_KEYS = section("models.review").keys()
_GROUND_TRUTH_KEYS = section("models.monitoring.ground_truth").keys()
_RETRAIN_KEYS = section("models.monitoring.retrain").keys()
_RESOURCE_KEYS = section("models.train.resources").keys()
_EXAMPLES = examples()  # shown when a required key is missing


def _required(path: str) -> tuple[str, ...]:
    """The keys the section at `path` (as config_fields.section reads it) must hold."""
    return section(path).required_keys()


T = TypeVar("T")

_as_dag_kind = as_one_of(DAG_KINDS)
_as_monitor_metric = as_one_of(MONITOR_METRICS)
_as_engine = as_one_of(ENGINES)
_as_spark_format = as_one_of(SPARK_FORMATS)


def load_config(path: Path, repo_root: Path | None = None) -> Config:
    """Read and validate a model config file.

    Entry points are checked relative to `repo_root` (default: the file's directory). Raises
    ConfigError listing every problem found, each with file, line, field path and fix.
    """
    path = Path(path)
    document = read_yaml(path)
    loader = _Loader(str(path), Path(repo_root) if repo_root is not None else path.parent)
    config = loader.config(document)  # holds None where a value was invalid: not returned then
    if loader.problems:
        raise ConfigError(sorted(loader.problems, key=lambda p: (p.line or 0, p.column or 0)))
    return config


def _join(parent: str, key: Any) -> str:
    """The field path of `parent[key]`: a list index in brackets, a mapping key as YAML
    writes it (models[0].train, stands, true)."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{parent}[{key}]"
    text = key_text(key)
    return f"{parent}.{text}" if parent else text


# --- the loader: walks the document, collects every problem -------------------------------------


class _Loader:
    def __init__(self, file: str, repo_root: Path) -> None:
        self.file = file
        self.repo_root = repo_root
        self.problems: list[Problem] = []

    # reporting

    def report(
        self, container: Any, key: Any, field: str, message: str, *, at_key: bool = False
    ) -> None:
        self.problems.append(problem_at(self.file, container, key, field, message, at_key=at_key))

    def report_at_node(self, node: Any, field: str, message: str) -> None:
        line, column = node_position(node)
        self.problems.append(Problem(self.file, field, message, line, column))

    # structure

    def check_keys(
        self, mapping: CommentedMap, path: str, allowed: tuple[str, ...], required: Iterable[str]
    ) -> None:
        for key in mapping:
            if key in allowed:
                continue
            name = key_text(key)
            close = difflib.get_close_matches(name, allowed, n=1)
            hint = f'Did you mean "{close[0]}"? ' if close else ""
            self.report(
                mapping,
                key,
                _join(path, name),
                f'unknown key "{name}". {hint}Expected one of {word_list(allowed)}.',
                at_key=True,
            )
        for key in required:
            if key not in mapping:
                self.report_at_node(
                    mapping,
                    _join(path, key),
                    f'required key "{key}" is missing; add it, e.g. {key}: {_EXAMPLES[key]}',
                )

    def mapping(
        self,
        container: Any,
        key: Any,
        path: str,
        allowed: tuple[str, ...],
        required: Iterable[str] = (),
        *,
        is_required: bool = False,
    ) -> CommentedMap | None:
        """`container[key]` as a mapping (its keys checked), or None when absent or invalid.

        `required` are the keys it must hold; `is_required` says whether it may be left out.
        """
        if container is None or (isinstance(container, dict) and key not in container):
            return None
        value = container[key]
        if not isinstance(value, CommentedMap):
            expected = f"a mapping with keys {word_list(allowed, 'and')}"
            fix = _none_fix(key, is_required) if value is None else ""
            self.report(container, key, path, str(wrong(value, expected, fix)))
            return None
        self.check_keys(value, path, allowed, required)
        return value

    def sequence(
        self,
        container: Any,
        key: str,
        path: str,
        *,
        what: str,
        example: str,
        at_least_one: str = "",
    ) -> CommentedSeq:
        """`container[key]` as a list, or an empty one when it is absent or not a list.

        An empty list is an error when `at_least_one` names what it must hold.
        """
        if container is None or key not in container:
            return CommentedSeq()
        value = container[key]
        if not isinstance(value, CommentedSeq):
            self.report(container, key, path, str(wrong(value, f"a list of {what}", example)))
            return CommentedSeq()
        if at_least_one and not value:
            self.report(
                container,
                key,
                path,
                f"found an empty list; expected at least one {at_least_one}. {example}",
            )
        return value

    def mappings(
        self, items: CommentedSeq, path: str, allowed: tuple[str, ...], required: Iterable[str]
    ) -> Iterator[tuple[str, CommentedMap]]:
        """(field path, item) for each item of a list that is a mapping; others are reported."""
        for index, _ in enumerate(items):
            item_path = f"{path}[{index}]"
            item = self.mapping(items, index, item_path, allowed, required)
            if item is not None:
                yield item_path, item

    def value(
        self,
        mapping: CommentedMap | None,
        key: str,
        path: str,
        check: Callable[[Any], T],
        default: T,
        *,
        required: bool = False,
    ) -> T | None:
        """`check(mapping[key])`, `default` when the key is absent, None (reported) if invalid."""
        if mapping is None or key not in mapping:
            return default
        return self.checked(mapping, key, _join(path, key), check, _none_fix(key, required))

    def checked(
        self, container: Any, key: Any, field: str, check: Callable[[Any], T], none_fix: str
    ) -> T | None:
        """`check(container[key])`, or None after reporting why it is invalid."""
        value = container[key]
        try:
            return check(value)
        except Invalid as invalid:
            message = str(invalid)
            fix = "" if invalid.has_fix else advice(value, check, none_fix)
            self.report(container, key, field, message + (f" {fix}" if fix else ""))
            return None

    def strings(self, mapping: CommentedMap | None, key: str, path: str) -> tuple[str, ...]:
        """A list of command-line arguments; each `${...}` in them must be an offered macro."""
        items = self.sequence(
            mapping,
            key,
            _join(path, key),
            what="strings",
            example='For example: args: ["--seed", "7"]',
        )
        strings = []
        for index, _ in enumerate(items):
            field = f"{_join(path, key)}[{index}]"
            item = self.checked(items, index, field, as_arg, _none_fix(index, False))
            if item is not None:
                strings.append(item)
        return tuple(strings)

    def unique(
        self,
        seen: dict[Any, int | None],
        value: Any,
        mapping: Any,
        key: str | int,
        path: str,
        what: str,
        fix: str = "Rename or remove one.",
    ) -> None:
        """Report `mapping[key]` (field `path`.key) when `value` is in `seen`, else note it."""
        if value is None:
            return
        line, _ = value_position(mapping, key)
        if value in seen:
            first = seen[value]
            self.report(
                mapping,
                key,
                _join(path, key),
                f'duplicate {what} "{value}" (first at line {first}); {what}s must be unique. '
                + fix,
            )
        else:
            seen[value] = line

    # sections

    def config(self, document: CommentedMap) -> Config:
        self.check_keys(document, "", _TOP_KEYS, required=_required(""))
        return Config(
            path=self.file,
            version=self.value(document, "version", "", as_version, None, required=True),
            python=self.value(document, "python", "", as_python, DEFAULT_PYTHON),
            image=self.value(document, "image", "", as_image, None),
            models=self.models(document),
            stands=self.stands(document),
            code=self.code(document),
        )

    def code(self, document: CommentedMap) -> Code:
        """`code.exclude`: what the code archive leaves out (data the pods do not need)."""
        code = self.mapping(document, "code", "code", _CODE_KEYS)
        items = self.sequence(
            code,
            "exclude",
            "code.exclude",
            what="paths or globs",
            example='For example: exclude: ["data/**", "**/*.parquet"]',
        )
        patterns = (
            self.checked(
                items, index, f"code.exclude[{index}]", _as_code_glob, _none_fix(index, False)
            )
            for index, _ in enumerate(items)
        )
        return Code(exclude=tuple(pattern for pattern in patterns if pattern is not None))

    def stands(self, document: CommentedMap) -> tuple[Stand, ...]:
        if "stands" not in document:
            return DEFAULT_STANDS
        items = self.sequence(
            document,
            "stands",
            "stands",
            what="stands",
            example="For example: stands: [{name: production}]",
            at_least_one="stand",
        )
        stands, seen = [], {}
        for path, stand in self.mappings(items, "stands", _STAND_KEYS, _required("stands")):
            name = self.value(stand, "name", path, as_stand_name, None, required=True)
            self.unique(seen, name, stand, "name", path, "stand name")
            stands.append(
                Stand(name=name, manual=self.value(stand, "manual", path, as_bool, False))
            )
        return tuple(stands)

    def models(self, document: CommentedMap) -> tuple[Model, ...]:
        items = self.sequence(
            document,
            "models",
            "models",
            what="models",
            example="See docs/data-scientists/mlops-yaml.md.",
            at_least_one="model",
        )
        models, seen = [], {}
        required = _required("models")
        for path, model in self.mappings(items, "models", _MODEL_KEYS, required):
            name = self.value(model, "name", path, as_model_name, None, required=True)
            self.unique(seen, name, model, "name", path, "model name")
            train = self.train(model, path)
            batch = self.batch(model, path, train)
            monitoring = self.monitoring(model, path)
            if monitoring is not None:
                batch = self.with_monitoring_dag(model, path, batch, monitoring)
                self.monitoring_reads_spark_output(model, path, batch, monitoring)
            models.append(
                Model(
                    name=name,
                    flavor=self.value(model, "flavor", path, as_flavor, None, required=True),
                    train=train,
                    gate=self.gate(model, path),
                    batch=batch,
                    online=self.online(model, path),
                    monitoring=monitoring,
                    review=self.review(model, path),
                )
            )
            self.spark_model_not_served(model, path, models[-1])
        return tuple(models)

    def spark_model_not_served(self, mapping: CommentedMap, path: str, model: Model) -> None:
        """A Spark ML model (`flavor: spark`) loads only into a SparkSession: neither online
        serving nor an inference DAG's pod can load it (spark.py)."""
        from ..render.spark import SPARK_FLAVOR, spark_model_problem

        if model.flavor != SPARK_FLAVOR:
            return
        problem = spark_model_problem(model, f"flavor: {SPARK_FLAVOR}")
        if problem:
            self.report(mapping, "flavor", _join(path, "flavor"), f"{problem}.")

    def train(self, model: CommentedMap, path: str) -> Train:
        path = _join(path, "train")
        train = self.mapping(
            model,
            "train",
            path,
            _TRAIN_KEYS,
            _required("models.train"),
            is_required=section("models.train").required,
        )
        engine = self.value(train, "engine", path, _as_engine, "python")
        return Train(
            entrypoint=self.value(train, "entrypoint", path, self.entrypoint, None, required=True),
            args=self.strings(train, "args", path),
            resources=self.resources(train, path, DEFAULT_RESOURCES),
            engine=engine,
            spark=self.spark(train, path, engine),
        )

    def spark(self, train: CommentedMap | None, path: str, engine: str | None) -> Spark | None:
        path = _join(path, "spark")
        spark = self.mapping(train, "spark", path, _SPARK_KEYS)
        if engine != "spark":
            if spark is not None:
                self.report(
                    train,
                    "spark",
                    path,
                    "is set but train.engine is not spark; add engine: spark, or remove it.",
                    at_key=True,
                )
            return None
        self.no_run_values(train, path)
        default = Spark()
        driver = self.mapping(spark, "driver", _join(path, "driver"), _SPARK_DRIVER_KEYS)
        executor = self.mapping(spark, "executor", _join(path, "executor"), _SPARK_EXECUTOR_KEYS)
        ci = self.mapping(spark, "ci", _join(path, "ci"), _SPARK_CI_KEYS)
        executors = self.spark_part(executor, _join(path, "executor"), default.executor)
        self.spark_executors(executor, _join(path, "executor"), executors)
        return Spark(
            version=self.value(spark, "version", path, as_spark_version, default.version),
            driver=self.spark_part(driver, _join(path, "driver"), default.driver),
            executor=executors,
            ci_master=self.value(ci, "master", _join(path, "ci"), as_local_master, "local[2]"),
            ci_args=self.strings(ci, "args", _join(path, "ci")),
        )

    def spark_executors(
        self, executor: CommentedMap | None, path: str, part: SparkPart, job: str = "training"
    ) -> None:
        """The executors of one training together within what a cluster gives one job, reported
        at `instances`. The default 2 executors stay within it at any valid cores and memory."""
        if executor is None or "instances" not in executor:
            return
        if None in (part.instances, part.cores, part.memory):
            return  # an invalid field: reported already
        problem = spark_executors_problem(part.instances, part.cores, part.memory, job)
        if problem:
            self.report(executor, "instances", _join(path, "instances"), problem)

    def no_run_values(self, train: CommentedMap | None, path: str) -> None:
        """A SparkApplication is submitted as written: `${ds}` would reach the entrypoint as is."""
        args = train.get("args") if train is not None else None
        for index, arg in enumerate(args if isinstance(args, list) else []):
            if isinstance(arg, str) and "${" in arg.replace("$${", ""):
                self.report(
                    args,
                    index,
                    f"{path.removesuffix('.spark')}.args[{index}]",
                    f"found {describe(arg)}; a Spark training's arguments cannot use run values "
                    "such as ${ds} (the SparkApplication is submitted as written). Remove it.",
                )

    def spark_part(self, part: CommentedMap | None, path: str, default: SparkPart) -> SparkPart:
        return SparkPart(
            cores=self.value(part, "cores", path, as_spark_cores, default.cores),
            memory=self.value(part, "memory", path, as_spark_memory, default.memory),
            instances=self.value(part, "instances", path, as_spark_instances, default.instances),
        )

    def gate(self, model: CommentedMap, path: str) -> Gate:
        path = _join(path, "gate")
        gate = self.mapping(
            model,
            "gate",
            path,
            _GATE_KEYS,
            _required("models.gate"),
            is_required=section("models.gate").required,
        )
        items = self.sequence(
            gate,
            "metrics",
            _join(path, "metrics"),
            what="metrics",
            example="For example: metrics: [{name: accuracy, min: 0.8}]",
            at_least_one="metric",
        )
        metrics, seen = [], {}
        metric_items = self.mappings(
            items, f"{path}.metrics", _METRIC_KEYS, _required("models.gate.metrics")
        )
        for metric_path, metric in metric_items:
            metrics.append(self.threshold(metric, metric_path))
            self.unique(seen, metrics[-1].name, metric, "name", metric_path, "metric name")
        return Gate(
            metrics=tuple(metrics),
            compare_with_production=self.value(
                gate, "compare_with_production", path, as_bool, True
            ),
            tolerance=self.value(gate, "tolerance", path, as_non_negative_number, 0.0),
        )

    def threshold(self, metric: CommentedMap, path: str) -> MetricThreshold:
        name = self.value(metric, "name", path, as_metric_name, None, required=True)
        low, high = self.bounds(metric, path)
        return MetricThreshold(name=name, min=low, max=high)

    def bounds(self, mapping: CommentedMap, path: str) -> tuple[float | None, float | None]:
        """`min` and `max` of a threshold: at least one of them, min <= max."""
        low = self.value(mapping, "min", path, as_optional_number, None)
        high = self.value(mapping, "max", path, as_optional_number, None)
        if mapping.get("min") is None and mapping.get("max") is None:
            self.report_at_node(
                mapping,
                path,
                "the threshold has neither min nor max; add min: (pass when the metric is at "
                "least that) or max: (pass when it is at most that), or both.",
            )
        elif low is not None and high is not None and low > high:
            self.report(
                mapping,
                "max",
                _join(path, "max"),
                f"found max {high:g} below min {low:g}; no value can pass. Swap or fix them.",
            )
        return low, high

    def batch(self, model: CommentedMap, path: str, train: Train) -> Batch:
        path = _join(path, "batch")
        batch = self.mapping(model, "batch", path, _BATCH_KEYS)
        resources = self.resources(batch, path, DEFAULT_RESOURCES)
        items = self.sequence(
            batch,
            "dags",
            _join(path, "dags"),
            what="DAGs",
            example="See docs/data-scientists/mlops-yaml.md.",
        )
        dags, seen = [], {}
        for dag_path, dag in self.mappings(
            items, f"{path}.dags", _DAG_KEYS, _required("models.batch.dags")
        ):
            dags.append(self.dag(dag, dag_path, train, resources))
            self.unique(seen, dags[-1].kind, dag, "kind", dag_path, "DAG kind")
        return Batch(dags=tuple(dags))

    def dag(self, dag: CommentedMap, path: str, train: Train, resources: Resources) -> Dag:
        kind = self.value(dag, "kind", path, _as_dag_kind, None, required=True)
        engine = self.value(dag, "engine", path, _as_engine, "python")
        if engine == "spark":
            return self.spark_scoring_dag(dag, path, kind)
        self.spark_without_engine(dag, path)
        entrypoint: str | None = None
        args: tuple[str, ...] = self.strings(dag, "args", path)
        if "entrypoint" in dag:
            required = kind != "training"  # only a training DAG falls back to train's
            entrypoint = self.value(
                dag, "entrypoint", path, self.entrypoint, None, required=required
            )
        elif kind == "training":
            entrypoint = train.entrypoint
            args = args if "args" in dag else train.args
        elif kind is not None:
            self.report_at_node(
                dag,
                _join(path, "entrypoint"),
                f'required key "entrypoint" is missing (only a training DAG defaults to '
                f"train.entrypoint); add it, e.g. entrypoint: {_EXAMPLES['entrypoint']}",
            )
        if kind == "training" and train.engine == "spark":  # its SparkApplication runs them
            self.no_run_values(dag, path)
            if "resources" in dag:
                self.report(
                    dag,
                    "resources",
                    _join(path, "resources"),
                    "a Spark training DAG's pods are sized by train.spark.driver and "
                    "train.spark.executor, so these resources would change nothing. Remove "
                    "them and set cores and memory there.",
                    at_key=True,
                )
        return Dag(
            kind=kind,
            entrypoint=entrypoint,
            args=args,
            schedule=self.value(dag, "schedule", path, as_schedule, None),
            retries=self.value(dag, "retries", path, as_int_between(0, MAX_RETRIES), 1),
            resources=self.resources(dag, path, resources),
        )

    def spark_without_engine(self, dag: CommentedMap, path: str) -> None:
        if "spark" in dag:
            self.report(
                dag,
                "spark",
                _join(path, "spark"),
                "is set but the DAG's engine is not spark; add engine: spark (an inference DAG "
                "scored by a SparkApplication), or remove it.",
                at_key=True,
            )

    def spark_scoring_dag(self, dag: CommentedMap, path: str, kind: str | None) -> Dag:
        """An inference DAG scored by a SparkApplication running modelci's scoring program
        (jobs/spark_score.py): it has no entrypoint, args or pod resources of its own."""
        if kind is not None and kind != "inference":
            self.report(
                dag,
                "engine",
                _join(path, "engine"),
                f"engine: spark is for inference DAGs only; this one is of kind {kind}. A "
                "training on Spark is train.engine: spark; remove engine here.",
            )
        for key, why in (
            ("entrypoint", "runs modelci's scoring program, not a script of the repository"),
            ("args", "takes its settings from spark: (input, partition, output, prediction)"),
            ("resources", "is sized by spark.driver and spark.executor"),
        ):
            if key in dag:
                self.report(
                    dag,
                    key,
                    _join(path, key),
                    f"a Spark inference DAG {why}, so {key} would change nothing. Remove it.",
                    at_key=True,
                )
        return Dag(
            kind=kind,
            entrypoint=SPARK_SCORING_PROGRAM,
            schedule=self.value(dag, "schedule", path, as_schedule, None),
            retries=self.value(dag, "retries", path, as_int_between(0, MAX_RETRIES), 1),
            engine="spark",
            spark=self.spark_scoring(dag, _join(path, "spark")),
        )

    def spark_scoring(self, dag: CommentedMap, path: str) -> SparkScoring | None:
        required = _required("models.batch.dags.spark")
        spark = self.mapping(dag, "spark", path, _SCORING_SPARK_KEYS, required)
        if spark is None:
            if "spark" not in dag:
                self.report_at_node(
                    dag,
                    path,
                    'required key "spark" is missing (a Spark inference DAG reads its input and '
                    "writes its predictions as it says); add it, e.g. spark: {input: "
                    "s3://features/customers, partition: ds, output: scores, prediction: score}",
                )
            return None
        default = SparkScoring(input="", partition="", output="", prediction="")
        driver = self.mapping(spark, "driver", _join(path, "driver"), _SCORING_DRIVER_KEYS)
        executor = self.mapping(spark, "executor", _join(path, "executor"), _SCORING_EXECUTOR_KEYS)
        executors = self.spark_part(executor, _join(path, "executor"), default.executor)
        self.spark_executors(executor, _join(path, "executor"), executors, "scoring")
        values = {
            "input": self.value(spark, "input", path, as_s3_table_uri, None, required=True),
            "partition": self.value(spark, "partition", path, as_spark_column, None, required=True),
            "output": self.value(spark, "output", path, self.spark_output, None, required=True),
            "prediction": self.value(
                spark, "prediction", path, as_spark_column, None, required=True
            ),
            "format": self.value(spark, "format", path, _as_spark_format, default.format),
            "version": self.value(spark, "version", path, as_spark_version, default.version),
        }
        if None in values.values() or None in (executors.cores, executors.memory):
            return None  # reported already
        return SparkScoring(
            **values,
            driver=self.spark_part(driver, _join(path, "driver"), default.driver),
            executor=executors,
        )

    @staticmethod
    def spark_output(value: Any) -> str:
        text = as_relative_path(value)
        if "${" in text.replace("$${", "") or "=" in text:
            raise wrong(
                value,
                'a relative path such as "scores"',
                "Each run writes the partition <partition>=<date> below it itself: leave run "
                "values and = out.",
            )
        return text.rstrip("/")

    def online(self, model: CommentedMap, path: str) -> Online:
        path = _join(path, "online")
        online = self.mapping(model, "online", path, _ONLINE_KEYS)
        low = self.value(online, "min_replicas", path, as_min_replicas, 1)
        high = self.value(online, "max_replicas", path, as_max_replicas, None)
        if online is None or "max_replicas" not in online:
            high = max(1, low or 0)  # an omitted max follows min
        elif low is not None and high is not None and high < low:
            self.report(
                online,
                "max_replicas",
                _join(path, "max_replicas"),
                f"found {high}, below min_replicas {low}; expected max_replicas >= min_replicas. "
                "Raise max_replicas or lower min_replicas.",
            )
        return Online(
            enabled=self.value(online, "enabled", path, as_bool, False),
            min_replicas=low,
            max_replicas=high,
            resources=self.resources(online, path, DEFAULT_RESOURCES),
        )

    def review(self, model: CommentedMap, path: str) -> Review:
        path = _join(path, "review")
        review = self.mapping(model, "review", path, _REVIEW_KEYS)
        return Review(sample=self.value(review, "sample", path, self.entrypoint, None))

    def monitoring(self, model: CommentedMap, path: str) -> Monitoring | None:
        path = _join(path, "monitoring")
        required = _required("models.monitoring")
        monitoring = self.mapping(model, "monitoring", path, _MONITORING_KEYS, required)
        if monitoring is None:
            return None
        score = self.value(monitoring, "score", path, as_column_name, None)
        features = self.columns(monitoring, path)
        if score is not None and score in features:
            self.report(
                monitoring,
                "score",
                _join(path, "score"),
                f'"{score}" is also in monitoring.features; the score is checked like a feature '
                "already. Remove it from features.",
            )
        return Monitoring(
            data=self.value(monitoring, "data", path, as_relative_path, None, required=True),
            reference=self.value(
                monitoring, "reference", path, as_relative_path, None, required=True
            ),
            features=features,
            score=score,
            ranges=self.ranges(monitoring, path),
            max_psi=self.value(monitoring, "max_psi", path, as_non_negative_number, 0.2),
            max_null_share=self.value(monitoring, "max_null_share", path, _as_share, 0.0),
            max_out_of_range=self.value(monitoring, "max_out_of_range", path, _as_share, 0.0),
            ground_truth=self.ground_truth(monitoring, path, score),
            schedule=self.value(monitoring, "schedule", path, as_schedule, "@daily"),
            resources=self.resources(monitoring, path, DEFAULT_RESOURCES),
            retrain=self.retrain(monitoring, path),
        )

    def columns(self, monitoring: CommentedMap, path: str) -> tuple[str, ...]:
        field = _join(path, "features")
        items = self.sequence(
            monitoring,
            "features",
            field,
            what="column names",
            example="For example: features: [tenure_months, monthly_charges]",
            at_least_one="column",
        )
        names: list[str] = []
        seen: dict[Any, int | None] = {}
        for index, _ in enumerate(items):
            name = self.checked(
                items, index, f"{field}[{index}]", as_column_name, "Write a column name."
            )
            self.unique(seen, name, items, index, field, "feature column", "Remove one.")
            if name is not None:
                names.append(name)
        return tuple(names)

    def ranges(self, monitoring: CommentedMap, path: str) -> tuple[tuple[str, float, float], ...]:
        field = _join(path, "ranges")
        ranges = monitoring.get("ranges")
        if ranges is None:
            return ()
        if not isinstance(ranges, CommentedMap):
            example = "For example: ranges: {tenure_months: [0, 120]}"
            self.report(monitoring, "ranges", field, str(wrong(ranges, "a mapping", example)))
            return ()
        found = []
        for name in ranges:
            try:
                column = as_column_name(name)
            except Invalid as invalid:
                self.report(ranges, name, _join(field, key_text(name)), str(invalid), at_key=True)
                continue
            interval = self.checked(ranges, name, _join(field, column), _as_interval, "")
            if interval is not None:
                found.append((column, *interval))
        return tuple(found)

    def ground_truth(
        self, monitoring: CommentedMap, path: str, score: str | None
    ) -> GroundTruth | None:
        path = _join(path, "ground_truth")
        truth = self.mapping(
            monitoring,
            "ground_truth",
            path,
            _GROUND_TRUTH_KEYS,
            _required("models.monitoring.ground_truth"),
        )
        if truth is None:
            return None
        if score is None and "score" not in monitoring:
            self.report(
                monitoring,
                "ground_truth",
                path,
                "compares the score with the label, but monitoring.score is not set; add "
                "score: <the column holding the model's output>.",
                at_key=True,
            )
        low, high = self.bounds(truth, path)
        label = self.value(truth, "label", path, as_column_name, None, required=True)
        metric = self.value(truth, "metric", path, _as_monitor_metric, "accuracy")
        self.metric_direction(truth, path, metric, low, high)
        if label is not None and label == score:
            self.report(
                truth,
                "label",
                _join(path, "label"),
                f'"{label}" is the score column; the label is the column holding the true '
                "outcome, to compare the score with.",
            )
        return GroundTruth(label=label, metric=metric, min=low, max=high)

    def metric_direction(
        self,
        truth: CommentedMap,
        path: str,
        metric: str | None,
        low: float | None,
        high: float | None,
    ) -> None:
        """Refuse a bound on the side where a better model fails (min of an error...)."""
        if metric in LOWER_IS_BETTER and low is not None:
            self.report(
                truth,
                "min",
                _join(path, "min"),
                f"{metric} is an error (lower is better): with min: {low:g} a model whose "
                f"{metric} is below {low:g}, a better one, fails. Use max: {low:g}.",
            )
        if metric is not None and metric not in LOWER_IS_BETTER and high is not None:
            self.report(
                truth,
                "max",
                _join(path, "max"),
                f"{metric} is higher-is-better: with max: {high:g} a model whose {metric} is "
                f"above {high:g}, a better one, fails. Use min: {high:g}.",
            )

    def retrain(self, monitoring: CommentedMap, path: str) -> Retrain:
        path = _join(path, "retrain")
        retrain = self.mapping(monitoring, "retrain", path, _RETRAIN_KEYS)
        return Retrain(
            enabled=self.value(retrain, "enabled", path, as_bool, True),
            cooldown_hours=self.value(
                retrain, "cooldown_hours", path, as_non_negative_number, 24.0
            ),
            timeout_hours=self.value(retrain, "timeout_hours", path, as_non_negative_number, 6.0),
        )

    def monitoring_reads_spark_output(
        self, model: CommentedMap, path: str, batch: Batch, monitoring: Monitoring
    ) -> None:
        """A Spark inference DAG writes each day as one Parquet file: monitoring.data must be
        that file, or the monitoring DAG would check data nothing writes."""
        scoring = next((d.spark for d in batch.dags if d.spark is not None), None)
        if scoring is None or monitoring.data is None:
            return
        expected = scoring.day_file("${ds}")
        if monitoring.data != expected:
            section = model["monitoring"]
            self.report(
                section,
                "data",
                _join(path, "monitoring.data"),
                f'found "{monitoring.data}", which the Spark inference DAG does not write: it '
                f"writes each day to {expected} under the data prefix. Set data: {expected}",
            )

    def with_monitoring_dag(
        self, model: CommentedMap, path: str, batch: Batch, monitoring: Monitoring
    ) -> Batch:
        """`batch` with the product's monitoring DAG; a hand-written one may not stay beside it."""
        if any(dag.kind == "monitoring" for dag in batch.dags):
            self.report(
                model,
                "monitoring",
                _join(path, "monitoring"),
                "the model has both a monitoring: section and a batch DAG of kind monitoring; "
                "the section generates that DAG. Remove the batch DAG of kind monitoring.",
                at_key=True,
            )
            return batch
        dag = Dag(
            kind="monitoring",
            entrypoint="modelci monitor",
            schedule=monitoring.schedule,
            retries=0,  # a retry would check the same data again
            resources=monitoring.resources,
            builtin=True,
        )
        return Batch(dags=(*batch.dags, dag))

    def resources(self, container: CommentedMap | None, path: str, default: Resources) -> Resources:
        """`container.resources`, each omitted field taken from `default`."""
        path = _join(path, "resources")
        resources = self.mapping(container, "resources", path, _RESOURCE_KEYS)
        if resources is None:
            return default
        return Resources(
            cpu=self.value(resources, "cpu", path, as_cpu, default.cpu),
            memory=self.value(resources, "memory", path, as_memory, default.memory),
            gpu=self.value(resources, "gpu", path, as_gpu, default.gpu),
        )

    def entrypoint(self, value: Any) -> str:
        """A file path relative to the repository root that exists inside it."""
        text = as_text(value, "train.py")
        root = self.repo_root.absolute()
        if (
            PurePosixPath(text).is_absolute()
            or text.startswith("~")
            or re.match(r"[A-Za-z]:", text)
        ):
            raise Invalid(
                f'found the absolute path "{text}"; expected a path relative to the repository '
                f'root ({root}), e.g. "train.py".'
            )
        normal = posixpath.normpath(text)
        try:
            return self.repository_file(text, normal, root)
        except OSError as error:  # a name too long, a loop of symlinks...
            raise Invalid(
                f"found {describe(text)}, a path that cannot be looked at ({error.strerror}); "
                "expected the path of a file in the repository."
            ) from None

    @staticmethod
    def repository_file(text: str, normal: str, root: Path) -> str:
        """`normal` if it names a file inside `root`; else Invalid saying why."""
        target = root / normal
        if normal == ".." or normal.startswith("../") or not _inside(target, root):
            raise Invalid(
                f'found "{text}", which points outside the repository root ({root}); '
                "expected a path inside it."
            )
        if not target.is_file():
            # Named relative to the root: the absolute path is the CI runner's, not the user's.
            state = "is a directory" if target.is_dir() else "does not exist"
            raise Invalid(
                f'found "{text}", but {normal} {state} in the repository; expected a file. '
                "Fix the path (relative to the repository root) or add the file."
            )
        return normal


def _as_code_glob(value: Any) -> str:
    """A path or glob relative to the repository root, as git's `:(exclude,glob)` pathspec
    reads it: `*` within a name, `**` across directories; a directory leaves out all below."""
    text = as_text(value, "data/**")
    expected = 'a path or glob relative to the repository root, e.g. "data/**" or "*.parquet"'
    if text.startswith(("/", ":", "!")):
        fix = "Write it relative to the repository root, without a leading / or : (no negation)."
        raise wrong(value, expected, fix)
    if "\\" in text or any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise wrong(value, expected, "Write it without a backslash or a control character.")
    if any(part in ("", ".", "..") for part in text.removesuffix("/").split("/")):
        raise wrong(value, expected, "Write it without an empty, . or .. part.")
    return text


def _as_share(value: Any) -> float:
    share = as_non_negative_number(value)
    if share > 1:
        raise wrong(value, "a share from 0 to 1", "Write 0.01 for 1 %.")
    return share


def _as_interval(value: Any) -> tuple[float, float]:
    expected = "a list [low, high] of two numbers, low <= high"
    if not isinstance(value, list) or len(value) != 2:
        raise wrong(value, expected, "For example: [0, 120].")
    low, high = as_number(value[0]), as_number(value[1])
    if low > high:
        raise wrong(value, expected, "Swap the two numbers.")
    return low, high


def _none_fix(key: Any, required: bool) -> str:
    """The advice for a null where a value is needed."""
    if isinstance(key, int):
        return "Write the item or remove it."
    return "Give it a value." if required else "Give it a value or remove the key."


def _inside(target: Path, root: Path) -> bool:
    """Whether target, with symlinks resolved, stays under root."""
    return target.resolve().is_relative_to(root.resolve())
