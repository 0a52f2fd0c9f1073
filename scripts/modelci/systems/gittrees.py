"""Git trees edited in Python: how a commit is made without a checkout or an index.

A change to a few paths of a large repository needs new trees only along those paths. This
module reads those directories (one `cat-file --batch`), makes the edited trees as raw tree
objects whose ids it computes itself, and writes them and the new blobs (one `hash-object`
each). It knows git's object format and nothing of a remote: which branch, the credentials,
fetching and pushing stay in gitrepo, which hands it a way to run git in its clone.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from modelci.errors import ModelciError

FILE_MODE = "100644"
TREE_MODE = "40000"  # as a raw tree object writes it


class Git(Protocol):
    """git run in one repository; a failure raises."""

    def run(self, *args: str, stdin: Path | None = None) -> str: ...

    def run_binary(self, *args: str, stdin: Path | None = None) -> bytes:
        """Raw stdout; may fetch a missing object from the remote (partial clone)."""
        ...


@dataclass(frozen=True)
class Entry:
    mode: str
    kind: str  # "blob", "tree" or "commit"
    oid: str


@dataclass(frozen=True)
class EditedTree:
    """A root tree made in Python: its id, and the tree objects git does not hold yet."""

    oid: str
    new_trees: Mapping[str, bytes]  # {id: raw tree object}


class TreeEditor:
    """Edits the trees of one repository; `where` names it (and its branch) in messages."""

    def __init__(self, git: Git, workdir: Path, where: str) -> None:
        self._git = git
        self._workdir = workdir
        self._where = where
        self._blobs: dict[bytes, str] = {}

    def edit(self, root: str | None, removes: list[str], writes: dict[str, bytes]) -> EditedTree:
        """The tree `root` (None: no tree yet) after removing `removes` and writing `writes`
        (removes first). The blobs are written at once, the trees only by `store`: an edit
        that changes nothing writes none."""
        blobs = self._store_blobs(writes.values())
        blob_of = {path: blobs[data] for path, data in writes.items()}
        listings = self._list_trees(root, _directories_along([*removes, *writes])) if root else {}
        new_trees: dict[str, bytes] = {}
        tree = self._edited_tree(listings, "", removes, blob_of, new_trees)
        return EditedTree(tree or _tree_id(b"", new_trees), new_trees)

    def store(self, edited: EditedTree) -> None:
        """Write the trees made in Python, in one git process, and check git agrees on ids."""
        ids = self._hash_objects("tree", list(edited.new_trees.values()))
        if ids != list(edited.new_trees):
            raise RuntimeError(
                f"git disagrees with the tree ids computed: {ids} != {list(edited.new_trees)}"
            )

    def _edited_tree(
        self,
        listings: Mapping[str, dict[str, Entry] | None],
        path: str,
        removes: list[str],
        writes: dict[str, str],
        new_trees: dict[str, bytes],
    ) -> str | None:
        """The id of directory `path` after removing `removes` and writing the blobs `writes`
        (paths relative to it), None if it ends up empty; the trees made go to `new_trees`.
        Only the directories along the changed paths are read and made again."""
        entries = dict(listings.get(path) or {})
        for name in sorted({item.split("/", 1)[0] for item in [*removes, *writes]}):
            full = f"{path}/{name}" if path else name
            if name in removes:
                entries.pop(name, None)
            below_writes = {item: writes[f"{name}/{item}"] for item in _beneath(name, writes)}
            current = entries.get(name)
            if name in writes:
                if below_writes or (current and current.kind == "tree"):
                    raise self._clash(full)
                entries[name] = Entry(FILE_MODE, "blob", writes[name])
                continue
            below_removes = _beneath(name, removes)
            if current and current.kind != "tree":
                if below_writes:
                    raise self._clash(full)
                continue  # nothing lies beneath a file to remove
            if below_writes or below_removes:
                # beneath a removed entry nothing of the old tree is kept
                kept = {} if name in removes else listings
                subtree = self._edited_tree(kept, full, below_removes, below_writes, new_trees)
                if subtree:
                    entries[name] = Entry(TREE_MODE, "tree", subtree)
                else:
                    entries.pop(name, None)
        return _tree_id(_tree_object(entries), new_trees) if entries else None

    def _list_trees(self, root: str, dirs: Sequence[str]) -> dict[str, dict[str, Entry] | None]:
        """The entries directly in each directory of `dirs` ("" is the root) under the tree
        `root`, None where it is absent or not a directory; in one git process, which fetches
        the trees this partial clone lacks."""
        names = "".join(f"{root}:{d}\n" if d else f"{root}\n" for d in dirs)
        request = self._workdir / "tree-names"
        request.write_text(names)
        out = self._git.run_binary("cat-file", "--batch", stdin=request)
        listings: dict[str, dict[str, Entry] | None] = {}
        offset = 0
        for directory in dirs:
            header_end = out.index(b"\n", offset)
            header = out[offset:header_end].split(b" ")
            offset = header_end + 1
            if header[-1] == b"missing":
                listings[directory] = None
                continue
            size = int(header[2])
            body = out[offset : offset + size]
            offset += size + 1
            listings[directory] = _tree_entries(body) if header[1] == b"tree" else None
        return listings

    def _clash(self, path: str) -> ModelciError:
        return ModelciError(
            f"cannot write {path!r} in {self._where}: a file and a directory would share a "
            "path; remove the old one in the same change"
        )

    def _store_blobs(self, contents: Iterable[bytes]) -> dict[bytes, str]:
        """{content: blob id}, written to the object database in one git process; contents
        already written by an earlier edit of this editor are not written again."""
        new = [data for data in dict.fromkeys(contents) if data not in self._blobs]
        if new:
            self._blobs.update(zip(new, self._hash_objects("blob", new), strict=True))
        return self._blobs

    def _hash_objects(self, kind: str, contents: Sequence[bytes]) -> list[str]:
        """Write `contents` as objects of `kind` in one git process; their ids, in order."""
        folder = Path(tempfile.mkdtemp(prefix=f"{kind}s-", dir=self._workdir))
        listing = folder / "paths"
        paths = []
        for number, data in enumerate(contents):
            path = folder / str(number)
            path.write_bytes(data)
            paths.append(f"{path}\n")
        listing.write_text("".join(paths))
        hashed = self._git.run(
            "hash-object", "-t", kind, "-w", "--no-filters", "--stdin-paths", stdin=listing
        )
        return hashed.split()


def _directories_along(paths: Iterable[str]) -> list[str]:
    """Every directory that holds one of `paths`, the root ("") included, sorted."""
    return sorted({"/".join(p.split("/")[:i]) for p in paths for i in range(p.count("/") + 1)})


def _tree_entries(body: bytes, oid_bytes: int = 20) -> dict[str, Entry]:
    """The entries of a raw tree object: `<mode> <name>\\0<binary id>` each."""
    entries = {}
    offset = 0
    while offset < len(body):
        space = body.index(b" ", offset)
        nul = body.index(b"\0", space)
        mode = body[offset:space].decode()
        oid = body[nul + 1 : nul + 1 + oid_bytes].hex()
        kind = "tree" if mode == TREE_MODE else "commit" if mode == "160000" else "blob"
        entries[body[space + 1 : nul].decode("utf-8", "surrogateescape")] = Entry(mode, kind, oid)
        offset = nul + 1 + oid_bytes
    return entries


def _tree_object(entries: Mapping[str, Entry]) -> bytes:
    """A raw tree object, its entries in git's order (a directory sorts as if named `name/`)."""

    def order(name: str) -> bytes:
        return name.encode("utf-8", "surrogateescape") + (
            b"/" if entries[name].kind == "tree" else b""
        )

    return b"".join(
        f"{entries[name].mode} ".encode() + name.encode("utf-8", "surrogateescape") + b"\0"
        + bytes.fromhex(entries[name].oid)
        for name in sorted(entries, key=order)
    )  # fmt: skip


def _tree_id(body: bytes, new_trees: dict[str, bytes]) -> str:
    """The id of the raw tree object `body`, which goes to `new_trees`."""
    # sha1: the object format `git init` gives this clone (git cannot fetch sha256 into it)
    oid = hashlib.sha1(b"tree %d\0" % len(body) + body, usedforsecurity=False).hexdigest()
    new_trees[oid] = body
    return oid


def _beneath(name: str, paths: Iterable[str]) -> list[str]:
    """The paths below the entry `name`, relative to it."""
    return [path[len(name) + 1 :] for path in paths if path.startswith(name + "/")]
