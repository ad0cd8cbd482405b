"""The refs a rollout's dry run shows (fluxfleet/rollout/refs.py): per stage, each Flux configuration (sorted by
name) with the ref its stacks apply, from a stage's pin or the stack's own, and a source without a ref said so."""

from __future__ import annotations

import shutil
from pathlib import Path

from fluxfleet.plan import display_path
from fluxfleet.rollout.journal import StagePlan
from fluxfleet.rollout.orchestrator import load_run_stacks
from fluxfleet.rollout.refs import AppliedRef, ConfigurationRefs, stage_refs
from modules.spec import stack_files, report_name
from tests.conftest import ROOT

DEV_SOURCES = """
      apps:
        oci: {url: oci://ghcr.io/contoso/apps, tag: 1.2.0}
        kustomizations:
          apps: {path: ./}
      assets:
        bucket: {url: https://minio.contoso.com, bucketName: assets}
        kustomizations:
          assets: {path: ./}
"""


def refs_of(project: Path, *stages: StagePlan) -> dict[str, tuple[ConfigurationRefs, ...]]:
    stacks_dir = project / "stacks"
    paths = {report_name(path): path for path in stack_files(stacks_dir)}
    names = [name for stage in stages for name in stage.stacks]
    stacks = load_run_stacks(names, stacks_dir, paths, display_path)
    return stage_refs(stages, stacks, "stacks/fleet.yaml")


def test_configurations_are_sorted_by_name_and_a_source_without_a_ref_says_so(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    monkeypatch.chdir(tmp_path)
    dev = tmp_path / "stacks" / "Pulumi.dev.yaml"
    dev.write_text(dev.read_text().replace("    configurations:\n", "    configurations:" + DEV_SOURCES, 1))
    fleet_file = tmp_path / "stacks" / "fleet.yaml"
    fleet_file.write_text(
        fleet_file.read_text().replace("stacks: [dev]\n", "stacks: [dev]\n    pins: {apps: {tag: 1.3.0}}\n")
    )
    refs = refs_of(tmp_path, StagePlan("dev", ["dev"], 1, 0, 0, False))
    assert refs == {
        "dev": (
            ConfigurationRefs("apps", (AppliedRef("tag 1.3.0", "pin", "oci", ("dev",)),)),
            ConfigurationRefs("assets", (AppliedRef(None, None, "bucket", ("dev",)),)),
            ConfigurationRefs("platform", (AppliedRef("branch main", "stack", "git", ("dev",)),)),
        )
    }


def test_a_stage_without_flux_configurations_has_none(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    monkeypatch.chdir(tmp_path)
    assert refs_of(tmp_path, StagePlan("empty", [], 1, 0, 0, False)) == {"empty": ()}
