"""S3Store against real SeaweedFS, with credentials from the environment as in a CI job."""

import socket
import time
import uuid

import pytest

from modelci.errors import ModelciError
from modelci.systems.s3 import S3Store
from tests.harness.ports import HOST

CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


@pytest.fixture
def aws_env(s3, monkeypatch, tmp_path):
    """A job environment: the S3 keys in variables, no profile files, no instance metadata."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    return monkeypatch


@pytest.fixture
def store(s3, aws_env):
    return S3Store(s3.endpoint_url, s3.region)


@pytest.fixture
def base(s3):
    """A fresh directory in the bucket for one test."""
    return f"s3://{s3.bucket}/tests/{uuid.uuid4().hex}"


def assert_no_secret(text, s3):
    assert s3.secret_key not in text
    assert s3.access_key not in text


def test_put_get_round_trip_and_exists(store, base, s3):
    payload = bytes(range(256)) * 10
    store.put_bytes(f"{base}/dir/blob.bin", payload)

    assert store.get_bytes(f"{base}/dir/blob.bin") == payload
    raw = s3.client().get_object(Bucket=s3.bucket, Key=f"{base[len('s3://mlops/') :]}/dir/blob.bin")
    assert raw["Body"].read() == payload
    assert store.exists(f"{base}/dir/blob.bin")
    assert store.exists(f"{base}/dir")  # a directory with an object in it
    assert store.exists(f"{base}/dir/")
    assert not store.exists(f"{base}/dir/other.bin")
    assert not store.exists(f"{base}/di")  # a key prefix is not a directory
    assert store.get_bytes_or_none(f"{base}/dir/blob.bin") == payload
    assert store.get_bytes_or_none(f"{base}/dir/other.bin") is None


def test_get_missing_object_names_the_uri(store, base, s3):
    with pytest.raises(ModelciError) as error:
        store.get_bytes(f"{base}/missing.txt")
    message = str(error.value)
    assert f"{base}/missing.txt" in message
    assert s3.endpoint_url in message
    assert_no_secret(message, s3)


def test_delete_prefix_deletes_only_that_directory_and_counts(store, base):
    for key in ("b-x/a.txt", "b-x/sub/b.txt", "b-x/sub/c.txt", "b-x-2/keep.txt", "b-xy.txt"):
        store.put_bytes(f"{base}/{key}", b"x")

    assert store.delete_prefix(f"{base}/b-x") == 3

    assert not store.exists(f"{base}/b-x")
    assert store.get_bytes(f"{base}/b-x-2/keep.txt") == b"x"
    assert store.get_bytes(f"{base}/b-xy.txt") == b"x"
    assert store.delete_prefix(f"{base}/b-x") == 0


def test_delete_prefix_refuses_a_whole_bucket(store, s3):
    with pytest.raises(ModelciError, match="whole bucket"):
        store.delete_prefix(f"s3://{s3.bucket}/")


def test_list_prefixes_gives_immediate_subdirectory_names(store, base):
    for key in ("envs/b-one/code.tgz", "envs/b-two/x/y.txt", "envs/production/z", "envs/file.txt"):
        store.put_bytes(f"{base}/{key}", b"1")

    assert store.list_prefixes(f"{base}/envs") == ["b-one", "b-two", "production"]
    assert store.list_prefixes(f"{base}/envs/") == ["b-one", "b-two", "production"]
    assert store.list_prefixes(f"{base}/nothing-here") == []


def test_download_prefix_recreates_the_tree(store, base, tmp_path):
    files = {"MLmodel": b"flavors: {}\n", "model.skops": b"\x00\x01", "sub/dir/req.txt": b"sk\n"}
    for relative, data in files.items():
        store.put_bytes(f"{base}/model/{relative}", data)
    store.put_bytes(f"{base}/model-other/MLmodel", b"not mine")

    count = store.download_prefix(f"{base}/model", tmp_path / "out")

    assert count == 3
    downloaded = {
        str(path.relative_to(tmp_path / "out")): path.read_bytes()
        for path in (tmp_path / "out").rglob("*")
        if path.is_file()
    }
    assert downloaded == files


def test_download_of_an_empty_prefix_is_an_error(store, base, tmp_path):
    with pytest.raises(ModelciError, match="no objects under"):
        store.download_prefix(f"{base}/empty", tmp_path)


@pytest.mark.parametrize("operation", ["get_bytes", "get_bytes_or_none", "exists", "list_prefixes"])
def test_missing_bucket_is_named(store, s3, operation):
    # (SeaweedFS creates a missing bucket on a write with admin keys, so only reads can tell.)
    with pytest.raises(ModelciError) as error:
        getattr(store, operation)("s3://no-such-bucket-modelci/x.txt")
    message = str(error.value)
    assert "no-such-bucket-modelci" in message
    assert "does not exist" in message
    assert_no_secret(message, s3)


def test_wrong_secret_key_is_reported_without_any_key(s3, aws_env, base):
    wrong = "WRONG" + s3.secret_key[5:]
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    store = S3Store(s3.endpoint_url, s3.region)

    with pytest.raises(ModelciError) as error:
        store.get_bytes(f"{base}/x.txt")
    message = str(error.value)
    assert "AWS_SECRET_ACCESS_KEY" in message
    assert f"s3://{s3.bucket}" in message and s3.endpoint_url in message
    assert wrong not in message
    assert_no_secret(message, s3)


def test_missing_credentials_say_which_variables_to_set(s3, aws_env, base):
    aws_env.delenv("AWS_ACCESS_KEY_ID")
    aws_env.delenv("AWS_SECRET_ACCESS_KEY")
    store = S3Store(s3.endpoint_url, s3.region)

    with pytest.raises(ModelciError, match=r"no S3 credentials found.*AWS_ACCESS_KEY_ID"):
        store.exists(f"{base}/x.txt")


def test_endpoint_down_fails_fast_naming_endpoint_but_not_its_password(aws_env, s3):
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind((HOST, 0))
        port = closed.getsockname()[1]
        store = S3Store(f"http://user:pw-secret@{HOST}:{port}", s3.region, max_attempts=2)
        started = time.monotonic()
        with pytest.raises(ModelciError) as error:
            store.put_bytes(f"s3://{s3.bucket}/x.txt", b"x")
    assert time.monotonic() - started < 10
    message = str(error.value)
    assert f"{HOST}:{port}" in message
    assert "unreachable" in message
    assert "pw-secret" not in message
    assert_no_secret(message, s3)
