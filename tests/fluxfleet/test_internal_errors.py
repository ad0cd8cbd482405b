"""An unexpected exception in any command: one line on stderr and exit 70, never a traceback (FLUXFLEET_DEBUG=1
shows it); typer's usage errors and typer.Exit are left as they were."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import fluxfleet.plan
from fluxfleet.cli import app
from tests.conftest import ROOT

HOSTILE = "boom \x1b[2J password=hunter2\nfluxfleet: forged second line"


def explode(*args, **kwargs):
    raise RuntimeError(HOSTILE)


@pytest.fixture
def broken_plan(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("FLUXFLEET_DEBUG", raising=False)
    monkeypatch.setattr(fluxfleet.plan, "plan_fleet", explode)


def test_an_unexpected_exception_is_one_escaped_line_and_exit_70(broken_plan):
    result = CliRunner().invoke(app, ["plan", "dev"])
    assert result.exit_code == 70
    assert result.stderr.splitlines() == [
        "fluxfleet: internal error: RuntimeError: boom \\x1b[2J password=[secret] "
        "(FLUXFLEET_DEBUG=1 shows the traceback; please report it)"
    ]
    assert "Traceback" not in result.output and "hunter2" not in result.output


def test_fluxfleet_debug_shows_the_traceback(broken_plan, monkeypatch):
    monkeypatch.setenv("FLUXFLEET_DEBUG", "1")
    result = CliRunner().invoke(app, ["plan", "dev"])
    assert result.exit_code == 70
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "in explode" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("fluxfleet: internal error: RuntimeError: boom")


def test_usage_errors_and_exit_codes_are_typers_own(monkeypatch):
    monkeypatch.chdir(ROOT)
    usage = CliRunner().invoke(app, ["plan", "--format", "yaml"])
    assert usage.exit_code == 2 and "internal error" not in usage.output
    assert CliRunner().invoke(app, ["no-such-command"]).exit_code == 2
    invalid = CliRunner().invoke(app, ["plan", "--stacks-dir", "no-such-dir"])  # a typer.Exit(2) of the command
    assert invalid.exit_code == 2 and "internal error" not in invalid.output


def test_the_console_script_entry_point_has_no_traceback_either(tmp_path):
    # `fluxfleet` runs `app()`, not CliRunner: the same one line and exit 70.
    script = (
        "import fluxfleet.plan\n"
        "def explode(*a, **k): raise KeyError('no such thing')\n"
        "fluxfleet.plan.plan_fleet = explode\n"
        "from fluxfleet.cli import app\n"
        "app(['plan', 'dev'], prog_name='fluxfleet')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, env=_env_without_debug()
    )
    assert result.returncode == 70, result.stderr
    assert result.stderr.splitlines() == [
        "fluxfleet: internal error: KeyError: 'no such thing' (FLUXFLEET_DEBUG=1 shows the traceback; please report it)"
    ]


def _env_without_debug() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "FLUXFLEET_DEBUG"}
