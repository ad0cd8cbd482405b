"""`fluxfleet.markdown`: text from elsewhere stays text in every Markdown report, as GitHub renders it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fluxfleet.drift import Finding, FleetDrift, StackDrift
from fluxfleet.drift.report import to_markdown as drift_markdown
from fluxfleet.inventory import Inventory, StackCluster, Undecided
from fluxfleet.inventory_report import render as render_inventory
from fluxfleet.markdown import ZWJ, code, mermaid_label, text
from fluxfleet.plan import FleetPlan, StackPlan
from fluxfleet.plan.report import render as render_plan
from fluxfleet.affected import Affected
from fluxfleet.affected.command import AffectedReport
from fluxfleet.affected.command import render as render_affected
from fluxfleet.promote import Lagging, StageRevision
from fluxfleet.promote import render_status as render_promote_status
from fluxfleet.rollout.journal import Journal, StagePlan
from fluxfleet.rollout.orchestrator import Rollout, Selection, StageEstimate, new_run
from fluxfleet.rollout.refs import AppliedRef, ConfigurationRefs
from fluxfleet.rollout.report import render_dry_run, render_summary
from fluxfleet.simulation import FakeClock, FakeRunner
from fluxfleet.status.model import ConfigurationStatus, FleetStatus, Health, StackStatus
from fluxfleet.status.report import render as render_status
from modules.spec import SpecIssue
from policies.rules import Violation
from tests.fluxfleet.rollout.test_orchestrator import fleet, spec, stage
from tests.gfm import HOSTILE, assert_inert, rendered


def test_hostile_text_renders_inert_in_a_line_and_in_a_table_cell():
    assert_inert(f"- {text(HOSTILE)}\n")
    table = assert_inert(f"| a | b |\n|---|---|\n| {text(HOSTILE)} | after |\n")
    assert table.count("<td>") == 2 and "<td>after</td>" in table  # no cell added, none lost


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("# heading", "# heading"),
        ("#123 and org/repo#45", f"#{ZWJ}123 and org/repo#{ZWJ}45"),
        ("- item", "- item"),
        ("+ item", "+ item"),
        ("1. first", "1. first"),
        ("> quoted", "&gt; quoted"),
        ("1.0.0 and 1) and -x", "1.0.0 and 1) and -x"),
        ("a\\|b", "a\\|b"),  # a backslash of its own stays one
        ("alice@contoso.com", f"alice@{ZWJ}contoso.com"),  # no mail link, no mention
        ("see https://evil.example/x", "see https://evil.example/x"),
        ("v1.0.0 rg-fleet-dev/aks-dev-weu", "v1.0.0 rg-fleet-dev/aks-dev-weu"),
    ],
)
def test_text_starts_no_block_and_reads_as_written(value, shown):
    html = rendered(text(value))
    assert html == f"<p>{shown}</p>\n"


@pytest.mark.parametrize("value", ["a`b", "``x``", "`", "a|b <img src=x>", " x ", "plain"])
def test_a_code_span_holds_any_text(value):
    html = rendered(f"| c |\n|---|\n| {code(value)} |\n")
    shown = value.replace("<", "&lt;").replace(">", "&gt;")
    assert f"<td><code>{shown}</code></td>" in html, html


def test_a_mermaid_label_cannot_end_its_quotes_or_open_html():
    assert mermaid_label('a"] --> x["<img src=x>') == "a#quot;] --#gt; x[#quot;#lt;img src=x#gt;"


# ------------------------------------------------------------------------------- every report, as GitHub shows it


def status_report(hostile: str, tmp_path: Path) -> str:
    configuration = ConfigurationStatus(
        "platform", Health.unhealthy, "Non-Compliant", "Succeeded", hostile, None, hostile
    )
    stack = StackStatus(
        "dev", "stacks/Pulumi.dev.yaml", "dev", "aks", "aks-dev-weu", "rg", None, Health.unhealthy, hostile,
        "Succeeded", configurations=(configuration,),
    )  # fmt: skip
    return render_status(FleetStatus([stack], datetime(2026, 12, 7, tzinfo=UTC), errors=[hostile]), "markdown")


def plan_report(hostile: str, tmp_path: Path) -> str:
    stack = StackPlan(
        stack="dev",
        file="stacks/Pulumi.dev.yaml",
        errors=[SpecIssue("stacks/Pulumi.dev.yaml", "fluxfleet:cluster.name", hostile)],
        violations=[Violation("flux-prune", "advisory", "platform", "t", "urn", "spec.path", hostile)],
        notes=[hostile],
    )
    return render_plan(FleetPlan([stack]), "markdown")


def rollout_report(hostile: str, tmp_path: Path) -> str:
    clock = FakeClock()
    record = new_run(fleet(stage("canary", ["a"], failures=0)), Selection(), clock.now())
    runner = FakeRunner(clock, failing={"a": hostile})
    Rollout(Journal.create(tmp_path, record), {"a": spec("aks-a")}, runner, clock).run()
    return render_summary(record, "markdown")


def rollout_dry_run_report(hostile: str, tmp_path: Path) -> str:
    plan = StagePlan("canary", ["a", "b"], 1, 0, 0, False)
    refs = {"canary": (ConfigurationRefs("platform", (AppliedRef(hostile, "stack", "git", ("a",)),)),)}
    return render_dry_run([StageEstimate(plan, 60.0, 0.0)], "markdown", 0, refs)


def drift_report(hostile: str, tmp_path: Path) -> str:
    stack = StackDrift(
        "dev", "stacks/Pulumi.dev.yaml", findings=[Finding("flux", "platform", hostile)], errors=[hostile]
    )
    return drift_markdown(FleetDrift([stack]))


def inventory_report(hostile: str, tmp_path: Path) -> str:
    cluster = StackCluster("dev", "stacks/Pulumi.dev.yaml", tmp_path, "aks", "aks-dev-weu", "rg", "sub", None, None)
    unchecked = (Undecided(cluster, hostile),)
    return render_inventory(Inventory(hostile, ("sub",), (), (), (), (), (), unchecked, errors=(hostile,)), "markdown")


def promote_status_report(hostile: str, tmp_path: Path) -> str:
    lagging = (Lagging("dev", hostile, hostile),)
    return render_promote_status("platform", [StageRevision("dev", "tag v1.4.0", 1, 0, lagging)], "markdown")


def affected_report(hostile: str, tmp_path: Path) -> str:
    """Reasons name keys and files of the change: a pull request's author writes them."""
    stacks = (Affected("dev", "changed", "stacks/Pulumi.dev.yaml", (hostile,), renamed_from=hostile),)
    return render_affected(AffectedReport(hostile, "a" * 40, hostile, "b" * 40, stacks), "markdown")


def test_stack_names_in_the_rollout_dry_run_make_no_emphasis():
    """A stack name may hold `_` (Pulumi allows it): `_blue_` stays a name, not an emphasised word."""
    plan = StagePlan("canary", ["_blue_", "__green__"], 1, 0, 0, False)
    html = rendered(render_dry_run([StageEstimate(plan, 60.0, 0.0)], "markdown", 0))
    assert "<em>" not in html and "<strong>" not in html and "_blue_, __green__" in html


@pytest.mark.parametrize(
    "report",
    [
        status_report,
        plan_report,
        rollout_report,
        rollout_dry_run_report,
        drift_report,
        inventory_report,
        promote_status_report,
        affected_report,
    ],
)
def test_every_markdown_report_shows_a_hostile_message_inert(report, tmp_path):
    """A compliance message from Azure carries cluster and git content: in a job summary or a PR comment it must not
    load an image, show a link, ping a team, reference an issue, add a table cell or forge a line."""
    markdown = report(HOSTILE, tmp_path)
    assert_inert(markdown)
    assert not any(line.startswith("- forged") for line in markdown.splitlines())
