"""Every name the product writes, derived from (GitLab project path, branch, model).

Pure: no I/O, no external system, no import of the rest of the package (``modelci.config.mlops``
imports its name rules from here). This docstring is the naming contract; other modules, the
README and the clean-up jobs rely on it.

Building blocks
---------------
- ``slug(text)``: every run of characters outside ``[A-Za-z0-9]`` becomes one ``-``, the result
  is lowercased and trimmed of ``-``. Non-ASCII letters are outside the set, so they become
  dashes: the slug is lossy. ``"feature/Add-XGB"`` -> ``"feature-add-xgb"``.
- ``stable_hash(text)``: hex sha256 of the exact input, UTF-8 encoded with ``surrogatepass`` so
  that every Python ``str`` (even one holding a lone surrogate) hashes, and distinct strings
  give distinct bytes.
- Shortening (one rule for every name but the namespace): a readable candidate is used as it
  is only when it is exact (nothing was lost building it), fits the limit, and does not itself
  end like a hashed name (``-`` followed by as many lowercase hex digits as a suffix of that
  name may have, or only those digits). Otherwise, for the project slug, when the candidate is
  not empty and fits whole with a short suffix, it is kept whole and ``-`` + the first 6 digits
  of ``stable_hash(key)`` are appended ("whole-hashed"). Otherwise the candidate is cut to
  leave room for the long suffix, trailing ``-`` are removed, and ``-`` + the first 10 digits
  (8 for ``k8s_name``) of ``stable_hash(key)`` are appended ("cut-hashed"). The three forms
  never meet: a readable name never ends like a hashed one, and a whole-hashed name has ``-``
  seven characters from its end where a cut-hashed one has a hex digit. Two whole-hashed names
  are equal only if the keys have the same slug (``"ml/churn"``, ``"ml-churn"``,
  ``"ML/Churn"``) and their 24-bit hash prefixes collide: GitLab paths that differ only in
  punctuation or case are a handful per instance at most, so that is about a
  one-in-a-million event, and it buys readable project slugs and namespaces. Two cut-hashed
  names are equal only if 40-bit (32-bit for ``k8s_name``) hash prefixes collide.
- A tuple key is encoded unambiguously as length-prefixed parts (``<len>:<part>`` each).

Names
-----
- ``feature_environment(branch)``: ``"b-" + slug(branch)``, at most 30 characters, readable only
  when ``slug(branch) == branch`` (so ``"fix-1"`` -> ``"b-fix-1"``); otherwise
  ``"b-<slug cut>-<10 hex of sha256(branch)>"`` (``"feature/Add-XGB"`` ->
  ``"b-feature-add-xgb-<10 hex>"``), or ``"b-<10 hex>"`` when the slug is empty (``"///"``).
  Always the long suffix, never the short one: branch names are many, chosen freely (``/``,
  case, non-ASCII letters that all slug to the same text), and an environment name decides
  what a stop job deletes.
  Properties: injective over branch names (barring 40-bit hash collisions); only ``[a-z0-9-]``;
  starts with a letter; never ends with ``-``; never contains ``--``; always starts with
  ``b-``, which no stand name may do, so a feature environment never equals a stand.
- Stand names (``stand=`` argument, e.g. ``"production"``): ``[a-z][a-z0-9-]{0,19}``
  (``MAX_NAME_LENGTH`` = 20 characters), not ending with ``-``, not starting with ``b-``;
  otherwise ``ValueError``. For a stand, ``environment == stand`` and ``is_stand`` is true.
- Model names: ``[a-z][a-z0-9-]{0,19}``, not ending with ``-``; otherwise ``ValueError``.
- ``project_slug``: ``slug(project)``, at most 40 characters, same shortening rule with key
  ``project``. Every ``/`` or ``.`` in a path is lossy, so a real GitLab path ``"ml/churn"``
  gives ``"ml-churn-<6 hex>"`` and a path whose slug is longer than 33 characters gives
  ``"<slug cut to 29>-<10 hex>"``; GitLab paths are case-insensitive but the rule is strict
  (any change, including case, means a hash). Empty slug -> ``"p-<10 hex>"``. Injective over
  project paths.
- ``namespace``: ``"ml-" + project_slug`` when that fits 30 characters (a DNS-1123 label):
  ``"ml/churn"`` -> ``"ml-ml-churn-<6 hex>"``, ``"///"`` -> ``"ml-p-<10 hex>"``. Otherwise
  (a project slug over 27 characters) ``"ml-" + slug(project)`` cut to 19 characters and
  followed by ``-<10 hex>`` of ``project``. Injective over project paths: project slugs are,
  and a cut namespace (29 or 30 characters, ending in ``-<10 hex>``) never equals ``"ml-"`` +
  a project slug of 26 or 27 characters, which never ends that way (only cut-hashed slugs,
  39 or 40 characters long, and the 12-character ``"p-<10 hex>"`` do).
- ``namespace`` of a feature environment: the project's branches share one namespace of
  their own, never a stand's, computed from the project slug alone (the branches'
  ApplicationSet computes it from the path it reads, `argocd/applicationset.yaml`):
  ``"mlb-" + project_slug`` when that fits 30 characters, otherwise ``"mlb-"`` + the slug's
  first 15 characters + ``-<10 hex of sha256(project_slug)>``. The Argo CD project of the
  branches admits only ``mlb-*``; a stand's is ``ml-...``, which ``mlb-`` never matches.
- ``k8s_name`` (InferenceService): ``f"{model}-{environment}"``, a DNS-1123 label starting with a
  letter, at most ``min(40, 63 - len("-predictor-") - len(namespace))`` characters (so KServe's
  host label ``{k8s_name}-predictor-{namespace}`` fits 63; with a 30-character namespace that
  still leaves 22). It is readable only if the model name has no ``-`` (then the first ``-``
  separates model from environment and the name is unambiguous), it fits and does not end like
  a hashed name; otherwise it is cut and ``-<8 hex>`` of the key (project, environment, model)
  is appended. Unique per (environment, model) inside the project's namespace.
- ``app_name`` (Argo CD Application): ``f"{project_slug}-{environment}-{model}"`` cut to fit 63
  characters, always followed by ``-<10 hex>`` of (project, environment, model): the parts
  contain ``-`` themselves, so only the hash makes the name unique across projects. A feature
  environment's is computed from its GitOps path alone, as the branches' ApplicationSet does:
  ``f"{project_slug}-{environment}-{model}"`` cut to 52 characters (one trailing ``-``
  dropped), ``-`` and 10 hex of sha256 of ``f"{project_slug}/{environment}/{model}"``.
- ``experiment``: ``f"{project}/{model}"`` (one MLflow experiment per project and model).
- ``registered_model``: ``f"{project_slug}.{model}"`` (safe inside ``models:/<name>@<alias>``).
- ``dag_id(kind)``: ``f"{project_slug}__{environment}__{model}__{kind}"``. A kind is a lowercase
  word ``[a-z]+`` (``ValueError`` otherwise; which kinds exist is ``modelci.config.mlops``'s
  business). No part contains ``_`` (they are ``[a-z0-9-]``), so the id splits back into its
  parts and is unique across projects, environments, models and kinds. Fits Airflow's
  ``[A-Za-z0-9_.-]{1,250}``.
- ``dag_path(kind)``: ``f"dags/{project_slug}/{environment}/{model}__{kind}.py"``.
- ``gitops_dir``: ``f"environments/{project_slug}/{environment}/{model}"``; ``values_path`` and
  ``app_config_path`` are ``values.yaml`` and ``config.json`` inside it.
- ``s3_prefix``: ``f"branches/{project_slug}/{environment}/"`` for a feature environment,
  ``f"stands/{project_slug}/{environment}/"`` for a stand: one S3 policy line per side
  (``<scratch>/branches/<project slug>/*`` for a project's branch keys,
  ``<scratch>/stands/*`` for the stand keys) keeps them apart.
Every path segment is a non-empty ``[a-z0-9-]`` word (no ``.``, ``..`` or ``/``), so paths stay
under their root.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

FEATURE_PREFIX = "b-"
FEATURE_ENVIRONMENT_MAX = 30
PROJECT_SLUG_MAX = 40
NAMESPACE_PREFIX = "ml-"
NAMESPACE_MAX = 30
K8S_NAME_MAX = 40
PREDICTOR_INFIX = "-predictor-"
DNS_LABEL_MAX = 63
HASH_DIGITS = 10
SHORT_HASH_DIGITS = 6
K8S_HASH_DIGITS = 8
MAX_NAME_LENGTH = 20  # model and stand names

_NAME = rf"[a-z](?:[a-z0-9-]{{0,{MAX_NAME_LENGTH - 2}}}[a-z0-9])?"
MODEL_NAME_PATTERN = re.compile(_NAME)
STAND_NAME_PATTERN = re.compile(_NAME)
DAG_KIND_PATTERN = re.compile(r"[a-z]+")
_NOT_SLUG = re.compile(r"[^A-Za-z0-9]+")


def slug(text: str) -> str:
    """Lowercase ASCII letters and digits, every other run of characters as one dash."""
    return _NOT_SLUG.sub("-", text).lower().strip("-")


def stable_hash(text: str) -> str:
    """Hex sha256 of the exact text; defined for every Python str."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _tuple_key(*parts: str) -> str:
    return "".join(f"{len(part)}:{part}" for part in parts)


def _looks_hashed(name: str, digits: int) -> bool:
    return re.search(rf"(?:^|-)[0-9a-f]{{{digits}}}$", name) is not None


def _shorten(
    readable: str,
    limit: int,
    key: str,
    *,
    exact: bool = True,
    digits: int = HASH_DIGITS,
    whole_digits: int | None = None,
) -> str:
    """`readable` if exact, within `limit` and not hash-like; else `readable` whole + '-' +
    `whole_digits` of hash(key) when allowed and it fits; else its cut + '-' + `digits`."""
    forms = (digits,) if whole_digits is None else (whole_digits, digits)
    hash_like = any(_looks_hashed(readable, n) for n in forms)
    if exact and readable and len(readable) <= limit and not hash_like:
        return readable
    suffix = stable_hash(key)
    whole = readable.rstrip("-")
    if whole_digits is not None and whole and len(whole) + 1 + whole_digits <= limit:
        return f"{whole}-{suffix[:whole_digits]}"
    head = readable[: limit - digits - 1].rstrip("-")
    return f"{head}-{suffix[:digits]}" if head else suffix[:digits]


def feature_environment(branch: str) -> str:
    """The environment name of a feature branch: `b-<slug>` or `b-<slug cut>-<10 hex>`."""
    branch_slug = slug(branch)
    exact = bool(branch_slug) and branch_slug == branch
    return _shorten(FEATURE_PREFIX + branch_slug, FEATURE_ENVIRONMENT_MAX, branch, exact=exact)


def project_slug_of(project: str) -> str:
    """The project path as a short `[a-z0-9-]` word, hashed when anything was lost."""
    project_slug = slug(project)
    if not project_slug:
        return _shorten("p", PROJECT_SLUG_MAX, project, exact=False)
    return _shorten(
        project_slug,
        PROJECT_SLUG_MAX,
        project,
        exact=project_slug == project,
        whole_digits=SHORT_HASH_DIGITS,
    )


def check_model_name(model: str) -> str:
    """Return `model` if it is a valid model name, else raise ValueError saying why."""
    if not MODEL_NAME_PATTERN.fullmatch(model):
        raise ValueError(
            f"invalid model name {model!r}: use 1-{MAX_NAME_LENGTH} characters a-z, 0-9 and "
            "'-', starting with a letter and not ending with '-'"
        )
    return model


# What GitLab accepts in an environment name, less `$`, `{` and `}`, which it would expand.
_GITLAB_ENVIRONMENT_CHARS = re.compile(r"[A-Za-z0-9 _./-]")
GITLAB_BRANCH_MAX = 200  # GitLab environment names have at most 255 characters, prefix included


def gitlab_environment_problem(branch: str) -> str | None:
    """Why GitLab cannot name a branch's environment `<prefix>/<branch>`; None when it can.

    The branch name itself, not GitLab's `CI_COMMIT_REF_SLUG`, names the GitLab environment:
    `feature/a`, `feature/A` and `feature/a-` share one slug, and with it one environment."""
    odd = sorted({char for char in branch if not _GITLAB_ENVIRONMENT_CHARS.fullmatch(char)})
    if odd:
        shown = " ".join(repr(char) for char in odd)
        return (
            f"it contains {shown}, and GitLab allows only letters A-Z and a-z, digits, '-', "
            "'_', '.' and '/' in environment names"
        )
    if len(branch) > GITLAB_BRANCH_MAX:
        return f"it has {len(branch)} characters, more than {GITLAB_BRANCH_MAX}"
    return None


def check_stand_name(stand: str) -> str:
    """Return `stand` if it is a valid stand name, else raise ValueError saying why."""
    if not STAND_NAME_PATTERN.fullmatch(stand) or stand.startswith(FEATURE_PREFIX):
        raise ValueError(
            f"invalid stand name {stand!r}: use 1-{MAX_NAME_LENGTH} characters a-z, 0-9 and "
            f"'-', starting with a letter, not ending with '-' and not starting with "
            f"{FEATURE_PREFIX!r} (reserved for feature branches)"
        )
    return stand


def namespace_of(project: str) -> str:
    """The Kubernetes namespace of a project: `ml-<project slug>`, or a cut of it + 10 hex."""
    candidate = NAMESPACE_PREFIX + project_slug_of(project)
    if len(candidate) <= NAMESPACE_MAX:
        return candidate
    return _shorten(NAMESPACE_PREFIX + slug(project), NAMESPACE_MAX, project, exact=False)


BRANCH_NAMESPACE_PREFIX = "mlb-"
_BRANCH_NAMESPACE_CUT = 15
_PATH_NAME_CUT = 52


def _sha(text: str, digits: int = 10) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:digits]


def branch_namespace(project_slug: str) -> str:
    """The namespace of a project's feature environments (module docstring), from its slug:
    what the branches' ApplicationSet template computes from a GitOps path."""
    candidate = BRANCH_NAMESPACE_PREFIX + project_slug
    if len(candidate) <= NAMESPACE_MAX:
        return candidate
    cut = project_slug[:_BRANCH_NAMESPACE_CUT]
    return f"{BRANCH_NAMESPACE_PREFIX}{cut}-{_sha(project_slug)}"


def branch_app_name(project_slug: str, environment: str, model: str) -> str:
    """The Argo CD Application of a feature environment's model, from its GitOps path alone."""
    readable = f"{project_slug}-{environment}-{model}"[:_PATH_NAME_CUT].removesuffix("-")
    return f"{readable}-{_sha(f'{project_slug}/{environment}/{model}')}"


def _k8s_name(project: str, environment: str, model: str, namespace: str) -> str:
    limit = min(K8S_NAME_MAX, DNS_LABEL_MAX - len(PREDICTOR_INFIX) - len(namespace))
    key = _tuple_key(project, environment, model)
    readable = f"{model}-{environment}"
    return _shorten(readable, limit, key, exact="-" not in model, digits=K8S_HASH_DIGITS)


def _app_name(project: str, project_slug: str, environment: str, model: str) -> str:
    key = _tuple_key(project, environment, model)
    return _shorten(f"{project_slug}-{environment}-{model}", DNS_LABEL_MAX, key, exact=False)


def check_dag_kind(kind: str) -> str:
    """Return `kind` if it can be part of a DAG id and file name, else raise ValueError."""
    if not DAG_KIND_PATTERN.fullmatch(kind):
        raise ValueError(f"invalid DAG kind {kind!r}: a kind is a lowercase word (a-z only)")
    return kind


@dataclass(frozen=True)
class Names:
    """All names for one (project, environment, model); build it with `names_for`."""

    project: str
    branch: str
    model: str
    project_slug: str
    environment: str
    is_stand: bool
    namespace: str
    k8s_name: str
    app_name: str
    experiment: str
    registered_model: str
    gitops_dir: str
    s3_prefix: str

    @property
    def values_path(self) -> str:
        return f"{self.gitops_dir}/values.yaml"

    @property
    def app_config_path(self) -> str:
        return f"{self.gitops_dir}/config.json"

    def dag_id(self, kind: str) -> str:
        check_dag_kind(kind)
        return f"{self.project_slug}__{self.environment}__{self.model}__{kind}"

    def dag_path(self, kind: str) -> str:
        check_dag_kind(kind)
        return f"dags/{self.project_slug}/{self.environment}/{self.model}__{kind}.py"

    def as_dict(self, kinds: Iterable[str]) -> dict[str, Any]:
        """Every name as JSON-ready data, with the DAG ids and paths of `kinds`."""
        kinds = tuple(kinds)
        return {
            **asdict(self),
            "values_path": self.values_path,
            "app_config_path": self.app_config_path,
            "dag_ids": {kind: self.dag_id(kind) for kind in kinds},
            "dag_paths": {kind: self.dag_path(kind) for kind in kinds},
        }


@dataclass(frozen=True)
class EnvironmentDirs:
    """Where one environment of one project lives, whatever its models: what a stop removes."""

    environment: str
    dag_dir: str  # dags/<project_slug>/<environment>
    gitops_dir: str  # environments/<project_slug>/<environment>
    s3_prefix: str  # branches/<project_slug>/<environment>/ or stands/<project_slug>/<stand>/


# The top directories under MODELCI_SCRATCH_URI: feature environments, stands.
BRANCHES_SCRATCH = "branches"
STANDS_SCRATCH = "stands"


def branches_scratch(project: str) -> str:
    """The project's feature environments' directory under the scratch URI (no slashes
    around it): `branches/<project slug>`."""
    return f"{BRANCHES_SCRATCH}/{project_slug_of(project)}"


def environment_dirs(project: str, branch: str, *, stand: str | None = None) -> EnvironmentDirs:
    environment = feature_environment(branch) if stand is None else check_stand_name(stand)
    project_slug = project_slug_of(project)
    side = BRANCHES_SCRATCH if stand is None else STANDS_SCRATCH
    return EnvironmentDirs(
        environment=environment,
        dag_dir=f"dags/{project_slug}/{environment}",
        gitops_dir=f"environments/{project_slug}/{environment}",
        s3_prefix=f"{side}/{project_slug}/{environment}/",
    )


def names_for(project: str, branch: str, model: str, *, stand: str | None = None) -> Names:
    """Derive every name for `model` of `project`, built on `branch` (or promoted to `stand`)."""
    check_model_name(model)
    dirs = environment_dirs(project, branch, stand=stand)
    environment = dirs.environment
    project_slug = project_slug_of(project)
    namespace = namespace_of(project) if stand is not None else branch_namespace(project_slug)
    if stand is None:
        app_name = branch_app_name(project_slug, environment, model)
    else:
        app_name = _app_name(project, project_slug, environment, model)
    return Names(
        project=project,
        branch=branch,
        model=model,
        project_slug=project_slug,
        environment=environment,
        is_stand=stand is not None,
        namespace=namespace,
        k8s_name=_k8s_name(project, environment, model, namespace),
        app_name=app_name,
        experiment=f"{project}/{model}",
        registered_model=f"{project_slug}.{model}",
        gitops_dir=f"{dirs.gitops_dir}/{model}",
        s3_prefix=dirs.s3_prefix,
    )
