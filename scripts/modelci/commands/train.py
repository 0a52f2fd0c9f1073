"""`modelci train`: create the MLflow run with provenance tags, then run the training entrypoint
so that a plain `mlflow.start_run()` in it attaches to that run.

The entrypoint runs with the Python of the model's own environment (built from the model
repository's requirements, see `modelenv.py`), never with the Python that runs `modelci`.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from ..config.macros import expand
from ..config.types import Model
from ..errors import ModelciError
from ..lifecycle.modelenv import (
    SERVING_RUNTIME,
    Archives,
    ModelEnvironment,
    default_cache_dir,
    ensure_environment,
    variables_for,
)
from ..lifecycle.retraining import TAG_TRIGGERED_BY, RetrainRequest, record_outcome
from ..lifecycle.workspace import Job, add_config_arguments, clear_state, load_job, write_state
from ..render.spark import local_submit_args

DEFAULT_REQUIREMENTS = "requirements.txt"
# How much of the entrypoint's stderr is kept (it is passed through as it comes): the end of
# a traceback, which the hints below read.
STDERR_TAIL_BYTES = 64 * 1024
# skops' UntrustedTypesFoundException, which MLflow's sklearn flavor raises (wrapped) when
# log_model saves a model in its default format, skops, and loads it back to check it.
_UNTRUSTED_TYPES = re.compile(r"Untrusted types found in the file: (\[[^\]\n]*\])")
_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument(
        "--requirements",
        default=DEFAULT_REQUIREMENTS,
        help="the model's pip requirements file, relative to the repository root "
        f"(default: {DEFAULT_REQUIREMENTS})",
    )
    parser.add_argument(
        "--env-cache",
        type=Path,
        help="where built model environments are kept (default: $MODELCI_ENV_CACHE, else "
        "~/.cache/modelci/envs)",
    )


def run(args: argparse.Namespace) -> int:
    from ..systems.tracking import Tracker

    job = load_job(args)
    request = RetrainRequest.from_env(os.environ)
    models = job.models([request.model] if request else args.model)
    tracker = Tracker(job.settings.tracking_uri)
    try:
        for model in models:  # MLflow answers before anything is built or uploaded
            tracker.find_experiment(job.names(model).experiment)
        environment = _model_environment(job, args)
        for model in models:
            _train(job, tracker, model, environment, request)
    except ModelciError as error:
        if request is not None:
            served = job.config.stands[-1].name
            record_outcome(tracker, request, f"training failed, {served} unchanged: {error}")
        raise
    return 0


def _model_environment(job: Job, args: argparse.Namespace) -> ModelEnvironment:
    repo_root = Path(job.config.path).resolve().parent
    cache = args.env_cache or default_cache_dir()
    # One environment for the repository's models: with one of them online, it carries the
    # model server too, so that the served model runs in the environment it was trained in.
    serving = SERVING_RUNTIME if any(m.online.enabled for m in job.config.models) else ()
    environment = ensure_environment(
        job.config.python, repo_root / args.requirements, cache, _archives(job), serving
    )
    print(f"model environment {environment.key} {environment.how} ({environment.path})")
    if environment.archive_uri:
        print(f"model environment archive: {environment.archive_uri}", flush=True)
    return environment


def _archives(job: Job) -> Archives | None:
    """The project's cache of environment archives (MODELCI_SCRATCH_URI/envs/<project slug>)."""
    from ..config.naming import project_slug_of
    from ..systems.s3 import S3Store

    if not job.settings.scratch_uri:
        return None
    store = S3Store(job.settings.s3_endpoint, job.settings.s3_region)
    slug = project_slug_of(job.pipeline.project)
    return Archives.of_project(store, job.settings.scratch_uri, slug)


def _train(
    job: Job,
    tracker,
    model: Model,
    environment: ModelEnvironment,
    request: RetrainRequest | None,
) -> None:
    from ..systems.tracking import TAG_ENV_ARCHIVE, TAG_ENV_SHA256, provenance_tags

    names = job.names(model)
    tags = provenance_tags(job.pipeline, names.environment, model.name)
    if request is not None:
        tags[TAG_TRIGGERED_BY] = request.trigger_run
    if environment.archive_uri:
        tags[TAG_ENV_ARCHIVE] = environment.archive_uri
    if environment.archive_sha256:
        tags[TAG_ENV_SHA256] = environment.archive_sha256
    run_id = tracker.start_run(
        names.experiment, tags, run_name=f"{names.environment}-{job.pipeline.pipeline_id}"
    )
    experiment_id = tracker.get_run(run_id).info.experiment_id
    clear_state(model.name)
    record = {"run_id": run_id, "experiment_id": experiment_id, "environment": names.environment}
    write_state(model.name, "train", **record)
    print(f"{model.name}: MLflow run {run_id} in experiment '{names.experiment}'", flush=True)

    code, stderr = _run_entrypoint(
        job, model, environment, run_id, experiment_id, names.environment
    )
    if code != 0:
        tracker.end_run(run_id, "FAILED")
        hint = training_failure_hint(stderr)
        raise ModelciError(
            f"{model.train.entrypoint} exited with code {code}; run {run_id} is marked FAILED "
            "(its output is above)" + (f". {hint}" if hint else "")
        )
    try:
        model_uri = tracker.model_uri_for_run(run_id)  # the same lookup `resolve` makes later
    except ModelciError:
        tracker.end_run(run_id, "FAILED")
        raise ModelciError(
            f"{model.train.entrypoint} logged no model to run {run_id}; log one inside "
            f"`with mlflow.start_run():`, e.g. mlflow.{model.flavor}.log_model(model, name='model')"
        ) from None
    try:
        _check_flavor(job, model, run_id, model_uri, tracker.model_flavors(model_uri))
    except ModelciError:
        tracker.end_run(run_id, "FAILED")
        raise
    write_state(
        model.name,
        "train",
        **record,
        # What the run's first stand copy is checked against (standcopies.TrainedBytes).
        model_sha256=_record_model_digest(job, tracker, run_id, model_uri),
        environment_archive=environment.archive_uri,
        environment_sha256=environment.archive_sha256,
    )
    if tracker.get_run(run_id).info.status == "RUNNING":
        tracker.end_run(run_id, "FINISHED")


def _record_model_digest(job: Job, tracker, run_id: str, model_uri: str) -> str:
    """The sha256 of the model directory the run logged, taken right after training (also
    tagged on the run); "" when the model is not in S3."""
    from ..systems.s3 import S3Store
    from ..systems.tracking import TAG_MODEL_SHA256

    try:
        location = tracker.resolve_storage_uri(model_uri, job.settings.artifacts_destination)
        if not location.startswith("s3://"):
            return ""
        digest = S3Store(job.settings.s3_endpoint, job.settings.s3_region).tree_sha256(location)
    except ModelciError as error:
        print(f"warning: the model directory's sha256 is not recorded on run {run_id}: {error}")
        return ""
    tracker.set_tags(run_id, {TAG_MODEL_SHA256: digest})
    print(f"{run_id}: model directory sha256 {digest}", flush=True)
    return digest


def _check_flavor(job: Job, model: Model, run_id: str, model_uri: str, flavors: list[str]) -> None:
    """The model must carry the flavor mlops.yaml names: it decides how the model is served.
    `pyfunc` is MLflow's module name for the flavor its MLmodel files call python_function."""
    wanted = "python_function" if model.flavor == "pyfunc" else model.flavor
    if wanted in flavors:
        return
    logged = [flavor for flavor in flavors if flavor != "python_function"] or ["pyfunc"]
    raise ModelciError(
        f"{job.config.path}: models[{model.name}].flavor is {model.flavor}, but "
        f"{model.train.entrypoint} logged a model with flavor(s) {', '.join(logged)} "
        f"({model_uri}); run {run_id} is marked FAILED. Set flavor: {logged[0]} in "
        f"{job.config.path}, or log the model with mlflow.{model.flavor}.log_model"
    )


def ci_run_values(pipeline_id: str, now: datetime | None = None) -> dict[str, str]:
    """What `${ds}`, `${ts}`, `${run_id}` mean in a CI training job: the job's own start."""
    now = now or datetime.now(UTC)
    return {"ds": now.strftime("%Y-%m-%d"), "ts": now.isoformat(), "run_id": f"ci-{pipeline_id}"}


def _run_entrypoint(
    job: Job,
    model: Model,
    environment: ModelEnvironment,
    run_id: str,
    experiment_id: str,
    environment_name: str,
) -> tuple[int, str]:
    """The entrypoint's exit code and the end of its stderr (`STDERR_TAIL_BYTES`)."""
    repo_root = Path(job.config.path).resolve().parent
    from ..systems.mlflow_rest import tracking_environment

    env = variables_for(environment.path, os.environ)
    env.update(tracking_environment(job.settings.tracking_uri, env))
    env.update(
        MLFLOW_EXPERIMENT_ID=experiment_id,
        MLFLOW_RUN_ID=run_id,
        MODELCI_MODEL=model.name,
        MODELCI_ENVIRONMENT=environment_name,
    )
    env.pop("MLFLOW_EXPERIMENT_NAME", None)  # the id above wins; a stale name would conflict
    values = ci_run_values(job.pipeline.pipeline_id)
    args = [expand(arg, values) for arg in model.train.args]
    spark = model.train.spark
    if spark is not None:  # the same entrypoint, with local Spark in this job
        args += [expand(arg, values) for arg in spark.ci_args]
        env.update(
            PYSPARK_SUBMIT_ARGS=local_submit_args(spark), PYSPARK_PYTHON=str(environment.python)
        )
        print(f"{model.name}: Spark training with {spark.ci_master} in this job", flush=True)
    command = [str(environment.python), model.train.entrypoint, *args]
    return run_passing_stderr(command, repo_root, env)


def run_passing_stderr(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run `command` with its stdout as this job's and its stderr passed through to this job's
    as it comes; its exit code and the last `STDERR_TAIL_BYTES` of its stderr."""
    sys.stdout.flush()
    sys.stderr.flush()
    tail = bytearray()
    with subprocess.Popen(command, cwd=cwd, env=env, stderr=subprocess.PIPE) as process:
        pipe = process.stderr.fileno() if process.stderr else -1
        for chunk in iter(lambda: os.read(pipe, 65536), b""):
            _pass_to_stderr(chunk)
            tail += chunk
            del tail[:-STDERR_TAIL_BYTES]
        code = process.wait()
    return code, tail.decode("utf-8", "replace")


def _pass_to_stderr(chunk: bytes) -> None:
    stream = getattr(sys.stderr, "buffer", None)
    if stream is None:  # a text-only stderr (an embedding program's)
        sys.stderr.write(chunk.decode("utf-8", "replace"))
    else:
        stream.write(chunk)
    sys.stderr.flush()


def training_failure_hint(stderr: str) -> str:
    """What to change in the training script, when its stderr shows a failure modelci knows
    the fix of; "" otherwise. Today: a scikit-learn model that skops (MLflow's default format
    for it) will not load back, because it holds types skops does not trust by default (the
    trees of a RandomForest, for one)."""
    found = _UNTRUSTED_TYPES.findall(stderr)
    types = _type_names(found[-1]) if found else []
    if not types:
        return ""
    return (
        f"MLflow saves scikit-learn models with skops, which does not trust {', '.join(types)} "
        "unless told to. If the model is your own, name them when you log it: "
        f"mlflow.sklearn.log_model(model, name='model', skops_trusted_types={json.dumps(types)}); "
        "or save it in another format, e.g. serialization_format="
        "mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE (loading a pickle runs code from the "
        "file: only for models from sources you trust)"
    )


def _type_names(listed: str) -> list[str]:
    """The dotted type names of a printed Python list such as "['sklearn.tree._tree.Tree']"."""
    try:
        names = ast.literal_eval(listed)
    except (ValueError, SyntaxError):
        return []
    if not isinstance(names, list):
        return []
    return [name for name in names if isinstance(name, str) and _TYPE_NAME.fullmatch(name)]
