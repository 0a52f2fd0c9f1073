"""argocd/: the AppProject and the two ApplicationSets a platform team applies once (feature
environments from the branch every pipeline writes, stands from the protected stands branch).

They must validate against Argo CD's CRD schemas, their generator must find exactly the
config.json files the pipeline writes, and the Application the template makes for one of them
must point at the values.yaml beside it. The template is rendered the way Argo CD renders a
goTemplate ApplicationSet: every string field on its own, by Go's text/template with sprig
(here through Helm's Go engine), with `missingkey=error` enforced on the field chains.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import pytest
import yaml

from modelci.config.naming import Names, names_for
from modelci.render.values import build_app_config, chart_dir
from tests.harness.argocd import (
    generator_params,
    matches_legacy,
    matches_new,
    render_template,
)

ROOT = Path(__file__).resolve().parents[2]
ARGOCD = ROOT / "argocd"
SCHEMAS = ROOT / "tests" / "schemas" / "argocd"  # see tests/schemas/README.md
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")

NAME_CASES = [
    ("ml/churn", "feature/x", "churn", None),
    ("ml/churn", "main", "churn", "production"),
    (
        "a-very-long-group-name/sub/and-a-really-long-project-name",
        "feature/" + "x-" * 120,
        "m",
        None,
    ),
    ("Data.Science/Ünïcode", "Fix/ÜBER_weird..name--", "fraud-detector-v2x", None),
    ("ml/churn", "123-starts-with-digit", "churn", None),
]


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((ARGOCD / name).read_text(encoding="utf-8"))


def schema(kind: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{kind}-v1alpha1.strict.json").read_text(encoding="utf-8"))


def all_names() -> Iterator[Names]:
    for project, branch, model, stand in NAME_CASES:
        yield names_for(project, branch, model, stand=stand)


APPSETS = {"applicationset.yaml": "branches", "applicationset-stands.yaml": "stands"}


@pytest.fixture(scope="module", params=list(APPSETS))
def appset(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


def reads_stands(appset: dict[str, Any]) -> bool:
    return appset["metadata"]["name"] == "modelci-stands"


def test_feature_environments_and_stands_come_from_different_branches() -> None:
    branches, stands = (generator(load(name)) for name in APPSETS)
    assert branches["repoURL"] == stands["repoURL"]
    assert (branches["revision"], stands["revision"]) == ("main", "stands")  # settings' defaults


@pytest.fixture(scope="module")
def project(appset: dict[str, Any]) -> dict[str, Any]:
    """The AppProject the ApplicationSet's Applications belong to."""
    return load("appproject.yaml" if reads_stands(appset) else "appproject-branches.yaml")


def generator(appset: dict[str, Any]) -> dict[str, Any]:
    (only,) = appset["spec"]["generators"]
    return only["git"]


def test_manifests_validate_against_argocd_crd_schemas(
    appset: dict[str, Any], project: dict[str, Any]
) -> None:
    jsonschema.Draft7Validator(schema("applicationset")).validate(appset)
    jsonschema.Draft7Validator(schema("appproject")).validate(project)


def test_safety_settings(appset: dict[str, Any]) -> None:
    spec = appset["spec"]
    assert spec["goTemplate"] is True
    assert "missingkey=error" in spec["goTemplateOptions"]
    # A removed directory must remove its Application and, through the finalizer, the model.
    assert spec["syncPolicy"]["preserveResourcesOnDeletion"] is False
    assert spec["syncPolicy"]["applicationsSync"] == "sync"
    template = spec["template"]
    assert "resources-finalizer.argocd.argoproj.io" in template["metadata"]["finalizers"]
    assert template["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    # A feature environment's values can never take over a stand's InferenceService.
    assert "FailOnSharedResource=true" in template["spec"]["syncPolicy"]["syncOptions"]


def test_project_admits_the_sources_destinations_and_kinds_the_template_uses(
    appset: dict[str, Any], project: dict[str, Any]
) -> None:
    template_spec = appset["spec"]["template"]["spec"]
    assert template_spec["project"] == project["metadata"]["name"]
    repos = {source["repoURL"] for source in template_spec["sources"]}
    assert repos | {generator(appset)["repoURL"]} <= set(project["spec"]["sourceRepos"])
    (destination,) = project["spec"]["destinations"]
    assert destination["server"] == template_spec["destination"]["server"]
    for names in all_names():
        mine = names.is_stand == reads_stands(appset)
        assert fnmatch.fnmatchcase(names.namespace, destination["namespace"]) == mine
    allowed = {(k["group"], k["kind"]) for k in project["spec"]["namespaceResourceWhitelist"]}
    allowed |= {(k["group"], k["kind"]) for k in project["spec"]["clusterResourceWhitelist"]}
    assert rendered_chart_kinds() <= allowed


def rendered_chart_kinds() -> set[tuple[str, str]]:
    """(group, kind) of every object the chart renders with everything switched on."""
    values = yaml.safe_load((chart_dir() / "ci" / "gpu-values.yaml").read_text(encoding="utf-8"))
    assert values["namespace"]["create"] and values["serviceAccount"]["create"]
    with helm.Chart.load(chart_dir()) as chart:
        manifests = chart.render(values, name="m", namespace="ml-demo")
    kinds = set()
    for path, text in manifests.items():
        if path.endswith(".txt"):
            continue
        for obj in yaml.safe_load_all(text):
            if obj:
                group = obj["apiVersion"].rpartition("/")[0]
                kinds.add((group, obj["kind"]))
    return kinds


# --- which files the generator reads -------------------------------------------------------


@pytest.mark.parametrize("matches", [matches_legacy, matches_new])
def test_generator_finds_exactly_the_config_files_the_pipeline_writes(
    appset: dict[str, Any], matches: Any
) -> None:
    (file_item,) = generator(appset)["files"]
    pattern = file_item["path"]
    for names in all_names():
        # The feature environments' ApplicationSet never picks up a stand, whatever a feature
        # branch writes; on the protected stands branch, only stand jobs write.
        expected = reads_stands(appset) or not names.is_stand
        assert matches(pattern, names.app_config_path) == expected
        assert not matches(pattern, names.values_path)
        assert not matches(pattern, names.dag_path("training"))
    assert not matches(pattern, "README.md")
    assert not matches(pattern, "environments/config.json")


def test_new_globbing_ignores_config_files_below_a_model_directory(appset: dict[str, Any]) -> None:
    (file_item,) = generator(appset)["files"]
    nested = "environments/p/b-e/m/extra/config.json"
    assert not matches_new(file_item["path"], nested)
    assert matches_legacy(file_item["path"], nested)  # why the README advises new globbing


def test_generator_and_values_source_read_the_same_repo_and_branch(appset: dict[str, Any]) -> None:
    git = generator(appset)
    (values_source,) = [s for s in appset["spec"]["template"]["spec"]["sources"] if "ref" in s]
    assert values_source["repoURL"] == git["repoURL"]
    assert values_source["targetRevision"] == git["revision"]


# --- rendering the template for one config.json ---------------------------------------------


@pytest.mark.parametrize("names", list(all_names()), ids=lambda n: n.environment)
def test_template_makes_the_application_for_a_config_file(names: Names, tmp_path: Path) -> None:
    # Each ApplicationSet reads its own side's files only (the generator test shows it).
    appset = load("applicationset-stands.yaml" if names.is_stand else "applicationset.yaml")
    content = json.loads(json.dumps(build_app_config(names)))  # as written to config.json
    params = generator_params(names.app_config_path, content)
    rendered = render_template(appset["spec"]["template"], params, tmp_path)
    application = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {**rendered["metadata"], "namespace": appset["metadata"]["namespace"]},
        "spec": rendered["spec"],
    }
    jsonschema.Draft7Validator(schema("application")).validate(application)

    metadata, spec = application["metadata"], application["spec"]
    assert metadata["name"] == names.app_name
    assert DNS_LABEL.fullmatch(metadata["name"]) and len(metadata["name"]) <= 63
    for value in metadata["labels"].values():
        assert LABEL_VALUE.fullmatch(value) and 0 < len(value) <= 63
    assert spec["destination"]["namespace"] == names.namespace

    chart_source, values_source = spec["sources"]
    assert chart_source["path"] == "charts/kserve-model"
    assert values_source["ref"] == "values"
    (values_file,) = chart_source["helm"]["valueFiles"]
    assert values_file.startswith(f"${values_source['ref']}/")
    beside_config = posixpath.join(posixpath.dirname(names.app_config_path), "values.yaml")
    assert values_file == f"$values/{beside_config}" == f"$values/{names.values_path}"
    helm.validate_release_name(chart_source["helm"]["releaseName"])
    assert chart_source["helm"]["releaseName"] == names.model


def test_a_stands_config_file_without_a_key_the_template_needs_is_an_error(
    tmp_path: Path,
) -> None:
    names = names_for("ml/churn", "main", "churn", stand="production")
    content = build_app_config(names)
    del content["namespace"]
    with pytest.raises(KeyError, match=r"\.namespace"):
        render_template(
            load("applicationset-stands.yaml")["spec"]["template"],
            generator_params(names.app_config_path, content),
            tmp_path,
        )


def test_a_branch_config_file_cannot_name_a_stand_or_another_project(tmp_path: Path) -> None:
    """Any developer writes the branches' config.json: whatever it says, the Application keeps
    the name, namespace, labels and values file of the path it comes from, and the branches'
    project admits no stand namespace (Argo CD refuses to sync any other destination)."""
    names = names_for("ml/churn", "feature/x", "churn")
    stand = names_for("ml/churn", "main", "churn", stand="production")
    other = names_for("ml/other", "feature/x", "churn")
    hostile = {
        "appName": stand.app_name,
        "namespace": stand.namespace,
        "project": other.project_slug,
        "environment": "production",
        "model": "churn",
        "valuesFile": "../../../../" + stand.values_path,
    }
    template = load("applicationset.yaml")["spec"]["template"]
    rendered = render_template(template, generator_params(names.app_config_path, hostile), tmp_path)
    assert rendered["metadata"]["name"] == names.app_name != stand.app_name
    assert rendered["spec"]["destination"]["namespace"] == names.namespace
    assert rendered["metadata"]["labels"] == {
        "modelci.io/project": names.project_slug,
        "modelci.io/environment": names.environment,
        "modelci.io/model": "churn",
    }
    (values_file,) = rendered["spec"]["sources"][0]["helm"]["valueFiles"]
    assert values_file == f"$values/{names.values_path}"
    (destination,) = load("appproject-branches.yaml")["spec"]["destinations"]
    for namespace in (stand.namespace, names_for("x/y", "main", "m", stand="staging").namespace):
        assert not fnmatch.fnmatchcase(namespace, destination["namespace"])
    assert fnmatch.fnmatchcase(names.namespace, destination["namespace"])


def test_placeholders_are_marked_for_the_platform_team() -> None:
    for name in (*APPSETS, "appproject.yaml", "appproject-branches.yaml"):
        text = (ARGOCD / name).read_text(encoding="utf-8")
        for line in text.splitlines():
            if "example.com" in line and not line.lstrip().startswith("#"):
                assert "PLACEHOLDER" in line or "PLACEHOLDER" in previous_comment(text, line)


def previous_comment(text: str, line: str) -> str:
    lines = text.splitlines()
    index = lines.index(line)
    return lines[index - 1] if index else ""
