"""`fluxfleet status`: each stack judged from one fleet read, the odd revision out marked, every format, exit codes."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime

import jsonschema
import pytest
from typer.testing import CliRunner

from fluxfleet.azure.access import no_subscription
from fluxfleet.azure import fleet_graph
from fluxfleet.azure.fleet_graph import ClusterSnapshot, ClusterTarget, FleetSnapshot
from fluxfleet.azure.resource_graph import DeniedSubscription
from fluxfleet.azure.status import (
    ConnectedClusterStatus,
    ExtensionStatus,
    FluxConfigurationStatus,
    FluxObjectStatus,
    ManagedClusterStatus,
)
from fluxfleet.cli import app
from fluxfleet.status.build import fleet_status
from fluxfleet.status.model import Health
from fluxfleet.status.report import render
from modules.spec import load_stacks, stack_files
from tests.conftest import ROOT

SUB = "6f1c2e0a-3b4d-4c5e-8f90-1a2b3c4d5e6f"
READ_AT = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
SHA = "0ba6f0d5a8c3b1e2f4d6a8c0b2e4f6a8c0d2e4f6"
OTHER_SHA = "1cb7e1e6b9d4c2f3e5d7b9d1c3f5e7b9d1e3f5e7"
SCHEMA = json.loads((ROOT / "schemas" / "status-report.schema.json").read_text())
STAGES = {"dev": "dev", "staging": "staging", "edge-store-001": "edge", "prod-weu": "production"}


def flux(name: str, compliance: str = "Compliant", revision: str = f"main/{SHA}", **changes) -> FluxConfigurationStatus:
    status = FluxConfigurationStatus(
        name=name,
        namespace="flux-system",
        scope="cluster",
        source_kind="GitRepository",
        suspend=False,
        provisioning_state="Succeeded",
        compliance_state=compliance,
        error_message=None,
        source_synced_commit_id=revision,
        source_updated_at=READ_AT,
        status_updated_at=READ_AT,
        objects=(
            FluxObjectStatus("Kustomization", f"{name}-apps", "flux-system", compliance, "kustomize build failed"),
        ),
    )
    return replace(status, **changes)


EXTENSION = ExtensionStatus("flux", "microsoft.flux", "Succeeded", None, "1.15.1", "Stable", True, READ_AT, ())


def aks(name: str, state: str = "Succeeded") -> ManagedClusterStatus:
    return ManagedClusterStatus(name, state, "SystemAssigned", "1.31", "1.31.2", True, True)


def arc(name: str, connectivity: str = "Connected") -> ConnectedClusterStatus:
    return ConnectedClusterStatus(name, "Succeeded", connectivity, READ_AT, "1.30.4", "Succeeded", ())


def signed_in(monkeypatch) -> None:
    """The credential gets a token, as after `az login`: a command's sign-in check passes (its reads are faked)."""
    from fluxfleet.azure.arm import ArmReader

    monkeypatch.setattr(ArmReader, "signed_in_identity", lambda self: "user alice@example.com")


class FakeFleet:
    """FleetGraphReader's stand-in: answers from a table, and records what it was asked."""

    def __init__(self, clusters: dict[str, ClusterSnapshot], denied=(), failed=None):
        self.by_name, self.denied, self.failed = clusters, denied, failed or {}
        self.asked: list[list[ClusterTarget]] = []

    def read(self, targets):
        self.asked.append(list(targets))
        answered = {}
        for target in targets:
            if target.name in self.by_name:
                answered[target] = replace(self.by_name[target.name], target=target)
        failed = {t: self.failed[t.name] for t in targets if t.name in self.failed}
        return FleetSnapshot(answered, tuple(self.denied), failed, 1, READ_AT)


def snapshot(cluster, extensions=(EXTENSION,), configurations=()) -> ClusterSnapshot:
    placeholder = ClusterTarget(SUB, "-", "-", "aks")
    if isinstance(cluster, ConnectedClusterStatus):
        return ClusterSnapshot(
            placeholder, True, "graph", connected=cluster, extensions=extensions, flux_configurations=configurations
        )
    return ClusterSnapshot(
        placeholder, True, "graph", managed=cluster, extensions=extensions, flux_configurations=configurations
    )


def healthy_fleet() -> dict[str, ClusterSnapshot]:
    return {
        "aks-dev-weu": snapshot(aks("aks-dev-weu"), configurations=(flux("platform"),)),
        "aks-staging-weu": snapshot(aks("aks-staging-weu"), configurations=(flux("platform"),)),
        "aks-prod-weu": snapshot(aks("aks-prod-weu"), configurations=(flux("platform", revision=f"v1.0.0/{SHA}"),)),
        "flux-demo-arc": snapshot(arc("flux-demo-arc"), configurations=(flux("gitops-demo"),)),
    }


@pytest.fixture
def stacks():
    return load_stacks(stack_files(ROOT / "stacks"))


def by_stack(status):
    return {stack.stack: stack for stack in status.stacks}


def test_a_healthy_fleet_is_read_once_and_exits_0(stacks):
    fake = FakeFleet(healthy_fleet())
    status = fleet_status(stacks, fake, STAGES.get, SUB)
    assert len(fake.asked) == 1 and len(fake.asked[0]) == 4  # one read for the whole fleet
    assert all(stack.health is Health.healthy for stack in status.stacks), [s.summary for s in status.stacks]
    prod = by_stack(status)["prod-weu"]
    assert (prod.stage, prod.cluster_state, prod.extension_version) == ("production", "Succeeded", "1.15.1")
    [platform] = prod.configurations
    assert (platform.pinned, platform.revision) == ("tag v1.0.0", f"v1.0.0/{SHA}")
    assert status.exit_code == 0


@pytest.mark.parametrize(
    ("stack", "change", "health", "summary"),
    [
        (
            "dev",
            {"configurations": (flux("platform", "Non-Compliant"),)},
            Health.unhealthy,
            "platform: Non-Compliant: Kustomization platform-apps: kustomize build failed",
        ),
        ("dev", {"configurations": ()}, Health.unhealthy, "platform: not on the cluster"),
        ("dev", {"configurations": (flux("platform", "Pending"),)}, Health.progressing, "platform: Pending"),
        ("dev", {"cluster": aks("aks-dev-weu", "Updating")}, Health.progressing, "cluster Updating"),
        ("dev", {"cluster": aks("aks-dev-weu", "Failed")}, Health.unhealthy, "cluster Failed"),
        ("dev", {"extensions": ()}, Health.unhealthy, "the microsoft.flux extension is not installed"),
        (
            "prod-weu",
            {"configurations": (flux("platform", revision=f"v0.9.0/{OTHER_SHA}"),)},
            Health.progressing,
            f"platform: synced v0.9.0/{OTHER_SHA}, not tag v1.0.0",
        ),
        ("edge-store-001", {"cluster": arc("flux-demo-arc", "Offline")}, Health.unhealthy, "Arc cluster Offline"),
    ],
)
def test_each_part_of_a_stack_decides_its_health(stacks, stack, change, health, summary):
    fleet = healthy_fleet()
    cluster = next(name for name, read in fleet.items() if by_stack_name(name) == stack)
    read = fleet[cluster]
    kept = {
        "cluster": read.managed or read.connected,
        "extensions": read.extensions,
        "configurations": read.flux_configurations,
    }
    fleet[cluster] = snapshot(**{**kept, **change})
    status = fleet_status(stacks, FakeFleet(fleet), STAGES.get, SUB)
    judged = by_stack(status)[stack]
    assert (judged.health, judged.summary) == (health, summary)
    assert status.exit_code == 3


def by_stack_name(cluster: str) -> str:
    return {
        "aks-dev-weu": "dev",
        "aks-staging-weu": "staging",
        "aks-prod-weu": "prod-weu",
        "flux-demo-arc": "edge-store-001",
    }[cluster]


def test_a_cluster_not_found_a_denied_subscription_and_a_failed_read(stacks):
    fleet = healthy_fleet()
    del fleet["aks-dev-weu"]
    denied = [DeniedSubscription("00000000-0000-0000-0000-0000000000aa", "AuthorizationFailed: no access")]
    fake = FakeFleet(fleet, denied=denied, failed={"aks-staging-weu": "cannot read ...: 500 InternalServerError"})
    status = fleet_status(stacks, fake, STAGES.get, SUB)
    judged = by_stack(status)
    assert (judged["dev"].health, judged["dev"].summary) == (
        Health.unhealthy,
        "cluster rg-fleet-dev/aks-dev-weu not found",
    )
    assert (judged["staging"].health, judged["staging"].summary) == (
        Health.unread,
        "cannot read ...: 500 InternalServerError",
    )
    assert status.denied == ("subscription 00000000-0000-0000-0000-0000000000aa: AuthorizationFailed: no access",)
    assert status.exit_code == 1  # the picture is incomplete: that wins over "not healthy"


def test_without_a_subscription_a_stack_is_unread(stacks):
    status = fleet_status(stacks, FakeFleet(healthy_fleet()), STAGES.get, None)
    assert {s.health for s in status.stacks} == {Health.unread}
    assert status.stacks[0].summary == no_subscription([status.stacks[0].stack], option=True)


def test_a_cluster_running_another_revision_than_its_stage_stands_out(tmp_path):
    stacks_dir = tmp_path / "stacks"
    shutil.copytree(ROOT / "stacks", stacks_dir)
    fleet = healthy_fleet()
    for index in range(2, 6):
        name = f"edge-store-{index:03d}"
        (stacks_dir / f"Pulumi.{name}.yaml").write_text(
            f"config:\n  fluxfleet:profiles: [edge-store]\n  fluxfleet:cluster: {{name: store-{index}, resourceGroup: rg}}\n"
        )
        revision = f"main/{OTHER_SHA}" if index == 5 else f"main/{SHA}"
        fleet[f"store-{index}"] = snapshot(
            arc(f"store-{index}"), configurations=(flux("gitops-demo", revision=revision),)
        )
    stacks = load_stacks(stack_files(stacks_dir))
    status = fleet_status(stacks, FakeFleet(fleet), lambda name: "edge" if name.startswith("edge") else None, SUB)
    odd = [s.stack for s in status.stacks if s.odd_revision]
    assert odd == ["edge-store-005"]
    assert "≠ stage" in render(status, "text")
    assert "**≠ stage**" in render(status, "markdown")


def test_every_format_renders_and_json_fits_its_schema(stacks):
    fleet = healthy_fleet()
    fleet["aks-dev-weu"] = snapshot(aks("aks-dev-weu"), configurations=(flux("platform", "Non-Compliant"),))
    status = fleet_status(stacks, FakeFleet(fleet), STAGES.get, SUB)
    document = json.loads(render(status, "json"))
    jsonschema.validate(document, SCHEMA)
    assert document["counts"] == {"healthy": 3, "progressing": 0, "unhealthy": 1, "unread": 0}
    assert render(status, "json") == render(fleet_status(stacks, FakeFleet(fleet), STAGES.get, SUB), "json")
    markdown = render(status, "markdown")
    assert "## Not healthy" in markdown and "| ❌ | dev | dev | platform: Non-Compliant" in markdown
    text = render(status, "text")
    assert "✗ dev: unhealthy: platform: Non-Compliant: Kustomization platform-apps: kustomize build failed" in text


FLEET_ORDER = ["dev", "staging", "edge", "production"]  # stacks/fleet.yaml's stages; by name, production is third


def test_a_cluster_not_read_is_unread_in_every_format_never_absent(stacks):
    why = "cannot read rg-fleet-staging/aks-staging-weu: 500 InternalServerError"
    status = fleet_status(stacks, FakeFleet(healthy_fleet(), failed={"aks-staging-weu": why}), STAGES.get, SUB)
    staging = by_stack(status)["staging"]
    assert (staging.health, staging.cluster_state, staging.summary) == (Health.unread, "unread", why)
    assert status.exit_code == 1
    text = render(status, "text")
    [row] = [line for line in text.splitlines() if "aks-staging-weu" in line and why not in line]
    assert row.split()[-4:] == ["unread", "-", "unread", "unread"]  # state, kubernetes, flux extension, configurations
    assert f"? staging: unread: {why}" in text and "1 unread" in text and "absent" not in text
    document = json.loads(render(status, "json"))
    jsonschema.validate(document, SCHEMA)
    [entry] = [s for s in document["stacks"] if s["stack"] == "staging"]
    assert (entry["health"], entry["clusterState"], entry["extension"], entry["summary"]) == (
        "unread",
        "unread",
        None,
        why,
    )
    assert document["counts"] == {"healthy": 3, "progressing": 0, "unhealthy": 0, "unread": 1}
    markdown = render(status, "markdown")
    assert "| ❔ | staging | staging | aks rg-fleet-staging/aks-staging-weu | unread | unread | unread |" in markdown
    assert "absent" not in markdown and "unread." in markdown.splitlines()[2]
    html = render(status, "html")
    assert "unread · flux unread" in html and "not installed" not in html


# ---------------------------------------------------------------------------------------------- the command


@pytest.fixture
def azure(monkeypatch):
    """The command's fleet reader, answering from a table (no Azure, no credential)."""
    fake = FakeFleet(healthy_fleet())
    monkeypatch.setattr(fleet_graph, "FleetGraphReader", lambda graph, arm, clock=None: fake)
    signed_in(monkeypatch)
    monkeypatch.chdir(ROOT)
    return fake


def status_cli(*args: str):
    return CliRunner().invoke(app, ["status", "--subscription", SUB, *args])


@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "html"])
def test_the_command_in_every_format_and_its_exit_codes(azure, fmt, tmp_path):
    result = status_cli("--format", fmt, "--output", str(tmp_path / "report"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report").read_text()
    azure.by_name["aks-dev-weu"] = snapshot(aks("aks-dev-weu", "Failed"), configurations=(flux("platform"),))
    assert status_cli("--format", fmt).exit_code == 3
    azure.failed["aks-staging-weu"] = "cannot read: 500"
    assert status_cli("--format", fmt).exit_code == 1


def test_stages_come_from_fleet_yaml_and_named_stacks_are_read_alone(azure):
    report = json.loads(status_cli("edge-store-001", "prod-weu", "--format", "json").stdout)
    assert [(s["stack"], s["stage"]) for s in report["stacks"]] == [
        ("edge-store-001", "edge"),
        ("prod-weu", "production"),
    ]
    assert [t.name for t in azure.asked[-1]] == ["flux-demo-arc", "aks-prod-weu"] or len(azure.asked[-1]) == 2


def test_every_format_lists_the_stages_in_fleet_yaml_order(azure):
    """Stack files sort dev, edge-store-001, prod-weu, staging; fleet.yaml says dev, staging, edge, production."""
    order = ["dev", "staging", "edge-store-001", "prod-weu"]
    assert [s["stack"] for s in json.loads(status_cli("--format", "json").stdout)["stacks"]] == order
    text = status_cli().stdout
    assert sorted(order, key=lambda stack: text.index(f" {stack} ")) == order
    markdown = status_cli("--format", "markdown").stdout
    assert sorted(order, key=lambda stack: markdown.index(f"| {stack} |")) == order
    html = status_cli("--format", "html").stdout
    assert re.findall(r'<div class="label"><b>(.*?)</b>', html) == FLEET_ORDER


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--subscription", "not-a-guid"], "--subscription: 'not-a-guid': not a subscription id"),
        (["nope"], "'nope': no such stack"),
        (["--stacks-dir", "/nonexistent"], "no such directory"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(azure, args, said):
    result = CliRunner().invoke(app, ["status", *args])
    assert result.exit_code == 2 and said in result.stderr and "Traceback" not in result.output
