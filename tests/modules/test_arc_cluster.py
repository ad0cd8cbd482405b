"""An Arc cluster is adopted: read by id, never created, and the Flux resources point at connectedClusters."""

from tests.conftest import deploy

OFFLINE_SUB = "00000000-0000-0000-0000-000000000000"


def arc(raw):
    raw["cluster"] = {"kind": "arc", "name": "flux-demo-arc", "resourceGroup": "flux-demo-rg"}
    return raw


def test_connected_cluster_is_read_not_created(raw):
    deployment = deploy(arc(raw))
    connected = deployment.one(":ConnectedCluster")
    assert connected.read is True
    assert connected.options["id"] == (
        f"/subscriptions/{OFFLINE_SUB}/resourceGroups/flux-demo-rg/providers/Microsoft.Kubernetes/connectedClusters/flux-demo-arc"
    )
    assert not [r for r in deployment.records if r.type.endswith(":ManagedCluster")]


def test_subscription_from_the_spec_wins(raw):
    arc(raw)["cluster"]["subscriptionId"] = "11111111-2222-3333-4444-555555555555"
    connected = deploy(raw).one(":ConnectedCluster")
    assert connected.options["id"].startswith("/subscriptions/11111111-2222-3333-4444-555555555555/")


def test_flux_resources_attach_to_the_connected_cluster(raw):
    deployment = deploy(arc(raw))
    for suffix in ("kubernetesconfiguration:Extension", ":FluxConfiguration"):
        inputs = deployment.one(suffix).inputs
        assert (inputs["clusterRp"], inputs["clusterResourceName"], inputs["clusterName"]) == (
            "Microsoft.Kubernetes",
            "connectedClusters",
            "flux-demo-arc",
        )
        assert inputs["resourceGroupName"] == "flux-demo-rg"
