"""Helm values for `charts/kserve-model` and the Argo CD generator file beside them.

Pure: builds dicts and YAML text from the config, the names and the pipeline; knows no
external system. The chart's own `values.schema.json` is the contract: `validate_values`
holds values against it before anything is committed, so a bad value fails the pipeline with
the field named instead of failing later in Argo CD.

Finding the chart: it ships in this repository (`charts/kserve-model/`, two levels above this
package) and the package runs from a checkout of the same tag (editable install in the job
image), so the templates and the schema always match the code.
"""

from __future__ import annotations

import io
import json
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from ..errors import ConfigError, ModelciError, Problem

if TYPE_CHECKING:
    from ..config.naming import Names
    from ..config.settings import Pipeline, Settings
    from ..config.types import Model

CHART_NAME = "kserve-model"
VALUES_FILE_NAME = "values.yaml"
HEADER_PREFIX = "# modelci: "

# KServe's legacy mode names: understood by every KServe version (0.16+ maps them to
# Standard/Knative), so the product writes these.
RAW_DEPLOYMENT = "RawDeployment"
SERVERLESS = "Serverless"


def chart_dir() -> Path:
    """charts/kserve-model, which the package carries as `modelci/chart` (a link in the repo)."""
    directory = (Path(str(resources.files("modelci"))) / "chart").resolve()
    if not (directory / "Chart.yaml").is_file():
        raise ModelciError(
            f"chart {CHART_NAME} not found at {directory}: the modelci installation is "
            "incomplete; reinstall the package (it ships charts/kserve-model as modelci/chart)"
        )
    return directory


@lru_cache(maxsize=1)
def values_schema() -> dict[str, Any]:
    return json.loads((chart_dir() / "values.schema.json").read_text(encoding="utf-8"))


def deployment_mode(min_replicas: int) -> str:
    """Scale to zero needs Knative (Serverless); anything else runs as a plain Deployment."""
    return SERVERLESS if min_replicas == 0 else RAW_DEPLOYMENT


def split_s3_endpoint(endpoint: str) -> tuple[str, bool]:
    """`http://host:port` -> ("host:port", False); a bare host means https, as on AWS."""
    endpoint = endpoint.strip().rstrip("/")
    for scheme, use_https in (("https://", True), ("http://", False)):
        if endpoint.lower().startswith(scheme):
            return endpoint[len(scheme) :], use_https
    return endpoint, True


def build_values(
    model: Model,
    names: Names,
    settings: Settings,
    *,
    storage_uri: str,
    run_id: str,
    model_version: str | None,
    pipeline: Pipeline,
    environment_uri: str = "",
    image: str = "",
) -> dict[str, Any]:
    """The chart values that serve `model` in the environment `names` describes; with
    `environment_uri` (the run's environment archive), `image` runs the model server from it."""
    online = model.online
    quantities = {"cpu": online.resources.cpu, "memory": online.resources.memory}
    s3_endpoint, s3_https = split_s3_endpoint(settings.cluster_s3_endpoint)
    version = model_version or ""
    return {
        "name": names.k8s_name,
        "storageUri": storage_uri,
        "deploymentMode": deployment_mode(online.min_replicas),
        "minReplicas": online.min_replicas,
        "maxReplicas": online.max_replicas,
        # Requests equal limits: a model server that is promised what it may use is not evicted
        # or throttled under node pressure (Guaranteed QoS).
        "resources": {"requests": dict(quantities), "limits": dict(quantities)},
        "gpu": online.resources.gpu,
        "environment": {"archive": environment_uri, "image": image if environment_uri else ""},
        "s3": {
            "endpoint": s3_endpoint,
            "useHttps": s3_https,
            "region": settings.s3_region,
            "secretName": settings.cluster_s3_secret,
        },
        "serviceAccount": {"create": True, "name": f"{names.k8s_name}-s3"},
        # A namespace is shared by several Applications or outlives them; the platform owns it.
        "namespace": {"create": False},
        "ingress": {"domain": settings.ingress_domain, "scheme": settings.url_scheme},
        "traceability": {
            key: valid_unicode(text)
            for key, text in {
                "project": pipeline.project,
                "branch": pipeline.branch,
                "commit": pipeline.commit,
                "environment": names.environment,
                "runId": run_id,
                "registeredModel": names.registered_model,
                "modelVersion": version,
                "modelUri": f"models:/{names.registered_model}/{version}" if version else "",
                "pipelineUrl": pipeline.pipeline_url,
            }.items()
        },
    }


def valid_unicode(text: str) -> str:
    """`text` with lone surrogates (undecodable bytes of a branch name, as Python reads them
    from the environment) replaced by U+FFFD: YAML and Kubernetes carry only valid Unicode."""
    return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)


def build_app_config(names: Names) -> dict[str, str]:
    """The generator file (`config.json`) the ApplicationSet reads in the same directory."""
    return {
        "appName": names.app_name,
        "namespace": names.namespace,
        "project": names.project_slug,
        "environment": names.environment,
        "model": names.model,
        "valuesFile": VALUES_FILE_NAME,
    }


def app_config_text(names: Names) -> str:
    return json.dumps(build_app_config(names), indent=2, sort_keys=True) + "\n"


def model_api_url(names: Names, settings: Settings) -> str:
    """The inference URL as KServe builds it with its default domain template
    `{name}-{namespace}.{ingressDomain}`; MLServer names the model after the InferenceService."""
    host = f"{names.k8s_name}-{names.namespace}.{settings.ingress_domain}"
    return f"{settings.url_scheme}://{host}/v2/models/{names.k8s_name}/infer"


def validate_values(values: Mapping[str, Any], source: str) -> None:
    """Refuse values the chart (and so KServe) would refuse; every problem names its field."""
    from jsonschema import Draft7Validator

    validator = Draft7Validator(values_schema())
    problems = [
        problem
        for error in validator.iter_errors(values)
        for problem in _problems_from(error, source)
    ]
    problems.extend(_replica_problems(values, source))
    if problems:
        unique = {(p.field, p.message): p for p in problems}
        raise ConfigError(sorted(unique.values(), key=lambda p: (p.field, p.message)))


def _field_path(parts: Any) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _problems_from(error: Any, source: str) -> list[Problem]:
    path = _field_path(error.absolute_path)
    if error.validator == "required":
        missing = [key for key in error.validator_value if repr(key) in error.message]
        return [
            Problem(source, _join(path, key), f"is missing; {_expected(error.schema, key)}")
            for key in missing
        ]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(error.schema.get("properties", {}))
        return [
            Problem(source, _join(path, key), f"unknown key; expected one of: {', '.join(known)}")
            for key in sorted(set(error.instance) - set(known))
        ]
    if error.validator in ("if", "then"):
        return []  # the `then` branch reports its own, more precise error
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if not description:
        description = _description_at(error.absolute_schema_path)
    message = error.message if not description else f"{error.message}; expected {description}"
    return [Problem(source, path, message)]


def _expected(object_schema: Mapping[str, Any], key: str) -> str:
    prop = object_schema.get("properties", {}).get(key, {})
    description = prop.get("description") or _resolve(prop).get("description")
    return f"expected {description}" if description else "add it"


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref", "")
    if not ref.startswith("#/definitions/"):
        return schema
    return values_schema()["definitions"][ref.removeprefix("#/definitions/")]


def _description_at(schema_path: Any) -> str | None:
    """The description of the property whose keyword failed (e.g. the `name` property for its
    `pattern`), walking the schema path back from the failing keyword."""
    node: Any = values_schema()
    best: str | None = None
    for part in list(schema_path)[:-1]:
        node = _resolve(node) if isinstance(node, Mapping) else node
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return best
        if isinstance(node, Mapping) and node.get("description"):
            best = node["description"]
    return best


def _replica_problems(values: Mapping[str, Any], source: str) -> list[Problem]:
    low, high = values.get("minReplicas"), values.get("maxReplicas")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        message = f"is {high}, less than minReplicas ({low}); set maxReplicas >= minReplicas"
        return [Problem(source, "maxReplicas", message)]
    return []


# --- YAML text ---------------------------------------------------------------------------


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never fold long URLs
    yaml.allow_unicode = True
    return yaml


# Control characters, line/paragraph separators, format characters (BOM, bidi overrides) and
# lone surrogates: invisible, or line breaks to some YAML parsers.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cf", "Cs"})


def _is_unsafe(char: str) -> bool:
    return char != "\t" and unicodedata.category(char) in _UNSAFE_CATEGORIES


def sanitize_comment_line(text: str) -> str:
    """One comment line that stays one line for every YAML parser: line breaks (including
    NEL, LINE/PARAGRAPH SEPARATOR) and other control characters become visible escapes."""
    out = []
    for char in text:
        if not _is_unsafe(char):
            out.append(char)
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def values_header(pipeline: Pipeline, names: Names) -> str:
    """Who wrote the file: project, environment, branch, commit and pipeline (one line each,
    whatever characters a branch name holds)."""
    safe = sanitize_comment_line
    return "\n".join(
        [
            "written by the modelci pipeline; keys it sets are replaced on the next deploy,",
            "comments and keys it does not set are kept",
            f"project: {safe(pipeline.project)}  environment: {names.environment}",
            f"branch: {safe(pipeline.branch)}",
            f"commit: {safe(pipeline.commit)}  "
            f"pipeline: {safe(pipeline.pipeline_url or pipeline.pipeline_id)}",
        ]
    )


def _header_block(header: str) -> str:
    lines = (
        f"{HEADER_PREFIX}{sanitize_comment_line(line)}".rstrip() for line in header.split("\n")
    )
    return "".join(line + "\n" for line in lines)


def _strip_header(text: str) -> str:
    """`text` without the header lines of a previous write; other leading comments stay."""
    lines = text.splitlines(keepends=True)
    leading = 0
    while leading < len(lines) and lines[leading].strip()[:1] in ("", "#"):
        leading += 1
    kept = [line for line in lines[:leading] if not line.startswith(HEADER_PREFIX.rstrip())]
    return "".join(kept + lines[leading:])


def _needs_escapes(text: str) -> bool:
    return any(_is_unsafe(char) for char in text)


def _yaml_scalar(value: Any) -> Any:
    """Strings with line or paragraph separators, NEL or other invisible characters are written
    double-quoted, where they become escapes: some YAML parsers (libyaml, Go) read them as line
    breaks and would fold a plain or single-quoted value."""
    if isinstance(value, str) and _needs_escapes(value):
        return DoubleQuotedScalarString(value)
    return value


def _merge(target: CommentedMap, new: Mapping[str, Any], *, keep_unknown: bool) -> None:
    """Set `new`'s keys on `target` in place, so comments attached to surviving keys stay.
    Below the top level the product owns the whole map: keys it no longer sets are removed."""
    for key, value in new.items():
        current = target.get(key)
        if isinstance(value, Mapping) and isinstance(current, CommentedMap):
            _merge(current, value, keep_unknown=False)
        elif isinstance(value, Mapping):
            fresh = CommentedMap()
            _merge(fresh, value, keep_unknown=False)
            target[key] = fresh
        elif isinstance(value, list | tuple):
            target[key] = [_yaml_scalar(item) for item in value]
        else:
            target[key] = _yaml_scalar(value)
    if not keep_unknown:
        for key in [k for k in target if k not in new]:
            del target[key]


def _load_existing(yaml: YAML, existing: str | None) -> CommentedMap:
    body = _strip_header(existing or "")
    if not body.strip():
        return CommentedMap()
    try:
        document = yaml.load(body)
    except (YAMLError, ValueError) as error:
        raise ModelciError(
            f"the values file in the GitOps repo is not valid YAML ({error}); "
            "fix or delete it there, then re-run the job"
        ) from None
    if document is None:
        return CommentedMap()
    if not isinstance(document, CommentedMap):
        raise ModelciError(
            "the values file in the GitOps repo is not a mapping of keys to values; "
            "fix or delete it there, then re-run the job"
        )
    return document


def update_values_text(existing: str | None, values: Mapping[str, Any], header: str) -> str:
    """The values file's new text: `values` over the existing file, which keeps the comments and
    extra keys a platform engineer added; `header` becomes the leading comment, line by line."""
    yaml = _yaml()
    document = _load_existing(yaml, existing)
    _merge(document, values, keep_unknown=True)
    stream = io.StringIO()
    yaml.dump(document, stream)
    return _header_block(header) + stream.getvalue()
