"""Fixtures of the command-line tests: a scripted `pulumi` CLI first on PATH."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fluxfleet.automation import AutomationRunner
from tests.conftest import ROOT
from tests.tools.fake_pulumi.wrapper import pulumi_wrapper


@dataclass
class FakePulumi:
    scenario_path: Path
    log_path: Path

    def runner(self, scenario: dict, **kwargs: Any) -> AutomationRunner:
        self.scenario_path.write_text(json.dumps(scenario), encoding="utf-8")
        return AutomationRunner(ROOT, **kwargs)

    def calls(self) -> list[dict]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text(encoding="utf-8").splitlines()]

    def argv(self, *command: str) -> list[list[str]]:
        """The argv of every invocation of `command` (e.g. "stack", "select"), without --non-interactive."""
        found = []
        for call in self.calls():
            argv = [arg for arg in call["argv"] if arg != "--non-interactive"]
            if argv[: len(command)] == list(command):
                found.append(call["argv"])
        return found


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePulumi:
    bin_dir = pulumi_wrapper(tmp_path / "bin").parent
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_PULUMI_SCENARIO", str(tmp_path / "scenario.json"))
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(tmp_path / "calls.jsonl"))
    monkeypatch.delenv("PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK", raising=False)
    return FakePulumi(tmp_path / "scenario.json", tmp_path / "calls.jsonl")


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch):
    """A Teams webhook on localhost, its URL in TEAMS_WEBHOOK; it records what drift posts."""
    from tests.fluxfleet.drift.test_drift_cli import Webhook

    hook = Webhook()
    monkeypatch.setenv("TEAMS_WEBHOOK", hook.url)
    yield hook
    hook.close()
