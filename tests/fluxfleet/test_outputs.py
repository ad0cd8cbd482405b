"""Where reports go: every output path is checked before any work (exit 2, one line naming the option and the path,
nothing read from Pulumi or Azure), and a write that fails after the work keeps the exit code of the work, the
other reports and the notification (/dev/full stands for a disk that filled up meanwhile)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import fluxfleet.azure.arm as arm
import fluxfleet.plan
import modules.keyvault
from fluxfleet.cli import app
from tests.azure_transport import FakeCredential, ScriptedTransport
from tests.conftest import ROOT
from tests.fluxfleet.drift.test_drift import Cluster
from tests.fluxfleet.drift.test_drift_cli import SUB, scenario
from tests.fluxfleet.test_preflight_cli import Azure

FULL_DISK = Path("/dev/full")
needs_full_disk = pytest.mark.skipif(not FULL_DISK.exists(), reason="no /dev/full on this system")
REAL_READER = arm.ArmReader  # the tests replace arm.ArmReader with one over their transport


def reader_over(respond):
    return lambda: REAL_READER(FakeCredential(), transport=ScriptedTransport(respond), retry_total=0)


class Recorded:
    """An Azure responder that records the URLs it is asked for."""

    def __init__(self, respond):
        self.respond = respond
        self.urls: list[str] = []

    def __call__(self, request):
        self.urls.append(request.url)
        return self.respond(request)


@pytest.fixture
def cluster(monkeypatch) -> tuple[Cluster, Recorded]:
    cluster = Cluster()
    recorded = Recorded(cluster.respond)
    monkeypatch.setattr(arm, "ArmReader", reader_over(recorded))
    monkeypatch.chdir(ROOT)
    return cluster, recorded


def drift(*args: str):
    return CliRunner().invoke(app, ["drift", "--subscription", SUB, *args])


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


# --------------------------------------------------------------------------------------------- before any work


def test_drift_output_in_a_missing_directory_is_exit_2_before_pulumi_or_azure(fake, cluster, tmp_path, monkeypatch):
    _, azure = cluster
    scenario(fake, cluster[0], dev="preview_update.jsonl")

    def no_key_vault():
        raise AssertionError("the webhook was resolved before the outputs were checked")

    monkeypatch.setattr(modules.keyvault, "KeyVaultReader", no_key_vault)
    missing = tmp_path / "missing"
    result = drift("dev", "--output", str(missing / "drift.txt"), "--notify", "keyvault:kv-fleet-ops/teams-webhook")
    assert result.exit_code == 2
    assert one_line(result.stderr) == (
        f"fluxfleet drift: --output {missing / 'drift.txt'}: {missing}: No such file or directory"
    )
    assert fake.calls() == [] and azure.urls == []


@pytest.mark.parametrize("report", ["junit", "json", "markdown"])
def test_drift_report_that_cannot_be_written_is_exit_2_naming_the_option(fake, cluster, tmp_path, report):
    scenario(fake, cluster[0], dev="preview_update.jsonl")
    good = tmp_path / "drift.txt"
    result = drift("dev", "--output", str(good), "--report", f"{report}={tmp_path}")  # a directory
    assert result.exit_code == 2
    assert one_line(result.stderr) == f"fluxfleet drift: --report {tmp_path}: Is a directory"
    assert fake.calls() == [] and cluster[1].urls == [] and not good.exists()


def test_drift_output_under_a_file_is_exit_2(fake, cluster, tmp_path):
    scenario(fake, cluster[0], dev="preview_in_sync.jsonl")
    (tmp_path / "file").write_text("")
    result = drift("dev", "--output", str(tmp_path / "file" / "drift.txt"))
    assert result.exit_code == 2
    assert one_line(result.stderr).endswith(f"{tmp_path / 'file'}: Not a directory")
    assert fake.calls() == []


def test_preflight_output_in_a_missing_directory_is_exit_2_before_azure(monkeypatch, tmp_path):
    subscription = Azure()
    recorded = Recorded(subscription.respond)
    monkeypatch.setattr(arm, "ArmReader", reader_over(recorded))
    monkeypatch.chdir(ROOT)
    target = tmp_path / "missing" / "preflight.json"
    result = CliRunner().invoke(app, ["preflight", "dev", "--subscription", SUB, "--output", str(target)])
    assert result.exit_code == 2
    assert one_line(result.stderr).startswith(f"fluxfleet preflight: --output {target}: ")
    assert recorded.urls == []


def test_plan_output_that_is_a_directory_is_exit_2_before_planning(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    planned = []
    real = fluxfleet.plan.plan_fleet
    monkeypatch.setattr(fluxfleet.plan, "plan_fleet", lambda *a, **k: planned.append(a) or real(*a, **k))
    result = CliRunner().invoke(app, ["plan", "dev", "--output", str(tmp_path)])
    assert result.exit_code == 2
    assert one_line(result.stderr) == f"fluxfleet plan: --output {tmp_path}: Is a directory"
    assert planned == []


# --------------------------------------------------------------------------------------------- after the work


@needs_full_disk
def test_drift_keeps_exit_3_writes_the_other_reports_and_notifies_when_one_write_fails(
    fake, cluster, tmp_path, webhook
):
    scenario(fake, cluster[0], staging="preview_update.jsonl")
    report = tmp_path / "drift.json"
    result = drift(
        "staging",
        "--output",
        str(FULL_DISK),
        "--report",
        f"junit={FULL_DISK}",
        "--report",
        f"json={report}",
        "--notify",
        "env:TEAMS_WEBHOOK",
    )
    assert result.exit_code == 3, result.output
    failures = [line for line in result.stderr.splitlines() if "cannot write" in line]
    assert failures == [
        f"fluxfleet drift: --output {FULL_DISK}: cannot write the report: No space left on device",
        f"fluxfleet drift: --report {FULL_DISK}: cannot write the report: No space left on device",
    ]
    assert json.loads(report.read_text())["stacks"][0]["status"] == "drifted"
    assert len(webhook.bodies) == 1


@needs_full_disk
def test_plan_and_preflight_keep_the_exit_code_of_their_work_when_the_write_fails(monkeypatch):
    monkeypatch.chdir(ROOT)
    plan = CliRunner().invoke(app, ["plan", "dev", "--output", str(FULL_DISK)])
    assert plan.exit_code == 0
    failure, *advisories, counted = plan.stderr.strip().splitlines()
    assert failure == f"fluxfleet plan: --output {FULL_DISK}: cannot write the report: No space left on device"
    assert counted == "planned 1 stack(s), 0 from the cache"
    # dev's GitHub PAT is one of the long-lived credentials flux-source-identity advises against: advisory, exit 0
    assert advisories == [line for line in advisories if line.startswith("stacks/Pulumi.dev.yaml: advisory ")]

    subscription = Azure()
    monkeypatch.setattr(arm, "ArmReader", reader_over(subscription.respond))
    preflight = CliRunner().invoke(app, ["preflight", "dev", "--subscription", SUB, "--output", str(FULL_DISK)])
    assert preflight.exit_code == 0, preflight.output
    assert "cannot write the report: No space left on device" in one_line(preflight.stderr)
