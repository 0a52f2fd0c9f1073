"""The model config file (`mlops.yaml`) a data scientist keeps in a model repository.

This module holds the typed, validated form of the file and `load_config`, which reads it.
It is pure: no I/O beyond reading the file itself and checking that the entry points it
names exist; no knowledge of MLflow, git, S3 or GitLab. The README ("Model config")
describes every field.
"""

from __future__ import annotations

import difflib
import json
import math
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .errors import ConfigError, Problem
from .yamlio import node_position, problem_at, read_yaml, value_position

CONFIG_FILE_NAME = "mlops.yaml"
DAG_KINDS = ("training", "inference", "monitoring")


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
class Train:
    entrypoint: str  # path relative to the repository root
    args: tuple[str, ...] = ()
    resources: Resources = Resources(cpu="1", memory="2Gi")


@dataclass(frozen=True)
class Dag:
    kind: str  # one of DAG_KINDS, unique per model
    entrypoint: str  # path relative to the repository root
    args: tuple[str, ...] = ()
    schedule: str | None = None  # cron expression or preset ("@daily"); None: triggered by hand
    retries: int = 1
    resources: Resources = Resources(cpu="1", memory="2Gi")


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
class Model:
    name: str  # [a-z][a-z0-9-]*, at most 20 characters, unique in the file
    flavor: str  # the MLflow flavor the training script logs with ("sklearn", "pyfunc", ...)
    train: Train
    gate: Gate
    batch: Batch = Batch()
    online: Online = Online()


@dataclass(frozen=True)
class Stand:
    name: str  # e.g. "staging", "production"
    manual: bool = False  # promotion into this stand needs a manual, protected job


@dataclass(frozen=True)
class Config:
    path: str  # the file it was read from, as given
    version: int
    python: str  # "3.11": the Python version of the model code
    image: str | None  # image for batch pods; None: the platform's runtime image
    models: tuple[Model, ...]
    stands: tuple[Stand, ...]

    def model(self, name: str) -> Model:
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(name)


# --- what the loader accepts and fills in -------------------------------------------------------

SUPPORTED_VERSION = 1
DEFAULT_PYTHON = "3.11"
DEFAULT_RESOURCES = Resources(cpu="1", memory="2Gi")
DEFAULT_STANDS = (Stand(name="production", manual=False),)
SCHEDULE_PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly")
RESERVED_STAND_PREFIX = "b-"  # feature-branch environments are named b-<branch>
MAX_NAME_LENGTH = 20
MAX_RETRIES = 10
# MLflow flavors whose models load with mlflow.pyfunc (what batch pods and KServe use).
FLAVORS = (
    "sklearn",
    "xgboost",
    "lightgbm",
    "catboost",
    "statsmodels",
    "prophet",
    "pmdarima",
    "pytorch",
    "tensorflow",
    "keras",
    "onnx",
    "spark",
    "h2o",
    "spacy",
    "transformers",
    "sentence_transformers",
    "paddle",
    "pyfunc",
)

_NAME = re.compile(rf"[a-z](?:[a-z0-9-]{{0,{MAX_NAME_LENGTH - 2}}}[a-z0-9])?")
_PYTHON = re.compile(r"3\.(9|1[0-3])")
_METRIC_KEY = re.compile(r"[A-Za-z0-9_\-. /]+")  # what MLflow accepts as a metric key
_CPU = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(m?)")
_MEMORY = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?")
_MEMORY_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_MIN_MEMORY_BYTES = 10**6

_TOP_KEYS = ("version", "python", "image", "stands", "models")
_STAND_KEYS = ("name", "manual")
_MODEL_KEYS = ("name", "flavor", "train", "gate", "batch", "online")
_TRAIN_KEYS = ("entrypoint", "args", "resources")
_GATE_KEYS = ("metrics", "compare_with_production", "tolerance")
_METRIC_KEYS = ("name", "min", "max")
_BATCH_KEYS = ("resources", "dags")
_DAG_KEYS = ("kind", "entrypoint", "args", "schedule", "retries", "resources")
_ONLINE_KEYS = ("enabled", "min_replicas", "max_replicas", "resources")
_RESOURCE_KEYS = ("cpu", "memory", "gpu")
_EXAMPLES = {  # shown when a required key is missing
    "version": "1",
    "models": "[{name: churn, flavor: sklearn, train: ..., gate: ...}]",
    "name": "churn",
    "flavor": "sklearn",
    "train": "{entrypoint: train.py}",
    "gate": "{metrics: [{name: accuracy, min: 0.8}]}",
    "metrics": "[{name: accuracy, min: 0.8}]",
    "entrypoint": "score.py",
    "kind": "inference",
}

T = TypeVar("T")


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


# --- value checks: each returns the normalised value or raises _Invalid with the message ---------


class _Invalid(Exception):
    """A value is wrong; the message says what was found, what is expected and the fix."""


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"the string {json.dumps(shown)}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value}"


def _looks_like_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _wrong(value: Any, expected: str, fix: str = "") -> _Invalid:
    if not fix:
        if value is None:
            fix = "Give it a value or remove the key."
        elif isinstance(value, str) and _looks_like_number(value) and "number" in expected:
            fix = "Remove the quotes."
        elif isinstance(value, str) and "true or false" in expected:
            fix = "Write true or false without quotes (yes/no/on/off are text in YAML 1.2)."
        elif isinstance(value, int | float | bool) and "string" in expected:
            fix = "Put it in quotes."
    return _Invalid(f"found {_describe(value)}; expected {expected}." + (f" {fix}" if fix else ""))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_text(value: Any, example: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _wrong(value, f'a non-empty string, e.g. "{example}"')
    return value.strip()


def _as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _wrong(value, "true or false")
    return value


def _as_int_between(low: int, high: int | None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        expected = (
            f"a whole number from {low} to {high}"
            if high is not None
            else (f"a whole number >= {low}")
        )
        if not _is_int(value) or value < low or (high is not None and value > high):
            raise _wrong(value, expected)
        return int(value)

    return check


def _as_number(value: Any, *, minimum: float | None = None) -> float:
    expected = "a number" if minimum is None else f"a number >= {minimum:g}"
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise _wrong(value, expected)
    if minimum is not None and value < minimum:
        raise _wrong(value, expected)
    return float(value)


def _as_optional_number(value: Any) -> float | None:
    return None if value is None else _as_number(value)


def _as_non_negative_number(value: Any) -> float:
    return _as_number(value, minimum=0)


def _suggest_name(text: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:MAX_NAME_LENGTH].rstrip("-")
    return name


def _as_name(kind: str, example: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        rule = (
            f"a {kind} name of lowercase letters, digits and dashes that starts with a letter, "
            f"does not end with a dash and has at most {MAX_NAME_LENGTH} characters"
        )
        if not isinstance(value, str):
            raise _wrong(value, f'{rule}, e.g. "{example}"')
        if _NAME.fullmatch(value):
            return value
        detail = f" (it has {len(value)} characters)" if len(value) > MAX_NAME_LENGTH else ""
        suggestion = _suggest_name(value)
        fix = f'Try "{suggestion}".' if suggestion and suggestion != value else ""
        raise _wrong(value, rule + detail, fix or f'For example "{example}".')

    return check


_as_model_name = _as_name("model", "churn")


def _as_stand_name(value: Any) -> str:
    name = _as_name("stand", "staging")(value)
    if name.startswith(RESERVED_STAND_PREFIX):
        raise _Invalid(
            f'found "{name}"; stand names must not start with "{RESERVED_STAND_PREFIX}" '
            "(that prefix is reserved for feature-branch environments). Rename the stand."
        )
    return name


def _as_version(value: Any) -> int:
    if not _is_int(value) or value != SUPPORTED_VERSION:
        fix = "" if not _is_int(value) else "Write version: 1 (or use a modelci that reads it)."
        raise _wrong(value, f"the number {SUPPORTED_VERSION} (the config format version)", fix)
    return int(value)


def _as_python(value: Any) -> str:
    expected = 'a Python version "3.9" to "3.13" as a string, e.g. "3.11"'
    if isinstance(value, float):
        raise _wrong(
            value, expected, 'Put it in quotes: python: "3.11" (YAML reads 3.10 as the number 3.1).'
        )
    if not isinstance(value, str) or not _PYTHON.fullmatch(value.strip()):
        raise _wrong(value, expected)
    return value.strip()


def _as_image(value: Any) -> str | None:
    return None if value is None else _as_text(value, "registry.example.com/ml/churn:1.0")


def _as_flavor(value: Any) -> str:
    if isinstance(value, str) and value in FLAVORS:
        return value
    close = difflib.get_close_matches(str(value), FLAVORS, n=1)
    fix = (
        f'Did you mean "{close[0]}"?' if close else "Use the flavor your training script logs with."
    )
    raise _wrong(value, "an MLflow flavor: " + ", ".join(FLAVORS), fix)


def _as_metric_name(value: Any) -> str:
    if not isinstance(value, str) or not _METRIC_KEY.fullmatch(value):
        raise _wrong(
            value,
            'the name of a metric the training run logs (letters, digits, "_-. /"), '
            'e.g. "accuracy"',
        )
    return value


def _as_dag_kind(value: Any) -> str:
    if isinstance(value, str) and value in DAG_KINDS:
        return value
    close = difflib.get_close_matches(str(value), DAG_KINDS, n=1)
    raise _wrong(
        value, "one of " + ", ".join(DAG_KINDS), f'Did you mean "{close[0]}"?' if close else ""
    )


def _as_cpu(value: Any) -> str:
    expected = 'a CPU amount: a whole number of cores (1, 2) or a string like "500m" or "1.5"'
    if _is_int(value) and value > 0:
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and value > 0:
        # Kubernetes reads cpu: 0.5 as 500m; keep that meaning, written as a string.
        millicores = value * 1000
        if abs(millicores - round(millicores)) < 1e-6:
            whole = round(millicores)
            return str(whole // 1000) if whole % 1000 == 0 else f"{whole}m"
        raise _wrong(value, expected, "Kubernetes cannot divide a core finer than 1m.")
    if isinstance(value, str):
        match = _CPU.fullmatch(value.strip())
        if match and float(match.group(1)) > 0:
            return value.strip()
    raise _wrong(value, expected)


def _as_memory(value: Any) -> str:
    expected = 'a memory size: a string like "512Mi" or "2Gi" (or "2G" for 10^9 bytes)'
    if _is_int(value):
        if value >= _MIN_MEMORY_BYTES:
            return str(value)
        raise _wrong(value, expected, f'A bare number counts bytes; did you mean "{value}Gi"?')
    if isinstance(value, str):
        text = value.strip()
        match = _MEMORY.fullmatch(text)
        if match:
            amount = float(match.group(1)) * _MEMORY_UNITS[match.group(2) or ""]
            if amount >= _MIN_MEMORY_BYTES:
                return text
            raise _wrong(value, expected + ", at least 1M")
        if text.endswith("m") and _MEMORY.fullmatch(text[:-1]):
            raise _wrong(
                value, expected, f'"m" means thousandths of a byte; did you mean "{text[:-1]}Mi"?'
            )
    raise _wrong(value, expected)


def _as_gpu(value: Any) -> int:
    return _as_int_between(0, None)(value)


def _as_schedule(value: Any) -> str | None:
    if value is None:
        return None
    expected = (
        'a cron expression with 5 fields like "0 6 * * *", one of '
        + ", ".join(SCHEDULE_PRESETS)
        + ", or null for a DAG started by hand"
    )
    if not isinstance(value, str):
        raise _wrong(value, expected)
    text = " ".join(value.split())
    if text.startswith("@"):
        if text in SCHEDULE_PRESETS:
            return text
        close = difflib.get_close_matches(text, SCHEDULE_PRESETS, n=1)
        raise _wrong(value, expected, f'Did you mean "{close[0]}"?' if close else "")
    problem = _cron_problem(text)
    if problem:
        raise _wrong(value, expected, problem)
    return text


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_FIELDS = (  # label, lowest, highest, names (numbered from lowest)
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _WEEKDAYS),
)
_CRON_PART = re.compile(r"(\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/([0-9]+))?")


def _cron_problem(expression: str) -> str:
    """Why a 5-field cron expression is invalid, or "" when it is valid."""
    fields = expression.split(" ")
    if len(fields) != 5:
        return (
            f"It has {len(fields)} fields; cron needs 5: minute hour day-of-month month "
            "day-of-week (no seconds)."
        )
    for text, (label, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for part in text.lower().split(","):
            match = _CRON_PART.fullmatch(part)
            if not match:
                return f'The {label} field "{text}" is not valid cron.'
            span, step = match.groups()
            if step is not None and int(step) == 0:
                return f'The {label} field "{text}" has a step of 0.'
            if span == "*":
                continue
            bounds = [_cron_number(bound, low, names) for bound in span.split("-")]
            if any(bound is None or not low <= bound <= high for bound in bounds):
                return f'The {label} field "{text}" is outside {low}-{high}.'
            if len(bounds) == 2 and bounds[0] > bounds[1]:
                return f'The {label} field "{text}" is a range that runs backwards.'
    return ""


def _cron_number(text: str, low: int, names: tuple[str, ...]) -> int | None:
    if text.isdigit():
        return int(text)
    if text in names:
        return names.index(text) + low
    return None


def _join(parent: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


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
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f'Did you mean "{close[0]}"? ' if close else ""
            self.report(
                mapping,
                key,
                _join(path, str(key)),
                f'unknown key "{key}". {hint}Expected one of: {", ".join(allowed)}.',
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
    ) -> CommentedMap | None:
        if container is None or (isinstance(container, dict) and key not in container):
            return None
        value = container[key]
        if not isinstance(value, CommentedMap):
            keys = ", ".join(allowed)
            self.report(container, key, path, str(_wrong(value, f"a mapping with keys {keys}")))
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
            self.report(container, key, path, str(_wrong(value, f"a list of {what}", example)))
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
    ) -> T | None:
        if mapping is None or key not in mapping:
            return default
        try:
            return check(mapping[key])
        except _Invalid as invalid:
            self.report(mapping, key, _join(path, key), str(invalid))
            return None

    def strings(self, mapping: CommentedMap | None, key: str, path: str) -> tuple[str, ...]:
        items = self.sequence(
            mapping,
            key,
            _join(path, key),
            what="strings",
            example='For example: args: ["--seed", "7"]',
        )
        strings = []
        for index, item in enumerate(items):
            if isinstance(item, str):
                strings.append(item)
            else:
                self.report(
                    items, index, f"{_join(path, key)}[{index}]", str(_wrong(item, "a string"))
                )
        return tuple(strings)

    def unique(
        self, seen: dict[Any, int | None], value: Any, mapping: Any, key: str, path: str, what: str
    ) -> None:
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
                "Rename or remove one.",
            )
        else:
            seen[value] = line

    # sections

    def config(self, document: CommentedMap) -> Config:
        self.check_keys(document, "", _TOP_KEYS, required=("version", "models"))
        return Config(
            path=self.file,
            version=self.value(document, "version", "", _as_version, None),
            python=self.value(document, "python", "", _as_python, DEFAULT_PYTHON),
            image=self.value(document, "image", "", _as_image, None),
            models=self.models(document),
            stands=self.stands(document),
        )

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
        for path, stand in self.mappings(items, "stands", _STAND_KEYS, required=("name",)):
            name = self.value(stand, "name", path, _as_stand_name, None)
            self.unique(seen, name, stand, "name", path, "stand name")
            stands.append(
                Stand(name=name, manual=self.value(stand, "manual", path, _as_bool, False))
            )
        return tuple(stands)

    def models(self, document: CommentedMap) -> tuple[Model, ...]:
        items = self.sequence(
            document,
            "models",
            "models",
            what="models",
            example='See the README, section "Model config".',
            at_least_one="model",
        )
        models, seen = [], {}
        required = ("name", "flavor", "train", "gate")
        for path, model in self.mappings(items, "models", _MODEL_KEYS, required):
            name = self.value(model, "name", path, _as_model_name, None)
            self.unique(seen, name, model, "name", path, "model name")
            train = self.train(model, path)
            models.append(
                Model(
                    name=name,
                    flavor=self.value(model, "flavor", path, _as_flavor, None),
                    train=train,
                    gate=self.gate(model, path),
                    batch=self.batch(model, path, train),
                    online=self.online(model, path),
                )
            )
        return tuple(models)

    def train(self, model: CommentedMap, path: str) -> Train:
        path = _join(path, "train")
        train = self.mapping(model, "train", path, _TRAIN_KEYS, required=("entrypoint",))
        return Train(
            entrypoint=self.value(train, "entrypoint", path, self.entrypoint, None),
            args=self.strings(train, "args", path),
            resources=self.resources(train, path, DEFAULT_RESOURCES),
        )

    def gate(self, model: CommentedMap, path: str) -> Gate:
        path = _join(path, "gate")
        gate = self.mapping(model, "gate", path, _GATE_KEYS, required=("metrics",))
        items = self.sequence(
            gate,
            "metrics",
            _join(path, "metrics"),
            what="metrics",
            example="For example: metrics: [{name: accuracy, min: 0.8}]",
            at_least_one="metric",
        )
        metrics, seen = [], {}
        metric_items = self.mappings(items, f"{path}.metrics", _METRIC_KEYS, required=("name",))
        for metric_path, metric in metric_items:
            metrics.append(self.threshold(metric, metric_path))
            self.unique(seen, metrics[-1].name, metric, "name", metric_path, "metric name")
        return Gate(
            metrics=tuple(metrics),
            compare_with_production=self.value(
                gate, "compare_with_production", path, _as_bool, True
            ),
            tolerance=self.value(gate, "tolerance", path, _as_non_negative_number, 0.0),
        )

    def threshold(self, metric: CommentedMap, path: str) -> MetricThreshold:
        name = self.value(metric, "name", path, _as_metric_name, None)
        low = self.value(metric, "min", path, _as_optional_number, None)
        high = self.value(metric, "max", path, _as_optional_number, None)
        if metric.get("min") is None and metric.get("max") is None:
            self.report_at_node(
                metric,
                path,
                "the threshold has neither min nor max; add min: (pass when the metric is at "
                "least that) or max: (pass when it is at most that), or both.",
            )
        elif low is not None and high is not None and low > high:
            self.report(
                metric,
                "max",
                _join(path, "max"),
                f"found max {high:g} below min {low:g}; no value can pass. Swap or fix them.",
            )
        return MetricThreshold(name=name, min=low, max=high)

    def batch(self, model: CommentedMap, path: str, train: Train) -> Batch:
        path = _join(path, "batch")
        batch = self.mapping(model, "batch", path, _BATCH_KEYS)
        resources = self.resources(batch, path, DEFAULT_RESOURCES)
        items = self.sequence(
            batch,
            "dags",
            _join(path, "dags"),
            what="DAGs",
            example='See the README, section "Model config".',
        )
        dags, seen = [], {}
        for dag_path, dag in self.mappings(items, f"{path}.dags", _DAG_KEYS, required=("kind",)):
            dags.append(self.dag(dag, dag_path, train, resources))
            self.unique(seen, dags[-1].kind, dag, "kind", dag_path, "DAG kind")
        return Batch(dags=tuple(dags))

    def dag(self, dag: CommentedMap, path: str, train: Train, resources: Resources) -> Dag:
        kind = self.value(dag, "kind", path, _as_dag_kind, None)
        entrypoint: str | None = None
        args: tuple[str, ...] = self.strings(dag, "args", path)
        if "entrypoint" in dag:
            entrypoint = self.value(dag, "entrypoint", path, self.entrypoint, None)
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
        return Dag(
            kind=kind,
            entrypoint=entrypoint,
            args=args,
            schedule=self.value(dag, "schedule", path, _as_schedule, None),
            retries=self.value(dag, "retries", path, _as_int_between(0, MAX_RETRIES), 1),
            resources=self.resources(dag, path, resources),
        )

    def online(self, model: CommentedMap, path: str) -> Online:
        path = _join(path, "online")
        online = self.mapping(model, "online", path, _ONLINE_KEYS)
        low = self.value(online, "min_replicas", path, _as_int_between(0, None), 1)
        high = self.value(online, "max_replicas", path, _as_int_between(1, None), None)
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
            enabled=self.value(online, "enabled", path, _as_bool, False),
            min_replicas=low,
            max_replicas=high,
            resources=self.resources(online, path, DEFAULT_RESOURCES),
        )

    def resources(self, container: CommentedMap | None, path: str, default: Resources) -> Resources:
        """`container.resources`, each omitted field taken from `default`."""
        path = _join(path, "resources")
        resources = self.mapping(container, "resources", path, _RESOURCE_KEYS)
        if resources is None:
            return default
        return Resources(
            cpu=self.value(resources, "cpu", path, _as_cpu, default.cpu),
            memory=self.value(resources, "memory", path, _as_memory, default.memory),
            gpu=self.value(resources, "gpu", path, _as_gpu, default.gpu),
        )

    def entrypoint(self, value: Any) -> str:
        """A file path relative to the repository root that exists inside it."""
        text = _as_text(value, "train.py")
        root = self.repo_root.absolute()  # messages name the full path looked at
        if (
            PurePosixPath(text).is_absolute()
            or text.startswith("~")
            or re.match(r"[A-Za-z]:", text)
        ):
            raise _Invalid(
                f'found the absolute path "{text}"; expected a path relative to the repository '
                f'root ({root}), e.g. "train.py".'
            )
        normal = posixpath.normpath(text)
        target = root / normal
        if normal == ".." or normal.startswith("../") or not _inside(target, root):
            raise _Invalid(
                f'found "{text}", which points outside the repository root ({root}); '
                "expected a path inside it."
            )
        if not target.is_file():
            state = "is a directory" if target.is_dir() else "does not exist"
            raise _Invalid(
                f'found "{text}", but {target} {state}; expected a file in the repository. '
                "Fix the path (relative to the repository root) or add the file."
            )
        return normal


def _inside(target: Path, root: Path) -> bool:
    """Whether target, with symlinks resolved, stays under root."""
    return target.resolve().is_relative_to(root.resolve())
