"""The readers at API 2025-04-01 (issue 16): Flux configurations through azure-mgmt-kubernetesconfiguration-
fluxconfigurations, so OCI sources, git providers and their statuses are seen; the clusters' OIDC issuers for the
federated credential; and what drift and the health gate make of them."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from fluxfleet.drift import flux_findings
from fluxfleet.flux_health import Verdict, configuration_verdict
from modules.spec import Stack, parse_spec
from tests.conftest import BASE_STACK
from tests.fluxfleet.azure.test_arm import (
    AKS,
    ARC,
    ARC_EXAMPLES,
    FLUX_EXAMPLES,
    SUB,
    fixture,
    official,
    reader_over,
    serving,
)

OCI_EXAMPLE = "CreateFluxConfigurationWithOCIRepository.json"


def test_flux_configurations_are_read_at_2025_04_01_and_an_oci_source_is_seen():
    body = official(*FLUX_EXAMPLES, OCI_EXAMPLE)
    transport = serving({"value": [body], "nextLink": None})
    [configuration] = reader_over(transport).flux_configurations("subId1", ARC)
    [request] = transport.requests
    assert parse_qs(urlsplit(request.url).query)["api-version"] == ["2025-04-01"]
    assert configuration.source_kind == "OCIRepository" and configuration.compliant
    source = configuration.source_object
    assert (source.kind, source.name) == ("OCIRepository", "srs-fluxconfig")
    assert (
        source.message
        == "stored artifact for revision '55396be14f18fa2b977c1f22becef26a94d1d9a7ccb1e19d12f9cac52d757a84'"
    )
    assert configuration.source_provider is None  # no git source


def test_a_git_provider_and_a_failing_workload_identity_source_are_seen():
    """The project's failing create (provider Azure without a federated credential), as ARM lists it."""
    body = fixture("flux_configuration_create_failed")
    [configuration] = reader_over(serving({"value": [body]})).flux_configurations(SUB, AKS)
    assert configuration.source_provider == "Azure"
    assert configuration.provisioning_state == "Failed" and configuration.compliance_state == "Non-Compliant"
    assert (
        "No matching federated identity record found" in configuration.error_message
    )  # (what follows `token:` masked)
    assert configuration.source_object.compliance_state == "Non-Compliant"


def test_the_official_and_project_fixtures_still_read_as_before():
    listed = reader_over(serving(official(*FLUX_EXAMPLES, "ListFluxConfigurations.json"))).flux_configurations(
        "subId1", ARC
    )
    assert [(c.name, c.source_kind, c.source_provider) for c in listed] == [
        ("srs-fluxconfig", "GitRepository", None),
        ("srs-fluxconfig", "GitRepository", None),
    ]
    apps, infra = reader_over(serving(fixture("flux_configurations_failing"))).flux_configurations(SUB, AKS)
    assert (apps.compliance_state, infra.provisioning_state) == ("Non-Compliant", "Failed")


def test_the_clusters_oidc_issuers_are_read():
    aks = reader_over(serving(fixture("managed_cluster_workload_identity"))).managed_cluster(
        SUB, "rg-fleet-dev", "aks-dev-weu"
    )
    assert aks.oidc_issuer_url.startswith("https://westeurope.oic.prod-aks.azure.com/")
    arc = reader_over(serving(official(*ARC_EXAMPLES, "GetClusterExample.json"))).connected_cluster(
        SUB, "rg1", "clusterName1"
    )
    assert arc.oidc_issuer_enabled and arc.workload_identity_enabled
    assert (
        arc.oidc_issuer_url
        == "https://oidcdiscovery-northamerica-endpoint-gbcge4adgqebgxev.z01.azurefd.net/885hc665-0g4a-4a4b-732b-e4950new3bed/"
    )


# --------------------------------------------------------------------------------------------- drift and the gate

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
VERIFY = {"provider": "cosign", "matchOidcIdentity": [{"issuer": "^https://a$", "subject": "^b$"}]}


def stack_with(configuration: dict) -> Stack:
    raw = copy.deepcopy(BASE_STACK)
    raw["flux"]["configurations"] = {"srs-fluxconfig": configuration}
    return Stack("dev", "stacks/Pulumi.dev.yaml", parse_spec(raw, file="stacks/Pulumi.dev.yaml"))


def oci_status(synced: str | None = None):
    body = copy.deepcopy(official(*FLUX_EXAMPLES, OCI_EXAMPLE))
    if synced is not None:
        body["properties"]["sourceSyncedCommitId"] = synced
    [status] = reader_over(serving({"value": [body]})).flux_configurations("subId1", ARC)
    return status


def oci(**ref: str) -> dict:
    return {
        "oci": {"url": "oci://ghcr.io/stefanprodan/manifests/podinfo", "verify": VERIFY, **ref},
        "kustomizations": {"a": {}},
    }


def test_an_oci_source_pinned_to_a_digest_is_healthy_only_at_that_digest():
    digest = "sha256:" + "55396be14f18fa2b977c1f22becef26a94d1d9a7ccb1e19d12f9cac52d757a84"
    configuration = stack_with(oci(digest=digest)).spec.flux.configurations["srs-fluxconfig"]
    at = oci_status(f"6.6.2@{digest}")
    assert configuration_verdict(configuration, at) == (Verdict.healthy, "Compliant")
    other = oci_status("6.6.2@sha256:" + "0" * 64)
    verdict, message = configuration_verdict(configuration, other)
    assert verdict is Verdict.waiting and message.startswith("synced 6.6.2@sha256:0000") and digest in message


def test_an_oci_source_pinned_to_a_tag_is_judged_by_the_tag_azure_names():
    configuration = stack_with(oci(tag="6.6.2")).spec.flux.configurations["srs-fluxconfig"]
    assert configuration_verdict(configuration, oci_status("6.6.2@sha256:" + "a" * 64))[0] is Verdict.healthy
    assert configuration_verdict(configuration, oci_status("6.6.1@sha256:" + "a" * 64))[0] is Verdict.waiting
    assert configuration_verdict(configuration, oci_status())[0] is Verdict.healthy  # a bare digest names no tag


def test_drift_reports_another_source_kind_or_provider_on_the_cluster():
    declared_git = stack_with(copy.deepcopy(BASE_STACK["flux"]["configurations"]["demo"]))
    [finding] = [f for f in flux_findings(declared_git, [oci_status()], [], None) if f.subject == "srs-fluxconfig"]
    assert finding.message == "source is OCIRepository on the cluster, GitRepository in the stack"
    assert flux_findings(stack_with(oci(tag="6.6.2")), [oci_status("6.6.2@sha256:" + "a" * 64)], [], None)[1:] == []

    body = copy.deepcopy(fixture("flux_configuration_create_failed"))
    body["name"] = "srs-fluxconfig"
    body["properties"].update(provisioningState="Succeeded", complianceState="Compliant", statuses=[])
    [status] = reader_over(serving({"value": [body]})).flux_configurations(SUB, AKS)
    [finding] = [f for f in flux_findings(declared_git, [status], [], None) if f.subject == "srs-fluxconfig"]
    assert finding.message == "git provider is Azure on the cluster, Generic in the stack"
