"""Helm values for charts/kserve-model: built from config and names, refused when bad with the
field named, and rewritten in the GitOps repo without losing what a platform engineer added.

YAML text is read back with Helm's own Go parser (helm_python.values_from_yaml), the parser
Argo CD's Helm uses, not only with the Python library that wrote it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import helm_python as helm
import pytest
import yaml as pyyaml
from ruamel.yaml import YAML

from modelci.config.naming import Names, names_for
from modelci.config.settings import Pipeline, Settings
from modelci.config.types import Gate, Model, Online, Resources, Train
from modelci.errors import ConfigError, ModelciError
from modelci.render.values import (
    HEADER_PREFIX,
    build_app_config,
    build_values,
    model_api_url,
    update_values_text,
    validate_values,
    values_header,
)

PROJECT = "ml/churn"
BRANCH = "feature/x"
STORAGE_URI = "s3://mlops/mlflow-artifacts/1/models/m-0a1b2c3d4e5f/artifacts"
RUN_ID = "0123456789abcdef0123456789abcdef"
SOURCE = "environments/ml-churn/b-feature-x/churn/values.yaml"


def make_model(min_replicas: int = 1, max_replicas: int = 2, gpu: int = 0) -> Model:
    return Model(
        name="churn",
        flavor="sklearn",
        train=Train(entrypoint="train.py"),
        gate=Gate(metrics=()),
        online=Online(
            enabled=True,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            resources=Resources(cpu="500m", memory="1Gi", gpu=gpu),
        ),
    )


def make_settings(**env: str) -> Settings:
    base = {
        "MODELCI_INGRESS_DOMAIN": "models.example.com",
        "MODELCI_URL_SCHEME": "https",
        "MODELCI_CLUSTER_S3_ENDPOINT": "http://seaweedfs.storage:8333",
        "MODELCI_CLUSTER_S3_SECRET": "modelci-s3",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    base.update(env)
    return Settings.from_env(base)


def make_pipeline(branch: str = BRANCH) -> Pipeline:
    return Pipeline.from_env(
        {
            "CI_PROJECT_PATH": PROJECT,
            "CI_COMMIT_REF_NAME": branch,
            "CI_COMMIT_SHA": "4f1c2a9e8b7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b",
            "CI_PIPELINE_ID": "1234",
            "CI_PIPELINE_URL": "https://gitlab.example.com/ml/churn/-/pipelines/1234",
        }
    )


def make_values(
    model: Model | None = None, branch: str = BRANCH, settings: Settings | None = None
) -> tuple[dict[str, Any], Names]:
    names = names_for(PROJECT, branch, "churn")
    values = build_values(
        model or make_model(),
        names,
        settings or make_settings(),
        storage_uri=STORAGE_URI,
        run_id=RUN_ID,
        model_version="3",
        pipeline=make_pipeline(branch),
    )
    return values, names


def problems_of(values: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        validate_values(values, SOURCE)
    problems: dict[str, str] = {}
    for problem in caught.value.problems:
        assert problem.file == SOURCE
        problems[problem.field] = " | ".join(
            filter(None, [problems.get(problem.field), problem.message])
        )
    return problems


# --- build_values ------------------------------------------------------------------------


def test_built_values_carry_the_model_names_and_provenance() -> None:
    values, names = make_values()
    validate_values(values, SOURCE)
    assert values["name"] == names.k8s_name
    assert values["storageUri"] == STORAGE_URI
    assert (values["minReplicas"], values["maxReplicas"]) == (1, 2)
    assert values["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert values["resources"]["limits"] == {"cpu": "500m", "memory": "1Gi"}
    assert values["namespace"] == {"create": False}
    assert values["traceability"]["branch"] == BRANCH
    assert values["traceability"]["environment"] == names.environment
    assert values["traceability"]["runId"] == RUN_ID
    assert values["traceability"]["modelUri"] == f"models:/{names.registered_model}/3"


@pytest.mark.parametrize(
    ("min_replicas", "mode"), [(0, "Serverless"), (1, "RawDeployment"), (3, "RawDeployment")]
)
def test_scale_to_zero_selects_serverless(min_replicas: int, mode: str) -> None:
    values, _ = make_values(make_model(min_replicas=min_replicas, max_replicas=4))
    validate_values(values, SOURCE)
    assert values["deploymentMode"] == mode


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://seaweedfs.storage:8333", ("seaweedfs.storage:8333", False)),
        ("https://minio.example.com/", ("minio.example.com", True)),
        ("s3.eu-west-1.amazonaws.com", ("s3.eu-west-1.amazonaws.com", True)),
        ("", ("", True)),
    ],
)
def test_s3_endpoint_is_split_into_host_and_https_flag(
    endpoint: str, expected: tuple[str, bool]
) -> None:
    values, _ = make_values(settings=make_settings(MODELCI_CLUSTER_S3_ENDPOINT=endpoint))
    validate_values(values, SOURCE)
    assert (values["s3"]["endpoint"], values["s3"]["useHttps"]) == expected


def test_model_version_absent_leaves_version_and_uri_empty() -> None:
    names = names_for(PROJECT, BRANCH, "churn")
    values = build_values(
        make_model(),
        names,
        make_settings(),
        storage_uri=STORAGE_URI,
        run_id=RUN_ID,
        model_version=None,
        pipeline=make_pipeline(),
    )
    validate_values(values, SOURCE)
    assert values["traceability"]["modelVersion"] == ""
    assert values["traceability"]["modelUri"] == ""


def test_undecodable_branch_bytes_become_replacement_characters() -> None:
    values, _ = make_values(branch="feature/\udcff-bytes")
    assert values["traceability"]["branch"] == "feature/\ufffd-bytes"
    text = update_values_text(None, values, "h")
    assert helm.values_from_yaml(text)["traceability"]["branch"] == "feature/\ufffd-bytes"


def test_app_config_names_the_application_and_the_values_file_beside_it() -> None:
    names = names_for(PROJECT, BRANCH, "churn")
    config = build_app_config(names)
    assert config == {
        "appName": names.app_name,
        "namespace": names.namespace,
        "project": names.project_slug,
        "environment": names.environment,
        "model": "churn",
        "valuesFile": "values.yaml",
    }
    assert json.loads(json.dumps(config)) == config


def test_model_api_url_follows_kserve_default_domain_template() -> None:
    names = names_for(PROJECT, BRANCH, "churn")
    url = urlsplit(model_api_url(names, make_settings()))
    assert url.scheme == "https"
    assert url.hostname == f"{names.k8s_name}-{names.namespace}.models.example.com"
    assert url.path == f"/v2/models/{names.k8s_name}/infer"
    assert len(url.hostname.split(".")[0]) <= 63


# --- validate_values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "hint"),
    [
        ({"name": "m" * 41}, "name", "at most 40"),
        ({"name": "1churn"}, "name", "starting with a letter"),
        ({"name": "Churn"}, "name", "lowercase"),
        ({"storageUri": ""}, "storageUri", "s3://"),
        ({"storageUri": "models:/churn/3"}, "storageUri", "s3://"),
        ({"minReplicas": -1}, "minReplicas", "0 or more"),
        ({"maxReplicas": 0}, "maxReplicas", "1 or more"),
        ({"deploymentMode": "Knativ"}, "deploymentMode", "RawDeployment or Serverless"),
        ({"gpu": -2}, "gpu", "0 or more"),
        ({"nmae": "churn"}, "nmae", "unknown key"),
    ],
)
def test_bad_values_are_refused_naming_the_field(
    change: dict[str, Any], field: str, hint: str
) -> None:
    values, _ = make_values()
    problems = problems_of({**values, **change})
    assert field in problems
    assert hint in problems[field]


def test_missing_storage_uri_is_named() -> None:
    values, _ = make_values()
    del values["storageUri"]
    assert "is missing" in problems_of(values)["storageUri"]


def test_quantities_must_be_strings() -> None:
    values, _ = make_values()
    values["resources"]["requests"]["cpu"] = 0.5
    values["resources"]["limits"]["memory"] = "lots"
    problems = problems_of(values)
    assert "string" in problems["resources.requests.cpu"]
    assert "quantity" in problems["resources.limits.memory"]


def test_typo_in_nested_key_is_named() -> None:
    values, _ = make_values()
    values["s3"]["endpiont"] = values["s3"].pop("endpoint")
    problems = problems_of(values)
    assert "unknown key" in problems["s3.endpiont"]
    assert "is missing" in problems["s3.endpoint"]


def test_raw_deployment_cannot_scale_to_zero() -> None:
    values, _ = make_values()
    problems = problems_of({**values, "deploymentMode": "RawDeployment", "minReplicas": 0})
    assert "Serverless" in problems["minReplicas"]


def test_min_replicas_above_max_is_refused() -> None:
    values, _ = make_values()
    problems = problems_of({**values, "minReplicas": 3, "maxReplicas": 2})
    assert "minReplicas" in problems["maxReplicas"]


def test_every_problem_is_reported_at_once() -> None:
    values, _ = make_values()
    problems = problems_of({**values, "name": "9", "minReplicas": -1, "gpu": "one"})
    assert {"name", "minReplicas", "gpu"} <= set(problems)


# --- update_values_text ------------------------------------------------------------------


def header_for(branch: str = BRANCH) -> str:
    return values_header(make_pipeline(branch), names_for(PROJECT, branch, "churn"))


def comment_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(HEADER_PREFIX)]


def test_new_file_reads_back_as_the_values_in_go_and_python() -> None:
    values, _ = make_values()
    text = update_values_text(None, values, header_for())
    assert helm.values_from_yaml(text) == values
    assert YAML(typ="safe").load(text) == values
    assert text.startswith(HEADER_PREFIX)
    assert any(BRANCH in line for line in comment_lines(text))


def test_platform_engineer_comments_and_keys_survive_an_update() -> None:
    values, _ = make_values()
    first = update_values_text(None, values, header_for())
    edited = (
        "# Platform: this file is reviewed by the ML platform team\n"
        + first.replace(
            "gpu: 0\n", "# GPU quota approved in PLAT-42\ngpu: 0  # keep at 0 until then\n"
        )
        + "nodeSelector:\n  pool: inference  # dedicated nodes\n"
    )
    assert "GPU quota" in edited
    new_values = {**values, "storageUri": "s3://mlops/other/models/m-1/artifacts"}
    new_values["maxReplicas"] = 5
    updated = update_values_text(edited, new_values, header_for())

    for kept in (
        "# Platform: this file is reviewed by the ML platform team",
        "# GPU quota approved in PLAT-42",
        "# keep at 0 until then",
        "pool: inference  # dedicated nodes",
    ):
        assert kept in updated
    parsed = helm.values_from_yaml(updated)
    assert parsed == {**new_values, "nodeSelector": {"pool": "inference"}}
    assert len(comment_lines(updated)) == len(comment_lines(first))  # header replaced, not added
    assert update_values_text(updated, new_values, header_for()) == updated  # re-run: no change


def test_product_owned_nested_keys_are_replaced_whole() -> None:
    values, _ = make_values()
    stale = update_values_text(None, {**values, "s3": {**values["s3"], "old": "x"}}, "h")
    updated = update_values_text(stale, values, "h")
    assert "old" not in helm.values_from_yaml(updated)["s3"]


@pytest.mark.parametrize(
    "branch",
    [
        "fix/\u2028injected: true",
        "fix/\u2029nodeSelector: {pool: evil}",
        "fix/\x85tolerations: []",
        "fix/\ufeffbom",
        "fix/\u202ebidi",
        'fix/it\'s "quoted" \\ # not: a comment',
    ],
)
def test_branch_names_cannot_break_out_of_the_header_or_their_value(branch: str) -> None:
    values, _ = make_values(branch=branch)
    text = update_values_text(None, values, header_for(branch))
    header = [line for line in text.split("\n") if "fix/" in line and "branch" in line]
    assert header and all(line.startswith(HEADER_PREFIX) for line in header[:1])
    # Parsers differ on NEL/LS/PS (YAML 1.1 and libyaml ports call them line breaks): ask two.
    for parsed in (helm.values_from_yaml(text), pyyaml.safe_load(text)):
        assert parsed == values
        assert parsed["traceability"]["branch"] == branch


def test_header_lines_are_all_comments_even_with_embedded_newlines() -> None:
    values, _ = make_values()
    text = update_values_text(None, values, "line one\ninjected: 1\r\nother: 2\u2028third: 3")
    assert text.splitlines()[:3] == [
        f"{HEADER_PREFIX}line one",
        f"{HEADER_PREFIX}injected: 1\\r",
        f"{HEADER_PREFIX}other: 2\\u2028third: 3",
    ]
    assert helm.values_from_yaml(text) == values


def test_broken_existing_file_is_reported_not_overwritten() -> None:
    values, _ = make_values()
    with pytest.raises(ModelciError, match="not valid YAML"):
        update_values_text("name: [unclosed\n", values, "h")
    with pytest.raises(ModelciError, match="not a mapping"):
        update_values_text("- a\n- b\n", values, "h")
