"""What a pipeline writes into the shared repos, as data: the DAG files of an environment and
the Helm values and Argo CD generator file of each online model.

Pure: builds bytes from the job and the resolved models, and knows no remote. `render` prints
these files, the deploy commands commit them, and promotion writes them for a stand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config.fields import DAG_KINDS
from ..config.types import Model
from ..errors import ModelciError, strip_userinfo
from ..lifecycle.workspace import Job, ResolvedModel

if TYPE_CHECKING:
    from .dags import MonitorTarget

# What `render` shows for the code archive when the platform has not set MODELCI_SCRATCH_URI.
SCRATCH_PLACEHOLDER = "s3://<MODELCI_SCRATCH_URI>"


def scratch_prefix(job: Job, *, dry_run: bool = False) -> str:
    """This environment's directory of S3 scratch objects (code archives, ...), ending in /."""
    base = job.settings.scratch_uri.rstrip("/")
    if not base:
        if dry_run:
            base = SCRATCH_PLACEHOLDER
        else:
            raise ModelciError(
                "MODELCI_SCRATCH_URI is not set: batch pods fetch the model repo's code from "
                "there (an s3://bucket/prefix the pods can read); set it in the group's CI/CD "
                "variables"
            )
    return f"{base}/{job.dirs.s3_prefix}"


def code_uri(job: Job, *, commit: str | None = None, dry_run: bool = False) -> str:
    """Where batch pods of this environment fetch the model repository's code at `commit`
    (default: the pipeline's), as tar.gz in S3."""
    return f"{scratch_prefix(job, dry_run=dry_run)}code/{commit or job.pipeline.commit}.tar.gz"


def data_uri(job: Job, model: Model, *, dry_run: bool = False) -> str:
    """The environment's data prefix of `model` (MODELCI_DATA_URI in its pods), ending in /:
    its scoring DAG writes there and its monitoring reads there. It lives with the
    environment's scratch objects, so a branch's data goes when the branch does."""
    return f"{scratch_prefix(job, dry_run=dry_run)}data/{model.name}/"


def monitor_target(job: Job) -> MonitorTarget:
    from .dags import MonitorTarget

    config_file = Path(job.config.path)
    return MonitorTarget(
        config_file=config_file.name if config_file.is_absolute() else config_file.as_posix(),
        gitlab_url=job.pipeline.server_url,
        ref=job.pipeline.default_branch,
        trigger_secret=job.settings.retrain_trigger_secret,
    )


def runtime_image(job: Job) -> str:
    """The image of the pods that run the model's code: batch pods, and the model server when
    it runs in the model's environment (both need modelci and the model's Python)."""
    image = job.config.image or job.settings.runtime_image
    if not image:
        raise ModelciError(
            f"no image for the model's pods (batch DAGs, and the model server in its own "
            f"environment): set `image:` in {job.config.path} or the platform's "
            "MODELCI_RUNTIME_IMAGE CI/CD variable"
        )
    return image


def dag_files(
    job: Job,
    models: Sequence[Model],
    *,
    code: Mapping[str, str],
    resolved: Mapping[str, ResolvedModel],
    dry_run: bool = False,
) -> dict[str, bytes]:
    """{repo path: DAG source} for every batch DAG of `models`; `code` holds each model's code
    archive (a stand's models may come from different commits)."""
    from .dags import render_dag

    image = runtime_image(job)
    monitor = monitor_target(job)
    files = {}
    for model in models:
        names, chosen = job.names(model), resolved[model.name]
        for dag in model.batch.dags:
            source = render_dag(
                names=names,
                model=model,
                dag=dag,
                pipeline=job.pipeline,
                image=image,
                model_uri=chosen.storage_uri,
                run_id=chosen.run_id,
                code_uri=code[model.name],
                environment_uri=chosen.environment_uri or "",
                s3_secret=job.settings.cluster_s3_secret,
                s3_endpoint=job.settings.cluster_s3_endpoint,
                tracking_uri=strip_userinfo(job.settings.tracking_uri),
                data_uri=data_uri(job, model, dry_run=dry_run),
                monitor=monitor,
            )
            files[names.dag_path(dag.kind)] = source.encode("utf-8")
    return files


def owned_dag_paths(job: Job, models: Sequence[Model]) -> list[str]:
    """Every DAG file `models` may own in this environment: a DAG dropped from the config goes."""
    return [job.names(model).dag_path(kind) for model in models for kind in DAG_KINDS]


def checked_values(job: Job, model: Model, chosen: ResolvedModel) -> dict[str, Any]:
    """The chart values for `model`, refused (ConfigError) where the chart would refuse them."""
    from .values import build_values, validate_values

    names = job.names(model)
    values = build_values(
        model,
        names,
        job.settings,
        storage_uri=chosen.storage_uri,
        run_id=chosen.run_id,
        model_version=chosen.model_version,
        pipeline=job.pipeline,
        environment_uri=chosen.environment_uri or "",
        image=runtime_image(job) if chosen.environment_uri else "",
    )
    validate_values(values, source=f"values for {model.name} in {names.values_path}")
    return values


def gitops_files(
    job: Job, model: Model, values: Mapping[str, Any], existing_values: bytes | None
) -> dict[str, bytes]:
    """{repo path: content} of one online model: its values (keeping what a person added to
    the existing file) and the generator file the ApplicationSet reads."""
    from .values import app_config_text, update_values_text, values_header

    names = job.names(model)
    text = update_values_text(
        existing_values.decode("utf-8") if existing_values is not None else None,
        values,
        values_header(job.pipeline, names),
    )
    return {
        names.values_path: text.encode("utf-8"),
        names.app_config_path: app_config_text(names).encode("utf-8"),
    }
