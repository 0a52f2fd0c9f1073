"""Every CI file of the library validates against GitLab's own CI schema, the way GitLab
checks it: the `spec:` header on its own, then the body after inputs are interpolated.

Also checks what gitlab-ci-local lets through but GitLab rejects: an input used but not
declared, an include passing an input the included file does not declare.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "tests" / "schemas" / "gitlab-ci.json"  # see tests/schemas/README.md
TEMPLATES = sorted((ROOT / "ci-templates").glob("*.yml"))
CI_FILES = [*TEMPLATES, ROOT / ".gitlab-ci.yml", ROOT / "examples" / "churn" / ".gitlab-ci.yml"]
INPUT_REF = re.compile(r"\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]")


def _load_all(text: str) -> list:
    return list(YAML(typ="safe", pure=True).load_all(io.StringIO(text)))


def _split(path: Path) -> tuple[dict | None, str]:
    """(header, body text): GitLab reads the header first, then interpolates the body."""
    text = path.read_text(encoding="utf-8")
    if not text.lstrip().startswith(("spec:", "#")) or "\n---\n" not in text:
        return None, text
    head, body = text.split("\n---\n", 1)
    header = _load_all(head)[0]
    if not header or "spec" not in header:
        return None, text
    return header, body


def _defaults(header: dict | None) -> dict[str, str]:
    inputs = (header or {}).get("spec", {}).get("inputs", {}) or {}
    values = {}
    for name, spec in inputs.items():
        default = (spec or {}).get("default", "mandatory-value")
        values[name] = json.dumps(default) if isinstance(default, bool) else str(default)
    return values


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def _errors(validator: jsonschema.Draft7Validator, document: dict) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
        for e in validator.iter_errors(document)
    ]


def test_library_has_ci_templates() -> None:
    assert {p.name for p in TEMPLATES} >= {"full.yml", "train.yml", "deploy.yml"}


@pytest.mark.parametrize("path", CI_FILES, ids=lambda p: p.name)
def test_file_validates_against_gitlab_schema(path: Path, validator) -> None:
    header, body = _split(path)
    if header is not None:
        assert set(header) == {"spec"}, "the header document holds only `spec:`"
        assert _errors(validator, header) == []
    defaults = _defaults(header)
    interpolated = INPUT_REF.sub(lambda m: defaults[m.group(1)], body)
    document = _load_all(interpolated)[0]
    assert isinstance(document, dict) and document
    assert _errors(validator, document) == []


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_every_input_is_declared_documented_and_used(path: Path) -> None:
    header, body = _split(path)
    assert header is not None, f"{path.name} must start with a spec: inputs header"
    declared = header["spec"]["inputs"]
    used = set(INPUT_REF.findall(body))
    assert used <= set(declared), f"used but not declared: {sorted(used - set(declared))}"
    assert set(declared) <= used, f"declared but never used: {sorted(set(declared) - used)}"
    for name, spec in declared.items():
        assert spec.get("description"), f"input {name} has no description"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_templates_define_no_global_keywords_and_prefix_every_job(path: Path) -> None:
    header, body = _split(path)
    document = _load_all(INPUT_REF.sub(lambda m: _defaults(header)[m.group(1)], body))[0]
    global_keywords = {"default", "variables", "stages", "workflow", "image", "services", "cache"}
    assert not global_keywords & set(document), "an include must not set global keywords"
    jobs = [key for key in document if key != "include"]
    assert all(job.startswith("modelci-") for job in jobs), jobs


def test_includes_pass_only_inputs_the_included_file_declares() -> None:
    for path in TEMPLATES:
        _, body = _split(path)
        document = _load_all(body)[0]
        for include in document.get("include", []):
            target = ROOT / include["local"]
            target_inputs = _split(target)[0]["spec"]["inputs"]
            passed = set(include.get("inputs", {}))
            assert passed <= set(target_inputs), (path.name, sorted(passed - set(target_inputs)))
            mandatory = {n for n, s in target_inputs.items() if "default" not in (s or {})}
            assert mandatory <= passed, (path.name, sorted(mandatory - passed))


def _interpolated(path: Path, **inputs: str) -> dict:
    header, body = _split(path)
    values = {**_defaults(header), **inputs}
    return _load_all(INPUT_REF.sub(lambda m: values[m.group(1)], body))[0]


def test_a_branch_environment_stops_through_its_stop_job_after_its_time_to_live() -> None:
    """GitLab stops an environment past `auto_stop_in` (and a deleted branch's) by running the
    job `on_stop` names: it must stop the same environment, named after the branch itself."""
    jobs = _interpolated(ROOT / "ci-templates" / "deploy.yml", auto_stop_in="3 days")
    deploying = [job for job in jobs.values() if "on_stop" in job.get("environment", {})]
    assert deploying, "no job starts the branch environment"
    for job in deploying:
        environment = job["environment"]
        assert environment["auto_stop_in"] == "3 days"  # from the input
        assert environment["name"] == "review/$CI_COMMIT_REF_NAME"  # not the shared slug
        stop = jobs[environment["on_stop"]]
        assert stop["environment"] == {"name": environment["name"], "action": "stop"}
        assert stop["variables"]["GIT_STRATEGY"] == "none"  # runs after the branch is gone
        assert all(rule.get("when") == "manual" for rule in stop["rules"])
    header, _ = _split(ROOT / "ci-templates" / "deploy.yml")
    assert header["spec"]["inputs"]["auto_stop_in"]["default"] == "1 week"
    full = _interpolated(ROOT / "ci-templates" / "full.yml", auto_stop_in="3 days")
    (deploy_include,) = [i for i in full["include"] if i["local"].endswith("/deploy.yml")]
    assert deploy_include["inputs"]["auto_stop_in"] == "3 days"  # full.yml passes it on
