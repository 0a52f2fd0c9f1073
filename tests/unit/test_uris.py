"""Pure parts of the MLflow and S3 adapters: URI parsing and mapping, tags, cheap import."""

import subprocess
import sys

import pytest

from modelci.config.settings import Pipeline
from modelci.config.types import Gate, MetricThreshold
from modelci.errors import ModelciError, redact_url
from modelci.lifecycle.gate import evaluate_gate
from modelci.systems.s3 import parse_s3_uri
from modelci.systems.tracking import (
    GATE_FAILED,
    GATE_PASSED,
    TAG_BRANCH,
    TAG_ENVIRONMENT,
    TAG_GATE,
    TAG_GATE_REASONS,
    LoggedModelUri,
    RegisteredAliasUri,
    RegisteredVersionUri,
    RunArtifactUri,
    StorageUri,
    gate_tags,
    map_artifact_uri,
    parse_model_uri,
    provenance_tags,
)

DEST = "s3://mlops/mlflow-artifacts"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/m-0a1b2c", LoggedModelUri("m-0a1b2c")),
        ("models:/churn/3", RegisteredVersionUri("churn", "3")),
        ("models:/churn@production", RegisteredAliasUri("churn", "production")),
        ("models:/ml.churn-model@b-feature-x", RegisteredAliasUri("ml.churn-model", "b-feature-x")),
        ("runs:/abc123/model", RunArtifactUri("abc123", "model")),
        ("runs:/abc123/nested/dir/", RunArtifactUri("abc123", "nested/dir")),
        ("s3://bucket/path/to/model", StorageUri("s3://bucket/path/to/model")),
        (
            "mlflow-artifacts:/1/models/m-1/artifacts",
            StorageUri("mlflow-artifacts:/1/models/m-1/artifacts"),
        ),
    ],
)
def test_parse_model_uri_recognises_every_form_mlflow_hands_out(uri, expected):
    assert parse_model_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "models:/churn",  # neither version nor alias
        "models:/churn/Production",  # stages are gone in MLflow 3
        "models:/@alias",
        "runs:/abc123",  # no artifact path
        "file:///tmp/model",
        "gs://bucket/model",
        "s3://",
        "churn",
    ],
)
def test_parse_model_uri_rejects_other_forms_listing_supported_ones(uri):
    with pytest.raises(ModelciError, match=r"unsupported model URI .*models:/<name>@<alias>"):
        parse_model_uri(uri)


@pytest.mark.parametrize(
    ("artifact_uri", "expected"),
    [
        ("mlflow-artifacts:/1/models/m-9/artifacts", f"{DEST}/1/models/m-9/artifacts"),
        (
            "mlflow-artifacts://mlflow.example:5000/1/r/artifacts/model",
            f"{DEST}/1/r/artifacts/model",
        ),
        ("mlflow-artifacts:/1/models/m-9/artifacts/", f"{DEST}/1/models/m-9/artifacts"),
        ("s3://other/exp/models/m-9/artifacts/", "s3://other/exp/models/m-9/artifacts"),
    ],
)
def test_map_artifact_uri_gives_the_s3_directory(artifact_uri, expected):
    assert map_artifact_uri(artifact_uri, DEST) == expected
    assert map_artifact_uri(artifact_uri, DEST + "/") == expected


def test_map_artifact_uri_needs_the_destination_for_proxied_artifacts():
    with pytest.raises(ModelciError, match="MODELCI_ARTIFACTS_DESTINATION is not set"):
        map_artifact_uri("mlflow-artifacts:/1/models/m-9/artifacts", "")
    with pytest.raises(ModelciError, match="expected the s3://bucket/prefix"):
        map_artifact_uri("mlflow-artifacts:/1/x", "/var/mlflow")


def test_map_artifact_uri_rejects_storage_kserve_cannot_read_without_leaking_credentials():
    with pytest.raises(ModelciError, match="KServe cannot read") as error:
        map_artifact_uri("https://user:hunter2@files.example/1/model", DEST)
    assert "hunter2" not in str(error.value)


def test_parse_s3_uri():
    assert parse_s3_uri("s3://mlops/a/b/") == ("mlops", "a/b/")
    assert parse_s3_uri("s3://mlops") == ("mlops", "")
    for bad in ("http://mlops/a", "s3:///key", "mlops/a", "s3://b/k?versionId=1"):
        with pytest.raises(ValueError, match="S3 URI"):
            parse_s3_uri(bad)


def test_redact_url_hides_user_and_password_only():
    assert redact_url("http://u:p4ss@s3.local:9000/x") == "http://***@s3.local:9000/x"
    assert redact_url("http://s3.local:9000/x") == "http://s3.local:9000/x"


def test_provenance_tags_come_from_the_pipeline():
    pipeline = Pipeline.from_env(
        {
            "CI_PROJECT_PATH": "ml/churn",
            "CI_COMMIT_REF_NAME": "feature/x",
            "CI_COMMIT_SHA": "a" * 40,
            "CI_PIPELINE_ID": "42",
        }
    )
    tags = provenance_tags(pipeline, "b-feature-x", "churn")
    assert tags[TAG_BRANCH] == "feature/x"
    assert tags[TAG_ENVIRONMENT] == "b-feature-x"
    assert tags["modelci.commit"] == "a" * 40
    assert all(key.startswith("modelci.") for key in tags)


def test_gate_tags_record_verdict_and_failed_checks_within_mlflow_limits():
    gate = Gate(metrics=(MetricThreshold("accuracy", min=0.9), MetricThreshold("f1", min=0.1)))
    failed = gate_tags(evaluate_gate(gate, {"accuracy": 0.5, "f1": 0.5}, None))
    passed = gate_tags(evaluate_gate(gate, {"accuracy": 0.95, "f1": 0.5}, None))
    assert failed[TAG_GATE] == GATE_FAILED
    assert "accuracy >= 0.9" in failed[TAG_GATE_REASONS]
    assert "f1" not in failed[TAG_GATE_REASONS]
    assert passed[TAG_GATE] == GATE_PASSED

    many = Gate(metrics=tuple(MetricThreshold(f"metric_{i:04d}", min=1) for i in range(500)))
    long_reasons = gate_tags(evaluate_gate(many, {}, None))[TAG_GATE_REASONS]
    assert len(long_reasons) <= 5000
    assert long_reasons.endswith("...")


def test_importing_the_adapters_does_not_import_mlflow_or_boto3():
    # CLI start-up pays for mlflow (seconds) and boto3 only in commands that use them.
    code = (
        "import sys, modelci.systems.tracking, modelci.systems.s3, modelci.lifecycle.gate; "
        "print(sorted(m for m in ('mlflow', 'boto3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
