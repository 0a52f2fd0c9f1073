"""The value checks of `mlops.yaml`: each takes what YAML read and returns the normalised value
or raises `Invalid` saying what was found, what is expected and, when it is known, the fix.

The rules are those of the systems downstream, so a value they would refuse is refused here, at
its line: Kubernetes quantities within what a node can have, Spark sizes that Spark, its JVMs
and the Spark Operator read alike, OCI image references, MLflow metric keys, cron expressions
that can fire, and the `${...}` placeholders of `macros.py`. Messages are written for people:
values as YAML writes them, never Python's notation. Pure: no I/O.
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from .macros import MACROS, unknown_placeholders
from .naming import FEATURE_PREFIX, MAX_NAME_LENGTH, MODEL_NAME_PATTERN, STAND_NAME_PATTERN
from .yamlio import UnreadableScalar, plain_scalar

SUPPORTED_VERSION = 1
SCHEDULE_PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly")
MAX_RETRIES = 10
# Upper bounds on what a pod may ask for: more than any node offers, so a larger value is a
# typo that would leave the pod pending forever.
MAX_CPU_CORES = 512
MAX_MEMORY = "4Ti"
MAX_MEMORY_BYTES = 4 * 2**40
MAX_GPUS = 16
MAX_REPLICAS = 1000  # serving pods per model and environment
MIN_MEMORY_BYTES = 10**6
MAX_METRIC_NAME_LENGTH = 250  # MLflow's limit on a metric key
MAX_IMAGE_LENGTH = 255
IMAGE_EXAMPLE = "registry.example.com/ml/churn:1.0"
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

_PYTHON = re.compile(r"3\.(9|1[0-3])")
# The characters MLflow accepts in a metric key where it runs on Linux (`\w` is any letter or
# digit, as in MLflow's own pattern).
_METRIC_KEY = re.compile(r"[/\w.\- :]+")
METRIC_KEY_CHARACTERS = 'letters, digits, spaces and "_-.:/"'
_CPU = re.compile(r"(-?)(\d+(?:\.\d+)?|\.\d+)(m?)")
_MEMORY = re.compile(r"(-?)(\d+(?:\.\d+)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?")
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
_CPU_EXPECTED = 'a CPU amount: a whole number of cores (1, 2) or a string like "500m" or "1.5"'
_MEMORY_EXPECTED = 'a memory size: a string like "512Mi" or "2Gi" (or "2G" for 10^9 bytes)'
_TOO_LITTLE_MEMORY = 'Memory must be at least 1M, e.g. "512Mi".'
_MAX_SHOWN_DIGITS = 40  # a longer whole number is shown cut, with its digit count
_MAX_STR_BITS = 10_000  # about 3000 digits: well inside what str() of an int allows


class Invalid(Exception):
    """A value is wrong; the message says what was found, what is expected and maybe the fix."""

    def __init__(self, message: str, *, has_fix: bool = True) -> None:
        super().__init__(message)
        self.has_fix = has_fix


def wrong(value: Any, expected: str, fix: str = "") -> Invalid:
    """`found <value>; expected <expected>. <fix>`; without a fix the loader may add advice."""
    message = f"found {describe(value)}; expected {expected}."
    return Invalid(message + (f" {fix}" if fix else ""), has_fix=bool(fix))


def describe(value: Any) -> str:
    """The value as a message shows it; never fails, whatever YAML read."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return _describe_whole_number(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "the number .nan (not a number)"
        if math.isinf(value):
            return f"the number {value} (infinite: .inf, or beyond the largest number, ~1.8e308)"
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"the string {json.dumps(shown)}"
    if isinstance(value, UnreadableScalar):
        return value.description
    if isinstance(value, datetime.date):
        kind = "date and time" if isinstance(value, datetime.datetime) else "date"
        return f"the {kind} {value.isoformat()} (YAML reads an unquoted date as a date, not text)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {str(value)[:40]}"


def _describe_whole_number(value: int) -> str:
    if value.bit_length() > _MAX_STR_BITS:  # str() refuses ints over 4300 digits
        digits = math.floor(value.bit_length() * math.log10(2)) + 1
        return f"a whole number with about {digits} digits"
    text = str(value)
    digits = len(text.lstrip("-"))
    shown = text if digits <= _MAX_SHOWN_DIGITS else f"{text[:20]}... ({digits} digits)"
    return f"the number {shown}"


def word_list(words: Sequence[str], last: str = "or") -> str:
    """Words as a person lists them: `a`, `a or b`, `a, b or c` (`and` with last="and")."""
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {last} {words[-1]}"


def key_text(key: Any) -> str:
    """A mapping key as YAML writes it (true, null, [a, b]), for messages and field paths."""
    if isinstance(key, str):
        return key
    if key is None:
        return "null"
    if isinstance(key, tuple | list):
        return "[" + ", ".join(key_text(item) for item in key) + "]"
    if isinstance(key, Mapping):
        return "{" + ", ".join(f"{key_text(k)}: {key_text(v)}" for k, v in key.items()) + "}"
    text = written_text(key)
    return text if text is not None else describe(key)


def written_text(value: Any) -> str | None:
    """The text of a scalar as it was most likely written, to test it quoted; None if unknown."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value) if value.bit_length() <= _MAX_STR_BITS else None
    if isinstance(value, float):
        return written_float(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, UnreadableScalar):
        return value.text
    return None


def written_float(value: float) -> str:
    """The float with the trailing zeros it was written with (ruamel keeps the width): 3.10."""
    width, precision = getattr(value, "_width", None), getattr(value, "_prec", None)
    exact = getattr(value, "_exp", None) is None and math.isfinite(value)
    if exact and isinstance(width, int) and isinstance(precision, int) and 0 <= precision < width:
        return f"{value:.{width - precision - 1}f}"
    return repr(float(value))


def accepts(check: Callable[[Any], Any], value: Any) -> bool:
    try:
        check(value)
    except Invalid:
        return False
    return True


def advice(value: Any, check: Callable[[Any], Any], none_fix: str) -> str:
    """General advice for a value `check` refused, given only when following it gives a value
    `check` accepts."""
    if value is None:
        return none_fix
    if isinstance(value, str):
        try:
            unquoted = plain_scalar(value)
        except ValueError:
            unquoted = value
        if not isinstance(unquoted, str) and accepts(check, unquoted):
            return "Remove the quotes."
        if accepts(check, True):  # a boolean field
            return "Write true or false without quotes (yes/no/on/off are text in YAML 1.2)."
        return ""
    text = written_text(value)
    if text is not None and accepts(check, text):
        return "Put it in quotes."
    return ""


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def as_text(value: Any, example: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise wrong(value, f'a non-empty string, e.g. "{example}"')
    return value.strip()


def as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise wrong(value, "true or false")
    return value


def as_int_between(low: int, high: int) -> Callable[[Any], int]:
    """A whole number from low to high, e.g. retries."""

    def check(value: Any) -> int:
        if not is_int(value) or not low <= value <= high:
            raise wrong(value, f"a whole number from {low} to {high}")
        return int(value)

    return check


def as_count(low: int, high: int, why: str) -> Callable[[Any], int]:
    """A whole number >= low whose upper bound `high` is a sanity limit `why` explains."""

    def check(value: Any) -> int:
        expected = f"a whole number >= {low}, at most {high}"
        if not is_int(value) or value < low:
            raise wrong(value, expected)
        if value > high:
            raise wrong(value, expected, why)
        return int(value)

    return check


def as_number(value: Any, *, minimum: float | None = None) -> float:
    expected = "a number" if minimum is None else f"a number >= {minimum:g}"
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise wrong(value, expected)
    try:
        number = float(value)
    except OverflowError:  # an int beyond the largest float
        raise wrong(value, expected, "It is too large to be a number here.") from None
    if not math.isfinite(number):
        raise wrong(value, expected, "Write a finite number.")
    if minimum is not None and number < minimum:
        raise wrong(value, expected)
    return number


def as_optional_number(value: Any) -> float | None:
    return None if value is None else as_number(value)


def as_non_negative_number(value: Any) -> float:
    return as_number(value, minimum=0)


def as_version(value: Any) -> int:
    if not is_int(value) or value != SUPPORTED_VERSION:
        fix = "" if not is_int(value) else "Write version: 1 (or use a modelci that reads it)."
        raise wrong(value, f"the number {SUPPORTED_VERSION} (the config format version)", fix)
    return int(value)


def as_python(value: Any) -> str:
    expected = 'a Python version "3.9" to "3.13" as a string, e.g. "3.11"'
    if isinstance(value, float):
        if _PYTHON.fullmatch(written_float(value)):
            fix = 'Put it in quotes: python: "3.11" (YAML reads 3.10 as the number 3.1).'
        else:
            fix = 'Write a supported version in quotes, e.g. python: "3.11".'
        raise wrong(value, expected, fix)
    if not isinstance(value, str) or not _PYTHON.fullmatch(value.strip()):
        raise wrong(value, expected)
    return value.strip()


# --- names: the rules are naming.py's --------------------------------------------------------


def _suggest_name(text: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return re.sub(r"^[^a-z]+", "", name)[:MAX_NAME_LENGTH].rstrip("-")


def _name_check(kind: str, example: str, is_valid: Callable[[str], bool]) -> Callable[[Any], str]:
    rule = (
        f"a {kind} name of lowercase letters, digits and dashes that starts with a letter, "
        f"does not end with a dash and has at most {MAX_NAME_LENGTH} characters"
    )

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise wrong(value, f'{rule}, e.g. "{example}"')
        if is_valid(value):
            return value
        detail = f" (it has {len(value)} characters)" if len(value) > MAX_NAME_LENGTH else ""
        suggestion = _suggest_name(value)
        if suggestion and suggestion != value and is_valid(suggestion):
            raise wrong(value, rule + detail, f'Try "{suggestion}".')
        raise wrong(value, rule + detail, f'For example "{example}".')

    return check


def _is_stand_name(name: str) -> bool:
    return bool(STAND_NAME_PATTERN.fullmatch(name)) and not name.startswith(FEATURE_PREFIX)


as_model_name = _name_check("model", "churn", lambda name: bool(MODEL_NAME_PATTERN.fullmatch(name)))
_as_any_stand_name = _name_check("stand", "staging", _is_stand_name)


def as_stand_name(value: Any) -> str:
    if (
        isinstance(value, str)
        and STAND_NAME_PATTERN.fullmatch(value)
        and value.startswith(FEATURE_PREFIX)
    ):
        raise Invalid(
            f'found "{value}"; stand names must not start with "{FEATURE_PREFIX}" '
            "(that prefix is reserved for feature-branch environments). Rename the stand."
        )
    return _as_any_stand_name(value)


# --- choices ----------------------------------------------------------------------------------


def _close_match(value: Any, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, choices, n=1) if isinstance(value, str) else []
    return f'Did you mean "{close[0]}"?' if close else ""


def as_flavor(value: Any) -> str:
    if isinstance(value, str) and value in FLAVORS:
        return value
    fix = _close_match(value, FLAVORS) or "Use the flavor your training script logs with."
    raise wrong(value, "an MLflow flavor: " + word_list(FLAVORS), fix)


def as_one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if isinstance(value, str) and value in choices:
            return value
        raise wrong(value, "one of " + word_list(choices), _close_match(value, choices))

    return check


# --- MLflow metric keys -------------------------------------------------------------------------


def as_metric_name(value: Any) -> str:
    expected = (
        f'the name of a metric the training run logs ({METRIC_KEY_CHARACTERS}), e.g. "accuracy"'
    )
    if not isinstance(value, str):
        raise wrong(value, expected)
    problem = _metric_name_problem(value)
    if problem:
        raise wrong(value, expected, problem)
    return value


def _metric_name_problem(name: str) -> str:
    """Why MLflow would refuse `name` as a metric key, or "": the rules of its
    `_validate_metric` (mlflow/utils/validation.py), which treats a key as a file path."""
    if not name.strip():  # MLflow takes " "; no training logs a metric by that name
        return "It is blank; write the metric's name."
    if len(name) > MAX_METRIC_NAME_LENGTH:
        return (
            f"It has {len(name)} characters; MLflow allows at most {MAX_METRIC_NAME_LENGTH}. "
            "Use a shorter name."
        )
    if not _METRIC_KEY.fullmatch(name):
        return _metric_characters_problem(name)
    return _metric_path_problem(name)


def _metric_characters_problem(name: str) -> str:
    refused = sorted({character for character in name if not _METRIC_KEY.fullmatch(character)})
    shown = word_list([json.dumps(character) for character in refused], "and")
    return f"MLflow's metric names hold only {METRIC_KEY_CHARACTERS}, not {shown}; rename it."


def _metric_path_problem(name: str) -> str:
    """Why MLflow refuses `name` as a path (it must be one that names itself), or ""."""
    normal = posixpath.normpath(name)
    if name.startswith("/"):
        return "MLflow refuses a name that starts with / (an absolute path); remove the /."
    if ".." in name.split("/"):
        return 'MLflow refuses ".." path segments in a name; rename it.'
    if normal == ".":
        return 'MLflow refuses "." (the folder itself) as a name; write the metric\'s name.'
    if normal.startswith(".."):
        return 'MLflow refuses a name that starts with ".."; rename it.'
    if normal != name:
        fix = f' Write "{normal}".' if not _metric_name_problem(normal) else ""
        return (
            "MLflow refuses a name that is not a normalised path (no //, no ./ segments, "
            f"no / at the end).{fix}"
        )
    return ""


# --- the command line -------------------------------------------------------------------------


def as_arg(value: Any) -> str:
    """One command-line argument: a string whose `${...}` placeholders are allowlisted macros."""
    if not isinstance(value, str):
        raise wrong(value, "a string")
    unknown = unknown_placeholders(value)
    if unknown:
        offered = word_list([f"${{{macro}}}" for macro in MACROS])
        plural = "s" if len(unknown) > 1 else ""
        raise Invalid(
            f"found {describe(value)} with the unknown placeholder{plural} "
            f"{word_list(unknown, 'and')}; expected only the placeholders {offered}. Use one of "
            "those, or write $${ for a literal ${."
        )
    return value


# The longest of the metric keys monitoring.py names after a column (psi.<column>,
# null_share.<column>, out_of_range.<column>): what MLflow takes for it, it takes for all.
_LONGEST_COLUMN_KEY = "out_of_range.{}"
MAX_COLUMN_NAME_LENGTH = MAX_METRIC_NAME_LENGTH - len(_LONGEST_COLUMN_KEY.format(""))


def as_column_name(value: Any) -> str:
    """A column of the monitoring data; it becomes part of MLflow metric keys (psi.<column>)."""
    text = as_text(value, "tenure_months")
    expected = (
        f"a column name of at most {MAX_COLUMN_NAME_LENGTH} {METRIC_KEY_CHARACTERS} (it names "
        'MLflow metrics such as psi.<column>), e.g. "tenure_months"'
    )
    key = _LONGEST_COLUMN_KEY.format(text)
    if len(text) > MAX_COLUMN_NAME_LENGTH or not _METRIC_KEY.fullmatch(text):
        raise wrong(value, expected, "Rename the column where the data is written.")
    if _metric_path_problem(key):
        raise wrong(
            value,
            expected,
            f'MLflow would refuse the metric key "{key}" (not a normalised path: no //, no ./ '
            "segments, no / at the end). Rename the column where the data is written.",
        )
    return text


_SPARK_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")
_LOCAL_MASTER = re.compile(r"local(\[([1-9][0-9]*|\*)\])?")


def as_spark_version(value: Any) -> str:
    if not isinstance(value, str) or not _SPARK_VERSION.fullmatch(value):
        raise wrong(value, 'the Spark version of the image as a string, e.g. "4.0.1"')
    return value


def as_local_master(value: Any) -> str:
    if not isinstance(value, str) or not _LOCAL_MASTER.fullmatch(value):
        raise wrong(
            value,
            'a local Spark master, e.g. "local[2]" or "local[*]"',
            "The CI job trains with Spark in its own process.",
        )
    return value


_S3_TABLE = re.compile(r"s3a?://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9._\-/=]*)?")
_SPARK_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def as_s3_table_uri(value: Any) -> str:
    """The directory of a table Spark reads: an s3:// (or s3a://) URI, no run values."""
    text = as_text(value, "s3://features/customers")
    if not _S3_TABLE.fullmatch(text) or "//" in text.split("://", 1)[1]:
        raise wrong(
            value,
            'the s3:// URI of the table\'s directory, e.g. "s3://features/customers"',
            "Name the bucket and the table's prefix (letters, digits and ._-/= only); each "
            "run reads its date's partition below it, so leave the date out.",
        )
    return text.rstrip("/")


def as_spark_column(value: Any) -> str:
    """A column Spark writes or partitions by: letters, digits and _, not first a digit."""
    text = as_text(value, "ds")
    if not _SPARK_COLUMN.fullmatch(text):
        raise wrong(
            value,
            'a plain column name (letters, digits and _, not starting with a digit), e.g. "ds"',
            "Rename the column in the table, or choose such a name.",
        )
    return text


def as_relative_path(value: Any) -> str:
    """A path under a prefix the product owns (S3 data, run artifacts): relative, no `..`;
    `${...}` placeholders must be allowlisted macros."""
    text = as_arg(as_text(value, "scores/${ds}.csv"))
    parts = text.split("/")
    if text.startswith("/") or "://" in text or ".." in parts or "" in parts[:-1]:
        raise wrong(
            value,
            'a relative path such as "scores/${ds}.csv"',
            "Write it relative to the prefix the README names, without a scheme, a leading /, "
            "an empty part or ..",
        )
    return text


# --- Kubernetes resources -----------------------------------------------------------------------


def as_cpu(value: Any) -> str:
    cores = _cpu_cores(value)
    if cores is None:
        raise wrong(value, _CPU_EXPECTED)
    if cores <= 0:
        raise wrong(value, _CPU_EXPECTED, 'The amount must be positive, e.g. "500m" or 1.')
    if cores > MAX_CPU_CORES:
        raise wrong(
            value,
            _CPU_EXPECTED,
            f"At most {MAX_CPU_CORES} cores: no node has more. Ask for fewer.",
        )
    millicores = cores * 1000
    if millicores != millicores.to_integral_value():  # "0.0001" as much as 0.0001
        closest = _cpu_text(math.ceil(millicores))
        raise wrong(
            value,
            _CPU_EXPECTED,
            f'Kubernetes cannot divide a core finer than 1m (0.001 core); write "{closest}".',
        )
    if isinstance(value, str):
        return value.strip()
    # Kubernetes reads cpu: 0.5 as 500m; keep that meaning, written as a string.
    return _cpu_text(int(millicores))


def _cpu_text(millicores: int) -> str:
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def _cpu_cores(value: Any) -> Decimal | None:
    """The number of cores `value` asks for, or None when it is not a CPU amount."""
    if is_int(value):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        match = _CPU.fullmatch(value.strip())
        if match:
            sign, amount, milli = match.groups()
            cores = Decimal(sign + amount)
            return cores / 1000 if milli else cores
    return None


def as_memory(value: Any) -> str:
    if is_int(value):
        return _memory_bytes(value)
    if isinstance(value, str):
        text = value.strip()
        match = _MEMORY.fullmatch(text)
        if match:
            sign, amount, unit = match.groups()
            size = Decimal(sign + amount) * _MEMORY_UNITS[unit or ""]
            _check_memory_size(value, size)
            return text
        if text.endswith("m") and _MEMORY.fullmatch(text[:-1]):
            fix = '"m" means thousandths of a byte'
            if accepts(as_memory, text[:-1] + "Mi"):
                fix += f'; did you mean "{text[:-1]}Mi"?'
            raise wrong(value, _MEMORY_EXPECTED, fix + ".")
    raise wrong(value, _MEMORY_EXPECTED)


def _memory_bytes(value: int) -> str:
    """A bare whole number of bytes."""
    if 0 < value < MIN_MEMORY_BYTES:
        if value * _MEMORY_UNITS["Gi"] <= MAX_MEMORY_BYTES:
            raise wrong(
                value, _MEMORY_EXPECTED, f'A bare number counts bytes; did you mean "{value}Gi"?'
            )
        raise wrong(value, _MEMORY_EXPECTED, f"A bare number counts bytes. {_TOO_LITTLE_MEMORY}")
    _check_memory_size(value, Decimal(value))
    return str(value)


def _check_memory_size(value: Any, size: Decimal) -> None:
    if size < MIN_MEMORY_BYTES:
        raise wrong(value, _MEMORY_EXPECTED, _TOO_LITTLE_MEMORY)
    if size > MAX_MEMORY_BYTES:
        raise wrong(
            value,
            _MEMORY_EXPECTED,
            f"At most {MAX_MEMORY}: no node has more memory. Ask for less.",
        )


as_gpu = as_count(0, MAX_GPUS, f"At most {MAX_GPUS} GPUs: no node has more. Ask for fewer.")
as_min_replicas = as_count(
    0, MAX_REPLICAS, f"At most {MAX_REPLICAS} serving pods per model; ask for fewer."
)
as_max_replicas = as_count(
    1, MAX_REPLICAS, f"At most {MAX_REPLICAS} serving pods per model; ask for fewer."
)


# --- Spark sizes --------------------------------------------------------------------------------
#
# The SparkApplication's driver.memory and executor.memory reach Spark as spark.driver.memory and
# spark.executor.memory (the Spark Operator passes them on with --conf), which Spark reads with
# JavaUtils.byteStringAs: a whole number and a unit in any case, b, k/kb, m/mb, g/gb, t/tb or
# p/pb (SPARK-55051 added ki/kib to pi/pib), each a power of 1024; a bare number counts MiB. The
# same text is the driver JVM's -Xmx, which knows only k, m, g and t, and the operator's quota
# and batch-scheduler code reads it with the units of Spark 3. So a size is kept as
# <number><k|m|g|t>, which all of them read alike.
#
# Bounds: Spark refuses a JVM with less than 450 MiB of heap (UnifiedMemoryManager: 1.5 x its
# 300 MiB reserve), and with the parallel collector the heap of -Xmx500m is still below that:
# 512m is the least size that works under every collector. A pod asks for the size plus Spark's
# overhead (40 % for a Python application), which must fit a node (MAX_MEMORY): at most 2t.
# One training's executors together may hold at most what a shared cluster can give one job.
SPARK_MIN_MEMORY = "512m"
SPARK_MAX_MEMORY = "2t"
MAX_SPARK_EXECUTORS = 1000
MAX_SPARK_EXECUTOR_CORES = 4096  # instances x cores
MAX_SPARK_EXECUTOR_MEMORY = "32t"  # instances x memory: 8 GiB for each of those cores
_SPARK_UNIT_POWERS = {"": 2, "b": 0} | {  # "": a bare number counts MiB
    letter + tail: power for power, letter in enumerate("kmgtp", 1) for tail in ("", "b", "i", "ib")
}
_SPARK_SIZE = re.compile(r"([0-9]+)([a-z]*)")
_SPARK_FRACTION = re.compile(r"([0-9]+\.[0-9]*|\.[0-9]+)([a-z]*)")
_JAVA_LONG_DIGITS = 19  # Spark reads the number as a Java long
_MEBIBYTE = 2**20
_SPARK_MEMORY_EXPECTED = (
    f"a Spark memory size from {SPARK_MIN_MEMORY} to {SPARK_MAX_MEMORY}: a whole number and a "
    'unit, e.g. "512m" or "4g"'
)
_SPARK_UNITS_FIX = (
    "Use one of Spark's units b, k, m, g or t (any case; kb, mb, gb, tb and Ki, Mi, Gi, Ti "
    'also do), e.g. "4g".'
)
_TOO_LITTLE_SPARK_MEMORY = (
    f"Spark refuses a JVM with less than 450 MiB of heap, and {SPARK_MIN_MEMORY} is the least "
    "that gives that under every garbage collector"
)
_TOO_MUCH_SPARK_MEMORY = (
    "A Spark pod asks for this plus 40 % (Spark's overhead for a Python application), and no "
    f"node has more than {MAX_MEMORY}. Ask for less, or spread the work over more executors."
)


def spark_memory_bytes(size: str) -> int:
    """The bytes of a size in Spark's notation, e.g. what as_spark_memory returns."""
    match = _SPARK_SIZE.fullmatch(size.strip().lower())
    if match is None or match[2] not in _SPARK_UNIT_POWERS:
        raise ValueError(f"{size} is not a size in Spark's notation")
    return int(match[1]) * 1024 ** _SPARK_UNIT_POWERS[match[2]]


_SPARK_MIN_BYTES = spark_memory_bytes(SPARK_MIN_MEMORY)
_SPARK_MAX_BYTES = spark_memory_bytes(SPARK_MAX_MEMORY)
_MAX_SPARK_EXECUTOR_BYTES = spark_memory_bytes(MAX_SPARK_EXECUTOR_MEMORY)


def as_spark_memory(value: Any) -> str:
    """A driver's or an executor's memory as Spark reads it, returned as <number><k|m|g|t>."""
    text = _spark_text(value)
    match = _SPARK_SIZE.fullmatch(text) if text is not None else None
    if match is None or match[2] not in _SPARK_UNIT_POWERS:
        raise wrong(value, _SPARK_MEMORY_EXPECTED, _spark_memory_fix(text, match))
    digits, unit = match.groups()
    if len(digits.lstrip("0")) > _JAVA_LONG_DIGITS:
        raise wrong(value, _SPARK_MEMORY_EXPECTED, _TOO_MUCH_SPARK_MEMORY)
    number = int(digits)
    size = number * 1024 ** _SPARK_UNIT_POWERS[unit]
    if size < _SPARK_MIN_BYTES:
        raise wrong(value, _SPARK_MEMORY_EXPECTED, _too_little_spark_memory(number, unit))
    if size > _SPARK_MAX_BYTES:
        raise wrong(value, _SPARK_MEMORY_EXPECTED, _TOO_MUCH_SPARK_MEMORY)
    letter = unit[:1] or "m"
    if letter in "kmgt":
        return f"{number}{letter}"
    return f"{size // _MEBIBYTE}m"  # bytes, in whole MiB as Spark sizes the pod with them


def _spark_text(value: Any) -> str | None:
    """What Spark would read: a string trimmed and in lowercase, a YAML number as written."""
    if isinstance(value, str):
        return value.strip().lower()
    if is_int(value) or isinstance(value, float):
        return written_text(value)
    return None


def _spark_memory_fix(text: str | None, match: re.Match[str] | None) -> str:
    if text is None:  # null, true, a list...: the loader's advice fits those
        return ""
    if match is not None:  # a number and a unit Spark does not know
        return _SPARK_UNITS_FIX
    fraction = _SPARK_FRACTION.fullmatch(text)
    if fraction is None or fraction[2] not in _SPARK_UNIT_POWERS:
        return 'Write a whole number and a unit, e.g. "4g".'
    size = Decimal(fraction[1]) * 1024 ** _SPARK_UNIT_POWERS[fraction[2]]
    for letter, power in (("g", 3), ("m", 2)):
        whole = size / 1024**power
        if whole != whole.to_integral_value():
            continue
        suggestion = f"{int(whole)}{letter}"  # whole digits: checking it cannot come back here
        if accepts(as_spark_memory, suggestion):
            return f'Spark takes whole numbers only; write "{suggestion}".'
    return 'Spark takes whole numbers only; write it in a smaller unit, e.g. "1536m" for 1.5g.'


def _too_little_spark_memory(number: int, unit: str) -> str:
    guess = f"{number}g"
    if unit in ("", "m", "mb", "mi", "mib") and accepts(as_spark_memory, guess):
        bare = "; a bare number counts MiB" if not unit else ""
        return f'{_TOO_LITTLE_SPARK_MEMORY}{bare}. Did you mean "{guess}"?'
    return f"{_TOO_LITTLE_SPARK_MEMORY}. Ask for at least {SPARK_MIN_MEMORY}."


def as_spark_count(high: int, why: str) -> Callable[[Any], int]:
    """A whole number of cores or executors from 1 to `high`; `why` explains that bound."""
    expected = f"a whole number from 1 to {high}"

    def check(value: Any) -> int:
        if not is_int(value):
            raise wrong(
                value, expected, "Write a whole number." if isinstance(value, float) else ""
            )
        if value < 1:
            raise wrong(value, expected, "Ask for at least 1.")
        if value > high:
            raise wrong(value, expected, why)
        return int(value)

    return check


as_spark_cores = as_spark_count(
    MAX_CPU_CORES,
    f"A Spark pod asks for all its cores at once and no node has more than {MAX_CPU_CORES}. "
    "Ask for fewer.",
)
as_spark_instances = as_spark_count(
    MAX_SPARK_EXECUTORS,
    f"At most {MAX_SPARK_EXECUTORS} executors for one training; ask for fewer, larger ones.",
)


def spark_executors_problem(instances: int, cores: int, memory: str, job: str = "training") -> str:
    """Why one `job`'s executors together ask for more than a shared cluster gives one job,
    or "". `memory` is one executor's, as as_spark_memory returns it."""
    total_cores = instances * cores
    if total_cores > MAX_SPARK_EXECUTOR_CORES:
        return (
            f"found {instances} executors of {cores} cores, {total_cores} cores in all; expected "
            f"at most {MAX_SPARK_EXECUTOR_CORES} cores for the executors of one {job} (more "
            "would hold a shared cluster or wait for it forever). Ask for fewer, e.g. instances: "
            f"{MAX_SPARK_EXECUTOR_CORES // cores}."
        )
    each = spark_memory_bytes(memory)
    if instances * each > _MAX_SPARK_EXECUTOR_BYTES:
        return (
            f"found {instances} executors of {memory}, {_spark_size(instances * each)} in all; "
            f"expected at most {MAX_SPARK_EXECUTOR_MEMORY} for the executors of one {job} "
            "(more would hold a shared cluster or wait for it forever). Ask for fewer, e.g. "
            f"instances: {_MAX_SPARK_EXECUTOR_BYTES // each}."
        )
    return ""


def _spark_size(size: int) -> str:
    """Bytes in the largest of Spark's units that counts them whole."""
    for letter, power in (("t", 4), ("g", 3), ("m", 2), ("k", 1)):
        if size % 1024**power == 0:
            return f"{size // 1024**power}{letter}"
    return f"{size}b"


# --- OCI image references -----------------------------------------------------------------------

_DOMAIN_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_REGISTRY = re.compile(rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def as_image(value: Any) -> str | None:
    if value is None:
        return None
    text = as_text(value, IMAGE_EXAMPLE)
    problem = image_problem(text)
    if problem:
        raise wrong(
            value,
            "an OCI image reference [registry[:port]/]path[:tag][@sha256:digest], "
            f'e.g. "{IMAGE_EXAMPLE}"',
            problem,
        )
    return text


def image_problem(reference: str) -> str:
    """Why `reference` is not an OCI image reference a registry accepts, or ""."""
    if len(reference) > MAX_IMAGE_LENGTH:
        return f"It has {len(reference)} characters; at most {MAX_IMAGE_LENGTH}."
    if re.search(r"\s", reference):
        return "It contains whitespace; an image reference is one word."
    if re.search(r"[;$`|&<>(){}'\"\\]", reference):
        return "It contains shell characters; an image reference is not a command."
    name, _, digest = reference.partition("@")
    if digest and not _DIGEST.fullmatch(digest):
        return "The digest after @ must be sha256: followed by 64 lowercase hex digits."
    name, tag = _split_tag(name)
    if tag == "":
        return "The tag after : is empty; write one (e.g. :1.0) or leave out the :."
    if tag is not None and not _TAG.fullmatch(tag):
        return (
            f'The tag "{tag}" may hold letters, digits, _ . and - (not first), '
            "at most 128 characters."
        )
    return _name_problem(name)


def _split_tag(name: str) -> tuple[str, str | None]:
    """(name, tag); tag None when there is none. A : before the last / is a registry port."""
    head, colon, tag = name.rpartition(":")
    if not colon or "/" in tag:
        return name, None
    return head, tag


def _name_problem(name: str) -> str:
    components = name.split("/")
    first = components[0]
    if len(components) > 1 and ("." in first or ":" in first or first == "localhost"):
        if not _REGISTRY.fullmatch(first):
            return f'The registry "{first}" is not a host name with an optional :port.'
        components = components[1:]
    if any(not component for component in components):
        return "The path has an empty part (// or a / at the start or end)."
    for component in components:
        if _PATH_COMPONENT.fullmatch(component):
            continue
        if _PATH_COMPONENT.fullmatch(component.lower()):
            return f'The repository path must be lowercase: "{component}" has capitals.'
        return (
            f'The path part "{component}" may hold only lowercase letters and digits, '
            'joined by ".", "_", "__" or dashes.'
        )
    return ""


# --- schedules ---------------------------------------------------------------------------------


def as_schedule(value: Any) -> str | None:
    if value is None:
        return None
    expected = (
        'a cron expression with 5 fields like "0 6 * * *", one of '
        + word_list(SCHEDULE_PRESETS)
        + ", or null for a DAG started by hand"
    )
    if not isinstance(value, str):
        raise wrong(value, expected)
    text = " ".join(value.split())
    if text.startswith("@"):
        if text in SCHEDULE_PRESETS:
            return text
        raise wrong(value, expected, _close_match(text, SCHEDULE_PRESETS))
    problem = cron_problem(text)
    if problem:
        raise wrong(value, expected, problem)
    return text


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February 29 in leap years
_CRON_FIELDS = (  # label, lowest, highest, names (numbered from lowest)
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _WEEKDAYS),
)
_CRON_PART = re.compile(r"(\*|[0-9a-z]{1,9}(?:-[0-9a-z]{1,9})?)(?:/([0-9]{1,9}))?")


def cron_problem(expression: str) -> str:
    """Why a 5-field cron expression is invalid or never fires, or "" when it is fine."""
    fields = expression.split(" ")
    if len(fields) != 5:
        return (
            f"It has {len(fields)} fields; cron needs 5: minute hour day-of-month month "
            "day-of-week (no seconds)."
        )
    expanded: list[set[int]] = []
    for text, (label, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        values: set[int] = set()
        for part in text.lower().split(","):
            match = _CRON_PART.fullmatch(part)
            if not match:
                return f'The {label} field "{text}" is not valid cron.'
            span, step = match.groups()
            if step is not None and int(step) == 0:
                return f'The {label} field "{text}" has a step of 0.'
            if span == "*":
                values.update(range(low, high + 1, int(step or 1)))
                continue
            bounds = [_cron_number(bound, low, names) for bound in span.split("-")]
            if any(bound is None or not low <= bound <= high for bound in bounds):
                return f'The {label} field "{text}" is outside {low}-{high}.'
            if len(bounds) == 2 and bounds[0] > bounds[1]:
                return f'The {label} field "{text}" is a range that runs backwards.'
            # "5/15" runs from 5 to the highest value, as in croniter (what Airflow uses).
            last = bounds[-1] if len(bounds) == 2 or step is None else high
            values.update(range(bounds[0], last + 1, int(step or 1)))
        expanded.append(values)
    return _never_fires(fields, days=expanded[2], months=expanded[3])


def _never_fires(fields: list[str], *, days: set[int], months: set[int]) -> str:
    """Why the expression never fires, or "".

    With both day fields restricted, cron fires when either matches, so only an unrestricted
    day of week makes the day of month decide alone.
    """
    if fields[4] != "*":
        return ""
    longest = max(_MONTH_DAYS[month - 1] for month in months)
    if min(days) <= longest:
        return ""
    example_day = 28 if longest == 29 else longest  # the 29th of February is only leap years
    example = " ".join([*fields[:2], str(example_day), *fields[3:]])
    return (
        f'It never fires: no month in "{fields[3]}" has a day "{fields[2]}" (at most '
        f'{longest} days). Pick a day that exists, e.g. "{example}".'
    )


def _cron_number(text: str, low: int, names: tuple[str, ...]) -> int | None:
    if text.isdigit():
        return int(text)
    if text in names:
        return names.index(text) + low
    return None
