"""`fluxfleet status`'s work, without the command line: its options as one request, the stack files and fleet.yaml
read, and one fleet read of their clusters, judged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fluxfleet.exits import CommandError, InvalidInput
from fluxfleet.inputs import check_output, parse_subscription, stack_paths
from fluxfleet.status.model import FleetStatus


@dataclass(frozen=True)
class StatusRequest:
    stacks: tuple[str, ...] = ()  # stack names; none: every stack file of `stacks_dir`
    stacks_dir: Path = Path("stacks")
    fleet_file: Path | None = None  # None: STACKS_DIR/fleet.yaml, if there
    subscription: str | None = None  # for stacks without cluster.subscriptionId
    output: Path | None = None  # where the command line writes the report: checked before any work


def fleet_status_of(request: StatusRequest) -> FleetStatus:
    """The status of the request's stacks, by fleet.yaml's stages, from one read of their clusters (through Azure
    Resource Graph, each cloud its own). InvalidInput for an option or a file that cannot be used; CommandError (exit
    1) when a stack has no subscription, nobody is signed in, or Azure cannot be read at all."""
    from fluxfleet.azure.access import require_azure
    from fluxfleet.azure.account import default_subscription
    from fluxfleet.azure.arm import ArmReader
    from fluxfleet.azure.clouds import clouds_of_stacks, fleet_reads, in_clouds
    from fluxfleet.azure.status import AzureError
    from fluxfleet.plan import display_path
    from fluxfleet.status.build import fleet_status
    from modules.spec import FLEET_FILE, SpecError, load_fleet, load_stacks, report_name, stack_files

    check_output("status", "--output", request.output)
    default = parse_subscription("status", request.subscription) or default_subscription()
    paths = stack_paths("status", request.stacks_dir, list(request.stacks))
    fleet_path = request.fleet_file or request.stacks_dir / FLEET_FILE
    try:
        loaded = load_stacks(paths, display_path)
        everything = [report_name(path) for path in stack_files(request.stacks_dir)] if request.stacks else None
        known = sorted(everything or (stack.name for stack in loaded))
        read_fleet = request.fleet_file or fleet_path.exists()
        fleet = load_fleet(fleet_path, known, display_path(fleet_path)) if read_fleet else None
    except SpecError as error:
        raise InvalidInput.of(error) from None
    stage_of = {name: stage.name for stage in (fleet.stages if fleet else ()) for name in stage.stacks}
    reader = in_clouds(ArmReader(), clouds_of_stacks(loaded, default))  # each cloud's own
    # before the fleet read: a stack it cannot place, or no sign-in, is the one answer every command gives (exit 1)
    subscriptions = {stack.name: stack.spec.cluster.subscription_id or default for stack in loaded}
    require_azure("status", subscriptions, reader, option=True)
    try:
        reads = fleet_reads(reader)
        stages = [stage.name for stage in fleet.stages] if fleet else []
        return fleet_status(loaded, reads, stage_of.get, default, stages)
    except AzureError as error:
        raise CommandError(f"fluxfleet status: {error}") from None
