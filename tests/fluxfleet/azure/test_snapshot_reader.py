"""SnapshotReader: drift's per-stack cluster reads answered from one fleet read, ARM for the rest and for the final
word on anything that would fail a job."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fluxfleet.azure.fleet_graph import ClusterSnapshot, ClusterTarget, FleetSnapshot
from fluxfleet.azure.resource_graph import DeniedSubscription
from fluxfleet.azure.snapshot_reader import SnapshotReader, read_fleet
from fluxfleet.azure.status import AzureError, ExtensionStatus
from modules.cluster_ref import ClusterRef
from tests.fluxfleet.rollout.test_gate import compliant

SUB = "6f1c2e0a-3b4d-4c5e-8f90-1a2b3c4d5e6f"
NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
EXTENSION = ExtensionStatus("flux", "microsoft.flux", "Succeeded", None, "1.15.1", "Stable", True, NOW, ())


class Arm:
    """The ARM reader's stand-in: records every call."""

    def __init__(self):
        self.calls: list[str] = []

    def flux_configurations(self, subscription_id, cluster):
        self.calls.append(f"flux {cluster.name}")
        return [compliant("Compliant")]

    def extensions(self, subscription_id, cluster):
        self.calls.append(f"extensions {cluster.name}")
        return []

    def provider(self, subscription_id, namespace):
        self.calls.append(f"provider {namespace}")
        return "Registered"


def snapshot(state: str = "Compliant", denied=(), failed=None) -> FleetSnapshot:
    target = ClusterTarget(SUB, "rg-Edge", "store-1", "arc")
    read = ClusterSnapshot(target, True, "graph", extensions=(EXTENSION,), flux_configurations=(compliant(state),))
    return FleetSnapshot({target: read}, tuple(denied), failed or {}, 1, NOW)


def test_reads_come_from_the_snapshot_whatever_the_case_of_the_names():
    arm = Arm()
    reader = SnapshotReader(snapshot(), arm)
    ref = ClusterRef.arc("STORE-1", "rg-edge")
    assert [c.compliance_state for c in reader.flux_configurations(SUB.upper(), ref)] == ["Compliant"]
    assert reader.extensions(SUB, ref) == [EXTENSION]
    assert arm.calls == []


def test_anything_that_would_fail_a_job_is_read_again_through_arm():
    arm = Arm()
    reader = SnapshotReader(snapshot("Non-Compliant"), arm)  # Resource Graph lags: the cluster may have recovered
    assert [c.compliance_state for c in reader.flux_configurations(SUB, ClusterRef.arc("store-1", "rg-edge"))] == [
        "Compliant"
    ]
    assert arm.calls == ["flux store-1"]


def test_a_cluster_the_snapshot_lacks_and_every_other_read_go_to_arm():
    arm = Arm()
    reader = SnapshotReader(snapshot(), arm)
    reader.extensions(SUB, ClusterRef.aks("aks-new", "rg"))
    assert reader.provider(SUB, "Microsoft.Kubernetes") == "Registered"
    assert arm.calls == ["extensions aks-new", "provider Microsoft.Kubernetes"]


def test_a_denied_subscription_or_failed_read_is_that_reads_error():
    denied = [DeniedSubscription(SUB, "AuthorizationFailed: no read access")]
    reader = SnapshotReader(snapshot(denied=denied), Arm())
    with pytest.raises(AzureError, match="cannot be read: AuthorizationFailed"):
        reader.flux_configurations(SUB, ClusterRef.arc("store-1", "rg-edge"))
    target = ClusterTarget(SUB, "rg-edge", "store-2", "arc")
    reader = SnapshotReader(snapshot(failed={target: "cannot read store-2: 500"}), Arm())
    with pytest.raises(AzureError, match="cannot read store-2: 500"):
        reader.extensions(SUB, ClusterRef.arc("store-2", "rg-edge"))


def test_when_resource_graph_cannot_be_read_the_checks_read_arm():
    class Broken:
        def read(self, targets):
            raise AzureError("cannot query Azure Resource Graph: 503")

    arm = Arm()
    assert read_fleet(Broken(), arm, [ClusterTarget(SUB, "rg", "c", "aks")]) is arm


def test_an_extension_not_succeeded_is_read_again_through_arm():
    """ARM has the current state, and the time since when it is Creating (the batch does not carry it)."""
    from dataclasses import replace

    arm = Arm()
    creating = replace(EXTENSION, provisioning_state="Creating", last_modified_at=None)
    read = snapshot()
    [target] = read.clusters
    read.clusters[target] = replace(read.clusters[target], extensions=(creating,))
    assert SnapshotReader(read, arm).extensions(SUB, ClusterRef.arc("store-1", "rg-edge")) == []
    assert arm.calls == ["extensions store-1"]
