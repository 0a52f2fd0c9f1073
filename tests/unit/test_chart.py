"""charts/kserve-model under real Helm (helm_python binds Helm's Go SDK): every example and every
value set the pipeline builds lints clean, renders objects that KServe's CRD schema and
Kubernetes' own schemas accept, and values KServe would reject are refused before rendering,
by Helm and by modelci.render.values.validate_values alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from modelci.config.naming import Names, names_for
from modelci.config.settings import Pipeline, Settings
from modelci.config.types import Gate, Model, Online, Resources, Train
from modelci.errors import ConfigError
from modelci.render.values import build_values, chart_dir, model_api_url, validate_values

CHART = chart_dir()
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "tests" / "schemas"  # upstream schemas kept in the repo: see its README.md
ISVC_SCHEMA = json.loads((SCHEMAS / "kserve/inferenceservice-v1beta1.strict.json").read_text())
KUBE_VERSION = kubernetes_validate.latest_version()
NAMESPACE = "ml-demo"
RENDERED_KINDS = {"InferenceService", "ServiceAccount", "Namespace"}


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def load_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def render_objects(
    chart: helm.Chart, values: dict[str, Any], *, release: str, namespace: str
) -> tuple[list[dict[str, Any]], str]:
    """The rendered Kubernetes objects and NOTES.txt."""
    manifests = chart.render(values, name=release, namespace=namespace)
    notes = manifests.pop(f"{CHART.name}/templates/NOTES.txt", "")
    objects = [
        document
        for text in manifests.values()
        for document in yaml.safe_load_all(text)
        if document is not None
    ]
    return objects, notes


def assert_valid_objects(objects: list[dict[str, Any]], values: dict[str, Any]) -> None:
    kinds = [obj["kind"] for obj in objects]
    assert set(kinds) <= RENDERED_KINDS
    assert kinds.count("InferenceService") == 1
    for obj in objects:
        if obj["kind"] == "InferenceService":
            jsonschema.Draft7Validator(ISVC_SCHEMA).validate(obj)
            assert_serves_mlflow(obj, values)
        else:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        if obj["kind"] == "ServiceAccount":
            assert_service_account(obj, values)


def assert_serves_mlflow(isvc: dict[str, Any], values: dict[str, Any]) -> None:
    predictor = isvc["spec"]["predictor"]
    model = predictor["model"]
    assert isvc["metadata"]["name"] == values["name"]
    assert model["modelFormat"] == {"name": "mlflow"}  # no version: MLflow 3 models
    assert model["protocolVersion"] == "v2"
    assert model["storageUri"] == values["storageUri"]
    assert predictor["minReplicas"] == values["minReplicas"]
    assert predictor["maxReplicas"] == values["maxReplicas"]
    annotations = isvc["metadata"]["annotations"]
    assert annotations["serving.kserve.io/deploymentMode"] == values["deploymentMode"]
    limits = model["resources"]["limits"]
    assert limits.get("nvidia.com/gpu") == (str(values["gpu"]) if values["gpu"] else None)
    for field, annotation in (("branch", "branch"), ("runId", "mlflow-run-id")):
        expected = values["traceability"].get(field)
        assert annotations.get(f"modelci.io/{annotation}") == (expected or None)
    assert_runs_in_environment(model, values)


def assert_runs_in_environment(model: dict[str, Any], values: dict[str, Any]) -> None:
    """With an environment archive the container runs `modelci serve` from the runtime image,
    with the S3 settings it fetches the archive with; without one, KServe's runtime as it is."""
    environment = values.get("environment", {}).get("archive")
    if not environment:
        assert not {"image", "command", "args", "env", "envFrom"} & model.keys()
        return
    assert model["image"] == values["environment"]["image"]
    assert model["command"] == ["modelci", "serve"]
    assert model["args"] == ["--env", environment, "--name", values["name"]]
    assert model["envFrom"] == [{"secretRef": {"name": values["s3"]["secretName"]}}]
    env = {item["name"]: item["value"] for item in model["env"]}
    scheme = "https" if values["s3"]["useHttps"] else "http"
    endpoint = values["s3"]["endpoint"]
    assert env.get("MLFLOW_S3_ENDPOINT_URL") == (f"{scheme}://{endpoint}" if endpoint else None)
    assert env["AWS_DEFAULT_REGION"] == values["s3"]["region"]


def assert_service_account(account: dict[str, Any], values: dict[str, Any]) -> None:
    annotations = account["metadata"]["annotations"]
    assert annotations["serving.kserve.io/s3-usehttps"] == (
        "1" if values["s3"]["useHttps"] else "0"
    )
    assert annotations.get("serving.kserve.io/s3-endpoint") == (values["s3"]["endpoint"] or None)
    assert account["secrets"] == [{"name": values["s3"]["secretName"]}]


def assert_lints_clean(values: dict[str, Any], namespace: str) -> None:
    report = helm.lint(CHART, values, namespace=namespace, strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == [] and report["errors"] == []


def test_chart_metadata() -> None:
    metadata = load_yaml(CHART / "Chart.yaml")
    assert (metadata["apiVersion"], metadata["name"], metadata["version"]) == (
        "v2",
        "kserve-model",
        "0.1.0",
    )


def test_there_is_an_example_per_serving_variant() -> None:
    variants = {load_yaml(path)["deploymentMode"] for path in CI_VALUES}
    assert {"RawDeployment", "Serverless"} <= variants
    assert any(load_yaml(path)["gpu"] > 0 for path in CI_VALUES)
    assert any(load_yaml(path)["minReplicas"] == 0 for path in CI_VALUES)
    assert any("environment" in load_yaml(path) for path in CI_VALUES)


@pytest.mark.parametrize("path", CI_VALUES, ids=lambda p: p.name)
def test_example_values_lint_render_and_validate(chart: helm.Chart, path: Path) -> None:
    values = chart.merge_values(load_yaml(path))
    validate_values(values, str(path))
    assert_lints_clean(values, NAMESPACE)
    objects, notes = render_objects(chart, values, release="m", namespace=NAMESPACE)
    assert_valid_objects(objects, values)
    namespaces = [obj for obj in objects if obj["kind"] == "Namespace"]
    assert len(namespaces) == (1 if values["namespace"]["create"] else 0)
    assert f"/v2/models/{values['name']}/infer" in notes


# --- values the pipeline builds ------------------------------------------------------------

LONG_BRANCH = "feature/" + "a-really-long-branch-name-for-an-experiment-" * 6
BRANCHES = [
    "feature/x",
    "main",
    LONG_BRANCH,
    "Fix/ÜBER_weird..name--",
    "123-starts-with-a-digit",
    "fix/\u2028name: hacked",
    'it\'s "quoted" \\ # not-a-comment',
]
PROJECTS = ["ml/churn", "a-very-long-group-name/with-a-subgroup/and-a-really-long-project-name"]
MODELS = {
    "cpu": Online(enabled=True, min_replicas=1, max_replicas=3, resources=Resources("500m", "1Gi")),
    "serverless": Online(
        enabled=True, min_replicas=0, max_replicas=2, resources=Resources("250m", "512Mi")
    ),
    "gpu": Online(
        enabled=True, min_replicas=1, max_replicas=1, resources=Resources("4", "16Gi", 2)
    ),
}


ARCHIVE = "s3://mlops/modelci-scratch/envs/py3.11-0123456789abcdef0123/environment.tar.gz"
IMAGE = "registry.example.com/platform/modelci-runtime:1.4.0"


def built_values(
    project: str,
    branch: str,
    model_name: str,
    online: Online,
    *,
    stand: str | None = None,
    environment_uri: str = "",
    image: str = "",
) -> tuple[dict[str, Any], Names, Settings]:
    names = names_for(project, branch, model_name, stand=stand)
    settings = Settings.from_env(
        {
            "MODELCI_INGRESS_DOMAIN": "models.example.com",
            "MODELCI_CLUSTER_S3_ENDPOINT": "http://seaweedfs.storage:8333",
        }
    )
    pipeline = Pipeline.from_env(
        {
            "CI_PROJECT_PATH": project,
            "CI_COMMIT_REF_NAME": branch,
            "CI_COMMIT_SHA": "4f1c2a9e8b7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b",
            "CI_PIPELINE_URL": "https://gitlab.example.com/p/-/pipelines/1",
        }
    )
    model = Model(
        name=model_name,
        flavor="sklearn",
        train=Train(entrypoint="train.py"),
        gate=Gate(metrics=()),
        online=online,
    )
    values = build_values(
        model,
        names,
        settings,
        storage_uri="s3://mlops/mlflow-artifacts/3/models/m-7f3a/artifacts",
        run_id="0123456789abcdef0123456789abcdef",
        model_version="12",
        pipeline=pipeline,
        environment_uri=environment_uri,
        image=image,
    )
    return values, names, settings


# Every branch with the short project; the longest and oddest branches with the long one too.
PAIRS = [(PROJECTS[0], branch) for branch in BRANCHES] + [
    (PROJECTS[1], branch) for branch in (LONG_BRANCH, BRANCHES[3], BRANCHES[5])
]
CASES = [
    pytest.param(project, branch, model, variant, id=f"{variant}-{index}")
    for index, (project, branch) in enumerate(PAIRS)
    for model, variant in [("churn", "cpu"), ("fraud-detector-v2x", "serverless"), ("m", "gpu")]
]


@pytest.mark.parametrize(("project", "branch", "model", "variant"), CASES)
def test_built_values_render_objects_kserve_accepts(
    chart: helm.Chart, project: str, branch: str, model: str, variant: str
) -> None:
    values, names, settings = built_values(project, branch, model, MODELS[variant])
    validate_values(values, names.values_path)
    chart.validate_schema(values)
    # Argo CD renders with the release name and namespace the ApplicationSet gives.
    objects, notes = render_objects(chart, values, release=names.model, namespace=names.namespace)
    assert_valid_objects(objects, values)
    isvc = next(obj for obj in objects if obj["kind"] == "InferenceService")
    assert isvc["metadata"]["namespace"] == names.namespace
    assert isvc["metadata"]["annotations"]["modelci.io/branch"] == values["traceability"]["branch"]
    assert model_api_url(names, settings) in notes.split()


def test_built_values_with_an_environment_archive_run_the_server_from_it(
    chart: helm.Chart,
) -> None:
    values, names, _ = built_values(
        "ml/churn", "feature/x", "churn", MODELS["cpu"], environment_uri=ARCHIVE, image=IMAGE
    )
    validate_values(values, names.values_path)
    objects, _ = render_objects(chart, values, release=names.model, namespace=names.namespace)
    assert_valid_objects(objects, values)
    isvc = next(obj for obj in objects if obj["kind"] == "InferenceService")
    model = isvc["spec"]["predictor"]["model"]
    assert (model["image"], model["args"][1]) == (IMAGE, ARCHIVE)
    assert model["env"][0] == {
        "name": "MLFLOW_S3_ENDPOINT_URL",
        "value": "http://seaweedfs.storage:8333",
    }


@pytest.mark.parametrize("variant", sorted(MODELS))
def test_built_values_for_a_stand_lint_clean(variant: str) -> None:
    values, names, _ = built_values(
        "ml/churn", "main", "churn", MODELS[variant], stand="production"
    )
    assert_lints_clean(values, names.namespace)


# --- refusals -------------------------------------------------------------------------------

BAD_CHANGES = {
    "long name": ({"name": "m" * 41}, "name"),
    "leading digit": ({"name": "1churn"}, "name"),
    "no storageUri": ({"storageUri": None}, "storageUri"),
    "empty storageUri": ({"storageUri": ""}, "storageUri"),
    "runs uri": ({"storageUri": "runs:/abc/model"}, "storageUri"),
    "negative replicas": ({"minReplicas": -1}, "minReplicas"),
    "raw scale to zero": ({"minReplicas": 0, "deploymentMode": "RawDeployment"}, "minReplicas"),
    "float quantity": ({"resources": {"requests": {"cpu": 0.5}}}, "resources.requests.cpu"),
    "bad quantity": ({"resources": {"limits": {"memory": "2 GB"}}}, "resources.limits.memory"),
    "unknown mode": ({"deploymentMode": "Kubernetes"}, "deploymentMode"),
    "typo": ({"minReplica": 1}, "minReplica"),
    "secret value": ({"s3": {"accessKey": "AKIA..."}}, "s3.accessKey"),
    "archive without image": (
        {"environment": {"archive": "s3://mlops/envs/py3.11-ab/environment.tar.gz", "image": ""}},
        "environment.image",
    ),
    "archive not a tar.gz": (
        {"environment": {"archive": "s3://mlops/envs/py3.11-ab/env.zip", "image": "img:1"}},
        "environment.archive",
    ),
}


def _coalesce(chart: helm.Chart, base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    return chart.merge_values(_deep_merge(base, change))


def _deep_merge(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = value
    return result


@pytest.mark.parametrize(("change", "field"), BAD_CHANGES.values(), ids=BAD_CHANGES.keys())
def test_values_kserve_would_reject_are_refused_by_helm_and_modelci(
    chart: helm.Chart, change: dict[str, Any], field: str
) -> None:
    values = _coalesce(chart, load_yaml(CHART / "ci" / "cpu-raw-values.yaml"), change)
    with pytest.raises(helm.HelmValuesError) as helm_error:
        chart.validate_schema(values)
    assert "/" + field.split(".")[0] in str(helm_error.value) or field in str(helm_error.value)
    with pytest.raises(helm.HelmError):
        chart.render(values, name="m", namespace=NAMESPACE)
    with pytest.raises(ConfigError) as modelci_error:
        validate_values(values, "values.yaml")
    assert field in {problem.field for problem in modelci_error.value.problems}


def test_min_above_max_replicas_fails_render_and_validation(chart: helm.Chart) -> None:
    values = _coalesce(
        chart, load_yaml(CHART / "ci" / "cpu-raw-values.yaml"), {"minReplicas": 3, "maxReplicas": 2}
    )
    with pytest.raises(helm.HelmRenderError, match="must not exceed maxReplicas"):
        chart.render(values, name="m", namespace=NAMESPACE)
    with pytest.raises(ConfigError) as error:
        validate_values(values, "values.yaml")
    assert [problem.field for problem in error.value.problems] == ["maxReplicas"]


def test_chart_defaults_alone_do_not_deploy(chart: helm.Chart) -> None:
    # name and storageUri must come from the pipeline; defaults never deploy an empty model.
    with pytest.raises(helm.HelmValuesError, match="storageUri"):
        chart.validate_schema({})
