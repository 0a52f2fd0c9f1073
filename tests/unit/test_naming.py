"""The naming contract: readable where possible, always valid, never colliding."""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import string
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelci.config.fields import DAG_KINDS
from modelci.config.naming import (
    GITLAB_BRANCH_MAX,
    MAX_NAME_LENGTH,
    Names,
    branch_app_name,
    branch_namespace,
    environment_dirs,
    feature_environment,
    gitlab_environment_problem,
    names_for,
    namespace_of,
    project_slug_of,
    slug,
)

# Written out here from the platforms' rules, independently of the module under test.
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
KSERVE_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
AIRFLOW_DAG_ID = re.compile(r"[A-Za-z0-9_.-]{1,250}")
SEGMENT = re.compile(r"[a-z0-9][a-z0-9-]*")
RESERVED = ("main", "master", "production", "prod", "staging")
STANDS = ("production", "staging", "prod", "qa", "dev", "main", "master")
PROJECT = "data-science/churn"


def sha(text: str, digits: int = 10) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:digits]


def _k8s_key(project: str, environment: str, model: str) -> str:
    return "".join(f"{len(part)}:{part}" for part in (project, environment, model))


# --- strategies -------------------------------------------------------------------------------

any_unicode = st.text(alphabet=st.characters(exclude_categories=()), max_size=255)
GIT_TOKENS = (
    *(
        "..",
        "/",
        "-",
        "--",
        "_",
        ".",
        " ",
        "feature",
        "Fix",
        "0",
        "9x",
        "deadbeef12",
        "c0ffee",
        "b-",
    ),
    *("0123456789abcdef", "main", "production", "\u00fc", "\u00df", "\u212a", "\u0130"),
    *(string.ascii_letters + string.digits + "-_./"),
)
# One private character per token: text strategies draw far faster than lists of tokens.
_TOKEN_OF = {chr(0x4E00 + i): token for i, token in enumerate(GIT_TOKENS)}
git_like = st.text(alphabet="".join(_TOKEN_OF), max_size=40).map(
    lambda keys: "".join(_TOKEN_OF[key] for key in keys)[:255]
)
ascii_branch = st.text(alphabet=string.ascii_lowercase + string.digits + "-", max_size=40)
branches = st.one_of(any_unicode, git_like, ascii_branch)

PUNCT = ("-", "_", ".", "/", " ", "--", "/-")


def _variants(char: str) -> tuple[str, ...]:
    if char.isalpha():
        return (char.lower(), char.upper())
    if char in PUNCT:
        return PUNCT
    return (char,)


@st.composite
def case_and_punct_family(draw: st.DrawFn) -> set[str]:
    """One base branch name and up to 12 spellings differing only in case and punctuation."""
    base = draw(st.text(alphabet=string.ascii_letters + string.digits + "-_./ ", max_size=40))
    family = {base}
    for _ in range(draw(st.integers(1, 12))):
        picks = draw(st.lists(st.integers(0, 6), min_size=len(base), max_size=len(base)))
        options = [_variants(char) for char in base]
        spelling = (opts[pick % len(opts)] for opts, pick in zip(options, picks, strict=True))
        family.add("".join(spelling))
    return family


# --- checks shared by the properties ----------------------------------------------------------


def assert_under(path: str, root: str) -> None:
    segments = path.rstrip("/").split("/")
    assert not path.startswith("/")
    assert ".." not in segments and "." not in segments and "" not in segments
    assert posixpath.normpath(path) == path.rstrip("/")
    assert posixpath.normpath(path).startswith(root + "/")


def assert_valid(names: Names) -> None:
    env, ns = names.environment, names.namespace
    assert SEGMENT.fullmatch(env) and not env.endswith("-") and len(env) <= 30
    assert SEGMENT.fullmatch(names.project_slug) and not names.project_slug.endswith("-")
    assert len(names.project_slug) <= 40
    assert KSERVE_NAME.fullmatch(ns) and len(ns) <= 30
    assert KSERVE_NAME.fullmatch(names.k8s_name)
    assert len(names.k8s_name) <= 40
    assert len(f"{names.k8s_name}-predictor-{ns}") <= 63
    assert DNS_LABEL.fullmatch(names.app_name) and len(names.app_name) <= 63
    assert names.registered_model == f"{names.project_slug}.{names.model}"
    assert names.experiment == f"{names.project}/{names.model}"
    for kind in DAG_KINDS:
        assert AIRFLOW_DAG_ID.fullmatch(names.dag_id(kind))
        assert names.dag_id(kind).split("__") == [names.project_slug, env, names.model, kind]
        assert_under(names.dag_path(kind), f"dags/{names.project_slug}/{env}")
        assert names.dag_path(kind).endswith(f"/{names.model}__{kind}.py")
    assert_under(names.gitops_dir, f"environments/{names.project_slug}/{env}")
    assert_under(names.values_path, names.gitops_dir)
    assert_under(names.app_config_path, names.gitops_dir)
    side = "stands" if names.is_stand else "branches"
    assert_under(names.s3_prefix, f"{side}/{names.project_slug}")
    assert names.s3_prefix == f"{side}/{names.project_slug}/{env}/"


def assert_feature_environment(branch: str, env: str) -> None:
    assert env.startswith("b-") and env not in RESERVED and env not in STANDS
    assert "--" not in env
    readable = "b-" + slug(branch)
    if env != readable:  # shortened: the hash of the exact branch name is the suffix
        assert env.endswith("-" + sha(branch))
        assert readable.startswith(env[: -len(sha(branch)) - 1])


# --- examples ---------------------------------------------------------------------------------


def test_readable_branch_names() -> None:
    assert feature_environment("fix-1") == "b-fix-1"
    assert feature_environment("feature/Add-XGB") == "b-feature-add-xgb-" + sha("feature/Add-XGB")
    assert feature_environment("a" * 28) == "b-" + "a" * 28
    assert feature_environment("a" * 29) == "b-" + "a" * 17 + "-" + sha("a" * 29)
    assert feature_environment("production") == "b-production"


def test_lossy_empty_and_hash_like_branches_are_hashed() -> None:
    assert feature_environment("Fix-1") == "b-fix-1-" + sha("Fix-1")
    assert feature_environment("///") == "b-" + sha("///")
    assert feature_environment("") == "b-" + sha("")
    assert feature_environment("ÄÖÜ") == "b-" + sha("ÄÖÜ")
    assert feature_environment("\ud800") == "b-" + sha("\ud800")
    # Lossless but shaped like a hashed name: must not be able to meet one.
    assert feature_environment("0123456789") == "b-0123456789-" + sha("0123456789")
    assert feature_environment("x-abcdef0123") == "b-x-abcdef0123-" + sha("x-abcdef0123")
    assert feature_environment("x-abcdef012") == "b-x-abcdef012"


def test_project_slug() -> None:
    assert project_slug_of("churn") == "churn"
    # Lossy but kept whole: a short hash is enough to tell same-slug paths apart.
    assert project_slug_of("ml/churn") == "ml-churn-" + sha("ml/churn", 6)
    assert project_slug_of("Group/Sub/churn.model") == "group-sub-churn-model-" + sha(
        "Group/Sub/churn.model", 6
    )
    assert project_slug_of("a-b/c") != project_slug_of("a/b-c")
    assert project_slug_of("///") == "p-" + sha("///")
    # Cut: the long hash.
    long_path = "platform/" + "x" * 60
    assert project_slug_of(long_path) == "platform-" + "x" * 20 + "-" + sha(long_path)
    whole = "g/" + "x" * 31  # slug of 33 characters: the longest kept whole
    assert project_slug_of(whole) == slug(whole) + "-" + sha(whole, 6)
    cut = "g/" + "x" * 32
    assert project_slug_of(cut) == slug(cut)[:29] + "-" + sha(cut)


def test_hash_like_project_paths_cannot_take_a_hashed_name() -> None:
    # A path spelled like another path's hashed slug is hashed itself, so the two differ.
    taken = project_slug_of("ml/churn")
    assert project_slug_of(taken) == f"{taken}-{sha(taken, 6)}"
    assert project_slug_of("abcdef") == "abcdef-" + sha("abcdef", 6)
    assert project_slug_of("x-0123456789") == "x-0123456789-" + sha("x-0123456789", 6)
    assert project_slug_of("x-abcde") == "x-abcde"  # 5 hex digits: no hashed name looks so
    family = ["ml/churn", "ml-churn", "ML/churn", "ml.churn", "ml//churn", taken, "ml-churn-"]
    assert len({project_slug_of(p) for p in family}) == len(family)
    assert len({namespace_of(p) for p in family}) == len(family)


def test_namespaces_are_readable_where_they_fit() -> None:
    assert namespace_of("ml/churn") == "ml-ml-churn-" + sha("ml/churn", 6)
    assert namespace_of("churn") == "ml-churn"
    assert namespace_of("///") == "ml-p-" + sha("///")
    fits = "group/" + "x" * 14  # slug of 20: "ml-" + slug + 6 hex is 30 characters
    assert namespace_of(fits) == "ml-" + slug(fits) + "-" + sha(fits, 6)
    too_long = "group/" + "x" * 15
    assert namespace_of(too_long) == "ml-" + slug(too_long)[:16] + "-" + sha(too_long)
    assert len(namespace_of(too_long)) == 30
    for project in ("ml/churn", "churn", "///", fits, "a" * 27):
        assert namespace_of(project) == "ml-" + project_slug_of(project)


def test_names_of_a_typical_project() -> None:
    names = names_for("ml/churn", "feature/better-churn", "churn")
    assert names.namespace == "mlb-ml-churn-" + sha("ml/churn", 6)  # the branches' namespace
    assert names_for("ml/churn", "main", "churn", stand="production").namespace == (
        "ml-ml-churn-" + sha("ml/churn", 6)
    )
    assert names.project_slug == "ml-churn-" + sha("ml/churn", 6)
    env = "b-feature-better-ch-" + sha("feature/better-churn")
    assert names.environment == env
    # 63 - len("-predictor-") - 19 = 33 characters for the InferenceService name.
    assert len(names.k8s_name) == 33 and names.k8s_name.startswith("churn-b-feature-better-c")
    assert_valid(names)
    short = names_for("ml/churn", "fix-1", "churn")
    assert short.k8s_name == "churn-b-fix-1"


def test_the_branches_namespace_and_application_come_from_the_gitops_path_alone() -> None:
    """What argocd/applicationset.yaml computes from a path, and nothing a branch writes."""
    short, long = "ml-churn-15aea2", "a-very-long-group-name-and-project-0123456789"[:40]
    assert branch_namespace(short) == "mlb-ml-churn-15aea2"
    assert branch_namespace(long) == "mlb-" + long[:15] + "-" + sha(long)
    assert len(branch_namespace(long)) == 30
    name = branch_app_name(long, "b-" + "x" * 28, "fraud-detector-v2x")
    assert name == f"{long}-b-xxxxxxxxx"[:52] + "-" + sha(f"{long}/b-{'x' * 28}/fraud-detector-v2x")
    assert len(name) == 63 and DNS_LABEL.fullmatch(name)
    ends_with_dash = "a" * 51 + "-b"  # cut at 52 it ends with '-', which is dropped once
    assert branch_app_name(ends_with_dash, "b-x", "m").startswith("a" * 51 + "-")
    assert "--" not in branch_app_name(ends_with_dash, "b-x", "m")[:52]


def test_feature_branch_names() -> None:
    names = names_for(PROJECT, "feature/Add-XGB", "churn")
    env = "b-feature-add-xgb-" + sha("feature/Add-XGB")
    slug_ = "data-science-churn-" + sha(PROJECT, 6)
    assert names.project_slug == slug_
    assert names.environment == env and not names.is_stand
    assert names.namespace == "mlb-" + slug_
    # The namespace (29) and the InferenceService name share 63 - len("-predictor-") = 52.
    assert names.k8s_name == "churn-b-featur-" + sha(_k8s_key(PROJECT, env, "churn"), 8)
    assert names.app_name == f"{slug_}-{env}-churn"[:52] + "-" + sha(f"{slug_}/{env}/churn")
    assert names.experiment == "data-science/churn/churn"
    assert names.registered_model == f"{slug_}.churn"
    assert names.dag_id("training") == f"{slug_}__{env}__churn__training"
    assert names.dag_path("inference") == f"dags/{slug_}/{env}/churn__inference.py"
    assert names.gitops_dir == f"environments/{slug_}/{env}/churn"
    assert names.values_path == f"environments/{slug_}/{env}/churn/values.yaml"
    assert names.app_config_path == f"environments/{slug_}/{env}/churn/config.json"
    assert names.s3_prefix == f"branches/{slug_}/{env}/"
    assert_valid(names)


def test_stand_names() -> None:
    names = names_for("demo", "main", "churn", stand="production")
    assert names.environment == "production" and names.is_stand
    assert names.namespace == "ml-demo"
    assert names.k8s_name == "churn-production"
    assert names.gitops_dir == "environments/demo/production/churn"
    assert names.dag_id("monitoring") == "demo__production__churn__monitoring"
    assert_valid(names)


def test_k8s_name_is_unambiguous_for_dashed_models_and_stands() -> None:
    # "a-b" + "c" and "a" + "b-c" would both read "a-b-c": a dashed model name is hashed.
    one = names_for("demo", "main", "a-b", stand="c")
    other = names_for("demo", "c", "a")
    assert other.k8s_name == "a-b-c"
    assert one.k8s_name != other.k8s_name
    assert one.k8s_name.startswith("a-b-c-") and len(one.k8s_name) == len("a-b-c-") + 8


def test_app_name_is_unique_across_projects() -> None:
    # Same readable text, different (project, environment, model).
    one = names_for("a", "c", "m")  # a-b-c-m
    other = names_for("a-b", "main", "m", stand="c")  # a-b-c-m
    assert one.app_name != other.app_name
    assert one.app_name.startswith("a-b-c-m-") and other.app_name.startswith("a-b-c-m-")


def test_as_dict_is_json_ready_and_complete() -> None:
    names = names_for(PROJECT, "feature/x", "churn")
    data = json.loads(json.dumps(names.as_dict(DAG_KINDS)))
    assert data["environment"] == names.environment
    assert data["values_path"] == names.values_path
    assert data["app_config_path"] == names.app_config_path
    assert data["dag_ids"] == {kind: names.dag_id(kind) for kind in DAG_KINDS}
    assert data["dag_paths"] == {kind: names.dag_path(kind) for kind in DAG_KINDS}
    assert data["is_stand"] is False
    assert names.as_dict(["training"])["dag_ids"] == {"training": names.dag_id("training")}
    assert names.as_dict(())["dag_paths"] == {}


@pytest.mark.parametrize(
    "model", ["", "A", "Churn", "1abc", "-a", "a-", "a_b", "a.b", "ü", "a" * (MAX_NAME_LENGTH + 1)]
)
def test_bad_model_name(model: str) -> None:
    with pytest.raises(ValueError, match="invalid model name"):
        names_for(PROJECT, "main", model)


@pytest.mark.parametrize(
    "stand", ["", "b-prod", "b-", "Production", "1prod", "prod-", "prod_1", "p" * 21, "pröd"]
)
def test_bad_stand_name(stand: str) -> None:
    with pytest.raises(ValueError, match="invalid stand name"):
        names_for(PROJECT, "main", "churn", stand=stand)


@pytest.mark.parametrize("stand", ["p", "prod", "a-b", "b", "bb-1", "x" * 20])
def test_good_stand_name(stand: str) -> None:
    assert names_for(PROJECT, "main", "churn", stand=stand).environment == stand


def test_edge_model_names_are_accepted() -> None:
    assert MAX_NAME_LENGTH == 20
    assert_valid(names_for(PROJECT, "main", "m" * MAX_NAME_LENGTH))
    assert_valid(names_for(PROJECT, "main", "a--b"))
    assert_valid(names_for(PROJECT, "main", "m"))


def test_dag_kind_is_any_lowercase_word() -> None:
    names = names_for(PROJECT, "main", "churn")
    assert names.dag_id("retraining").endswith("__churn__retraining")
    assert names.dag_path("x").endswith("/churn__x.py")
    for bad in ("", "training__x", "TRAINING", "train-1", "a.b", "../x", "ü", "training\n"):
        with pytest.raises(ValueError, match="invalid DAG kind"):
            names.dag_id(bad)
        with pytest.raises(ValueError, match="invalid DAG kind"):
            names.dag_path(bad)


def test_naming_does_not_import_the_config_module() -> None:
    # config.mlops takes its name rules from config.naming: the other way round is a cycle.
    code = "import sys, modelci.config.naming; print('modelci.config.mlops' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


# --- properties -------------------------------------------------------------------------------

_seen: dict[str, dict[str, str]] = {"env": {}, "k8s": {}, "dag": {}, "gitops": {}, "app": {}}


def _record(kind: str, name: str, branch: str) -> None:
    first = _seen[kind].setdefault(name, branch)
    assert first == branch, f"{kind} {name!r} for both {first!r} and {branch!r}"


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(branch=branches)
def test_every_branch_gets_valid_distinct_names(branch: str) -> None:
    # Short project and model: every k8s_name here stays readable, so a collision is a real bug,
    # not a 32-bit hash collision.
    names = names_for("demo", branch, "m")
    assert names == names_for("demo", branch, "m")  # deterministic
    assert_valid(names)
    assert_feature_environment(branch, names.environment)
    _record("env", names.environment, branch)
    _record("k8s", names.k8s_name, branch)
    _record("dag", names.dag_id("training"), branch)
    _record("gitops", names.gitops_dir, branch)
    _record("app", names.app_name, branch)


def test_the_big_property_saw_many_branches() -> None:
    # Runs after the property above (file order); guards against a strategy that degenerates.
    if not _seen["env"]:
        pytest.skip("run together with test_every_branch_gets_valid_distinct_names")
    assert len(_seen["env"]) >= 5_000


@settings(max_examples=300, deadline=None)
@given(family=case_and_punct_family())
def test_case_and_punctuation_variants_get_distinct_environments(family: set[str]) -> None:
    envs = {feature_environment(branch) for branch in family}
    assert len(envs) == len(family)


@settings(max_examples=60, deadline=None)
@given(batch=st.sets(branches, min_size=20, max_size=50))
def test_realistic_project_names_do_not_collide(batch: set[str]) -> None:
    # A long project path and a dashed model force hashed k8s and app names.
    all_names = [names_for("group/sub-group/Churn.Prediction", b, "churn-xgb") for b in batch]
    for names in all_names:
        assert_valid(names)
    for field in ("environment", "k8s_name", "app_name", "gitops_dir", "s3_prefix"):
        assert len({getattr(names, field) for names in all_names}) == len(batch), field
    assert len({names.dag_id("inference") for names in all_names}) == len(batch)


@settings(max_examples=300, deadline=None)
@given(
    project=st.one_of(any_unicode, git_like),
    branch=branches,
    model=st.from_regex(r"[a-z]([a-z0-9-]{0,18}[a-z0-9])?", fullmatch=True),
    stand=st.one_of(
        st.none(),
        st.from_regex(r"[a-z]([a-z0-9-]{0,18}[a-z0-9])?", fullmatch=True).filter(
            lambda s: not s.startswith("b-")
        ),
    ),
)
def test_any_project_model_and_stand_give_valid_names(
    project: str, branch: str, model: str, stand: str | None
) -> None:
    names = names_for(project, branch, model, stand=stand)
    assert_valid(names)
    assert names.is_stand == (stand is not None)
    if stand is None:
        assert_feature_environment(branch, names.environment)
    else:
        assert names.environment == stand
        assert feature_environment(branch) != stand


@settings(max_examples=50, deadline=None)
@given(projects=st.sets(st.one_of(any_unicode, git_like), min_size=10, max_size=40))
def test_distinct_projects_get_distinct_slugs_and_namespaces(projects: set[str]) -> None:
    assert len({project_slug_of(project) for project in projects}) == len(projects)
    namespaces = {names_for(project, "main", "m").namespace for project in projects}
    assert len(namespaces) == len(projects)
    for project in projects:
        candidate = "ml-" + project_slug_of(project)
        if len(candidate) <= 30:
            assert namespace_of(project) == candidate


@given(branch=st.text(max_size=80), model=st.sampled_from(["churn", "m", "a-b"]))
def test_environment_dirs_hold_every_path_of_each_model(branch: str, model: str) -> None:
    """What a stop job removes (without the config) contains everything deploys wrote."""
    dirs = environment_dirs("group/proj", branch)
    names = names_for("group/proj", branch, model)
    assert dirs.environment == names.environment
    assert names.gitops_dir.startswith(dirs.gitops_dir + "/")
    assert names.s3_prefix == dirs.s3_prefix
    for kind in DAG_KINDS:
        assert names.dag_path(kind).startswith(dirs.dag_dir + "/")


@pytest.mark.parametrize("branch", ["feature/a", "feature/A", "feature/a-", "Fix/v2.1_x--y"])
def test_gitlab_can_name_an_environment_after_an_ordinary_branch(branch: str) -> None:
    assert gitlab_environment_problem(branch) is None


@pytest.mark.parametrize(
    ("branch", "reported"),
    [
        ("feat/ÜBER#1'x", "'#' \"'\" 'Ü'"),
        ("feature/$CI_JOB_TOKEN", "'$'"),  # GitLab would expand it
        ("feature/{x}", "'{' '}'"),
        ("f/" + "x" * GITLAB_BRANCH_MAX, "more than 200"),
    ],
)
def test_branches_gitlab_cannot_name_an_environment_after(branch: str, reported: str) -> None:
    problem = gitlab_environment_problem(branch)
    assert problem is not None and reported in problem


def test_validate_checks_the_branch_of_a_feature_push_only() -> None:
    from modelci.commands.validate import check_branch_name
    from modelci.errors import ModelciError

    odd = "feat/ÜBER"
    check_branch_name({})  # outside CI
    check_branch_name({"CI_COMMIT_BRANCH": odd, "CI_DEFAULT_BRANCH": odd})  # default branch
    check_branch_name({"CI_COMMIT_REF_NAME": odd})  # a merge request or tag pipeline
    with pytest.raises(ModelciError, match=r"branch feat/ÜBER cannot name its GitLab environment"):
        check_branch_name({"CI_COMMIT_BRANCH": odd, "CI_DEFAULT_BRANCH": "main"})
