"""`fluxfleet preflight`'s work, without the command line: its options as one request, the readers set up (a reader
per cloud, the fleet read at once through Resource Graph once signed in), and every stack checked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fluxfleet.inputs import check_output, parse_subscription, stack_paths, subscription_of_stack
from fluxfleet.preflight import FleetPreflight


@dataclass(frozen=True)
class PreflightRequest:
    stacks: tuple[str, ...] = ()  # stack names; none: every stack file of `stacks_dir`
    stacks_dir: Path = Path("stacks")
    subscription: str | None = None  # for stacks without cluster.subscriptionId; None: az's current
    fix: bool = False  # register missing resource providers and wait for them
    output: Path | None = None  # where the command line writes the report: checked before any work


def run_preflight(request: PreflightRequest) -> FleetPreflight:
    """Every check of the request's stacks. InvalidInput for an option or a stack name that cannot be used;
    CommandError (exit 1) when nobody is signed in (the one answer every command gives, before any read). A stack
    without a subscription is its own failed check: the others are still checked."""
    from fluxfleet.azure.access import require_azure
    from fluxfleet.azure.arm import ArmReader
    from fluxfleet.azure.clouds import SubscriptionClouds, in_clouds, stack_places
    from fluxfleet.azure.snapshot_reader import fleet_reader_of_stacks
    from fluxfleet.plan import display_path
    from fluxfleet.preflight import preflight_fleet

    check_output("preflight", "--output", request.output)
    subscription = parse_subscription("preflight", request.subscription)
    paths = stack_paths("preflight", request.stacks_dir, list(request.stacks))
    subscription_of = subscription_of_stack(subscription)
    places = stack_places(paths, display_path, subscription_of)  # an invalid stack is left to its report
    reader = in_clouds(ArmReader(), SubscriptionClouds.of(places.values()))  # a reader per cloud
    # Without a sign-in no check of any stack can be made: one line, exit 1, as every command says it. A stack
    # without a subscription is a failed check of its own (a doctor shows every stack), so only the others count.
    if placed := {name: found for name, (found, _) in places.items() if found}:
        require_azure("preflight", placed, reader, option=True)
        # the clusters and extensions of every stack read at once through Resource Graph
        reader = fleet_reader_of_stacks(paths, display_path, subscription_of, reader, fall_back=False)
    return preflight_fleet(paths, reader, subscription_id=subscription, fix=request.fix, display=display_path)
