"""Every policy rule, compliant and violating, through both paths: the CrossGuard pack's validate callables (with
pulumi_policy's argument objects) and the offline evaluation `fluxfleet plan` runs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from pulumi_policy import PolicyResource, PolicyResourceOptions, ResourceValidationArgs, StackValidationArgs

from fluxfleet.plan import policy_view
from policies.pack import policies, resource_validation, stack_validation
from policies.rules import RULES, RULES_BY_ID, Resource, evaluate
from tests.conftest import deploy

FLUX = "kubernetesconfiguration:FluxConfiguration"
EXTENSION = "kubernetesconfiguration:Extension"
CLUSTER = "containerservice:ManagedCluster"
PEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"


SELF_HOSTED = "https://git.example.com/fluxcd/flux2-kustomize-helm-example"


def hardened(raw: dict[str, Any]) -> dict[str, Any]:
    """The test stack hardened like the examples, its repository on a self-hosted git server: there no identity can
    replace the token (flux-source-identity), which GitHub's and Azure DevOps's can."""
    raw["cluster"].update(networkPolicy="azure", authorizedIpRanges=["203.0.113.0/24"])
    raw["flux"]["configurations"]["demo"]["git"]["url"] = SELF_HOSTED
    return raw


@pytest.fixture
def compliant(raw) -> list[Resource]:
    """The resources the real program registers for the test stack, hardened, as plan hands them to the rules."""
    return [policy_view(record) for record in deploy(hardened(raw)).records]


def one(resources: list[Resource], kind: str) -> Resource:
    [found] = [r for r in resources if r.kind == kind]
    return found


def mutate(resources: list[Resource], kind: str, change: Callable[[dict[str, Any]], None]) -> list[Resource]:
    out = []
    for resource in resources:
        if resource.kind == kind:
            props = copy.deepcopy(dict(resource.props))
            change(props)
            resource = Resource(
                resource.type, resource.name, props, resource.urn, resource.secrets, resource.depends_on
            )
        out.append(resource)
    return out


def kustomization(props: dict[str, Any], name: str = "apps") -> dict[str, Any]:
    return props["kustomizations"][name]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(props: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = props
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return change


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def change(props: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = props
        for key in parents:
            node = node[key]
        del node[last]

    return change


def _bucket(insecure: Any) -> Callable[[dict[str, Any]], None]:
    def change(props: dict[str, Any]) -> None:
        props.pop("gitRepository")
        props["sourceKind"] = "Bucket"
        props["bucket"] = {"url": "https://minio.example.com", "bucketName": "b"}
        if insecure is not None:
            props["bucket"]["insecure"] = insecure

    return change


def _oci(verify: Any = None, insecure: bool = False) -> Callable[[dict[str, Any]], None]:
    def change(props: dict[str, Any]) -> None:
        props.pop("gitRepository")
        props["sourceKind"] = "OCIRepository"
        props["ociRepository"] = {
            "url": "oci://ghcr.io/org/manifests",
            "repositoryRef": {"tag": "v1"},
            "insecure": insecure,
        }
        if verify is not None:
            props["ociRepository"]["verify"] = verify

    return change


# rule id -> (kind changed, change that violates it, property path the violation names)
VIOLATIONS: dict[str, tuple[str, Callable[[dict[str, Any]], None], str]] = {
    "flux-source-url-secure": (FLUX, _set("gitRepository.url", "http://example.com/r"), "gitRepository.url"),
    "flux-bucket-tls": (FLUX, _bucket(None), "bucket.insecure"),
    "flux-credentials-protected": (FLUX, _set("gitRepository.httpsKey", "x"), "gitRepository.httpsKey"),
    "flux-kustomization-graph": (FLUX, _set("kustomizations.apps.dependsOn", ["infr"]), "kustomizations.apps.dependsOn[0]"),
    "flux-object-names": (FLUX, _set("namespace", "Flux_System"), "namespace"),
    "flux-extension-present": (EXTENSION, _set("extensionType", "microsoft.azuremonitor.containers"), ""),
    "flux-extension-upgrades": (EXTENSION, _set("releaseTrain", "Preview"), "releaseTrain"),
    "flux-extension-settings-plain": (EXTENSION, _set("configurationSettings", {"git.password": "x"}), "configurationSettings.git.password"),
    "flux-oci-verified": (FLUX, _oci(), "ociRepository.verify"),
    "flux-source-identity": (FLUX, _set("azureBlob.accountKey", "[secret]"), "azureBlob.accountKey"),
    "flux-workload-identity-ready": (FLUX, _set("gitRepository.provider", "Azure"), "gitRepository.provider"),
    "flux-prune": (FLUX, _set("kustomizations.apps.prune", False), "kustomizations.apps.prune"),
    "flux-sync-interval": (FLUX, lambda p: p["gitRepository"].update(syncIntervalInSeconds=30, timeoutInSeconds=30), "gitRepository.syncIntervalInSeconds"),
    "flux-production-ref-pinned": (CLUSTER, _set("tags", {"environment": "production"}), "gitRepository.repositoryRef"),
    "aks-managed-identity": (CLUSTER, _set("servicePrincipalProfile", {"clientId": "app-id", "secret": "s"}), "servicePrincipalProfile"),
    "aks-rbac": (CLUSTER, _set("enableRBAC", False), "enableRBAC"),
    "aks-entra-rbac": (CLUSTER, _delete("aadProfile"), "aadProfile"),
    "aks-local-accounts-disabled": (CLUSTER, _set("disableLocalAccounts", False), "disableLocalAccounts"),
    "aks-workload-identity": (CLUSTER, _set("oidcIssuerProfile.enabled", False), "oidcIssuerProfile.enabled"),
    "aks-keyvault-secrets-provider": (CLUSTER, _set("addonProfiles.azureKeyvaultSecretsProvider.config.enableSecretRotation", "false"), "addonProfiles.azureKeyvaultSecretsProvider.config.enableSecretRotation"),
    "aks-supported-version": (CLUSTER, _set("kubernetesVersion", "1.19"), "kubernetesVersion"),
    "aks-auto-upgrade": (CLUSTER, _set("autoUpgradeProfile.upgradeChannel", "none"), "autoUpgradeProfile.upgradeChannel"),
    "aks-api-server-access": (CLUSTER, _delete("apiServerAccessProfile"), "apiServerAccessProfile"),
    "aks-network-policy": (CLUSTER, _delete("networkProfile.networkPolicy"), "networkProfile.networkPolicy"),
    "aks-maintenance-window": (CLUSTER, _set("tags", {"environment": "production"}), "autoUpgradeProfile"),
    "stack-no-plaintext-secrets": (CLUSTER, _set("tags", {"deployKey": PEM}), "tags.deployKey"),
}  # fmt: skip


def test_every_rule_has_a_violating_case():
    assert set(VIOLATIONS) == set(RULES_BY_ID)


def test_the_test_stack_passes_every_rule(compliant):
    # A compliant baseline for every case below; the test stack is hardened like the examples.
    assert evaluate(compliant) == []


# --- path 1: fluxfleet plan's evaluation -------------------------------------------------------------------------


@pytest.mark.parametrize("rule_id", sorted(VIOLATIONS))
def test_plan_path(compliant, rule_id):
    kind, change, path = VIOLATIONS[rule_id]
    rule = RULES_BY_ID[rule_id]
    found = [v for v in evaluate(mutate(compliant, kind, change)) if v.policy == rule_id]
    assert found, f"{rule_id} did not fire"
    assert {v.path for v in found} == {path} and all(v.level == rule.level for v in found)
    assert all(v.message for v in found)
    assert not [v for v in evaluate(compliant) if v.policy == rule_id]


# --- path 2: the CrossGuard pack ------------------------------------------------------------------------------------


def policy_resource(resource: Resource, by_urn: dict[str, PolicyResource]) -> PolicyResource:
    options = PolicyResourceOptions(False, [], False, [], None, [], None)
    dependencies = [by_urn[urn] for urn in resource.depends_on if urn in by_urn]
    return PolicyResource(
        resource.type, _unredacted(resource), resource.urn, resource.name, options, None, None, dependencies, {}
    )


def _unredacted(resource: Resource) -> dict[str, Any]:
    """CrossGuard sees secret values unwrapped: put plausible values where plan shows `[secret]`."""
    props = copy.deepcopy(dict(resource.props))
    if props.get("configurationProtectedSettings") == "[secret]":
        props["configurationProtectedSettings"] = {"sshPrivateKey": "LS0tLS1CRUdJTiBPUEVOU1NIIFBSSVZBVEUgS0VZLS0tLS0K"}
    return props


def run_pack(resources: list[Resource], rule_id: str) -> list[str]:
    rule = RULES_BY_ID[rule_id]
    reported: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append(message)

    if rule.stack_rule:
        by_urn: dict[str, PolicyResource] = {}
        for resource in resources:  # in registration order, so dependencies exist first
            by_urn[resource.urn] = policy_resource(resource, by_urn)
        stack_validation(rule)(StackValidationArgs(list(by_urn.values()), {}, {}), report)
    else:
        for resource in resources:
            args = ResourceValidationArgs(
                resource.type, _unredacted(resource), resource.urn, resource.name, None, None, {}, {}
            )
            resource_validation(rule)(args, report)
    return reported


@pytest.mark.parametrize("rule_id", sorted(VIOLATIONS))
def test_pack_path(compliant, rule_id):
    kind, change, path = VIOLATIONS[rule_id]
    assert run_pack(compliant, rule_id) == []
    reported = run_pack(mutate(compliant, kind, change), rule_id)
    assert reported, f"{rule_id} did not fire in the pack"
    assert all(path in message for message in reported)


def test_pack_declares_one_policy_per_rule_at_its_default_level():
    declared = {p.name: p.enforcement_level.value for p in policies()}
    assert declared == {rule.id: rule.level for rule in RULES}


# --- the cases a rule must tell apart -------------------------------------------------------------------------------


def test_a_bucket_with_insecure_false_passes(compliant):
    assert not [v for v in evaluate(mutate(compliant, FLUX, _bucket(False))) if v.policy == "flux-bucket-tls"]


def test_a_pinned_extension_in_the_window_passes_and_an_old_one_does_not(compliant):
    pinned = mutate(compliant, EXTENSION, lambda p: p.update(autoUpgradeMinorVersion=False, version="1.22.2"))
    assert not [v for v in evaluate(pinned) if v.policy == "flux-extension-upgrades"]
    old = mutate(compliant, EXTENSION, lambda p: p.update(autoUpgradeMinorVersion=False, version="1.6.3"))
    [violation] = [v for v in evaluate(old) if v.policy == "flux-extension-upgrades"]
    assert violation.path == "version" and "1.6.3" in violation.message


WINDOW = "AKS supports 1.34 to 1.37 (table of 2026-11-29)"


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("1.34", None),  # the oldest supported minor
        ("1.35", None),
        ("1.37", None),  # the newest
        ("1.36.4", None),  # patch form
        ("[unknown]", None),  # not known at preview
        ("1.33", f"'1.33' is out of support: {WINDOW}: raise fluxfleet:cluster.kubernetesVersion"),
        ("1.33.9", f"'1.33.9' is out of support: {WINDOW}: raise fluxfleet:cluster.kubernetesVersion"),
        ("1.31", f"'1.31' is out of support: {WINDOW}: raise fluxfleet:cluster.kubernetesVersion"),
        ("1.19", f"'1.19' is out of support: {WINDOW}: raise fluxfleet:cluster.kubernetesVersion"),  # under Flux's too
        (
            "1.38",
            f"'1.38' is not supported yet: {WINDOW}: lower fluxfleet:cluster.kubernetesVersion, or update "
            "modules/kubernetes_versions.py if AKS supports it now",
        ),
        (
            "2.0.1",
            f"'2.0.1' is not supported yet: {WINDOW}: lower fluxfleet:cluster.kubernetesVersion, or update "
            "modules/kubernetes_versions.py if AKS supports it now",
        ),
        ("latest", f"'latest' is no Kubernetes version: {WINDOW}"),
    ],
)
def test_a_pinned_aks_version_is_checked_against_the_supported_window(compliant, version, message):
    pinned = mutate(compliant, CLUSTER, _set("kubernetesVersion", version))
    found = [(v.path, v.message) for v in evaluate(pinned) if v.policy == "aks-supported-version"]
    assert found == ([("kubernetesVersion", message)] if message else [])


@pytest.mark.parametrize("unpinned", [_delete("kubernetesVersion"), _set("kubernetesVersion", None)])
def test_an_unpinned_aks_version_is_no_violation(compliant, unpinned):
    found = [v for v in evaluate(mutate(compliant, CLUSTER, unpinned)) if v.policy == "aks-supported-version"]
    assert found == []


def test_a_configuration_without_the_extension_dependency_fails(compliant):
    detached = [
        Resource(r.type, r.name, r.props, r.urn, r.secrets, frozenset()) if r.kind == FLUX else r for r in compliant
    ]
    [violation] = [v for v in evaluate(detached) if v.policy == "flux-extension-present"]
    assert "depend" in violation.message and violation.resource == "demo"


def test_production_by_stack_tag_and_pinned_refs(compliant):
    production = {"environment": "production"}
    [moving] = [v for v in evaluate(compliant, stack_tags=production) if v.policy == "flux-production-ref-pinned"]
    assert moving.resource == "demo"
    tagged = mutate(compliant, FLUX, _set("gitRepository.repositoryRef", {"tag": "v1.2.0"}))
    assert not [v for v in evaluate(tagged, stack_tags=production) if v.policy == "flux-production-ref-pinned"]


@pytest.mark.parametrize(
    "value",
    [
        PEM,
        "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=bm90LWEtcmVhbC1rZXk=;EndpointSuffix=core.windows.net",
        "https://acct.blob.core.windows.net/c?sv=2022-11-02&sig=abcdefghijkl",
        "Server=db;User Id=app;Password=hunter22;",
        "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVB",  # a base64 PEM key
        # The spec's list (modules/spec/credentials.py), one for the rules, the spec and every output:
        "eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJDYW5hcnkifQ.c2lnbmF0dXJlQ2FuYXJ5",  # a JWT
        "https://oauth2:s3cr3tCanary@gitlab.example.com/o/r",  # a password in a URL
        "Authorization: Bearer abc.def-ghi123",
    ],
)
def test_plaintext_credentials_are_found_unless_secret(compliant, value):
    planted = mutate(compliant, CLUSTER, _set("tags", {"note": value}))
    [violation] = [v for v in evaluate(planted) if v.policy == "stack-no-plaintext-secrets"]
    assert violation.path == "tags.note" and value not in violation.message
    secret = [
        Resource(r.type, r.name, r.props, r.urn, frozenset({*(r.secrets or ()), "tags.note"}), r.depends_on)
        for r in planted
    ]
    assert not [v for v in evaluate(secret) if v.policy == "stack-no-plaintext-secrets"]


@pytest.mark.parametrize("value", ["westeurope", "https://github.com/fluxcd/flux2-kustomize-helm-example", "platform"])
def test_ordinary_values_are_not_credentials(compliant, value):
    planted = mutate(compliant, CLUSTER, _set("tags", {"note": value}))
    assert not [v for v in evaluate(planted) if v.policy == "stack-no-plaintext-secrets"]


def test_typed_controller_settings_pass_every_rule_and_a_secret_beside_them_is_still_caught(raw):
    """The typed settings land in configurationSettings like free-form ones: a client ID is no credential, and the
    rule that reads the extension's settings still sees every key."""
    hardened(raw)
    raw["flux"]["extension"] = {
        "controllers": {
            "multiTenancy": {"enforce": True},
            "workloadIdentity": {"enable": True, "azureClientId": "0a1b2c3d-1111-2222-3333-444455556666"},
            "kustomize": {"concurrent": 8, "requeueDependency": "10s"},
        }
    }
    resources = [policy_view(record) for record in deploy(raw).records]
    settings = one(resources, EXTENSION).props["configurationSettings"]
    assert settings["workloadIdentity.azureClientId"] == "0a1b2c3d-1111-2222-3333-444455556666"
    assert evaluate(resources) == []
    leaked = mutate(resources, EXTENSION, lambda props: props["configurationSettings"].update({"git.token": "x"}))
    [violation] = [v for v in evaluate(leaked) if v.policy == "flux-extension-settings-plain"]
    assert violation.path == "configurationSettings.git.token"


def test_a_plain_protected_setting_is_caught_by_plan(compliant):
    """Plan knows whether an input was a Pulumi secret; the protected settings must be one."""
    exposed = [
        Resource(r.type, r.name, r.props, r.urn, frozenset(), r.depends_on) if r.kind == FLUX else r for r in compliant
    ]
    [violation] = [v for v in evaluate(exposed) if v.policy == "flux-credentials-protected"]
    assert violation.path == "configurationProtectedSettings"


def test_levels_can_be_raised_lowered_and_disabled(compliant):
    unpruned = mutate(compliant, FLUX, _set("kustomizations.apps.prune", False))
    assert [v.level for v in evaluate(unpruned) if v.policy == "flux-prune"] == ["advisory"]
    assert [v.level for v in evaluate(unpruned, {"flux-prune": "mandatory"}) if v.policy == "flux-prune"] == [
        "mandatory"
    ]
    assert not [v for v in evaluate(unpruned, {"flux-prune": "disabled"}) if v.policy == "flux-prune"]


def test_node_pools_as_agent_pools_keep_the_rules_right(raw):
    """User pools are AgentPool resources now (issue 15): the cluster rules still see the one ManagedCluster with its
    system pool, nothing about a pool is a cluster violation, and the stack rules read the pools like any input."""
    hardened(raw)
    raw["cluster"]["nodePools"] += [
        {"name": "apps", "vmSize": "Standard_D8s_v5", "count": 2, "nodeLabels": {"team": "web"}},
        {"name": "win", "vmSize": "Standard_D4s_v5", "count": 1, "osType": "Windows"},
    ]
    resources = [policy_view(record) for record in deploy(raw).records]
    assert [r.name for r in resources if r.kind == "containerservice:AgentPool"] == ["apps", "win"]
    [cluster] = [r for r in resources if r.kind == CLUSTER]
    assert [pool["name"] for pool in cluster.props["agentPoolProfiles"]] == ["system"]
    assert evaluate(resources) == []
    for rule_id in ("aks-managed-identity", "aks-rbac", "stack-no-plaintext-secrets"):
        assert run_pack(resources, rule_id) == []

    leaked = mutate(resources, "containerservice:AgentPool", _set("nodeLabels.token", "ghp_" + "a1B2" * 9))
    found = [v for v in evaluate(leaked) if v.policy == "stack-no-plaintext-secrets"]
    assert {(v.resource, v.path) for v in found} == {("apps", "nodeLabels.token"), ("win", "nodeLabels.token")}


def production(raw: dict[str, Any], **upgrade: Any) -> list[Resource]:
    raw = hardened(raw)
    raw["cluster"]["tags"] = {"environment": "production"}
    raw["cluster"]["upgrade"] = upgrade
    raw["flux"]["configurations"]["demo"]["git"].update(branch=None, tag="v1.0.0")
    return [policy_view(record) for record in deploy(raw).records]


@pytest.mark.parametrize(
    ("upgrade", "message"),
    [
        ({}, "AKS starts the upgrades of its channel patch and node OS channel NodeImage at any hour"),
        ({"nodeOSChannel": "Unmanaged"}, "AKS starts the upgrades of its channel patch at any hour"),
        (
            {"channel": "none", "nodeOSChannel": "SecurityPatch"},
            "AKS starts the upgrades of its node OS channel SecurityPatch at any hour",
        ),
        ({"channel": "none", "nodeOSChannel": "None"}, None),  # AKS starts nothing
        (
            {"nodeOSChannel": "NodeImage", "windows": [{"cron": "0 22 * * 6", "duration": "4h"}]},
            None,
        ),  # both channels timed
        ({"nodeOSChannel": "Unmanaged", "windows": [{"cron": "0 22 * * 6", "duration": "4h"}]}, None),
    ],
)
def test_a_production_cluster_times_each_channel_aks_upgrades_on(raw, upgrade, message):
    found = [str(v) for v in evaluate(production(raw, **upgrade)) if v.policy == "aks-maintenance-window"]
    expected = [f"[aks-maintenance-window] aks-test autoUpgradeProfile: {message}: set cluster.upgrade.windows"]
    assert found == (expected if message else [])
