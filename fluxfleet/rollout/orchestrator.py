"""`fluxfleet rollout`: the stacks of `stacks/fleet.yaml` updated stage by stage.

Inside a stage up to `maxConcurrency` stacks run at once, never two on one cluster; each update is followed by the
Flux health gate; a stack that fails either counts against the stage's `maxFailures`, and past it the run halts:
in-flight stacks finish, the rest of the stage is skipped, later stages are not touched. Every decision is written
to the journal first, so `--resume` continues where a crash or Ctrl-C left off and never re-applies a stack that
succeeded.

A stage with `rollback` reads what each stack runs (its exported refs) before updating it. A stack whose gate then
fails is updated back to those refs (the program takes them from ROLLBACK_REFS_ENV, never from a file) and gated
again; past `maxFailures` every stack of the stage whose update reached the Pulumi backend goes back (one refused
before Pulumi ran still runs what it ran), and the stage's pins in fleet.yaml with them. Each direction of a stack
is applied at most once per run, with the same doubt handling.

Pulumi runs behind `StackRunner` and Azure behind the gate, so the whole schedule is testable offline.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import statistics
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fluxfleet.azure.access import no_subscription
from fluxfleet.clock import Clock
from fluxfleet.flux_health import Verdict
from fluxfleet.rollout.gate import FluxHealthGate
from pydantic import TypeAdapter, ValidationError

from fluxfleet.rollout.journal import (
    Attempt,
    SourceRefs,
    Journal,
    Rollback,
    RunRecord,
    RunStatus,
    StackEntry,
    StackState,
    StagePlan,
    StageProgress,
)
from fluxfleet.fleet_file import FleetFileBusy, rewrite_fleet
from fluxfleet.runstate.store import LOCK_POLL_SECONDS, StoreLock, acquire, this_process
from fluxfleet.runner import OperationResult, ResourceChange, RunnerError, StackRunner
from fluxfleet.upgrade_path import read_upgrade_path_problem
from modules.spec import (
    FLEET_FILE,
    STACK_FILE,
    Fleet,
    SpecError,
    SpecIssue,
    Stack,
    StackSpec,
    load_fleet,
    ProfileLibrary,
    load_stack_file,
    shared_clusters,
    stack_profiles,
    stack_files,
)
from modules.flux_configuration_v2025 import TYPE as V2025_TYPE
from modules.spec.fleet import KUBERNETES_PIN, PLATFORM_PINS, PinSpec, has_pins, pin_in, with_pin
from modules.spec.windows import WindowSpec, next_opening

DEFAULT_STACK_SECONDS = 10 * 60  # an estimate for a stack never rolled out before: an AKS update and a gate
CLUSTER_TYPES = frozenset({"azure-native:containerservice:ManagedCluster", "azure-native:kubernetes:ConnectedCluster"})
FLUX_TYPES = {  # type -> how a refusal names it
    "azure-native:kubernetesconfiguration:Extension": "the Flux extension",
    "azure-native:kubernetesconfiguration:FluxConfiguration": "Flux configuration",
    V2025_TYPE: "Flux configuration",  # fluxfleet's own, at API 2025-04-01 (modules/flux_configuration_v2025.py)
}
HISTORY_DEPTH = 20  # history entries searched for an update of this run (later ones are other runs' or people's)
BUDGET_READ_SECONDS = 0.25
STARTED = frozenset({StackState.running, StackState.gating, StackState.deferred})  # an update under way, or done
NEVER = datetime.max.replace(tzinfo=UTC)  # a stack whose windows never open together
WINDOW_SEARCH = timedelta(days=366)  # how far ahead a start inside a stage's and a stack's windows is looked for


class NotReady(RuntimeError):
    """The stacks of this process wait on an earlier stage of the run, which has not passed: one line."""


class Observer:
    """What a rollout reports while it runs (the CLI draws progress from it). Every method may be called from
    worker threads."""

    def stage_started(self, stage: StagePlan) -> None: ...

    def stack_started(self, stack: str) -> None: ...

    def stack_progress(self, stack: str, line: str) -> None: ...

    def stack_finished(self, stack: str, entry: StackEntry) -> None: ...

    def baking(self, stage: StagePlan, seconds: float) -> None: ...

    def waiting_for_window(self, stack: str, opens: datetime) -> None:
        """The stack's update waits for a deployment window (its stage's, its own) that opens at `opens`."""

    def soak_finding(self, stack: str, finding: str) -> None:
        """A stage's soak saw a stack turn unhealthy (`finding` says when and why)."""


@dataclass(frozen=True)
class Selection:
    """Which part of the fleet a new run covers, from the command line."""

    stage: str | None = None
    stacks: tuple[str, ...] | None = None  # stack names and globs: a stack matching any of them
    max_concurrency: int | None = None  # a cap on every stage's own
    rollback: bool = False  # every stage rolls back, whatever fleet.yaml says
    names: frozenset[str] | None = None  # only these stacks (drift --remediate: the drifted ones)

    def plan(self, fleet: Fleet) -> list[StagePlan]:
        stages = []
        for stage in fleet.stages:
            if self.stage is not None and stage.name != self.stage:
                continue
            members = [
                name
                for name in stage.stacks
                if (self.stacks is None or any(fnmatch.fnmatchcase(name, pattern) for pattern in self.stacks))
                and (self.names is None or name in self.names)
            ]
            if members:
                limit = min(stage.max_concurrency, self.max_concurrency or stage.max_concurrency)
                stages.append(StagePlan.of(stage, members, limit, self.rollback))
        return stages


def new_run(
    fleet: Fleet, selection: Selection, now: datetime, approved: tuple[str, ...] = (), run_id: str | None = None
) -> RunRecord:
    stages = selection.plan(fleet)
    return RunRecord(
        run_id=run_id or Journal.new_run_id(now),
        fleet_file=fleet.file,
        started_at=now.isoformat(),
        status=RunStatus.running,
        stages=stages,
        stacks={name: StackEntry(stage=stage.name) for stage in stages for name in stage.stacks},
        approved=list(approved),
    )


class Rollout:
    """Runs (or resumes) one journaled run to its end, a halt, an approval stop, or an interruption."""

    def __init__(
        self,
        journal: Journal,
        specs: Mapping[str, StackSpec],
        runner: StackRunner,
        clock: Clock,
        *,
        gate: FluxHealthGate | None = None,
        health_gate: bool = True,
        subscription_of: Callable[[StackSpec], str | None] = lambda spec: spec.cluster.subscription_id,
        observer: Observer | None = None,
        stop: threading.Event | None = None,
        cancel: threading.Event | None = None,
        refuse_cluster_replacement: bool = True,
        refuse_flux_replacement: bool = True,
        fleet_path: Path | None = None,
        only: frozenset[str] | None = None,
    ):
        self.journal = journal
        self.specs = specs
        self.runner = runner
        self.clock = clock
        self.gate = gate  # its Azure reads: the checks before every update, and the health gate after it
        self.health_gate = health_gate  # False (fleet.yaml's fluxCompliance: false): no waiting for Flux after it
        self.subscription_of = subscription_of
        self.observer = observer or Observer()
        self.stop = stop or threading.Event()  # first Ctrl-C: start nothing new
        self.cancel = cancel or threading.Event()  # second Ctrl-C: interrupt the running updates
        self.refused_types = (CLUSTER_TYPES if refuse_cluster_replacement else frozenset()) | (
            frozenset(FLUX_TYPES) if refuse_flux_replacement else frozenset()
        )
        self.fleet_path = fleet_path  # where a stage rolled back restores its pins; None: say what to pin instead
        # The stacks this process works (one matrix leg's); None: every stack of the run. Others of the run are
        # other processes' (on this machine or another), recorded in the same journal.
        self.only = only
        self._budget_read = -BUDGET_READ_SECONDS  # when `_schedule` last read the run (time.monotonic)

    @property
    def record(self) -> RunRecord:
        return self.journal.record

    def run(self, approve: tuple[str, ...] = ()) -> RunStatus:
        """The run to its end, a halt, an approval stop or an interruption; NotReady (nothing recorded) when the
        stacks of this process wait on an earlier stage of the run that has not passed."""
        self.journal.refresh()  # what other processes recorded since the run was read
        approved = [*self.record.approved, *(name for name in approve if name not in self.record.approved)]
        self._set_run(RunStatus.running, "", approved=approved)
        stages = list(self.record.stages)
        for index, stage in enumerate(stages):
            mine = [name for name in stage.stacks if self._mine(name)]
            if mine and (ended := self._work_stage(stage, mine)) is not None:
                return ended
            if not any(self._mine(name) for after in stages[index + 1 :] for name in after.stacks):
                continue
            # Stacks of ours come later: this stage, whoever worked it, must have passed and baked first.
            if why := self._not_passed(stage):
                raise NotReady(f"run {self.record.run_id}: {why}")
            # A stage finished in an earlier attempt still owes what is left of its soak.
            if stage.after_stage_wait and (ended := self._soak(stage)) is not None:
                return ended
        return self._set_run(*self._end())

    def soak(self, name: str) -> RunStatus:
        """Only the soak of stage `name` (which has passed), to its end: what CI's bake job runs between stages.
        NotReady when the stage has not passed."""
        self.journal.refresh()
        stage = next(plan for plan in self.record.stages if plan.name == name)
        if why := self._not_passed(stage):
            raise NotReady(f"run {self.record.run_id}: {why}")
        if (ended := self._soak(stage)) is not None:
            return ended
        return self.record.status

    def _work_stage(self, stage: StagePlan, mine: list[str]) -> RunStatus | None:
        """This process's stacks of the stage to their end; the run's status when the run stops here (a halt, a
        rollback, an approval to wait for, an interruption), None when it goes on."""
        if stage.rolling_back is not None:  # a resumed run whose stage was being rolled back: finish that
            return self._roll_back_stage(stage)
        if any(self.record.stacks[name].state is not StackState.succeeded for name in mine):
            if stage.approval and stage.name not in self.record.approved:
                return self._set_run(
                    RunStatus.awaiting_approval,
                    f"stage {stage.name} needs approval: "
                    f"fluxfleet rollout --resume {self.record.run_id} --approve {stage.name}",
                )
            self.observer.stage_started(stage)
            # Failed ones first: until it is retried, a failure counts against the stage's budget.
            queue = sorted(
                (name for name in mine if self.record.stacks[name].state is not StackState.succeeded),
                key=lambda name: self.record.stacks[name].state is not StackState.failed,
            )
            self._schedule(stage, queue, self._run_stack, budgeted=True)
            self.journal.refresh()
            if (failure := self._stage_failure(stage)) is not None:
                for name in mine:
                    if self.record.stacks[name].state is StackState.pending:
                        self.journal.update(self.clock.now(), name, state=StackState.skipped, message="run halted")
                reason = f"stage {stage.name}: {failure}"
                if not stage.rollback:
                    return self._set_run(RunStatus.halted, reason)
                self.journal.update(self.clock.now(), stage=stage.name, rolling_back=reason)
                return self._roll_back_stage(stage)
            if self.stop.is_set():
                return self._set_run(RunStatus.interrupted, f"interrupted in stage {stage.name}")
            self.journal.save()  # the stage's changes into the snapshot: the log stays short
        self._record_bake(stage)
        return None

    def _refresh_now_and_then(self) -> None:
        """What other processes recorded, read at most every BUDGET_READ_SECONDS (of wall time): a budget spent by
        another machine is seen that soon, without a read of the run before every one of a thousand stacks."""
        now = time.monotonic()
        if now - self._budget_read >= BUDGET_READ_SECONDS:
            self.journal.refresh()
            self._budget_read = now

    def _mine(self, name: str) -> bool:
        return self.only is None or name in self.only

    def _failures(self, stage: StagePlan, retrying: Collection[str] = ()) -> int:
        """The stage's stacks that failed, by any process of the run, but those about to be tried again."""
        return sum(
            1 for name in stage.stacks if name not in retrying and self.record.stacks[name].state is StackState.failed
        )

    def _budget_spent(self, stage: StagePlan, retrying: Collection[str] = ()) -> bool:
        """Whether the stage has failed whatever its other stacks do: more failures than its maxFailures, or too
        few stacks left that could still succeed to reach its minSuccess."""
        if self._failures(stage, retrying) > stage.max_failures:
            return True
        if not stage.min_succeeded:
            return False
        lost = sum(
            1
            for name in stage.stacks
            if name not in retrying
            and self.record.stacks[name].state in (StackState.failed, StackState.deferred, StackState.skipped)
        )
        return len(stage.stacks) - lost < stage.min_succeeded

    def _stage_failure(self, stage: StagePlan) -> str | None:
        """Why the stage failed (its maxFailures, its minSuccess), as far as it went; None: it has not."""
        progress = StageProgress.of(self.record, stage)
        if progress.failure is None and self._budget_spent(stage) and progress.open:
            return (
                f"too few stacks can still succeed for its minSuccess {stage.min_success} ({stage.min_succeeded} of "
                f"{len(stage.stacks)})"
            )
        return progress.failure

    def _not_passed(self, stage: StagePlan) -> str | None:
        """Why the stage has not passed (stacks not ended, or more failures than its budget); None: it passed."""
        progress = StageProgress.of(self.record, stage)
        if progress.open:
            return (
                f"stage {stage.name} has not ended: {len(progress.open)} stack(s) not done ({_few(progress.open)}): "
                f"run them first (fluxfleet rollout --run-id {self.record.run_id} --stage {stage.name})"
            )
        if not progress.passed:
            return f"stage {stage.name} failed: {progress.failure}"
        return None

    def _record_bake(self, stage: StagePlan) -> None:
        """When the stage has passed, whoever saw it pass first records when its bake ends: every process of the
        run (a later stage's leg, a CI job that waits out the bake) waits for that same moment."""
        if stage.after_stage_wait and stage.bake_until is None:
            self.journal.refresh()
            if stage.bake_until is None and self._not_passed(stage) is None:
                until = self.clock.now() + timedelta(seconds=stage.after_stage_wait)
                self.journal.update(self.clock.now(), stage=stage.name, bake_until=until.isoformat())

    def _end(self) -> tuple[RunStatus, str]:
        """How the run stands once this process's stacks are done: done when every stack of the run is."""
        self.journal.refresh()
        left = [name for name, entry in self.record.stacks.items() if entry.state is not StackState.succeeded]
        if self.only is None or not left:
            return RunStatus.done, ""
        return RunStatus.partial, f"{len(left)} stack(s) of the run not done by this process: {_few(left)}"

    # ------------------------------------------------------------------ one stage

    def _schedule(
        self, stage: StagePlan, queue: list[str], work: Callable[[str], StackState], budgeted: bool = False
    ) -> None:
        """`work` on every stack of `queue`, up to the stage's concurrency, one operation per cluster at a time;
        `budgeted` (the stage's updates): nothing new starts once the stage's budget is spent, and a stack starts
        only inside its deployment windows, waiting for the next to open when none is (a rollback never waits)."""
        queue = list(queue)
        running: dict[Future[StackState], str] = {}
        busy: set[tuple[str, ...]] = set()
        wake = threading.Event()  # an update ended: what waits for a window may start something else
        opening: dict[str, datetime] = {}  # stack -> when its next window opens, while it is closed
        with ThreadPoolExecutor(max_workers=stage.max_concurrency, thread_name_prefix=stage.name) as pool:
            while queue or running:
                opens: datetime | None = None  # the first window a stack of the queue waits for
                while not self.stop.is_set() and len(running) < stage.max_concurrency:
                    if budgeted:  # failures of every process of the run count, as they are now
                        self._refresh_now_and_then()
                        if self._budget_spent(stage, retrying=queue):
                            opens = None
                            break
                    name, never = None, []
                    for candidate in queue:
                        if self._cluster(candidate) in busy:
                            continue
                        if budgeted and (at := self._window_opens(stage, candidate, opening)) is not None:
                            if at is NEVER:
                                never.append(candidate)  # failed: its windows never meet
                            else:
                                opens = at if opens is None else min(opens, at)
                            continue
                        name = candidate
                        break
                    for candidate in never:
                        queue.remove(candidate)
                    if name is None:
                        if never:
                            continue  # the budget, counted again
                        break
                    queue.remove(name)
                    busy.add(self._cluster(name))
                    future = pool.submit(work, name)
                    future.add_done_callback(lambda _: wake.set())
                    running[future] = name
                if opens is not None and not self.stop.is_set() and len(running) < stage.max_concurrency:
                    wake.clear()
                    if not any(future.done() for future in running):
                        seconds = (opens - self.clock.now()).total_seconds()
                        self.clock.sleep(seconds, wake if running else self.stop)
                    done = {future for future in running if future.done()}
                elif not running:
                    break  # halted or stopped with stacks left: they stay pending for the journal to say so
                else:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    busy.discard(self._cluster(running.pop(future)))
                    future.result()  # an exception here is a crash: let it end the run

    def _window_opens(self, stage: StagePlan, name: str, opening: dict[str, datetime]) -> datetime | None:
        """When the stack's update may start, when that is not now: the first moment inside one of its stage's
        windows and one of its own (both, when both are set). None: now. The wait is journaled once (the stack's
        progress line and the report say until when); a stack whose windows never meet within a year fails."""
        entry = self.record.stacks[name]
        windows = (stage.windows, self.specs[name].windows)
        if not any(windows) or entry.update_id is not None or entry.state in STARTED:
            return None  # an update started (in doubt, or gating) is finished whatever the windows say
        now = self.clock.now()
        if (known := opening.get(name)) is not None and now < known:
            return known
        at = window_start(now, windows)
        if at == now:
            opening.pop(name, None)
            if entry.window_opens is not None:
                self.journal.update(now, name, window_opens=None)
            return None
        if at is None:
            message = f"not started: its windows never open together within a year ({_windows_text(windows)})"
            self.journal.update(now, name, state=StackState.failed, ended_at=now.isoformat(), message=message)
            return NEVER
        opening[name] = at
        if entry.window_opens != at.isoformat():
            message = f"waiting for its deployment window: opens {at.isoformat()} ({_windows_text(windows)})"
            self.journal.update(now, name, window_opens=at.isoformat(), message=message)
            self.observer.waiting_for_window(name, at)
        return at

    def _cluster(self, stack: str) -> tuple[str, ...]:
        cluster = self.specs[stack].cluster
        subscription = self.subscription_of(self.specs[stack]) or ""
        return (subscription.lower(), cluster.resource_group.lower(), cluster.name.lower(), cluster.kind)

    # ------------------------------------------------------------------ the soak after a stage

    def _soak(self, stage: StagePlan) -> RunStatus | None:
        """The stage's afterStageWait (what is left of it, on resume), watching its stacks: None when it passed
        the soak, else the run's status (halted, rolled back, interrupted). One process of the run watches it (the
        soak's lock); the others wait for what it records, and take over when it dies."""
        if stage.bake_until is None:
            until = self.clock.now() + timedelta(seconds=stage.after_stage_wait)
            self.journal.update(self.clock.now(), stage=stage.name, bake_until=until.isoformat())
        lock = self.journal.store.lock(f"locks/soak-{self.record.run_id}-{stage.name}")
        told = False
        while True:
            self.journal.refresh()
            if stage.soak_ended or stage.rolling_back is not None:
                break
            if lock.try_acquire(this_process(f"fluxfleet rollout {self.record.run_id}: soak of {stage.name}")):
                try:
                    ended = self._watch(stage)
                finally:
                    lock.release()
                if ended is not None:
                    return ended
                break
            if not told:
                self.observer.baking(stage, self._soak_left(stage))
                told = True
            poll = self.gate.poll_interval if self.gate is not None else LOCK_POLL_SECONDS
            if self.clock.sleep(max(min(poll, self._soak_left(stage)), LOCK_POLL_SECONDS), self.stop):
                return self._set_run(RunStatus.interrupted, f"interrupted while baking after stage {stage.name}")
        self.journal.refresh()
        if why := self._not_passed(stage):  # another process's soak failed it, and stopped the run
            raise NotReady(f"run {self.record.run_id}: {why}")
        return None

    def _soak_left(self, stage: StagePlan) -> float:
        assert stage.bake_until is not None
        return max((datetime.fromisoformat(stage.bake_until) - self.clock.now()).total_seconds(), 0.0)

    def _watch(self, stage: StagePlan) -> RunStatus | None:
        """The soak, by this process: every poll one look at the stage's stacks that succeeded (one fleet read for
        them all); a stack that turns unhealthy fails (and rolls back, in a stage that does), and counts against
        the budget. Each look is journaled (`soaked_until`, each stack's `soak`), so a resumed soak goes on from it."""
        left = self._soak_left(stage)
        if left > 0:
            self.observer.baking(stage, left)
        watching = self.gate is not None and self.health_gate
        while True:
            now = self.clock.now()
            turned = self._look(stage, now) if watching else {}
            if turned and (ended := self._soak_failures(stage, turned)) is not None:
                return ended
            if watching:
                self.journal.update(now, stage=stage.name, soaked_until=now.isoformat())
            left = self._soak_left(stage)
            if left <= 0:
                break
            poll = self.gate.poll_interval if watching and self.gate is not None else left
            if self.clock.sleep(min(poll, left), self.stop):
                return self._set_run(RunStatus.interrupted, f"interrupted while baking after stage {stage.name}")
        for name in stage.stacks:
            entry = self.record.stacks[name]
            if watching and entry.state is StackState.succeeded and not entry.soak:
                self.journal.update(self.clock.now(), name, soak=f"healthy throughout, until {stage.bake_until}")
        self.journal.update(self.clock.now(), stage=stage.name, soak_ended=True)
        return None

    def _look(self, stage: StagePlan, now: datetime) -> dict[str, str]:
        """The stage's succeeded stacks that are unhealthy now: stack -> why."""
        assert self.gate is not None
        watched = {}
        for name in stage.stacks:
            entry = self.record.stacks[name]
            spec = self.specs.get(name)
            if entry.state is not StackState.succeeded or entry.soak or spec is None or not spec.flux.configurations:
                continue
            if (subscription := self.subscription_of(spec)) is None:
                continue
            since = entry.gated_at or entry.started_at
            watched[name] = (spec, subscription, datetime.fromisoformat(since) if since else now)
        looks = self.gate.look(watched) if watched else {}
        return {name: look.message for name, look in looks.items() if look.verdict is Verdict.unhealthy}

    def _soak_failures(self, stage: StagePlan, turned: Mapping[str, str]) -> RunStatus | None:
        """Stacks the soak saw turn unhealthy: each failed (its rollback with it, in a stage that rolls back), the
        rollbacks run; past the stage's budget the run halts, or the stage rolls back. None: the soak goes on."""
        now = self.clock.now()
        for name, why in sorted(turned.items()):
            finding = f"turned unhealthy at {now.isoformat()}: {why}"
            self.journal.update(now, name, soak=finding)
            self.observer.soak_finding(name, finding)
            message = f"soak: {finding}"
            if stage.rollback:
                rollback, why_not = self._rollback_of(name, message)
                self._fail(name, _joined(message, why_not), rollback=rollback)
            else:
                self._fail(name, message)
        owed = [name for name in sorted(turned) if _owed(self.record.stacks[name].rollback)]
        if owed:
            self._schedule(stage, owed, self._roll_back_stack)
        if (failure := self._stage_failure(stage)) is None:
            return None
        reason = f"stage {stage.name} (in its soak): {failure}"
        if not stage.rollback:
            return self._set_run(RunStatus.halted, reason)
        self.journal.update(self.clock.now(), stage=stage.name, rolling_back=reason)
        return self._roll_back_stage(stage)

    # ------------------------------------------------------------------ rolling a stage back

    def _roll_back_stage(self, stage: StagePlan) -> RunStatus:
        """Every stack of the stage the run updated, back to the refs it ran before (the stage's concurrency and
        cluster bounds; a rollback that fails is reported, never retried), then the stage's pins in fleet.yaml."""
        for name in stage.stacks:
            entry = self.record.stacks[name]
            if entry.rollback is None and entry.state is not StackState.pending:
                rollback, why_not = self._stage_rollback_of(name, f"stage {stage.name} is rolled back")
                if rollback is not None:
                    self.journal.update(self.clock.now(), name, rollback=rollback)
                elif why_not and why_not not in entry.message:
                    self.journal.update(self.clock.now(), name, message=_joined(entry.message, why_not))
        queue = [name for name in stage.stacks if _owed(self.record.stacks[name].rollback)]
        self.observer.stage_started(stage)
        self._schedule(stage, queue, self._roll_back_stack)
        if self.stop.is_set():
            return self._set_run(RunStatus.interrupted, f"interrupted while rolling back stage {stage.name}")
        if stage.pins_restored is None:
            self.journal.update(self.clock.now(), stage=stage.name, pins_restored=self._restore_pins(stage))
        states = {name: r.state for name in stage.stacks if (r := self.record.stacks[name].rollback) is not None}
        owed = [name for name in states if _owed(self.record.stacks[name].rollback)]
        failed = [name for name, state in states.items() if state is StackState.failed and name not in owed]
        outcome = "stage rolled back"
        if failed:
            outcome += f"; ROLLBACK FAILED for {', '.join(failed)}: fix by hand, see each stack"
        if owed:
            outcome += f"; not confirmed yet for {', '.join(owed)}: resume the run to settle them"
        return self._set_run(RunStatus.rolled_back, f"{stage.rolling_back}: {outcome}")

    def _roll_back_stack(self, name: str) -> StackState:
        self.observer.stack_started(name)
        state = self._advance(name, back=True)
        self.observer.stack_finished(name, self.record.stacks[name])
        return state

    def _stage_rollback_of(self, name: str, reason: str) -> tuple[Rollback | None, str]:
        """The rollback of a stack of a stage rolled back, only if its update reached the Pulumi backend: a stack
        refused before Pulumi ran (cluster busy, a skipped extension hop, a refused replacement) still runs what it
        ran, and a rollback would apply the very spec that was refused. None, with why (empty for a stack the run
        never started)."""
        entry = self.record.stacks[name]
        if not entry.attempts:
            return None, "not rolled back: Pulumi never ran its update" if entry.state is StackState.failed else ""
        if entry.state is StackState.failed:  # the update failed, or its gate did: the backend's history says which
            try:
                history = self.runner.history(name, HISTORY_DEPTH)
            except RunnerError as error:
                return None, f"not rolled back: cannot tell whether its update reached Pulumi: {error}"
            ours = f"fluxfleet rollout {self.record.run_id}: {name} #"
            if not any(update.message.startswith(ours) for update in history):
                return None, "not rolled back: its update never reached the Pulumi backend"
        return self._rollback_of(name, reason)

    def _rollback_of(self, name: str, reason: str) -> tuple[Rollback | None, str]:
        """The rollback of a stack the run updated: the configurations whose ref the update changed, at the refs they
        ran before. None, with why, when there is nothing to return to."""
        previous = self.record.stacks[name].previous_refs
        if previous is None:
            return None, "not rolled back: what it ran before was not recorded"
        if not previous:
            return None, "not rolled back: it exported no refs to return to (new, or deployed by an older fluxfleet)"
        now = self.specs[name].source_refs()
        refs = {config: ref for config, ref in sorted(previous.items()) if config in now and now[config] != ref}
        if not refs:
            return None, "not rolled back: its update changed no git ref"
        return Rollback(refs=refs, reason=reason), ""

    def _restore_pins(self, stage: StagePlan) -> list[str]:
        """The stage's pins in fleet.yaml back to the ref its stacks ran before (where they all ran one a pin can
        say), so that the next `pulumi up` of any of them does not apply the revision that failed again. One line
        per pin saying what became of it."""
        notes = []
        for config, pinned in sorted(stage.pins.items()):
            entries = [self.record.stacks[name] for name in stage.stacks]
            before = {
                json.dumps(entry.previous_refs[config], sort_keys=True)
                for entry in entries
                if entry.previous_refs and config in entry.previous_refs  # a stack refused unstarted runs it still
            }
            now = _ref_text(pinned)
            updated = [name for name in stage.stacks if self.record.stacks[name].attempts]
            if config == KUBERNETES_PIN and updated:
                # AKS never downgrades a control plane: a pin back at the old minor would make the next update of
                # every cluster that took the new one fail. The pin stays; what failed is fixed forward.
                notes.append(
                    f"kubernetes: fleet.yaml keeps {now}: AKS never downgrades a control plane, and "
                    f"{len(updated)} cluster(s) of stage {stage.name} were updated to it ({', '.join(updated)}): "
                    "fix forward"
                )
                continue
            if len(before) != 1:
                why = "no stack recorded what it ran before" if not before else "its stacks ran different refs before"
                notes.append(f"{config}: fleet.yaml still pins {now} ({why}): set the pin by hand")
                continue
            ref = json.loads(before.pop())
            if ref == pinned:
                notes.append(f"{config}: fleet.yaml pins {now}, which the stage ran before: unchanged")
                continue
            try:
                pin: PinSpec | str = ref["version"] if config in PLATFORM_PINS else PinSpec.model_validate(ref)
            except (ValidationError, KeyError):
                what = _ref_text(ref)
                notes.append(f"{config}: fleet.yaml still pins {now}: a pin cannot say {what}, what ran before")
                continue
            if self.fleet_path is None:
                notes.append(f"{config}: fleet.yaml still pins {now}: pin {pin} to match what runs")
                continue
            found: dict = {}  # what the edit found in fleet.yaml, under its writer lock

            def restore(text: str, config=config, pin=pin, pinned=pinned, found=found) -> str | None:
                # Only the pin this run applied goes back: a promotion written since is not overwritten, and this
                # very restore, done before a crash, is not done again.
                found["current"] = current = pin_in(self.fleet_path, self.record.fleet_file, stage.name, config)
                if current != pinned:
                    return None
                edit = with_pin(text, self.record.fleet_file, stage.name, config, pin)
                found["unshared"] = edit.unshared
                return edit.text

            try:
                rewrite_fleet(self.fleet_path, self.record.fleet_file, restore, this_process("rollback of pins"))
            except (OSError, SpecError, FleetFileBusy) as error:
                notes.append(f"{config}: fleet.yaml still pins {now}: cannot write it ({error}): pin {pin} by hand")
                continue
            current = found["current"]
            if current not in (pinned, ref):
                shown_now = _ref_text(current) if current else "no ref"
                notes.append(f"{config}: fleet.yaml pins {shown_now} since the run began: left as it is")
                continue
            unshared = f" ({found['unshared']})" if found.get("unshared") else ""
            notes.append(f"{config}: fleet.yaml pins {pin} again (was {now}){unshared}: commit it")
        return notes

    # ------------------------------------------------------------------ one stack

    def _run_stack(self, name: str) -> StackState:
        """The stack's update and gate, then, when the gate fails in a stage that rolls back, its rollback. Returns
        the state of the update (a stack rolled back still failed)."""
        self.observer.stack_started(name)
        state = self.record.stacks[name].state
        if self.record.stacks[name].rollback is None:
            state = self._advance(name, back=False)
        if _owed(rollback := self.record.stacks[name].rollback):
            assert rollback is not None
            self.observer.stack_progress(name, f"rolling back: {rollback.reason}")
            self._advance(name, back=True)
        self.observer.stack_finished(name, self.record.stacks[name])
        return state

    def _advance(self, name: str, back: bool) -> StackState:
        """One direction of a stack from where the journal has it to an end: settle, update, gate, all under the
        stack's lock. A rollback that failed stays failed."""
        with self._stack_lock(name, back) as lock:
            if lock is None:  # stopped while waiting (left as it was), or waited too long (failed)
                return StackState.pending if self.stop.is_set() else StackState.failed
            self.journal.refresh()  # what another process did to the stack while it held the lock is all here now
            state = self._attempt(name, back).state
            if back and not _owed(self.record.stacks[name].rollback):
                return state  # done, or failed: never retried by itself, a person looks first
            if not back and state is StackState.succeeded:
                return state  # another process of the run applied it
            if state is StackState.deferred:
                state = StackState.gating  # updated in an earlier attempt; only its gate is owed
            elif state is not StackState.gating:  # new, in doubt, skipped, or failed in an earlier attempt
                state = self._settle(name, back)
                if state is StackState.pending:
                    state = self._update(name, lock, back)
            if state is StackState.gating:  # under the lock too: two processes never gate one stack at once
                state = self._gate(name, back)
            return state

    def _attempt(self, name: str, back: bool) -> Attempt:
        entry = self.record.stacks[name]
        if not back:
            return entry
        assert entry.rollback is not None, name
        return entry.rollback

    def _set(self, name: str, back: bool, **fields: object) -> None:
        """Journal fields of one direction of a stack (a rollback is journaled whole: one line, one change)."""
        if back:
            rollback = self.record.stacks[name].rollback
            assert rollback is not None, name
            self.journal.update(self.clock.now(), name, rollback=dataclasses.replace(rollback, **fields))
        else:
            self.journal.update(self.clock.now(), name, **fields)

    @contextmanager
    def _stack_lock(self, name: str, back: bool) -> Iterator[StoreLock | None]:
        """The stack's lock, held while its doubt is settled and its update runs (the update holds it too: an
        update that outlives a killed fluxfleet keeps it). Waits while another process holds it; None when the run
        is stopped meanwhile, or, with the stack failed (and still in doubt, if it was), past STACK_LOCK_WAIT."""
        lock = self.journal.store.lock(f"locks/{name}")  # one per stack, shared by every run of the store
        taken = acquire(
            lock,
            this_process(f"fluxfleet rollout {self.record.run_id}"),
            self.clock,
            lambda holder: self.observer.stack_progress(name, f"waiting: {holder} is updating this stack"),
            self.stop,
        )
        if taken == "timed out":
            where = f"locks/{name} in {self.journal.store.where}"
            self._fail(name, f"not started: {lock.holder()} still holds the stack's update lock ({where})", back=back)
        if taken != "held":
            yield None
            return
        try:
            yield lock
        finally:
            lock.release()

    def _settle(self, name: str, back: bool) -> StackState:
        """What to do with a stack whose lock this process holds: `pending` (apply it), `gating` (an update of this
        run succeeded, found in the stack's history) or `failed`. A stack in doubt (an update this run started, whose
        outcome it never learnt: the process died, or the update outlived it) is looked up in the Pulumi backend
        first and never updated again until the backend says no update is running. A doubt that cannot be settled
        fails the stack and stays recorded, so the next resume looks again instead of applying blindly. A stack whose
        update failed is retried only once the state has no pending operations (a failure half-way leaves some)."""
        entry = self._attempt(name, back)
        update_id = entry.update_id
        in_doubt = update_id is not None or entry.state is StackState.running
        if not in_doubt and (entry.state is not StackState.failed or not entry.attempts):
            return StackState.pending  # new or skipped
        try:
            history = self.runner.history(name, HISTORY_DEPTH) if in_doubt else []
            ours = next((u for u in history if u.message == update_id), None)
            pending = [] if ours else self.runner.pending_operations(name)
        except RunnerError as error:
            return self._fail(name, f"cannot tell what the interrupted update did: {error}", back=back)
        if ours is not None and ours.result == "succeeded":
            now = self.clock.now().isoformat()
            self._set(name, back, state=StackState.gating, gated_at=now, update_id=None, message="update succeeded")
            return StackState.gating
        if ours is not None and ours.result == "failed":
            return self._fail(
                name, f"the interrupted update failed: see `pulumi stack history -s {name}`", back=back, settled=True
            )
        if ours is not None:
            # No process here holds the stack's lock, yet the backend shows the update running: it runs elsewhere,
            # or its CLI died and left it marked in progress.
            return self._fail(
                name,
                f"the interrupted update is still in progress in the Pulumi backend: wait for it, or if no `pulumi` "
                f"runs it any more, run `pulumi cancel -s {name}` and `pulumi refresh -s {name}`, then resume",
                back=back,
            )
        if pending:
            return self._fail(
                name,
                f"{len(pending)} pending operation(s) from an interrupted or failed update: run `pulumi refresh -s "
                f"{name} --import-pending-creates` (or --clear-pending-creates), then resume",
                back=back,
            )
        return StackState.pending  # nothing half-done: (re)apply

    def _update(self, name: str, lock: StoreLock, back: bool) -> StackState:
        if not back and self._stage(name).rollback and self.record.stacks[name].previous_refs is None:
            # What a rollback would return to, read before anything changes it.
            try:
                outputs = self.runner.outputs(name)
            except RunnerError as error:
                message = f"not started: cannot read the refs it runs now, so it could not be rolled back: {error}"
                return self._fail(name, message, settled=True)
            self._set(name, back, previous_refs={**_exported_refs(outputs), **_exported_versions(outputs)})
        if refusal := self._refusal(name):
            return self._fail(name, refusal, back=back, settled=True)  # Pulumi never ran: no attempt to count
        attempt = self._attempt(name, back).attempts + 1
        update_id = f"fluxfleet rollout {self.record.run_id}: {name} {'rollback ' if back else ''}#{attempt}"
        self._set(
            name,
            back,
            state=StackState.running,
            started_at=self.clock.now().isoformat(),
            gated_at=None,
            ended_at=None,
            message="",
            attempts=attempt,
            update_id=update_id,  # in doubt from here until the update's outcome is journaled
            **({} if back else {"refs": self.specs[name].source_refs()}),
        )
        result = self.runner.up(
            name,
            message=update_id,
            lock_fd=lock.fd,
            on_progress=lambda line: self.observer.stack_progress(name, line),
            cancel=self.cancel,
            rollback_refs=rollback.refs if back and (rollback := self.record.stacks[name].rollback) else None,
        )
        if not result.ok:
            error = "cancelled" if result.cancelled else result.error or "the update failed"
            return self._fail(name, error, result.summary, back=back, settled=True)
        message = "rollback applied" if back else "update succeeded"
        self._set(
            name,
            back,
            state=StackState.gating,
            gated_at=self.clock.now().isoformat(),
            update_id=None,
            message=message,
            changes=dict(result.summary),
        )
        return StackState.gating

    def _refusal(self, name: str) -> str | None:
        """Why the stack's update must not start, in either direction (a rollback applies the stack's whole spec, its
        refs excepted): its cluster stays busy, its pinned extension version skips a required hop from the installed
        one, or its preview replaces or deletes what must stay. None: start it."""
        spec = self.specs[name]
        if self.gate is not None and (subscription := self.subscription_of(spec)):
            idle = self.gate.wait_until_idle(spec, subscription, self.stop)
            if not idle.ok:
                return f"not started: {idle.message}"
            if hop := read_upgrade_path_problem(self.gate.reader, subscription, spec):
                return f"not started: {hop}"  # it would strand the cluster
        elif self.gate is not None and spec.flux.extension.version:
            return f"not started: the extension's upgrade path cannot be checked: {no_subscription([name], False)}"
        if self.refused_types:
            return self._destructive_change(name)
        return None

    def _destructive_change(self, name: str) -> str | None:
        """Why the stack's update must not run: its preview replaces or deletes the cluster (a protected cluster
        fails the update anyway; this also covers `protect: false`, and says so before anything is applied), or the
        Flux extension or a Flux configuration (with prune on, everything Flux applied is deleted with it)."""
        preview = self.runner.preview(name, refresh=False)
        if not preview.ok:
            return f"preview failed: {preview.error or 'no detail'}"
        for change in preview.changes:
            if change.destructive and change.type in self.refused_types and (moving := _moving(change, preview)):
                return moving
            if change.destructive and change.type in self.refused_types:
                what = "cluster" if change.type in CLUSTER_TYPES else FLUX_TYPES[change.type]
                properties = ", ".join(change.diffs) or "no property detail"
                harm = "" if change.type in CLUSTER_TYPES else ": with prune on, that deletes everything Flux applied"
                return (
                    f"refused: the update would {change.op} {what} {change.name} ({properties}){harm}; "
                    f"apply it by hand if that is intended"
                )
        return None

    def _gate(self, name: str, back: bool) -> StackState:
        spec = self.specs[name]
        if back:
            rollback = self.record.stacks[name].rollback
            assert rollback is not None, name
            spec = spec.with_source_refs(rollback.refs)  # healthy means synced to the refs it returned to
        if self.gate is None or not self.health_gate or not spec.flux.configurations:
            return self._succeed(name, back, "rolled back" if back else "updated")
        subscription = self.subscription_of(spec)
        if subscription is None:
            message = f"health gate: Flux cannot be read: {no_subscription([name], option=False)}"
            return self._fail(name, message, back=back)
        updated = self._attempt(name, back).started_at
        since = datetime.fromisoformat(updated) if updated else self.clock.now()
        result = self.gate.wait(spec, subscription, since, self.stop)
        if result.deferred:
            self._set(name, back, state=StackState.deferred, message=result.message)
            return StackState.deferred
        if result.ok:
            return self._succeed(name, back, f"rolled back: {result.message}" if back else result.message)
        message = f"health gate: {result.message}"
        if back or not self._stage(name).rollback or self.stop.is_set():
            return self._fail(name, message, back=back)
        rollback, why_not = self._rollback_of(name, message)
        return self._fail(name, _joined(message, why_not), rollback=rollback)

    def _stage(self, name: str) -> StagePlan:
        stage = self.record.stacks[name].stage
        return next(plan for plan in self.record.stages if plan.name == stage)

    def _succeed(self, name: str, back: bool, message: str) -> StackState:
        now = self.clock.now()
        self._set(name, back, state=StackState.succeeded, ended_at=now.isoformat(), message=message)
        return StackState.succeeded

    def _fail(
        self,
        name: str,
        message: str,
        changes: Mapping[str, int] | None = None,
        *,
        back: bool = False,
        settled: bool = False,
        rollback: Rollback | None = None,
    ) -> StackState:
        """Fail one direction of the stack; `settled` when its last update's outcome is known (it ended, or it never
        started). A failed update that rolls back gets its rollback in the same journal change: a crash cannot
        leave it failed and forgotten."""
        now = self.clock.now()
        fields: dict[str, object] = {"changes": dict(changes)} if changes else {}
        if settled:
            fields["update_id"] = None
        if rollback is not None:
            fields["rollback"] = rollback
        self._set(name, back, state=StackState.failed, ended_at=now.isoformat(), message=message, **fields)
        return StackState.failed

    def _set_run(self, status: RunStatus, reason: str, **fields: object) -> RunStatus:
        self.journal.update(self.clock.now(), status=status, reason=reason, **fields)
        self.journal.save()  # a fresh snapshot at every start and stop of the run
        return status


AZURE_NATIVE_FLUX_TYPE = "azure-native:kubernetesconfiguration:FluxConfiguration"


def window_start(at: datetime, windows: Sequence[Sequence[WindowSpec]]) -> datetime | None:
    """The first moment at or after `at` inside one window of each non-empty set of `windows` (a stage's, a
    stack's): `at` itself when each has one open then, or no set has any. None when they never meet within
    WINDOW_SEARCH."""
    sets = [each for each in windows if each]
    start = at
    for _ in range(10_000):
        moved = False
        for each in sets:
            opens = next_opening(each, start)
            if opens != start:
                start, moved = opens, True
        if not moved:
            return start
        if start - at > WINDOW_SEARCH:
            return None
    return None


def _windows_text(windows: Sequence[Sequence[WindowSpec]]) -> str:
    stage, own = windows
    parts = [f"stage: {'; '.join(map(str, stage))}" if stage else "", f"own: {'; '.join(map(str, own))}" if own else ""]
    return ", ".join(part for part in parts if part)


def _few(names: list[str], shown: int = 5) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _moving(change: ResourceChange, preview: OperationResult) -> str | None:
    """The refusal of a Flux configuration that moves between azure-native's resource (API 2023-05-01) and fluxfleet's
    (2025-04-01): the old one deleted and the new one created under one name, which deletes the live configuration
    (and with prune on what Flux applied) unless the old resource leaves the state first; None for any other change."""
    other = {AZURE_NATIVE_FLUX_TYPE: V2025_TYPE, V2025_TYPE: AZURE_NATIVE_FLUX_TYPE}.get(change.type)
    if change.op != "delete" or other is None:
        return None
    if not any(c.type == other and c.name == change.name and c.op == "create" for c in preview.changes):
        return None
    if other == V2025_TYPE:
        api, then = "2025-04-01 (fluxfleet's resource)", "set adoptLiveConfiguration: true and update again"
    else:
        api, then = "2023-05-01 (azure-native's resource)", "`pulumi import` the live configuration, then update"
    return (
        f"refused: Flux configuration {change.name} moves to API {api}: the update would delete the live "
        f"configuration and, with prune on, everything Flux applied. Without deleting it: `pulumi state delete "
        f"'{change.urn}'` (forgets the old resource, Azure keeps the configuration), then {then} "
        "(README: Migrating a Flux configuration)"
    )


def _owed(rollback: Rollback | None) -> bool:
    """Whether a rollback still has work: not done, and not failed for a known reason (a failure whose update is
    still in doubt is settled from the backend first, which is not a retry)."""
    if rollback is None or rollback.state is StackState.succeeded:
        return False
    return rollback.state is not StackState.failed or rollback.update_id is not None


_REFS = TypeAdapter(SourceRefs)


def _exported_refs(outputs: Mapping[str, object]) -> SourceRefs:
    """The refs a stack's last update exported (`fluxConfigurationRefs`); {} when it exported none, or not in that
    shape (a program from before the output, or another program)."""
    try:
        return _REFS.validate_python(outputs.get("fluxConfigurationRefs") or {})
    except ValidationError:
        return {}


def _exported_versions(outputs: Mapping[str, object]) -> SourceRefs:
    """The Kubernetes and Flux extension versions a stack's last update applied (`platformVersions`), as a stage's
    platform pins are journaled ({"kubernetes": {"version": "1.35"}}); {} when it exported none."""
    versions = outputs.get("platformVersions")
    if not isinstance(versions, Mapping):
        return {}
    return {
        name: {"version": version}
        for name, version in versions.items()
        if name in PLATFORM_PINS and isinstance(version, str) and version
    }


def _ref_text(ref: Mapping[str, str]) -> str:
    return ", ".join(f"{key} {value}" for key, value in ref.items()) or "no ref"


def _joined(message: str, more: str) -> str:
    return f"{message}; {more}" if message and more else message or more


# --------------------------------------------------------------------------------------------- dry run


@dataclass(frozen=True)
class StageEstimate:
    stage: StagePlan
    seconds: float  # the stage itself: max(total / concurrency, longest stack); with windows, to its last end
    wait_after: float  # bake time before the next stage
    # With deployment windows: when each stack would start (None: its windows never meet); {} without windows
    starts: Mapping[str, datetime | None] = dataclasses.field(default_factory=dict)


def estimate(
    stages: list[StagePlan],
    durations: Mapping[str, list[float]],
    start: datetime | None = None,
    windows_of: Mapping[str, Sequence[WindowSpec]] | None = None,
) -> list[StageEstimate]:
    """A lower bound per stage from earlier runs' durations: each stack's median, else the fleet's, else a default.
    From `start` (the run's), a stage with deployment windows (its own, or its stacks': `windows_of`) is scheduled
    as the run would: each stack started as soon as a slot is free and its windows are open, the first in order
    that can; the stage lasts from its start to its last stack's end."""
    known = [seconds for samples in durations.values() for seconds in samples]
    fallback = statistics.median(known) if known else DEFAULT_STACK_SECONDS
    windows_of = windows_of or {}
    estimates = []
    at = start
    for index, stage in enumerate(stages):
        each = {name: statistics.median(durations[name]) if durations.get(name) else fallback for name in stage.stacks}
        seconds = max(sum(each.values()) / stage.max_concurrency, max(each.values())) if each else 0.0
        wait_after = stage.after_stage_wait if index + 1 < len(stages) else 0
        starts: dict[str, datetime | None] = {}
        if at is not None and (stage.windows or any(windows_of.get(name) for name in stage.stacks)):
            starts = _windowed_starts(stage, each, at, windows_of)
            ends = [begin + timedelta(seconds=each[name]) for name, begin in starts.items() if begin is not None]
            seconds = (max(ends) - at).total_seconds() if ends else 0.0
        estimates.append(StageEstimate(stage, seconds, wait_after, starts))
        if at is not None:
            at += timedelta(seconds=seconds + wait_after)
    return estimates


def _windowed_starts(
    stage: StagePlan, each: Mapping[str, float], at: datetime, windows_of: Mapping[str, Sequence[WindowSpec]]
) -> dict[str, datetime | None]:
    """When each stack of the stage starts, `each` its duration, the stage starting `at`: the list schedule the
    orchestrator follows (a free slot takes the first stack in order whose windows are open, else the one whose
    open first)."""
    free = [at] * stage.max_concurrency
    queue = list(stage.stacks)
    starts: dict[str, datetime | None] = {}
    while queue:
        slot = min(range(len(free)), key=free.__getitem__)
        best: tuple[datetime, str] | None = None
        for name in list(queue):
            begin = window_start(free[slot], (stage.windows, windows_of.get(name, ())))
            if begin is None:
                starts[name] = None
                queue.remove(name)
                continue
            if best is None or begin < best[0]:
                best = (begin, name)
            if begin == free[slot]:
                break
        if best is None:
            break
        begin, name = best
        queue.remove(name)
        starts[name] = begin
        free[slot] = begin + timedelta(seconds=each[name])
    return {name: starts[name] for name in stage.stacks if name in starts}


# --------------------------------------------------------------------------------------------- inputs


def load_inputs(stacks_dir: Path, fleet_file: Path, display: Callable[[Path], str]) -> tuple[Fleet, dict[str, Path]]:
    """The fleet definition, validated against the stack files beside it (SpecError with every problem)."""
    paths = {STACK_FILE.match(path.name)["stack"]: path for path in stack_files(stacks_dir)}
    beside = stacks_dir / FLEET_FILE
    if fleet_file.resolve() != beside.resolve() and has_pins(fleet_file, display(fleet_file)):
        message = f"pins belong in {display(beside)}: `pulumi up` reads a stage's pins from there, not from --fleet"
        raise SpecError([SpecIssue(display(fleet_file), "stages", message)])
    profiles_of = stack_profiles(stacks_dir, display)
    return load_fleet(fleet_file, sorted(paths), display(fleet_file), profiles_of), paths


def load_specs(
    names: list[str],
    stacks_dir: Path,
    paths: Mapping[str, Path],
    display: Callable[[Path], str],
    run_id: str | None = None,
) -> dict[str, StackSpec]:
    """The specs of the stacks a run touches; every stack's problems together in one SpecError, a cluster another
    stack file names too among them. A resumed run (`run_id`) may name a stack whose file has gone since it began."""
    return {name: stack.spec for name, stack in load_run_stacks(names, stacks_dir, paths, display, run_id).items()}


def load_run_stacks(
    names: list[str],
    stacks_dir: Path,
    paths: Mapping[str, Path],
    display: Callable[[Path], str],
    run_id: str | None = None,
) -> dict[str, Stack]:
    """`load_specs`, each stack with the file that wrote each of its values (a ref: fleet.yaml for a stage's pin)."""
    library = ProfileLibrary(stacks_dir, display(stacks_dir))  # each profile read once for all the stacks
    shared = shared_clusters([paths[name] for name in names if name in paths], display)
    stacks, issues = {}, []
    for name in names:
        if name not in paths:
            file = display(stacks_dir / f"Pulumi.{name}.yaml")
            reason = f"run {run_id} covers stack {name!r}, whose stack file no longer exists"
            issues.append(SpecIssue(file, "-", f"{reason}: restore it, or start a new run"))
            continue
        try:
            stacks[name] = load_stack_file(paths[name], display(paths[name]), library)
        except SpecError as error:
            issues += error.issues
        if name in shared:
            issues.append(shared[name])
    if issues:
        raise SpecError(issues)
    return stacks
