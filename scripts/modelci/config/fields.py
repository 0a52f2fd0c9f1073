"""The one definition of `mlops.yaml`'s structure: every section and field.

From it come the keys the loader (`config.py`) accepts and requires in each section, the JSON
Schema editors read (`mlops.schema.json`, next to this module) and the field reference in
`docs/data-scientists/mlops-yaml-reference.md`. The checks of single values (cron, images,
resources, names, ranges) stay in `config_checks.py`; the schema only gives their types.

    python -m modelci.config.fields [--check] [ROOT]

writes both generated files under the repository ROOT (default: the checkout holding this
module), or with --check exits 1 when one of them is out of date.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checks import FLAVORS

SCHEMA_FILE = Path(__file__).with_name("mlops.schema.json")
REFERENCE_PATH = "docs/data-scientists/mlops-yaml-reference.md"
DAG_KINDS = ("training", "inference", "monitoring")
MONITOR_METRICS = ("accuracy", "mae", "rmse")
ENGINES = ("python", "spark")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Field:
    """One key of `mlops.yaml`.

    `type` is a JSON type: string, integer, number, boolean, object (a mapping, its keys in
    `fields`) or array (a list; of mappings when `fields` is set, else of `items`).
    """

    name: str
    type: str
    description: str
    required: bool = False
    # Required unless the sibling key holds the value: ("kind", "training").
    required_unless: tuple[str, Any] | None = None
    # Further sibling values that also make it optional: (("engine", "spark"),).
    also_optional_when: tuple[tuple[str, Any], ...] = ()
    default: Any = MISSING  # the value an omitted key takes
    default_note: str = ""  # or, when it depends on other keys, what it takes
    allowed: tuple[Any, ...] = ()
    also: tuple[str, ...] = ()  # further JSON types the loader accepts (cpu: 0.5)
    nullable: bool = False  # `key:` with no value is accepted (its default applies)
    fields: tuple[Field, ...] = ()
    items: str = ""  # a list's item type when its items are not mappings
    min_items: int = 0
    values: tuple[tuple[str, Any], ...] = ()  # JSON Schema of a free mapping's values
    example: str = ""  # shown when a required key is missing

    def keys(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields)

    def required_keys(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields if field.required)

    def child(self, name: str) -> Field:
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(name)


def _resources(what: str, inherited: str = "") -> Field:
    """A `resources:` section; `inherited` names the section an omitted field is taken from
    (else the defaults 1 CPU, 2Gi, no GPU)."""
    defaults = ("1", "2Gi", 0) if not inherited else (MISSING, MISSING, MISSING)
    return Field(
        "resources",
        "object",
        f"Kubernetes requests and limits of {what}; an omitted field takes "
        + (f"its value from {inherited}." if inherited else "its default."),
        fields=(
            Field(
                "cpu",
                "string",
                'CPU: "500m", "1" or a number of cores.',
                default=defaults[0],
                default_note=inherited,
                also=("number",),
            ),
            Field(
                "memory",
                "string",
                'Memory: "512Mi", "2Gi" or a number of bytes.',
                default=defaults[1],
                default_note=inherited,
                also=("integer",),
            ),
            Field(
                "gpu",
                "integer",
                "nvidia.com/gpu count.",
                default=defaults[2],
                default_note=inherited,
            ),
        ),
    )


def _args(what: str, default_note: str = "") -> Field:
    return Field(
        "args",
        "array",
        f"Command-line arguments of {what}; run values such as `${{ds}}` are filled in per run.",
        items="string",
        default=() if not default_note else MISSING,
        default_note=default_note,
    )


def _bounds() -> tuple[Field, Field]:
    return (
        Field("min", "number", "Pass when the value is at least this.", nullable=True),
        Field("max", "number", "Pass when the value is at most this.", nullable=True),
    )


_SPARK_MEMORY = 'Spark memory: "512m", "2g".'

SPARK = Field(
    "spark",
    "object",
    "The Spark application of a training with engine: spark.",
    fields=(
        Field("version", "string", "The Spark of the runtime image.", default="4.0.1"),
        Field(
            "driver",
            "object",
            "The driver's share.",
            fields=(
                Field("cores", "integer", "Driver cores.", default=1),
                Field("memory", "string", _SPARK_MEMORY, default="2g", also=("number",)),
            ),
        ),
        Field(
            "executor",
            "object",
            "The executors' share.",
            fields=(
                Field("instances", "integer", "Number of executors.", default=2),
                Field("cores", "integer", "Cores per executor.", default=1),
                Field("memory", "string", _SPARK_MEMORY, default="2g", also=("number",)),
            ),
        ),
        Field(
            "ci",
            "object",
            "How the CI train job runs it (local Spark in the job).",
            fields=(
                Field("master", "string", "Local master of the CI run.", default="local[2]"),
                _args("the CI run, added to train.args"),
            ),
        ),
    ),
)

SPARK_FORMATS = ("parquet",)

SCORING_SPARK = Field(
    "spark",
    "object",
    "The Spark application of an inference DAG with engine: spark.",
    fields=(
        Field("version", "string", "The Spark of the runtime image.", default_note="4.0.1"),
        Field(
            "driver",
            "object",
            "The driver's share.",
            fields=(
                Field("cores", "integer", "Driver cores.", default_note="1"),
                Field("memory", "string", _SPARK_MEMORY, default_note="2g", also=("number",)),
            ),
        ),
        Field(
            "executor",
            "object",
            "The executors' share.",
            fields=(
                Field("instances", "integer", "Number of executors.", default_note="2"),
                Field("cores", "integer", "Cores per executor.", default_note="1"),
                Field("memory", "string", _SPARK_MEMORY, default_note="2g", also=("number",)),
            ),
        ),
        Field(
            "input",
            "string",
            "The feature table: an s3:// directory of `<partition>=<date>` partitions.",
            required=True,
            example="s3://features/customers",
        ),
        Field(
            "format",
            "string",
            "The input's file format.",
            default_note="parquet",
            allowed=SPARK_FORMATS,
        ),
        Field(
            "partition",
            "string",
            "The input's date partition column; a run reads the partition of its date.",
            required=True,
            example="ds",
        ),
        Field(
            "output",
            "string",
            "Where predictions go, under the data prefix, partitioned by date.",
            required=True,
            example="scores",
        ),
        Field(
            "prediction",
            "string",
            "The output column of the predictions.",
            required=True,
            example="churn_predicted",
        ),
    ),
)

TRAIN = Field(
    "train",
    "object",
    "How the model is trained.",
    required=True,
    example="{entrypoint: train.py}",
    fields=(
        Field(
            "entrypoint",
            "string",
            "The training script, relative to the repository root.",
            required=True,
        ),
        _args("the training script"),
        _resources("the training job"),
        Field("engine", "string", "What runs the training.", default="python", allowed=ENGINES),
        SPARK,
    ),
)

GATE = Field(
    "gate",
    "object",
    "The thresholds a trained model must pass before it is registered.",
    required=True,
    example="{metrics: [{name: accuracy, min: 0.8}]}",
    fields=(
        Field(
            "metrics",
            "array",
            "Thresholds on metrics the training run logs.",
            required=True,
            min_items=1,
            example="[{name: accuracy, min: 0.8}]",
            fields=(
                Field("name", "string", "An MLflow metric key the training logs.", required=True),
                *_bounds(),
            ),
        ),
        Field(
            "compare_with_production",
            "boolean",
            "Also compare with the production model's metrics.",
            default=True,
        ),
        Field(
            "tolerance", "number", "Absolute degradation allowed against production.", default=0.0
        ),
    ),
)

BATCH = Field(
    "batch",
    "object",
    "Airflow DAGs of the model.",
    fields=(
        _resources("every DAG below (each may override it)"),
        Field(
            "dags",
            "array",
            "One DAG per kind.",
            default=(),
            fields=(
                Field(
                    "kind",
                    "string",
                    "What the DAG does; unique per model.",
                    required=True,
                    allowed=DAG_KINDS,
                    example="inference",
                ),
                Field(
                    "entrypoint",
                    "string",
                    "The script, relative to the repository root; a training DAG "
                    "defaults to train's; a Spark inference DAG has none.",
                    required_unless=("kind", "training"),
                    also_optional_when=(("engine", "spark"),),
                    example="score.py",
                ),
                _args("the script", default_note="train.args for a training DAG, else `[]`"),
                Field(
                    "schedule",
                    "string",
                    'Cron expression or preset ("@daily"); none: by hand.',
                    nullable=True,
                ),
                Field("retries", "integer", "Retries of a failed run.", default=1),
                _resources("the DAG's pod", inherited="batch.resources"),
                Field(
                    "engine",
                    "string",
                    "What scores: the DAG's pod, or Spark (inference DAGs only).",
                    default_note="python",
                    allowed=ENGINES,
                ),
                SCORING_SPARK,
            ),
        ),
    ),
)

ONLINE = Field(
    "online",
    "object",
    "Online serving with KServe.",
    fields=(
        Field("enabled", "boolean", "Serve the model online.", default=False),
        Field("min_replicas", "integer", "Fewest replicas (0: scale to zero).", default=1),
        Field(
            "max_replicas",
            "integer",
            "Most replicas.",
            default_note="min_replicas, at least 1",
        ),
        _resources("each replica"),
    ),
)

MONITORING = Field(
    "monitoring",
    "object",
    "Drift and quality checks of the scored data; generates the monitoring DAG.",
    fields=(
        Field("schedule", "string", "When the checks run.", default="@daily", nullable=True),
        Field(
            "data",
            "string",
            "CSV under the data prefix the scoring DAG writes (`${ds}`).",
            required=True,
            example="scores/${ds}.csv",
        ),
        Field(
            "reference",
            "string",
            "CSV artifact of the served run: its training data.",
            required=True,
            example="reference.csv",
        ),
        Field(
            "features",
            "array",
            "Columns whose PSI is checked.",
            required=True,
            items="string",
            min_items=1,
            example="[tenure_months, monthly_charges]",
        ),
        Field("score", "string", "The model's output column."),
        Field(
            "ranges",
            "object",
            "Column: [low, high] each value must lie in.",
            nullable=True,
            values=(
                ("type", "array"),
                ("items", {"type": "number"}),
                ("minItems", 2),
                ("maxItems", 2),
            ),
        ),
        Field("max_psi", "number", "Largest PSI allowed per column.", default=0.2),
        Field("max_null_share", "number", "Largest share of empty values (0 to 1).", default=0.0),
        Field(
            "max_out_of_range", "number", "Largest share outside `ranges` (0 to 1).", default=0.0
        ),
        Field(
            "ground_truth",
            "object",
            "Score the model against the true outcome.",
            fields=(
                Field(
                    "label",
                    "string",
                    "The column holding the true outcome.",
                    required=True,
                    example="churned",
                ),
                Field(
                    "metric",
                    "string",
                    "The metric of score against label.",
                    default="accuracy",
                    allowed=MONITOR_METRICS,
                ),
                *_bounds(),
            ),
        ),
        Field(
            "retrain",
            "object",
            "Retraining when a check fails.",
            fields=(
                Field("enabled", "boolean", "Start a retraining on a failed check.", default=True),
                Field(
                    "cooldown_hours",
                    "number",
                    "No new retraining sooner than this after the last.",
                    default=24.0,
                ),
                Field(
                    "timeout_hours",
                    "number",
                    "A retraining silent this long is no longer waited on.",
                    default=6.0,
                ),
            ),
        ),
        _resources("the monitoring DAG's pod"),
    ),
)

REVIEW = Field(
    "review",
    "object",
    "The merge request's review against production (docs/data-scientists/merge-request-note.md).",
    fields=(
        Field(
            "sample",
            "string",
            "CSV file in the repository, its columns named as the model's inputs: rows both "
            "models predict on besides the candidate's input example (the first 1000 rows).",
            example="review/sample.csv",
        ),
    ),
)

MODEL = Field(
    "models",
    "array",
    "The models of the repository.",
    required=True,
    min_items=1,
    example="[{name: churn, flavor: sklearn, train: ..., gate: ...}]",
    fields=(
        Field(
            "name",
            "string",
            "`[a-z][a-z0-9-]*`, at most 20 characters, unique in the file.",
            required=True,
            example="churn",
        ),
        Field(
            "flavor",
            "string",
            "The MLflow flavor the training script logs with.",
            required=True,
            allowed=FLAVORS,
            example="sklearn",
        ),
        TRAIN,
        GATE,
        BATCH,
        ONLINE,
        MONITORING,
        REVIEW,
    ),
)

ROOT = Field(
    "mlops.yaml",
    "object",
    "The model config of a model repository.",
    fields=(
        Field(
            "version",
            "integer",
            "The config format version.",
            required=True,
            allowed=(1,),
            example="1",
        ),
        Field(
            "python", "string", 'Python version of the model code, quoted: "3.11".', default="3.11"
        ),
        Field(
            "image",
            "string",
            "Image of batch pods.",
            default_note="the platform's runtime image",
            nullable=True,
        ),
        Field(
            "stands",
            "array",
            "Promotion order after a merge to the default branch.",
            min_items=1,
            default_note="staging, then production (manual)",
            fields=(
                Field("name", "string", 'The stand, e.g. "staging".', required=True),
                Field(
                    "manual", "boolean", "Promotion needs a manual, protected job.", default=False
                ),
            ),
        ),
        MODEL,
        Field(
            "code",
            "object",
            "What the code archive of batch pods leaves out.",
            fields=(
                Field(
                    "exclude",
                    "array",
                    "Globs relative to the repository root (git pathspecs).",
                    items="string",
                    default=(),
                ),
            ),
        ),
    ),
)


def section(path: str) -> Field:
    """The field at a dotted path of keys ("models.train.spark"); "" is the whole file."""
    field = ROOT
    for name in filter(None, path.split(".")):
        field = field.child(name)
    return field


def examples() -> dict[str, str]:
    """Key name -> the example shown when that required key is missing."""
    found: dict[str, str] = {}
    for _, field in walk(ROOT):
        if field.example:
            found.setdefault(field.name, field.example)
    return found


def walk(field: Field, path: str = "") -> Iterator[tuple[str, Field]]:
    """(path, field) of every field below `field`, depth first; a list's items as `name[]`."""
    for child in field.fields:
        child_path = f"{path}.{child.name}" if path else child.name
        yield child_path, child
        yield from walk(child, child_path + ("[]" if child.type == "array" else ""))


# --- the JSON Schema ---------------------------------------------------------------------------


def json_schema() -> dict[str, Any]:
    """Draft-07, the draft yaml-language-server validates with."""
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "modelci mlops.yaml",
        **_object_schema(ROOT),
    }


def _object_schema(field: Field) -> dict[str, Any]:
    if field.values:
        return {"type": "object", "additionalProperties": dict(field.values)}
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {child.name: _field_schema(child) for child in field.fields},
    }
    if field.required_keys():
        schema["required"] = list(field.required_keys())
    for child in field.fields:
        if child.required_unless is not None:
            conditions = [
                {"properties": {key: {"const": value}}, "required": [key]}
                for key, value in (child.required_unless, *child.also_optional_when)
            ]
            schema["if"] = conditions[0] if len(conditions) == 1 else {"anyOf": conditions}
            schema["else"] = {"required": [child.name]}
    return schema


def _field_schema(field: Field) -> dict[str, Any]:
    types = [field.type, *field.also, *(["null"] if field.nullable else [])]
    if field.type == "object":
        schema = _object_schema(field)
    elif field.type == "array":
        items = _object_schema(field) if field.fields else {"type": field.items}
        schema = {"type": "array", "items": items}
        if field.min_items:
            schema["minItems"] = field.min_items
    else:
        schema = {}
    schema["type"] = types[0] if len(types) == 1 else types
    schema["description"] = field.description
    if field.allowed:
        schema["enum"] = [*field.allowed, *([None] if field.nullable else [])]
    if field.default is not MISSING and not isinstance(field.default, tuple):
        schema["default"] = field.default
    return schema


# --- the field reference -----------------------------------------------------------------------


def reference() -> str:
    lines = [
        "# `mlops.yaml` reference",
        "",
        "<!-- Generated by `python -m modelci.config.fields` from scripts/modelci/"
        "config_fields.py; do not edit by hand. -->",
        "",
        "Every section and field `modelci validate` accepts. Editors that run the YAML language",
        "server check the file as you type when its first line names the schema:",
        "",
        "```yaml",
        "# yaml-language-server: $schema=<path to>/scripts/modelci/config/mlops.schema.json",
        "```",
        "",
        "`validate` also checks values (cron expressions, image references, resources, names,",
        "ranges); the schema checks the structure and types.",
    ]
    for path, field in [("", ROOT), *walk(ROOT)]:
        if field.fields:
            title = f"`{path}[]` (each item)" if field.type == "array" else f"`{path}`"
            lines += ["", f"## {title if path else 'Top level'}", "", field.description, ""]
            lines += _table(field.fields)
    return "\n".join(lines) + "\n"


def _table(fields: Sequence[Field]) -> list[str]:
    rows = [
        "| Field | Type | Required | Default | Allowed | Description |",
        "|---|---|---|---|---|---|",
    ]
    for field in fields:
        cells = (
            f"`{field.name}`",
            _type_text(field),
            _required_text(field),
            _default_text(field),
            ", ".join(f"`{_value_text(value)}`" for value in field.allowed),
            field.description.replace("|", "\\|"),
        )
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _required_text(field: Field) -> str:
    if field.required_unless is not None:
        unless = (field.required_unless, *field.also_optional_when)
        return "yes, unless " + " or ".join(f"{k} is {_value_text(v)}" for k, v in unless)
    return "yes" if field.required else "no"


def _type_text(field: Field) -> str:
    if field.type == "array":
        text = "list of mappings" if field.fields else f"list of {field.items}s"
    elif field.type == "object":
        text = "mapping"
    else:
        text = " or ".join((field.type, *field.also))
    return text + (" or null" if field.nullable else "")


def _default_text(field: Field) -> str:
    if field.default_note:
        return field.default_note
    return "" if field.default is MISSING else f"`{_value_text(field.default)}`"


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[]"
    return str(value)


# --- the generator -----------------------------------------------------------------------------


def generated(root: Path) -> dict[Path, str]:
    """Each generated file under the repository `root` and its text."""
    schema = json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    return {
        root / "scripts" / "modelci" / "config" / SCHEMA_FILE.name: schema,
        root / REFERENCE_PATH: reference(),
    }


def main(argv: Sequence[str]) -> int:
    check = "--check" in argv
    rest = [arg for arg in argv if arg != "--check"]
    root = Path(rest[0]) if rest else Path(__file__).resolve().parents[3]
    stale = []
    for path, text in generated(root).items():
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        if check:
            stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(
            "out of date: " + ", ".join(stale) + "; run python -m modelci.config.fields",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
