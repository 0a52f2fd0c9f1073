"""`modelci promote`: after a merge to the default branch, put the merged branch's validated
model on the first stand (registered as a version, never retrained) and stop the branch's
environment. With `--stand` naming a later stand, put on it exactly the version the stand
before it serves (a manual, protected job); naming the first stand is the same as omitting it."""

from __future__ import annotations

import argparse
import os

from ..errors import ModelciError
from ..lifecycle.retraining import RetrainRequest, record_outcome
from ..lifecycle.standcopies import TrainedBytes
from ..lifecycle.stands import load_stand_job
from ..lifecycle.workspace import Job, add_config_arguments
from ..systems.gitlab_api import MergeRequestInfo
from ..systems.tracking import GATE_PASSED

# The promote job gets the templates' job prefix here, to find the gate job of a pipeline.
JOB_PREFIX_VARIABLE = "MODELCI_JOB_PREFIX"
DEFAULT_JOB_PREFIX = "modelci-"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument(
        "--stand",
        help="the stand to promote to (default: the first stand, from the merged branch); a "
        "later stand takes the version the stand before it serves",
    )
    parser.add_argument(
        "--branch",
        help="the merged branch (default: found through the GitLab API from the merge "
        "requests of the pipeline's commit)",
    )


def run(args: argparse.Namespace) -> int:
    from ..lifecycle.promotion import stand_before
    from ..lifecycle.stands import Move, deploy_to_stand, stand_job
    from ..systems.tracking import Tracker

    job = load_stand_job(args)
    tracker = Tracker(job.settings.tracking_uri)
    models = job.models(args.model)
    first = job.config.stands[0].name
    if args.stand and args.stand != first:
        previous = stand_before(job.config.stands, args.stand, job.config.path)
        moves = [Move(m, _served(job, tracker, m, previous, args.stand), "promote") for m in models]
        deploy_to_stand(stand_job(job, args.stand), tracker, moves)
        return 0
    request = RetrainRequest.from_env(os.environ)
    if request is not None:
        try:
            _promote_retrained(job, tracker, request, first)
        except ModelciError as error:
            record_outcome(tracker, request, f"not promoted, {first} unchanged: {error}")
            raise
        return 0
    if args.branch:
        branch, merge_request = args.branch, ""
        records = {m.name: None for m in models}
        print(
            f"--branch {branch}: no merge request, so each run is the one `resolve` picks and "
            "its bytes are checked against the run's own tags, which the branch's credentials "
            "can rewrite; after a merge the pipeline's own record is used instead"
        )
    else:
        merged = merged_branch(job)
        branch, merge_request = merged.source_branch, merged.web_url
        records = {m.name: gate_record(job, merged, m.name) for m in models}
    print(f"promoting the models of branch {branch!r} to {first}", flush=True)
    moves = []
    for model in models:
        version, trained = _validated_version(job, tracker, model, branch, records[model.name])
        moves.append(
            Move(model, version, "promote", merge_request, trained=trained, first_copy=True)
        )
    deploy_to_stand(stand_job(job, first), tracker, moves)
    from .stop import stop_environment

    stop_environment(job.pipeline, job.settings, branch)
    return 0


def _promote_retrained(job: Job, tracker, request: RetrainRequest, first: str) -> None:
    """A retraining pipeline's run, through the gate of this pipeline, to the first stand."""
    from ..lifecycle.stands import Move, deploy_to_stand, stand_job
    from ..lifecycle.workspace import read_state

    branch = job.pipeline.default_branch
    (model,) = job.models([request.model])
    # This pipeline's own gate job (on the protected default branch) left the record.
    record = TrainedBytes.from_record(read_state(model.name), "this pipeline's gate job")
    version, trained = _validated_version(job, tracker, model, branch, record)
    move = Move(model, version, "promote", trained=trained, first_copy=True)
    deploy_to_stand(stand_job(job, first), tracker, [move])
    record_outcome(
        tracker,
        request,
        f"run {version.run_id} passed the gate and is version {version.version} on {first}",
    )


def _served(job: Job, tracker, model, previous: str, stand: str):
    registered = job.names(model).registered_model
    version = tracker.stand_version(registered, previous)
    if version is None:
        raise ModelciError(
            f"{previous} serves no version of {registered}, so there is nothing to promote to "
            f"{stand}: promotion takes exactly what {previous} serves. Merge a branch first "
            f"(or deploy a version to {previous})"
        )
    return version


def _validated_version(job: Job, tracker, model, branch: str, record: TrainedBytes | None):
    """(version, what its bytes are checked against): the run of the merged branch's record
    (else the run `resolve` would pick), which must have passed the gate, as a registered
    version (made if needed)."""
    from ..config.naming import names_for

    if record is None:
        names, run = _branch_run(job, tracker, model, branch)
        return _registered_version(tracker, names, branch, run), None
    if not record.run_id:
        raise ModelciError(f"{record.source} names no run of {model.name}; nothing was changed")
    _require_gate(record.gate, f"run {record.run_id} of {model.name}, per {record.source},")
    names = names_for(job.pipeline.project, branch, model.name)
    run = tracker.get_run(record.run_id)
    return _registered_version(tracker, names, branch, run), record


def gate_record(job: Job, merged, model: str) -> TrainedBytes:
    """What the gate job of the merged commit's push pipeline left for `model`: its verdict,
    its run and the digests the train job took. GitLab holds it as that job wrote it, and that
    job ran the reviewed commit's own code: no branch credential can change it afterwards."""
    from ..lifecycle.workspace import STATE_DIR
    from ..systems.gitlab_api import ServerAccess, push_pipeline_artifact

    if not merged.sha:
        raise ModelciError(
            f"GitLab did not say which commit merge request !{merged.iid} merged (its `sha`); "
            "nothing was promoted"
        )
    job_name = f"{os.environ.get(JOB_PREFIX_VARIABLE) or DEFAULT_JOB_PREFIX}gate"
    path = f"{STATE_DIR.as_posix()}/{model}/gate.json"
    access = ServerAccess.from_env(os.environ)
    try:
        artifact = push_pipeline_artifact(
            access.url, access.token, job.pipeline.project, merged.source_branch, merged.sha,
            job_name, path,
        )  # fmt: skip
    except ModelciError as error:
        raise ModelciError(
            f"{error}. A merge promotes the run its reviewed commit's own pipeline trained and "
            f"gated, so nothing was promoted: push to {merged.source_branch!r} again (or run "
            "its pipeline without variables) and merge once it passed"
        ) from None
    source = f"the {job_name} job of the pipeline of commit {merged.sha[:12]} ({artifact.job_url})"
    print(f"{model}: run and digests from {source}", flush=True)
    return TrainedBytes.from_record(artifact.content, source)


def _branch_run(job: Job, tracker, model, branch: str):
    """(names, run): the names of `model` on `branch`, and the run `resolve` would pick, which
    must have passed the gate: a pin chooses among the branch's runs, it overrides no gate."""
    from ..config.naming import names_for
    from ..systems.tracking import PIN_TAG, TAG_GATE

    names = names_for(job.pipeline.project, branch, model.name)
    run = tracker.find_run(names.experiment, names.environment, branch)
    pinned = run.data.tags.get(PIN_TAG) == names.environment
    how = f"pinned to {names.environment} ({PIN_TAG})" if pinned else "chosen"
    described = f"run {run.info.run_id} of {model.name}, {how} on branch {branch!r},"
    _require_gate(run.data.tags.get(TAG_GATE, ""), described)
    return names, run


def _require_gate(verdict: str, described: str) -> None:
    """Refuse a run whose gate verdict is not "passed": no promotion lifts the gate."""
    if verdict != GATE_PASSED:
        raise ModelciError(
            f"{described} did not pass the quality gate (gate: {verdict or 'missing'}): a "
            "promotion never puts a run the gate refused on a stand, and nothing was changed. "
            "Push a run that passes (removing any pin), or deploy one deliberately with the "
            "deploy-version job and a reason (recorded on the version)"
        )


def _registered_version(tracker, names, branch: str, run):
    """`run` as a version of the model's registered model, registered now if it is not yet."""
    from ..systems.tracking import TAG_BRANCH, TAG_COMMIT

    tags = {TAG_BRANCH: branch, TAG_COMMIT: run.data.tags.get(TAG_COMMIT, "")}
    version, registered = tracker.version_for_run(names.registered_model, run.info.run_id, tags)
    if registered:
        print(
            f"{names.registered_model}: run {run.info.run_id} registered as version "
            f"{version.version}"
        )
    return version


def merged_branch(job: Job) -> MergeRequestInfo:
    """The merge request that brought the pipeline's commit to the default branch: merge
    commits, squash and fast-forward merges alike."""
    from ..systems.gitlab_api import TOKEN_VARIABLE, ServerAccess, merge_requests_of_commit

    access = ServerAccess.from_env(os.environ)
    commit = job.pipeline.commit
    if access.missing:
        raise ModelciError(
            f"{TOKEN_VARIABLE} or CI_SERVER_URL is not set: promotion finds the merged branch "
            f"through the GitLab API (the merge requests of commit {commit}). Set the token "
            "(a project access token with read_api scope), or pass --branch"
        )
    found = merge_requests_of_commit(access.url, access.token, job.pipeline.project, commit)
    merged = [
        request
        for request in found
        if request.state == "merged" and request.target_branch == job.pipeline.default_branch
    ]
    if not merged:
        raise ModelciError(
            f"no merged merge request into {job.pipeline.default_branch} contains commit "
            f"{commit} of {job.pipeline.project}, so there is no branch to promote: this "
            "pipeline did not come from a merge (nothing is promoted on direct pushes), or "
            "the token cannot see the project's merge requests"
        )
    return max(merged, key=lambda request: request.iid)
