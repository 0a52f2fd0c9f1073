"""The model's own environment, built for real with uv from PyPI: the model's pins win inside
it, modelci's environment never changes, one build per content, and clear errors."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from modelci.errors import ModelciError
from modelci.lifecycle.modelenv import (
    COMPLETE_MARKER,
    SERVING_RUNTIME,
    Archives,
    ensure_environment,
    environment_key,
    lock_requirements,
)
from modelci.systems.s3 import S3Store
from tests.harness.s3server import S3Server
from tests.harness.tools import VENV_BIN

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
# Versions other than the ones modelci's own environment has (see test below).
CONFLICTING = {
    "scikit-learn": "1.6.1",
    "numpy": "2.2.6",
    "ruamel.yaml": "0.17.40",  # modelci itself needs >=0.18
}
REQUIREMENTS = "mlflow-skinny==3.17.2\n" + "".join(f"{n}=={v}\n" for n, v in CONFLICTING.items())
VERSIONS = (
    "import importlib.metadata as m, sys;"
    "print(' '.join(f'{n}=={m.version(n)}' for n in sys.argv[1:]))"
)


def installed(python: Path | str, *packages: str) -> str:
    return subprocess.run(
        [str(python), "-c", VERSIONS, *packages], capture_output=True, text=True, check=True
    ).stdout.strip()


def freeze(python: Path | str) -> str:
    return subprocess.run(
        [str(python), "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True
    ).stdout


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_the_models_pins_win_in_its_environment_and_modelci_is_untouched(tmp_path: Path) -> None:
    ours = installed(sys.executable, *CONFLICTING)
    assert all(f"{n}=={v}" not in ours for n, v in CONFLICTING.items()), ours
    before = freeze(sys.executable)
    requirements = write(tmp_path / "requirements.txt", REQUIREMENTS)

    env = ensure_environment(PYTHON, requirements, tmp_path / "cache")

    assert env.built
    assert installed(env.python, *CONFLICTING) == " ".join(
        f"{n}=={v}" for n, v in CONFLICTING.items()
    )
    assert freeze(sys.executable) == before
    lock = lock_requirements(PYTHON, requirements)
    assert env.path == tmp_path / "cache" / environment_key(PYTHON, lock)
    assert "scikit-learn==1.6.1" in lock.decode()  # the lock names every package exactly


def test_an_unchanged_lock_reuses_the_environment(tmp_path: Path) -> None:
    requirements = write(tmp_path / "requirements.txt", "mlflow-skinny==3.17.2\n")
    first = ensure_environment(PYTHON, requirements, tmp_path / "cache")
    marker = (first.path / COMPLETE_MARKER).stat().st_mtime_ns

    second = ensure_environment(PYTHON, requirements, tmp_path / "cache")

    assert (first.built, second.built) == (True, False)
    assert second.path == first.path
    assert (second.path / COMPLETE_MARKER).stat().st_mtime_ns == marker
    write(requirements, "mlflow-skinny==3.17.2\n# a comment: the lock is the same\n")
    assert not ensure_environment(PYTHON, requirements, tmp_path / "cache").built
    write(requirements, "mlflow-skinny==3.17.2\nsix==1.16.0\n")
    assert ensure_environment(PYTHON, requirements, tmp_path / "cache").built


def test_two_jobs_needing_the_same_environment_at_once_build_it_once(tmp_path: Path) -> None:
    requirements = write(tmp_path / "requirements.txt", "mlflow-skinny==3.17.2\n")
    cache = tmp_path / "cache"

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: ensure_environment(PYTHON, requirements, cache), [1, 2]))

    assert results[0].path == results[1].path
    assert sorted(r.how for r in results) == ["built", "reused"]  # the other job waited
    key = results[0].key
    assert sorted(p.name for p in cache.iterdir()) == [f".{key}.lock", key]  # no leftovers
    assert installed(results[0].python, "mlflow-skinny") == "mlflow-skinny==3.17.2"


def test_the_environment_runs_from_another_path(tmp_path: Path) -> None:
    requirements = write(tmp_path / "requirements.txt", "mlflow-skinny==3.17.2\n")
    env = ensure_environment(PYTHON, requirements, tmp_path / "cache")
    moved = env.path.rename(tmp_path / "elsewhere")

    result = subprocess.run(
        [str(moved / "bin" / "python"), "-c", "import mlflow, sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(moved)


def test_an_unresolvable_requirement_names_the_package_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    requirements = write(
        tmp_path / "requirements.txt", "mlflow-skinny==3.17.2\nscikit-learn==0.0.404\n"
    )

    with pytest.raises(ModelciError) as raised:
        ensure_environment(PYTHON, requirements, tmp_path / "cache")

    message = str(raised.value)
    assert "requirements.txt cannot be installed" in message
    assert "scikit-learn==0.0.404" in message
    cache = tmp_path / "cache"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_an_online_models_lock_carries_the_serving_runtime_or_names_the_conflict(
    tmp_path: Path,
) -> None:
    requirements = write(tmp_path / "requirements.txt", REQUIREMENTS)
    lock = lock_requirements(PYTHON, requirements, SERVING_RUNTIME).decode().split()
    assert {"mlserver==1.7.1", "mlserver-mlflow==1.7.1", "scikit-learn==1.6.1"} <= set(lock)
    assert "uvloop==0.21.0" in lock  # what MLServer 1.7.1's workers run with
    assert lock_requirements(PYTHON, requirements).decode().split() != lock

    # MLServer 1.7.1 needs fastapi < 0.116: a model that pins a newer one cannot be served.
    clashing = write(tmp_path / "clashing.txt", REQUIREMENTS + "fastapi==0.120.0\n")
    with pytest.raises(ModelciError) as raised:
        ensure_environment(PYTHON, clashing, tmp_path / "cache", extra=SERVING_RUNTIME)
    message = str(raised.value)
    assert "clashing.txt together with mlserver==1.7.1" in message
    assert "(added for online serving) cannot be installed" in message
    assert "fastapi" in message
    assert not (tmp_path / "cache").exists()


def test_requirements_without_mlflow_are_refused_with_the_fix(tmp_path: Path) -> None:
    requirements = write(tmp_path / "requirements.txt", "six==1.16.0\n")

    with pytest.raises(ModelciError, match=r"does not install mlflow.*add a line"):
        ensure_environment(PYTHON, requirements, tmp_path / "cache")


def test_a_python_version_that_is_not_installed_is_named(tmp_path: Path) -> None:
    requirements = write(tmp_path / "requirements.txt", "mlflow-skinny==3.17.2\n")

    with pytest.raises(ModelciError, match=r'Python 3\.99 \(`python: "3\.99"`'):
        ensure_environment("3.99", requirements, tmp_path / "cache")


def test_a_missing_requirements_file_says_what_to_add(tmp_path: Path) -> None:
    with pytest.raises(ModelciError, match=r"requirements\.txt does not exist.*listing mlflow"):
        ensure_environment(PYTHON, tmp_path / "requirements.txt", tmp_path / "cache")


# --- the environment as an archive in S3 ---------------------------------------------------


@pytest.fixture
def s3_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The S3 server, with its credentials in this process's environment (boto3 reads them)."""
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    return s3


def archives_in(s3: S3Server, name: str) -> Archives:
    return Archives(S3Store(s3.endpoint_url, s3.region), f"s3://{s3.bucket}/{name}/envs")


def archive_case(
    s3: S3Server, tmp_path: Path, name: str, requirements: str
) -> tuple[Archives, Path]:
    """Archives under a prefix of the test's own, and a requirements file."""
    return archives_in(s3, name), write(tmp_path / "requirements.txt", requirements)


def objects(s3: S3Server, name: str) -> list[str]:
    listed = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=f"{name}/envs/")
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_built_once_then_unpacked_on_another_machine(s3_env: S3Server, tmp_path: Path) -> None:
    s3 = s3_env
    archives, requirements = archive_case(
        s3, tmp_path, "built-once", "mlflow-skinny==3.17.2\nsix==1.16.0\n"
    )

    first = ensure_environment(PYTHON, requirements, tmp_path / "runner-a", archives)
    second = ensure_environment(PYTHON, requirements, tmp_path / "runner-b", archives)

    assert (first.how, second.how) == ("built", "unpacked from its archive")
    assert first.key == second.key and first.archive_uri == second.archive_uri
    key = first.key
    assert objects(s3, "built-once") == [
        f"built-once/envs/{key}/environment.tar.gz",
        f"built-once/envs/{key}/requirements.lock",
    ]
    assert installed(second.python, "six") == "six==1.16.0"


def test_the_archive_runs_unpacked_elsewhere_by_a_process_without_build_tools(
    s3_env: S3Server, tmp_path: Path
) -> None:
    s3 = s3_env
    archives, requirements = archive_case(
        s3, tmp_path, "relocated", "mlflow-skinny==3.17.2\nsix==1.16.0\n"
    )
    built = ensure_environment(PYTHON, requirements, tmp_path / "builder", archives)
    elsewhere = tmp_path / "a" / "different" / "place"
    # A process whose PATH has no uv, pip or compiler: only the system's basic tools.
    unpack = (
        "import sys; from pathlib import Path; from modelci.systems.s3 import S3Store;"
        "from modelci.lifecycle.modelenv import unpack_environment;"
        "store = S3Store(sys.argv[1], sys.argv[2]);"
        "unpack_environment(store.get_bytes(sys.argv[3]), Path(sys.argv[4]), key=sys.argv[5],"
        " source=sys.argv[3])"
    )
    arguments = [s3.endpoint_url, s3.region, built.archive_uri, str(elsewhere), built.key]
    clean = {**s3.env, "PATH": "/usr/bin:/bin"}
    subprocess.run([str(VENV_BIN / "python"), "-c", unpack, *arguments], env=clean, check=True)

    result = subprocess.run(
        [str(elsewhere / "bin" / "python"), "-c", "import mlflow, six, sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(elsewhere)


def test_two_jobs_building_the_same_archive_at_once_both_succeed(
    s3_env: S3Server, tmp_path: Path
) -> None:
    s3 = s3_env
    archives, requirements = archive_case(s3, tmp_path, "raced", "mlflow-skinny==3.17.2\n")

    with ThreadPoolExecutor(max_workers=2) as pool:
        runners = [tmp_path / "runner-a", tmp_path / "runner-b"]
        results = list(
            pool.map(
                lambda cache: ensure_environment(PYTHON, requirements, cache, archives), runners
            )
        )

    assert len({r.archive_uri for r in results}) == 1
    assert len(objects(s3, "raced")) == 2  # one archive and its lock
    third = ensure_environment(PYTHON, requirements, tmp_path / "runner-c", archives)
    assert third.how == "unpacked from its archive"
    assert installed(third.python, "mlflow-skinny") == "mlflow-skinny==3.17.2"


def test_a_corrupt_archive_is_refused_and_nothing_is_left(s3_env: S3Server, tmp_path: Path) -> None:
    archives, requirements = archive_case(s3_env, tmp_path, "corrupt", "mlflow-skinny==3.17.2\n")
    key = environment_key(PYTHON, lock_requirements(PYTHON, requirements))
    archives.store.put_bytes(archives.archive_uri(key), b"\x1f\x8b not really gzip")

    with pytest.raises(ModelciError, match=r"environment archive .* is corrupt.*nothing was run"):
        ensure_environment(PYTHON, requirements, tmp_path / "runner", archives)
    assert [p.name for p in (tmp_path / "runner").iterdir()] == [f".{key}.lock"]  # and empty


@pytest.fixture
def store(s3_env: S3Server) -> S3Store:
    return S3Store(s3_env.endpoint_url, s3_env.region)


def test_a_model_logged_with_other_versions_than_its_environment_is_refused(
    s3_env: S3Server, store: S3Store
) -> None:
    from modelci.lifecycle.modelenv import checked_environment

    s3 = s3_env
    base = f"s3://{s3.bucket}/checked/envs/py3.11-{'e' * 20}"
    archive = f"{base}/environment.tar.gz"
    store.put_bytes(archive, b"archive")
    store.put_bytes(f"{base}/requirements.lock", b"numpy==2.2.6\nscikit-learn==1.6.1\n")
    model_dir = f"s3://{s3.bucket}/checked/model"
    tags = {"modelci.env_archive": archive}

    store.put_bytes(f"{model_dir}/requirements.txt", b"mlflow==3.17.2\nscikit-learn==1.6.0\n")
    assert checked_environment(store, tags, model_dir, "churn") == archive  # a patch apart
    store.put_bytes(f"{model_dir}/requirements.txt", b"scikit-learn==1.3.2\nnumpy==2.2.6\n")
    with pytest.raises(ModelciError) as refused:
        checked_environment(store, tags, model_dir, "churn")
    message = str(refused.value)
    assert "scikit-learn 1.3.2 (logged) vs 1.6.1 (environment)" in message
    assert "Nothing was written" in message and "pin the logged versions" in message
    assert checked_environment(store, {}, model_dir, "churn") is None  # trained before archives
    gone = {"modelci.env_archive": archive.replace("e" * 20, "f" * 20)}
    with pytest.raises(ModelciError, match="is gone from S3"):
        checked_environment(store, gone, model_dir, "churn")


def test_an_environments_record_keeps_every_archive_it_was_given_and_is_rewritten_only_on_change(
    s3_env: S3Server, store: S3Store
) -> None:
    from modelci.lifecycle.modelenv import record_archives

    s3 = s3_env
    record = f"s3://{s3.bucket}/recorded/b-feature/env-archives.txt"
    first, second = (
        f"s3://{s3.bucket}/scratch/envs/py3.11-{c * 20}/environment.tar.gz" for c in "ab"
    )

    record_archives(store, record, [first])
    record_archives(store, record, [second])  # a later resolve, whose deploy may still fail
    assert store.get_bytes(record).decode() == f"{first}\n{second}\n"

    key = record.removeprefix(f"s3://{s3.bucket}/")
    written = s3.client().head_object(Bucket=s3.bucket, Key=key)["LastModified"]
    time.sleep(1.1)  # S3 times are whole seconds
    record_archives(store, record, [second, first])
    record_archives(store, record, [])
    assert s3.client().head_object(Bucket=s3.bucket, Key=key)["LastModified"] == written


def test_the_archive_untarred_as_spark_does_is_a_working_environment(
    s3_env: S3Server, tmp_path: Path
) -> None:
    """Spark's `archives` unpack the tar.gz with plain tar and nothing of modelci: the
    SparkApplication's `spark.pyspark.python` (./environment/bin/python) must then be there and
    run the environment's packages, on an image with the builder's Python at the same path."""
    s3 = s3_env
    archives, requirements = archive_case(
        s3, tmp_path, "for-spark", "mlflow-skinny==3.17.2\nsix==1.16.0\n"
    )
    built = ensure_environment(PYTHON, requirements, tmp_path / "builder", archives)
    archive = tmp_path / "environment.tar.gz"
    archive.write_bytes(S3Store(s3.endpoint_url, s3.region).get_bytes(built.archive_uri))
    workdir = tmp_path / "executor"
    (workdir / "environment").mkdir(parents=True)
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(workdir / "environment")], check=True)

    result = subprocess.run(
        ["./environment/bin/python", "-c", "import six, sys; print(six.__version__, sys.prefix)"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1.16.0", str(workdir / "environment")]
