"""Putting registered model versions on a stand: the same model, never retrained.

For one stand and the chosen version of each model: the code archive of the version's commit
is copied to the stand's prefix in S3 (never rebuilt), the stand's DAGs and values are written
(one commit per repo, stand names, never a branch's), and then the stand's alias is moved and
the version tagged with the audit trail (`promotion.py`). promote, rollback and deploy-version
share it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from .config import Model
from .errors import ModelciError
from .promotion import Audit
from .settings import use_stand_credentials
from .tracking import (
    TAG_BRANCH,
    TAG_COMMIT,
    TAG_ENV_SHA256,
    ModelVersionInfo,
    Tracker,
    require_model_dir,
)
from .workspace import Job, ResolvedModel, load_job


@dataclass(frozen=True)
class Move:
    """One model's version going onto the stand, and why."""

    model: Model
    version: ModelVersionInfo
    action: str  # promote, rollback or deploy
    merge_request: str = ""
    reason: str = ""


def load_stand_job(args: argparse.Namespace) -> Job:
    """The job of promote, rollback and deploy-version. First this process's credentials
    become the stand ones (protected CI/CD variables) for MLflow, S3 and both repos, so not
    even a read goes with a feature branch's credentials."""
    present = use_stand_credentials(os.environ)
    print(
        "stand credentials (protected CI/CD variables) in this job: "
        + (", ".join(present) or "none"),
        flush=True,
    )
    return load_job(args)


def stand_job(job: Job, stand: str) -> Job:
    return replace(job, stand=stand)


SETTLE_ROUNDS = 5  # a round after the first only when another move of the stand interleaved


def deploy_to_stand(job: Job, tracker: Tracker, moves: Sequence[Move]) -> None:
    """Write the stand's files for `moves`, then move its aliases; `job.stand` names it.

    Two moves of one stand may run at once (two projects' jobs never share a stand, but two
    runs of one job, or a job and a person at a terminal, can). Whichever moves an alias last
    wins, and the files must follow. So after moving its aliases a move writes the files for
    what the aliases name and reads the aliases again, until they stayed the same across the
    write: every move ends with a write made after the last alias move it could have missed.
    Writes are idempotent (no commit when the files already say so), so when nothing
    interleaved this costs one fetch per repo and one read per model."""
    from .s3 import S3Store

    if job.stand is None:
        raise ValueError("deploy_to_stand needs a job for a stand")
    store = S3Store(job.settings.s3_endpoint, job.settings.s3_region)
    prepared: dict[tuple[str, str], _Prepared] = {}
    _write_stand(job, tracker, store, [(m.model, m.version) for m in moves], prepared)
    for move in moves:
        _move_alias(job, tracker, move)
    models = [move.model for move in moves]
    for _ in range(SETTLE_ROUNDS):
        served = [(m, _served_now(job, tracker, m)) for m in models]
        written = _write_stand(job, tracker, store, served, prepared)
        if {m.name: _served_now(job, tracker, m).version for m in models} == written:
            return
        print(f"{job.stand} changed meanwhile: writing its files again for what its aliases name")
    raise ModelciError(
        f"{job.stand}'s aliases kept moving while this job wrote its files ({SETTLE_ROUNDS} "
        "rounds): other moves of the stand are running. Run this job again once they are done."
    )


def _served_now(job: Job, tracker: Tracker, model: Model) -> ModelVersionInfo:
    registered = job.names(model).registered_model
    version = tracker.stand_version(registered, job.stand)
    if version is None:
        raise ModelciError(
            f"the alias {job.stand!r} of {registered} disappeared while this job moved it: "
            "someone deleted it in MLflow. Run this job again."
        )
    return version


@dataclass(frozen=True)
class _Prepared:
    """What writing one version onto the stand needs, gathered (and checked) once per move."""

    resolved: ResolvedModel
    code: str | None  # the code archive under the stand's prefix, for batch DAGs


def _write_stand(
    job: Job,
    tracker: Tracker,
    store,
    served: Sequence[tuple[Model, ModelVersionInfo]],
    prepared: dict[tuple[str, str], _Prepared],
) -> dict[str, str]:
    """Write the stand's DAGs and values for these versions (one commit per repo, none when
    nothing changes); return model name -> version written. `prepared` keeps what each
    (model, version) needed, so a second write of the same version reads nothing again."""
    from .deploy import write_dags, write_online

    _prepare(job, tracker, store, served, prepared)
    ready = {model.name: prepared[model.name, version.version] for model, version in served}
    models = [model for model, _ in served]
    resolved = {name: item.resolved for name, item in ready.items()}
    batch = [m for m in models if m.batch.dags]
    if batch:
        write_dags(job, batch, resolved, {m.name: ready[m.name].code for m in batch})
    write_online(job, models, {m.name: resolved[m.name] for m in models if m.online.enabled})
    return {model.name: version.version for model, version in served}


def _prepare(
    job: Job,
    tracker: Tracker,
    store,
    served: Sequence[tuple[Model, ModelVersionInfo]],
    prepared: dict[tuple[str, str], _Prepared],
) -> None:
    """Add to `prepared` the versions of `served` it lacks: resolve and check them all first
    (nothing is copied to the stand's prefix when one is refused), then bring the code
    archives of the batch models there."""
    from .deploy import put_spark_main_files

    missing = [(m, v) for m, v in served if (m.name, v.version) not in prepared]
    runs = {model.name: tracker.get_run(version.run_id) for model, version in missing}
    resolved = {
        model.name: _resolved(job, tracker, store, version, runs[model.name])
        for model, version in missing
    }
    for model, version in missing:
        tags = runs[model.name].data.tags
        code = _stand_code(job, store, tags) if model.batch.dags else None
        if code:
            put_spark_main_files(store, [model], {model.name: code})
        prepared[model.name, version.version] = _Prepared(resolved[model.name], code)


def _resolved(job: Job, tracker: Tracker, store, version: ModelVersionInfo, run) -> ResolvedModel:
    from .modelenv import checked_environment

    location = tracker.resolve_storage_uri(version.uri, job.settings.artifacts_destination)
    storage_uri = require_model_dir(store, location)
    return ResolvedModel(
        run_id=version.run_id,
        experiment_id=run.info.experiment_id,
        model_uri=version.uri,
        storage_uri=storage_uri,
        model_version=version.version,
        environment_uri=_stand_environment(
            job,
            store,
            checked_environment(store, run.data.tags, storage_uri, job.stand),
            run.data.tags.get(TAG_ENV_SHA256, ""),
        ),
    )


def _stand_environment(job: Job, store, archive: str | None, digest: str) -> str | None:
    """The run's environment archive, copied (never rebuilt) to the stand's own prefix, which
    only stand credentials may write, and checked against the sha256 recorded when the run
    trained: a feature branch can neither swap nor have swapped what a stand runs."""
    import hashlib

    from .modelenv import ARCHIVE_FILE, Archives, archive_key
    from .plan import scratch_prefix

    if archive is None:
        return None
    key = archive_key(archive)
    if key is None:
        raise ModelciError(
            f"the run's environment archive {archive!r} (tag modelci.env_archive) is not an "
            f".../<key>/{ARCHIVE_FILE} URI as the train job records it; nothing was written"
        )
    target = Archives.under(store, scratch_prefix(job)).archive_uri(key)
    if store.exists(target):
        return target  # checked when it was copied; only stand credentials write here
    store.copy(archive, target)
    print(f"environment {key} copied from {archive} to {target}")
    if digest and hashlib.sha256(store.get_bytes(target)).hexdigest() != digest:
        store.delete_prefix(target.removesuffix(ARCHIVE_FILE))
        raise ModelciError(
            f"the environment archive {archive} is not the one the run trained in (its sha256 "
            f"differs from the {digest[:12]}... recorded on the run): it was changed after "
            f"training. Nothing was written to {job.stand}. Push the branch again (a new run "
            "records the archive it uses) and promote that run"
        )
    return target


def _stand_code(job: Job, store, tags: Mapping[str, str]) -> str:
    """The code archive of the run's commit (from its `tags`) under the stand's prefix,
    copied from where the branch's deploy (or another stand) left it; built from the checkout
    only as a last resort."""
    from .deploy import put_code_archive
    from .plan import code_uri

    commit = tags.get(TAG_COMMIT) or job.pipeline.commit
    target = code_uri(job, commit=commit)
    if store.exists(target):
        return target
    for source in _code_sources(job, tags.get(TAG_BRANCH, ""), commit):
        if store.exists(source):
            store.copy(source, target)
            print(f"code of {commit[:12]} copied from {source} to {target}")
            return target
    try:
        put_code_archive(job, store, target, commit)
    except ModelciError as error:
        raise ModelciError(
            f"no code archive of commit {commit} for stand {job.stand}: none under the branch's "
            f"or the other stands' prefixes, and {error}"
        ) from None
    print(f"code of {commit[:12]} archived from the checkout to {target}")
    return target


def _code_sources(job: Job, branch: str, commit: str) -> list[str]:
    from .plan import code_uri

    others = [s.name for s in job.config.stands if s.name != job.stand]
    jobs = [replace(job, stand=name) for name in others]
    if branch:
        jobs.insert(0, replace(job, stand=None, pipeline=replace(job.pipeline, branch=branch)))
    return [code_uri(other, commit=commit) for other in jobs]


def existing_version(tracker: Tracker, registered: str, version: str) -> ModelVersionInfo:
    found = tracker.model_version(registered, version)
    if found is None:
        raise ModelciError(
            f"version {version} of {registered} does not exist in MLflow; the versions are "
            "listed on the registered model's page in the MLflow UI"
        )
    return found


def _move_alias(job: Job, tracker: Tracker, move: Move) -> None:
    stand = job.stand
    registered = job.names(move.model).registered_model
    before = tracker.stand_version(registered, stand)
    if before is not None and before.version == move.version.version:
        print(f"{registered}: {stand} already serves version {move.version.version}")
        return
    audit = Audit(
        stand=stand,
        action=move.action,
        user=job.pipeline.user,
        at=datetime.now(UTC).isoformat(timespec="seconds"),
        pipeline=job.pipeline.pipeline_url or job.pipeline.pipeline_id,
        commit=job.pipeline.commit,
        previous_version=before.version if before else "",
        merge_request=move.merge_request,
        reason=move.reason,
    )
    tracker.set_version_tags(registered, move.version.version, audit.tags())
    tracker.set_alias(registered, stand, move.version.version)
    was = f" (was version {before.version})" if before else ""
    print(
        f"{registered}: {stand} now serves version {move.version.version}{was}; "
        f"{move.action} by {job.pipeline.user}"
    )
