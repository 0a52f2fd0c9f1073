"""The GitLab API calls, against a fake GitLab API (fake_gitlab.py: GitLab cannot run here)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from modelci.errors import ModelciError
from modelci.systems.gitlab_api import (
    MergeRequestInfo,
    merge_requests_of_commit,
    note_marker,
    upsert_merge_request_notes,
    upsert_note,
)
from tests.harness.ports import HOST

from .fake_gitlab import FakeGitLab, running

TOKEN = "glpat-test-secret"
PROJECT = "ml/churn"
MARKER = "<!-- modelci:test -->"


@pytest.fixture
def gitlab_fake() -> Iterator[FakeGitLab]:
    with running(TOKEN) as fake:
        yield fake


def _upsert(fake: FakeGitLab, body: str, token: str | None = None):
    return upsert_merge_request_notes(
        server_url=fake.url,
        token=token or fake.token,
        project=PROJECT,
        branch="feature/x",
        environment="b-feature-x",
        body=body,
    )


# --- report's notes on the branch's open merge requests --------------------------------------


def test_note_is_created_once_then_edited_in_place(gitlab_fake: FakeGitLab) -> None:
    gitlab_fake.add_merge_request(PROJECT, "feature/x", iid=7)
    gitlab_fake.add_merge_request(PROJECT, "other", iid=8)
    gitlab_fake.add_merge_request(PROJECT, "feature/x", iid=9, state="merged")

    first = _upsert(gitlab_fake, "links v1")
    second = _upsert(gitlab_fake, "links v2")
    third = _upsert(gitlab_fake, "links v2")

    assert [(r.merge_request_iid, r.created) for r in first] == [(7, True)]
    assert [(r.merge_request_iid, r.created, r.changed) for r in second] == [(7, False, True)]
    assert [(r.merge_request_iid, r.created, r.changed) for r in third] == [(7, False, False)]
    notes = gitlab_fake.notes[7]
    assert len(notes) == 1
    assert notes[0]["body"] == f"{note_marker('b-feature-x')}\nlinks v2"
    assert gitlab_fake.notes[8] == [] and gitlab_fake.notes[9] == []
    assert third[0].note_id == first[0].note_id
    assert len(gitlab_fake.calls("PUT")) == 1
    (listing, *_) = gitlab_fake.calls("GET")
    assert listing.path == "/api/v4/projects/ml%2Fchurn/merge_requests"
    assert listing.query["source_branch"] == "feature/x" and listing.query["state"] == "opened"


def test_no_open_merge_request_means_no_note(gitlab_fake: FakeGitLab) -> None:
    assert _upsert(gitlab_fake, "links") == []
    assert gitlab_fake.calls("POST") == []


def test_bad_token_is_a_clear_error_without_the_token(gitlab_fake: FakeGitLab) -> None:
    gitlab_fake.add_merge_request(PROJECT, "feature/x", iid=7)
    with pytest.raises(ModelciError) as caught:
        _upsert(gitlab_fake, "links", token="glpat-wrong-secret")
    assert "HTTP 401" in str(caught.value)
    assert "MODELCI_GITLAB_TOKEN" in str(caught.value)
    assert "glpat-wrong-secret" not in str(caught.value)
    assert len(gitlab_fake.requests) == 1  # a refusal is not retried


# --- one note, found by its marker ------------------------------------------------------------


def test_upsert_note_finds_its_note_among_many_on_a_later_page(gitlab_fake: FakeGitLab) -> None:
    gitlab_fake.add_merge_request(PROJECT, "feature/x", iid=7)
    for number in range(150):
        gitlab_fake.add_note(7, f"review comment {number}")
    mine = gitlab_fake.add_note(7, f"{MARKER}\nold")
    gitlab_fake.add_note(7, f"quoting it: {MARKER}")  # does not start with it

    result = upsert_note(gitlab_fake.url, TOKEN, PROJECT, 7, MARKER, "new")

    assert (result.note_id, result.created, result.changed) == (mine["id"], False, True)
    assert mine["body"] == f"{MARKER}\nnew"
    assert len(gitlab_fake.notes[7]) == 152
    pages = [call.query["page"] for call in gitlab_fake.calls("GET")]
    assert pages == ["1", "2"]


def test_upsert_note_creates_it_when_missing_and_sends_json(gitlab_fake: FakeGitLab) -> None:
    gitlab_fake.add_merge_request(PROJECT, "feature/x", iid=7)
    body = 'table | with "quotes" and\nlines `code`'

    result = upsert_note(gitlab_fake.url, TOKEN, PROJECT, 7, MARKER, body)

    assert result.created
    (post,) = gitlab_fake.calls("POST")
    assert post.path == "/api/v4/projects/ml%2Fchurn/merge_requests/7/notes"
    assert post.body == {"body": f"{MARKER}\n{body}"}
    assert post.token == TOKEN


def test_transient_errors_are_retried_twice_then_succeed(gitlab_fake: FakeGitLab) -> None:
    gitlab_fake.add_merge_request(PROJECT, "feature/x", iid=7)
    gitlab_fake.fail_with(503, count=2)

    result = upsert_note(gitlab_fake.url, TOKEN, PROJECT, 7, MARKER, "body")

    assert result.created
    assert [call.method for call in gitlab_fake.requests] == ["GET", "GET", "GET", "POST"]


def test_a_note_created_before_a_502_is_found_not_posted_again(gitlab_fake: FakeGitLab) -> None:
    gitlab_fake.add_merge_request(PROJECT, "feature/x", iid=7)
    gitlab_fake.act_then_fail(502)

    result = upsert_note(gitlab_fake.url, TOKEN, PROJECT, 7, MARKER, "body")

    assert result.created and [n["id"] for n in gitlab_fake.notes[7]] == [result.note_id]
    assert [call.method for call in gitlab_fake.requests] == ["GET", "POST", "GET"]


def test_a_502_that_created_no_note_is_looked_for_then_posted_once_more(
    gitlab_fake: FakeGitLab,
) -> None:
    gitlab_fake.add_merge_request(PROJECT, "feature/x", iid=7)
    gitlab_fake.fail_with(502, count=1, method="POST")

    result = upsert_note(gitlab_fake.url, TOKEN, PROJECT, 7, MARKER, "body")

    assert result.created and len(gitlab_fake.notes[7]) == 1
    assert [call.method for call in gitlab_fake.requests] == ["GET", "POST", "GET", "POST"]


def test_a_gateway_timeout_without_a_note_is_not_posted_again(gitlab_fake: FakeGitLab) -> None:
    """A 504 is a proxy giving up: GitLab may still be creating the note."""
    gitlab_fake.add_merge_request(PROJECT, "feature/x", iid=7)
    gitlab_fake.fail_with(504, method="POST")

    with pytest.raises(ModelciError, match="HTTP 504 to POST merge_requests/7/notes"):
        upsert_note(gitlab_fake.url, TOKEN, PROJECT, 7, MARKER, "body")

    assert len(gitlab_fake.calls("POST")) == 1


def test_unknown_merge_request_is_a_404_error_naming_it(gitlab_fake: FakeGitLab) -> None:
    with pytest.raises(ModelciError, match=r"HTTP 404 to GET merge_requests/99/notes"):
        upsert_note(gitlab_fake.url, TOKEN, PROJECT, 99, MARKER, "body")
    assert len(gitlab_fake.requests) == 1


def test_a_hanging_server_is_given_up_on_after_the_timeout(gitlab_fake: FakeGitLab) -> None:
    gitlab_fake.add_merge_request(PROJECT, "feature/x", iid=7)
    gitlab_fake.hang(60)

    started = time.monotonic()
    with pytest.raises(ModelciError, match="no answer within 5 s") as caught:
        upsert_note(gitlab_fake.url, TOKEN, PROJECT, 7, MARKER, "body")

    assert 4 < time.monotonic() - started < 10
    assert TOKEN not in str(caught.value)
    assert len(gitlab_fake.requests) == 1  # a timeout is not retried


def test_an_unreachable_server_is_retried_twice_in_bounded_time() -> None:
    with socket.socket() as closed:
        closed.bind((HOST, 0))
        url = f"http://user:pa55word@{HOST}:{closed.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(ModelciError) as caught:
            upsert_note(url, TOKEN, PROJECT, 7, MARKER, "body")
    message = str(caught.value)
    assert time.monotonic() - started < 5
    assert "unreachable" in message and "after 3 attempts" in message
    assert "pa55word" not in message and TOKEN not in message


# --- the merge requests of a commit -----------------------------------------------------------


def test_merge_requests_of_a_commit(gitlab_fake: FakeGitLab) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    gitlab_fake.add_merge_request(
        PROJECT, "feature/x", iid=7, state="merged", merged_by="alice", commits=(sha,)
    )
    gitlab_fake.add_merge_request(PROJECT, "feature/y", iid=8, commits=(sha,))
    gitlab_fake.add_merge_request(PROJECT, "feature/z", iid=9, commits=("f" * 40,))
    gitlab_fake.add_merge_request("other/project", "feature/x", iid=10, commits=(sha,))

    found = merge_requests_of_commit(gitlab_fake.url, TOKEN, PROJECT, sha)

    assert found == [
        MergeRequestInfo(
            iid=7,
            source_branch="feature/x",
            target_branch="main",
            state="merged",
            merged_by="alice",
            web_url=f"{gitlab_fake.url}/{PROJECT}/-/merge_requests/7",
        ),
        MergeRequestInfo(
            iid=8,
            source_branch="feature/y",
            target_branch="main",
            state="opened",
            merged_by=None,
            web_url=f"{gitlab_fake.url}/{PROJECT}/-/merge_requests/8",
        ),
    ]
    (call,) = gitlab_fake.requests
    assert call.path == f"/api/v4/projects/ml%2Fchurn/repository/commits/{sha}/merge_requests"
    assert merge_requests_of_commit(gitlab_fake.url, TOKEN, PROJECT, "e" * 40) == []


@pytest.mark.parametrize("status", [401, 403, 500])
def test_merge_requests_of_a_commit_failing_is_a_clear_error(
    gitlab_fake: FakeGitLab, status: int
) -> None:
    gitlab_fake.fail_with(status)
    with pytest.raises(ModelciError) as caught:
        merge_requests_of_commit(gitlab_fake.url, TOKEN, PROJECT, "a" * 40)
    message = str(caught.value)
    assert f"HTTP {status}" in message and "repository/commits/" in message
    assert PROJECT in message and TOKEN not in message
