"""A 200 from Azure whose body does not fit the API (no `value`, a null item, a string for an object, a page link
that repeats): that read fails in one line naming what was read; drift reports the stack unreadable and the others
as usual, preflight fails the check, the rollout gate keeps waiting until its timeout. Nothing crashes or hangs."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import fluxfleet.azure.arm as arm
from fluxfleet.azure.arm import ArmReader
from fluxfleet.azure.status import AzureError
from fluxfleet.cli import app
from fluxfleet.rollout.gate import FluxHealthGate
from fluxfleet.simulation import FakeClock
from modules.cluster_ref import ClusterRef
from modules.spec import load_stack_file
from tests.azure_transport import FakeCredential, ScriptedTransport
from tests.conftest import ROOT
from tests.fluxfleet.drift.test_drift import Cluster
from tests.fluxfleet.drift.test_drift_cli import SUB, scenario
from tests.fluxfleet.test_preflight_cli import Azure

AKS = ClusterRef.aks("aks-dev-weu", "rg-fleet-dev")
REAL_READER = arm.ArmReader
MALFORMED = [{}, {"value": None}, {"value": [None]}, {"value": "flux"}, [], "text", None]


def reader(respond) -> ArmReader:
    return REAL_READER(FakeCredential(), transport=ScriptedTransport(respond), retry_total=0)


def one_line(error: BaseException) -> str:
    message = str(error)
    assert message and "\n" not in message, message
    return message


@pytest.mark.parametrize("body", MALFORMED)
@pytest.mark.parametrize(
    ("read", "collection"),
    [
        (lambda r: r.extensions(SUB, AKS), "extensions"),
        (lambda r: r.flux_configurations(SUB, AKS), "fluxConfigurations"),
        (lambda r: r.source_control_configurations(SUB, AKS), "sourceControlConfigurations"),
    ],
)
def test_a_malformed_list_answer_is_that_reads_error(body, read, collection):
    with pytest.raises(AzureError) as raised:
        read(reader(lambda request: (200, body, {})))
    message = one_line(raised.value)
    assert message.startswith(
        f"cannot read {AKS.resource_id(SUB)}/providers/Microsoft.KubernetesConfiguration/{collection}: "
    )
    assert "Azure's answer does not fit the API" in message


def test_no_value_list_is_said_so():
    with pytest.raises(AzureError, match=r"\(no `value` list\)"):
        reader(lambda request: (200, {}, {})).flux_configurations(SUB, AKS)


def test_a_page_link_that_repeats_ends_the_list_instead_of_fetching_forever():
    asked = []

    def respond(request):
        asked.append(request.url)
        return 200, {"value": [], "nextLink": f"https://management.azure.com{AKS.resource_id(SUB)}/page2"}, {}

    with pytest.raises(AzureError, match="repeats"):
        reader(respond).extensions(SUB, AKS)
    assert len(asked) == 2  # the first page and the page it links to, which links to itself: then stop


@pytest.mark.parametrize("body", ["text", None, []])
def test_a_malformed_single_resource_answer_is_that_reads_error(body):
    respond = lambda request: (200, body, {})  # noqa: E731
    for read in (
        lambda r: r.managed_cluster(SUB, "rg-fleet-dev", "aks-dev-weu"),
        lambda r: r.connected_cluster(SUB, "rg-edge", "edge-store-001"),
        lambda r: r.provider(SUB, "Microsoft.KubernetesConfiguration"),
    ):
        with pytest.raises(AzureError, match="does not fit the API"):
            read(reader(respond))


# --------------------------------------------------------------------------------------------- the commands


def test_drift_reports_the_stack_with_a_malformed_answer_unreadable_and_the_others(fake, monkeypatch):
    cluster = Cluster()

    def respond(request):  # dev's cluster answers 200 {} for its Flux configurations; staging's is fine
        if "aks-dev-weu" in request.url and "/fluxConfigurations" in request.url:
            return 200, {}, {}
        return cluster.respond(request)

    monkeypatch.setattr(arm, "ArmReader", lambda: reader(respond))
    monkeypatch.chdir(ROOT)
    scenario(fake, cluster, dev="preview_in_sync.jsonl", staging="preview_in_sync.jsonl")
    result = CliRunner().invoke(app, ["drift", "dev", "staging", "--subscription", SUB, "--format", "json"])
    assert result.exit_code == 1, result.output
    dev, staging = json.loads(result.stdout)["stacks"]
    assert dev["status"] == "error"
    [error] = dev["errors"]
    assert error.startswith("flux: cannot read /subscriptions/") and "fluxConfigurations" in error
    assert "no `value` list" in error
    assert staging["stack"] == "staging" and staging["status"] != "error"
    assert "Traceback" not in result.output


def test_preflight_fails_the_check_whose_answer_is_malformed(monkeypatch):
    subscription = Azure()
    subscription.extensions = {}
    monkeypatch.setattr(arm, "ArmReader", lambda: reader(subscription.respond))
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["preflight", "dev", "--subscription", SUB, "--format", "json"])
    assert result.exit_code == 1, result.output
    [stack] = json.loads(result.stdout)["stacks"]
    [check] = [c for c in stack["checks"] if c["id"] == "flux-extension"]
    assert check["outcome"] == "fail" and "does not fit the API (no `value` list)" in check["message"]
    assert {c["id"] for c in stack["checks"]} >= {"flux-v1", "key-vault"}  # the checks after it still ran


def test_the_rollout_gate_waits_on_a_malformed_answer_until_its_timeout():
    spec = load_stack_file(ROOT / "stacks" / "Pulumi.dev.yaml").spec
    clock = FakeClock()
    gate = FluxHealthGate(reader(lambda request: (200, {"value": None}, {})), clock, timeout=60, poll_interval=30)
    result = gate.wait(spec, SUB, clock.now())
    assert not result.ok
    assert result.message.startswith("not healthy after 60s: cannot read /subscriptions/")
    assert "does not fit the API" in result.message
