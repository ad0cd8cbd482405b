"""fleet.yaml: the rollout definition, validated like a stack file (file and key path in every error)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from modules.spec import PinSpec, SpecError, load_fleet
from modules.spec.fleet import with_pin
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


# ------------------------------------------------------------------------------------ pins for configurations it runs


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """The example stacks: dev, staging and prod-weu run `platform`; the edge stores `gitops-demo` only."""
    import shutil

    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    return tmp_path / "stacks"


def pinned_example(stacks: Path, stage: str, pins: str) -> list[str]:
    fleet = stacks / "fleet.yaml"
    anchor = f"  - name: {stage}\n"
    fleet.write_text(fleet.read_text().replace(anchor, f"{anchor}    pins: {pins}\n"))
    names = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in stacks.glob("Pulumi.*.yaml"))
    with pytest.raises(SpecError) as caught:
        load_fleet(fleet, names, "stacks/fleet.yaml")
    return [str(issue) for issue in caught.value.issues]


def test_a_pin_for_a_configuration_no_stack_of_the_stage_declares_names_what_it_could_mean(example):
    assert pinned_example(example, "staging", "{platfrom: {tag: v9.9.9}}") == [
        "stacks/fleet.yaml: stages[1].pins.platfrom: no stack of stage 'staging' declares a Flux configuration "
        "'platfrom' (did you mean 'platform'?)"
    ]


def test_a_pin_for_another_stages_configuration_names_the_stages_that_run_it(example):
    assert pinned_example(example, "dev", "{gitops-demo: {tag: v1}}") == [
        "stacks/fleet.yaml: stages[0].pins.gitops-demo: no stack of stage 'dev' declares a Flux configuration "
        "'gitops-demo' (stages that run it: edge)"
    ]


# ------------------------------------------------------------------------------------ the pin edit (promote, rollback)


def test_pins_shared_through_an_alias_are_written_out_for_the_stage_changed_only():
    text = (
        "stages:\n"
        "  - name: one\n    stacks: [a]\n    pins: &shared {platform: {tag: v1.0.0}}\n"
        "  - name: two\n    stacks: [b]\n    pins: *shared\n"
    )
    edit = with_pin(text, "stacks/fleet.yaml", "two", "platform", PinSpec(tag="v2.0.0"))
    assert edit.unshared == (
        "stages[1].pins were shared with another stage (a YAML alias or merge key): stage two now has its own"
    )
    assert edit.text == text.replace("pins: *shared", "pins: {platform: {tag: v2.0.0}}")  # stage one as written


def test_pins_a_merge_key_brings_in_are_written_out_for_the_stage_changed_only():
    text = (
        "stages:\n"
        "  - &one\n    name: one\n    stacks: [a]\n    pins: {platform: {tag: v1.0.0}}\n"
        "  - <<: *one\n    name: two\n    stacks: [b]\n"
    )
    edit = with_pin(text, "stacks/fleet.yaml", "two", "platform", PinSpec(tag="v2.0.0"))
    assert edit.unshared and edit.unshared.startswith("stages[1].pins were shared")
    one, two = YAML(typ="safe").load(edit.text)["stages"]
    assert one["pins"] == {"platform": {"tag": "v1.0.0"}} and two["pins"] == {"platform": {"tag": "v2.0.0"}}
    # the merged pins of a map merged in stay merged for the other keys
    text = "stages:\n  - name: one\n    pins: &p\n      platform: {tag: v1}\n  - name: two\n    pins: {<<: *p, x: {tag: v3}}\n"
    edit = with_pin(text, "stacks/fleet.yaml", "two", "platform", PinSpec(tag="v2"))
    one, two = YAML(typ="safe").load(edit.text)["stages"]
    assert one["pins"] == {"platform": {"tag": "v1"}} and two["pins"] == {"platform": {"tag": "v2"}, "x": {"tag": "v3"}}


def test_a_stage_another_one_merges_whole_is_refused_at_its_key_path():
    text = (
        "stages:\n"
        "  - &two\n    name: two\n    stacks: [a]\n    pins: {platform: {tag: v1.0.0}}\n"
        "  - <<: *two\n    name: one\n    stacks: [b]\n"
    )
    with pytest.raises(SpecError) as caught:
        with_pin(text, "stacks/fleet.yaml", "two", "platform", PinSpec(tag="v2.0.0"))
    assert [str(issue) for issue in caught.value.issues] == [
        "stacks/fleet.yaml: stages[0]: stage two is shared with another stage (a YAML alias or merge key of it): a "
        "pin written in it would change both: write the stage out in full"
    ]


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(("", "\n", "", ""), id="plain"),
        pytest.param(("\ufeff", "\n", "", ""), id="bom"),
        pytest.param(("", "\r\n", "", ""), id="crlf"),
        pytest.param(("", "\n", "--- # fleet\n", "...\n# kept after the end\n"), id="markers"),
        pytest.param(("\ufeff", "\r\n", "%YAML 1.2\n---\n", "...\n"), id="all"),
    ],
)
def test_the_pin_edit_keeps_the_file_as_written_byte_for_byte(frame):
    bom, newline, head, tail = frame
    body = "# stages\nstages:\n  - name: dev   # first\n    stacks: &unused [dev]\n    pins: {platform: {tag: v1}}\n"
    text = bom + (head + body + tail).replace("\n", newline)
    edit = with_pin(text, "stacks/fleet.yaml", "dev", "platform", PinSpec(tag="v2"))
    assert edit.text == text.replace("tag: v1", "tag: v2")


def test_a_budget_may_be_a_percentage_and_a_stage_may_set_min_success_and_windows(tmp_path):
    text = """\
stages:
  - name: edge
    stacks: ['edge-*']
    maxFailures: 10%
    minSuccess: "95%"
    windows: [{cron: "0 22 * * 1-4", duration: 4h, timezone: Europe/Amsterdam}]
"""
    [edge] = load_fleet(fleet_file(tmp_path, text), KNOWN).stages
    assert (edge.max_failures, edge.min_success) == ("10%", "95%")
    [window] = edge.windows
    assert (window.cron, window.duration, window.timezone) == ("0 22 * * 1-4", 4 * 3600, "Europe/Amsterdam")


def test_a_bad_budget_or_window_is_one_line_naming_its_key(tmp_path):
    text = """\
stages:
  - name: edge
    stacks: ['edge-*']
    maxFailures: 120%
    minSuccess: 95
    windows: [{cron: "0 22 * *", duration: 4h}]
"""
    assert errors(tmp_path, text) == [
        "stacks/fleet.yaml: stages[0].maxFailures: '120%' is not a number of stacks (0 or more) or a percentage of "
        "them such as 10%",
        "stacks/fleet.yaml: stages[0].minSuccess: 95 is not a percentage such as 95% (0% to 100%, in quotes or not)",
        "stacks/fleet.yaml: stages[0].windows[0].cron: '0 22 * *' is not a cron of five fields (minute hour "
        "day-of-month month day-of-week)",
    ]


def test_budgets_round_as_documented():
    from modules.spec.fleet import failure_budget, success_needed

    assert [failure_budget("10%", n) for n in (9, 10, 15, 20)] == [0, 1, 1, 2]  # down
    assert failure_budget(3, 100) == 3
    assert [success_needed("95%", n) for n in (10, 20, 30)] == [10, 19, 29]  # up
    assert success_needed(None, 30) == 0
