"""`fluxfleet inventory`'s work, without the command line: its options as one request, checked before Azure is
asked anything, then the inventory taken and, as asked, new members written and gone stacks pruned."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fluxfleet.inputs import check_output
from fluxfleet.exits import CommandError, InvalidInput
from fluxfleet.inventory import Inventory
from modules.clouds import DEFAULT_CLOUD


@dataclass(frozen=True)
class InventoryRequest:
    select: str  # the selection expression: kind:, rg:, location:, tag: terms
    profile: str | None = None  # the profile new stack files use
    subscriptions: tuple[str, ...] = ()  # where to look; none: the stacks' subscriptions and the default one
    stacks_dir: Path = Path("stacks")
    write: bool = False  # create a stack file for each new member (needs `profile`)
    prune: bool = False  # delete the stack files whose cluster is gone
    cloud: str = DEFAULT_CLOUD
    output: Path | None = None  # where the command line writes the report: checked before any work


def take_inventory_of(request: InventoryRequest) -> Inventory:
    """The clusters the request selects compared with the stack files, then written and pruned as asked.
    InvalidInput (exit 2) for an option, a combination or a stack file that cannot be used, before Azure is asked
    anything; CommandError (exit 1) when there is no subscription to look in, nobody is signed in, or Azure cannot
    be read at all."""
    from fluxfleet.automation import AutomationRunner
    from fluxfleet.azure.access import no_subscription, require_azure
    from fluxfleet.azure.account import default_subscription
    from fluxfleet.azure.arm import ArmReader
    from fluxfleet.azure.resource_graph import ResourceGraphReader
    from fluxfleet.azure.status import AzureError
    from fluxfleet.clock import SystemClock
    from fluxfleet.inventory import load_stacks, prune_gone, subscriptions_of, take_inventory, write_members
    from fluxfleet.plan import display_path
    from modules.spec import SpecError
    from modules.spec.selection import parse_selection, parse_subscriptions, profile_file

    check_output("inventory", "--output", request.output)
    stacks_dir, cloud = request.stacks_dir, request.cloud
    if not stacks_dir.is_dir():
        raise InvalidInput(f"fluxfleet inventory: {stacks_dir}: no such directory")
    try:
        selection = parse_selection(request.select)
        subscriptions = parse_subscriptions(request.subscriptions)
        if request.profile is not None:
            profile_file(stacks_dir, request.profile)
    except SpecError as error:
        raise InvalidInput.of(error, "fluxfleet inventory: ") from None
    if request.write and request.profile is None:
        raise InvalidInput("fluxfleet inventory: --write needs --profile NAME: the profile the new stack files use")
    default = default_subscription(cloud=cloud)  # what `pulumi up` uses; never --subscription's
    try:
        stacks = load_stacks(stacks_dir, default, display_path, cloud)
    except SpecError as error:
        raise InvalidInput.of(error) from None
    scope = subscriptions or subscriptions_of(stacks, default)
    arm = ArmReader(cloud=cloud)
    # Nowhere to look (every stack without a subscription, none given), or nobody signed in: the answer every
    # command gives, exit 1, before the first read. A stack with none while others give a place is unconfirmed.
    if not (scope or stacks):
        raise CommandError(f"fluxfleet inventory: {no_subscription([], option=True)}")
    require_azure("inventory", {} if scope else {stack.stack: None for stack in stacks}, arm, option=True)
    try:
        graph = ResourceGraphReader(cloud=cloud)
        result = take_inventory(graph, selection, stacks, scope, display_path, stacks_dir, arm)
    except AzureError as error:
        raise CommandError(f"fluxfleet inventory: {error}") from None
    if request.write and request.profile is not None:
        result = write_members(result, request.profile, SystemClock().now().date(), stacks_dir, display_path, cloud)
    if request.prune:
        result = prune_gone(result, lambda: AutomationRunner(Path.cwd()))
    return result
