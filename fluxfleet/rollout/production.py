"""A real rollout, as `rollout` and `drift --remediate` run it: the journaled run to its end on the system clock,
the Flux health gate over Azure, live progress, and Ctrl-C twice."""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager, nullcontext

from fluxfleet.exits import CommandError


def _stderr(line: str) -> None:
    from modules.spec import printable

    sys.stderr.write(printable(line) + "\n")


def run_journaled(
    command, journal, specs, fleet, fleet_path, stacks_dir, runner, reader, fmt, approve=None, only=None, soak=None
):
    """Run (or resume) a journaled rollout to its end with the real clock, gate and progress: what `rollout` and
    `drift --remediate` both do; `only`: the stacks of the run this process works (None: all). A journal that
    cannot be written stops the run, resumable (exit 1), as does an earlier stage of the run not passed yet. `soak`:
    only the soak of that stage."""
    from fluxfleet.rollout.orchestrator import NotReady, Rollout
    from fluxfleet.runstate.store import StoreError
    from modules.spec import FLEET_FILE

    _stderr(f"fluxfleet {command}: run {journal.record.run_id} (journal {journal.where})")
    beside = fleet_path.resolve() == (stacks_dir / FLEET_FILE).resolve()  # where a rolled-back stage's pins live
    with production_rollout(runner, reader, fleet.gate, fmt == "text") as options:
        try:
            rollout = Rollout(
                journal,
                specs,
                refuse_cluster_replacement=fleet.refuse_cluster_replacement,
                refuse_flux_replacement=fleet.refuse_flux_replacement,
                fleet_path=fleet_path if beside else None,
                only=only,
                **options,
            )
            if soak is not None:
                rollout.soak(soak)
            else:
                rollout.run(tuple(approve or ()))
        except NotReady as error:
            raise CommandError(f"fluxfleet {command}: {error}") from None
        except (OSError, StoreError) as error:  # without its journal a run cannot promise anything: stop, resumable
            why = error.strerror if isinstance(error, OSError) else str(error)
            raise CommandError(
                f"fluxfleet {command}: cannot write the journal {journal.where}: {why}: the run stopped; "
                f"resume it with `fluxfleet rollout --resume {journal.record.run_id}` once that is fixed"
            ) from None
    return journal.record


@contextmanager
def production_rollout(runner, reader, gate_spec, text: bool):
    """What a real rollout runs on besides Pulumi: the Azure layer for the gate, the system clock, live progress,
    and Ctrl-C twice (the first stops scheduling, the second cancels the running updates)."""
    from rich.console import Console

    from fluxfleet.azure.account import default_subscription
    from fluxfleet.azure.clouds import fleet_reads
    from fluxfleet.clock import SystemClock
    from fluxfleet.rollout.gate import FleetFluxReads, FluxHealthGate
    from fluxfleet.rollout.report import LiveProgress, LogProgress

    clock = SystemClock()
    stop, cancel = threading.Event(), threading.Event()

    def on_interrupt(signum, frame):
        if stop.is_set():
            cancel.set()
            sys.stderr.write("\nfluxfleet rollout: cancelling the running updates\n")
        else:
            stop.set()
            sys.stderr.write("\nfluxfleet rollout: stopping: running updates will finish (Ctrl-C again cancels them)\n")

    # The checks before each update (cluster busy, extension upgrade path) read Azure whatever fluxCompliance says;
    # a stage's health gates poll together: one Resource Graph read a poll for all.
    fleet = FleetFluxReads(fleet_reads(reader, clock))  # Resource Graph of each cloud, beside its reader
    gate = FluxHealthGate(reader, clock, gate_spec.timeout, gate_spec.poll_interval, fleet)
    console = Console(stderr=True)
    live = text and console.is_terminal
    observer = LiveProgress(console) if live else LogProgress()
    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        with observer if live else nullcontext():
            yield {
                "runner": runner,
                "clock": clock,
                "gate": gate,
                "health_gate": gate_spec.flux_compliance,
                "subscription_of": lambda spec: (
                    spec.cluster.subscription_id or default_subscription(cloud=spec.cluster.cloud)
                ),
                "observer": observer,
                "stop": stop,
                "cancel": cancel,
            }
    finally:
        signal.signal(signal.SIGINT, previous)
