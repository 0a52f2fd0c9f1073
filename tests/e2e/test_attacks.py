"""Attacks on the stands, each made with only what a feature-branch job of some project holds:
its S3 keys, its MLflow user, its repo token (docs/platform/security.md).

The stack is the README's set-up: SeaweedFS with one S3 identity per project's branches
(`branches/<project slug>/*` and the environment archives' cache) and one for the stands;
MLflow's basic-auth app with one user per project and a stand user; the DAG bundle and GitOps
repos served with GitLab's rules (the stands branch protected); GitLab's API, which cannot run
here, from the fake of `tests/integration/fake_gitlab.py`, holding the gate job's artifacts as
GitLab keeps them. Every attack must fail and leave every stand as it was: its aliases, its
DAGs and values, and every byte under its prefix.

The tests of this file run in order on one worker (they share one project's history): before
the first promotion, the first promotion, after it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import socket
import subprocess
import tarfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import git
import pytest
from botocore.exceptions import ClientError
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from modelci.config.naming import names_for, project_slug_of
from tests.e2e.test_faults import ModelRepo, model_repo, modelci
from tests.e2e.test_promotion import FEATURE_STEPS
from tests.harness import identities
from tests.harness.githttp import GitHttpServer, protect, serving
from tests.harness.gitremotes import STANDS_BRANCH, make_bare_repo
from tests.harness.lifecycle import NEIGHBOURS, SEAL_KEY, LocalPlatform
from tests.harness.mlflowserver import AUTH_ADMIN, start_mlflow
from tests.harness.ports import HOST
from tests.harness.s3server import BUCKET, S3Server, start_seaweedfs
from tests.integration.fake_gitlab import FakeGitLab, running

PROJECT, OTHER = "ml/attacked", "ml/neighbour"
MODEL, BRANCH = "churn", "feature/attacked"
REGISTERED = names_for(PROJECT, "main", MODEL).registered_model
SLUG, OTHER_SLUG = project_slug_of(PROJECT), project_slug_of(OTHER)
MLFLOW_USERS = {
    f"{SLUG}-branches": "attacked-branch-password",
    f"{OTHER_SLUG}-branches": "neighbour-branch-password",
    "stands": "stand-password-123456",
}
BRANCH_TOKEN, STAND_TOKEN, GITLAB_TOKEN = "glpat-branch-dev", "glpat-stand-bot", "glpat-api"
STAND_PREFIX = f"{identities.SCRATCH_PREFIX}/stands/{SLUG}/"


@dataclass
class Stack:
    platform: LocalPlatform
    git: GitHttpServer
    gitlab: FakeGitLab
    repo: ModelRepo
    head: str = ""  # the branch's pushed commit, which the merge request merges
    main: ModelRepo | None = None

    def branch_variables(self, slug: str = SLUG) -> dict[str, str]:
        """What a feature-branch job of the project with `slug` gets (unprotected ref)."""
        user = f"{slug}-branches"
        return {
            **self.platform.s3.identity(f"branches-{slug}").env,
            "MODELCI_DAG_REPO_URL": self.git.repo_url(self.platform.dag_repo),
            "MODELCI_GITOPS_REPO_URL": self.git.repo_url(self.platform.gitops_repo),
            "MODELCI_DAG_REPO_TOKEN": BRANCH_TOKEN,
            "MODELCI_GITOPS_REPO_TOKEN": BRANCH_TOKEN,
            "MLFLOW_TRACKING_USERNAME": user,
            "MLFLOW_TRACKING_PASSWORD": MLFLOW_USERS[user],
            "MODELCI_GITLAB_TOKEN": GITLAB_TOKEN,
            "CI_SERVER_URL": self.gitlab.url,
            "MODELCI_STANDS_SEAL_KEY": "",  # protected: never in a branch's job
        }

    def stand_variables(self) -> dict[str, str]:
        """What a job on the protected default branch gets on top."""
        stands = self.platform.s3.identity("stands")
        return {
            **self.branch_variables(),
            "MODELCI_STANDS_AWS_ACCESS_KEY_ID": stands.access_key,
            "MODELCI_STANDS_AWS_SECRET_ACCESS_KEY": stands.secret_key,
            "MODELCI_STANDS_DAG_REPO_TOKEN": STAND_TOKEN,
            "MODELCI_STANDS_GITOPS_REPO_TOKEN": STAND_TOKEN,
            "MODELCI_STANDS_MLFLOW_TRACKING_USERNAME": "stands",
            "MODELCI_STANDS_MLFLOW_TRACKING_PASSWORD": MLFLOW_USERS["stands"],
            "MODELCI_STANDS_SEAL_KEY": SEAL_KEY,
        }

    def s3(self, identity: str):
        keys = self.platform.s3.identity(identity)
        return self.platform.s3.client(access_key=keys.access_key, secret_key=keys.secret_key)

    def mlflow(self, user: str) -> As:
        return As(self.platform.mlflow.tracking_uri, user, MLFLOW_USERS.get(user, AUTH_ADMIN[1]))


@dataclass(frozen=True)
class As:
    """An MLflow client acting as `user` in every call (MLflow reads the credentials from the
    environment at each request, so they are set right before each)."""

    tracking_uri: str
    user: str
    password: str

    def __getattr__(self, name: str):
        method = getattr(MlflowClient(self.tracking_uri), name)

        def call(*args, **kwargs):
            os.environ["MLFLOW_TRACKING_USERNAME"] = self.user
            os.environ["MLFLOW_TRACKING_PASSWORD"] = self.password
            return method(*args, **kwargs)

        return call


def branch_identity(slug: str) -> identities.S3Identity:
    return identities.branches(BUCKET, slug)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("attacks")
    accounts = (
        identities.operator(BUCKET),
        identities.mlflow_server(BUCKET),
        identities.stands(BUCKET),
        branch_identity(SLUG),
        branch_identity(OTHER_SLUG),
    )
    s3 = start_seaweedfs(work / "s3", accounts)
    mlflow = start_mlflow(work / "mlflow", s3, users=MLFLOW_USERS)
    remotes = work / "remotes"
    repos = [make_bare_repo(remotes / name, NEIGHBOURS) for name in ("dags.git", "gitops.git")]
    for bare in repos:
        protect(bare, {STANDS_BRANCH: {"stand-bot"}, "main": {"developer", "stand-bot"}})
    tokens = {BRANCH_TOKEN: "developer", STAND_TOKEN: "stand-bot"}
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    try:
        with serving(remotes, tokens) as server, running(GITLAB_TOKEN) as gitlab:
            platform = LocalPlatform(s3, mlflow, *repos)
            repo = model_repo(work, PROJECT, branch=BRANCH)
            yield Stack(platform, server, gitlab, repo)
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.update({name: value})
        for service in (mlflow, s3):
            if service.process is not None:
                service.process.stop()


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def refused(result: subprocess.CompletedProcess[str], *phrases: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    for phrase in phrases:
        assert phrase in output, output[-3000:]
    return output


# --- what a stand is --------------------------------------------------------------------------


@dataclass(frozen=True)
class StandState:
    aliases: dict[str, str]
    dag_tip: str
    gitops_tip: str
    objects: dict[str, str]  # key under the stands' prefix -> sha256 of its bytes


def stand_state(stack: Stack) -> StandState:
    admin = stack.mlflow(AUTH_ADMIN[0])
    try:
        aliases = dict(admin.get_registered_model(REGISTERED).aliases)
    except MlflowException:
        aliases = {}
    objects = objects_under(stack.platform.s3, STAND_PREFIX)
    return StandState(aliases, *stands_tips(stack.platform), objects=objects)


def stands_tips(platform: LocalPlatform) -> tuple[str, str]:
    """The stands branch's commit in the DAG bundle and GitOps repos ("" before the first)."""
    tips = []
    for bare in (platform.dag_repo, platform.gitops_repo):
        repo = git.Repo(bare)
        has_stands = STANDS_BRANCH in {head.name for head in repo.heads}
        tips.append(repo.commit(STANDS_BRANCH).hexsha if has_stands else "")
    return tips[0], tips[1]


def objects_under(s3: S3Server, prefix: str) -> dict[str, str]:
    client = s3.client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
            found[item["Key"]] = hashlib.sha256(body).hexdigest()
    return found


# --- the branch's history -------------------------------------------------------------------


def pushed(stack: Stack) -> Stack:
    """The branch's push pipeline, once: trained and gated with the branch's credentials only
    (the password in the tracking URI, as some platforms set it), its gate job's artifacts kept
    by GitLab, and a merge request for it."""
    if stack.head:
        return stack
    variables = stack.branch_variables()
    password = variables.pop("MLFLOW_TRACKING_PASSWORD")
    user = variables.pop("MLFLOW_TRACKING_USERNAME")
    uri = stack.platform.mlflow.tracking_uri.replace("http://", f"http://{user}:{password}@")
    for step in FEATURE_STEPS:
        output = ok(modelci(stack.platform, stack.repo, step, MLFLOW_TRACKING_URI=uri, **variables))
        assert password not in output, f"{step} printed the MLflow password"
    stack.head = stack.repo.commit
    artifacts = {f".modelci/{MODEL}/gate.json": gate_record(stack).read_bytes()}
    stack.gitlab.add_pipeline(PROJECT, BRANCH, stack.head, {"modelci-gate": artifacts})
    stack.gitlab.add_merge_request(PROJECT, BRANCH, 1, sha=stack.head)
    return stack


def merged(stack: Stack) -> ModelRepo:
    """The merge commit on main, and the fake API's merge request as merged."""
    if stack.main is None:
        checkout = git.Repo(stack.repo.path)
        checkout.git.checkout("main")
        checkout.git.merge("--no-ff", "-q", "-m", f"Merge {BRANCH}", BRANCH)
        stack.main = ModelRepo(stack.repo.path, PROJECT, "main")
        request = stack.gitlab.merge_requests[0]
        request.state, request.merged_by, request.commits = "merged", "lead", (stack.main.commit,)
    return stack.main


def promote(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return modelci(stack.platform, merged(stack), "promote", *args, **stack.stand_variables())


def gate_record(stack: Stack) -> Path:
    """The gate job's record of the branch's run, in the checkout (its artifact in GitLab)."""
    return stack.repo.path / ".modelci" / MODEL / "gate.json"


def run_of(stack: Stack) -> str:
    return json.loads(gate_record(stack).read_text())["run_id"]


def model_dir(stack: Stack) -> str:
    """The run's model directory in S3 (`s3://mlops/mlflow-artifacts/...`), from its MLmodel."""
    admin = stack.mlflow(AUTH_ADMIN[0])
    (logged,) = admin.search_logged_models(
        experiment_ids=[admin.get_run(run_of(stack)).info.experiment_id],
        filter_string=f"source_run_id = '{run_of(stack)}'",
    )
    return logged.artifact_location.replace(
        "mlflow-artifacts:", f"s3://{BUCKET}/{identities.ARTIFACTS_PREFIX}"
    )


def proxy_put(stack: Stack, user: str, s3_uri: str, data: bytes) -> None:
    """Overwrite an artifact through MLflow's artifact proxy, as `user` (what a branch's
    MLflow user may do to its own experiment's runs)."""
    path = s3_uri.removeprefix(f"s3://{BUCKET}/{identities.ARTIFACTS_PREFIX}/")
    auth = base64.b64encode(f"{user}:{MLFLOW_USERS[user]}".encode()).decode()
    request = urllib.request.Request(
        f"{stack.platform.mlflow.tracking_uri}/api/2.0/mlflow-artifacts/artifacts/{path}",
        data=data,
        method="PUT",
        headers={"Authorization": f"Basic {auth}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def tree_digest(s3: S3Server, uri: str) -> str:
    """What modelci's tree_sha256 gives, computed here the same documented way."""
    prefix = uri.removeprefix(f"s3://{BUCKET}/").rstrip("/") + "/"
    lines = sorted(
        f"{digest}  {key[len(prefix) :]}\n" for key, digest in objects_under(s3, prefix).items()
    )
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def env_archive(stack: Stack) -> str:
    return json.loads(gate_record(stack).read_text())["environment_archive"]


def branch_code(stack: Stack) -> str:
    names = names_for(PROJECT, BRANCH, MODEL)
    return f"{identities.SCRATCH_PREFIX}/{names.s3_prefix}code/{stack.head}.tar.gz"


# --- before the first promotion ----------------------------------------------------------------


def test_the_first_merge_request_of_a_project_gets_its_note_with_mlflow_auth(stack) -> None:
    stack = pushed(stack)
    variables = stack.branch_variables()
    output = ok(
        modelci(
            stack.platform,
            stack.repo,
            "compare",
            CI="true",
            CI_PIPELINE_SOURCE="merge_request_event",
            CI_MERGE_REQUEST_IID="1",
            CI_MERGE_REQUEST_SOURCE_BRANCH_NAME=BRANCH,
            CI_MERGE_REQUEST_PROJECT_PATH=PROJECT,
            **variables,
        )
    )
    assert "WARNING" not in output, output
    (note,) = [n for n in stack.gitlab.notes[1] if "modelci:compare" in n["body"]]
    assert "staging" in note["body"]


def test_a_hanging_s3_fails_within_mlflows_bound(stack) -> None:
    """A store that accepts connections and never answers: the job fails in about as long as
    a silent MLflow would take (30 s), naming the store."""
    stack = pushed(stack)
    with socket.socket() as silent:
        silent.bind((HOST, 0))
        silent.listen(16)
        accepted: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            silent.settimeout(0.5)
            while not stop.is_set():
                try:
                    accepted.append(silent.accept()[0])
                except OSError:
                    continue

        threading.Thread(target=accept, daemon=True).start()
        endpoint = f"http://{HOST}:{silent.getsockname()[1]}"
        started = time.monotonic()
        try:
            result = modelci(
                stack.platform,
                stack.repo,
                "resolve",
                MLFLOW_S3_ENDPOINT_URL=endpoint,
                **stack.branch_variables(),
            )
        finally:
            stop.set()
            for connection in accepted:
                connection.close()
    elapsed = time.monotonic() - started
    refused(result, endpoint)
    assert elapsed < 45, f"resolve waited {elapsed:.0f} s on a silent S3"


def test_bytes_replaced_after_the_gate_never_reach_the_first_stand(stack) -> None:
    stack = pushed(stack)
    before = stand_state(stack)
    as_branch = stack.mlflow(f"{SLUG}-branches")
    run_id = run_of(stack)
    directory = model_dir(stack)
    operator = stack.platform.s3.client()

    # The model file replaced through MLflow's proxy, and the run's digest tag rewritten to
    # match it: the gate job's record in GitLab still names the trained bytes.
    mlmodel = f"{directory.rstrip('/')}/MLmodel"
    bucket_key = mlmodel.removeprefix(f"s3://{BUCKET}/")
    original = operator.get_object(Bucket=BUCKET, Key=bucket_key)["Body"].read()
    proxy_put(stack, f"{SLUG}-branches", mlmodel, original + b"\n# replaced after the gate\n")
    as_branch.set_tag(run_id, "modelci.model_sha256", tree_digest(stack.platform.s3, directory))
    try:
        result = promote(stack)
    finally:
        proxy_put(stack, f"{SLUG}-branches", mlmodel, original)
    refused(result, "the model directory of version", "modelci-gate job of the pipeline")
    assert stand_state(stack) == before

    # The environment archive replaced with the branch's own S3 keys (the shared cache), its
    # metadata and the run's tag rewritten.
    archive_key = env_archive(stack).removeprefix(f"s3://{BUCKET}/")
    trained = operator.get_object(Bucket=BUCKET, Key=archive_key)
    body, metadata = trained["Body"].read(), trained["Metadata"]
    swapped = b"not the environment the model trained in"
    digest = hashlib.sha256(swapped).hexdigest()
    stack.s3(f"branches-{SLUG}").put_object(
        Bucket=BUCKET, Key=archive_key, Body=swapped, Metadata={"sha256": digest}
    )
    as_branch.set_tag(run_id, "modelci.env_archive_sha256", digest)
    try:
        result = promote(stack)
    finally:
        operator.put_object(Bucket=BUCKET, Key=archive_key, Body=body, Metadata=metadata)
    refused(result, "the environment archive", "modelci-gate job of the pipeline")
    assert stand_state(stack) == before


def test_the_branch_cannot_choose_what_the_first_stand_runs(stack) -> None:
    """Tags, a pin, the gate verdict and the branch's code archive, all rewritten before the
    merge: the merge promotes the run the gate job recorded, with bytes it checked itself."""
    stack = pushed(stack)
    as_branch = stack.mlflow(f"{SLUG}-branches")
    run_id = run_of(stack)
    names = names_for(PROJECT, BRANCH, MODEL)
    experiment = as_branch.get_run(run_id).info.experiment_id
    forged = as_branch.create_run(
        experiment,
        tags={
            "modelci.pin": names.environment,
            "modelci.gate": "passed",
            "modelci.branch": BRANCH,
            "modelci.environment": names.environment,
        },
    ).info.run_id
    as_branch.log_text(forged, "flavors: {}\n", "model/MLmodel")
    as_branch.set_terminated(forged)
    as_branch.set_tag(run_id, "modelci.gate", "failed")  # the honest run, made to look refused
    stack.s3(f"branches-{SLUG}").put_object(
        Bucket=BUCKET, Key=branch_code(stack), Body=b"malicious code archive"
    )

    output = ok(promote(stack))

    admin = stack.mlflow(AUTH_ADMIN[0])
    assert admin.get_registered_model(REGISTERED).aliases == {"staging": "1"}
    version = admin.get_model_version(REGISTERED, "1")
    assert version.run_id == run_id and "modelci-gate job of the pipeline" in output
    tags = version.tags
    staging = f"{STAND_PREFIX}staging/"
    copies = objects_under(stack.platform.s3, staging)
    model_copy = f"s3://{BUCKET}/{staging}models/{MODEL}/v1/"
    assert tags["modelci.bytes.model_sha256"] == tree_digest(stack.platform.s3, model_copy)
    assert tags["modelci.bytes.model_sha256"] == tree_digest(stack.platform.s3, model_dir(stack))
    code_key = f"{staging}code/{stack.head}.tar.gz"
    assert tags["modelci.bytes.code_sha256"] == copies[code_key]
    code = stack.platform.s3.client().get_object(Bucket=BUCKET, Key=code_key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(code)) as archive:
        assert "mlops.yaml" in archive.getnames()  # the commit's files, not the branch's upload
    env_copy = next(key for key in copies if key.endswith("environment.tar.gz"))
    assert tags["modelci.bytes.environment_sha256"] == copies[env_copy]

    # What the stand serves and runs names only the stand's copies.
    stand_names = names_for(PROJECT, "main", MODEL, stand="staging")
    values = git.Repo(stack.platform.gitops_repo).git.show(
        f"{STANDS_BRANCH}:{stand_names.values_path}"
    )
    dag = git.Repo(stack.platform.dag_repo).git.show(
        f"{STANDS_BRANCH}:{stand_names.dag_path('inference')}"
    )
    for text in (values, dag):
        assert model_copy in text and f"s3://{BUCKET}/{env_copy}" in text
        assert "mlflow-artifacts" not in text and "/branches/" not in text
    assert f"s3://{BUCKET}/{code_key}" in dag


# --- after the first promotion ------------------------------------------------------------------


def promoted(stack: Stack) -> Stack:
    if "staging" not in stand_state(stack).aliases:
        test_the_branch_cannot_choose_what_the_first_stand_runs(stack)
    return stack


def test_branch_keys_cannot_write_a_stand_prefix(stack) -> None:
    stack = promoted(stack)
    before = stand_state(stack)
    for slug in (SLUG, OTHER_SLUG):
        client = stack.s3(f"branches-{slug}")
        target = f"{STAND_PREFIX}staging/models/{MODEL}/v1/MLmodel"
        with pytest.raises(ClientError, match="AccessDenied"):
            client.put_object(Bucket=BUCKET, Key=target, Body=b"x")
        with pytest.raises(ClientError, match="AccessDenied"):
            client.delete_object(Bucket=BUCKET, Key=target)
        answer = client.delete_objects(
            Bucket=BUCKET, Delete={"Objects": [{"Key": key} for key in before.objects]}
        )
        assert {error["Code"] for error in answer.get("Errors", [])} == {"AccessDenied"}
    assert stand_state(stack) == before


def test_a_later_stand_takes_the_stand_copy_whatever_the_branch_rewrote(stack) -> None:
    stack = promoted(stack)
    as_branch = stack.mlflow(f"{SLUG}-branches")
    operator = stack.platform.s3.client()
    staging = objects_under(stack.platform.s3, f"{STAND_PREFIX}staging/")
    directory = model_dir(stack)
    mlmodel = f"{directory.rstrip('/')}/MLmodel"
    original = operator.get_object(Bucket=BUCKET, Key=mlmodel.removeprefix(f"s3://{BUCKET}/"))
    original_bytes = original["Body"].read()
    archive_key = env_archive(stack).removeprefix(f"s3://{BUCKET}/")
    trained = operator.get_object(Bucket=BUCKET, Key=archive_key)
    body, metadata = trained["Body"].read(), trained["Metadata"]

    proxy_put(stack, f"{SLUG}-branches", mlmodel, b"flavors: {}\n")
    branch_keys = stack.s3(f"branches-{SLUG}")
    branch_keys.put_object(Bucket=BUCKET, Key=archive_key, Body=b"swapped")
    branch_keys.put_object(Bucket=BUCKET, Key=branch_code(stack), Body=b"malicious code")
    for tag in ("modelci.model_sha256", "modelci.env_archive_sha256"):
        as_branch.set_tag(run_of(stack), tag, "0" * 64)
    try:
        ok(promote(stack, "--stand", "production"))
    finally:
        proxy_put(stack, f"{SLUG}-branches", mlmodel, original_bytes)
        operator.put_object(Bucket=BUCKET, Key=archive_key, Body=body, Metadata=metadata)

    production = objects_under(stack.platform.s3, f"{STAND_PREFIX}production/")

    def relative(objects: dict[str, str], stand: str) -> dict[str, str]:
        return {k.removeprefix(f"{STAND_PREFIX}{stand}/"): v for k, v in objects.items()}

    served = {"models", "envs", "code"}
    assert {
        k: v for k, v in relative(production, "production").items() if k.split("/")[0] in served
    } == {k: v for k, v in relative(staging, "staging").items() if k.split("/")[0] in served}
    assert stand_state(stack).aliases == {"staging": "1", "production": "1"}


def test_feature_credentials_cannot_stop_or_clean_up_a_stand(stack) -> None:
    stack = promoted(stack)
    before = stand_state(stack)
    variables = {
        **stack.branch_variables(),
        "MODELCI_STANDS_AWS_ACCESS_KEY_ID": "",  # an unprotected ref gets no protected variable
    }
    result = modelci(stack.platform, merged(stack), "stop", "--stand", "staging", **variables)
    refused(result, "needs the stand credentials", "Nothing was changed")
    stack.gitlab.branches = ["main"]
    ok(modelci(stack.platform, merged(stack), "cleanup", **variables))
    assert stand_state(stack) == before


def test_another_project_cannot_touch_this_one(stack) -> None:
    stack = promoted(stack)
    before = stand_state(stack)
    neighbour = stack.mlflow(f"{OTHER_SLUG}-branches")
    attempts = [
        lambda: neighbour.set_tag(run_of(stack), "modelci.gate", "failed"),
        lambda: neighbour.set_registered_model_alias(REGISTERED, "staging", "1"),
        lambda: neighbour.set_model_version_tag(REGISTERED, "1", "modelci.bytes.model_sha256", "0"),
    ]
    for attempt in attempts:
        with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|Permission denied"):
            attempt()
    their_keys = stack.s3(f"branches-{OTHER_SLUG}")
    with pytest.raises(ClientError, match="AccessDenied"):
        their_keys.put_object(Bucket=BUCKET, Key=branch_code(stack), Body=b"x")
    # The environment archives' cache: this project's is its own; a planted archive can only
    # go into the neighbour's cache, which this project's jobs never read.
    archive = env_archive(stack).removeprefix(f"s3://{BUCKET}/")
    assert archive.startswith(f"{identities.SCRATCH_PREFIX}/envs/{SLUG}/")
    with pytest.raises(ClientError, match="AccessDenied"):
        their_keys.put_object(Bucket=BUCKET, Key=archive, Body=b"planted")
    their_cache = archive.replace(f"/envs/{SLUG}/", f"/envs/{OTHER_SLUG}/")
    their_keys.put_object(Bucket=BUCKET, Key=their_cache, Body=b"planted")
    assert stand_state(stack) == before


def test_a_gate_failed_run_is_never_promoted_by_pin(stack) -> None:
    """Without a merge request (`--branch`), the run is the one `resolve` picks: a pin chooses
    among the branch's runs, it never lifts the gate."""
    stack = promoted(stack)
    before = stand_state(stack)
    as_branch = stack.mlflow(f"{SLUG}-branches")
    names = names_for(PROJECT, BRANCH, MODEL)
    experiment = as_branch.get_run(run_of(stack)).info.experiment_id
    failed = as_branch.create_run(
        experiment, tags={"modelci.pin": names.environment, "modelci.gate": "failed"}
    ).info.run_id
    as_branch.set_terminated(failed)
    refused(promote(stack, "--branch", BRANCH), f"run {failed}", "did not pass the quality gate")
    assert stand_state(stack) == before


def test_a_registered_model_taken_by_another_project_puts_nothing_on_a_stand(
    stack, tmp_path
) -> None:
    """MLflow lets any user create a registered model, so another project's user can take the
    name of a project that has not merged yet: a version of its own bytes, digest tags copied
    from a real version, and the alias the next stand promotes from. The stand takes no version
    whose digests no stand job sealed, nor one no stand job ever copied."""
    stack = promoted(stack)
    project = "ml/squatted"
    registered = names_for(project, "main", MODEL).registered_model
    repo = model_repo(tmp_path, project, branch=BRANCH)
    git.Repo(repo.path).git.checkout("main")
    main = ModelRepo(repo.path, project, "main")
    squatter = stack.mlflow(f"{OTHER_SLUG}-branches")
    experiment = squatter.create_experiment(f"{OTHER}/squat")
    run = squatter.create_run(experiment).info.run_id
    squatter.log_text(run, "flavors: {}\n", "model/MLmodel")
    squatter.create_registered_model(registered)
    squatter.create_model_version(registered, f"runs:/{run}/model", run_id=run)
    squatter.set_registered_model_alias(registered, "staging", "1")
    genuine = stack.mlflow(AUTH_ADMIN[0]).get_model_version(REGISTERED, "1").tags
    forged = {key: value for key, value in genuine.items() if key.startswith("modelci.bytes.")}
    for key, value in forged.items():
        squatter.set_model_version_tag(registered, "1", key, value)
    slug = project_slug_of(project)

    def state() -> tuple:
        squatted = objects_under(stack.platform.s3, f"{identities.SCRATCH_PREFIX}/stands/{slug}/")
        return stands_tips(stack.platform), squatted

    before = state()
    variables = {**stack.stand_variables(), "CI_PROJECT_PATH": project}
    forged_digests = modelci(stack.platform, main, "promote", "--stand", "production", **variables)
    refused(forged_digests, "that no stand job sealed", "nothing was changed")
    for key in forged:
        squatter.delete_model_version_tag(registered, "1", key)
    never_copied = modelci(stack.platform, main, "promote", "--stand", "production", **variables)
    refused(never_copied, "has never been on a stand", "Nothing was changed")
    assert state() == before
    assert stack.mlflow(AUTH_ADMIN[0]).get_registered_model(registered).aliases == {"staging": "1"}


def test_a_retraining_outcome_mlflow_refuses_is_a_warning_not_a_failure(stack, capsys) -> None:
    """With MLflow auth on, the promote job's stand user may not tag the project's runs: the
    note on the monitoring run is then a warning, and the promotion's own result stands."""
    from modelci.lifecycle.retraining import RetrainRequest, record_outcome
    from modelci.systems.tracking import Tracker

    stack = pushed(stack)
    os.environ["MLFLOW_TRACKING_USERNAME"] = "stands"
    os.environ["MLFLOW_TRACKING_PASSWORD"] = MLFLOW_USERS["stands"]
    request = RetrainRequest(model=MODEL, trigger_run=run_of(stack))
    record_outcome(Tracker(stack.platform.mlflow.tracking_uri), request, "promoted")
    captured = capsys.readouterr()
    assert f"the outcome was not recorded on monitoring run {run_of(stack)}" in captured.err
    assert "refused" in captured.err
    tags = stack.mlflow(AUTH_ADMIN[0]).get_run(run_of(stack)).data.tags
    assert "modelci.retrain.outcome" not in tags
