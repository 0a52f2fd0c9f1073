"""The JSON Schema of mlops.yaml and `validate` agree on the structure of every file.

Both come from one definition (modelci.config_fields). Each file here goes through both:
`load_config` (what `modelci validate` runs) and the committed schema, read as the YAML
language server reads the file (YAML 1.2). A file validate accepts the schema accepts; a file
with a structural mistake (an unknown key, a missing required key, a section of the wrong
type) both refuse, validate naming the mistake.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from modelci.config.fields import MISSING, SCHEMA_FILE, Field, generated, main, section, walk
from modelci.config.fields import ROOT as DEFINITION
from modelci.config.mlops import load_config
from modelci.errors import ConfigError
from tests.integration.test_config_space import config, write_repo

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*/mlops.yaml"))
TEST_REPOS = sorted((ROOT / "tests" / "repos").glob("*/mlops.yaml"))
SCHEMA = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)


def schema_errors(path: Path) -> list[str]:
    document = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    return [error.message for error in VALIDATOR.iter_errors(document)]


def validate_errors(path: Path) -> str:
    """What `validate` prints for the file; "" when it accepts it."""
    try:
        load_config(path)
    except ConfigError as error:
        return str(error)
    return ""


def test_the_schema_is_a_valid_draft_7_schema() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)


def test_the_committed_schema_and_reference_are_generated_from_the_definition() -> None:
    for path, text in generated(ROOT).items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.relative_to(ROOT)} is out of date: run python -m modelci.config.fields"
        )
    assert main(["--check", str(ROOT)]) == 0


def test_the_generator_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path)]) == 0
    (tmp_path / "scripts" / "modelci" / "config" / "mlops.schema.json").write_text("{}\n")
    assert main(["--check", str(tmp_path)]) == 1
    assert "mlops.schema.json" in capsys.readouterr().err


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.parent.name)
def test_every_example_passes_validate_and_the_schema(example: Path) -> None:
    first_line = example.read_text(encoding="utf-8").splitlines()[0]
    schema = (example.parent / first_line.split("$schema=", 1)[1]).resolve()
    assert schema == SCHEMA_FILE.resolve(), first_line
    assert validate_errors(example) == ""
    assert schema_errors(example) == []


@pytest.mark.parametrize("config_file", TEST_REPOS, ids=lambda path: path.parent.name)
def test_every_test_repository_passes_validate_and_the_schema(config_file: Path) -> None:
    assert validate_errors(config_file) == ""
    assert schema_errors(config_file) == []


DEFAULTS_FILE = """\
version: 1
stands: [{name: staging}]
models:
  - name: plain
    flavor: sklearn
    train: {entrypoint: train.py, resources: {}}
    gate: {metrics: [{name: accuracy, min: 0.8}]}
    batch: {resources: {}, dags: [{kind: training}]}
    online: {resources: {}}
    monitoring:
      data: scores.csv
      reference: reference.csv
      features: [tenure]
      score: score
      ground_truth: {label: label, min: 0.5}
      retrain: {}
      resources: {}
  - name: sparky
    flavor: pyfunc
    train: {entrypoint: train.py, engine: spark, spark: {driver: {}, executor: {}, ci: {}}}
    gate: {metrics: [{name: accuracy, min: 0.8}]}
"""


def test_the_defaults_the_definition_documents_are_the_loaders(tmp_path: Path) -> None:
    path = write_repo(tmp_path, {})
    path.write_text(DEFAULTS_FILE, encoding="utf-8")
    loaded = load_config(path)
    plain, sparky = loaded.models
    assert plain.monitoring is not None and plain.monitoring.ground_truth is not None
    spark = sparky.train.spark
    assert spark is not None
    resources = plain.train.resources
    actual = {
        "python": loaded.python,
        "code.exclude": loaded.code.exclude,
        "stands.manual": loaded.stands[0].manual,
        "models.batch.dags": sparky.batch.dags,
        "models.train.args": plain.train.args,
        "models.train.engine": plain.train.engine,
        "models.train.resources.cpu": resources.cpu,
        "models.train.resources.memory": resources.memory,
        "models.train.resources.gpu": resources.gpu,
        "models.train.spark.version": spark.version,
        "models.train.spark.driver.cores": spark.driver.cores,
        "models.train.spark.driver.memory": spark.driver.memory,
        "models.train.spark.executor.instances": spark.executor.instances,
        "models.train.spark.executor.cores": spark.executor.cores,
        "models.train.spark.executor.memory": spark.executor.memory,
        "models.train.spark.ci.master": spark.ci_master,
        "models.train.spark.ci.args": spark.ci_args,
        "models.gate.compare_with_production": plain.gate.compare_with_production,
        "models.gate.tolerance": plain.gate.tolerance,
        "models.batch.dags.retries": plain.batch.dags[0].retries,
        "models.batch.resources.cpu": plain.batch.dags[0].resources.cpu,
        "models.online.enabled": plain.online.enabled,
        "models.online.min_replicas": plain.online.min_replicas,
        "models.online.resources.memory": plain.online.resources.memory,
        "models.monitoring.schedule": plain.monitoring.schedule,
        "models.monitoring.max_psi": plain.monitoring.max_psi,
        "models.monitoring.max_null_share": plain.monitoring.max_null_share,
        "models.monitoring.max_out_of_range": plain.monitoring.max_out_of_range,
        "models.monitoring.ground_truth.metric": plain.monitoring.ground_truth.metric,
        "models.monitoring.retrain.enabled": plain.monitoring.retrain.enabled,
        "models.monitoring.retrain.cooldown_hours": plain.monitoring.retrain.cooldown_hours,
        "models.monitoring.retrain.timeout_hours": plain.monitoring.retrain.timeout_hours,
        "models.monitoring.resources.gpu": plain.monitoring.resources.gpu,
    }
    documented = {path: section(path).default for path in actual}
    assert documented == actual
    # Every field with a documented default value is compared above (resources: one of each).
    with_default = {
        path.replace("[]", "")
        for path, field in walk(DEFINITION)
        if field.default is not MISSING and ".resources." not in path
    }
    assert with_default <= set(actual), with_default - set(actual)


BAD_FILES = {
    "unknown top-level key": (
        "version: 1\nmodel:\n  - name: churn\n",
        ['unknown key "model"', 'required key "models" is missing'],
    ),
    "misspelt nested key": (
        "version: 1\nmodels:\n  - name: churn\n    flavor: sklearn\n"
        "    train: {entrypoint: train.py, resorces: {cpu: 1}}\n"
        "    gate: {metrics: [{name: accuracy, min: 0.8}]}\n",
        ['unknown key "resorces". Did you mean "resources"?'],
    ),
    "missing required section": (
        "version: 1\nmodels:\n  - name: churn\n    flavor: sklearn\n"
        "    train: {entrypoint: train.py}\n",
        ['required key "gate" is missing'],
    ),
    "missing required key in a list item": (
        "version: 1\nmodels:\n  - name: churn\n    flavor: sklearn\n"
        "    train: {entrypoint: train.py}\n    gate: {metrics: [{min: 0.8}]}\n",
        ['required key "name" is missing'],
    ),
    "section that is not a mapping": (
        "version: 1\nmodels:\n  - name: churn\n    flavor: sklearn\n    train: train.py\n"
        "    gate: {metrics: [{name: accuracy, min: 0.8}]}\n",
        ["expected a mapping"],
    ),
    "list that is a mapping": (
        "version: 1\nstands: {name: production}\nmodels:\n  - name: churn\n"
        "    flavor: sklearn\n    train: {entrypoint: train.py}\n"
        "    gate: {metrics: [{name: accuracy, min: 0.8}]}\n",
        ["expected a list of stands"],
    ),
    "inference DAG without its entrypoint": (
        "version: 1\nmodels:\n  - name: churn\n    flavor: sklearn\n"
        "    train: {entrypoint: train.py}\n    gate: {metrics: [{name: accuracy, min: 0.8}]}\n"
        "    batch: {dags: [{kind: inference}]}\n",
        ['required key "entrypoint" is missing (only a training DAG defaults'],
    ),
    "empty list of models": ("version: 1\nmodels: []\n", ["expected at least one model"]),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_validate_and_the_schema_refuse_the_same_bad_files(name: str, tmp_path: Path) -> None:
    text, expected = BAD_FILES[name]
    path = write_repo(tmp_path, {})
    path.write_text(text, encoding="utf-8")
    printed = validate_errors(path)
    for message in expected:
        assert message in printed, printed
    assert schema_errors(path), f"the schema accepts {name}:\n{text}"


# --- drawn files: the config space, then one structural mistake in it --------------------------


def containers(node: Any, field: Field, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """(path, field) of every mapping and list of `node` the definition describes as a
    section (not a free mapping like ranges), the node itself first."""
    found: list[tuple[Any, ...]] = []
    if isinstance(node, dict) and field.fields and not field.values:
        found.append((path, field))
        for key, value in node.items():
            found += containers(value, field.child(key), (*path, key))
    elif isinstance(node, list) and field.type == "array":
        found.append((path, field))
        if field.fields:
            for index, item in enumerate(node):
                found += containers(item, _item(field), (*path, index))
    return found


def _item(field: Field) -> Field:
    """A list of mappings' item, as a mapping field with the same keys."""
    return Field(field.name, "object", field.description, fields=field.fields)


def at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


@st.composite
def broken(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A drawn config with one structural mistake, and what validate must say about it."""
    document = copy.deepcopy(draw(config()))
    path, field = draw(st.sampled_from(containers(document, DEFINITION)))
    node = at(document, path)
    mistakes = ["not a container"] if path else []
    if isinstance(node, dict):
        mistakes.append("unknown key")
        mistakes += [f"missing {key}" for key in field.required_keys() if key in node]
        mistakes += [
            f"missing {child.name}"
            for child in field.fields
            if child.required_unless is not None
            and child.name in node
            and node.get(child.required_unless[0]) != child.required_unless[1]
        ]
    mistake = draw(st.sampled_from(mistakes))
    if mistake == "unknown key":
        node["colour"] = "blue"
        return document, 'unknown key "colour"'
    if mistake.startswith("missing "):
        key = mistake.removeprefix("missing ")
        del node[key]
        return document, f'required key "{key}" is missing'
    at(document, path[:-1])[path[-1]] = "oops"
    return document, 'found the string "oops"; expected a '


SETTINGS = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def test_the_schema_accepts_every_drawn_config_validate_accepts(tmp_path: Path) -> None:
    seen = {"accepted": 0, "refused": 0}
    counter = iter(range(10**6))

    @SETTINGS
    @given(document=config())
    def each(document: dict[str, Any]) -> None:
        where = tmp_path / str(next(counter))
        where.mkdir()
        path = write_repo(where, document)
        printed = validate_errors(path)
        seen["refused" if printed else "accepted"] += 1
        if not printed:
            assert schema_errors(path) == [], document
        if schema_errors(path):  # the schema refuses only what validate refuses
            assert printed, document

    each()
    # Both sides of the line are explored: files validate accepts and files it refuses.
    assert seen["accepted"] >= 20 and seen["refused"] >= 10, seen


@SETTINGS
@given(drawn=broken())
def test_validate_and_the_schema_refuse_every_structural_mistake(
    drawn: tuple[dict[str, Any], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    document, expected = drawn
    path = write_repo(tmp_path_factory.mktemp("broken"), document)
    printed = validate_errors(path)
    assert expected in printed, printed
    assert schema_errors(path), document
