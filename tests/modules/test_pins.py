"""Stage pins: fleet.yaml pins a configuration's git ref for every stack of a stage, over the stack and its
profiles, and every reader of a stack (plan, pulumi up, config, status, rollout) applies it the same way."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modules.spec import SpecError, load_fleet, load_stack_file, read_stack_config
from tests.conftest import ROOT


@pytest.fixture
def stacks(tmp_path: Path) -> Path:
    directory = tmp_path / "stacks"
    shutil.copytree(ROOT / "stacks", directory)
    return directory


def pin(stacks: Path, stage: str, pins: str) -> Path:
    """fleet.yaml with `pins: {pins}` added to the stage `stage`."""
    fleet = stacks / "fleet.yaml"
    text = fleet.read_text()
    anchor = f"  - name: {stage}\n"
    assert anchor in text
    fleet.write_text(text.replace(anchor, f"{anchor}    pins: {pins}\n"))
    return fleet


def git(stacks: Path, stack: str, configuration: str):
    return load_stack_file(stacks / f"Pulumi.{stack}.yaml").spec.flux.configurations[configuration].git


def test_a_stage_pin_overrides_the_profiles_branch_and_the_stacks_tag(stacks):
    pin(stacks, "staging", "{platform: {tag: v1.4.0}}")
    pin(stacks, "production", "{platform: {commit: 1a2b3c4d5e6f, branch: release}}")
    staging = git(stacks, "staging", "platform")  # the branch came from the aks-platform profile
    assert (staging.tag, staging.branch, staging.commit) == ("v1.4.0", None, None)
    production = git(stacks, "prod-weu", "platform")  # the tag v1.0.0 came from the stack file
    assert (production.tag, production.commit, production.branch) == (None, "1a2b3c4d5e6f", "release")
    assert git(stacks, "dev", "platform").branch == "main"  # another stage: untouched
    assert git(stacks, "edge-store-001", "gitops-demo").branch == "main"  # pins name configurations, not stages'


def test_where_a_pinned_ref_comes_from_is_fleet_yaml(stacks):
    pin(stacks, "staging", "{platform: {tag: v1.4.0}}")
    config = read_stack_config(stacks / "Pulumi.staging.yaml", "stacks/Pulumi.staging.yaml")
    origins = config.origins
    assert origins.file_of(("flux", "configurations", "platform", "git", "tag")) == "stacks/fleet.yaml"
    assert origins.file_of(("flux", "configurations", "platform", "git", "url")) == "stacks/profiles/aks-platform.yaml"
    # a key missing under a map the pin only passed through is still the stack's or its profile's to write
    assert origins.file_of(("flux", "configurations", "platform", "git", "timeout")) == "stacks/Pulumi.staging.yaml"
    assert (
        read_stack_config(stacks / "Pulumi.staging.yaml", pinned=False)
        .raw["flux"]["configurations"]["platform"]["git"]
        .get("tag")
        is None
    )


@pytest.mark.parametrize(
    ("pins", "message"),
    [
        ("{platform: {tag: v1, commit: 1a2b3c4d}}", "pin exactly one of tag, commit (git) or digest (OCI)"),
        ("{platform: {}}", "pin exactly one of tag, commit (git) or digest (OCI)"),
        ("{platform: {commit: 1a2b3c4d}}", "a commit needs the branch it is on"),
        ("{platform: {tag: v1, branch: main}}", "a tag or a digest is pinned alone: no branch"),
        ("{platform: {digest: 'sha256:abc'}}", "is not an artifact digest"),
        ("{platform: {commit: not-a-sha, branch: main}}", "'not-a-sha' is not a commit SHA"),
        ("{platform: {tag: v1, semver: '>=1'}}", "unknown key"),
        ("{Platform: {tag: v1}}", "is not a DNS-1123 label"),
    ],
)
def test_bad_pins_are_errors_of_fleet_yaml(stacks, pins, message):
    fleet = pin(stacks, "staging", pins)
    with pytest.raises(SpecError) as caught:
        load_fleet(fleet, ["dev", "edge-store-001", "prod-weu", "staging"], "stacks/fleet.yaml")
    [issue] = caught.value.issues
    assert issue.file == "stacks/fleet.yaml" and issue.path.startswith("stages[1].pins.") and message in issue.message
    with pytest.raises(SpecError) as caught:  # and no stack can be read while fleet.yaml cannot say its ref
        load_stack_file(stacks / "Pulumi.dev.yaml", "stacks/Pulumi.dev.yaml")
    assert caught.value.issues[0].file == "stacks/fleet.yaml"


def test_a_pin_on_a_configuration_without_a_git_source_is_an_error(stacks):
    path = stacks / "Pulumi.staging.yaml"
    path.write_text(
        "config:\n  azure-native:location: westeurope\n"
        "  fluxfleet:cluster: {kind: aks, name: aks-staging-weu, resourceGroup: rg, "
        "nodePools: [{name: system, vmSize: Standard_D4s_v5, count: 3, mode: System}]}\n"
        "  fluxfleet:flux: {configurations: {blob: {azureBlob: {url: 'https://acct.blob.core.windows.net', "
        "containerName: c}, kustomizations: {k: {path: ./}}}}}\n"
    )
    pin(stacks, "staging", "{blob: {tag: v1}}")
    with pytest.raises(SpecError) as caught:
        load_stack_file(path, "stacks/Pulumi.staging.yaml")
    assert [str(issue) for issue in caught.value.issues] == [
        "stacks/fleet.yaml: pins.blob: pins tag v1, which stack staging's configuration blob cannot take: it has no "
        "git or OCI source"
    ]


DIGEST = "sha256:" + "0a" * 32


def test_a_stage_pins_an_oci_artifact_by_tag_or_digest_and_never_by_commit(stacks):
    """An OCI source (no long-lived credential: issue 16) is promoted stage by stage like a git one."""
    path = stacks / "Pulumi.staging.yaml"
    path.write_text(
        "config:\n  azure-native:location: westeurope\n"
        "  fluxfleet:cluster: {kind: aks, name: aks-staging-weu, resourceGroup: rg, "
        "nodePools: [{name: system, vmSize: Standard_D4s_v5, count: 3, mode: System}]}\n"
        "  fluxfleet:flux: {configurations: {apps: {oci: {url: 'oci://ghcr.io/contoso/apps', semver: '>=1.0'}, "
        "kustomizations: {k: {path: ./}}}}}\n"
    )
    unpinned = (stacks / "fleet.yaml").read_text()
    pin(stacks, "staging", "{apps: {tag: v1.4.0}}")
    oci = load_stack_file(path, "stacks/Pulumi.staging.yaml").spec.flux.configurations["apps"].oci
    assert (oci.tag, oci.semver, oci.digest) == ("v1.4.0", None, None)  # the pin's ref, in place of the stack's
    (stacks / "fleet.yaml").write_text(unpinned)
    pin(stacks, "staging", f"{{apps: {{digest: '{DIGEST}'}}}}")
    stack = load_stack_file(path, "stacks/Pulumi.staging.yaml")
    assert stack.spec.flux.configurations["apps"].oci.ref_keys == {"digest": DIGEST}
    assert stack.spec.source_refs() == {"apps": {"digest": DIGEST}}  # what pulumi up exports, a rollback's target
    assert stack.file_of(("flux", "configurations", "apps", "oci", "digest")) == "stacks/fleet.yaml"
    (stacks / "fleet.yaml").write_text(unpinned)
    pin(stacks, "staging", "{apps: {commit: 1a2b3c4d, branch: main}}")
    with pytest.raises(SpecError) as caught:
        load_stack_file(path, "stacks/Pulumi.staging.yaml")
    assert [str(issue) for issue in caught.value.issues] == [
        "stacks/fleet.yaml: pins.apps: pins commit 1a2b3c4d (branch main), which stack staging's configuration apps "
        "cannot take: it has an OCI source"
    ]


def test_a_fleet_without_pins_is_not_read_by_the_stacks(stacks):
    (stacks / "fleet.yaml").write_text("stages: [{name: a, stacks: [nonexistent]}]\n")  # invalid, but pins nothing
    assert load_stack_file(stacks / "Pulumi.dev.yaml").name == "dev"


def test_promote_reads_a_digest_as_an_oci_pin_and_a_sha_as_a_commit():
    from modules.spec.fleet import pin_of_option

    assert pin_of_option("apps", DIGEST, None).ref_keys == {"digest": DIGEST}
    assert pin_of_option("apps", "1a2b3c4d", "main").ref_keys == {"commit": "1a2b3c4d", "branch": "main"}
    assert pin_of_option("apps", "v1.4.0", None).ref_keys == {"tag": "v1.4.0"}
    with pytest.raises(SpecError) as caught:
        pin_of_option("apps", DIGEST, "main")
    assert "a tag or a digest is pinned alone" in str(caught.value)


@pytest.mark.parametrize("ref", [">=1.4.0 <2.0.0", "^1.4", "~1.4.2", "1.x", "v1.4.x", "1.4.*", "1.2.3 || 1.3.0"])
def test_promote_refuses_a_semver_range_it_could_not_gate_or_roll_back(ref):
    from modules.spec.fleet import pin_of_option

    with pytest.raises(SpecError) as caught:
        pin_of_option("apps", ref, None)
    [issue] = caught.value.issues
    assert issue.file == "--to" and issue.message.startswith("a semver range is not a ref to promote")


@pytest.mark.parametrize("tag", ["v1.4.0", "1.4.0", "release-2026.12", "v1.4.0-rc.1+build.5", "x1.2"])
def test_a_tag_that_looks_like_a_version_is_a_tag(tag):
    from modules.spec.fleet import pin_of_option

    assert pin_of_option("apps", tag, None).ref_keys == {"tag": tag}


@pytest.mark.parametrize(
    "command",
    [["plan"], ["config", "staging"], ["rollout", "--dry-run"], ["promote", "platform", "--to", "v1", "--force"]],
    ids=["plan", "config", "rollout-dry-run", "promote"],
)
def test_a_pin_for_a_configuration_the_stage_does_not_run_is_refused_by_every_command(stacks, monkeypatch, command):
    """Else the stage would keep its old ref while fleet.yaml says otherwise."""
    from typer.testing import CliRunner

    from fluxfleet.cli import app

    pin(stacks, "staging", "{platfrom: {tag: v9.9.9}}")
    monkeypatch.chdir(stacks.parent)
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    assert (
        "stacks/fleet.yaml: stages[1].pins.platfrom: no stack of stage 'staging' declares a Flux configuration "
        "'platfrom' (did you mean 'platform'?)" in result.output  # plan's report is on stdout, the others' errors not
    )
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------------------------- platform pins


def test_a_kubernetes_pin_sets_the_aks_clusters_version_and_its_origin_is_fleet_yaml(stacks):
    pin(stacks, "staging", '{kubernetes: "1.36", flux-extension: 1.23.0, platform: {tag: v1.4.0}}')
    config = read_stack_config(stacks / "Pulumi.staging.yaml", "stacks/Pulumi.staging.yaml")
    spec = config.spec().spec
    assert spec.cluster.kubernetes_version == "1.36"  # over the profile's 1.35
    assert (spec.flux.extension.version, spec.flux.extension.auto_upgrade_minor_version) == ("1.23.0", False)
    assert spec.flux.configurations["platform"].git.tag == "v1.4.0"  # configuration pins beside them, as before
    assert config.origins.file_of(("cluster", "kubernetesVersion")) == "stacks/fleet.yaml"
    assert config.origins.file_of(("flux", "extension", "version")) == "stacks/fleet.yaml"
    assert config.origins.file_of(("cluster", "name")) == "stacks/Pulumi.staging.yaml"
    dev = load_stack_file(stacks / "Pulumi.dev.yaml").spec  # another stage: untouched
    assert (dev.cluster.kubernetes_version, dev.flux.extension.version) == ("1.35", None)


def test_a_kubernetes_pin_skips_an_arc_stack_and_names_it(stacks):
    from modules.spec.fleet import arc_skipped

    fleet = pin(stacks, "edge", '{kubernetes: "1.36", flux-extension: 1.22.2}')
    edge = load_stack_file(stacks / "Pulumi.edge-store-001.yaml").spec  # valid: no kubernetesVersion on Arc
    assert (edge.cluster.kind, edge.cluster.kubernetes_version, edge.flux.extension.version) == ("arc", None, "1.22.2")
    stages = load_fleet(fleet, ["dev", "edge-store-001", "prod-weu", "staging"], "stacks/fleet.yaml").stages
    assert arc_skipped(stages[2], {"edge-store-001"}) == (
        "stage edge pins kubernetes 1.36: Arc cluster(s) edge-store-001 skipped (an Arc cluster's Kubernetes version "
        "is its own to upgrade, not Azure's)"
    )
    assert arc_skipped(stages[1], {"edge-store-001"}) is None


@pytest.mark.parametrize(
    ("pins", "key", "message"),
    [
        ("{kubernetes: 1.30}", "kubernetes", 'write the version in quotes (kubernetes: "1.3"): unquoted, YAML reads'),
        ('{kubernetes: "1.33"}', "kubernetes", "1.33 is not a Kubernetes minor AKS supports (1.34 to 1.37,"),
        ('{kubernetes: "1.36.x"}', "kubernetes", "'1.36.x' is not a Kubernetes version such as 1.36 or 1.36.2"),
        ("{kubernetes: {tag: v1}}", "kubernetes", "a configuration named kubernetes cannot be pinned"),
        ("{flux-extension: {tag: v1}}", "flux-extension", "a configuration named flux-extension cannot be pinned"),
        ("{flux-extension: 1.19.5}", "flux-extension", "1.19.5 is out of support: microsoft.flux supports 1.21"),
        ("{flux-extension: 1.24.0}", "flux-extension", "1.24.0 is newer than the releases fluxfleet knows"),
        ('{flux-extension: "1.23"}', "flux-extension", "'1.23' is not an extension version such as 1.23.0"),
    ],
)
def test_bad_platform_pins_are_one_line_each_naming_the_key_path(stacks, pins, key, message):
    fleet = pin(stacks, "staging", pins)
    with pytest.raises(SpecError) as caught:
        load_fleet(fleet, ["dev", "edge-store-001", "prod-weu", "staging"], "stacks/fleet.yaml")
    [issue] = caught.value.issues
    assert (issue.file, issue.path) == ("stacks/fleet.yaml", f"stages[1].pins.{key}")
    assert message in issue.message and "\n" not in str(issue)


def test_a_node_pools_own_version_stays_within_the_skew_of_the_pinned_control_plane(stacks):
    path = stacks / "Pulumi.staging.yaml"
    text = path.read_text()
    path.write_text(text.replace("mode: User,", "mode: User, orchestratorVersion: '1.34',"))
    assert load_stack_file(path).spec.cluster.node_pools[1].orchestrator_version == "1.34"  # 1.35: one behind
    pin(stacks, "staging", '{kubernetes: "1.37"}')  # three minors ahead of the pool: AKS refuses
    with pytest.raises(SpecError) as caught:
        load_stack_file(path, "stacks/Pulumi.staging.yaml")
    [issue] = caught.value.issues
    assert issue.path == "fluxfleet:cluster.nodePools[1].orchestratorVersion"
    assert "1.34 is outside the skew AKS allows under control plane 1.37" in issue.message
    path.write_text(text.replace("mode: User,", "mode: User, orchestratorVersion: '1.38',"))
    with pytest.raises(SpecError, match="at most 2 minor versions older and never newer"):
        load_stack_file(path)
