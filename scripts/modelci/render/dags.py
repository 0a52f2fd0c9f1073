"""Airflow 3 DAG code for one batch DAG of one model in one environment.

Pure: builds the source text of a DAG file from data; writing it to the DAG bundle repository
is someone else's job.

Every value reaches the generated code as a Python literal made here by `pyliteral`, and every
value in a comment goes through `comment_text`, so no config value, branch name or URL can
change the structure of the file. The template enforces this: a `{{ }}` expression that did not
pass through one of those two filters stops the rendering.

Choices the generated DAG makes (the README should repeat them):
- `is_paused_upon_creation=False` in every environment, feature branches included: the
  pipeline that writes the file has gated the model, and a data scientist pushing a branch
  expects its batch DAG to run without a trip to the Airflow UI. Scheduled runs of a feature
  DAG last as long as the branch: the stop job deletes the file.
- `start_date` is a fixed past date and `catchup=False`: a scheduled DAG runs once for the
  latest interval and then on schedule, never a backfill; the same inputs give the same bytes.
- `max_active_runs=1`: two runs of one batch job never overlap.
- Memory limit = request, no CPU limit, GPUs as an `nvidia.com/gpu` limit.
- Airflow renders the operator's fields (image, command, env, labels...) with Jinja at run
  time, and loads a field ending in `.yaml`/`.json` as a template file. Every value in the
  generated operator is wrapped in `airflow.sdk.literal`, so none of that happens to them; the
  only rendered strings are `RUN_VALUES`, fixed here, which carry the allowlisted run values
  of `macros.py` into the pod as environment variables.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from ..config.fields import DAG_KINDS
from ..config.macros import env_name
from ..config.naming import Names
from ..config.settings import Pipeline
from ..config.types import Dag, Model, Resources
from .spark import RUN_DATE_ARGUMENTS, spark_scoring_application
from .spark import spark_application as spark_application_for

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "dag.py.j2"
GPU_RESOURCE = "nvidia.com/gpu"
LABEL_PREFIX = "modelci/"
# The Jinja each allowlisted macro is rendered from. Airflow leaves the date keys out of the
# context of a run without a logical date, and its Jinja is strict: hence the defaults.
_RUN_VALUE_TEMPLATES = {
    "ds": "{{ ds | default('') }}",
    "ts": "{{ ts | default('') }}",
    "data_interval_start": "{{ (data_interval_start | default(none) | ts) or '' }}",
    "data_interval_end": "{{ (data_interval_end | default(none) | ts) or '' }}",
    "run_id": "{{ run_id }}",
}
RUN_VALUES = {env_name(macro): template for macro, template in _RUN_VALUE_TEMPLATES.items()}


@dataclass(frozen=True)
class MonitorTarget:
    """What the product's monitoring DAG needs beyond any DAG: the config file to read in the
    code archive, and where a failed check triggers retraining (a GitLab pipeline of the
    project's default branch; the trigger token comes from the optional `trigger_secret`)."""

    config_file: str  # relative to the repository root, e.g. "mlops.yaml"
    gitlab_url: str  # CI_SERVER_URL
    ref: str  # the default branch
    trigger_secret: str  # Kubernetes Secret holding MODELCI_TRIGGER_TOKEN

    def command(self, names: Names) -> list[str]:
        stand = ["--stand", names.environment] if names.is_stand else []
        return ["modelci", "monitor", "--config", self.config_file, "--model", names.model, *stand]

    def env(self, names: Names) -> dict[str, str]:
        return {
            "MODELCI_GITLAB_URL": self.gitlab_url,
            "MODELCI_PROJECT": names.project,
            "MODELCI_EXPERIMENT": names.experiment,
            "MODELCI_RETRAIN_REF": self.ref,
        }


class _Rendered(str):
    """Text a filter made safe to paste into Python source."""


def pyliteral(value: Any) -> _Rendered:
    """`value` as Python source that evaluates back to it (lists for tuples).

    Only str, int, float, bool, None and lists, tuples and str-keyed dicts of them are accepted;
    strings are written with `ascii()`, so the literal is one line of printable ASCII whatever
    the string holds (newlines, quotes, NUL, U+2028, bidi controls...).
    """
    return _Rendered(_literal(value))


def _literal(value: Any) -> str:
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"cannot write the non-finite float {value!r} as a Python literal")
        return repr(value)
    if isinstance(value, str):
        return ascii(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"dict keys must be str to write a literal, not {type(key).__name__}"
                )
            items.append(f"{_literal(key)}: {_literal(item)}")
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"cannot write a {type(value).__name__} as a Python literal")


def pyblock(value: Any, indent: int = 0) -> _Rendered:
    """`value` as Python source like `pyliteral`, but a non-empty dict or list spreads over
    lines (4 spaces per level), so a large structure stays readable in the generated file."""
    pad = " " * indent
    if isinstance(value, dict) and value:
        items = [f"{pad}    {_literal(k)}: {pyblock(v, indent + 4)}," for k, v in value.items()]
        return _Rendered("{\n" + "\n".join(items) + f"\n{pad}}}")
    if isinstance(value, list | tuple) and value:
        items = [f"{pad}    {pyblock(item, indent + 4)}," for item in value]
        return _Rendered("[\n" + "\n".join(items) + f"\n{pad}]")
    return _Rendered(_literal(value))


def comment_text(value: Any) -> _Rendered:
    """`value` as text that stays inside one `#` comment line.

    Printable characters are kept; anything else (line breaks of any kind, control and format
    characters such as bidi overrides, NUL) is written as its backslash escape.
    """
    text = str(value)
    return _Rendered("".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text))


def _only_filtered(value: Any) -> Any:
    if not isinstance(value, _Rendered):
        raise TypeError(
            f"{TEMPLATE_NAME}: every {{{{ }}}} expression must pass through |py or |comment "
            f"(got a {type(value).__name__})"
        )
    return value


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # the output is Python, escaped by the filters below
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_only_filtered,
    )
    env.filters["py"] = pyliteral
    env.filters["pyblock"] = pyblock
    env.filters["comment"] = comment_text
    return env


_TEMPLATE = _environment().get_template(TEMPLATE_NAME)


def _training_env(env: dict[str, str], names: Names, pipeline: Pipeline) -> dict[str, str]:
    """A scheduled training makes a run of its own (not the served one), tagged as a CI
    training's: MLflow adds the tags in MLFLOW_RUN_CONTEXT to a run the script starts. Its
    run is not deployed until a pipeline gates it."""
    from ..systems.tracking import provenance_tags

    tags = provenance_tags(pipeline, names.environment, names.model)
    env = {key: value for key, value in env.items() if key != "MLFLOW_RUN_ID"}
    return {
        **env,
        "MLFLOW_EXPERIMENT_NAME": names.experiment,
        "MLFLOW_RUN_CONTEXT": json.dumps(tags, sort_keys=True),
    }


def container_resources(resources: Resources) -> tuple[dict[str, str], dict[str, str]]:
    """Kubernetes requests and limits: memory limit = request, no CPU limit, GPUs as a limit."""
    requests = {"cpu": resources.cpu, "memory": resources.memory}
    limits = {"memory": resources.memory}
    if resources.gpu > 0:
        limits[GPU_RESOURCE] = str(resources.gpu)
    return requests, limits


def render_dag(
    *,
    names: Names,
    model: Model,
    dag: Dag,
    pipeline: Pipeline,
    image: str,
    model_uri: str,
    run_id: str,
    code_uri: str,
    s3_secret: str,
    tracking_uri: str,
    s3_endpoint: str = "",
    environment_uri: str = "",
    data_uri: str = "",
    monitor: MonitorTarget | None = None,
) -> str:
    """The Python source of the DAG file for `dag` of `model`, for the environment in `names`.

    `s3_endpoint` is the S3 URL pods reach (empty for AWS); the keys come from `s3_secret`.
    `environment_uri` is the model's environment archive the command runs in ("": the image's
    Python). `data_uri` is the environment's data prefix (MODELCI_DATA_URI in the pod), where
    a scoring DAG writes what the monitoring DAG reads. The product's own monitoring DAG
    (`dag.builtin`) runs `modelci monitor` and needs `monitor`."""
    if dag.kind not in DAG_KINDS:
        raise ValueError(f"unknown DAG kind {dag.kind!r}: expected one of {', '.join(DAG_KINDS)}")
    if model.name != names.model:
        raise ValueError(f"names are for model {names.model!r}, not {model.name!r}")
    requests, limits = container_resources(dag.resources)
    command = ["python", dag.entrypoint, *dag.args]  # (a Spark DAG's is its application)
    extra_env: dict[str, str] = {}
    trigger_secret = ""
    if dag.builtin:
        if monitor is None:
            raise ValueError("the monitoring DAG needs a MonitorTarget")
        command, extra_env = monitor.command(names), monitor.env(names)
        trigger_secret = monitor.trigger_secret
    env_vars = {
        "MODEL_URI": model_uri,
        "MLFLOW_RUN_ID": run_id,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MODELCI_ENVIRONMENT": names.environment,
        "MODELCI_MODEL": names.model,
        "MODELCI_CODE_URI": code_uri,
        **({"MODELCI_ENVIRONMENT_URI": environment_uri} if environment_uri else {}),
        **({"MLFLOW_S3_ENDPOINT_URL": s3_endpoint} if s3_endpoint else {}),
        **({"MODELCI_DATA_URI": data_uri} if data_uri else {}),
        **extra_env,
    }
    if dag.kind == "training":
        env_vars = {**_training_env(env_vars, names, pipeline), "MODELCI_SERVED_RUN_ID": run_id}
    labels = {
        f"{LABEL_PREFIX}project": names.project_slug,
        f"{LABEL_PREFIX}environment": names.environment,
        f"{LABEL_PREFIX}model": names.model,
        f"{LABEL_PREFIX}dag-kind": dag.kind,
    }
    spark_application = None
    if dag.spark is not None:
        spark_application = spark_scoring_application(
            name=names.k8s_name,
            namespace=names.namespace,
            model=model,
            image=image,
            code_uri=code_uri,
            environment_uri=environment_uri,
            model_uri=model_uri,
            data_uri=data_uri,
            env_vars=env_vars,
            s3_secret=s3_secret,
            s3_endpoint=s3_endpoint,
            labels=labels,
        )
    elif dag.kind == "training" and model.train.engine == "spark":
        spark_application = spark_application_for(
            name=names.k8s_name,
            namespace=names.namespace,
            model=model,
            image=image,
            code_uri=code_uri,
            environment_uri=environment_uri,
            env_vars=env_vars,
            s3_secret=s3_secret,
            s3_endpoint=s3_endpoint,
            labels=labels,
        )
    return _TEMPLATE.render(
        spark_application=spark_application,
        run_date_arguments=list(RUN_DATE_ARGUMENTS) if dag.spark is not None else None,
        names=names,
        dag=dag,
        pipeline=pipeline,
        project=" ".join(part for part in (names.project, pipeline.project_url) if part),
        run_id=run_id,
        dag_id=names.dag_id(dag.kind),
        image=image,
        pod_run=[
            "modelci",
            "pod-run",
            "--code",
            code_uri,
            # The product's monitoring runs modelci itself, in the image's Python.
            *(["--env", environment_uri] if environment_uri and not dag.builtin else []),
            "--",
        ],
        command=command,
        env_vars=env_vars,
        trigger_secret=trigger_secret,
        run_values=RUN_VALUES,
        s3_secret=s3_secret,
        requests=requests,
        limits=limits,
        labels=labels,
        tags=[names.project_slug, names.environment, names.model, dag.kind],
        pod_name=f"{names.model}-{dag.kind}",
        description=f"{dag.kind} of {names.model} for {names.project} @ {names.branch}",
    )
