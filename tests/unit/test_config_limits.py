"""mlops.yaml values the systems downstream would refuse (cron that never fires, image
references a registry refuses, metric keys MLflow refuses, resources no node has, unknown
`${...}` placeholders, dates and huge numbers) are refused by `load_config` at their line,
with the fix; and advice is only given when following it gives a valid value."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelci.config import naming
from modelci.config.checks import describe, wrong
from modelci.config.mlops import load_config
from modelci.errors import ConfigError, Problem

CONFIG = """\
version: 1
python: "3.11"
image: registry.example.com/ml/churn:1.0
stands:
  - name: staging
models:
  - name: churn
    flavor: sklearn
    train:
      entrypoint: train.py
      args: ["--date", "${ds}"]
      resources: {cpu: 500m, memory: 1Gi, gpu: 0}
    gate:
      metrics:
        - name: accuracy
          min: 0.7
      tolerance: 0.01
    batch:
      dags:
        - kind: inference
          entrypoint: score.py
          args: ["--at", "${ts}"]
          schedule: "0 6 * * *"
          retries: 1
    online:
      enabled: true
      min_replicas: 1
      max_replicas: 3
"""
DIGEST = "sha256:" + "0123456789abcdef" * 4
EXAMPLE_IMAGE = "registry.example.com/ml/churn:1.0"


def load(tmp_path: Path, text: str):
    for name in ("train.py", "score.py"):
        (tmp_path / name).write_text("")
    path = tmp_path / "mlops.yaml"
    path.write_text(text)
    return load_config(path)


def changed(old: str, new: str) -> str:
    assert CONFIG.count(old) == 1, f"{old!r} is not unique in the config"
    return CONFIG.replace(old, new)


def only_problem(tmp_path: Path, text: str) -> Problem:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    (problem,) = caught.value.problems
    return problem


def assert_reported(tmp_path: Path, old: str, new: str, field: str, *fragments: str) -> str:
    """Change `old` to `new`; expect one problem on that line, at the value of the last key
    of `field` when it is on that line, whose message holds every fragment."""
    text = changed(old, new + "  #<")
    problem = only_problem(tmp_path, text)
    line = next(number for number, text in enumerate(text.splitlines(), 1) if "#<" in text)
    assert (problem.field, problem.line) == (field, line)
    source = text.splitlines()[line - 1]
    key = field.rsplit(".", 1)[-1]
    if not key.endswith("]") and f"{key}:" in source:
        at = source.index(f"{key}:")
        empty = new.endswith(":")  # a null is reported at its key
        assert problem.column == (at + 1 if empty else at + len(key) + 3)
    for fragment in fragments:
        assert fragment in problem.message
    assert str(problem).startswith(f"{tmp_path / 'mlops.yaml'}:{line}:{problem.column}: {field}: ")
    return problem.message


def test_the_base_config_is_valid(tmp_path):
    config = load(tmp_path, CONFIG)
    assert config.image == EXAMPLE_IMAGE
    assert config.models[0].train.args == ("--date", "${ds}")


# --- 1. a cron expression that never fires --------------------------------------------------------

SCHEDULE = 'schedule: "0 6 * * *"'
SCHEDULE_FIELD = "models[0].batch.dags[0].schedule"


@pytest.mark.parametrize(
    ("schedule", "fix"),
    [
        (
            "0 6 30 2 *",
            'no month in "2" has a day "30" (at most 29 days). Pick a day that '
            'exists, e.g. "0 6 28 2 *".',
        ),
        (
            "0 0 31 4,6,9,11 *",
            'no month in "4,6,9,11" has a day "31" (at most 30 days). Pick a '
            'day that exists, e.g. "0 0 30 4,6,9,11 *".',
        ),
        ("0 0 31 feb,apr *", 'no month in "feb,apr" has a day "31"'),
        ("0 0 30,31 2 *", 'no month in "2" has a day "30,31"'),
    ],
)
def test_a_cron_expression_that_never_fires_is_refused(tmp_path, schedule, fix):
    message = assert_reported(
        tmp_path, SCHEDULE, f'schedule: "{schedule}"', SCHEDULE_FIELD, "It never fires: ", fix
    )
    assert message.startswith(f'found the string "{schedule}"; expected a cron expression')


@pytest.mark.parametrize(
    "schedule",
    [
        "0 0 29 2 *",  # leap years
        "0 0 31 2 mon",  # day of month or day of week: Mondays in February
        "0 0 31 2 1-5",
        "0 0 31 * *",
        "0 0 31 */2 *",  # January, March, ...
        "0 0 30,31 2,3 *",
        "0 0 31 1-12/2 *",
        "*/15 * * * 1-5",
    ],
)
def test_cron_expressions_that_fire_are_accepted(tmp_path, schedule):
    config = load(tmp_path, changed(SCHEDULE, f'schedule: "{schedule}"'))
    assert config.models[0].batch.dags[0].schedule == schedule


# --- 2. image references --------------------------------------------------------------------------

IMAGE = f"image: {EXAMPLE_IMAGE}"


@pytest.mark.parametrize(
    ("image", "fix"),
    [
        ('"my image:1.0"', "It contains whitespace"),
        ('"ml/churn;rm"', "It contains shell characters"),
        ('"$(curl evil)"', "whitespace"),
        ('"ml/$(id)"', "It contains shell characters"),
        ("registry.example.com/ML/Churn:1.0", 'The repository path must be lowercase: "ML"'),
        ('"registry.example.com/ml/churn:"', "The tag after : is empty"),
        ("registry.example.com/ml/churn:-rc1", 'The tag "-rc1" may hold'),
        ("registry.example.com//churn", "The path has an empty part"),
        ("ml/churn/", "The path has an empty part"),
        ("ml/churn@sha256:abc", "sha256: followed by 64 lowercase hex digits"),
        ("-bad.example.com/ml/churn", 'The registry "-bad.example.com" is not a host name'),
        ("ml/churn--", 'The path part "churn--" may hold only lowercase letters'),
        ("ml/" + "a" * 260, "It has 263 characters; at most 255."),
    ],
)
def test_an_image_that_is_not_an_oci_reference_is_refused(tmp_path, image, fix):
    message = assert_reported(tmp_path, IMAGE, f"image: {image}", "image", fix)
    assert f'e.g. "{EXAMPLE_IMAGE}"' in message


@pytest.mark.parametrize(
    "image",
    [
        "python:3.11-slim",
        "churn",
        "localhost/ml/churn",
        "localhost:5000/ml/churn:v1",
        "registry.example.com:5000/ml/churn:1.0",
        "Registry.Example.com/team/sub__x/a-b--c.d_e:V1_x.2",
        f"ml/churn@{DIGEST}",
        f"ml/churn:1.0@{DIGEST}",
        "[::1]:5000/ml/churn",
    ],
)
def test_oci_image_references_are_accepted(tmp_path, image):
    assert load(tmp_path, changed(IMAGE, f'image: "{image}"')).image == image


# --- 3. metric names MLflow refuses ---------------------------------------------------------------

METRIC = "- name: accuracy"
METRIC_FIELD = "models[0].gate.metrics[0].name"


@pytest.mark.parametrize(
    ("name", "fix"),
    [
        ("../x", 'MLflow refuses ".." path segments'),
        ("a/../b", 'MLflow refuses ".." path segments'),
        ("/x", "MLflow refuses a name that starts with /"),
        ('" "', "It is blank; write the metric's name."),
        ("a//b", 'not a normalised path (no //, no ./ segments, no / at the end). Write "a/b".'),
        ("./a", 'Write "a".'),
        ("a/", 'Write "a".'),
        ("a" * 251, "It has 251 characters; MLflow allows at most 250."),
        ("acc@1", ""),
    ],
)
def test_a_metric_name_mlflow_refuses_is_refused(tmp_path, name, fix):
    message = assert_reported(tmp_path, METRIC, f"- name: {name}", METRIC_FIELD, fix)
    assert (
        'expected the name of a metric the training run logs (letters, digits, spaces and "_-.:/")'
        in message
    )


@pytest.mark.parametrize("name", ["val/accuracy", "f1 score", "loss.v2", "a-b_c", "a" * 250])
def test_metric_names_mlflow_accepts_are_accepted(tmp_path, name):
    config = load(tmp_path, changed(METRIC, f'- name: "{name}"'))
    assert config.models[0].gate.metrics[0].name == name


# --- 4. resources no node has ---------------------------------------------------------------------

RESOURCES = "resources: {cpu: 500m, memory: 1Gi, gpu: 0}"
RESOURCES_FIELD = "models[0].train.resources"


@pytest.mark.parametrize(
    ("resources", "field", "fix"),
    [
        ("{cpu: 1000, memory: 1Gi}", "cpu", "At most 512 cores: no node has more. Ask for fewer."),
        ('{cpu: "513", memory: 1Gi}', "cpu", "At most 512 cores"),
        ('{cpu: "600000m", memory: 1Gi}', "cpu", "At most 512 cores"),
        ("{cpu: 1, memory: 99999999Ei}", "memory", "At most 4Ti: no node has more memory."),
        ("{cpu: 1, memory: 5Ti}", "memory", "At most 4Ti"),
        ("{cpu: 1, memory: 5000000000000}", "memory", "At most 4Ti"),
        ("{cpu: 1, memory: 1Gi, gpu: 1000000}", "gpu", "at most 16. At most 16 GPUs: no node"),
    ],
)
def test_resources_no_node_has_are_refused_naming_the_bound(tmp_path, resources, field, fix):
    assert_reported(
        tmp_path, RESOURCES, f"resources: {resources}", f"{RESOURCES_FIELD}.{field}", fix
    )


def test_the_largest_resources_are_accepted(tmp_path):
    text = changed(RESOURCES, "resources: {cpu: 512, memory: 4Ti, gpu: 16}")
    resources = load(tmp_path, text).models[0].train.resources
    assert (resources.cpu, resources.memory, resources.gpu) == ("512", "4Ti", 16)
    text = changed(RESOURCES, 'resources: {cpu: "512000m", memory: "4096Gi"}')
    assert load(tmp_path, text).models[0].train.resources.memory == "4096Gi"


def test_replicas_have_an_upper_bound(tmp_path):
    assert_reported(
        tmp_path,
        "max_replicas: 3",
        "max_replicas: 1001",
        "models[0].online.max_replicas",
        "expected a whole number >= 1, at most 1000. At most 1000 serving pods per model",
    )


# --- 5. advice only when following it gives a valid value -----------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "field", "fix", "not_said"),
    [
        (
            RESOURCES,
            "resources: {cpu: -1, memory: 1Gi}",
            "models[0].train.resources.cpu",
            'The amount must be positive, e.g. "500m" or 1.',
            "quotes",
        ),
        (
            RESOURCES,
            "resources: {cpu: 0, memory: 1Gi}",
            "models[0].train.resources.cpu",
            "The amount must be positive",
            "quotes",
        ),
        (
            RESOURCES,
            'resources: {cpu: "-1", memory: 1Gi}',
            "models[0].train.resources.cpu",
            "The amount must be positive",
            "quotes",
        ),
        (
            RESOURCES,
            "resources: {cpu: 1, memory: 0}",
            "models[0].train.resources.memory",
            'Memory must be at least 1M, e.g. "512Mi".',
            "did you mean",
        ),
        (
            RESOURCES,
            "resources: {cpu: 1, memory: -5}",
            "models[0].train.resources.memory",
            'Memory must be at least 1M, e.g. "512Mi".',
            "did you mean",
        ),
        (
            RESOURCES,
            "resources: {cpu: 1, memory: 999999}",
            "models[0].train.resources.memory",
            'A bare number counts bytes. Memory must be at least 1M, e.g. "512Mi".',
            "999999Gi",
        ),
        (
            RESOURCES,
            "resources: {cpu: 1, memory: 0Gi}",
            "models[0].train.resources.memory",
            'Memory must be at least 1M, e.g. "512Mi".',
            "did you mean",
        ),
        (
            RESOURCES,
            "resources: {cpu: 1, memory: 99999999m}",
            "models[0].train.resources.memory",
            '"m" means thousandths of a byte.',
            "did you mean",
        ),
        (
            "retries: 1",
            'retries: "11"',
            "models[0].batch.dags[0].retries",
            "expected a whole number from 0 to 10.",
            "quotes",
        ),
        ("version: 1", 'version: "2"', "version", "(the config format version).", "quotes"),
        (
            'python: "3.11"',
            "python: 3.8",
            "python",
            'Write a supported version in quotes, e.g. python: "3.11".',
            "Put it in quotes",
        ),
        ("- name: staging", "- name: B-Test", "stands[0].name", 'For example "staging".', 'Try "'),
        ("- name: churn", "- name:", "models[0].name", "Give it a value.", "remove"),
    ],
)
def test_advice_is_only_given_when_it_is_correct(tmp_path, old, new, field, fix, not_said):
    message = assert_reported(tmp_path, old, new, field, fix)
    assert not_said.lower() not in message.lower()


@pytest.mark.parametrize(
    ("old", "new", "field", "fix"),
    [
        ("retries: 1", 'retries: "3"', "models[0].batch.dags[0].retries", "Remove the quotes."),
        ("enabled: true", 'enabled: "true"', "models[0].online.enabled", "Remove the quotes."),
        (
            "tolerance: 0.01",
            "tolerance:",
            "models[0].gate.tolerance",
            "Give it a value or remove the key.",
        ),
        (
            RESOURCES,
            "resources: {cpu: 1, memory: 512}",
            "models[0].train.resources.memory",
            'A bare number counts bytes; did you mean "512Gi"?',
        ),
        ('["--date", "${ds}"]', '["--seed", 7]', "models[0].train.args[1]", "Put it in quotes."),
        ('python: "3.11"', "python: 3.10", "python", 'Put it in quotes: python: "3.11"'),
    ],
)
def test_correct_advice_is_still_given(tmp_path, old, new, field, fix):
    assert_reported(tmp_path, old, new, field, fix)


# --- 6. dates and huge numbers: a problem at their line, never a crash ----------------------------


@pytest.mark.parametrize(
    ("old", "new", "field", "found"),
    [
        (SCHEDULE, "schedule: 2024-01-01", SCHEDULE_FIELD, "found the date 2024-01-01 (YAML reads"),
        ('python: "3.11"', "python: 2024-01-01", "python", "found the date 2024-01-01"),
        (
            'python: "3.11"',
            "python: 2024-02-30",
            "python",
            "found 2024-02-30, which YAML reads as a date that does not exist",
        ),
        (
            "retries: 1",
            "retries: 2024-01-01 10:00:00",
            "models[0].batch.dags[0].retries",
            "found the date and time 2024-01-01T10:00:00",
        ),
        (
            "retries: 1",
            "retries: " + "1" * 5000,
            "models[0].batch.dags[0].retries",
            "found the number 11111111111111111111... (5000 digits; at most 100 are read); "
            "expected a whole number from 0 to 10.",
        ),
        (
            "tolerance: 0.01",
            "tolerance: " + "9" * 5000,
            "models[0].gate.tolerance",
            "(5000 digits; at most 100 are read); expected a number >= 0.",
        ),
        (
            "tolerance: 0.01",
            "tolerance: 1e999",
            "models[0].gate.tolerance",
            "(infinite: .inf, or beyond the largest number, ~1.8e308); expected a number >= 0.",
        ),
        (
            "tolerance: 0.01",
            "tolerance: " + "9" * 5000 + ".5",
            "models[0].gate.tolerance",
            "infinite",
        ),
        (
            "min_replicas: 1",
            "min_replicas: 0x" + "f" * 5000,
            "models[0].online.min_replicas",
            "(5000 digits; at most 100 are read)",
        ),
        (
            RESOURCES,
            "resources: {cpu: " + "7" * 5000 + ", memory: 1Gi}",
            "models[0].train.resources.cpu",
            "(5000 digits",
        ),
        (
            RESOURCES,
            'resources: {cpu: 1, memory: "' + "7" * 5000 + 'Gi"}',
            "models[0].train.resources.memory",
            "At most 4Ti",
        ),
        (
            '["--date", "${ds}"]',
            '["--date", 2024-01-01]',
            "models[0].train.args[1]",
            "found the date 2024-01-01",
        ),
    ],
)
def test_dates_and_huge_numbers_are_reported_at_their_line(tmp_path, old, new, field, found):
    assert_reported(tmp_path, old, new, field, found)


def test_a_date_in_a_list_of_arguments_can_be_quoted(tmp_path):
    message = assert_reported(
        tmp_path, '["--date", "${ds}"]', '["--date", 2024-01-01]', "models[0].train.args[1]"
    )
    assert message.endswith("Put it in quotes.")


def test_an_unreadable_key_is_an_unknown_key_at_its_line(tmp_path):
    problem = only_problem(tmp_path, CONFIG + "2024-02-30: x\n")
    line = len(CONFIG.splitlines()) + 1
    assert (problem.field, problem.line, problem.column) == ("2024-02-30", line, 1)
    assert 'unknown key "2024-02-30"' in problem.message


def test_messages_never_print_a_whole_number_python_cannot_convert():
    huge = 10**5000  # str() of it raises ValueError
    assert describe(huge) == "a whole number with about 5001 digits"
    assert str(wrong(huge, "a number")).startswith("found a whole number with about 5001 digits")
    assert describe(10**50) == "the number 10000000000000000000... (51 digits)"


# --- 7. ${...} placeholders in args ---------------------------------------------------------------

OFFERED = "${ds}, ${ts}, ${data_interval_start}, ${data_interval_end} or ${run_id}"


@pytest.mark.parametrize(
    ("old", "new", "field", "unknown"),
    [
        ('["--date", "${ds}"]', '["--date", "${date}"]', "models[0].train.args[1]", "${date}"),
        (
            '["--at", "${ts}"]',
            '["--at=${var.value.secret}"]',
            "models[0].batch.dags[0].args[0]",
            "${var.value.secret}",
        ),
        ('["--at", "${ts}"]', '["--at", "${ts"]', "models[0].batch.dags[0].args[1]", "${"),
    ],
)
def test_an_unknown_placeholder_in_args_is_refused(tmp_path, old, new, field, unknown):
    message = assert_reported(tmp_path, old, new, field)
    assert (
        f"with the unknown placeholder {unknown}; expected only the placeholders {OFFERED}. "
        in (message)
    )
    assert message.endswith("Use one of those, or write $${ for a literal ${.")


def test_allowlisted_placeholders_escapes_and_jinja_braces_are_accepted(tmp_path):
    args = '["${ds}", "${run_id}", "$${HOME}", "{{ ds }}", "{% raw %}", "--x=${data_interval_end}"]'
    config = load(tmp_path, changed('["--at", "${ts}"]', args))
    assert config.models[0].batch.dags[0].args == (
        "${ds}",
        "${run_id}",
        "$${HOME}",
        "{{ ds }}",
        "{% raw %}",
        "--x=${data_interval_end}",
    )


def test_the_args_a_training_dag_inherits_are_reported_once(tmp_path):
    dag = (
        "        - kind: inference\n"
        "          entrypoint: score.py\n"
        '          args: ["--at", "${ts}"]\n'
    )
    text = changed(dag, "        - kind: training\n")
    text = text.replace('args: ["--date", "${ds}"]', 'args: ["--date", "${date}"]')
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert [p.field for p in caught.value.problems] == ["models[0].train.args[1]"]


# --- 8. one set of name rules: naming.py's --------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["a", "churn", "a" * 20, "a" * 21, "churn-", "1churn", "b-fix", "Churn", "a--b"]
)
def test_config_and_naming_agree_on_model_and_stand_names(tmp_path, name):
    def naming_accepts(check) -> bool:
        try:
            check(name)
        except ValueError:
            return False
        return True

    text = changed("- name: churn", f'- name: "{name}"')
    text = text.replace("- name: staging", f'- name: "{name}"')
    problems = []
    try:
        load(tmp_path, text)
    except ConfigError as error:
        problems = [p.field for p in error.problems]
    assert ("models[0].name" not in problems) == naming_accepts(naming.check_model_name)
    assert ("stands[0].name" not in problems) == naming_accepts(naming.check_stand_name)


# --- 9. entry points are named relative to the repository root ------------------------------------


def test_a_missing_entrypoint_is_named_relative_to_the_repository_root(tmp_path):
    problem = only_problem(tmp_path, changed("entrypoint: train.py", "entrypoint: ./src/fit.py"))
    assert problem.field == "models[0].train.entrypoint"
    assert problem.message == (
        'found "./src/fit.py", but src/fit.py does not exist in the repository; expected a '
        "file. Fix the path (relative to the repository root) or add the file."
    )


def test_an_entrypoint_too_long_for_the_file_system_is_a_problem_not_a_crash(tmp_path):
    problem = only_problem(tmp_path, changed("entrypoint: train.py", "entrypoint: " + "a" * 5000))
    assert problem.field == "models[0].train.entrypoint"
    assert "a path that cannot be looked at (File name too long)" in problem.message
    assert len(problem.message) < 300
