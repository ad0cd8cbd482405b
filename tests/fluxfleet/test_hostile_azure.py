"""What Azure and the cluster say, as drift and preflight pass it on: credentials it quotes masked, terminal escapes
and newlines escaped in text, Markdown and JUnit (which stays valid XML), and every line on stderr escaped."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import fluxfleet.azure.arm as arm
from fluxfleet.cli import app
from fluxfleet.markdown import ZWJ
from tests.azure_transport import FakeCredential, ScriptedTransport
from tests.conftest import CANARY, ROOT
from tests.fluxfleet.drift.test_drift import Cluster
from tests.fluxfleet.drift.test_drift_cli import SUB, scenario, validate_junit
from tests.fluxfleet.test_preflight_cli import Azure
from tests.gfm import rendered

REAL_READER = arm.ArmReader
# A Flux error as a hostile or careless source could word it: a clone URL with its password, a key=value credential,
# a terminal escape that clears the screen, an OSC that retitles it, and a newline that starts a forged line.
HOSTILE = (
    f"unable to clone 'https://flux:{CANARY}@github.com/org/fleet': password=hunter2 refused"
    "\x1b[2J\x1b]0;owned\x07\nFORGED: all stacks in sync"
)
SECRETS = (CANARY, "hunter2")
CONTROLS = ("\x1b", "\x07")


def reader_over(respond):
    return lambda: REAL_READER(FakeCredential(), transport=ScriptedTransport(respond), retry_total=0)


@pytest.fixture
def hostile_cluster(monkeypatch) -> Cluster:
    cluster = Cluster()
    [configuration] = cluster.configurations["value"]
    configuration["properties"].update(provisioningState="Failed", errorMessage=HOSTILE)
    stray = json.loads(json.dumps(configuration))
    stray["name"] = "stray\x1b[31m\nFORGED"
    stray["properties"].update(provisioningState="Succeeded", errorMessage="")
    cluster.configurations["value"].append(stray)
    monkeypatch.setattr(arm, "ArmReader", reader_over(cluster.respond))
    monkeypatch.chdir(ROOT)
    return cluster


def drift(*args: str):
    return CliRunner().invoke(app, ["drift", "--subscription", SUB, *args])


@pytest.mark.parametrize("fmt", ["text", "markdown", "junit"])
def test_drift_reports_mask_and_escape_what_the_cluster_said(fake, hostile_cluster, fmt):
    scenario(fake, hostile_cluster, dev="preview_in_sync.jsonl")
    result = drift("dev", "--format", fmt)
    assert result.exit_code == 3, result.output
    for text in (*SECRETS, *CONTROLS):
        assert text not in result.stdout
    shown = rendered(result.stdout).replace(ZWJ, "") if fmt == "markdown" else result.stdout  # as GitHub shows it
    assert "https://[secret]@github.com/org/fleet" in shown and "password=[secret]" in shown
    assert "\\x1b[2J" in shown and "\\nFORGED" in shown  # shown escaped, not acted on
    assert not any(line.lstrip("-# |").startswith("FORGED") for line in result.stdout.splitlines())
    if fmt == "junit":
        validate_junit(result.stdout)


def test_drift_json_masks_and_leaves_escaping_to_json(fake, hostile_cluster):
    scenario(fake, hostile_cluster, dev="preview_in_sync.jsonl")
    result = drift("dev", "--format", "json")
    for text in (*SECRETS, *CONTROLS):
        assert text not in result.stdout
    messages = [f["message"] for f in json.loads(result.stdout)["stacks"][0]["findings"]]
    assert any(m.startswith("provisioning Failed: unable to clone 'https://[secret]@github.com") for m in messages)


def test_preflight_text_masks_and_escapes_what_azure_said(monkeypatch):
    subscription = Azure()
    [flux] = subscription.extensions["value"]
    flux["properties"].update(
        provisioningState="Failed",
        statuses=[{"code": "InstallationFailed", "message": HOSTILE, "level": "Error"}],
    )
    monkeypatch.setattr(arm, "ArmReader", reader_over(subscription.respond))
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["preflight", "dev", "--subscription", SUB])
    assert result.exit_code == 1
    for text in (*SECRETS, *CONTROLS):
        assert text not in result.output
    [line] = [line for line in result.stdout.splitlines() if line.startswith("  ✗ flux-extension")]
    assert "Failed: InstallationFailed: unable to clone 'https://[secret]@github.com/org/fleet'" in line
    assert line.endswith("\\nFORGED: all stacks in sync")


def test_stderr_lines_are_escaped(fake, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    scenario(fake, Cluster())
    result = drift("dev", "--report", "yaml\x1b[2J=x\nFORGED")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "fluxfleet drift: --report yaml\\x1b[2J=x\\nFORGED: expected FORMAT=FILE, FORMAT one of text, json, "
        "markdown, junit"
    ]
    target = tmp_path / "no\x1b]0;t\x07\nFORGED" / "x.txt"
    result = drift("dev", "--output", str(target))
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert not any(c in result.stderr for c in CONTROLS)
