"""The first answer of a command that cannot read Azure: what is missing, and every way to give it, in one line and
exit 1, before the command reads or starts anything."""

from __future__ import annotations

import pytest

from fluxfleet.azure.access import require_azure
from fluxfleet.azure.status import AzureError
from fluxfleet.exits import CommandError, ExitCode

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"


class Reader:
    """The one call of the reader that the check makes; counts it, and fails as the credential would."""

    def __init__(self, failure: str | None = None):
        self.failure, self.calls = failure, 0

    def signed_in_identity(self) -> str:
        self.calls += 1
        if self.failure:
            raise AzureError(self.failure)
        return "user alice@example.com"


@pytest.mark.parametrize(
    ("option", "ways"),
    [
        (
            True,
            "set fluxfleet:cluster.subscriptionId in its stack file, pass --subscription ID, set "
            "AZURE_SUBSCRIPTION_ID, or choose one with `az account set --subscription ID`",
        ),
        (
            False,
            "set fluxfleet:cluster.subscriptionId in its stack file, set AZURE_SUBSCRIPTION_ID, or choose one with "
            "`az account set --subscription ID`",
        ),
    ],
)
def test_stacks_without_a_subscription_are_named_with_every_way_to_give_one(option, ways):
    reader = Reader()
    with pytest.raises(CommandError) as caught:
        require_azure("status", {"dev": None, "prod": SUBSCRIPTION, "edge": ""}, reader, option=option)
    assert caught.value.exit_code == ExitCode.FAILED
    assert caught.value.lines == (f"fluxfleet status: no Azure subscription for stacks dev, edge: {ways}",)
    assert reader.calls == 0  # nothing is asked of Azure for a fleet it cannot place


def test_one_stack_without_a_subscription_is_named_as_one():
    with pytest.raises(CommandError) as caught:
        require_azure("rollout", {"dev": None}, Reader(), option=False)
    assert caught.value.lines[0].startswith("fluxfleet rollout: no Azure subscription for stack dev: set ")


def test_no_sign_in_is_the_credentials_own_line():
    failure = "no Azure token (DefaultAzureCredential failed); sign in with `az login`"
    with pytest.raises(CommandError) as caught:
        require_azure("drift", {"dev": SUBSCRIPTION}, Reader(failure), option=True)
    assert caught.value.exit_code == ExitCode.FAILED
    assert caught.value.lines == (f"fluxfleet drift: {failure}",)


def test_a_signed_in_fleet_with_subscriptions_passes():
    reader = Reader()
    require_azure("status", {"dev": SUBSCRIPTION}, reader, option=True)
    assert reader.calls == 1
