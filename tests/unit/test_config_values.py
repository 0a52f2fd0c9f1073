"""Values `modelci validate` accepts work downstream, and values the target system accepts are
not refused: Spark sizes as Spark reads them (rendered so that Spark, the driver's JVM and the
Spark Operator read them alike) within what a cluster can give, CPU amounts Kubernetes can
count, metric names exactly as MLflow checks them, feature columns once each, and messages
written for people (no Python notation)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import _validate_metric

from modelci.config.checks import spark_memory_bytes
from modelci.config.mlops import load_config
from modelci.errors import ConfigError, Problem
from modelci.render.spark import local_submit_args, spark_application

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads(
    (ROOT / "tests/schemas/spark-operator/sparkapplication-v1beta2.strict.json").read_text()
)
GIB = 2**30

SPARK = """\
version: 1
models:
  - name: churn-spark
    flavor: spark
    train:
      entrypoint: train.py
      args: ["--rows", "200000"]
      engine: spark
      spark:
        version: "4.3.0"
        driver: {cores: 1, memory: 2g}
        executor: {instances: 4, cores: 2, memory: 4g}
    gate:
      metrics:
        - name: accuracy
          min: 0.7
    batch:
      dags:
        - kind: training
          schedule: "@weekly"
"""

PLAIN = """\
version: 1
models:
  - name: churn
    flavor: sklearn
    train:
      entrypoint: train.py
      resources: {cpu: 500m, memory: 1Gi}
    gate:
      metrics:
        - name: accuracy
          min: 0.7
    monitoring:
      data: scores/${ds}.csv
      reference: reference.csv
      features: [age, income]
"""

DRIVER = "driver: {cores: 1, memory: 2g}"
EXECUTOR = "executor: {instances: 4, cores: 2, memory: 4g}"
EXECUTOR_FIELD = "models[0].train.spark.executor"
# What the driver's JVM (-Xmx), Spark 3 and 4 and the Spark Operator's quota code all read.
PORTABLE_SIZE = re.compile(r"[1-9][0-9]*[kmgt]")


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "train.py").write_text("")
    path = tmp_path / "mlops.yaml"
    path.write_text(text)
    return path


def changed(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old} is not once in the config"
    return text.replace(old, new)


def refused(tmp_path: Path, text: str, marker: str, field: str, found: str, *fix: str) -> Problem:
    """The one problem of `text`: at the line holding `marker`, naming the file, line, field,
    the value found and each part of the fix."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    (line,) = [number for number, row in enumerate(text.splitlines(), 1) if marker in row]
    assert str(problem).startswith(f"{path}:{line}:{problem.column}: {field}: found {found}")
    for part in fix:
        assert part in problem.message
    return problem


def application(model) -> dict:
    return spark_application(
        name="churn-spark-b-x",
        namespace="ml-spark",
        model=model,
        image="registry.example.com/platform/runtime:1.0",
        code_uri="s3://mlops/scratch/ml-spark/b-x/code/0123456789abcdef.tar.gz",
        environment_uri="s3://mlops/scratch/envs/py3.11-0123456789abcdef0123/environment.tar.gz",
        env_vars={"MLFLOW_TRACKING_URI": "http://mlflow:5000"},
        s3_secret="modelci-s3",
        s3_endpoint="",
        labels={"modelci/model": "churn-spark"},
    )


# --- Spark memory: every unit Spark reads, rendered in one form everything reads ------------------


@pytest.mark.parametrize(
    ("written", "rendered", "size"),
    [
        ("512M", "512m", GIB // 2),
        ("2gb", "2g", 2 * GIB),
        ("2GB", "2g", 2 * GIB),
        ('"3072"', "3072m", 3 * GIB),  # a bare number: MiB, as Spark reads spark.*.memory
        ("3072", "3072m", 3 * GIB),
        ("2Gi", "2g", 2 * GIB),  # newer Spark reads Ki/Mi/Gi/Ti too (SPARK-55051)
        ("1tb", "1t", 2**40),
        ("1048576K", "1048576k", GIB),
        ("1073741824b", "1024m", GIB),  # bytes become whole MiB, as Spark sizes the pod
        ('" 2G "', "2g", 2 * GIB),  # Spark trims
    ],
)
def test_a_size_spark_reads_loads_and_renders_in_a_form_all_readers_share(
    tmp_path, written, rendered, size
) -> None:
    text = changed(SPARK, DRIVER, f"driver: {{cores: 1, memory: {written}}}")
    model = load_config(write(tmp_path, text)).models[0]
    assert model.train.spark.driver.memory == rendered
    assert spark_memory_bytes(rendered) == size

    app = application(model)
    jsonschema.Draft7Validator(SCHEMA).validate(app)
    assert app["spec"]["driver"]["memory"] == rendered
    assert PORTABLE_SIZE.fullmatch(app["spec"]["driver"]["memory"])
    assert f"--conf spark.driver.memory={rendered} " in local_submit_args(model.train.spark)


@pytest.mark.skipif(shutil.which("java") is None, reason="needs a JVM")
@pytest.mark.parametrize(("written", "rendered"), [("2gb", "2g"), ("1024", "1024m")])
def test_the_driver_jvm_takes_the_rendered_size_where_it_refuses_the_written_one(
    tmp_path, written, rendered
) -> None:
    """spark-submit starts the driver's JVM with -Xmx<spark.driver.memory> as written: 2gb
    (Spark's notation) is refused by the JVM, and 1024 means bytes there, not MiB."""
    text = changed(SPARK, DRIVER, f"driver: {{cores: 1, memory: {written}}}")
    memory = load_config(write(tmp_path, text)).models[0].train.spark.driver.memory
    assert memory == rendered

    def jvm_starts(size: str) -> bool:
        command = ["java", f"-Xmx{size}", "-version"]
        return subprocess.run(command, capture_output=True, timeout=60).returncode == 0

    assert jvm_starts(memory)
    assert not jvm_starts(written)


@pytest.mark.parametrize(
    ("written", "found", "fix"),
    [
        ("1k", 'the string "1k"', ("less than 450 MiB of heap", "Ask for at least 512m.")),
        ("256m", 'the string "256m"', ("less than 450 MiB of heap", 'Did you mean "256g"?')),
        ("2", "the number 2", ("a bare number counts MiB", 'Did you mean "2g"?')),
        ("100000g", 'the string "100000g"', ("no node has more than 4Ti",)),
        ("5000000t", 'the string "5000000t"', ("plus 40 %", "Ask for less")),
        ("3t", 'the string "3t"', ("no node has more than 4Ti",)),
        ("1.5g", 'the string "1.5g"', ('Spark takes whole numbers only; write "1536m".',)),
        ("4x", 'the string "4x"', ("Spark's units b, k, m, g or t",)),
        ("-2g", 'the string "-2g"', ('Write a whole number and a unit, e.g. "4g".',)),
    ],
)
def test_a_size_spark_refuses_or_no_node_has_is_refused_with_the_range_and_fix(
    tmp_path, written, found, fix
) -> None:
    text = changed(SPARK, EXECUTOR, f"executor: {{instances: 4, cores: 2, memory: {written}}}")
    problem = refused(
        tmp_path,
        text,
        "executor:",
        f"{EXECUTOR_FIELD}.memory",
        found,
        "expected a Spark memory size from 512m to 2t",
        *fix,
    )
    assert problem.line == 12


def test_the_bounds_themselves_are_accepted(tmp_path) -> None:
    text = changed(SPARK, EXECUTOR, "executor: {instances: 16, cores: 256, memory: 2t}")
    text = changed(text, DRIVER, "driver: {cores: 512, memory: 512m}")
    spark = load_config(write(tmp_path, text)).models[0].train.spark
    assert (spark.driver.cores, spark.driver.memory) == (512, "512m")
    assert (spark.executor.instances, spark.executor.cores, spark.executor.memory) == (
        16,
        256,
        "2t",
    )


# --- Spark cores and executors: per pod and for the whole training --------------------------------


@pytest.mark.parametrize(
    ("executor", "field", "found", "fix"),
    [
        (
            "{instances: 1000, cores: 256, memory: 4g}",
            "instances",
            "1000 executors of 256 cores, 256000 cores in all",
            ("expected at most 4096 cores", "Ask for fewer, e.g. instances: 16."),
        ),
        (
            "{instances: 1000, cores: 1, memory: 64g}",
            "instances",
            "1000 executors of 64g, 64000g in all",
            ("expected at most 32t", "Ask for fewer, e.g. instances: 512."),
        ),
        (
            "{instances: 1001, cores: 1, memory: 4g}",
            "instances",
            "the number 1001",
            ("expected a whole number from 1 to 1000", "At most 1000 executors"),
        ),
        (
            "{instances: 4, cores: 513, memory: 4g}",
            "cores",
            "the number 513",
            ("expected a whole number from 1 to 512", "no node has more than 512"),
        ),
        (
            "{instances: 4, cores: 0, memory: 4g}",
            "cores",
            "the number 0",
            ("expected a whole number from 1 to 512", "Ask for at least 1."),
        ),
        (
            "{instances: 4, cores: 2.5, memory: 4g}",
            "cores",
            "the number 2.5",
            ("expected a whole number from 1 to 512", "Write a whole number."),
        ),
    ],
)
def test_executors_beyond_a_node_or_a_cluster_share_are_refused(
    tmp_path, executor, field, found, fix
) -> None:
    text = changed(SPARK, EXECUTOR, f"executor: {executor}")
    refused(tmp_path, text, "executor:", f"{EXECUTOR_FIELD}.{field}", found, *fix)


def test_the_whole_training_is_checked_only_once_its_fields_are_valid(tmp_path) -> None:
    """An invalid memory is reported once, at memory, not again as a total."""
    text = changed(SPARK, EXECUTOR, "executor: {instances: 1000, cores: 1, memory: 20t}")
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert [problem.field for problem in caught.value.problems] == [f"{EXECUTOR_FIELD}.memory"]


# --- CPU: the same amount is refused however it is written --------------------------------------

CPU = "resources: {cpu: 500m, memory: 1Gi}"
CPU_FIELD = "models[0].train.resources.cpu"


@pytest.mark.parametrize(
    ("written", "found", "closest"),
    [
        ('"0.0001"', 'the string "0.0001"', "1m"),
        ("0.0001", "the number 0.0001", "1m"),
        ('"0.5m"', 'the string "0.5m"', "1m"),
        ('"1.0015"', 'the string "1.0015"', "1002m"),
        ("1.0015", "the number 1.0015", "1002m"),
    ],
)
def test_a_cpu_amount_finer_than_a_millicore_is_refused_as_string_or_number(
    tmp_path, written, found, closest
) -> None:
    text = changed(PLAIN, CPU, f"resources: {{cpu: {written}, memory: 1Gi}}")
    refused(
        tmp_path,
        text,
        "resources:",
        CPU_FIELD,
        found,
        "expected a CPU amount",
        f'Kubernetes cannot divide a core finer than 1m (0.001 core); write "{closest}".',
    )


@pytest.mark.parametrize(("written", "kept"), [('"0.001"', "0.001"), ("0.001", "1m"), ("1", "1")])
def test_a_whole_number_of_millicores_is_accepted_either_way(tmp_path, written, kept) -> None:
    text = changed(PLAIN, CPU, f"resources: {{cpu: {written}, memory: 1Gi}}")
    assert load_config(write(tmp_path, text)).models[0].train.resources.cpu == kept


# --- metric names: exactly what MLflow refuses ----------------------------------------------------

METRIC = "- name: accuracy"
METRIC_FIELD = "models[0].gate.metrics[0].name"
NAMES = [
    ".",
    "..",
    "...",
    "..acc",
    "acc..",
    ".acc",
    "acc.",
    "val/..",
    "val/../acc",
    "../acc",
    "/acc",
    "acc/",
    "val//acc",
    "./acc",
    "val/./acc",
    "val/.",
    "val/...",
    "val/.acc",
    "f1 score",
    "val:acc",
    "précision",
    "точность",
    "acc@1",
    "acc,top5",
    "acc\\top5",
    "acc\ttop5",
    "a" * 250,
    "a" * 251,
]


def mlflow_accepts(name: str) -> bool:
    try:
        _validate_metric(name, 0.5, 0, 0)
    except MlflowException:
        return False
    return True


@pytest.mark.parametrize("name", NAMES)
def test_a_metric_name_is_accepted_exactly_when_mlflow_accepts_it(tmp_path, name) -> None:
    text = changed(PLAIN, METRIC, f"- name: {json.dumps(name)}")
    path = write(tmp_path, text)
    if mlflow_accepts(name):
        assert load_config(path).models[0].gate.metrics[0].name == name
        return
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.field == METRIC_FIELD
    assert f"found the string {json.dumps(name)[:58]}" in problem.message


@pytest.mark.parametrize(
    ("name", "fix"),
    [
        (".", 'MLflow refuses "." (the folder itself) as a name'),
        ("..", 'MLflow refuses ".." path segments in a name; rename it.'),
        ("..acc", 'MLflow refuses a name that starts with ".."; rename it.'),
        ("val//acc", 'Write "val/acc".'),
        ("acc@1", 'letters, digits, spaces and "_-.:/", not "@"; rename it.'),
    ],
)
def test_a_metric_name_mlflow_refuses_is_named_with_the_fix(tmp_path, name, fix) -> None:
    assert not mlflow_accepts(name)
    written = f"- name: {json.dumps(name)}"
    text = changed(PLAIN, METRIC, written)
    refused(tmp_path, text, written, METRIC_FIELD, f"the string {json.dumps(name)}", fix)


def test_a_blank_metric_name_is_refused_though_mlflow_would_log_it(tmp_path) -> None:
    """The one deliberate difference: MLflow takes " ", no training logs a metric so named."""
    assert mlflow_accepts(" ")
    text = changed(PLAIN, METRIC, '- name: " "')
    refused(tmp_path, text, '- name: " "', METRIC_FIELD, 'the string " "', "It is blank")


# --- monitoring features --------------------------------------------------------------------------

FEATURES = "features: [age, income]"
FEATURES_FIELD = "models[0].monitoring.features"


def test_a_feature_listed_twice_is_refused_naming_it_and_its_first_line(tmp_path) -> None:
    text = changed(PLAIN, FEATURES, "features:\n        - age\n        - income\n        - age")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    first = text.splitlines().index("        - age") + 1
    assert str(problem) == (
        f'{path}:{first + 2}:11: {FEATURES_FIELD}[2]: duplicate feature column "age" '
        f"(first at line {first}); feature columns must be unique. Remove one."
    )


def test_features_listed_once_each_load(tmp_path) -> None:
    text = changed(PLAIN, FEATURES, "features: [age, income, tenure]")
    monitoring = load_config(write(tmp_path, text)).models[0].monitoring
    assert monitoring.features == ("age", "income", "tenure")


def test_a_column_whose_metric_key_mlflow_refuses_is_refused(tmp_path) -> None:
    """psi.<column> and the others are MLflow metric keys: "age/" would end in a /."""
    assert not mlflow_accepts("out_of_range.age/")
    text = changed(PLAIN, FEATURES, 'features: [income, "age/"]')
    refused(
        tmp_path,
        text,
        "features:",
        f"{FEATURES_FIELD}[1]",
        'the string "age/"',
        'MLflow would refuse the metric key "out_of_range.age/"',
        "Rename the column where the data is written.",
    )


# --- messages written for people ------------------------------------------------------------------

PYTHON_NOTATION = re.compile(r"\bNone\b|\bTrue\b|\bFalse\b|\('|\['|\{'|ordereddict")


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ("true: 1", "true", 'unknown key "true"'),
        ("null: 1", "null", 'unknown key "null"'),
        ("? [a, b]\n: 1", "[a, b]", 'unknown key "[a, b]"'),
        ("? {a: 1}\n: 1", "{a: 1}", 'unknown key "{a: 1}"'),
    ],
)
def test_a_key_that_is_not_text_is_named_as_yaml_writes_it(tmp_path, extra, field, message):
    path = write(tmp_path, PLAIN + extra + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.field == field
    assert problem.message.startswith(f"{message}. Expected one of version, python, image, ")
    assert re.search(r", models(, \w+)* or \w+\.$", problem.message)  # a, b or c
    assert not PYTHON_NOTATION.search(str(problem))


def test_a_spark_argument_with_a_run_value_is_quoted_as_yaml_text(tmp_path) -> None:
    text = changed(SPARK, '["--rows", "200000"]', '["--day", "it\'s ${ds}"]')
    refused(
        tmp_path,
        text,
        "args:",
        "models[0].train.args[1]",
        'the string "it\'s ${ds}"',
        "cannot use run values such as ${ds}",
    )


@pytest.mark.parametrize(
    ("old", "new", "listed"),
    [
        ("flavor: sklearn", "flavor: sk", "an MLflow flavor: sklearn, xgboost, "),
        ("flavor: sklearn", "flavor: sk", ", sentence_transformers, paddle or pyfunc. "),
        (
            FEATURES,
            FEATURES + "\n      score: p\n      ground_truth: {label: y, metric: f1, min: 0}",
            "expected one of accuracy, mae or rmse.",
        ),
        (
            FEATURES,
            FEATURES + '\n      schedule: "@dayly"',
            "one of @once, @hourly, @daily, @weekly, @monthly or @yearly, or null",
        ),
        ("memory: 1Gi}", "memory: 1Gi, gpus: 1}", "Expected one of cpu, memory or gpu."),
        (
            "    train:\n      entrypoint: train.py\n      resources: {cpu: 500m, memory: 1Gi}",
            "    train: train.py",
            "expected a mapping with keys entrypoint, args, resources, engine and spark.",
        ),
        (
            "scores/${ds}.csv",
            "scores/${day}/${hour}.csv",
            "the unknown placeholders ${day} and ${hour}; expected only the placeholders ${ds}, "
            "${ts}, ${data_interval_start}, ${data_interval_end} or ${run_id}.",
        ),
    ],
)
def test_lists_of_choices_read_as_a_b_or_c(tmp_path, old, new, listed) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, changed(PLAIN, old, new)))
    (problem,) = caught.value.problems
    assert listed in problem.message
    assert not PYTHON_NOTATION.search(problem.message)
