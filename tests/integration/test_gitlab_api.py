"""The merge request note, against a fake GitLab API (fake_gitlab.py: GitLab cannot run here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelci.errors import ModelciError
from modelci.gitlab_api import note_marker, upsert_merge_request_notes

from .fake_gitlab import FakeGitLab, start


@pytest.fixture
def gitlab_fake() -> Iterator[FakeGitLab]:
    fake = FakeGitLab(token="glpat-test-secret")
    server = start(fake)
    yield fake
    server.shutdown()


def _upsert(fake: FakeGitLab, body: str, token: str | None = None):
    return upsert_merge_request_notes(
        server_url=fake.url,
        token=token or fake.token,
        project="ml/churn",
        branch="feature/x",
        environment="b-feature-x",
        body=body,
    )


def test_note_is_created_once_then_edited_in_place(gitlab_fake: FakeGitLab) -> None:
    gitlab_fake.add_merge_request("ml/churn", "feature/x", iid=7)
    gitlab_fake.add_merge_request("ml/churn", "other", iid=8)

    first = _upsert(gitlab_fake, "links v1")
    second = _upsert(gitlab_fake, "links v2")
    third = _upsert(gitlab_fake, "links v2")

    assert [(r.merge_request_iid, r.created) for r in first] == [(7, True)]
    assert [(r.merge_request_iid, r.created) for r in second] == [(7, False)]
    notes = gitlab_fake.notes[7]
    assert len(notes) == 1
    assert notes[0]["body"] == f"{note_marker('b-feature-x')}\nlinks v2"
    assert gitlab_fake.notes[8] == []
    assert third[0].note_id == first[0].note_id
    assert sum(1 for method, _ in gitlab_fake.requests if method == "PUT") == 1


def test_no_open_merge_request_means_no_note(gitlab_fake: FakeGitLab) -> None:
    assert _upsert(gitlab_fake, "links") == []
    assert not any(method == "POST" for method, _ in gitlab_fake.requests)


def test_bad_token_is_a_clear_error_without_the_token(gitlab_fake: FakeGitLab) -> None:
    gitlab_fake.add_merge_request("ml/churn", "feature/x", iid=7)
    with pytest.raises(ModelciError) as caught:
        _upsert(gitlab_fake, "links", token="glpat-wrong-secret")
    assert "HTTP 401" in str(caught.value)
    assert "MODELCI_GITLAB_TOKEN" in str(caught.value)
    assert "glpat-wrong-secret" not in str(caught.value)
