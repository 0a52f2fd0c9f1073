"""`modelci compare`: in a merge request pipeline, compare each model's candidate (the run
`resolve` would pick for the source branch) with what every stand of `mlops.yaml` serves, and
show it in the job log and in ONE note on the merge request, edited in place by every later
pipeline. A note that cannot be written is a warning, never a failed job."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from urllib.parse import quote

from ..cilog import section
from ..errors import ModelciError, strip_userinfo
from ..lifecycle.workspace import Job, add_config_arguments, load_job
from ..review.note import (
    NOTE_MARKER,
    Candidate,
    Link,
    ModelComparison,
    NoteContext,
    Promotion,
    StandModel,
    render_log,
    render_note,
)

COMMAND = "compare"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..systems.tracking import Tracker

    job = _merge_request_job(load_job(args))
    tracker = Tracker(job.settings.tracking_uri)
    comparisons = [collect(tracker, job, model) for model in job.models(args.model)]
    context = NoteContext(
        branch=job.pipeline.branch,
        environment=job.dirs.environment,
        commit=job.pipeline.commit,
        pipeline_url=job.pipeline.pipeline_url,
        gitlab_environment_url=gitlab_environment_url(job),
    )
    with section("modelci_compare", "modelci: candidate against the stands"):
        print(render_log(context, comparisons), flush=True)
    _note(render_note(context, comparisons), job.pipeline.project)
    return 0


def _merge_request_job(job: Job) -> Job:
    """In a merge request pipeline the branch is the merge request's source branch."""
    source = os.environ.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "").strip()
    if not source or source == job.pipeline.branch:
        return job
    return replace(job, pipeline=replace(job.pipeline, branch=source))


# --- what MLflow knows ----------------------------------------------------------------------


def collect(tracker, job: Job, model) -> ModelComparison:
    from ..systems.tracking import PIN_TAG, TAG_GATE, TAG_GATE_REASONS

    names = job.names(model)
    registered = names.registered_model
    stands = [_stand_model(tracker, job, registered, stand.name) for stand in job.config.stands]
    candidate, reason = None, ""
    try:
        run = tracker.find_run(names.experiment, names.environment, job.pipeline.branch)
    except ModelciError as error:  # no passed or pinned run yet: a state to show, not a failure
        reason = str(error)
    else:
        tags = run.data.tags
        candidate = Candidate(
            run_id=run.info.run_id,
            run_url=run_url(job, run.info.experiment_id, run.info.run_id),
            metrics=dict(run.data.metrics),
            gate=tags.get(TAG_GATE, ""),
            gate_reasons=tags.get(TAG_GATE_REASONS, ""),
            pinned=tags.get(PIN_TAG) == names.environment,
        )
    promotion = None
    if candidate is not None and job.config.stands:
        first = job.config.stands[0]
        version, registered_already = version_on_merge(tracker, registered, candidate.run_id)
        promotion = Promotion(first.name, version, registered_already, manual=first.manual)
    return ModelComparison(
        model=model.name,
        registered_model=registered,
        thresholds=tuple(model.gate.metrics),
        candidate=candidate,
        stands=tuple(stands),
        promotion=promotion,
        no_candidate_reason=reason,
        links=tuple(_environment_links(job, model, names)),
    )


def _stand_model(tracker, job: Job, registered_model: str, stand: str) -> StandModel:
    version = tracker.stand_version(registered_model, stand)
    if version is None:
        return StandModel(stand=stand, version=None)
    if not version.run_id:
        return StandModel(stand=stand, version=version.version)
    run = tracker.get_run(version.run_id)
    return StandModel(
        stand=stand,
        version=version.version,
        run_id=version.run_id,
        run_url=run_url(job, run.info.experiment_id, version.run_id),
        metrics=dict(run.data.metrics),
    )


def version_on_merge(tracker, registered_model: str, run_id: str) -> tuple[str, bool]:
    """The version the first stand will serve: the one already registered from the run, else
    the registered model's latest version + 1 (1 for a model not registered yet)."""
    existing = tracker.version_of_run(registered_model, run_id)
    if existing is not None:
        return existing.version, True
    latest = tracker.latest_version_number(registered_model)
    return str((latest or 0) + 1), False


# --- links ----------------------------------------------------------------------------------


def run_url(job: Job, experiment_id: str, run_id: str) -> str:
    tracking = strip_userinfo(job.settings.tracking_uri).rstrip("/")
    return f"{tracking}/#/experiments/{experiment_id}/runs/{run_id}"


def _environment_links(job: Job, model, names) -> list[Link]:
    from ..render.values import model_api_url

    links = []
    settings = job.settings
    airflow = (settings.stands_airflow_url if names.is_stand else settings.airflow_url).rstrip("/")
    for dag in model.batch.dags:
        dag_id = names.dag_id(dag.kind)
        if airflow:
            links.append(Link(f"Airflow DAG {dag.kind}", f"{airflow}/dags/{dag_id}"))
    if model.online.enabled:
        links.append(Link("model API", model_api_url(names, job.settings)))
    return links


def gitlab_environment_url(job: Job) -> str:
    """The project's environments page filtered to this branch's environment:
    `MODELCI_GITLAB_ENVIRONMENT` (the full name) when given, else `review/<branch>`, the name
    the deploy template gives it with its default `environment_prefix`."""
    project_url = job.pipeline.project_url.rstrip("/")
    name = os.environ.get("MODELCI_GITLAB_ENVIRONMENT", "").strip()
    name = name or f"review/{job.pipeline.branch}"
    if not project_url or not name:
        return ""
    return f"{project_url}/-/environments?search={quote(name, safe='')}"


# --- the note -------------------------------------------------------------------------------


def _note(body: str, pipeline_project: str) -> None:
    from ..systems.gitlab_api import ServerAccess, upsert_note, warn, write_note_or_warn

    iid = os.environ.get("CI_MERGE_REQUEST_IID", "").strip()
    if not iid:
        print("not a merge request pipeline (CI_MERGE_REQUEST_IID is not set): no note")
        return
    access = ServerAccess.from_env(os.environ)
    # The merge request lives in the target project (a fork's pipeline runs in the source).
    project = os.environ.get("CI_MERGE_REQUEST_PROJECT_PATH", "").strip() or pipeline_project
    if access.missing:
        warn(COMMAND, f"no note on merge request !{iid}: {', '.join(access.missing)} not set")
        return
    if not iid.isdigit():
        warn(COMMAND, f"no note: CI_MERGE_REQUEST_IID is {iid!r}, not a number")
        return
    result = write_note_or_warn(
        COMMAND, lambda: upsert_note(access.url, access.token, project, int(iid), NOTE_MARKER, body)
    )
    if result is None:
        return
    if result.created:
        print(f"comparison added to merge request !{iid} (note {result.note_id})")
    elif result.changed:
        print(f"comparison updated on merge request !{iid} (note {result.note_id})")
    else:
        print(f"comparison on merge request !{iid} is up to date (note {result.note_id})")
