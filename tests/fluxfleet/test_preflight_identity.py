"""`fluxfleet preflight` for sources that authenticate as the Flux extension's workload identity (issue 16): the
cluster's OIDC issuer and workload identity on, and the federated credential to create, printed whole."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fluxfleet.preflight import FEDERATED_AUDIENCE, SOURCE_CONTROLLER_SUBJECT, Outcome, preflight_stack, to_text
from tests.fluxfleet.test_preflight import HEALTHY_AKS, HEALTHY_ARC, NOW, SUBSCRIPTION, FakeAzure

IDENTITY = "6f1c2e0a-3b4d-4c5e-8f90-1a2b3c4d5e6f"
ISSUER = "https://westeurope.oic.prod-aks.azure.com/72f988bf-86f1-41af-91ab-2d7cd011db47/6a1f2e3d/"
AKS_STACK = f"""\
config:
  azure-native:location: westeurope
  fluxfleet:cluster:
    kind: aks
    name: aks-dev-weu
    resourceGroup: rg-fleet-dev
    nodePools: [{{name: system, vmSize: Standard_D4s_v5, count: 3, mode: System}}]
  fluxfleet:flux:
    extension: {{controllers: {{workloadIdentity: {{enable: true, azureClientId: {IDENTITY}}}}}}}
    configurations:
      platform:
        git: {{url: 'https://dev.azure.com/contoso/fleet/_git/platform', branch: main, provider: Azure}}
        kustomizations: {{infra: {{prune: true}}}}
"""
ARC_STACK = f"""\
config:
  fluxfleet:cluster: {{kind: arc, name: flux-demo-arc, resourceGroup: flux-demo-rg}}
  fluxfleet:flux:
    extension: {{controllers: {{workloadIdentity: {{enable: true, azureClientId: {IDENTITY}}}}}}}
    configurations:
      podinfo:
        oci:
          url: oci://contoso.azurecr.io/manifests/podinfo
          tag: 6.6.2
          useWorkloadIdentity: true
          verify: {{provider: cosign, matchOidcIdentity: [{{issuer: '^https://a$', subject: '^b$'}}]}}
        kustomizations: {{apps: {{prune: true}}}}
"""


def check(tmp_path: Path, text: str, azure: FakeAzure):
    path = tmp_path / "Pulumi.wi.yaml"
    path.write_text(text)
    return preflight_stack(path, azure, subscription_id=SUBSCRIPTION, now=lambda: NOW)


def credential(result):
    [found] = [c for c in result.checks if c.id == "federated-credential"]
    return found


def test_the_federated_credential_to_create_is_printed_whole(tmp_path):
    azure = FakeAzure(managed={"rg-fleet-dev/aks-dev-weu": replace(HEALTHY_AKS, oidc_issuer_url=ISSUER)})
    result = check(tmp_path, AKS_STACK, azure)
    found = credential(result)
    assert result.ok and found.outcome is Outcome.warning  # worth knowing: preflight cannot read it
    assert found.subject == "rg-fleet-dev/aks-dev-weu"
    assert found.message == (
        f"platform authenticate(s) as managed identity {IDENTITY} (the Flux extension's workload identity): it needs a "
        f"federated credential with issuer {ISSUER}, subject system:serviceaccount:flux-system:source-controller, "
        "audience api://AzureADTokenExchange"
    )
    assert (SOURCE_CONTROLLER_SUBJECT, FEDERATED_AUDIENCE) == (
        "system:serviceaccount:flux-system:source-controller",
        "api://AzureADTokenExchange",
    )
    assert "az identity federated-credential create --name flux-source-controller" in found.remedy
    assert f"--issuer {ISSUER} --subject {SOURCE_CONTROLLER_SUBJECT} --audience {FEDERATED_AUDIENCE}" in found.remedy
    assert "federated-credential" in to_text_of(result)


def to_text_of(result) -> str:
    from fluxfleet.preflight import FleetPreflight

    return to_text(FleetPreflight([result]))


def test_an_aks_cluster_without_its_oidc_issuer_fails_with_the_command(tmp_path):
    off = replace(HEALTHY_AKS, oidc_issuer_enabled=False, oidc_issuer_url=None)
    result = check(tmp_path, AKS_STACK, FakeAzure(managed={"rg-fleet-dev/aks-dev-weu": off}))
    found = credential(result)
    assert not result.ok and found.outcome is Outcome.failed
    assert found.remedy == (
        "`az aks update -g rg-fleet-dev -n aks-dev-weu --enable-oidc-issuer --enable-workload-identity`"
    )


def test_a_cluster_to_be_created_says_to_come_back(tmp_path):
    result = check(tmp_path, AKS_STACK, FakeAzure())
    found = credential(result)
    assert found.outcome is Outcome.warning and "does not exist yet" in found.message


def test_an_arc_cluster_and_an_oci_source_alike(tmp_path):
    arc_issuer = "https://oidcdiscovery-northamerica-endpoint.z01.azurefd.net/885hc665/"
    on = replace(HEALTHY_ARC, oidc_issuer_enabled=True, workload_identity_enabled=True, oidc_issuer_url=arc_issuer)
    found = credential(check(tmp_path, ARC_STACK, FakeAzure(connected={"flux-demo-rg/flux-demo-arc": on})))
    assert found.outcome is Outcome.warning and f"issuer {arc_issuer}" in found.message
    assert found.message.startswith("podinfo authenticate(s)")
    off = check(tmp_path, ARC_STACK, FakeAzure(connected={"flux-demo-rg/flux-demo-arc": HEALTHY_ARC}))
    assert credential(off).outcome is Outcome.failed and "az connectedk8s update" in credential(off).remedy


def test_a_stack_without_such_a_source_has_no_such_check(tmp_path):
    text = AKS_STACK.replace(", provider: Azure", "").replace(
        "https://dev.azure.com/contoso/fleet/_git/platform", "https://github.com/o/r"
    )
    result = check(tmp_path, text, FakeAzure(managed={"rg-fleet-dev/aks-dev-weu": HEALTHY_AKS}))
    assert "federated-credential" not in {c.id for c in result.checks}
