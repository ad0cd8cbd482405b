"""The first answer of every command that reads Azure, when it cannot: what is missing (a subscription, a sign-in)
and the ways to give it, in the same words and with the same exit code (1) everywhere, before any other work."""

from __future__ import annotations

from collections.abc import Mapping

from fluxfleet.azure.status import AzureError
from fluxfleet.exits import CommandError, ExitCode
from modules.spec import listed

SIGN_IN = (
    "sign in with `az login`, or give the process a managed identity or AZURE_CLIENT_ID/AZURE_TENANT_ID "
    "(workload identity)"
)


def subscription_ways(option: bool) -> str:
    """How a stack gets its subscription, in the order they win; `option`: the command takes --subscription."""
    ways = [
        "set fluxfleet:cluster.subscriptionId in its stack file",
        *(["pass --subscription ID"] if option else []),
        "set AZURE_SUBSCRIPTION_ID",
        "choose one with `az account set --subscription ID`",
    ]
    return f"{', '.join(ways[:-1])}, or {ways[-1]}"


def no_subscription(stacks: list[str], option: bool) -> str:
    """The line for stacks whose cluster's subscription nothing says (none: a command with no subscription at all to
    look in, such as `inventory` of a directory without stack files)."""
    if not stacks:
        return f"no Azure subscription to look in: {subscription_ways(option)}"
    named = f"stack {stacks[0]}" if len(stacks) == 1 else f"stacks {listed(stacks)}"
    return f"no Azure subscription for {named}: {subscription_ways(option)}"


def require_azure(command: str, subscriptions: Mapping[str, str | None], reader, *, option: bool) -> None:
    """Before a command reads Azure: every stack it reads has a subscription (`subscriptions`: stack -> its
    subscription, None when nothing says), and the credential gets a token (`reader.signed_in_identity()`).
    Otherwise a CommandError (exit 1) saying what is missing and how to give it."""
    missing = sorted(stack for stack, subscription in subscriptions.items() if not subscription)
    if missing:
        raise CommandError(f"fluxfleet {command}: {no_subscription(missing, option)}", exit_code=ExitCode.FAILED)
    try:
        reader.signed_in_identity()
    except AzureError as error:
        raise CommandError(f"fluxfleet {command}: {error}", exit_code=ExitCode.FAILED) from None
