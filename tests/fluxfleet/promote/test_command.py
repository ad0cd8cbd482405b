"""`fluxfleet promote`'s work through its package, without typer: each refused option is its one line and exit 2; a
promotion past a stage that does not pin the ref is refused (exit 1), --dry-run too; a whole promotion writes the pin,
a dry run only shows it; --status reads where each stage stands."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxfleet.exits import CommandError, ExitCode, InvalidInput
from fluxfleet.promote.command import PromoteRequest, promote_config, promotion_status_of
from tests.fluxfleet.status.test_status import SUB

FLEET = Path("stacks") / "fleet.yaml"


def request(**options) -> PromoteRequest:
    return PromoteRequest(**{"config": "platform", "subscription": SUB, **options})


@pytest.mark.parametrize(
    ("options", "line"),
    [
        ({}, "fluxfleet promote: --to REF is needed (or --status)"),
        (
            {"to": "v1.4.0", "fleet_file": Path("elsewhere.yaml")},
            "fluxfleet promote: --fleet: pins belong in stacks/fleet.yaml, where `pulumi up` reads them",
        ),
        ({"to": "v1.4.0", "subscription": "not-a-guid"}, "fluxfleet promote: --subscription: 'not-a-guid': "),
        ({"to": "v1.4.0", "sources": ("no-equals-sign",)}, "fluxfleet promote: --source no-equals-sign: expected"),
        ({"to": "v1.4.0", "stage": "nope"}, "fluxfleet promote: "),
        (
            {"to": "v1.4.0", "output": Path("promotion.txt")},
            "fluxfleet promote: --output writes the --status report: add --status, or drop --output",
        ),
        (
            {"to": "v1.4.0", "fmt": "json"},
            "fluxfleet promote: --format is the --status report's: add --status, or drop --format",
        ),
        ({"to": "v1.4.0", "rollback": True}, "fluxfleet promote: --rollback rolls back the rollout --apply runs"),
    ],
)
def test_a_refused_option_is_one_line_and_exit_2_with_nothing_written(project, azure, options, line):
    before = FLEET.read_text()
    with pytest.raises(InvalidInput) as raised:
        promote_config(request(**options))
    [said] = raised.value.lines
    assert said.startswith(line), said
    assert raised.value.exit_code == ExitCode.INVALID_INPUT
    assert FLEET.read_text() == before and azure.asked == []


@pytest.mark.parametrize("dry_run", [False, True])
def test_past_a_stage_that_does_not_pin_the_ref_is_refused_dry_run_too(project, azure, dry_run):
    before = FLEET.read_text()
    with pytest.raises(CommandError) as raised:
        promote_config(request(to="v1.4.0", stage="staging", dry_run=dry_run))
    assert raised.value.exit_code == ExitCode.FAILED
    assert raised.value.lines == (
        "fluxfleet promote: refused: stage dev pins no ref for platform, not tag v1.4.0: promote it there first",
    )
    assert FLEET.read_text() == before


def test_a_whole_promotion_runs_without_the_command_line(project, azure):
    dry = promote_config(request(to="v1.4.0", dry_run=True))
    assert dry.summary == "would promote platform to tag v1.4.0 in stage dev (was not pinned)"
    assert "+      platform: {tag: v1.4.0}" in dry.diff.splitlines() and dry.unchecked is None  # dev is first
    before = FLEET.read_text()
    promoted = promote_config(request(to="v1.4.0"))
    assert promoted.summary == "promote platform to tag v1.4.0 in stage dev (was not pinned)"
    assert (promoted.fleet_file, promoted.promotion.rollout) == ("stacks/fleet.yaml", "fluxfleet rollout --stage dev")
    assert FLEET.read_text() != before and "platform: {tag: v1.4.0}" in FLEET.read_text()


def test_status_reads_where_each_stage_stands(project, azure):
    promote_config(request(to="v1.4.0"))  # dev pinned; dev's cluster still runs main
    stages = {stage.stage: stage for stage in promotion_status_of(request(to=None))}
    assert list(stages) == ["dev", "staging", "production"]
    assert (stages["dev"].pinned, stages["dev"].running, [lag.stack for lag in stages["dev"].lagging]) == (
        "tag v1.4.0",
        0,
        ["dev"],
    )


def test_status_checks_its_output_before_anything_is_read(project, azure):
    with pytest.raises(InvalidInput) as raised:
        promotion_status_of(request(output=project / "missing" / "status.md"))
    [said] = raised.value.lines
    assert said.startswith(f"fluxfleet promote: --output {project / 'missing' / 'status.md'}: "), said
    assert azure.asked == []


@pytest.mark.parametrize("force", [True, False], ids=["force", "ordered"])
def test_apply_writes_no_pin_when_the_rollout_it_promises_could_not_start(project, azure, monkeypatch, force):
    monkeypatch.setenv("PATH", str(project / "no-bin"))  # no pulumi
    before = FLEET.read_bytes()
    with pytest.raises(CommandError) as raised:
        promote_config(request(to="v1.4.0", force=force, apply=True))
    assert raised.value.exit_code == ExitCode.FAILED
    assert raised.value.lines == (
        "fluxfleet rollout: no `pulumi` CLI on PATH: install it (https://www.pulumi.com/docs/install/)",
        "fluxfleet promote: refused: fluxfleet rollout --stage dev cannot start: stacks/fleet.yaml not written",
    )
    assert FLEET.read_bytes() == before
    promote_config(request(to="v1.4.0", force=force))  # without --apply, nothing is promised: it is written
    assert FLEET.read_bytes() != before


def test_status_refuses_the_options_of_a_promotion_it_would_ignore(project, azure):
    with pytest.raises(InvalidInput) as raised:
        promotion_status_of(request(to="v1.4.0", dry_run=True, apply=True, sources=("u=d",)))
    assert raised.value.lines == (
        "fluxfleet promote: --status only shows where each stage stands: drop --to, --dry-run, --apply, --source",
    )
    assert azure.asked == []


# --------------------------------------------------------------------------------------------- the platform's versions


def at_versions(azure, kubernetes: str = "1.35.1", extension: str = "1.22.2", **clusters: str) -> None:
    """Every AKS cluster of the example fleet running Kubernetes `kubernetes` (or its own, `clusters`: name ->
    version) and every cluster the extension `extension`, provisioned."""
    from dataclasses import replace

    from fluxfleet.azure.status import ManagedClusterStatus
    from tests.fluxfleet.status.test_status import EXTENSION

    for name, snapshot in azure.by_name.items():
        flux = replace(EXTENSION, version=extension, current_version=extension)
        changes = {"extensions": (flux,)}
        if snapshot.managed is not None:
            version = clusters.get(name.replace("-", "_"), kubernetes)
            minor = ".".join(version.split(".")[:2])
            changes["managed"] = ManagedClusterStatus(name, "Succeeded", "SystemAssigned", minor, version, True, True)
        azure.by_name[name] = replace(snapshot, **changes)


def test_kubernetes_goes_through_the_aks_stages_one_minor_at_a_time(project, azure):
    from modules.spec import load_stack_file

    at_versions(azure)
    with pytest.raises(CommandError) as raised:  # 1.35 -> 1.37: AKS cannot skip 1.36
        promote_config(request(config="kubernetes", to="1.37"))
    assert raised.value.lines == (
        "fluxfleet promote: refused: stage dev: dev runs kubernetes 1.35: 1.37 skips 1.36: AKS upgrades a control "
        "plane one minor at a time: promote kubernetes --to 1.36 first",
    )
    promoted = promote_config(request(config="kubernetes", to="1.36"))
    assert promoted.summary == "promote kubernetes to 1.36 in stage dev (was not pinned)"
    assert '      kubernetes: "1.36"' in FLEET.read_text().splitlines()
    assert load_stack_file(Path("stacks/Pulumi.dev.yaml")).spec.cluster.kubernetes_version == "1.36"  # `pulumi up`
    with pytest.raises(CommandError) as raised:  # dev's cluster still runs 1.35: not rolled out yet
        promote_config(request(config="kubernetes", to="1.36"))
    assert raised.value.lines == (
        "fluxfleet promote: refused: stage dev: dev runs kubernetes 1.35.1 (Succeeded), not 1.36: fluxfleet rollout "
        "--stage dev first",
    )
    at_versions(azure, aks_dev_weu="1.36.2")  # dev's rollout upgraded its cluster
    assert promote_config(request(config="kubernetes", to="1.36")).promotion.stage == "staging"
    at_versions(azure, aks_dev_weu="1.36.2", aks_staging_weu="1.36.2")
    promoted = promote_config(request(config="kubernetes", to="1.36"))  # edge has no AKS cluster: production
    assert (promoted.promotion.stage, promoted.promotion.before) == ("production", "staging")
    stages = {s.stage: s for s in promotion_status_of(request(config="kubernetes"))}
    assert list(stages) == ["dev", "staging", "production"]
    assert [(s.pinned, s.running, s.stacks) for s in stages.values()] == [("1.36", 1, 1)] * 2 + [("1.36", 0, 1)]
    assert [(lag.stack, lag.revision) for lag in stages["production"].lagging] == [("prod-weu", "1.35.1")]


def test_kubernetes_is_never_pinned_for_a_stage_of_arc_clusters_and_an_arc_stack_beside_aks_is_named(project, azure):
    with pytest.raises(InvalidInput) as raised:
        promote_config(request(config="kubernetes", to="1.36", stage="edge"))
    assert raised.value.lines == (
        "fluxfleet promote: --stage: 'edge': stage edge has no AKS stack: an Arc cluster's Kubernetes version is its "
        "own (AKS stages: dev, staging, production)",
    )
    FLEET.write_text(FLEET.read_text().replace("stacks: [staging]", "stacks: [staging, edge-store-001]"))
    promoted = promote_config(request(config="kubernetes", to="1.36", stage="staging", force=True))
    assert promoted.promotion.notes == [
        "stage staging pins kubernetes 1.36: Arc cluster(s) edge-store-001 skipped (an Arc cluster's Kubernetes "
        "version is its own to upgrade, not Azure's)"
    ]


def test_a_flux_extension_promotion_that_skips_the_required_hop_is_refused(project, azure):
    at_versions(azure, extension="1.20.4")
    before = FLEET.read_text()
    with pytest.raises(CommandError) as raised:
        promote_config(request(config="flux-extension", to="1.23.0"))
    assert raised.value.lines == (
        "fluxfleet promote: refused: stage dev: dev: installed 1.20.4; pinned 1.23.0 skips 1.21.x: upgrade to 1.21.0 "
        "first (pin version: 1.21.0, roll out, then 1.23.0)",
    )
    assert FLEET.read_text() == before
    promoted = promote_config(request(config="flux-extension", to="1.21.0"))  # the hop
    assert promoted.summary == "promote flux-extension to 1.21.0 in stage dev (was not pinned)"
    assert '      flux-extension: "1.21.0"' in FLEET.read_text().splitlines()


@pytest.mark.parametrize(
    ("options", "line"),
    [
        ({"to": "1.33"}, "fluxfleet promote: --to: '1.33': 1.33 is not a Kubernetes minor AKS supports (1.34 to 1.37"),
        ({"to": "v1.36"}, "fluxfleet promote: --to: 'v1.36': 'v1.36' is not a Kubernetes version such as 1.36"),
        ({"to": "1.36", "branch": "main"}, "fluxfleet promote: --branch: 'main': kubernetes pins a version"),
    ],
)
def test_a_kubernetes_version_that_cannot_be_pinned_is_one_line(project, azure, options, line):
    with pytest.raises(InvalidInput) as raised:
        promote_config(request(config="kubernetes", **options))
    [said] = raised.value.lines
    assert said.startswith(line), said
    assert azure.asked == []


def test_a_flux_extension_promotion_scans_the_stages_repository_for_api_versions_the_target_no_longer_serves(
    project, azure, deprecated
):
    from tests.fluxfleet.plan.test_api_scan import EXPECTED_AT_V1

    url = "https://github.com/fluxcd/flux2-kustomize-helm-example"
    at_versions(azure)  # 1.22.2 installed: no hop skipped
    FLEET.write_text(
        FLEET.read_text().replace("    stacks: [dev]\n", "    stacks: [dev]\n    pins: {platform: {tag: v1.0.0}}\n")
    )
    before = FLEET.read_text()
    with pytest.raises(CommandError) as raised:  # dev runs v1.0.0, on API versions 1.23.0 removed
        promote_config(request(config="flux-extension", to="1.23.0", sources=(f"{url}={deprecated}",)))
    assert raised.value.lines == tuple(
        f"fluxfleet promote: refused: stage dev: platform: {line}" for line in EXPECTED_AT_V1
    )
    assert FLEET.read_text() == before
    promoted = promote_config(request(config="flux-extension", to="1.22.2", sources=(f"{url}={deprecated}",)))
    assert promoted.promotion.stage == "dev"  # 1.22.2 still serves them all
