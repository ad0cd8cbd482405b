"""`fluxfleet drift`'s work without the command line (fluxfleet/drift/command.py): every option checked before the
first preview, what an accepted request reads, and whole runs through `run_drift` and `notify_drift`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fluxfleet.drift import Status
from fluxfleet.drift.command import DriftRequest, check_drift, notify_drift, run_drift
from fluxfleet.drift.report import FORMATS
from fluxfleet.exits import ExitCode, InvalidInput
from tests.conftest import ROOT
import fluxfleet.azure.arm as arm
from tests.fluxfleet.drift.test_drift import Cluster
from tests.fluxfleet.drift.test_drift_cli import SUB, scenario

LITERAL_WEBHOOK = "https://contoso.webhook.office.com/webhookb2/abc?sig=ZmFrZS1zaWduYXR1cmU"


@pytest.fixture(autouse=True)
def in_the_project(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("TEAMS_WEBHOOK", raising=False)


@pytest.fixture
def azure(monkeypatch) -> Cluster:
    cluster = Cluster()
    monkeypatch.setattr(arm, "ArmReader", lambda: cluster.reader())
    return cluster


@pytest.mark.parametrize(
    ("request_", "said"),
    [
        (
            DriftRequest(reports=("yaml=out.yaml",)),
            "--report yaml=out.yaml: expected FORMAT=FILE, FORMAT one of text, json, markdown, junit",
        ),
        (
            DriftRequest(reports=("json",)),
            "--report json: expected FORMAT=FILE, FORMAT one of text, json, markdown, junit",
        ),
        (
            DriftRequest(subscription="nope"),
            "--subscription: 'nope': not a subscription id: a GUID such as 00000000-0000-0000-0000-000000000000",
        ),
        (DriftRequest(stacks_dir=Path("nowhere")), "nowhere: no such directory"),
        (
            DriftRequest(stacks=("dev",), remediate=True, fleet_file=Path("none.yaml")),
            "--remediate rolls the drifted stacks out stage by stage: it needs none.yaml (or --fleet)",
        ),
        (
            DriftRequest(stacks=("dev",), notify="env:TEAMS_WEBHOOK"),
            "--notify: environment variable TEAMS_WEBHOOK is unset or empty: it should hold the Teams webhook URL",
        ),
    ],
)
def test_each_refused_option_is_invalid_input_with_its_message(request_, said):
    with pytest.raises(InvalidInput) as raised:
        check_drift(request_)
    assert raised.value.exit_code is ExitCode.INVALID_INPUT
    assert raised.value.lines == (f"fluxfleet drift: {said}",)


def test_a_webhook_url_given_as_is_is_refused_without_repeating_it():
    with pytest.raises(InvalidInput) as raised:
        check_drift(DriftRequest(stacks=("dev",), notify=LITERAL_WEBHOOK))
    [line] = raised.value.lines
    assert line.startswith("fluxfleet drift: --notify: a webhook URL on the command line ends up in shell history")
    assert "ZmFrZS1zaWduYXR1cmU" not in line


def test_reports_are_checked_before_anything_else(tmp_path):
    request = DriftRequest(output=tmp_path / "missing" / "drift.json", reports=("xml=drift.xml",), subscription="nope")
    with pytest.raises(InvalidInput) as raised:
        check_drift(request)
    assert raised.value.lines[0].startswith("fluxfleet drift: --report xml=drift.xml: ")
    with pytest.raises(InvalidInput) as raised:
        check_drift(DriftRequest(output=tmp_path / "missing" / "drift.json", subscription="nope"))
    assert raised.value.lines[0].startswith(f"fluxfleet drift: --output {tmp_path / 'missing' / 'drift.json'}: ")


def test_an_accepted_request_reads_what_its_options_name(tmp_path, monkeypatch, fake):
    monkeypatch.setenv("TEAMS_WEBHOOK", "https://contoso.webhook.office.com/webhookb2/abc?sig=SIGNATURE-SECRET")
    checked = check_drift(
        DriftRequest(
            stacks=("staging", "dev"),
            reports=(f"junit={tmp_path / 'drift.xml'}", f"markdown={tmp_path / 'drift.md'}"),
            subscription=SUB.upper(),
            remediate=True,
            notify="env:TEAMS_WEBHOOK",
        )
    )
    assert checked.paths == [Path("stacks/Pulumi.staging.yaml"), Path("stacks/Pulumi.dev.yaml")]
    assert checked.extra_reports == (("junit", tmp_path / "drift.xml"), ("markdown", tmp_path / "drift.md"))
    assert checked.subscription == SUB
    assert checked.remediation is not None and checked.remediation.fleet_path == Path("stacks/fleet.yaml")
    assert [stage.name for stage in checked.remediation.fleet.stages] == ["dev", "staging", "edge", "production"]
    assert checked.webhook.endswith("SIGNATURE-SECRET") and "SIGNATURE-SECRET" not in repr(checked)


def test_the_command_line_offers_the_formats_the_package_writes():
    from fluxfleet.cli.drift import DriftFormat

    assert tuple(DriftFormat) == FORMATS


def test_a_whole_run_without_typer(fake, azure, tmp_path):
    scenario(fake, azure, dev="preview_update.jsonl", staging="preview_in_sync.jsonl")
    junit = tmp_path / "drift.xml"
    result = run_drift(
        DriftRequest(stacks=("dev", "staging"), subscription=SUB, fmt="json", reports=(f"junit={junit}",))
    )
    assert result.exit_code is ExitCode.FOUND
    assert [(stack.stack, stack.status) for stack in result.fleet.stacks] == [
        ("dev", Status.drifted),
        ("staging", Status.in_sync),
    ]
    main, extra = result.reports
    assert (main.path, main.option, extra.path, extra.option) == (None, "--output", junit, "--report")
    assert [stack["status"] for stack in json.loads(main.text)["stacks"]] == ["drifted", "in-sync"]
    assert 'failures="1"' in extra.text and not junit.exists()  # the command line writes it
    assert len(fake.argv("preview")) == 2


def test_the_card_goes_out_only_when_something_drifted(fake, azure, webhook):
    scenario(fake, azure, dev="preview_in_sync.jsonl", staging="preview_update.jsonl")
    in_sync = run_drift(DriftRequest(stacks=("dev",), subscription=SUB, notify="env:TEAMS_WEBHOOK"))
    notify_drift(in_sync, warn=pytest.fail)
    assert webhook.bodies == []
    drifted = run_drift(DriftRequest(stacks=("staging",), subscription=SUB, notify="env:TEAMS_WEBHOOK"))
    notify_drift(drifted, warn=pytest.fail)
    [message] = webhook.bodies
    assert "staging: drifted (infrastructure 1)" in json.dumps(message)


def test_a_card_that_cannot_be_sent_is_a_warning_and_keeps_the_exit_code(fake, azure, monkeypatch):
    monkeypatch.setenv("TEAMS_WEBHOOK", "http://127.0.0.1:9/webhookb2/abc?sig=SIGNATURE-SECRET")  # nothing listens
    scenario(fake, azure, staging="preview_update.jsonl")
    result = run_drift(DriftRequest(stacks=("staging",), subscription=SUB, notify="env:TEAMS_WEBHOOK"))
    warnings: list[str] = []
    notify_drift(result, warnings.append)
    [warning] = warnings
    assert warning.startswith("fluxfleet drift: --notify: ") and "SIGNATURE-SECRET" not in warning
    assert result.exit_code is ExitCode.FOUND
