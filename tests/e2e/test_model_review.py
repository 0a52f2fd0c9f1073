"""The model review of a merge request, end to end: the real CI templates in gitlab-ci-local,
the real MLflow and S3, each model served by `modelci serve` (MLServer in its own environment
archive), the fake GitLab API for the notes (a GitLab server cannot run here), and the notes
rendered by headless Chromium with Mermaid's own JavaScript, as GitLab renders them.

A production model, then two branches against it: one renames an input column and trades the
linear model for a much larger, slower forest; the other changes only a parameter. The first
merge request's check fails on the input contract until the merge request carries the
acknowledgement label; both notes show agreement, latency and what changed.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from pathlib import Path

import git
import pytest
from mlflow import MlflowClient

from modelci.config.naming import names_for
from modelci.review.contract import ACK_LABEL
from tests.e2e.test_faults import job_states
from tests.harness.lifecycle import (
    LocalPlatform,
    commit_change,
    make_model_repo,
    merge_request_event,
    run_pipeline,
)
from tests.integration.fake_gitlab import FakeGitLab, running
from tests.integration.note_html import assert_note_renders

PROJECT = "ml/churn-review"
MODEL = "churn"
TOKEN = "glpat-review-secret-token"
SEED, RENAME, PARAM = "feature/seed", "feature/rename-slower", "feature/smaller-c"
TRAIN_JOBS = ("modelci-validate", "modelci-train", "modelci-gate")
REGISTERED = names_for(PROJECT, "main", MODEL).registered_model
NOTE_MARKER = "<!-- modelci:compare"
SAMPLE_ROWS = 40
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "review"


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with running(TOKEN) as fake:
        yield fake


class Review:
    def __init__(self, platform: LocalPlatform, gitlab: FakeGitLab, repo: Path) -> None:
        self.platform, self.gitlab, self.repo = platform, gitlab, repo
        self.variables = {
            **platform.ci_variables(),
            "MODELCI_GITLAB_TOKEN": TOKEN,
            "MODELCI_REVIEW_SAMPLES": "8,3",  # few latency samples: the test stays lean
        }
        self.timings: dict[str, float] = {}

    def pipeline(self, what: str, jobs=(), **predefined: str | None):
        started = time.monotonic()
        result = run_pipeline(
            self.repo,
            self.variables,
            jobs=jobs,
            predefined={"CI_SERVER_URL": self.gitlab.url, "GITLAB_USER_LOGIN": "ds", **predefined},
        )
        self.timings[what] = time.monotonic() - started
        output = result.stdout + result.stderr
        assert TOKEN not in output, "the GitLab token appears in the log"
        return result.returncode, output

    def branch(self, name: str, changes) -> None:
        """A branch off main with a change to each path of `changes`, trained and gated."""
        repo = git.Repo(self.repo)
        repo.git.checkout("main")
        repo.git.checkout("-b", name)
        for path, change in changes.items():
            text = change((self.repo / path).read_text(encoding="utf-8"))
            commit_change(self.repo, path, text, f"{name}: change {path}")
        code, output = self.pipeline(f"train {name}", TRAIN_JOBS)
        assert code == 0 and all(job_states(output).get(j) == "PASS" for j in TRAIN_JOBS), output[
            -4000:
        ]

    def merge_request(self, name: str, iid: int, **extra: str | None) -> tuple[int, str]:
        what = f"compare {name}" + (" again" if f"compare {name}" in self.timings else "")
        return self.pipeline(what, **merge_request_event(PROJECT, name, iid), **extra)

    def note(self, iid: int) -> str:
        (note,) = [n for n in self.gitlab.notes[iid] if NOTE_MARKER in n["body"]]
        return note["body"]


def renamed_and_slower(train: str) -> str:
    """Rename an input column; a 300-tree forest instead of the linear model."""
    assert '"days_since_last_login",' in train and "LogisticRegression(" in train
    train = train.replace('"days_since_last_login",', '"days_since_login",')
    linear = "make_pipeline(StandardScaler(), LogisticRegression(C=args.c, max_iter=args.max_iter))"
    assert linear in train
    train = train.replace(
        linear, "RandomForestClassifier(n_estimators=300, random_state=args.seed)"
    )
    assert 'name="model",' in train
    train = train.replace(
        'name="model",', 'name="model", skops_trusted_types=["sklearn.tree._tree.Tree"],'
    )
    return train.replace(
        "from sklearn.linear_model import LogisticRegression",
        "from sklearn.ensemble import RandomForestClassifier\n"
        "from sklearn.linear_model import LogisticRegression",
    )


def smaller_c(config: str) -> str:
    assert 'args: ["--c", "0.5"]' in config
    return config.replace('args: ["--c", "0.5"]', 'args: ["--c", "0.02"]')


def renamed_in_sample(sample: str) -> str:
    header, rest = sample.split("\n", 1)
    return header.replace("days_since_last_login", "days_since_login") + "\n" + rest


def with_review_sample(repo: Path) -> None:
    """On main: an evaluation sample of 40 rows, named in mlops.yaml."""
    columns = [
        "tenure_months", "monthly_charges", "support_calls", "late_payments",
        "data_usage_gb", "contract_months_left", "num_products", "days_since_last_login",
    ]  # fmt: skip
    generator = random.Random(7)
    lines = [",".join(columns)]
    lines += [
        ",".join(f"{generator.gauss(0, 1.5):.4f}" for _ in columns) for _ in range(SAMPLE_ROWS)
    ]
    git.Repo(repo).git.checkout("main")
    commit_change(repo, "review-sample.csv", "\n".join(lines) + "\n", "An evaluation sample")
    config = (repo / "mlops.yaml").read_text(encoding="utf-8")
    config = config.replace(
        "    online:\n", "    review:\n      sample: review-sample.csv\n    online:\n", 1
    )
    commit_change(repo, "mlops.yaml", config, "Review on the sample")
    git.Repo(repo).git.checkout("-B", SEED)


def seed_production(review: Review) -> str:
    """Production: a run trained by the pipeline, registered and aliased as a stand job would."""
    with_review_sample(review.repo)
    code, output = review.pipeline("train production", TRAIN_JOBS)
    assert code == 0, output[-4000:]
    client = MlflowClient(review.platform.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(f"{PROJECT}/{MODEL}")
    (run,) = client.search_runs([experiment.experiment_id])
    client.create_registered_model(REGISTERED)
    model = client.search_logged_models([experiment.experiment_id])[0]
    version = client.create_model_version(
        REGISTERED, model.model_uri, run_id=run.info.run_id, model_id=model.model_id
    )
    client.set_registered_model_alias(REGISTERED, "production", version.version)
    client.set_model_version_tag(
        REGISTERED, version.version, "modelci.stand.production.action", "promote"
    )
    return version.version


def numbers_in(row_name: str, note: str) -> list[str]:
    (line,) = [line for line in note.splitlines() if line.startswith(f"| {row_name} |")]
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_two_branches_reviewed_against_production(
    platform: LocalPlatform, gitlab: FakeGitLab, tmp_path: Path
) -> None:
    repo = make_model_repo(tmp_path / "model", project=PROJECT, branch=SEED)
    review = Review(platform, gitlab, repo)
    assert seed_production(review) == "1"

    # Branch 1: renamed input, slower model. Its merge request's check fails on the contract.
    review.branch(RENAME, {"train.py": renamed_and_slower, "review-sample.csv": renamed_in_sample})
    gitlab.add_merge_request(PROJECT, RENAME, 1)
    code, output = review.merge_request(RENAME, 1)
    assert code != 0 and job_states(output).get("modelci-compare") == "FAIL", output[-4000:]
    assert "breaks the input contract of the model API" in output
    assert f"add the label {ACK_LABEL}" in output
    refused = review.note(1)  # the note is there all the same
    assert "❌ **Breaking change**" in refused
    assert "| `days_since_last_login` | removed |" in refused
    assert "| `days_since_login` | added |" in refused

    # Acknowledged with the label: the next pipeline passes, the same note says so.
    code, output = review.merge_request(RENAME, 1, CI_MERGE_REQUEST_LABELS=f"x,{ACK_LABEL}")
    assert code == 0 and job_states(output) == {"modelci-compare": "PASS"}, output[-4000:]
    first = review.note(1)
    assert "⚠️ **Breaking change** for the model API's clients, acknowledged by the" in first
    assert f"`label {ACK_LABEL}`" in first
    assert (
        "Looks renamed (same position and type): `days_since_last_login` → `days_since_login`"
        in first
    )
    assert "Agreement with `production v1`: **" in first
    assert (
        f"Both models predicted on the same {SAMPLE_ROWS + 5} rows (5 from the input example, "
        f"{SAMPLE_ROWS} from the sample)."
    ) in first
    # The forest is larger and slower than the linear model, measured side by side.
    size = numbers_in("model size", first)
    assert size[3].endswith("x") and float(size[3][:-1]) > 5, size
    p50 = numbers_in(f"{SAMPLE_ROWS + 5} rows p50", first)
    assert float(p50[2].split()[0]) > float(p50[1].split()[0]), p50
    assert "| `c` |" not in first  # logged by both runs, with the same value
    assert "**Parameters**" in first and "**Environment**: the same lock" in first

    # Branch 2: one parameter. No contract change, the check passes at once.
    review.branch(PARAM, {"mlops.yaml": smaller_c})
    gitlab.add_merge_request(PROJECT, PARAM, 2)
    code, output = review.merge_request(PARAM, 2)
    assert code == 0 and job_states(output) == {"modelci-compare": "PASS"}, output[-4000:]
    second = review.note(2)
    assert "✅ Same inputs and outputs as `production v1`." in second
    assert "Agreement with `production v1`: **" in second
    assert "| `c` | `0.5` | `0.02` |" in second
    assert re.search(r"\| 1 row p50 \| [\d.]+ ms \| [\d.]+ ms \|", second)

    for name, note in (("rename-slower", first), ("smaller-c", second)):
        assert_note_renders(note, ARTIFACTS / f"{name}.png", tmp_path / f"{name}.html")
    print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in review.timings.items()))
