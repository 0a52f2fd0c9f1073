"""`modelci promote`: after a merge to the default branch, put the merged branch's validated
model on the first stand (registered as a version, never retrained) and stop the branch's
environment. With `--stand` naming a later stand, put on it exactly the version the stand
before it serves (a manual, protected job); naming the first stand is the same as omitting it."""

from __future__ import annotations

import argparse
import os

from ..errors import ModelciError
from ..retraining import RetrainRequest, record_outcome
from ..stands import load_stand_job
from ..workspace import Job, add_config_arguments


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
    from ..promotion import stand_before
    from ..stands import Move, deploy_to_stand, stand_job
    from ..tracking import Tracker

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
    branch, merge_request = (args.branch, "") if args.branch else merged_branch(job)
    print(f"promoting the models of branch {branch!r} to {first}", flush=True)
    moves = [
        Move(m, _validated_version(job, tracker, m, branch), "promote", merge_request)
        for m in models
    ]
    deploy_to_stand(stand_job(job, first), tracker, moves)
    from .stop import stop_environment

    stop_environment(job.pipeline, job.settings, branch)
    return 0


def _promote_retrained(job: Job, tracker, request: RetrainRequest, first: str) -> None:
    """A retraining pipeline's run, through the gate of this pipeline, to the first stand."""
    from ..stands import Move, deploy_to_stand, stand_job
    from ..tracking import TAG_PIPELINE_ID

    branch = job.pipeline.default_branch
    (model,) = job.models([request.model])
    names, run = _branch_run(job, tracker, model, branch)
    if run.data.tags.get(TAG_PIPELINE_ID) != job.pipeline.pipeline_id:
        raise ModelciError(
            f"the newest run of {model.name} on {branch} that passed the gate is "
            f"{run.info.run_id}, not one of this retraining pipeline "
            f"({job.pipeline.pipeline_id}); nothing is promoted. Rerun its train and gate jobs"
        )
    version = _registered_version(tracker, names, branch, run)
    deploy_to_stand(stand_job(job, first), tracker, [Move(model, version, "promote")])
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


def _validated_version(job: Job, tracker, model, branch: str):
    """The branch's run that `resolve` would pick, as a registered version (made if needed)."""
    names, run = _branch_run(job, tracker, model, branch)
    return _registered_version(tracker, names, branch, run)


def _branch_run(job: Job, tracker, model, branch: str):
    """(names, run): the names of `model` on `branch`, and the run `resolve` would pick, which
    must have passed the gate: a pin chooses among the branch's runs, it overrides no gate."""
    from ..naming import names_for
    from ..tracking import GATE_PASSED, PIN_TAG, TAG_GATE

    names = names_for(job.pipeline.project, branch, model.name)
    run = tracker.find_run(names.experiment, names.environment, branch)
    verdict = run.data.tags.get(TAG_GATE)
    if verdict != GATE_PASSED:
        pinned = run.data.tags.get(PIN_TAG) == names.environment
        how = f"pinned to {names.environment} ({PIN_TAG})" if pinned else "chosen"
        raise ModelciError(
            f"run {run.info.run_id} of {model.name}, {how} on branch {branch!r}, did not pass "
            f"the quality gate ({TAG_GATE}={verdict or 'missing'}): a promotion never puts a "
            "run the gate refused on a stand, and nothing was changed. Remove the pin and push "
            "a run that passes, or deploy it deliberately with the deploy-version job and a "
            "reason (recorded on the version)"
        )
    return names, run


def _registered_version(tracker, names, branch: str, run):
    """`run` as a version of the model's registered model, registered now if it is not yet."""
    from ..tracking import TAG_BRANCH, TAG_COMMIT

    tags = {TAG_BRANCH: branch, TAG_COMMIT: run.data.tags.get(TAG_COMMIT, "")}
    version, registered = tracker.version_for_run(names.registered_model, run.info.run_id, tags)
    if registered:
        print(
            f"{names.registered_model}: run {run.info.run_id} registered as version "
            f"{version.version}"
        )
    return version


def merged_branch(job: Job) -> tuple[str, str]:
    """(source branch, merge request URL) of the merge request that brought the pipeline's
    commit to the default branch: merge commits, squash and fast-forward merges alike."""
    from ..gitlab_api import TOKEN_VARIABLE, ServerAccess, merge_requests_of_commit

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
    chosen = max(merged, key=lambda request: request.iid)
    return chosen.source_branch, chosen.web_url
