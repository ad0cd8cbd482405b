"""What a gone stack `inventory --prune` deletes, or keeps, leaves behind in Pulumi.

The file is only the stack's config: its Pulumi stack, and the state in it, live on in the backend. Before a prune,
Pulumi is asked (`pulumi stack export`, through `automation.AutomationRunner`) what each gone stack's state still
lists. A stack whose state still lists resources keeps its file, and the report proposes `fluxfleet decommission
STACK`, which needs the file: its journaled run takes the resources out of the state (the cluster is gone, ARM
answered 404: Azure's deletes of what is gone succeed), removes the Pulumi stack, then deletes the file and the
stack's name in fleet.yaml (a prune leaves that name behind). Any other gone stack's file is deleted, and the report
says what remains and the command that removes it. When Pulumi cannot be asked, the file is pruned and the report
says that the state may remain, and how to look. The lookup never fails a prune: every failure becomes what the
report says.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from fluxfleet.runner import RunnerError


class StateReader(Protocol):
    def managed_resources(self, stack: str) -> list[str] | None:
        """The URNs of the resources the stack's state manages (not the stack itself, its components or providers);
        None when the backend has no such stack. RunnerError when Pulumi cannot say."""
        ...


@dataclass(frozen=True)
class LeftState:
    """The Pulumi stack of a pruned stack file, as far as Pulumi could say."""

    stack: str
    remains: bool | None  # None: Pulumi could not be asked
    resources: tuple[str, ...] = ()  # the URNs the state still lists
    reason: str | None = None  # why Pulumi could not be asked

    @property
    def holds_state(self) -> bool:
        """The state still lists resources: `fluxfleet decommission` is proposed, and the stack file kept for it."""
        return bool(self.remains and self.resources)

    @property
    def proposal(self) -> str | None:
        return f"fluxfleet decommission {self.stack}" if self.holds_state else None

    @property
    def command(self) -> str | None:
        """What removes the stack and its state (None: nothing to remove). --force when the state lists resources
        (or may): `stack rm` refuses such a stack without it. The cluster is gone, and with it what lived on it;
        `destroy` would need the deleted stack file's config and would only delete what no longer exists."""
        if self.remains is False:
            return None
        if self.proposal:
            return self.proposal
        force = "--force " if self.resources or self.remains is None else ""
        return f"pulumi stack rm {force}--yes --stack {self.stack}"

    @property
    def summary(self) -> str:
        """The resources as `count type` items: `1 azure-native:kubernetes:ConnectedCluster, 2 ...`."""
        counts = Counter(resource_type(urn) for urn in self.resources)
        return ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items()))

    @property
    def line(self) -> str:
        if self.remains is None:
            return (
                f"Pulumi stack {self.stack}: Pulumi could not be asked ({self.reason}), so its state may remain: "
                f"`pulumi stack export --stack {self.stack}` shows it, `{self.command}` removes it"
            )
        if not self.remains:
            return f"Pulumi stack {self.stack}: none in the backend, nothing left behind"
        if not self.resources:
            return f"Pulumi stack {self.stack} remains, with no resources: `{self.command}` removes it"
        return (
            f"Pulumi stack {self.stack} still holds state, {len(self.resources)} resource(s) ({self.summary}): "
            f"propose `{self.proposal}`, which takes them out of the state, removes the stack, then its file (kept "
            "for it) and its name in fleet.yaml"
        )


def resource_type(urn: str) -> str:
    """The type of a URN (`urn:pulumi:STACK::PROJECT::[PARENT$]TYPE::NAME`), without its parents' types."""
    parts = urn.split("::")
    return parts[2].rsplit("$", 1)[-1] if len(parts) >= 4 else urn


def left_states(stacks: Iterable[str], open_reader: Callable[[], StateReader]) -> tuple[LeftState, ...]:
    """What each stack leaves in Pulumi; Pulumi is only started when there is a stack to ask about."""
    stacks = list(stacks)
    if not stacks:
        return ()
    try:
        reader = open_reader()
    except (RunnerError, OSError) as error:
        return tuple(LeftState(stack, None, reason=_reason(error)) for stack in stacks)
    states = []
    for stack in stacks:
        try:
            resources = reader.managed_resources(stack)
        except (RunnerError, OSError) as error:
            states.append(LeftState(stack, None, reason=_reason(error)))
            continue
        states.append(LeftState(stack, resources is not None, tuple(resources or ())))
    return tuple(states)


def _reason(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
