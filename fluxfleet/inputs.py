"""What every command takes from its options before its work: the stack files it names, a `--subscription`,
`--source` checkouts, and whether a report can be written where `--output` says. Invalid input ends the command
(exit 2) with one line naming the option or the file."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from fluxfleet.exits import CommandError, InvalidInput
from fluxfleet.runstate.store import StateStore, StoreError


def stack_paths(command: str, stacks_dir: Path, names: list[str] | None) -> list[Path]:
    """The stack files of `names` in `stacks_dir` (all of them for none); invalid input when there are none."""
    from modules.spec import stack_files
    from modules.spec import SpecError, printable

    if not stacks_dir.is_dir():
        raise InvalidInput(f"fluxfleet {command}: {printable(str(stacks_dir))}: no such directory")
    try:
        paths = stack_files(stacks_dir, names or ())
    except SpecError as error:  # a bad stack name, a file name that is not UTF-8, a stack with two files
        raise InvalidInput.of(error, f"fluxfleet {command}: ") from None
    if not paths:
        raise InvalidInput(f"fluxfleet {command}: {printable(str(stacks_dir))}: no Pulumi.<stack>.yaml files")
    return paths


def parse_subscription(command: str, subscription: str | None) -> str | None:
    """`--subscription`: a subscription id (a GUID), lower case; invalid input otherwise (one line, exit 2)."""
    from modules.spec import SpecError
    from modules.spec.selection import parse_subscriptions

    if subscription is None:
        return None
    try:
        [valid] = parse_subscriptions([subscription])
    except SpecError as error:
        raise InvalidInput.of(error, f"fluxfleet {command}: ") from None
    return valid


def subscription_of_stack(subscription: str | None):
    """`subscription_of(stack)`: its cluster.subscriptionId, else `--subscription`, else its cloud's default one."""
    from fluxfleet.azure.account import default_subscription

    return lambda stack: (
        stack.spec.cluster.subscription_id or subscription or default_subscription(cloud=stack.spec.cluster.cloud)
    )


def parse_sources(command: str, source: list[str] | None) -> dict[str, Path]:
    """`--source URL=DIR` options: repository URL -> local checkout."""
    checkouts = {}
    for item in source or ():
        url, _, directory = item.rpartition("=")
        if not url or not Path(directory).is_dir():
            raise InvalidInput(f"fluxfleet {command}: --source {item}: expected URL=DIR with an existing directory")
        checkouts[url] = Path(directory)
    return checkouts


def run_store_of(command: str, runs_dir: Path | None) -> StateStore:
    """Where a command keeps or reads runs: `--runs-dir`, else Pulumi's azblob container, else .fluxfleet/runs
    (fluxfleet/runstate/backends.py). A store the environment names but that cannot be used is exit 1, one line."""
    from fluxfleet.runstate.backends import run_store

    try:
        return run_store(runs_dir, os.environ)
    except StoreError as error:
        raise CommandError(f"fluxfleet {command}: {error}") from None


def unusable_store(command: str, store: StateStore, error: StoreError) -> CommandError | InvalidInput:
    """A store no run could be created in: a local directory is the `--runs-dir` given (exit 2), anything else
    exit 1."""
    from fluxfleet.runstate.local import LocalStore

    if isinstance(store, LocalStore):
        return InvalidInput(f"fluxfleet {command}: --runs-dir {error}")
    return CommandError(f"fluxfleet {command}: {error}")


def check_output(command: str, option: str, path: Path | None) -> None:
    """Before any work: can a report be written to `path` (given with `option`: "--output", "--report")? Its
    directory must exist and be writable, and it must not be a directory (a file already there must be writable).
    Otherwise one line naming the option and the path, and exit 2. Nothing to check for None (stdout)."""
    if path is None:
        return
    problem = _unwritable(path)
    if problem is not None:
        raise InvalidInput(f"fluxfleet {command}: {option} {path}: {problem}")


def _unwritable(path: Path) -> str | None:
    """Why `path` cannot be written, in the words the write would fail with; None if it can."""
    if path.is_dir():
        return os.strerror(errno.EISDIR)
    if path.exists():  # writing an existing file (a job summary, /dev/stdout) needs no right on its directory
        return None if os.access(path, os.W_OK) else os.strerror(errno.EACCES)
    parent = path.parent
    if not parent.is_dir():
        return f"{parent}: {os.strerror(errno.ENOTDIR if parent.exists() else errno.ENOENT)}"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent}: {os.strerror(errno.EACCES)}"
    return None
