"""A local checkout of a configuration's git repository (`plan --source URL=DIR`), read at the ref a stack runs: the
commit its tag, commit or branch names (the branch as origin has it), with git (`git ls-tree`, `git cat-file
--batch`), never the work tree. A DIR that is no git repository is read as it is on disk, with a note. Every check of
`plan --source` reads a repository through this one module: the kustomization paths and the Flux API versions."""

from __future__ import annotations

import functools
import os
import posixpath
import stat
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from modules.spec import GitSource, bounded

FILE_MAX_BYTES = 1024 * 1024  # a manifest larger than this is not read (the caller notes it)
LIST_MAX = 200_000  # manifests a repository may list; past it the listing stops (Tree.truncated)
GIT_TIMEOUT = 60  # seconds for one git command on a local checkout
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@dataclass(frozen=True)
class Revision:
    """Where a configuration's files are read in its checkout."""

    commit: str | None = None  # the commit to read; None: the directory as it is on disk
    note: str | None = None  # how it was read, when not at the ref
    missing: str | None = None  # an error: the checkout is a repository without the ref


def revision(root: Path, git: GitSource) -> Revision:
    """The commit a git source's ref names in its checkout `root`."""
    if _git(root, "rev-parse", "--git-dir") is None:
        return Revision(note=f"{root} is not a git repository: its files were checked as they are, not at {git.ref}")
    if git.semver and not git.commit and not git.tag:
        commit = _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
        if commit is None:
            return Revision(note=f"{root} has no HEAD: its files were checked as they are")
        return Revision(commit, f"{root}: semver {git.semver} is not resolved by fluxfleet: checked its HEAD")
    candidates = (
        [git.commit]
        if git.commit
        else [f"refs/tags/{git.tag}"]
        if git.tag
        else [f"refs/remotes/origin/{git.branch}", f"refs/heads/{git.branch}"]
        if git.branch
        else ["HEAD"]
    )
    for candidate in candidates:
        if commit := _git(root, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"):
            return Revision(commit)
    value = bounded(git.commit or git.tag or git.branch or "HEAD", 200)
    return Revision(missing=f"{value} is not in {root}: fetch it (git fetch --tags), so its files can be checked")


def tree(root: Path, commit: str | None) -> Tree:
    """The repository at `commit`, listed once per process (stacks share configurations); on disk (None), listed each
    time (it may change)."""
    return _tree_at(str(root.resolve()), commit) if commit else Tree(root, None)


@functools.lru_cache(maxsize=16)
def _tree_at(root: str, commit: str) -> Tree:
    return Tree(Path(root), commit)


def _git(root: Path, *args: str) -> str | None:
    """A git command's output in `root` (stripped), or None when it fails."""
    result = _git_bytes(root, *args)
    return result.decode("utf-8", "replace").strip() if result is not None else None


def _git_bytes(root: Path, *args: str, stdin: bytes | None = None) -> bytes | None:
    """Only `root` itself can be the repository: a directory inside another repository (a fixture in fluxfleet's
    own) is none. The caller's GIT_* variables (GIT_DIR, ...) do not apply."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env["GIT_CEILING_DIRECTORIES"] = str(root.resolve().parent)
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "-c", "core.fsmonitor=false", *args],
            input=stdin,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


class Tree:
    """A repository at a commit (git) or on disk: its directories, and its manifests (*.yaml, *.yml and kustomization
    files), each with what reads it."""

    def __init__(self, root: Path, commit: str | None):
        self.root, self.commit = root, commit
        self.files: dict[str, tuple[str | None, int]] = {}  # path -> (git object id, or None on disk; size)
        self.dirs: set[str] = {"."}  # every directory, with a manifest or not
        self.truncated = False
        self.listed = True  # False: git could not list the commit (a timeout, a broken repository): nothing is known
        for path, oid, size in self._git_listing() if commit else self._disk_listing():
            if oid == "tree":
                self.dirs.add(path)
            elif len(self.files) >= LIST_MAX:
                self.truncated = True
            else:
                self.files[path] = (oid, size)

    def _git_listing(self) -> Iterable[tuple[str, str | None, int]]:
        listing = _git_bytes(self.root, "ls-tree", "-r", "-t", "-l", "-z", f"{self.commit}^{{tree}}")
        if listing is None:
            self.listed = False
            return
        for entry in listing.split(b"\0"):
            header, _, raw_name = entry.partition(b"\t")
            fields = header.split()
            if len(fields) != 4:
                continue
            path = raw_name.decode("utf-8", "backslashreplace")
            if fields[1] == b"tree":
                yield path, "tree", 0
            elif fields[1] == b"blob" and fields[0] != b"120000" and _wanted(path):  # not a symlink nor a submodule
                yield path, fields[2].decode("ascii"), int(fields[3]) if fields[3].isdigit() else 0

    def _disk_listing(self) -> Iterable[tuple[str, str | None, int]]:
        for directory, subdirectories, names in os.walk(self.root):  # symlinked directories are not followed
            subdirectories[:] = sorted(d for d in subdirectories if d != ".git")
            here = Path(directory)
            for name in subdirectories:
                yield (here / name).relative_to(self.root).as_posix(), "tree", 0
            for name in sorted(names):
                full = here / name
                path = full.relative_to(self.root).as_posix()
                if not _wanted(path):
                    continue
                try:
                    info = os.lstat(full)
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode):  # not a symlink: it may lead out of the repository
                    yield path, None, info.st_size

    def under(self, directory: str) -> list[str]:
        prefix = "" if directory == "." else f"{directory}/"
        return sorted(path for path in self.files if path.startswith(prefix))

    def read(self, paths: Iterable[str]) -> dict[str, str | tuple[str]]:
        """Each file's text, or (why it was not read,)."""
        paths = list(paths)
        result: dict[str, str | tuple[str]] = {}
        if self.commit is None:
            for path in paths:
                try:
                    with open(self.root / path, "rb") as stream:
                        result[path] = _text(stream.read(FILE_MAX_BYTES + 1))
                except OSError as error:
                    result[path] = (f"cannot read: {error.strerror}",)
            return result
        blobs = _cat(self.root, [oid for path in paths if (oid := self.files[path][0])]) if paths else {}
        for path in paths:
            data = blobs.get(self.files[path][0] or "")
            result[path] = _text(data) if data is not None else ("not read by git",)
        return result


def repository_path(path: str | None) -> str:
    """A kustomization path as a path in the repository: `./apps/staging` -> `apps/staging`, `./` -> `.`."""
    return posixpath.normpath(path or ".").lstrip("/") or "."


def _wanted(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.lower().endswith((".yaml", ".yml")) or name in KUSTOMIZATION_FILES


def _cat(root: Path, oids: list[str]) -> dict[str, bytes]:
    """The blobs `oids` name, with one `git cat-file --batch`."""
    output = _git_bytes(root, "cat-file", "--batch", stdin="".join(f"{oid}\n" for oid in oids).encode("ascii"))
    blobs: dict[str, bytes] = {}
    at = 0
    while output and at < len(output):
        end = output.find(b"\n", at)
        if end < 0:
            break
        header = output[at:end].split()
        at = end + 1
        if len(header) != 3 or not header[2].isdigit():  # "<oid> missing"
            continue
        size = int(header[2])
        blobs[header[0].decode("ascii")] = output[at : at + size]
        at += size + 1
    return blobs


def _text(data: bytes) -> str | tuple[str]:
    if len(data) > FILE_MAX_BYTES:
        return (f"larger than {FILE_MAX_BYTES // 2**20} MiB",)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return (f"not UTF-8 text (byte {error.start})",)
