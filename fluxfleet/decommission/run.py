"""A decommission run: its stacks one after another, each step (fluxfleet/decommission STEPS) journaled before it
starts and after it ends, in the rollout's journal (fluxfleet/rollout/journal.py: a run of kind `decommission`, one
stage, each stack's steps in its entry), so `fluxfleet runs` lists it and `--resume` continues it.

A step journaled as running whose end was never journaled (the process was killed) is in doubt, and is settled
before anything else happens to the stack, never repeated blindly:
- a `pulumi destroy` step, as the rollout settles an update: the stack's history is searched for the destroy of that
  step's message (succeeded: the step is done; failed: the stack fails; still in progress: the stack fails, saying
  what to do); none there and no pending operations in the state: it never ran, so it runs now;
- `stack-rm`: done when the backend has no such stack any more;
- `stack-file` and `fleet`: done when the file, or the name in fleet.yaml, is gone (doing them again changes nothing).
The stack's lock (`locks/STACK` of the run-state store, the rollout's) is held meanwhile, and handed to each
`pulumi destroy`: a destroy that outlives a killed fluxfleet keeps it, so a resume waits for it to end before
settling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fluxfleet.clock import Clock
from fluxfleet.decommission import COMPONENTS, PULUMI_STEPS, STEPS, without_stack
from fluxfleet.fleet_file import FleetFileBusy, rewrite_fleet
from fluxfleet.rollout.journal import Journal, RunStatus, StackState
from fluxfleet.rollout.orchestrator import HISTORY_DEPTH
from fluxfleet.runner import NoSuchStack, RunnerError, StackRunner
from fluxfleet.runstate.store import StoreLock, acquire, this_process
from modules.spec import SpecError


@dataclass(frozen=True)
class Files:
    """Where the stack files and fleet.yaml are, and how messages show them."""

    stacks_dir: Path
    fleet_path: Path
    display: Callable[[Path], str]


class StepFailed(Exception):
    """A step failed, or could not be settled: one line."""


class Decommission:
    def __init__(
        self,
        journal: Journal,
        runner: StackRunner,
        files: Files,
        clock: Clock,
        progress: Callable[[str], None] = lambda line: None,
    ):
        self.journal = journal
        self.record = journal.record
        self.runner = runner
        self.files = files
        self.clock = clock
        self.progress = progress

    def run(self) -> None:
        """Every stack of the run in order; the first that fails halts the run (the later ones are not touched)."""
        self.journal.update(self.clock.now(), status=RunStatus.running, reason="")
        for name in self.record.stages[0].stacks:
            entry = self.record.stacks[name]
            if entry.state is StackState.succeeded:
                continue
            try:
                self._stack(name)
            except StepFailed as error:
                self.journal.update(self.clock.now(), name, state=StackState.failed, message=str(error))
                self.journal.update(self.clock.now(), status=RunStatus.halted, reason=f"{name}: {error}")
                self.journal.save()
                return
        self.journal.update(self.clock.now(), status=RunStatus.done, reason="")
        self.journal.save()

    def _stack(self, name: str) -> None:
        lock = self._lock(name)
        try:
            now = self.clock.now().isoformat()
            entry = self.record.stacks[name]
            self.journal.update(self.clock.now(), name, state=StackState.running, started_at=entry.started_at or now)
            for step in STEPS:
                state = self.record.stacks[name].steps.get(step, StackState.pending)
                if state is StackState.succeeded:
                    continue
                if state is StackState.running and self._settled(name, step):
                    continue
                if state is StackState.failed and step in PULUMI_STEPS:
                    self._retryable(name, step)
                self._do(name, step, lock)
            end = self.clock.now().isoformat()
            self.journal.update(self.clock.now(), name, state=StackState.succeeded, ended_at=end, message="done")
        finally:
            lock.release()

    def _lock(self, name: str) -> StoreLock:
        lock = self.journal.store.lock(f"locks/{name}")
        holder = this_process(f"fluxfleet decommission {self.record.run_id}")

        def waiting(who: str) -> None:
            self.progress(f"{name}: waiting: {who} holds the stack's lock")

        if acquire(lock, holder, self.clock, waiting) != "held":
            raise StepFailed(f"not started: {lock.holder()} still holds the stack's lock")
        self.journal.refresh()  # what another process of the run did to the stack while it held the lock
        return lock

    def _step(self, name: str, step: str, state: StackState, **fields: object) -> None:
        steps = {**self.record.stacks[name].steps, step: state}
        self.journal.update(self.clock.now(), name, steps=steps, **fields)

    # ----------------------------------------------------------------------------------------- settling a doubt

    def _settled(self, name: str, step: str) -> bool:
        """Whether a step in doubt is done (journaled so); False: it never ran and is to be done. StepFailed when
        it failed or cannot be told."""
        if step in PULUMI_STEPS:
            update_id = self.record.stacks[name].update_id
            try:
                history = self.runner.history(name, HISTORY_DEPTH) if update_id else []
                ours = next((u for u in history if u.kind == "destroy" and u.message == update_id), None)
                pending = [] if ours else self.runner.pending_operations(name)
            except RunnerError as error:
                raise StepFailed(f"{step}: cannot tell what the interrupted destroy did: {error}") from None
            if ours is not None and ours.result == "succeeded":
                self.progress(f"{name}: {step} was in doubt: the stack's history has it succeeded")
                self._step(name, step, StackState.succeeded, update_id=None, message=f"{step}: done (settled)")
                return True
            if ours is not None and ours.result == "failed":
                self._step(name, step, StackState.failed, update_id=None)
                raise StepFailed(f"{step}: the interrupted destroy failed: see `pulumi stack history -s {name}`")
            if ours is not None:
                raise StepFailed(
                    f"{step}: the interrupted destroy is still in progress in the Pulumi backend: wait for it, or if "
                    f"no `pulumi` runs it any more, run `pulumi cancel -s {name}` and `pulumi refresh -s {name}`, "
                    "then resume"
                )
            if pending:
                raise StepFailed(
                    f"{step}: {len(pending)} pending operation(s) from an interrupted destroy: run `pulumi refresh "
                    f"-s {name}`, then resume"
                )
            self.progress(f"{name}: {step} was in doubt: it never reached Pulumi")
            return False
        if step == "stack-rm":
            try:
                gone = self.runner.managed_resources(name) is None
            except RunnerError as error:
                raise StepFailed(f"{step}: cannot tell whether the stack was removed: {error}") from None
            if gone:
                self.progress(f"{name}: {step} was in doubt: the backend has no such stack any more")
                self._step(name, step, StackState.succeeded, message=f"{step}: done (settled)")
            return gone
        return False  # a file step: done again, it changes nothing that is done

    def _retryable(self, name: str, step: str) -> None:
        """A destroy that failed is tried again only once the state has no pending operations (a destroy that
        failed half-way leaves some)."""
        try:
            pending = self.runner.pending_operations(name)
        except RunnerError as error:
            raise StepFailed(f"{step}: cannot read the stack's state: {error}") from None
        if pending:
            raise StepFailed(
                f"{step}: {len(pending)} pending operation(s) from the failed destroy: run `pulumi refresh -s {name}`, "
                "then resume"
            )

    # ----------------------------------------------------------------------------------------- doing a step

    def _do(self, name: str, step: str, lock: StoreLock) -> None:
        self.progress(f"{name}: {step}")
        if step in PULUMI_STEPS:
            self._destroy(name, step, lock)
            return
        self._step(name, step, StackState.running, started_at=self.record.stacks[name].started_at)
        if step == "stack-rm":
            try:
                self.runner.remove_stack(name)
            except NoSuchStack:
                pass  # gone already: what the step is for
            except RunnerError as error:
                self._step(name, step, StackState.failed)
                raise StepFailed(f"{step}: {error}") from None
        elif step == "stack-file":
            path = self.files.stacks_dir / f"Pulumi.{name}.yaml"
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                self._step(name, step, StackState.failed)
                raise StepFailed(f"{step}: cannot delete {self.files.display(path)}: {error.strerror}") from None
        elif step == "fleet":
            self._fleet(name)
        self._step(name, step, StackState.succeeded, message=f"{step}: done")

    def _destroy(self, name: str, step: str, lock: StoreLock) -> None:
        targets = None
        try:
            resources = self.runner.managed_resources(name)
        except RunnerError as error:
            raise StepFailed(f"{step}: cannot read the stack's state: {error}") from None
        if resources is None:  # never deployed, or removed by hand: nothing of it in Pulumi to delete
            self._step(name, step, StackState.succeeded, message=f"{step}: no such stack in the Pulumi backend")
            return
        if step in COMPONENTS:
            marker = COMPONENTS[step] + "$"
            targets = [urn for urn in resources if marker in urn.split("::")[2]]
            if not targets:
                self._step(name, step, StackState.succeeded, message=f"{step}: none in the stack's state")
                return
        attempt = self.record.stacks[name].attempts + 1
        update_id = f"fluxfleet decommission {self.record.run_id}: {name} {step} #{attempt}"
        # Journaled before Pulumi starts: from here until its end is journaled the step is in doubt.
        self._step(name, step, StackState.running, attempts=attempt, update_id=update_id)
        result = self.runner.destroy(
            name,
            targets=targets,
            message=update_id,
            lock_fd=lock.fd,
            on_progress=lambda line: self.progress(f"{name}: {line}"),
        )
        if not result.ok:
            self._step(name, step, StackState.failed, update_id=None)
            raise StepFailed(f"{step}: {result.error or 'the destroy failed'}")
        deleted = result.summary.get("delete", 0)
        self._step(name, step, StackState.succeeded, update_id=None, message=f"{step}: {deleted} deleted")

    def _fleet(self, name: str) -> None:
        path = self.files.fleet_path
        if not path.exists():
            return
        others = sorted(
            p.name.removeprefix("Pulumi.").removesuffix(".yaml")
            for p in self.files.stacks_dir.glob("Pulumi.*.yaml")
            if p.name != f"Pulumi.{name}.yaml"
        )
        display = self.files.display(path)
        try:
            rewrite_fleet(
                path,
                display,
                lambda text: without_stack(text, display, name, others),
                this_process(f"decommission {name}"),
            )
        except SpecError as error:
            self._step(name, "fleet", StackState.failed)
            raise StepFailed(f"fleet: {error.issues[0]}") from None
        except (FleetFileBusy, OSError) as error:
            self._step(name, "fleet", StackState.failed)
            raise StepFailed(f"fleet: {display}: {getattr(error, 'strerror', None) or error}") from None
