"""mlops.yaml: loading, defaults, every validation rule, and every kind of bad YAML file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from modelci.config.mlops import DEFAULT_STANDS, load_config
from modelci.config.types import (
    DEFAULT_RESOURCES,
    Dag,
    GroundTruth,
    Monitoring,
    Resources,
    Retrain,
    Stand,
)
from modelci.config.yamlio import MAX_BYTES, key_position, parse_yaml, value_position
from modelci.errors import ConfigError, Problem

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "churn"

# A complete, valid config. Rule tests below change one line of it and expect one problem.
BASE = """\
version: 1
python: "3.11"
stands:
  - name: staging
  - name: production
    manual: true
models:
  - name: churn
    flavor: sklearn
    train:
      entrypoint: train.py
      args: ["--seed", "7"]
    gate:
      metrics:
        - name: accuracy
          min: 0.7
        - name: latency_ms
          max: 120
      compare_with_production: true
      tolerance: 0.01
    batch:
      resources: {cpu: 500m, memory: 1Gi}
      dags:
        - kind: inference
          entrypoint: score.py
          schedule: "0 6 * * *"
        - kind: monitoring
          entrypoint: score.py
          schedule: "@daily"
          retries: 3
    online:
      enabled: true
      min_replicas: 1
      max_replicas: 3
"""

MINIMAL = """\
version: 1
models:
  - name: churn
    flavor: sklearn
    train: {entrypoint: train.py}
    gate:
      metrics: [{name: accuracy, min: 0.7}]
"""


def write_repo(root: Path, config: str | bytes, files: tuple[str, ...] = ("train.py", "score.py")):
    root.mkdir(parents=True, exist_ok=True)
    for name in files:
        (root / name).write_text("print('hello')\n")
    path = root / "mlops.yaml"
    if isinstance(config, bytes):
        path.write_bytes(config)
    else:
        path.write_text(config)
    return path


def problems_in(path: Path, repo_root: Path | None = None) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, repo_root)
    return caught.value.problems


def line_of(text: str, fragment: str) -> int:
    """1-based line of the only line of `text` that contains `fragment`."""
    lines = [number for number, line in enumerate(text.splitlines(), 1) if fragment in line]
    assert len(lines) == 1, f"{fragment!r} is on lines {lines}"
    return lines[0]


def changed(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, f"{old!r} is not unique in the config"
    return text.replace(old, new)


# --- valid files ---------------------------------------------------------------------------------


def test_the_example_repository_loads():
    config = load_config(EXAMPLE / "mlops.yaml")

    model = config.model("churn")
    assert config.version == 1
    assert model.flavor == "sklearn"
    assert model.train.entrypoint == "train.py"
    assert [(m.name, m.min, m.max) for m in model.gate.metrics] == [("accuracy", 0.7, None)]
    assert model.gate.compare_with_production is True
    assert {dag.kind: dag.entrypoint for dag in model.batch.dags} == {
        "inference": "score.py",
        "monitoring": "modelci monitor",  # generated from the monitoring: section
    }
    assert all(dag.schedule for dag in model.batch.dags)
    assert model.online.enabled is True
    assert config.stands == (Stand("staging", manual=False), Stand("production", manual=True))
    monitoring = model.monitoring
    assert monitoring is not None
    assert (monitoring.data, monitoring.reference) == ("scores/${ds}.csv", "reference.csv")
    assert monitoring.ground_truth == GroundTruth("churned", "accuracy", 0.8, None)


MONITORED = """\
version: 1
models:
  - name: churn
    flavor: sklearn
    train: {entrypoint: train.py}
    gate: {metrics: [{name: accuracy, min: 0.8}]}
    monitoring:
      data: scores/${ds}.csv
      reference: reference.csv
      features: [age, income]
      score: predicted
      ranges: {age: [0, 120]}
      max_null_share: 0.05
      ground_truth: {label: churned, metric: rmse, max: 0.4}
      retrain: {cooldown_hours: 12, timeout_hours: 3}
"""


def test_a_monitoring_section_generates_the_monitoring_dag(tmp_path):
    model = load_config(write_repo(tmp_path, MONITORED)).models[0]

    assert model.monitoring == Monitoring(
        data="scores/${ds}.csv",
        reference="reference.csv",
        features=("age", "income"),
        score="predicted",
        ranges=(("age", 0.0, 120.0),),
        max_null_share=0.05,
        ground_truth=GroundTruth("churned", "rmse", None, 0.4),
        retrain=Retrain(enabled=True, cooldown_hours=12.0, timeout_hours=3.0),
    )
    (dag,) = model.batch.dags
    assert (dag.kind, dag.builtin, dag.schedule, dag.retries) == ("monitoring", True, "@daily", 0)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("data: scores/${ds}.csv", "data: /abs/x.csv", "monitoring.data: found"),
        ("data: scores/${ds}.csv", "data: ../x.csv", "a relative path"),
        ("data: scores/${ds}.csv", "data: s/${day}.csv", "unknown placeholder ${day}"),
        ("features: [age, income]", "features: []", "at least one column"),
        ("      score: predicted\n", "", "monitoring.score is not set"),
        ("{age: [0, 120]}", "{age: [120, 0]}", "Swap the two numbers"),
        ("max_null_share: 0.05", "max_null_share: 5", "a share from 0 to 1"),
        ("metric: rmse", "metric: r2", "expected one of accuracy, mae or rmse"),
        ("      retrain:", "      retrian:", 'Did you mean "retrain"?'),
    ],
)
def test_monitoring_mistakes_name_the_field_and_the_fix(tmp_path, old, new, message):
    with pytest.raises(ConfigError) as error:
        load_config(write_repo(tmp_path, MONITORED.replace(old, new)))
    assert message in str(error.value)
    assert "models[0].monitoring" in str(error.value)


def test_monitoring_and_a_hand_written_monitoring_dag_cannot_both_be_there(tmp_path):
    text = MONITORED.replace(
        "    monitoring:\n",
        "    batch: {dags: [{kind: monitoring, entrypoint: train.py}]}\n    monitoring:\n",
    )
    with pytest.raises(ConfigError, match="Remove the batch DAG of kind monitoring"):
        load_config(write_repo(tmp_path, text))


def test_a_full_config_reads_every_field(tmp_path):
    config = load_config(write_repo(tmp_path, BASE))

    model = config.models[0]
    assert config.path == str(tmp_path / "mlops.yaml")
    assert config.python == "3.11"
    assert model.train.args == ("--seed", "7")
    assert [(m.name, m.min, m.max) for m in model.gate.metrics] == [
        ("accuracy", 0.7, None),
        ("latency_ms", None, 120.0),
    ]
    assert model.gate.tolerance == 0.01
    inference, monitoring = model.batch.dags
    assert inference == Dag(
        kind="inference",
        entrypoint="score.py",
        schedule="0 6 * * *",
        retries=1,
        resources=Resources(cpu="500m", memory="1Gi"),
    )
    assert (monitoring.schedule, monitoring.retries) == ("@daily", 3)
    assert (model.online.min_replicas, model.online.max_replicas) == (1, 3)


def test_omitted_fields_get_their_defaults(tmp_path):
    config = load_config(write_repo(tmp_path, MINIMAL))

    model = config.models[0]
    assert config.python == "3.11"
    assert config.image is None
    assert config.stands == DEFAULT_STANDS == (Stand("staging"), Stand("production", manual=True))
    assert model.train.args == ()
    assert model.train.resources == DEFAULT_RESOURCES == Resources("1", "2Gi", 0)
    assert model.gate.compare_with_production is True
    assert model.gate.tolerance == 0.0
    assert model.batch.dags == ()
    assert (model.online.enabled, model.online.min_replicas, model.online.max_replicas) == (
        False,
        1,
        1,
    )
    assert model.online.resources == DEFAULT_RESOURCES


def test_a_training_dag_defaults_to_the_training_entrypoint_and_batch_resources(tmp_path):
    text = MINIMAL.replace(
        "train: {entrypoint: train.py}",
        'train: {entrypoint: train.py, args: ["--fast"]}\n'
        "    batch:\n"
        "      resources: {cpu: 2, memory: 4Gi}\n"
        "      dags:\n"
        "        - kind: training\n"
        '          schedule: "@weekly"\n'
        "        - kind: inference\n"
        "          entrypoint: score.py\n"
        "          resources: {memory: 8Gi, gpu: 1}\n",
    )
    training, inference = load_config(write_repo(tmp_path, text)).models[0].batch.dags

    assert (training.entrypoint, training.args) == ("train.py", ("--fast",))
    assert training.resources == Resources(cpu="2", memory="4Gi")
    assert inference.resources == Resources(cpu="2", memory="8Gi", gpu=1)


@pytest.mark.parametrize(
    ("written", "normalised"),
    [("0.5", "500m"), ("1.5", "1500m"), ("2.0", "2"), ("2", "2"), ('"250m"', "250m")],
)
def test_cpu_is_normalised_to_a_kubernetes_quantity_string(tmp_path, written, normalised):
    text = changed("resources: {cpu: 500m,", f"resources: {{cpu: {written},")
    config = load_config(write_repo(tmp_path, text))
    assert config.models[0].batch.dags[0].resources.cpu == normalised


def test_max_replicas_follows_min_replicas_when_omitted(tmp_path):
    text = changed("      min_replicas: 1\n      max_replicas: 3\n", "      min_replicas: 2\n")
    online = load_config(write_repo(tmp_path, text)).models[0].online
    assert (online.min_replicas, online.max_replicas) == (2, 2)


def test_entrypoints_are_checked_against_the_repository_root(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("")
    config_path = write_repo(
        tmp_path / "deploy",
        changed("train: {entrypoint: train.py}", "train: {entrypoint: ./src/train.py}", MINIMAL),
        files=(),
    )

    config = load_config(config_path, repo_root=tmp_path)

    assert config.models[0].train.entrypoint == "src/train.py"
    (problem,) = problems_in(config_path)  # relative to the config file's directory: missing
    assert problem.field == "models[0].train.entrypoint"
    # named relative to the repository root: the absolute path is the CI runner's
    assert "but src/train.py does not exist in the repository" in problem.message
    assert str(tmp_path) not in problem.message


# --- one wrong value: one problem naming field, line and fix -------------------------------------

# Each rule changes `old` into `new`; "#<" marks the line the problem must point at.
RULES = [
    # (id, old text, new text, field, part of the message)
    ("unknown-top-key", 'python: "3.11"', 'pyhton: "3.11"  #<', "pyhton", 'did you mean "python"'),
    (
        "unknown-model-key",
        "    online:",
        "    onlin:  #<",
        "models[0].onlin",
        'did you mean "online"',
    ),
    ("version-2", "version: 1", "version: 2  #<", "version", "expected the number 1"),
    ("version-string", "version: 1", 'version: "1"  #<', "version", "remove the quotes"),
    ("python-float", 'python: "3.11"', "python: 3.10  #<", "python", 'quotes: python: "3.11"'),
    ("python-too-old", 'python: "3.11"', 'python: "3.8"  #<', "python", '"3.9" to "3.13"'),
    ("image-empty", 'python: "3.11"', 'python: "3.11"\nimage: ""  #<', "image", "non-empty string"),
    (
        "model-name-case",
        "- name: churn",
        "- name: Churn_Model  #<",
        "models[0].name",
        'try "churn-model"',
    ),
    (
        "model-name-dash",
        "- name: churn",
        "- name: churn-  #<",
        "models[0].name",
        "not end with a dash",
    ),
    (
        "model-name-long",
        "- name: churn",
        "- name: customer-churn-predictor-v2  #<",
        "models[0].name",
        "(it has 27 characters)",
    ),
    (
        "flavor-typo",
        "flavor: sklearn",
        "flavor: sklaern  #<",
        "models[0].flavor",
        'did you mean "sklearn"',
    ),
    (
        "args-number",
        '["--seed", "7"]',
        '["--seed", 7]  #<',
        "models[0].train.args[1]",
        "put it in quotes",
    ),
    (
        "args-not-list",
        '["--seed", "7"]',
        '"--seed 7"  #<',
        "models[0].train.args",
        "a list of strings",
    ),
    (
        "min-as-string",
        "min: 0.7",
        'min: "0.7"  #<',
        "models[0].gate.metrics[0].min",
        "expected a number. remove the quotes",
    ),
    (
        "min-above-max",
        "          max: 120",
        "          min: 200\n          max: 120  #<",
        "models[0].gate.metrics[1].max",
        "below min 200",
    ),
    (
        "metric-name-duplicate",
        "- name: latency_ms",
        "- name: accuracy  #<",
        "models[0].gate.metrics[1].name",
        'duplicate metric name "accuracy" (first at line 15)',
    ),
    (
        "metric-without-bound",
        "- name: latency_ms\n          max: 120\n",
        "- name: latency_ms  #<\n",
        "models[0].gate.metrics[1]",
        "neither min nor max",
    ),
    (
        "tolerance-negative",
        "tolerance: 0.01",
        "tolerance: -0.1  #<",
        "models[0].gate.tolerance",
        ">= 0",
    ),
    (
        "compare-yes",
        "compare_with_production: true",
        "compare_with_production: yes  #<",
        "models[0].gate.compare_with_production",
        "write true or false",
    ),
    (
        "dag-kind-typo",
        "kind: monitoring",
        "kind: monitor  #<",
        "models[0].batch.dags[1].kind",
        'did you mean "monitoring"',
    ),
    (
        "dag-kind-duplicate",
        "kind: monitoring",
        "kind: inference  #<",
        "models[0].batch.dags[1].kind",
        'duplicate dag kind "inference" (first at line 24)',
    ),
    (
        "dag-without-entrypoint",
        "- kind: inference\n          entrypoint: score.py\n",
        "- kind: inference  #<\n",
        "models[0].batch.dags[0].entrypoint",
        'required key "entrypoint" is missing',
    ),
    (
        "retries-bool",
        "retries: 3",
        "retries: true  #<",
        "models[0].batch.dags[1].retries",
        "from 0 to 10",
    ),
    (
        "retries-high",
        "retries: 3",
        "retries: 11  #<",
        "models[0].batch.dags[1].retries",
        "from 0 to 10",
    ),
    (
        "schedule-hour",
        '"0 6 * * *"',
        '"0 25 * * *"  #<',
        "models[0].batch.dags[0].schedule",
        'hour field "25" is outside 0-23',
    ),
    (
        "schedule-fields",
        '"0 6 * * *"',
        '"0 6 * *"  #<',
        "models[0].batch.dags[0].schedule",
        "cron needs 5",
    ),
    (
        "schedule-preset",
        '"@daily"',
        '"@dayly"  #<',
        "models[0].batch.dags[1].schedule",
        'did you mean "@daily"',
    ),
    (
        "schedule-number",
        '"@daily"',
        "5  #<",
        "models[0].batch.dags[1].schedule",
        "found the number 5",
    ),
    (
        "cpu-word",
        "{cpu: 500m, memory: 1Gi}",
        "{cpu: lots, memory: 1Gi}  #<",
        "models[0].batch.resources.cpu",
        '"500m"',
    ),
    (
        "cpu-zero",
        "{cpu: 500m, memory: 1Gi}",
        "{cpu: 0, memory: 1Gi}  #<",
        "models[0].batch.resources.cpu",
        "a cpu amount",
    ),
    (
        "memory-milli",
        "memory: 1Gi}",
        "memory: 512m}  #<",
        "models[0].batch.resources.memory",
        'did you mean "512mi"',
    ),
    (
        "memory-bytes",
        "memory: 1Gi}",
        "memory: 2}  #<",
        "models[0].batch.resources.memory",
        'did you mean "2gi"',
    ),
    (
        "memory-float",
        "memory: 1Gi}",
        "memory: 1.5}  #<",
        "models[0].batch.resources.memory",
        '"2gi"',
    ),
    (
        "gpu-negative",
        "memory: 1Gi}",
        "memory: 1Gi, gpu: -1}  #<",
        "models[0].batch.resources.gpu",
        ">= 0",
    ),
    (
        "resources-list",
        "{cpu: 500m, memory: 1Gi}",
        "[1, 2]  #<",
        "models[0].batch.resources",
        "a mapping",
    ),
    (
        "min-replicas-negative",
        "min_replicas: 1",
        "min_replicas: -1  #<",
        "models[0].online.min_replicas",
        ">= 0",
    ),
    (
        "max-replicas-zero",
        "max_replicas: 3",
        "max_replicas: 0  #<",
        "models[0].online.max_replicas",
        ">= 1",
    ),
    (
        "max-below-min",
        "min_replicas: 1\n      max_replicas: 3",
        "min_replicas: 4\n      max_replicas: 3  #<",
        "models[0].online.max_replicas",
        "below min_replicas 4",
    ),
    (
        "enabled-string",
        "enabled: true",
        'enabled: "true"  #<',
        "models[0].online.enabled",
        "true or false",
    ),
    (
        "stand-reserved",
        "name: staging",
        "name: b-test  #<",
        "stands[0].name",
        'must not start with "b-"',
    ),
    ("stand-invalid", "name: staging", "name: Staging  #<", "stands[0].name", 'try "staging"'),
    (
        "stand-duplicate",
        "name: production",
        "name: staging  #<",
        "stands[1].name",
        'duplicate stand name "staging" (first at line 4)',
    ),
    ("stand-manual", "manual: true", "manual: yes  #<", "stands[1].manual", "true or false"),
    (
        "stands-empty",
        "stands:\n  - name: staging\n  - name: production\n    manual: true\n",
        "stands: []  #<\n",
        "stands",
        "at least one stand",
    ),
    (
        "entrypoint-absolute",
        "entrypoint: train.py",
        "entrypoint: /opt/train.py  #<",
        "models[0].train.entrypoint",
        "relative to the repository root",
    ),
    (
        "entrypoint-escape",
        "entrypoint: train.py",
        "entrypoint: ../train.py  #<",
        "models[0].train.entrypoint",
        "outside the repository root",
    ),
    (
        "entrypoint-missing",
        "entrypoint: train.py",
        "entrypoint: fit.py  #<",
        "models[0].train.entrypoint",
        "fit.py does not exist",
    ),
    (
        "entrypoint-dir",
        "entrypoint: train.py",
        "entrypoint: data  #<",
        "models[0].train.entrypoint",
        "is a directory",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [rule[1:] for rule in RULES],
    ids=[rule[0] for rule in RULES],
)
def test_each_rule_reports_field_line_and_fix(tmp_path, old, new, field, message):
    text = changed(old, new)
    (tmp_path / "data").mkdir()
    path = write_repo(tmp_path, text)

    (problem,) = problems_in(path)

    assert problem.file == str(path)
    assert problem.field == field
    assert message.lower() in problem.message.lower()
    assert problem.line == line_of(text, "#<")
    assert str(problem).startswith(f"{path}:{problem.line}:")


def test_every_problem_is_reported_at_once_in_file_order(tmp_path):
    text = changed("retries: 3", "retries: many")
    text = changed("flavor: sklearn", "flavor: sklaern", text)
    text = changed("version: 1", "version: 3", text)
    text = changed("    online:", "    onlin:", text)

    problems = problems_in(write_repo(tmp_path, text))

    assert [p.field for p in problems] == [
        "version",
        "models[0].flavor",
        "models[0].batch.dags[1].retries",
        "models[0].onlin",
    ]
    assert [p.line for p in problems] == sorted(p.line for p in problems)


def test_required_keys_are_named_at_the_enclosing_item(tmp_path):
    text = "version: 1\nmodels:\n  - name: churn\n    flavor: sklearn\n"
    problems = problems_in(write_repo(tmp_path, text))

    assert [(p.field, p.line) for p in problems] == [
        ("models[0].train", 3),
        ("models[0].gate", 3),
    ]
    assert "add it, e.g. gate: {metrics: [{name: accuracy, min: 0.8}]}" in problems[1].message


def test_a_file_without_models_or_version_names_both(tmp_path):
    problems = problems_in(write_repo(tmp_path, 'python: "3.11"\n'))
    assert [p.field for p in problems] == ["version", "models"]


def test_models_must_be_a_list(tmp_path):
    (problem,) = problems_in(write_repo(tmp_path, "version: 1\nmodels: churn\n"))
    assert (problem.field, problem.line) == ("models", 2)
    assert 'found the string "churn"; expected a list of models' in problem.message


def test_a_list_item_that_is_not_a_mapping_is_named_by_index(tmp_path):
    text = changed("  - name: production\n    manual: true\n", "  - production\n", BASE)
    (problem,) = problems_in(write_repo(tmp_path, text))
    assert (problem.field, problem.line) == ("stands[1]", 5)
    assert 'found the string "production"; expected a mapping with keys name and manual' in (
        problem.message
    )


def test_a_key_that_is_not_text_is_an_unknown_key(tmp_path):
    (problem,) = problems_in(write_repo(tmp_path, MINIMAL + "1: one\n"))
    assert (problem.field, problem.line) == ("1", 8)
    assert 'unknown key "1"' in problem.message


def test_model_names_must_be_unique(tmp_path):
    second = MINIMAL[MINIMAL.index("  - name: churn") :]
    text = MINIMAL + second
    (problem,) = problems_in(write_repo(tmp_path, text))
    assert problem.field == "models[1].name"
    assert problem.line == 8
    assert 'duplicate model name "churn" (first at line 3)' in problem.message


def test_an_entrypoint_symlinked_outside_the_repository_is_refused(tmp_path):
    outside = tmp_path / "elsewhere.py"
    outside.write_text("")
    repo = tmp_path / "repo"
    path = write_repo(repo, MINIMAL, files=())
    (repo / "train.py").symlink_to(outside)

    (problem,) = problems_in(path)
    assert problem.field == "models[0].train.entrypoint"
    assert "outside the repository root" in problem.message


def test_the_error_text_is_one_line_per_problem(tmp_path):
    text = changed("min: 0.7", 'min: "0.7"')
    path = write_repo(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    line = line_of(text, 'min: "0.7"')
    assert str(caught.value) == (
        f'{path}:{line}:16: models[0].gate.metrics[0].min: found the string "0.7"; '
        "expected a number. Remove the quotes."
    )
    assert caught.value.exit_code == 2


# --- bad YAML: exactly one problem naming the file, quickly ---------------------------------------

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)

BAD_FILES = [
    # (id, content, part of the message, line)
    ("syntax", "version: 1\nmodels: [\n", "invalid yaml", 3),
    ("bad-indent", "version: 1\nmodels:\n  - name: a\n   flavor: b\n", "invalid yaml", 4),
    ("tabs", "version: 1\nmodels:\n\t- name: churn\n", "tab is used for indentation", 3),
    (
        "duplicate-key",
        "version: 1\nmodels: []\npython: '3.11'\nversion: 1\n",
        'duplicate key "version" (first at line 1, again at line 4)',
        4,
    ),
    ("empty", "", "is empty", None),
    ("only-comments", "# nothing here\n\n# still nothing\n", "is empty", None),
    ("top-level-list", "- version: 1\n", "top level is a list", 1),
    ("top-level-scalar", "just some text\n", "top level is a single value", 1),
    ("two-documents", "version: 1\n---\nversion: 2\n", "more than one yaml document", 2),
    ("anchor", "version: &v 1\nmodels: []\n", "anchors and aliases", 1),
    ("alias-bomb", LAUGHS, "anchors and aliases", 1),
    ("unquoted-cron", "schedule: */5 * * * *\n", 'must be quoted, e.g. schedule: "*/5 * * * *"', 1),
    ("unquoted-preset", "schedule: @daily\n", 'must be quoted, e.g. schedule: "@daily"', 1),
    ("tag", "version: !!int 1\n", "yaml tags (!!int) are not supported", 1),
    ("python-tag", "x: !!python/object/apply:os.system [ls]\n", "yaml tags", 1),
    ("nested", "a: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than", 1),
    ("control-char", "version: 1\nname: a\x07b\n", "control character", 2),
    ("nul", b"version: 1\n\x00\x01\x02binary", "nul bytes", 2),
    ("invalid-utf8", b"version: 1\nname: caf\xe9\n", "not valid utf-8 (byte 0xe9)", 2),
    ("utf16", "version: 1\n".encode("utf-16"), "utf-16", None),
    ("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "nul bytes", 3),
]


@pytest.mark.parametrize(
    ("content", "message", "line"),
    [case[1:] for case in BAD_FILES],
    ids=[case[0] for case in BAD_FILES],
)
def test_bad_yaml_gives_one_clear_problem_quickly(tmp_path, content, message, line):
    path = write_repo(tmp_path, content)

    started = time.monotonic()
    (problem,) = problems_in(path)
    elapsed = time.monotonic() - started

    assert problem.file == str(path)
    assert str(path) in str(ConfigError([problem]))
    assert message in problem.message.lower()
    assert problem.line == line
    assert elapsed < 3, f"took {elapsed:.1f} s"


def test_a_file_larger_than_the_cap_is_refused_without_parsing(tmp_path):
    path = write_repo(tmp_path, "version: 1\n" + "#" * MAX_BYTES)
    (problem,) = problems_in(path)
    assert "too large" in problem.message
    assert str(MAX_BYTES) in problem.message


def test_a_missing_file_names_the_path_it_looked_for(tmp_path):
    path = tmp_path / "nope" / "mlops.yaml"
    (problem,) = problems_in(path)
    assert problem.file == str(path)
    assert f"looked for {path}" in problem.message


def test_a_directory_is_not_a_config_file(tmp_path):
    (problem,) = problems_in(tmp_path)
    assert problem.file == str(tmp_path)
    assert "is a directory" in problem.message


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "mlops.yaml"
    os.mkfifo(fifo)
    (problem,) = problems_in(fifo)
    assert "not a regular file" in problem.message


def test_a_path_through_a_file_cannot_be_opened(tmp_path):
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "mlops.yaml"
    (problem,) = problems_in(path)
    assert problem.file == str(path)
    assert "cannot be opened: Not a directory" in problem.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_an_unreadable_file_says_so(tmp_path):
    path = write_repo(tmp_path, MINIMAL)
    path.chmod(0)
    (problem,) = problems_in(path)
    assert "permission denied" in problem.message


# --- positions, for other modules' messages ------------------------------------------------------


def test_positions_point_at_keys_values_and_items():
    document = parse_yaml("a: 1\nb:\n  - x\n  - {y: 2}\n", "f.yaml")

    assert key_position(document, "b") == (2, 1)
    assert value_position(document, "a") == (1, 4)
    assert value_position(document["b"], 1) == (4, 5)
    assert value_position(document["b"][1], "y") == (4, 9)
