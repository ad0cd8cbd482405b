"""`fluxfleet preflight`'s work, without the command line: its options as one request, the readers set up (a reader
per cloud, the fleet read at once through Resource Graph once signed in), and every stack checked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fluxfleet.inputs import parse_subscription, stack_paths, subscription_of_stack
from fluxfleet.preflight import FleetPreflight


@dataclass(frozen=True)
class PreflightRequest:
    stacks: tuple[str, ...] = ()  # stack names; none: every stack file of `stacks_dir`
    stacks_dir: Path = Path("stacks")
    subscription: str | None = None  # for stacks without cluster.subscriptionId; None: az's current
    fix: bool = False  # register missing resource providers and wait for them


def run_preflight(request: PreflightRequest) -> FleetPreflight:
    """Every check of the request's stacks. InvalidInput for an option or a stack name that cannot be used; Azure's
    answers, a failed sign-in included, are the checks' outcomes."""
    from fluxfleet.azure.arm import ArmReader
    from fluxfleet.azure.clouds import in_clouds, stack_clouds
    from fluxfleet.azure.snapshot_reader import fleet_reader_of_stacks
    from fluxfleet.azure.status import AzureError
    from fluxfleet.plan import display_path
    from fluxfleet.preflight import preflight_fleet

    subscription = parse_subscription("preflight", request.subscription)
    paths = stack_paths("preflight", request.stacks_dir, list(request.stacks))
    subscription_of = subscription_of_stack(subscription)
    reader = in_clouds(ArmReader(), stack_clouds(paths, display_path, subscription_of))  # a reader per cloud
    try:  # the clusters and extensions of every stack read at once through Resource Graph, once signed in
        reader.signed_in_identity()
        reader = fleet_reader_of_stacks(paths, display_path, subscription_of, reader, fall_back=False)
    except AzureError:
        pass  # preflight's own credential check says how to sign in
    return preflight_fleet(paths, reader, subscription_id=subscription, fix=request.fix, display=display_path)
