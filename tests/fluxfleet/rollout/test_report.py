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
