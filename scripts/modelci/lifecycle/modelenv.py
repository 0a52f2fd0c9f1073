"""The model's own Python environment: built from the model repository's requirements with uv,
kept apart from the environment `modelci` runs in.

A model repository may pin any scikit-learn, numpy or boto3 it likes: those pins go into a
virtualenv of their own, made with the `python:` version of `mlops.yaml`, and the model's
code runs with that virtualenv's Python. `modelci`'s own packages never change.

The requirements are first resolved to a lock (`uv pip compile`: every package at an exact
version), and the environment is keyed by content: the Python version, the platform and the
lock. It is kept under a cache directory and, with an archive store (S3 under
`MODELCI_SCRATCH_URI/envs/`), packed once as `<key>/environment.tar.gz` beside its
`<key>/requirements.lock`: a later job anywhere finds the archive and unpacks it instead of
building, and batch pods (`modelci pod-run --env`) and every stand use those same bytes.

Jobs on one runner that need the same key at once take turns (a lock file per key beside it):
one builds or unpacks it, the others then find it. A build or an unpack happens in a private
directory that is renamed into place when complete, so nothing ever runs in a half-made one,
and two runners sharing a cache directory without working locks still end with one.
uv is used for speed (a cached install takes seconds) and because it makes relocatable
virtualenvs: where modelci unpacks the archive it links the virtualenv again to that machine's
Python of the same version (the job and runtime images carry it; uv never downloads a Python
here); where Spark unpacks it (plain tar, its `archives`) the interpreter links in the archive
are used as they are, so the image needs the Python at the path the environment was built with.
The archive is packed deterministically (sorted entries, no times or owners), so the same lock
and wheels give the same bytes.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import ModelciError, redact_url

COMPLETE_MARKER = ".modelci-complete"
KEY_DIGITS = 20
BUILD_TIMEOUT_SECONDS = 1800
ENV_CACHE_VARIABLE = "MODELCI_ENV_CACHE"
REQUIRED_MODULE = "mlflow"  # the training script logs with it; `modelci` does not lend its own
# What KServe's `kserve-mlserver` runtime runs for `modelFormat: mlflow`. A model served online
# runs MLServer from its own environment (`modelci serve`), so its lock includes them.
# uvloop<0.22: MLServer 1.7.1's worker calls asyncio.get_event_loop(), which newer uvloop refuses.
SERVING_RUNTIME = ("mlserver==1.7.1", "mlserver-mlflow==1.7.1", "uvloop<0.22")


MANIFEST = ".modelci-env.json"
LOCK_FILE = "requirements.lock"
ARCHIVE_FILE = "environment.tar.gz"
DIGEST_METADATA = "sha256"  # S3 user metadata of an archive: the sha256 of its bytes
COMPRESS_LEVEL = 3  # gzip: level 9 takes minutes on a 600 MB environment for a few % less
_INTERPRETER_LINKS = ("python", "python3")  # plus python3.X, found by prefix


class ObjectStore(Protocol):
    """What the archives need of S3 (modelci.systems.s3.S3Store)."""

    def exists(self, uri: str) -> bool: ...
    def get_bytes(self, uri: str) -> bytes: ...
    def get_bytes_or_none(self, uri: str) -> bytes | None: ...
    def put_bytes(self, uri: str, data: bytes, metadata: dict[str, str] | None = None) -> None: ...
    def object_metadata(self, uri: str) -> dict[str, str]: ...
    def sha256(self, uri: str) -> str: ...
    def etag(self, uri: str) -> str | None: ...


# Under MODELCI_SCRATCH_URI, one directory per project (`envs/<project slug>/`): a project's
# branches build into and read from their project's cache alone, which no other project's keys
# may write. Each stand keeps its own copies under its prefix (`.../<stand>/envs/`).
ARCHIVES_DIR = "envs"
_KEY = re.compile(rf"py\d+\.\d+-[0-9a-f]{{{KEY_DIGITS}}}")  # what environment_key makes


@dataclass(frozen=True)
class Archives:
    """Where environment archives live: `<base>/<key>/environment.tar.gz` and its lock."""

    store: ObjectStore
    base: str  # s3://bucket/prefix/envs

    @classmethod
    def under(cls, store: ObjectStore, prefix: str) -> Archives:
        """The archives directory under an S3 prefix (a stand's)."""
        return cls(store, f"{prefix.rstrip('/')}/{ARCHIVES_DIR}")

    @classmethod
    def of_project(cls, store: ObjectStore, scratch_uri: str, project_slug: str) -> Archives:
        """The project's cache of environment archives: `<scratch>/envs/<project slug>`."""
        return cls(store, f"{scratch_uri.rstrip('/')}/{ARCHIVES_DIR}/{project_slug}")

    def archive_uri(self, key: str) -> str:
        return f"{self.base.rstrip('/')}/{key}/{ARCHIVE_FILE}"

    def lock_uri(self, key: str) -> str:
        return f"{self.base.rstrip('/')}/{key}/{LOCK_FILE}"


def archive_key(uri: str) -> str | None:
    """The environment key of an archive URI (`.../<key>/environment.tar.gz`); None when the
    URI is not one."""
    if not uri.endswith(f"/{ARCHIVE_FILE}"):
        return None
    key = uri.removesuffix(f"/{ARCHIVE_FILE}").rpartition("/")[2]
    return key if _KEY.fullmatch(key) else None


def lock_beside(archive_uri: str) -> str:
    """The lock uploaded beside an archive."""
    return archive_uri.removesuffix(ARCHIVE_FILE) + LOCK_FILE


# Which archives an environment's pods may run in: one record in the environment's S3 prefix,
# removed with the environment; the clean-up keeps every archive a record names.
ARCHIVES_RECORD = "env-archives.txt"
_EARLIER_RECORDS = ("env-archives-online.txt",)  # what deploy-online wrote in earlier versions


def record_archives(store: ObjectStore, record_uri: str, archives: Iterable[str]) -> None:
    """Add `archives` to the record at `record_uri`. Added, never replaced: when a later deploy
    fails, the pods of the earlier one still run its archive."""
    recorded = set((store.get_bytes_or_none(record_uri) or b"").decode().split())
    wanted = recorded | set(archives)
    if wanted != recorded:
        store.put_bytes(record_uri, "".join(f"{uri}\n" for uri in sorted(wanted)).encode())


def is_archives_record(uri: str) -> bool:
    return uri.rpartition("/")[2] in (ARCHIVES_RECORD, *_EARLIER_RECORDS)


def checked_environment(
    store: ObjectStore, tags: Mapping[str, str], storage_uri: str, model: str
) -> str | None:
    """The environment archive the run trained in (from its `tags`), after checking that it has
    the libraries MLflow recorded with the model; None for a run trained without archives."""
    from ..systems.tracking import TAG_ENV_ARCHIVE
    from .envcheck import mismatches

    archive = tags.get(TAG_ENV_ARCHIVE, "")
    if not archive:
        return None
    lock = store.get_bytes_or_none(lock_beside(archive))
    if lock is None or not store.exists(archive):
        raise ModelciError(
            f"{model}: the model's environment archive {archive} is gone from S3; nothing was "
            "written. Run the branch's pipeline again (its train job rebuilds it)"
        )
    recorded = f"{storage_uri.rstrip('/')}/requirements.txt"
    logged = (store.get_bytes_or_none(recorded) or b"").decode()
    found = mismatches(logged, lock.decode())
    if found:
        listed = "; ".join(
            f"{m.package} {m.logged} (logged) vs {m.environment} (environment)" for m in found
        )
        raise ModelciError(
            f"{model}: the model was logged with other versions than its environment has: "
            f"{listed} ({recorded} against {lock_beside(archive)}). Nothing was written. Another "
            "major or minor version may not load the model or may predict differently: pin the "
            "logged versions in the requirements file and train again, or log the model from the "
            "environment that trains it"
        )
    return archive


@dataclass(frozen=True)
class ModelEnvironment:
    key: str
    path: Path
    built: bool  # False when an earlier job had built it already
    archive_uri: str = ""  # where its archive is, when archives are kept
    downloaded: bool = False  # unpacked from the archive, not built here
    archive_sha256: str = ""  # of the archive's bytes in the store, when known

    @property
    def how(self) -> str:
        return (
            "built" if self.built else "unpacked from its archive" if self.downloaded else "reused"
        )

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


def environment_key(python_version: str, lock: bytes) -> str:
    """Content key of an environment: same Python, platform and lock, same key."""
    digest = hashlib.sha256()
    digest.update(f"python={python_version}\0{sys.platform}-{platform.machine()}\0".encode())
    digest.update(lock)
    return f"py{python_version}-{digest.hexdigest()[:KEY_DIGITS]}"


def lock_requirements(
    python_version: str, requirements_path: Path, extra: Sequence[str] = ()
) -> bytes:
    """The requirements (and `extra` ones, e.g. SERVING_RUNTIME) resolved to exact versions, as
    `uv pip compile` writes them."""
    added = f" together with {', '.join(extra)} (added for online serving)" if extra else ""
    with tempfile.TemporaryDirectory(prefix="modelci-lock-") as workdir:
        inputs = [str(requirements_path)]
        if extra:
            extra_path = Path(workdir) / "modelci-serving.txt"
            extra_path.write_text("".join(f"{line}\n" for line in extra), encoding="utf-8")
            inputs.append(str(extra_path))
        return _uv(
            [
                "pip", "compile", "--quiet", "--no-header", "--no-annotate",
                "--python-version", python_version, *inputs,
            ],
            failure=(
                f"the requirements in {requirements_path.name}{added} cannot be installed: uv "
                "cannot resolve them (the reason is below). Fix the named package or version"
            ),
        ).encode()  # fmt: skip


def default_cache_dir(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    if env.get(ENV_CACHE_VARIABLE):
        return Path(env[ENV_CACHE_VARIABLE])
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelci" / "envs"


def ensure_environment(
    python_version: str,
    requirements_path: Path,
    cache_dir: Path,
    archives: Archives | None = None,
    extra: Sequence[str] = (),
) -> ModelEnvironment:
    """The environment for these requirements (and `extra` ones): from the cache, else unpacked
    from its archive, else built now (and then archived, when `archives` is given)."""
    if not requirements_path.is_file():
        raise ModelciError(
            f"{requirements_path} does not exist: the model's environment is built from it. "
            f"Add it, listing {REQUIRED_MODULE} and the libraries train.py imports "
            "(or name another file with the template's `requirements` input)"
        )
    lock = lock_requirements(python_version, requirements_path, extra)
    key = environment_key(python_version, lock)
    with one_maker(cache_dir, key):
        return _found_or_made(python_version, requirements_path, lock, key, cache_dir, archives)


@contextmanager
def one_maker(cache_dir: Path, key: str) -> Iterator[None]:
    """Held by one process at a time per `key` of a cache directory shared on one machine:
    jobs that need the same environment at once take turns, one builds (or unpacks, or packs)
    it and the others then find it made, instead of each spending a build and a pack of
    hundreds of megabytes. The kernel drops the lock of a process that dies."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f".{key}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _found_or_made(
    python_version: str,
    requirements_path: Path,
    lock: bytes,
    key: str,
    cache_dir: Path,
    archives: Archives | None,
) -> ModelEnvironment:
    final = cache_dir / key
    uri = archives.archive_uri(key) if archives else ""
    tag = archives.store.etag(uri) if archives else None  # None: not in the project's cache
    if (final / COMPLETE_MARKER).is_file():
        digest = ""
        if archives and tag is None:
            # This project's cache lacks it (another project's job built it on this runner).
            digest = _upload(archives, key, final, lock, cache_dir)
        elif archives and tag is not None:
            digest = _digest_of(archives, uri, tag, cache_dir / f"{key}{DIGESTS_SUFFIX}")
        return ModelEnvironment(key, final, built=False, archive_uri=uri, archive_sha256=digest)
    if archives and tag is not None:
        archive = archives.store.get_bytes(uri)
        unpack_environment(archive, final, key=key, source=uri)
        digest = hashlib.sha256(archive).hexdigest()
        _remember(cache_dir / f"{key}{DIGESTS_SUFFIX}", uri, tag, digest)
        return ModelEnvironment(key, final, False, uri, downloaded=True, archive_sha256=digest)
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=cache_dir))
    try:
        _build(python_version, requirements_path, lock, staging)
        _write_manifest(staging, key, python_version, lock)
        digest = _upload(archives, key, staging, lock, cache_dir) if archives else ""
        (staging / COMPLETE_MARKER).write_text(key + "\n", encoding="utf-8")
        _move_into_place(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ModelEnvironment(key, final, built=True, archive_uri=uri, archive_sha256=digest)


def _write_manifest(path: Path, key: str, python_version: str, lock: bytes) -> None:
    manifest = {"key": key, "python": python_version, "lock": lock.decode()}
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _upload(archives: Archives, key: str, path: Path, lock: bytes, cache_dir: Path) -> str:
    """The lock first, then the archive (an archive that exists is complete), carrying its
    sha256; returns it. The packed archive is kept in the runner's cache beside the
    environment, so the next project that needs it in its own S3 cache costs an upload, not
    another pack (packing takes about 10 s)."""
    archive = _packed(path, cache_dir / f"{key}{PACKED_SUFFIX}")
    digest = hashlib.sha256(archive).hexdigest()
    uploaded = archives.archive_uri(key)
    archives.store.put_bytes(archives.lock_uri(key), lock)
    archives.store.put_bytes(uploaded, archive, {DIGEST_METADATA: digest})
    _remember(cache_dir / f"{key}{DIGESTS_SUFFIX}", uploaded, archives.store.etag(uploaded), digest)
    return digest


PACKED_SUFFIX = ".tar.gz"  # the runner's packed copy of an environment, beside its directory
DIGESTS_SUFFIX = ".sha256"  # the runner's record of archives it hashed: "<uri> <etag> <sha256>"


def _digest_of(archives: Archives, uri: str, tag: str, record: Path) -> str:
    """The sha256 of the archive at `uri`, hashed from its bytes (never the metadata a writer
    claims), once per version of the object: the runner remembers it with the object's ETag.
    A replaced object has another ETag and is hashed again; one made to keep the ETag (an MD5
    collision) keeps the old digest, which the stand's own check of the bytes then refuses."""
    remembered = record.read_text().split() if record.is_file() else []
    if tag and remembered[:2] == [uri, tag] and len(remembered) == 3:
        return remembered[2]
    digest = archives.store.sha256(uri)
    _remember(record, uri, tag, digest)
    return digest


def _remember(record: Path, uri: str, tag: str | None, digest: str) -> None:
    """Note that the object at `uri` with ETag `tag` has this sha256 (hashed by this runner)."""
    if tag:
        _write_whole(record, f"{uri} {tag} {digest}\n".encode())


def _packed(path: Path, packed: Path) -> bytes:
    """`path` packed, from the runner's copy when there is one."""
    if packed.is_file():
        return packed.read_bytes()
    archive = pack_environment(path)
    _write_whole(packed, archive)
    return archive


def _write_whole(path: Path, data: bytes) -> None:
    """Write `path` whole or not at all (jobs on one runner may share its cache)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_bytes(data)
    partial.replace(path)


def pack_environment(path: Path) -> bytes:
    """The environment at `path` as tar.gz, the same bytes for the same files: sorted entries,
    no times or owners. The links to the Python interpreter stay: where the archive is unpacked
    by plain tar (Spark's `archives`) they are the environment's Python, so the image there needs
    the interpreter at the path the environment was built with (the platform's job image);
    `unpack_environment` makes them again, to that machine's Python."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=COMPRESS_LEVEL) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for item in sorted(path.rglob("*")):
            relative = item.relative_to(path).as_posix()
            if relative == COMPLETE_MARKER:
                continue
            info = tar.gettarinfo(str(item), arcname=relative)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if info.isfile():
                with item.open("rb") as stream:
                    tar.addfile(info, stream)
            else:
                tar.addfile(info)
    return buffer.getvalue()


def _is_interpreter_name(name: str) -> bool:
    return name in _INTERPRETER_LINKS or name.startswith("python3.")


def _without_interpreter_links(member: tarfile.TarInfo, destination: str) -> tarfile.TarInfo | None:
    """tarfile's `data` filter, leaving out bin/python*: they point at the building machine's
    Python (an absolute path, which the filter refuses) and are linked again after unpacking."""
    folder, _, name = member.name.rpartition("/")
    if member.issym() and folder == "bin" and _is_interpreter_name(name):
        return None
    return tarfile.data_filter(member, destination)


def unpack_environment(archive: bytes, final: Path, *, key: str, source: str) -> None:
    """Unpack an environment archive to `final` (complete, or not at all), linking it to this
    machine's Python of its version. Refuses an archive that is corrupt or of another key."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".unpack-{key}-", dir=final.parent))
    try:
        try:
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
                tar.extractall(staging, filter=_without_interpreter_links)
            manifest = json.loads((staging / MANIFEST).read_text(encoding="utf-8"))
        except (tarfile.TarError, EOFError, zlib.error, OSError, ValueError) as error:
            raise ModelciError(
                f"the environment archive {source} is corrupt ({type(error).__name__}: "
                f"{error}); nothing was run. Delete it and run the branch's pipeline again: "
                "its train job builds and uploads it anew"
            ) from None
        if manifest.get("key") != key:
            raise ModelciError(
                f"the environment archive {source} holds environment "
                f"{manifest.get('key') or '(none named)'}, not {key}; nothing was run. Delete it "
                "and run the branch's pipeline again"
            )
        _link_interpreter(staging, manifest["python"])
        (staging / COMPLETE_MARKER).write_text(key + "\n", encoding="utf-8")
        _move_into_place(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def environment_from_archive(store: ObjectStore, uri: str, cache_dir: Path) -> Path:
    """The environment archive at `uri`, unpacked under `cache_dir` (once per machine and key):
    what a batch pod or a model server runs in."""
    key = archive_key(uri)
    if key is None:
        raise ModelciError(
            f"--env {uri!r} is not an environment archive URI (.../<key>/{ARCHIVE_FILE}, as "
            "the train job records it on the MLflow run)"
        )
    target = cache_dir / key
    if not (target / COMPLETE_MARKER).is_file():
        if not store.exists(uri):
            raise ModelciError(
                f"the model's environment archive {uri} does not exist; nothing was run. Run "
                "the branch's pipeline again: its train job builds and uploads it"
            )
        unpack_environment(store.get_bytes(uri), target, key=key, source=uri)
    return target


# Set by a job runner, an image or a user's shell; the model's Python must not see other paths.
_LEAKING_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE")


def variables_for(path: Path, env: Mapping[str, str]) -> dict[str, str]:
    """`env` for a process that runs in the environment at `path`: its `bin` first on PATH,
    and without the variables that would make its Python import other packages."""
    variables = {k: v for k, v in env.items() if k not in _LEAKING_VARIABLES}
    variables.update(
        VIRTUAL_ENV=str(path),
        PATH=f"{path / 'bin'}{os.pathsep}{variables.get('PATH', '')}",
    )
    return variables


def _link_interpreter(path: Path, python_version: str) -> None:
    """Point the unpacked virtualenv at this machine's Python `python_version`."""
    interpreter = _local_python(python_version)
    bin_dir = path / "bin"
    for name in ("python", "python3", f"python{python_version}"):
        link = bin_dir / name
        link.unlink(missing_ok=True)
        link.symlink_to(interpreter)
    config = path / "pyvenv.cfg"
    lines = config.read_text(encoding="utf-8").splitlines()
    home = f"home = {interpreter.parent}"
    lines = [home if line.startswith("home =") else line for line in lines]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _local_python(python_version: str) -> Path:
    """This machine's Python `python_version` itself: not a virtualenv's, not a shim's."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == python_version:
        return Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    found = shutil.which(f"python{python_version}")
    if found:
        asked = subprocess.run(
            [found, "-c", "import sys; print(getattr(sys, '_base_executable', sys.executable))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if asked.returncode == 0 and asked.stdout.strip():
            return Path(asked.stdout.strip()).resolve()
    raise ModelciError(
        f"the model's environment needs Python {python_version}, which this machine does not "
        f"have (no python{python_version} on PATH): use an image with it (mlops.yaml `python:`)"
    )


def _move_into_place(staging: Path, final: Path) -> None:
    """Rename the finished build to its key; a concurrent build that won the race is kept."""
    if final.exists() and not (final / COMPLETE_MARKER).is_file():
        shutil.rmtree(final, ignore_errors=True)  # left by a build that was killed midway
    try:
        staging.rename(final)
    except OSError:
        if not (final / COMPLETE_MARKER).is_file():
            raise


def _build(python_version: str, requirements_path: Path, lock: bytes, target: Path) -> None:
    _uv(
        [
            "venv",
            "--quiet",
            "--allow-existing",
            "--relocatable",
            "--python",
            python_version,
            str(target),
        ],
        failure=(
            f'Python {python_version} (`python: "{python_version}"` in mlops.yaml) is not '
            "installed where this job runs. Use the Python version of the job image, or a job "
            "image that has this one"
        ),
    )
    python = str(target / "bin" / "python")
    lock_path = target / LOCK_FILE
    lock_path.write_bytes(lock)
    _uv(
        ["pip", "sync", "--quiet", "--python", python, str(lock_path)],
        failure=(
            f"the requirements in {requirements_path.name} cannot be installed (the reason is "
            "above). Fix the named package or version"
        ),
    )
    check = subprocess.run(
        [str(target / "bin" / "python"), "-c", f"import {REQUIRED_MODULE}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        raise ModelciError(
            f"{requirements_path.name} does not install {REQUIRED_MODULE}, which the training "
            f"script needs to log its run and model: add a line such as `{REQUIRED_MODULE}` "
            "(pinned like the platform's MLflow server) to it"
        )


def _uv(arguments: list[str], *, failure: str) -> str:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    env.pop("VIRTUAL_ENV", None)
    command = [_uv_binary(), *arguments]
    result = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        detail = redact_url((result.stderr or result.stdout).strip())
        raise ModelciError(f"{failure}.\nuv said:\n{detail}")
    return result.stdout


def _uv_binary() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:
        found = shutil.which("uv")
        if found:
            return found
        raise ModelciError(
            "uv is not installed beside modelci; install the modelci package with its "
            "dependencies (the job image has it)"
        ) from None
    return find_uv_bin()
