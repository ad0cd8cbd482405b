"""The stack runner: the narrow interface through which `rollout`, `drift` and `decommission` run Pulumi operations
on stacks.

`fluxfleet.automation.AutomationRunner` implements it on the Pulumi Automation API (the `pulumi` CLI underneath);
tests, `--dry-run` simulations and the benchmark use `FakeRunner` in `fluxfleet.simulation`. Results are small typed
objects; nothing here carries a secret value (outputs are not read, error text is reduced to one line).
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

# The engine ops (`op` of its events) that replace or delete a resource.
DESTRUCTIVE_OPS = frozenset({"replace", "delete", "create-replacement", "delete-replaced"})


@dataclass(frozen=True)
class PropertyChange:
    """One property path of a detailed diff, with the values on both sides (secrets arrive masked)."""

    path: str  # a Pulumi property path: kustomizations.apps.prune, tags["env"], agentPoolProfiles[0].count
    kind: str  # add | delete | update | add-replace | delete-replace | update-replace
    old: Any = None  # the stack state's value there (after a refresh: what Azure has); None when absent
    new: Any = None  # the program's value there; None when the program does not set it


@dataclass(frozen=True)
class ResourceChange:
    urn: str
    type: str  # e.g. azure-native:containerservice:ManagedCluster
    name: str
    op: str  # create | update | replace | delete | create-replacement | delete-replaced | ...
    diffs: tuple[str, ...] = ()  # property paths that differ, as the engine reports them (detailedDiff keys)
    properties: tuple[PropertyChange, ...] = ()  # the same paths with their values, when the engine details them

    @property
    def destructive(self) -> bool:
        return self.op in DESTRUCTIVE_OPS


@dataclass(frozen=True)
class OperationResult:
    """The outcome of one `up` or `preview` of one stack."""

    stack: str
    ok: bool  # the operation ran to the end without an error
    changes: tuple[ResourceChange, ...] = ()  # every resource whose op is not `same`
    summary: dict[str, int] = field(default_factory=dict)  # op -> count, from the engine's summary event
    error: str | None = None  # one line, never a secret
    cancelled: bool = False


@dataclass(frozen=True)
class UpdateRecord:
    """An entry of a stack's update history, for deciding what an interrupted run left behind."""

    kind: str  # update | preview | refresh | destroy | ...
    result: str  # succeeded | failed | in-progress
    started: datetime
    ended: datetime | None
    message: str = ""  # what the update was started with (`pulumi up --message`): a rollout's update id


_PATH_PART = re.compile(r'\["((?:[^"\\]|\\.)*)"\]|\[(\d+)\]|\.?([^.\[\]]+)')


def property_path(path: str) -> list[str | int]:
    """A Pulumi property path as its parts: `a.b[0]["c.d"]` -> ["a", "b", 0, "c.d"]."""
    return [int(index) if index else quoted or name for quoted, index, name in _PATH_PART.findall(path)]


class RunnerError(Exception):
    """A read of a stack's Pulumi state (history, pending operations) failed; the message is one line."""


class NoSuchStack(RunnerError):
    """The backend has no stack of that name."""


NO_PULUMI = "no `pulumi` CLI on PATH: install it (https://www.pulumi.com/docs/install/)"


def require_pulumi_cli() -> None:
    """Before a command that runs Pulumi loads anything: a RunnerError when there is no `pulumi` on PATH, which the
    Automation API runs (the version is checked when the runner is made)."""
    if shutil.which("pulumi") is None:
        raise RunnerError(NO_PULUMI)


OnProgress = Callable[[str], None]  # one short line per engine step, for live progress


class StackRunner(Protocol):
    def up(
        self,
        stack: str,
        *,
        refresh: bool = False,
        message: str | None = None,
        lock_fd: int | None = None,
        on_progress: OnProgress | None = None,
        cancel: threading.Event | None = None,
        rollback_refs: Mapping[str, Mapping[str, str]] | None = None,
    ) -> OperationResult:
        """`pulumi up --yes --skip-preview` on the stack, recorded in its history with `message`. Setting `cancel`
        while it runs interrupts it the way Ctrl-C interrupts the CLI (the engine finishes its in-flight steps and
        writes state). `lock_fd` is a descriptor the update's process keeps open until it ends: the stack's lock,
        held by the update itself, even if this process dies while the update goes on. `rollback_refs` (configuration
        -> git ref keys) are the refs the program deploys over the stack's own, given to it in ROLLBACK_REFS_ENV."""
        ...

    def preview(self, stack: str, *, refresh: bool = True, on_progress: OnProgress | None = None) -> OperationResult:
        """`pulumi preview` (with refresh): the changes an update would make. `ok` is False only for an error,
        not for changes found."""
        ...

    def history(self, stack: str, limit: int) -> list[UpdateRecord]:
        """The stack's newest `limit` history entries, newest first (an update in progress among them where the
        backend shows one: Pulumi Cloud does, a self-managed backend only records an update once it ended)."""
        ...

    def pending_operations(self, stack: str) -> list[str]:
        """URNs the state lists as pending (an update killed mid-flight); they need `pulumi refresh` first."""
        ...

    def outputs(self, stack: str) -> dict[str, Any]:
        """The stack's outputs as the last update left them, secret ones masked (never decrypted)."""
        ...

    def destroy(
        self,
        stack: str,
        *,
        targets: Sequence[str] | None = None,
        message: str | None = None,
        lock_fd: int | None = None,
        on_progress: OnProgress | None = None,
    ) -> OperationResult:
        """`pulumi destroy --yes --skip-preview` on the stack, recorded in its history (kind `destroy`) with
        `message`; with `targets`, only those URNs (`--target` each; nothing that depends on them, which Pulumi then
        refuses). Resources the state only reads (`get`: an adopted Arc cluster) leave the state, never Azure.
        `lock_fd` as for `up`."""
        ...

    def managed_resources(self, stack: str) -> list[str] | None:
        """The URNs of the cloud resources the stack's state lists (not the stack, its components or providers);
        None when the backend has no such stack."""
        ...

    def remove_stack(self, stack: str) -> None:
        """`pulumi stack rm --yes --preserve-config`: the stack and its history leave the backend; its stack file
        stays. Never forced: Pulumi refuses a stack whose state still lists resources (RunnerError). NoSuchStack
        when the backend has none."""
        ...
