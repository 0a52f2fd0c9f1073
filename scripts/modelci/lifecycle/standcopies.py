"""A stand's own copies of every byte it serves or runs: the model directory, the environment
archive and the code archive of a registered model version.

A feature branch's credentials can write where a run keeps its model and its environment
archive, and where a branch's code archive lies. So a stand never points at those places: the
stand job copies each into the stand's own prefix (`<scratch>/stands/<project>/<stand>/`,
which only stand credentials may write), computes the copy's sha256 itself, and records it on
the registered model version, sealed with a key only stand jobs hold. From then on every copy
of that version, on any stand, is checked against those digests; a copy that differs is
deleted and the move refused. The first copy of a version is checked against the digests its
train job took (`TrainedBytes`): after a merge as the gate job recorded them in its GitLab
artifacts, which no branch credential can rewrite (docs/platform/security.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ModelciError

# Tags on the registered model version, written once by the stand job that first copied it.
MODEL_DIGEST = "modelci.bytes.model_sha256"
ENVIRONMENT_DIGEST = "modelci.bytes.environment_sha256"
ENVIRONMENT_KEY = "modelci.bytes.environment_key"  # which environment: its content key
CODE_DIGEST = "modelci.bytes.code_sha256"
CODE_COMMIT = "modelci.bytes.code_commit"
# HMAC-SHA256 over the version and the tags above, keyed with MODELCI_STANDS_SEAL_KEY (a
# protected variable): whoever else may write the version's tags (the owner of a registered
# model created under the project's name before its first merge, say) cannot forge it.
SEAL = "modelci.bytes.seal"
SEAL_KEY_VARIABLE = "MODELCI_STANDS_SEAL_KEY"
SEALED = (MODEL_DIGEST, ENVIRONMENT_DIGEST, ENVIRONMENT_KEY, CODE_DIGEST, CODE_COMMIT)


def seal(key: str, name: str, version: str, run_id: str, tags: Mapping[str, str]) -> str:
    """The seal of a version's digest tags: HMAC-SHA256 of its name, number, run and the
    `SEALED` tags it has, as canonical JSON."""
    import hashlib
    import hmac
    import json

    fields = {tag: tags[tag] for tag in SEALED if tags.get(tag)}
    message = json.dumps([name, version, run_id, fields], sort_keys=True).encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def sealed_digests(key: str, name: str, version: str, run_id: str, tags: Mapping[str, str]):
    """The version's digest tags when a stand job sealed them; {} when it has none; an error
    when it has some that no stand job sealed."""
    import hmac

    digests = {tag: tags[tag] for tag in SEALED if tags.get(tag)}
    if not digests:
        return {}
    if hmac.compare_digest(tags.get(SEAL, ""), seal(key, name, version, run_id, tags)):
        return digests
    raise ModelciError(
        f"version {version} of {name} carries digests (modelci.bytes.*) that no stand job "
        f"sealed with {SEAL_KEY_VARIABLE}: someone else wrote its tags, so neither they nor the "
        "alias that names it are trusted, and nothing was changed. If the registered model "
        "was created outside modelci, ask the MLflow admin to remove it; otherwise deploy a "
        "version again with the deploy-version job"
    )


@dataclass(frozen=True)
class TrainedBytes:
    """What the first stand copy of a run's bytes is checked against: the digests its train
    job took right after training, and who vouches for them (`source`, for messages)."""

    run_id: str
    model_sha256: str
    environment_archive: str
    environment_sha256: str
    source: str
    gate: str = ""  # the gate verdict given with them, when the record has one

    @classmethod
    def from_record(cls, record: Mapping[str, Any], source: str) -> TrainedBytes:
        """From a pipeline's record of a run (`.modelci/<model>/gate.json`, RECORD_FIELDS)."""
        return cls(
            run_id=str(record.get("run_id", "")),
            model_sha256=str(record.get("model_sha256", "")),
            environment_archive=str(record.get("environment_archive", "")),
            environment_sha256=str(record.get("environment_sha256", "")),
            source=source,
            gate=str(record.get("gate", "")),
        )

    @classmethod
    def from_run_tags(cls, run_id: str, tags: Mapping[str, str]) -> TrainedBytes:
        """From the run's tags: evidence only against accidents, since any holder of the
        branch's MLflow credentials can rewrite them."""
        from ..systems.tracking import TAG_ENV_ARCHIVE, TAG_ENV_SHA256, TAG_GATE, TAG_MODEL_SHA256

        return cls(
            run_id=run_id,
            model_sha256=tags.get(TAG_MODEL_SHA256, ""),
            environment_archive=tags.get(TAG_ENV_ARCHIVE, ""),
            environment_sha256=tags.get(TAG_ENV_SHA256, ""),
            source=f"the tags of run {run_id}",
            gate=tags.get(TAG_GATE, ""),
        )


# The fields of a run's record that train and gate jobs leave in `.modelci/<model>/`.
RECORD_FIELDS = ("run_id", "gate", "model_sha256", "environment_archive", "environment_sha256")


@dataclass(frozen=True)
class Copied:
    uri: str
    digest: str
    source: str  # where it was copied from, or "" when the stand had it already


def stand_model_dir(stand_prefix: str, model: str, version: str) -> str:
    """Where a stand keeps its copy of `model`'s version `version`, ending in /."""
    return f"{stand_prefix.rstrip('/')}/models/{model}/v{version}/"


def copy_verified(
    store,
    what: str,
    target: str,
    sources: Iterable[str],
    expected: str,
    expected_from: str,
    *,
    directory: bool,
    make: Callable[[str], str | None] | None = None,
) -> Copied:
    """`target`, the stand's own copy of `what`: kept when it is there already, else copied
    from the first of `sources` that exists (tried in order, each computed only when reached),
    or written by `make`. Its digest is computed from the copy itself (streamed), or is the
    one `make` returns, taken from the bytes it wrote as they went up (not read back); it must
    equal `expected` (when known, recorded by `expected_from`); a copy that does not is
    deleted and nothing is deployed."""
    digest_of = store.tree_sha256 if directory else store.sha256
    source = made = ""
    if not store.exists(target):
        tried: list[str] = []
        source = first_existing(store, sources, tried)
        if source:
            (store.copy_prefix if directory else store.copy)(source, target)
        elif make is not None:
            made = make(target) or ""  # None: another job wrote it meanwhile
            source = "this job's checkout"
        else:
            listed = ", ".join(tried) or "nowhere"
            raise ModelciError(
                f"{what} is gone: not under the stand's prefix ({target}) nor at {listed}. "
                "Nothing was changed. Push the branch again (a new run) and promote that"
            )
    digest = made or digest_of(target)
    if expected and digest != expected:
        if source:
            (store.delete_prefix if directory else store.delete)(target)
        where = f"copied from {source}" if source else "the stand's copy"
        raise ModelciError(
            f"{what} ({where}) has sha256 {digest[:16]}..., not the {expected[:16]}... "
            f"{expected_from}: it was changed after that. Nothing was changed on the stand. "
            "Push the branch again (a new run) and promote that run; if the stand's own copy "
            "differs, someone with stand credentials changed it: tell the platform team"
        )
    return Copied(target, digest, source)


def first_existing(store, uris: Iterable[str], tried: list[str] | None = None) -> str:
    """The first of `uris` that exists in `store` ("" when none does), asking in order and
    no further; each one asked is added to `tried`."""
    for uri in uris:
        if tried is not None:
            tried.append(uri)
        if store.exists(uri):
            return uri
    return ""


def new_digest_tags(recorded: Mapping[str, str], digests: Mapping[str, str]) -> dict[str, str]:
    """The digest tags a version still lacks; a tag it has is never rewritten."""
    return {key: value for key, value in digests.items() if value and key not in recorded}
