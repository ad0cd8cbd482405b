"""The two trees `fluxfleet affected` compares, read with git: the stacks directory of a commit written out into a
temporary directory (`git archive`), or the working tree as it is; and the files of the program that changed between
them (`git diff`, with the working tree's untracked files). No Azure, no Pulumi."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from modules.spec import bounded

GIT_TIMEOUT = 120  # seconds for one git command on the local repository
# What every stack runs, relative to the project (the directory of Pulumi.yaml): the program, its policies, the
# project file and the locked dependencies.
PROGRAM_PATHS = ("modules", "policies", "__main__.py", "Pulumi.yaml", "pyproject.toml")
LOCK_FILES = ("*.lock", "requirements*.txt", "constraints*.txt", "Pipfile")


class GitError(Exception):
    """git could not answer: one line saying why."""


@dataclass(frozen=True)
class Repository:
    top: Path  # the work tree's top directory
    stacks: str  # the stacks directory, relative to `top` ('' for the top itself)
    project: Path  # the project's directory: the nearest with Pulumi.yaml from the stacks directory up, else `top`


def _git(cwd: Path, *args: str) -> bytes:
    try:
        result = subprocess.run(
            ["git", "-C", str(cwd), "-c", "core.quotePath=false", *args],
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise GitError("no `git` on PATH: install git") from None
    except (OSError, subprocess.TimeoutExpired) as error:
        raise GitError(f"git {args[0]} failed: {getattr(error, 'strerror', None) or error}") from None
    if result.returncode != 0:
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(bounded(lines[-1] if lines else f"git {args[0]} failed (exit {result.returncode})", 300))
    return result.stdout


def repository(stacks_dir: Path) -> Repository:
    """The git repository `stacks_dir` is in; GitError when it is in none."""
    try:
        output = _git(stacks_dir, "rev-parse", "--show-toplevel")
    except GitError:
        raise GitError(f"{stacks_dir}: not in a git repository (or git cannot read it)") from None
    top = Path(os.fsdecode(output.rstrip(b"\n"))).resolve()
    here = stacks_dir.resolve()
    if not here.is_relative_to(top):
        raise GitError(f"{stacks_dir}: not in the work tree of its git repository ({top})")
    stacks = here.relative_to(top).as_posix()
    project = next((d for d in (here, *here.parents) if (d / "Pulumi.yaml").is_file() and d.is_relative_to(top)), top)
    return Repository(top, "" if stacks == "." else stacks, project)


def commit_of(repo: Repository, ref: str) -> str:
    """The commit `ref` names; GitError (one line) when git does not know it."""
    try:
        found = _git(repo.top, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    except GitError:
        found = b""
    if not found.strip():
        raise GitError(f"{bounded(ref, 200)}: no such commit in {repo.top} (fetch it, or name a branch, tag or SHA)")
    return found.decode("ascii").strip()


def write_stacks(repo: Repository, commit: str, into: Path) -> Path | None:
    """The stacks directory as `commit` has it, written out under `into`; None when the commit has no such directory."""
    treeish = f"{commit}:{repo.stacks}" if repo.stacks else f"{commit}^{{tree}}"
    try:
        kind = _git(repo.top, "cat-file", "-t", treeish).strip()
    except GitError:
        return None
    if kind != b"tree":
        return None
    archive = _git(repo.top, "archive", "--format=tar", treeish)
    target = into / "stacks"
    target.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")  # nothing outside `target`, no device files
    return target


def program_changes(repo: Repository, base: str, head: str | None) -> list[str]:
    """The files of the program, the policies, the project and the locked dependencies that differ between `base`
    and `head` (None: the working tree, its untracked files too), relative to the project, sorted."""
    specs = [*PROGRAM_PATHS, *(f":(glob){pattern}" for pattern in LOCK_FILES)]
    commits = [base] if head is None else [base, head]
    changed = _git(repo.project, "diff", "--relative", "--no-renames", "--name-only", "-z", *commits, "--", *specs)
    names = set(_names(changed))
    if head is None:
        untracked = _git(repo.project, "ls-files", "-z", "--others", "--exclude-standard", "--", *specs)
        names.update(_names(untracked))
    return sorted(names)


def _names(output: bytes) -> list[str]:
    return [os.fsdecode(name) for name in output.split(b"\0") if name]
