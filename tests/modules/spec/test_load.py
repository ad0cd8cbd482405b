"""modules/spec/load.py: two stacks of one directory that name one cluster, found from every stack file there."""

from __future__ import annotations

import shutil
from pathlib import Path

from modules.spec import shared_clusters
from tests.conftest import DEV_SHARED, ROOT, add_stack_on_the_dev_cluster


def stacks(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    return tmp_path / "stacks"


def test_a_stack_read_alone_is_paired_with_an_invalid_stack_it_was_not_asked_about(tmp_path):
    directory = stacks(tmp_path)
    sandbox = add_stack_on_the_dev_cluster(directory)
    [issue] = shared_clusters([directory / "Pulumi.dev.yaml"]).values()
    assert (issue.file, issue.path, issue.message) == (
        str(directory / "Pulumi.dev.yaml"),
        "fluxfleet:cluster.name",
        DEV_SHARED,
    )
    other = shared_clusters([sandbox])["sandbox"]
    assert other.message.startswith("the same cluster as stack dev (RG-Fleet-Dev/AKS-DEV-WEU)")


def test_a_cluster_named_by_a_profile_is_shared_by_the_stacks_that_do_not_name_their_own(tmp_path):
    directory = stacks(tmp_path)
    profile = directory / "profiles" / "edge-store.yaml"
    profile.write_text(
        profile.read_text().replace("kind: arc\n", "kind: arc\n    name: store-hq\n    resourceGroup: rg-stores\n")
    )
    for name in ("edge-store-002", "edge-store-003"):
        (directory / f"Pulumi.{name}.yaml").write_text("config:\n  fluxfleet:profiles: [edge-store]\n")
    found = shared_clusters([directory / "Pulumi.edge-store-002.yaml", directory / "Pulumi.dev.yaml"])
    assert list(found) == ["edge-store-002"]  # edge-store-001 names its own cluster over the profile's
    assert found["edge-store-002"].message.startswith("the same cluster as stack edge-store-003 (rg-stores/store-hq)")


def test_other_subscriptions_other_names_and_unreadable_files_share_nothing(tmp_path):
    directory = stacks(tmp_path)
    (directory / "Pulumi.other-sub.yaml").write_text(
        "config:\n  fluxfleet:cluster: {name: aks-dev-weu, resourceGroup: rg-fleet-dev, "
        "subscriptionId: 00000000-0000-0000-0000-000000000001}\n"
    )
    (directory / "Pulumi.torn.yaml").write_text("config:\n  fluxfleet:cluster: {name: aks-dev-weu, resourceGroup: [\n")
    (directory / "Pulumi.no-group.yaml").write_text("config:\n  fluxfleet:cluster: {name: aks-dev-weu}\n")
    assert shared_clusters(sorted(directory.glob("Pulumi.*.yaml"))) == {}


def test_a_fleet_that_selects_stacks_by_profile_lists_its_directory_once_not_once_per_stack(tmp_path, monkeypatch):
    """fleet.yaml's profile stages read each stack as its file writes it: at 5,000 stacks, a listing of the directory
    per stack was minutes of `fluxfleet status` before any read."""
    from modules.spec import files, load_fleet, load_stacks, stack_files

    directory = stacks(tmp_path)
    for number in range(2, 202):
        (directory / f"Pulumi.edge-store-{number:03d}.yaml").write_text(
            f"config:\n  fluxfleet:profiles: [edge-store]\n  fluxfleet:cluster: {{name: store-{number:03d}, "
            "resourceGroup: rg-stores}\n"
        )
    listings = []
    listdir = files.os.listdir
    monkeypatch.setattr(files.os, "listdir", lambda path: listings.append(path) or listdir(path))
    loaded = load_stacks(stack_files(directory))
    fleet = load_fleet(directory / "fleet.yaml", sorted(stack.name for stack in loaded))
    [edge] = [stage for stage in fleet.stages if stage.name == "edge"]
    assert len(edge.stacks) == 201 and "edge-store-200" in edge.stacks
    assert len(listings) <= 6, len(listings)  # the stack files, shared clusters, and once per fleet.yaml read
