"""modelci.systems.gitrepo against real bare repositories (file transport) and real git smart HTTP.

The HTTP test runs git's own `git http-backend` behind a small basic-auth gate, so the token path
(GIT_ASKPASS) is exercised end to end the way a GitLab https remote uses it.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import git
import pytest

from modelci.errors import ModelciError
from modelci.systems.gitrepo import Changes, CommitResult, Reader, RemoteRepo, redact_url
from tests.harness.gitremotes import make_bare_repo


def tip(bare: Path, branch: str = "main") -> git.Commit:
    return git.Repo(bare).commit(branch)


def files_at(commit: git.Commit) -> dict[str, bytes]:
    return {
        item.path: item.data_stream.read() for item in commit.tree.traverse() if item.type == "blob"
    }


def writes(files: dict[str, bytes]) -> Callable[[Reader], Changes]:
    """A build callable that writes fixed content."""
    return lambda read: Changes(writes=files)


def allow_partial_clone(bare: Path) -> Path:
    """Enable what GitLab enables for partial clone (blob filters) on a local bare repo."""
    with git.Repo(bare).config_writer() as config:
        config.set_value("uploadpack", "allowFilter", "true")
    return bare


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return make_bare_repo(
        tmp_path / "gitops.git",
        {
            "README.md": "# gitops\n",
            "envs/a/values.yaml": "# keep this comment\nimage: v1\n",
            "envs/a/sub/config.json": "{}\n",
            "envs/ab/values.yaml": "image: ab\n",
            "envs/b/values.yaml": "image: b\n",
        },
    )


def test_first_write_is_one_commit_with_message_author_and_files(remote: Path) -> None:
    before = tip(remote)
    repo = RemoteRepo(str(remote), "main", author=("CI bot", "bot@example.invalid"))

    result = repo.apply(
        ["envs/c"],
        lambda read: Changes(writes={"envs/c/values.yaml": b"image: c\n", "envs/c/x.json": b"{}"}),
        "deploy c: pipeline 42\n\nwhy: branch c",
    )

    after = tip(remote)
    assert result.sha == after.hexsha and result.attempts == 1
    assert [p.hexsha for p in after.parents] == [before.hexsha]
    assert after.message == "deploy c: pipeline 42\n\nwhy: branch c\n"
    assert (after.author.name, after.author.email) == ("CI bot", "bot@example.invalid")
    assert files_at(after) == {
        **files_at(before),
        "envs/c/values.yaml": b"image: c\n",
        "envs/c/x.json": b"{}",
    }
    assert after.tree["envs/c/values.yaml"].mode == 0o100644


def test_identical_apply_makes_no_commit(remote: Path) -> None:
    repo = RemoteRepo(str(remote), "main")
    build = writes({"envs/c/values.yaml": b"image: c\n"})
    first = repo.apply(["envs/c"], build, "deploy c")

    second = repo.apply(["envs/c"], build, "deploy c")

    assert first.sha is not None
    assert second.sha is None and second.attempts == 1
    assert tip(remote).hexsha == first.sha


def test_removing_a_directory_removes_all_beneath_and_nothing_else(remote: Path) -> None:
    repo = RemoteRepo(str(remote), "main")

    result = repo.apply(["envs/a"], lambda read: Changes(removes=["envs/a/"]), "stop a")

    assert result.sha is not None
    assert set(files_at(tip(remote))) == {"README.md", "envs/ab/values.yaml", "envs/b/values.yaml"}
    assert repo.list_dir("envs") == ["ab", "b"]
    assert repo.apply(["envs/a"], lambda read: Changes(removes=["envs/a"]), "stop a").sha is None


def test_removing_a_directory_and_writing_beneath_it_replaces_it(remote: Path) -> None:
    repo = RemoteRepo(str(remote), "main")
    change = Changes(removes=["envs/a"], writes={"envs/a/config.json": b"{}\n"})

    assert repo.apply(["envs/a"], lambda read: change, "replace a").sha is not None

    files = files_at(tip(remote))
    assert set(files) == {
        "README.md", "envs/a/config.json", "envs/ab/values.yaml", "envs/b/values.yaml",
    }  # fmt: skip
    assert files["envs/a/config.json"] == b"{}\n"


def test_build_sees_current_content_and_other_files_are_kept(remote: Path) -> None:
    repo = RemoteRepo(str(remote), "main")
    seen: dict[str, bytes | None] = {}

    def update_image(read: Reader) -> Changes:
        seen["values"] = read("envs/a/values.yaml")
        seen["absent"] = read("envs/a/nope.yaml")
        return Changes(writes={"envs/a/values.yaml": seen["values"].replace(b"v1", b"v2")})

    repo.apply(["envs/a"], update_image, "bump a")

    assert seen == {"values": b"# keep this comment\nimage: v1\n", "absent": None}
    assert repo.read("envs/a/values.yaml") == b"# keep this comment\nimage: v2\n"
    assert repo.read("envs/a/sub/config.json") == b"{}\n"
    assert repo.read("envs/zz/values.yaml") is None
    assert repo.list_dir("envs/a") == ["sub", "values.yaml"]
    assert repo.list_dir("") == ["README.md", "envs"]


def test_a_lost_race_is_rebuilt_on_the_new_tip(remote: Path) -> None:
    ours = RemoteRepo(str(remote), "main")
    theirs = RemoteRepo(str(remote), "main")
    calls: list[bytes | None] = []

    def build(read: Reader) -> Changes:
        calls.append(read("envs/theirs/values.yaml"))
        if len(calls) == 1:  # another pipeline pushes while we are building
            theirs.apply(["envs/theirs"], writes({"envs/theirs/values.yaml": b"t\n"}), "theirs")
        return Changes(writes={"envs/ours/values.yaml": b"o\n"})

    result = ours.apply(["envs/ours"], build, "ours")

    assert result.attempts == 2
    assert calls == [None, b"t\n"]  # the rebuild saw the other writer's commit
    head = tip(remote)
    assert head.hexsha == result.sha and head.message == "ours\n"
    assert head.parents[0].message == "theirs\n"
    files = files_at(head)
    assert files["envs/ours/values.yaml"] == b"o\n" and files["envs/theirs/values.yaml"] == b"t\n"
    assert "envs/a/sub/config.json" in files and "README.md" in files


def test_giving_up_when_the_budget_is_spent_leaves_remote_without_our_commit(
    remote: Path,
) -> None:
    ours = RemoteRepo(str(remote), "main")
    theirs = RemoteRepo(str(remote), "main")
    calls: list[int] = []

    def build(read: Reader) -> Changes:
        calls.append(1)
        content = str(len(calls)).encode()
        theirs.apply(["envs/theirs"], writes({"envs/theirs/n": content}), f"theirs {len(calls)}")
        return Changes(writes={"envs/ours/values.yaml": b"o\n"})

    started = time.monotonic()
    with pytest.raises(ModelciError, match=r"attempts in 1 s") as error:
        ours.apply(["envs/ours"], build, "ours", budget_seconds=1)

    assert 1 <= time.monotonic() - started < 5
    assert len(calls) >= 2  # it kept trying while there was time
    assert f"each of {len(calls)} attempts" in str(error.value)
    assert "MODELCI_PUSH_BUDGET_SECONDS" in str(error.value)
    assert str(remote) in str(error.value) and "main" in str(error.value)
    head = tip(remote)
    assert head.message == f"theirs {len(calls)}\n"
    assert not any(path.startswith("envs/ours") for path in files_at(head))


def test_two_writers_creating_the_branch_both_land(tmp_path: Path) -> None:
    bare = tmp_path / "empty.git"
    git.Repo.init(bare, bare=True)
    ours, theirs = RemoteRepo(str(bare), "main"), RemoteRepo(str(bare), "main")
    calls: list[int] = []

    def build(read: Reader) -> Changes:
        calls.append(1)
        if len(calls) == 1:
            theirs.apply(["dags/b"], writes({"dags/b/x.py": b"b"}), "theirs")
        return Changes(writes={"dags/a/x.py": b"a"})

    result = ours.apply(["dags/a"], build, "ours")

    assert result.attempts == 2
    assert files_at(tip(bare)) == {"dags/a/x.py": b"a", "dags/b/x.py": b"b"}


def test_an_empty_remote_gets_its_first_commit(tmp_path: Path) -> None:
    bare = tmp_path / "empty.git"
    git.Repo.init(bare, bare=True)
    repo = RemoteRepo(f"file://{bare}", "main")
    assert repo.read("dags/x.py") is None and repo.list_dir("") == []

    result = repo.apply(["dags"], writes({"dags/x.py": b"print(1)\n"}), "first DAG")

    head = tip(bare)
    assert head.hexsha == result.sha and head.parents == ()
    assert files_at(head) == {"dags/x.py": b"print(1)\n"}


@pytest.mark.parametrize(
    "bad", ["", "/etc/passwd", "../x", "a/../b", "a//b", "./a", ".git/config", "a/.GIT/x", "a\\b"]
)
def test_bad_paths_are_refused_and_nothing_is_pushed(remote: Path, bad: str) -> None:
    repo = RemoteRepo(str(remote), "main")
    before = tip(remote).hexsha

    with pytest.raises(ValueError):
        repo.apply([bad], writes({"ok": b"x"}), "bad scope")
    with pytest.raises(ValueError):
        repo.apply(["envs"], lambda read: Changes(writes={bad: b"x"}), "bad write")
    with pytest.raises(ValueError):
        repo.apply(["envs"], lambda read: Changes(removes=[bad]), "bad remove")
    with pytest.raises(ValueError):
        repo.apply(["envs"], lambda read: Changes(writes={"envs/x": read(bad) or b""}), "bad read")
    with pytest.raises(ValueError):
        repo.read(bad)

    assert tip(remote).hexsha == before


def test_writes_outside_scope_or_over_a_directory_are_refused(remote: Path) -> None:
    repo = RemoteRepo(str(remote), "main")
    before = tip(remote).hexsha

    with pytest.raises(ValueError, match="outside the scope"):
        repo.apply(["envs/a"], writes({"envs/b/values.yaml": b"x"}), "escape")
    with pytest.raises(ModelciError, match="file and a directory"):
        repo.apply(["envs/a"], writes({"envs/a/sub": b"x"}), "file over dir")
    with pytest.raises(ModelciError, match="file and a directory"):
        repo.apply(["envs/a"], writes({"envs/a/values.yaml/x": b"x"}), "dir over file")

    assert tip(remote).hexsha == before
    replaced = repo.apply(
        ["envs/a"],
        lambda read: Changes(removes=["envs/a/sub"], writes={"envs/a/sub": b"now a file"}),
        "replace dir",
    )
    assert replaced.sha and repo.read("envs/a/sub") == b"now a file"


def test_credentials_never_appear_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "https://user:secret@127.0.0.1:1/x.git"
    assert redact_url(url) == "https://***@127.0.0.1:1/x.git"
    repo = RemoteRepo(url, "main")
    with pytest.raises(ModelciError) as error:
        repo.apply(["a"], writes({"a": b"x"}), "msg")
    message = str(error.value)
    assert "secret" not in message and "secret" not in repr(repo)
    assert "https://127.0.0.1:1/x.git" in message and "main" in message

    monkeypatch.setenv("MODELCI_TEST_TOKEN", "glpat-abcdef123456")
    with pytest.raises(ModelciError) as error:
        RemoteRepo("https://127.0.0.1:1/x.git", "main", token_env="MODELCI_TEST_TOKEN").read("a")
    assert "glpat-abcdef123456" not in str(error.value)

    with pytest.raises(ModelciError, match="MODELCI_UNSET_TOKEN"):
        RemoteRepo("https://127.0.0.1:1/x.git", "main", token_env="MODELCI_UNSET_TOKEN")


def test_cost_does_not_grow_with_the_number_of_environments(tmp_path: Path) -> None:
    bare = allow_partial_clone(make_bare_repo(tmp_path / "big.git"))
    seed = git.Repo.clone_from(bare, tmp_path / "seed")
    for i in range(200):  # written with one `git add`: make_bare_repo adds files one by one
        env_dir = tmp_path / "seed" / "envs" / f"e{i:03}"
        env_dir.mkdir(parents=True)
        (env_dir / "values.yaml").write_text(f"image: {i}\n")
        (env_dir / "config.json").write_text(f'{{"env": {i}}}\n')
    seed.git.add("--all")
    seed.git.commit("-m", "200 environments", author="seed <seed@example.invalid>")
    seed.git.push("origin", "HEAD:main")
    repo = RemoteRepo(str(bare), "main")
    repo.apply(["envs/e000"], writes({"envs/e000/x": b"1"}), "history the clone must not fetch")

    def bump(read: Reader) -> Changes:
        current = read("envs/e007/values.yaml") or b""
        return Changes(writes={"envs/e007/values.yaml": current + b"tag: 2\n"})

    repo.apply(["envs/e007"], bump, "bump e007")

    fetched = repo.last_local_objects
    assert fetched is not None
    # one commit fetched (shallow) plus ours; blobs: README (it lies above the scope), the one
    # read and the one written; trees: root, envs/ and envs/e007/, each before and after
    assert (fetched.commits, fetched.trees, fetched.blobs) == (2, 6, 3)
    assert repo.read("envs/e007/values.yaml") == b"image: 7\ntag: 2\n"
    listing = git.Repo(bare).git.ls_tree("-r", "--name-only", "main").splitlines()
    assert len(listing) == 402  # README, 400 env files, envs/e000/x


class _GitHttpBackend(BaseHTTPRequestHandler):
    """git smart HTTP (`git http-backend`) for one project root, behind HTTP basic auth."""

    project_root: Path
    expected_auth: str
    seen_auth: list[str]

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        auth = self.headers.get("Authorization", "")
        self.seen_auth.append(auth)
        if auth != self.expected_auth:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {
            **os.environ,
            "GIT_PROJECT_ROOT": str(self.project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": "tester",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        cgi = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
        head, _, payload = cgi.stdout.partition(b"\r\n\r\n")
        headers = [line.split(": ", 1) for line in head.decode().split("\r\n") if line]
        status = next((int(v.split()[0]) for k, v in headers if k == "Status"), 200)
        self.send_response(status)
        for key, value in headers:
            if key != "Status":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_remote(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    bare = allow_partial_clone(make_bare_repo(tmp_path / "root" / "gitops.git"))
    seen: list[str] = []
    token = base64.b64encode(b"oauth2:glpat-s3cr3t-token").decode()
    handler = type(
        "Handler",
        (_GitHttpBackend,),
        {"project_root": tmp_path / "root", "expected_auth": f"Basic {token}", "seen_auth": seen},
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/gitops.git", bare, seen
    finally:
        server.shutdown()
        server.server_close()


def test_token_from_env_authenticates_over_http_and_never_leaks(
    http_remote: tuple[str, Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, bare, seen = http_remote
    monkeypatch.setenv("GITOPS_TOKEN", "glpat-s3cr3t-token")
    repo = RemoteRepo(url, "main", token_env="GITOPS_TOKEN")

    result = repo.apply(["envs/a"], writes({"envs/a/values.yaml": b"image: 1\n"}), "deploy a")

    assert result.sha == tip(bare).hexsha
    assert repo.read("envs/a/values.yaml") == b"image: 1\n"
    # the one written, and README: it lies above the scope (envs/a)
    assert repo.last_local_objects and repo.last_local_objects.blobs == 2
    assert any(auth.startswith("Basic ") for auth in seen)

    monkeypatch.setenv("GITOPS_TOKEN", "glpat-wrong-token")
    with pytest.raises(ModelciError) as error:
        RemoteRepo(url, "main", token_env="GITOPS_TOKEN").read("envs/a/values.yaml")
    assert "glpat-wrong-token" not in str(error.value)
    assert "127.0.0.1" in str(error.value)


def test_a_burst_of_concurrent_writers_all_land(remote: Path) -> None:
    """Pipelines of many projects push to one repo at once: every one of them lands."""
    writers = 12

    def deploy(number: int) -> CommitResult:
        repo = RemoteRepo(str(remote), "main")
        path = f"envs/burst-{number}/values.yaml"
        return repo.apply(
            [f"envs/burst-{number}"], writes({path: f"{number}\n".encode()}), f"deploy {number}"
        )

    with ThreadPoolExecutor(max_workers=writers) as pool:
        results = list(pool.map(deploy, range(writers)))

    assert all(result.sha for result in results)
    assert max(result.attempts for result in results) > 1  # they did race
    files = files_at(tip(remote))
    assert {files[f"envs/burst-{n}/values.yaml"] for n in range(writers)} == {
        f"{n}\n".encode() for n in range(writers)
    }
    assert "envs/a/sub/config.json" in files  # nothing else was lost


def test_a_commit_of_the_checkout_is_archived_as_the_tar_gz_pods_unpack(tmp_path: Path) -> None:
    import io
    import tarfile

    from modelci.systems.gitarchive import archive_commit

    checkout = git.Repo.init(tmp_path / "model")
    (tmp_path / "model" / "train.py").write_text("print('trained')\n")
    checkout.index.add(["train.py"])
    commit = checkout.index.commit("first").hexsha
    (tmp_path / "model" / "train.py").write_text("print('not committed')\n")

    written = io.BytesIO()
    archive_commit(tmp_path / "model", commit, written)
    with tarfile.open(fileobj=io.BytesIO(written.getvalue())) as archive:
        assert archive.extractfile("train.py").read() == b"print('trained')\n"

    for where, bad, expected in (
        (tmp_path / "model", "0" * 40, "not a tree object"),
        (tmp_path / "model", "--output=/tmp/x", "not a commit id"),
        (tmp_path / "nowhere", commit, "No such file or directory"),
    ):
        with pytest.raises(ModelciError, match=f"cannot archive commit .*{expected}"):
            archive_commit(where, bad, io.BytesIO())
