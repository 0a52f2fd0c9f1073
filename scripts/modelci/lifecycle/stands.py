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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from ..config.settings import require_stand_credentials
from ..config.types import Model
from ..errors import ModelciError
from ..systems.tracking import (
    TAG_COMMIT,
    ModelVersionInfo,
    Tracker,
    require_model_dir,
)
from .promotion import Audit
from .standcopies import TrainedBytes
from .workspace import Job, ResolvedModel, load_job


@dataclass(frozen=True)
class Move:
    """One model's version going onto the stand, and why."""

    model: Model
    version: ModelVersionInfo
    action: str  # promote, rollback or deploy
    merge_request: str = ""
    reason: str = ""
    # What the version's first stand copy is checked against; None: the run's own tags.
    trained: TrainedBytes | None = None
    # May this move make the version's first stand copy? Only a merge's (or a retraining's)
    # promotion and deploy-version may; a later stand and a rollback take what a stand had.
    first_copy: bool = False


def load_stand_job(args: argparse.Namespace) -> Job:
    """The job of promote, rollback and deploy-version. First this process's credentials
    become the stand ones (protected CI/CD variables) for MLflow, S3 and both repos, so not
    even a read goes with a feature branch's credentials; a job with none of them is refused."""
    require_stand_credentials(os.environ, getattr(args, "command", "promote"))
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
    from ..systems.s3 import S3Store

    if job.stand is None:
        raise ValueError("deploy_to_stand needs a job for a stand")
    store = S3Store(job.settings.s3_endpoint, job.settings.s3_region)
    prepared: dict[tuple[str, str], _Prepared] = {}
    claims = _Claims.of(moves)
    _write_stand(job, tracker, store, [(m.model, m.version) for m in moves], prepared, claims)
    for move in moves:
        _move_alias(job, tracker, move)
    models = [move.model for move in moves]
    for _ in range(SETTLE_ROUNDS):
        served = [(m, _served_now(job, tracker, m)) for m in models]
        written = _write_stand(job, tracker, store, served, prepared, claims, recheck=True)
        if {m.name: _served_now(job, tracker, m).version for m in models} == written:
            return
        print(f"{job.stand} changed meanwhile: writing its files again for what its aliases name")
    raise ModelciError(
        f"{job.stand}'s aliases kept moving while this job wrote its files ({SETTLE_ROUNDS} "
        "rounds): other moves of the stand are running. Run this job again once they are done."
    )


def _seal_key() -> str:
    from .standcopies import SEAL_KEY_VARIABLE

    key = os.environ.get(SEAL_KEY_VARIABLE, "").strip()
    if not key:
        raise ModelciError(
            f"{SEAL_KEY_VARIABLE} is not set in this job: stand jobs seal the digests they record "
            "on a version with it, and trust no digest they cannot check. The platform team "
            "sets it once, a long random string, as a protected and masked CI/CD variable "
            "(docs/platform/security.md). Nothing was changed"
        )
    return key


@dataclass(frozen=True)
class _Claim:
    """What one move may do with its version's bytes: the evidence for a first copy, and
    whether it may make one."""

    trained: TrainedBytes | None = None
    first_copy: bool = False


@dataclass(frozen=True)
class _Claims:
    """The seal key, and each moved (model, version)'s claim; a version the aliases named
    meanwhile (another move of the stand) has none: it was on the stand already."""

    seal_key: str
    moved: Mapping[tuple[str, str], _Claim]

    @classmethod
    def of(cls, moves: Sequence[Move]) -> _Claims:
        moved = {(m.model.name, m.version.version): _Claim(m.trained, m.first_copy) for m in moves}
        return cls(_seal_key(), moved)

    def of_version(self, model: Model, version: ModelVersionInfo) -> _Claim:
        return self.moved.get((model.name, version.version), _Claim())


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
    claims: _Claims,
    *,
    recheck: bool = False,
) -> dict[str, str]:
    """Write the stand's DAGs and values for these versions (one commit per repo, none when
    nothing changes); return model name -> version written. `prepared` keeps what each
    (model, version) needed, so a second write of the same version reads nothing again. A
    `recheck` prints a repo's line only when it commits (one line per write that happened)."""
    from .deploy import write_dags, write_online

    _prepare(job, tracker, store, served, prepared, claims)
    ready = {model.name: prepared[model.name, version.version] for model, version in served}
    models = [model for model, _ in served]
    resolved = {name: item.resolved for name, item in ready.items()}
    batch = [m for m in models if m.batch.dags]
    if batch:
        code = {m.name: ready[m.name].code for m in batch}
        write_dags(job, batch, resolved, code, recheck=recheck)
    online = {m.name: resolved[m.name] for m in models if m.online.enabled}
    write_online(job, models, online, recheck=recheck)
    return {model.name: version.version for model, version in served}


def _prepare(
    job: Job,
    tracker: Tracker,
    store,
    served: Sequence[tuple[Model, ModelVersionInfo]],
    prepared: dict[tuple[str, str], _Prepared],
    claims: _Claims,
) -> None:
    """Add to `prepared` the versions of `served` it lacks: each one's bytes copied to the
    stand's own prefix and checked (`standcopies.py`), its digests recorded on the version.
    When one is refused, the copies this job made for it are removed again."""
    from ..render.spark import refuse_spark_model
    from .deploy import put_spark_main_files

    missing = [(m, v) for m, v in served if (m.name, v.version) not in prepared]
    for model, version in missing:
        run = tracker.get_run(version.run_id)
        claim = claims.of_version(model, version)
        trained = claim.trained or TrainedBytes.from_run_tags(version.run_id, run.data.tags)
        copies = _StandCopies(job, tracker, store, model, version, run.data.tags, trained)
        copies.check_recorded(claims.seal_key, claim.first_copy)
        try:
            resolved = ResolvedModel(
                run_id=version.run_id,
                experiment_id=run.info.experiment_id,
                model_uri=version.uri,
                storage_uri=copies.model_dir(),
                model_version=version.version,
                environment_uri=copies.environment(),
            )
            refuse_spark_model(store, model, resolved.storage_uri)  # a version chosen by hand
            code = copies.code() if model.batch.dags else None
        except ModelciError:
            copies.remove_made()
            raise
        if code:
            put_spark_main_files(store, [model], {model.name: code})
        copies.record_digests()
        prepared[model.name, version.version] = _Prepared(resolved, code)


class _StandCopies:
    """One version's bytes on `job.stand`: each copied from another stand's copy (checked
    against the digests recorded on the version) or, the first time, from where the run left
    it (checked against what its train job recorded), never pointed at where it came from."""

    def __init__(
        self, job: Job, tracker: Tracker, store, model: Model, version, tags, trained: TrainedBytes
    ) -> None:
        from ..render.plan import scratch_prefix

        self.job, self.tracker, self.store = job, tracker, store
        self.model, self.version, self.tags, self.trained = model, version, tags, trained
        self.prefix = scratch_prefix(job)
        others = [s.name for s in job.config.stands if s.name != job.stand]
        self.other_jobs = [replace(job, stand=name) for name in others]
        self.digests: dict[str, str] = {}
        self.recorded: dict[str, str] = {}  # the version's sealed digest tags
        self.seal_key = ""
        self.made: list[str] = []  # copies this job made, directories ending in /
        self._model_dir = ""

    def check_recorded(self, seal_key: str, first_copy: bool) -> None:
        """Take the version's digests, refusing forged ones, and a version no stand job has
        copied yet unless this move may make its first copy."""
        from .standcopies import sealed_digests

        version = self.version
        self.seal_key = seal_key
        try:
            self.recorded = sealed_digests(
                seal_key, version.name, version.version, version.run_id, version.tags
            )
        except ModelciError:
            if not first_copy:
                raise
            # A first copy is checked against its own evidence and seals what it finds (an
            # earlier job that died between writing the tags and the seal left them so).
            print(f"{version.name} version {version.version}: unsealed digests ignored")
        if not self.recorded and not first_copy:
            raise ModelciError(
                f"version {version.version} of {version.name} has never been on a stand (it "
                f"carries no digests a stand job sealed), so {self.job.stand} does not take it "
                "from an alias or an audit tag: only a merge's promotion or the deploy-version "
                "job puts a version on a stand the first time. Nothing was changed"
            )

    def _recorded(self, tag: str) -> tuple[str, str]:
        found = self.recorded.get(tag, "")
        return found, (
            f"recorded on version {self.version.version} of {self.version.name} ({tag})"
            if found
            else ""
        )

    def model_dir(self) -> str:
        from ..render.plan import scratch_prefix
        from .standcopies import MODEL_DIGEST, copy_verified, stand_model_dir

        name, number = self.model.name, self.version.version
        expected, where = self._recorded(MODEL_DIGEST)
        if not expected:
            expected, where = self.trained.model_sha256, f"that {self.trained.source} give"
        others = [stand_model_dir(scratch_prefix(other), name, number) for other in self.other_jobs]
        copied = copy_verified(
            self.store,
            f"the model directory of version {number} of {self.version.name}",
            stand_model_dir(self.prefix, name, number),
            _then(others, self._origin_model_dir),
            expected,
            where,
            directory=True,
        )
        self._report("model", copied)
        self.digests[MODEL_DIGEST] = copied.digest
        self._model_dir = copied.uri
        return copied.uri

    def _origin_model_dir(self) -> str:
        location = self.tracker.resolve_storage_uri(
            self.version.uri, self.job.settings.artifacts_destination
        )
        return require_model_dir(self.store, location).rstrip("/") + "/"

    def environment(self) -> str | None:
        from ..render.plan import scratch_prefix
        from ..systems.tracking import TAG_ENV_ARCHIVE
        from .modelenv import ARCHIVE_FILE, Archives, archive_key, checked_environment, lock_beside
        from .standcopies import ENVIRONMENT_DIGEST, ENVIRONMENT_KEY, copy_verified, first_existing

        archive = self.trained.environment_archive
        recorded_key = self.recorded.get(ENVIRONMENT_KEY, "")
        if not archive and not recorded_key:
            return None
        key = recorded_key or archive_key(archive)
        if key is None:
            raise ModelciError(
                f"the run's environment archive {archive!r} ({self.trained.source}) is not an "
                f".../<key>/{ARCHIVE_FILE} URI as the train job records it; nothing was written"
            )
        # The run's own archive, last of the sources, unless it names another environment
        # than the version recorded.
        origin = [archive] if archive and archive_key(archive) == key else []
        expected, where = self._recorded(ENVIRONMENT_DIGEST)
        if not expected:
            expected, where = self.trained.environment_sha256, f"that {self.trained.source} give"
        archives = [Archives.under(self.store, scratch_prefix(o)) for o in self.other_jobs]
        target = Archives.under(self.store, self.prefix)
        copied = copy_verified(
            self.store,
            f"the environment archive {key}",
            target.archive_uri(key),
            [*(a.archive_uri(key) for a in archives), *origin],
            expected,
            where,
            directory=False,
        )
        lock = target.lock_uri(key)
        if not self.store.exists(lock):  # read by the library check below only, never run
            sources = [*(a.lock_uri(key) for a in archives), *map(lock_beside, origin)]
            source = first_existing(self.store, sources)
            if source:
                self.store.copy(source, lock)
                self.made.append(lock)
        self._report("environment", copied)
        self.digests[ENVIRONMENT_DIGEST] = copied.digest
        self.digests[ENVIRONMENT_KEY] = key
        return checked_environment(
            self.store, {TAG_ENV_ARCHIVE: copied.uri}, self._model_dir, self.job.stand
        )

    def code(self) -> str:
        from ..render.plan import code_uri
        from .deploy import put_code_archive
        from .standcopies import CODE_COMMIT, CODE_DIGEST, copy_verified

        expected, where = self._recorded(CODE_DIGEST)
        commit = self.recorded.get(CODE_COMMIT) or self.tags.get(TAG_COMMIT, "")
        commit = self._checked_out(commit or self.job.pipeline.commit)
        others = [code_uri(other, commit=commit) for other in self.other_jobs]
        copied = copy_verified(
            self.store,
            f"the code archive of commit {commit[:12]}",
            code_uri(self.job, commit=commit),
            others,
            expected,
            where,
            directory=False,
            make=lambda target: put_code_archive(self.job, self.store, target, commit),
        )
        self._report("code", copied)
        self.digests[CODE_DIGEST] = copied.digest
        self.digests[CODE_COMMIT] = commit
        return copied.uri

    def _checked_out(self, commit: str) -> str:
        """`commit`, or the pipeline's own when this checkout lacks it and no stand has its
        code: a squash merge leaves the branch's commit out of the default branch, and the
        code is never taken from the branch's prefix. The merged tree is what was reviewed."""
        from ..render.plan import code_uri
        from ..systems.gitarchive import has_commit
        from .standcopies import CODE_COMMIT

        if self.recorded.get(CODE_COMMIT) or commit == self.job.pipeline.commit:
            return commit
        jobs = [self.job, *self.other_jobs]
        if any(self.store.exists(code_uri(j, commit=commit)) for j in jobs):
            return commit
        if has_commit(Path(self.job.config.path).resolve().parent, commit):
            return commit
        print(
            f"commit {commit[:12]} of run {self.version.run_id} is not in this checkout (a "
            f"squash merge?): the stand runs the code of this pipeline's commit "
            f"{self.job.pipeline.commit[:12]}, the merged tree"
        )
        return self.job.pipeline.commit

    def record_digests(self) -> None:
        """Tag the version with the digests it lacks, and seal them all: written once, by a
        stand job."""
        from .standcopies import SEAL, new_digest_tags, seal

        version = self.version
        new = new_digest_tags(self.recorded, self.digests)
        if new:
            every = {**self.recorded, **new}
            new[SEAL] = seal(self.seal_key, version.name, version.version, version.run_id, every)
            self.tracker.set_version_tags(version.name, version.version, new)
            print(f"{version.name} version {version.version}: digests recorded and sealed")

    def remove_made(self) -> None:
        """Undo this job's copies: a refused version leaves nothing under the stand's prefix."""
        for uri in reversed(self.made):
            (self.store.delete_prefix if uri.endswith("/") else self.store.delete)(uri)

    def _report(self, kind: str, copied) -> None:
        if copied.source:
            self.made.append(copied.uri)
            print(
                f"{self.model.name} {kind}: copied from {copied.source} to {copied.uri} "
                f"(sha256 {copied.digest[:16]}...)"
            )


def _then(first: Sequence[str], last: Callable[[], str]):
    """`first`, then what `last` gives, computed only if the caller gets that far."""
    yield from first
    yield last()


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
