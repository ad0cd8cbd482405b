"""fleet.yaml: the rollout definition, validated like a stack file (file and key path in every error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modules.spec import SpecError, load_fleet
from tests.conftest import ROOT

KNOWN = ["dev", "edge-store-001", "edge-store-002", "prod-weu", "staging"]


def fleet_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return path


def errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_fleet(fleet_file(tmp_path, text), KNOWN, "stacks/fleet.yaml")
    return [str(issue) for issue in caught.value.issues]


def test_the_project_fleet_covers_every_example_stack():
    stacks = sorted(
        p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (ROOT / "stacks").glob("Pulumi.*.yaml")
    )
    fleet = load_fleet(ROOT / "stacks" / "fleet.yaml", stacks)
    assert [s.name for s in fleet.stages] == ["dev", "staging", "edge", "production"]
    assert fleet.unstaged == ()
    assert fleet.stage_of("prod-weu").approval is True
    assert fleet.stage_of("staging").after_stage_wait == 1800


def test_globs_resolve_in_order_and_defaults_apply(tmp_path):
    fleet = load_fleet(fleet_file(tmp_path, "stages:\n  - {name: edge, stacks: ['edge-*', dev]}\n"), KNOWN)
    [edge] = fleet.stages
    assert edge.stacks == ("edge-store-001", "edge-store-002", "dev")
    assert (edge.max_concurrency, edge.max_failures, edge.after_stage_wait, edge.approval) == (1, 0, 0, False)
    assert fleet.gate.flux_compliance is True and fleet.gate.timeout == 900 and fleet.gate.poll_interval == 30
    assert fleet.refuse_cluster_replacement is True
    assert fleet.unstaged == ("prod-weu", "staging")  # reported as a warning by the CLI


def test_a_stack_in_two_stages_is_an_error(tmp_path):
    assert errors(tmp_path, "stages:\n  - {name: a, stacks: [dev]}\n  - {name: b, stacks: ['d*']}\n") == [
        "stacks/fleet.yaml: stages[1].stacks[0]: stack 'dev' is already in stage 'a'"
    ]


def test_a_pattern_matching_no_stack_is_an_error(tmp_path):
    assert errors(tmp_path, "stages:\n  - {name: a, stacks: ['prod-eus*']}\n") == [
        "stacks/fleet.yaml: stages[0].stacks[0]: 'prod-eus*' matches no stack "
        "(known: dev, edge-store-001, edge-store-002, prod-weu, staging)"
    ]


def test_shape_errors_name_the_key(tmp_path):
    text = (
        "gate: {timeout: 10ms}\n"
        "stages:\n"
        "  - {name: Prod, stacks: [dev], maxConcurency: 2}\n"
        "  - {name: b, stacks: [], afterStageWait: soon}\n"
    )
    found = errors(tmp_path, text)
    assert (
        "stacks/fleet.yaml: gate.timeout: '10ms' is not a duration: use whole h, m and s units such as 30s, 10m or 1h30m, or a number of seconds"
        in found
    )
    assert "stacks/fleet.yaml: stages[0].maxConcurency: unknown key (did you mean 'maxConcurrency'?)" in found
    assert any(e.startswith("stacks/fleet.yaml: stages[0].name: 'Prod' is not a DNS-1123 label") for e in found)
    assert any(e.startswith("stacks/fleet.yaml: stages[1].stacks: List should have at least 1 item") for e in found)
    assert any(e.startswith("stacks/fleet.yaml: stages[1].afterStageWait: 'soon' is not a duration") for e in found)


def test_duplicate_stage_names_and_missing_stages(tmp_path):
    assert errors(tmp_path, "stages:\n  - {name: a, stacks: [dev]}\n  - {name: a, stacks: [staging]}\n") == [
        "stacks/fleet.yaml: stages[1].name: duplicate stage 'a'"
    ]
    assert errors(tmp_path, "gate: {}\n") == ["stacks/fleet.yaml: stages: required key is missing"]
    assert errors(tmp_path, "- just a list\n") == [
        "stacks/fleet.yaml: -: a fleet file is a YAML mapping with `stages:`"
    ]


PROFILES = {"dev": ("aks-platform",), "staging": ("aks-platform",), "edge-store-001": ("base", "edge-store")}


def by_profile(tmp_path: Path, text: str):
    return load_fleet(fleet_file(tmp_path, text), KNOWN, "stacks/fleet.yaml", lambda name: PROFILES.get(name, ()))


def test_a_stage_selects_stacks_by_profile_too(tmp_path):
    fleet = by_profile(
        tmp_path,
        "stages:\n  - {name: a, stacks: [staging]}\n  - {name: b, profiles: [aks-platform]}\n"
        "  - {name: edge, stacks: [edge-store-002], profiles: [base]}\n",
    )
    # named stacks first; a profile brings in those no stage names
    assert [stage.stacks for stage in fleet.stages] == [("staging",), ("dev",), ("edge-store-002", "edge-store-001")]
    assert fleet.unstaged == ("prod-weu",)


def test_profile_selection_errors(tmp_path):
    with pytest.raises(SpecError) as caught:
        by_profile(tmp_path, "stages:\n  - {name: a, profiles: [nobody, ../x]}\n  - {name: b}\n")
    assert [str(issue) for issue in caught.value.issues] == [
        "stacks/fleet.yaml: stages[0].profiles[1]: '../x' is not a profile name (letters, digits, '-', '_' and '.', "
        "starting with a letter or digit, at most 100 characters)"
    ]
    with pytest.raises(SpecError) as caught:
        by_profile(tmp_path, "stages:\n  - {name: a, profiles: [nobody]}\n  - {name: b}\n")
    assert [str(issue) for issue in caught.value.issues] == [
        "stacks/fleet.yaml: stages[1]: select stacks by `stacks`, `profiles`, or both",
        "stacks/fleet.yaml: stages[0].profiles[0]: 'nobody' is used by no stack",
    ]


def test_a_stack_whose_profiles_cannot_be_read_is_an_error_of_its_file(tmp_path):
    from modules.spec import SpecIssue

    def profiles_of(name: str):
        if name == "dev":
            raise SpecError([SpecIssue("stacks/Pulumi.dev.yaml", "fluxfleet:profiles[0]", "unknown profile 'x'")])
        return PROFILES.get(name, ())

    with pytest.raises(SpecError) as caught:
        load_fleet(fleet_file(tmp_path, "stages:\n  - {name: a, profiles: [edge-store]}\n"), KNOWN, None, profiles_of)
    assert [str(issue) for issue in caught.value.issues] == [
        "stacks/Pulumi.dev.yaml: fluxfleet:profiles[0]: unknown profile 'x'"
    ]
