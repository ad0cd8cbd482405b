"""`fluxfleet drift`: classification of recorded preview event logs replayed through the real Automation API path,
the write-only and default rules, Flux drift over ARM bodies, secret rotation, and a fleet with one stack failing."""

from __future__ import annotations

import copy

import pytest

from fluxfleet.automation import AutomationRunner
from fluxfleet.azure.arm import ArmReader
from fluxfleet.drift import (
    Severity,
    Status,
    check_fleet,
    check_stack,
    flux_findings,
    infrastructure_findings,
    StackDrift,
    record_remediation,
    remediation_targets,
    rotation_findings,
)
from fluxfleet.runner import OperationResult, PropertyChange, ResourceChange
from fluxfleet.rollout.journal import Journal
from fluxfleet.rollout.orchestrator import Rollout, Selection, new_run
from fluxfleet.simulation import FakeClock, FakeRunner
from modules.spec import ControllersSpec, Fleet, GateSpec, Stage, load_stack_file, parse_spec
from tests.azure_transport import FakeCredential, ScriptedTransport, example
from tests.conftest import STANDALONE_STACKS, CANARY, ROOT, deploy, fixture_file
from tests.modules.test_flux_extension import CLIENT_ID, CONTROLLERS
from tests.fluxfleet.conftest import FakePulumi
from tests.modules.test_keyvault import CHALLENGE, GET_SECRET

SUB = "11111111-2222-3333-4444-555555555555"
STACKS = ROOT / "stacks"
EVENTS = ROOT / "tests" / "fixtures" / "pulumi"
ARM_FIXTURES = ROOT / "tests" / "fixtures" / "arm"
FLUX_EXAMPLES = (
    "arm-examples",
    "specification",
    "kubernetesconfiguration",
    "resource-manager",
    "Microsoft.KubernetesConfiguration",
    "fluxConfigurations",
    "stable",
    "2025-04-01",
    "examples",
)
EXTENSION_EXAMPLE = (
    "arm-examples",
    "specification",
    "kubernetesconfiguration",
    "resource-manager",
    "Microsoft.KubernetesConfiguration",
    "extensions",
    "stable",
    "2025-03-01",
    "examples",
    "GetExtension.json",
)
AKS_EXAMPLE = (
    "arm-examples",
    "specification",
    "containerservice",
    "resource-manager",
    "Microsoft.ContainerService",
    "aks",
    "stable",
    "2026-05-01",
    "examples",
    "ManagedClustersGet.json",
)
FLUX_TYPE = "azure-native:kubernetesconfiguration:FluxConfiguration"
EXTENSION_TYPE = "azure-native:kubernetesconfiguration:Extension"
AKS_TYPE = "azure-native:containerservice:ManagedCluster"


class Cluster:
    """The Azure side of one AKS cluster: the cluster, its Flux configurations and extensions, and a Key Vault, as
    ARM answers."""

    def __init__(self, configuration_name: str = "platform"):
        compliant = copy.deepcopy(example(fixture_file(*FLUX_EXAMPLES, "GetFluxConfiguration.json")))
        compliant["name"] = configuration_name
        self.configurations = {"value": [compliant]}
        flux = copy.deepcopy(example(fixture_file(*EXTENSION_EXAMPLE)))
        flux["name"] = "flux"
        flux["properties"].update(extensionType="microsoft.flux", currentVersion="1.22.2")
        self.extensions = {"value": [flux]}
        self.secret = copy.deepcopy(example(fixture_file(*GET_SECRET)))
        self.secret["value"] = CANARY
        self.secret_version = self.secret["id"].rsplit("/", 1)[-1]
        self.cluster = copy.deepcopy(example(fixture_file(*AKS_EXAMPLE)))

    def respond(self, request):
        if ".vault.azure.net" in request.url:
            if "Authorization" not in request.headers:
                return 401, {"error": {"code": "Unauthorized", "message": "AKV10000"}}, CHALLENGE
            return 200, self.secret, {}
        if "/fluxConfigurations" in request.url:
            return 200, self.configurations, {}
        if "/extensions" in request.url:
            return 200, self.extensions, {}
        if request.url.split("?")[0].rsplit("/", 2)[-2] == "managedClusters":  # the cluster itself
            return 200, self.cluster, {}
        return 404, {"error": {"code": "NotFound", "message": request.url}}, {}

    def reader(self) -> ArmReader:
        return ArmReader(FakeCredential(), transport=ScriptedTransport(self.respond), retry_total=0)


def recorded(fake: FakePulumi, stack: str, preview_log: str, outputs: dict | None = None) -> AutomationRunner:
    """The real AutomationRunner over the scripted CLI, replaying a recorded `pulumi preview` event log."""
    preview = {"events_file": str(EVENTS / preview_log)}
    if preview_log == "preview_refresh_error.jsonl":
        preview.update(exit=255, stderr="error: preview failed")
    return fake.runner({"stacks": {stack: {"preview": preview, "outputs": outputs or {}}}})


def subscription(stack) -> str:
    return SUB


def drift_of(fake: FakePulumi, preview_log: str, cluster: Cluster | None = None, stack: str = "dev", outputs=None):
    runner = recorded(fake, stack, preview_log, outputs)
    return check_stack(
        STANDALONE_STACKS / f"Pulumi.{stack}.yaml", runner, (cluster or Cluster()).reader(), subscription
    )


def infra(result) -> list[str]:
    return [f"{f.subject}: {f.message}" for f in result.findings if f.kind == "infrastructure"]


# --------------------------------------------------------------------------------------------- recorded previews


def test_no_changes_is_in_sync(fake):
    result = drift_of(
        fake,
        "preview_in_sync.jsonl",
        outputs={"secretVersions": {"keyvault:kv-fleet-dev/github-pat": "4387e9f3d6e14c459867679a90fd0f79"}},
    )
    assert result.status is Status.in_sync, result
    assert result.findings == [] and result.errors == []
    [preview] = fake.argv("preview")
    assert "--refresh" in preview


def test_an_update_reports_only_the_real_difference(fake):
    # The recorded preview also differs in a write-only secret, Azure defaults, and an extension default: not drift.
    result = drift_of(fake, "preview_update.jsonl")
    assert infra(result) == [
        "kubernetesconfiguration:FluxConfiguration platform: would update: "
        "kustomizations.apps.path: './apps/production' → './apps/staging'"
    ]
    assert result.status is Status.drifted


def test_a_replacement_is_reported_as_destructive(fake):
    result = drift_of(fake, "preview_replace.jsonl")
    assert infra(result) == [
        "containerservice:ManagedCluster aks-dev-weu: would replace (destructive: the resource would be replaced or "
        "deleted): networkProfile.networkPlugin: 'kubenet' → 'azure'"
    ]


def test_deleted_and_undeclared_resources(fake):
    result = drift_of(fake, "preview_deleted.jsonl")
    assert infra(result) == [
        "kubernetesconfiguration:FluxConfiguration platform: missing from Azure: would be created",
        "kubernetesconfiguration:FluxConfiguration legacy: in the state but not declared: would be deleted",
    ]


def test_a_refresh_error_is_an_error_for_the_stack_and_the_other_looks_still_run(fake):
    result = drift_of(fake, "preview_refresh_error.jsonl")
    assert result.status is Status.error
    [error] = result.errors
    assert error.startswith("infrastructure: pulumi preview failed: aks-dev-weu: preview failed: refreshing urn:pulumi")
    assert "\n" not in error
    assert [f.kind for f in result.findings] == ["secret-rotation"]  # the Flux look ran: nothing drifted there


# --------------------------------------------------------------------------------------------- the rules, each way


def change(type_: str, *properties: PropertyChange, op: str = "update") -> OperationResult:
    return OperationResult(
        "dev",
        ok=True,
        changes=(ResourceChange(f"urn:{type_}", type_, "x", op, tuple(p.path for p in properties), properties),),
    )


@pytest.mark.parametrize(
    "type_, not_drift, drift",
    [
        (  # write-only: Azure never returns protected settings; a value Azure has that differs is another matter
            FLUX_TYPE,
            PropertyChange("configurationProtectedSettings", "add", None, "[secret]"),
            PropertyChange("gitRepository.httpsUser", "update", "admin", "git"),
        ),
        (
            FLUX_TYPE,
            PropertyChange("azureBlob.accountKey", "add", None, "[secret]"),
            PropertyChange("azureBlob.containerName", "update", "old", "new"),
        ),
        (  # a default Azure fills in for a property the program leaves unset; a non-default value is drift
            FLUX_TYPE,
            PropertyChange("kustomizations.apps.prune", "delete", False, None),
            PropertyChange("kustomizations.apps.prune", "delete", True, None),
        ),
        (
            FLUX_TYPE,
            PropertyChange("gitRepository.syncIntervalInSeconds", "delete", 600, None),
            PropertyChange("gitRepository.syncIntervalInSeconds", "update", 600, 300),
        ),
        (
            FLUX_TYPE,
            PropertyChange("scope", "delete", "cluster", None),
            PropertyChange("scope", "delete", "namespace", None),
        ),
        (
            EXTENSION_TYPE,
            PropertyChange("releaseTrain", "delete", "Stable", None),
            PropertyChange("releaseTrain", "delete", "Preview", None),
        ),
        (
            AKS_TYPE,
            PropertyChange(
                "agentPoolProfiles[0].nodeImageVersion", "delete", "AKSUbuntu-2204gen2containerd-202611.1", None
            ),
            PropertyChange("agentPoolProfiles[0].vmSize", "update", "Standard_D2s_v5", "Standard_D4s_v5"),
        ),
    ],
)
def test_each_rule_ignores_its_case_and_reports_the_other(type_, not_drift, drift):
    assert infrastructure_findings(change(type_, not_drift)) == []
    [finding] = infrastructure_findings(change(type_, drift))
    assert drift.path in finding.message


def test_addon_key_casing_is_not_drift_but_a_changed_addon_is():
    enabled = {"enabled": True}
    casing = change(
        AKS_TYPE,
        PropertyChange("addonProfiles.azurepolicy", "delete", enabled, None),
        PropertyChange("addonProfiles.azurePolicy", "add", None, enabled),
    )
    assert infrastructure_findings(casing) == []
    changed = change(
        AKS_TYPE,
        PropertyChange("addonProfiles.azurepolicy", "delete", {"enabled": False}, None),
        PropertyChange("addonProfiles.azurePolicy", "add", None, enabled),
    )
    assert len(infrastructure_findings(changed)) == 1


def test_a_change_with_only_noise_still_counts_when_it_creates_or_deletes():
    noise = PropertyChange("configurationProtectedSettings", "add", None, "[secret]")
    assert len(infrastructure_findings(change(FLUX_TYPE, noise, op="create"))) == 1


# --------------------------------------------------------------------------------------------- typed extension settings

# The same settings as Azure may hold them: strings of its own spelling, and the extension's documented defaults for
# the keys the program leaves unset.
AZURE_SETTINGS = {
    "helm-controller.enabled": "False",
    "image-automation-controller.enabled": "TRUE",
    "image-reflector-controller.enabled": "true",
    "kustomize-controller.concurrent": "6",
    "kustomize-controller.requeue-dependency": "90s",
    "multiTenancy.enforce": "false",
    "workloadIdentity.enable": "true",
    "workloadIdentity.azureClientId": CLIENT_ID.upper(),
    "source-controller.enabled": "true",
    "kustomize-controller.enabled": "true",
    "notification-controller.enabled": "true",
    "useKubeletIdentity": "false",
}


def settings_changes(azure: dict[str, str], sent: dict[str, str]) -> list[PropertyChange]:
    """The engine's detailed diff of configurationSettings, key by key, between Azure's state and the program."""
    kinds = {(True, True): "update", (True, False): "delete", (False, True): "add"}
    return [
        PropertyChange(
            f'configurationSettings["{key}"]', kinds[key in azure, key in sent], azure.get(key), sent.get(key)
        )
        for key in sorted({*azure, *sent})
        if azure.get(key) != sent.get(key)
    ]


def test_typed_controller_settings_round_trip_and_azures_strings_are_no_drift(raw):
    """spec → the configurationSettings keys the program sends (strings) → back to the same typed settings; and Azure
    holding them as its own strings, with its defaults for the keys left unset, is no drift."""
    raw["flux"]["extension"] = {"controllers": CONTROLLERS}
    spec = parse_spec(raw, file="stacks/Pulumi.test.yaml").flux.extension
    sent = deploy(raw).one("kubernetesconfiguration:Extension").inputs["configurationSettings"]
    assert sent == spec.configuration_settings and all(isinstance(value, str) for value in sent.values())
    assert sent["kustomize-controller.requeue-dependency"] == "1m30s"
    assert ControllersSpec.from_configuration_settings(sent) == spec.controllers

    noise = settings_changes(AZURE_SETTINGS, sent)
    assert len(noise) == 8  # differences as text: every one of them means the same
    assert infrastructure_findings(change(EXTENSION_TYPE, *noise)) == []
    whole_map = PropertyChange("configurationSettings", "update", AZURE_SETTINGS, sent)
    assert infrastructure_findings(change(EXTENSION_TYPE, whole_map)) == []
    split_key = PropertyChange("configurationSettings.multiTenancy.enforce", "update", "False", "false")
    assert infrastructure_findings(change(EXTENSION_TYPE, split_key)) == []


@pytest.mark.parametrize(
    ("key", "azure"),
    [
        ("kustomize-controller.concurrent", "4"),  # a typed value that differs
        ("kustomize-controller.requeue-dependency", "30s"),
        ("workloadIdentity.azureClientId", "ffffffff-1111-2222-3333-444455556666"),
        ("notification-controller.enabled", "false"),  # unset, and not the extension's default
        ("useKubeletIdentity", "true"),
        ("kustomize-controller.log-level", "debug"),  # a key nobody typed: Azure has it, the program does not
    ],
)
def test_a_setting_that_really_differs_is_drift(raw, key, azure):
    raw["flux"]["extension"] = {"controllers": CONTROLLERS}
    sent = parse_spec(raw, file="stacks/Pulumi.test.yaml").flux.extension.configuration_settings
    [finding] = infrastructure_findings(change(EXTENSION_TYPE, *settings_changes({**AZURE_SETTINGS, key: azure}, sent)))
    assert key in finding.message
    whole_map = PropertyChange("configurationSettings", "update", {**AZURE_SETTINGS, key: azure}, sent)
    assert len(infrastructure_findings(change(EXTENSION_TYPE, whole_map))) == 1


def test_a_stack_without_controllers_sees_the_extensions_defaults_as_no_drift():
    defaults = {"multiTenancy.enforce": "true", "helm-controller.enabled": "true"}
    unset = PropertyChange("configurationSettings", "delete", defaults, None)
    assert infrastructure_findings(change(EXTENSION_TYPE, unset)) == []
    opted_out = PropertyChange("configurationSettings", "delete", {"multiTenancy.enforce": "false"}, None)
    assert len(infrastructure_findings(change(EXTENSION_TYPE, opted_out))) == 1


# --------------------------------------------------------------------------------------------- Flux over ARM bodies


def dev():
    return load_stack_file(STANDALONE_STACKS / "Pulumi.dev.yaml")


def flux_of(cluster: Cluster, stack=None):
    stack = stack or dev()
    reader = cluster.reader()
    from modules.cluster_ref import ClusterRef

    ref = ClusterRef.of(stack.spec.cluster)
    return flux_findings(stack, reader.flux_configurations(SUB, ref), reader.extensions(SUB, ref))


def test_compliant_configuration_and_healthy_extension_are_not_drift():
    assert flux_of(Cluster()) == []


def test_non_compliant_and_failed_configurations_are_drift():
    cluster = Cluster()
    failing = example(ARM_FIXTURES / "flux_configurations_failing.json")["value"]
    for body, name in zip(failing, ("platform", "extra"), strict=True):
        body["name"] = name
    cluster.configurations = {"value": failing}
    found = {(f.subject, f.severity): f.message for f in flux_of(cluster)}
    assert found[("platform", Severity.drift)].startswith("Non-Compliant: Kustomization")
    assert found[("extra", Severity.drift)] == "on the cluster but declared by no stack: created by hand?"


def test_a_stale_revision_of_a_pinned_tag_is_drift():
    prod = load_stack_file(
        STANDALONE_STACKS / "Pulumi.prod-weu.yaml"
    )  # pins tag v1.0.0; Azure synced master/0ba6f0d...
    [finding] = flux_of(Cluster(), prod)
    assert finding.message == "stale revision: synced master/0ba6f0d30760d567de0bac86c8c4eec13ce1a590, not tag v1.0.0"


def test_failed_extension_and_missing_configuration_are_drift():
    cluster = Cluster(configuration_name="other")
    cluster.extensions = example(ARM_FIXTURES / "extensions_failing.json")  # flux Creating (a note), dapr Failed
    found = [(f.subject, f.severity, f.message) for f in flux_of(cluster)]
    assert ("extension flux", Severity.note, "Creating: an operation is running") in found
    assert ("platform", Severity.drift, "declared but not on the cluster") in found


def test_a_pinned_extension_version_that_skips_a_required_hop_is_drift_saying_which_hop(tmp_path):
    text = (STANDALONE_STACKS / "Pulumi.dev.yaml").read_text()
    pinned = tmp_path / "Pulumi.dev.yaml"
    extension = "extension: {releaseTrain: Stable, autoUpgradeMinorVersion: true}"
    assert extension in text
    pinned.write_text(text.replace(extension, "extension: {version: 1.23.0, autoUpgradeMinorVersion: false}"))
    cluster = Cluster()
    cluster.extensions["value"][0]["properties"]["currentVersion"] = "1.20.4"
    hop = (
        "the pinned version cannot be applied: installed 1.20.4; pinned 1.23.0 skips 1.21.x: upgrade to 1.21.0 first "
        "(pin version: 1.21.0, roll out, then 1.23.0)"
    )
    assert ("extension flux", Severity.drift, hop) in [
        (f.subject, f.severity, f.message) for f in flux_of(cluster, load_stack_file(pinned))
    ]
    cluster.extensions["value"][0]["properties"]["currentVersion"] = "1.21.0"
    assert flux_of(cluster, load_stack_file(pinned)) == []


# --------------------------------------------------------------------------------------------- secret rotation


def test_rotation_pending_when_key_vault_serves_a_newer_version():
    stack = dev()
    deployed = {"keyvault:kv-fleet-dev/github-pat": "aaaaaaaa" + "0" * 24}
    [finding] = rotation_findings(stack, deployed, lambda ref: "bbbbbbbb" + "1" * 24)
    assert finding.severity is Severity.drift
    assert finding.message == (
        "rotation pending for fluxfleet:flux.configurations.platform.git.httpsKey: deployed version aaaaaaaa, "
        "Key Vault serves bbbbbbbb; an update delivers it"
    )
    assert rotation_findings(stack, deployed, lambda ref: deployed[str(ref)]) == []


def test_rotation_unknown_before_versions_were_recorded_is_a_note():
    [finding] = rotation_findings(dev(), {}, lambda ref: "b" * 32)
    assert finding.severity is Severity.note


def test_a_pinned_version_never_rotates(tmp_path):
    text = (
        (STANDALONE_STACKS / "Pulumi.dev.yaml")
        .read_text()
        .replace("secret: github-pat}", "secret: github-pat, version: 0123456789abcdef0123456789abcdef}")
    )
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(text)
    assert rotation_findings(load_stack_file(path), {}, lambda ref: "b" * 32) == []


def test_rotation_through_the_stack_outputs_and_key_vault(fake):
    outputs = {"secretVersions": {"keyvault:kv-fleet-dev/github-pat": "0" * 32}}
    result = drift_of(fake, "preview_in_sync.jsonl", outputs=outputs)
    [finding] = result.findings
    assert finding.kind == "secret-rotation" and "Key Vault serves 4387e9f3" in finding.message
    assert CANARY not in repr(result)


# --------------------------------------------------------------------------------------------- a fleet


def test_one_stack_failing_does_not_end_the_run_and_exit_codes(tmp_path):
    clock = FakeClock()
    runner = FakeRunner(clock)
    runner.previews["staging"] = OperationResult("staging", ok=False, error="error: failed to load checkpoint")
    runner.previews["dev"] = change(FLUX_TYPE, PropertyChange("suspend", "update", True, False))
    bad = tmp_path / "Pulumi.broken.yaml"
    bad.write_text("config:\n  fluxfleet:cluster: {kind: aks}\n")
    cluster = Cluster()
    paths = [STACKS / "Pulumi.dev.yaml", STACKS / "Pulumi.staging.yaml"]
    fleet = check_fleet(paths, runner, cluster.reader(), subscription, max_concurrency=2)
    assert [s.status for s in fleet.stacks] == [Status.drifted, Status.error]
    assert fleet.exit_code == 1  # a stack could not be checked: worse than drift
    assert check_fleet(paths[:1], runner, cluster.reader(), subscription).exit_code == 3
    assert check_fleet([bad, *paths], runner, cluster.reader(), subscription).exit_code == 2


def test_remediation_is_a_rollout_of_the_drifted_stacks_in_stage_order_with_its_approvals(tmp_path):
    """`--remediate` takes the drifted stacks that are in a stage into a journaled rollout: stage order, approvals
    and all; a drifted stack in no stage is said not to be remediated; a stack in sync is not touched."""
    runner = FakeRunner(FakeClock())
    runner.previews["dev"] = change(FLUX_TYPE, PropertyChange("suspend", "update", True, False))
    runner.previews["staging"] = change(FLUX_TYPE, PropertyChange("suspend", "update", True, False))
    cluster = Cluster()
    paths = [STACKS / "Pulumi.dev.yaml", STACKS / "Pulumi.staging.yaml"]
    drifted = check_fleet(paths, runner, cluster.reader(), subscription)
    drifted.stacks.append(StackDrift("store-9", "stacks/Pulumi.store-9.yaml", [drifted.stacks[0].findings[0]]))
    assert [s.status for s in drifted.stacks] == [Status.drifted, Status.drifted, Status.drifted]
    stages = (Stage("dev", ("dev",), 1, 0, 0, False), Stage("staging", ("staging",), 1, 0, 0, True))
    fleet = Fleet("stacks/fleet.yaml", GateSpec(fluxCompliance=False), stages, ("store-9",))
    names = remediation_targets(drifted, ["dev", "staging"], fleet.file)
    assert names == {"dev", "staging"}
    selection = Selection(names=names)
    specs = {s.name: s.spec for s in (load_stack_file(path) for path in paths)}
    journal = Journal.create(tmp_path, new_run(fleet, selection, runner.clock.now()))
    Rollout(journal, specs, runner, runner.clock, subscription_of=lambda spec: "sub").run()
    record_remediation(drifted, journal.record)
    run = journal.record.run_id
    assert {s.stack: s.remediation for s in drifted.stacks} == {
        "dev": f"updated (run {run})",
        "staging": f"waits for approval of stage staging: fluxfleet rollout --resume {run} --approve staging",
        "store-9": "not remediated: in no stage of stacks/fleet.yaml",
    }
    assert runner.applied == {"dev": 1}
