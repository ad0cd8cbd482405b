"""What `fluxfleet rollout --dry-run` shows of the refs each stage applies (fluxfleet/rollout/report.py): a line per
configuration and ref in text, wrapped at 120 columns between stack names; the stacks named only where they are not
the whole stage; a source without a ref said so in every format."""

from __future__ import annotations

import json

from fluxfleet.rollout.journal import StagePlan
from fluxfleet.rollout.orchestrator import StageEstimate
from fluxfleet.rollout.refs import AppliedRef, ConfigurationRefs
from fluxfleet.rollout.report import render_dry_run

STORES = [f"edge-store-{number:03d}" for number in range(1, 41)]


def dry_run(fmt: str, stacks: list[str], *configurations: ConfigurationRefs) -> str:
    plan = StagePlan("edge", stacks, 10, 2, 0, False)
    return render_dry_run([StageEstimate(plan, 600.0, 0.0)], fmt, 0, {"edge": configurations})


def test_the_stacks_of_a_ref_wrap_at_120_columns_and_no_name_is_split():
    most, rest = STORES[:-1], STORES[-1:]
    text = dry_run(
        "text",
        STORES,
        ConfigurationRefs(
            "gitops-demo",
            (
                AppliedRef("branch main", "stack", "git", tuple(most)),
                AppliedRef("tag v2.0.0", "stack", "git", tuple(rest)),
            ),
        ),
    )
    lines = text.splitlines()
    first = lines.index("     40. edge-store-040") + 1
    refs = lines[first : lines.index(next(line for line in lines if line.startswith("estimated total")))]
    assert refs[0].startswith("   applies gitops-demo at branch main (stack's own) on edge-store-001, edge-store-002")
    assert all(len(line) <= 120 for line in refs) and len(refs) > 3
    assert all(line.startswith("      ") for line in refs[1:-1])  # continued under the line it wraps
    assert refs[-1] == "   applies gitops-demo at tag v2.0.0 (stack's own) on edge-store-040"
    named = " ".join(line.strip() for line in refs[:-1]).split(" on ", 1)[1].split(", ")
    assert named == most


def test_a_source_without_a_ref_is_said_so_in_every_format():
    assets = ConfigurationRefs("assets", (AppliedRef(None, None, "bucket", ("edge-store-001",)),))
    stacks = ["edge-store-001"]
    assert "   applies assets from its bucket source (no ref)\n" in dry_run("text", stacks, assets)
    assert "| edge | assets | no ref | bucket source | all |" in dry_run("markdown", stacks, assets)
    [stage] = json.loads(dry_run("json", stacks, assets))["stages"]
    assert stage["configurations"] == [
        {"name": "assets", "refs": [{"ref": None, "origin": None, "source": "bucket", "stacks": ["edge-store-001"]}]}
    ]


def test_a_stage_without_configurations_has_no_ref_lines_and_no_refs_table():
    assert "applies" not in dry_run("text", ["a"]) and "## Refs" not in dry_run("markdown", ["a"])
    assert json.loads(dry_run("json", ["a"]))["stages"][0]["configurations"] == []


def test_a_stack_waiting_for_its_window_says_until_when_in_the_log():
    import io
    from datetime import UTC, datetime

    from fluxfleet.rollout.report import LogProgress

    stream = io.StringIO()
    LogProgress(stream).waiting_for_window("edge-store-001", datetime(2026, 1, 1, 21, tzinfo=UTC))
    assert stream.getvalue() == "  edge-store-001: waiting for its deployment window until 2026-01-01 21:00 UTC\n"


def test_the_dry_run_places_each_start_of_a_windowed_stage_and_states_the_budget():
    from datetime import UTC, datetime

    from modules.spec.windows import WindowSpec

    window = WindowSpec.model_validate({"cron": "0 22 * * *", "duration": "4h"})
    plan = StagePlan("edge", ["a", "b"], 1, 0, 0, False, max_failures_percent="10%", min_success="95%")
    plan.min_succeeded, plan.windows = 2, [window]
    starts = {"a": datetime(2026, 1, 1, 22, tzinfo=UTC), "b": None}
    text = render_dry_run([StageEstimate(plan, 3600, 0, starts)], "text", 0)
    assert "up to 0 failure(s) (10%, rounded down), at least 2 succeeded (minSuccess 95%)" in text
    assert "   starts only inside: 0 22 * * * for 4h (UTC)" in text
    assert "     1. a (starts ~2026-01-01 22:00 UTC, in its windows)" in text
    assert "     2. b (never starts: its windows never meet)" in text
    [stage] = json.loads(render_dry_run([StageEstimate(plan, 3600, 0, starts)], "json", 0))["stages"]
    assert stage["starts"] == {"a": "2026-01-01T22:00:00+00:00", "b": None}
