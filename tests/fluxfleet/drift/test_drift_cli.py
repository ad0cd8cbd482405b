"""`fluxfleet drift` from the command line: the scripted `pulumi` CLI and the real ArmReader over ARM bodies; every
report format validated (JSON against schemas/drift-report.schema.json, JUnit against junit-10.xsd); exit codes;
--notify against an HTTP server on 127.0.0.1; --remediate."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import pytest
from typer.testing import CliRunner

import fluxfleet.azure.arm as arm
from azure.core.exceptions import ClientAuthenticationError
from fluxfleet.cli import app
from tests.azure_transport import FakeCredential, ScriptedTransport
from tests.conftest import CANARY, DEV_SHARED, ROOT, add_stack_on_the_dev_cluster
from tests.fluxfleet.drift.test_drift import EVENTS, Cluster
from tests.fluxfleet.drift.test_junit import junit_schema

SUB = "11111111-2222-3333-4444-555555555555"
SCHEMA = json.loads((ROOT / "schemas" / "drift-report.schema.json").read_text())


def validate_junit(text: str) -> None:
    junit_schema().validate(text)


arm_reader = arm.ArmReader


@pytest.fixture
def azure(monkeypatch) -> Cluster:
    cluster = Cluster()
    monkeypatch.setattr(arm, "ArmReader", lambda: cluster.reader())
    monkeypatch.chdir(ROOT)
    return cluster


def scenario(fake, cluster: Cluster, **previews: str) -> None:
    """Each named stack previews as the recorded event log given; its deployed secret versions are current."""
    versions = {"keyvault:kv-fleet-dev/github-pat": cluster.secret_version}
    fake.scenario_path.write_text(
        json.dumps(
            {
                "stacks": {
                    stack: {
                        "preview": {"events_file": str(EVENTS / log)} | ({"exit": 255} if "error" in log else {}),
                        "outputs": {"secretVersions": versions},
                        "up": {"events": []},
                    }
                    for stack, log in previews.items()
                }
            }
        )
    )


def drift(*args: str):
    return CliRunner().invoke(app, ["drift", "--subscription", SUB, *args])


def test_in_sync_is_exit_0_in_every_format(fake, azure, tmp_path):
    scenario(fake, azure, dev="preview_in_sync.jsonl")
    result = drift("dev", "--report", f"junit={tmp_path / 'drift.xml'}", "--report", f"json={tmp_path / 'drift.json'}")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "1 stack(s): 1 in sync, 0 drifted, 0 error(s), 0 invalid"
    report = json.loads((tmp_path / "drift.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["stacks"][0]["status"] == "in-sync"
    validate_junit((tmp_path / "drift.xml").read_text())


def test_drift_is_exit_3_and_reported_in_every_format(fake, azure):
    scenario(fake, azure, dev="preview_update.jsonl")
    report = drift("dev", "--format", "json")
    assert report.exit_code == 3
    document = json.loads(report.stdout)
    jsonschema.validate(document, SCHEMA)
    [finding] = document["stacks"][0]["findings"]
    assert finding["kind"] == "infrastructure" and "kustomizations.apps.path" in finding["message"]

    junit = drift("dev", "--format", "junit")
    validate_junit(junit.stdout)
    assert 'failures="1"' in junit.stdout and "kustomizations.apps.path" in junit.stdout

    markdown = drift("dev", "--format", "markdown").stdout
    assert "| dev | ⚠️ drifted | 1 | 0 | 0 |" in markdown

    text = drift("dev").stdout
    assert text.splitlines()[0].startswith("✗ dev  drifted")
    for output in (report.stdout, junit.stdout, markdown, text):
        assert CANARY not in output


def test_one_stack_erroring_while_the_others_are_reported(fake, azure):
    scenario(fake, azure, dev="preview_refresh_error.jsonl", staging="preview_in_sync.jsonl")
    result = drift("dev", "staging", "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert [s["status"] for s in document["stacks"]] == ["error", "in-sync"]
    assert document["stacks"][0]["errors"][0].startswith("infrastructure: pulumi preview failed:")


def test_invalid_stack_is_exit_2(fake, azure, tmp_path):
    (tmp_path / "Pulumi.broken.yaml").write_text("config:\n  fluxfleet:cluster: {kind: aks}\n")
    scenario(fake, azure)
    result = drift("--stacks-dir", str(tmp_path), "--format", "junit")
    assert result.exit_code == 2
    validate_junit(result.stdout)
    assert 'errors="1"' in result.stdout


def test_bad_report_and_notify_options_are_exit_2(fake, azure, monkeypatch):
    scenario(fake, azure, dev="preview_in_sync.jsonl")
    assert drift("dev", "--report", "yaml=out.yaml").exit_code == 2
    literal = drift("dev", "--notify", "https://contoso.webhook.office.com/webhookb2/abc?sig=ZmFrZS1zaWduYXR1cmU")
    assert literal.exit_code == 2 and "ZmFrZS1zaWduYXR1cmU" not in literal.output
    monkeypatch.delenv("TEAMS_WEBHOOK", raising=False)
    assert drift("dev", "--notify", "env:TEAMS_WEBHOOK").exit_code == 2
    assert fake.calls() == []  # nothing ran


def test_remediate_rolls_the_drifted_stack_out_through_a_journaled_rollout(fake, azure, tmp_path):
    scenario(fake, azure, dev="preview_update.jsonl", staging="preview_in_sync.jsonl")
    fleet = tmp_path / "fleet.yaml"  # the project's stages, without the Flux gate (no Azure to gate on here)
    fleet.write_text(
        (ROOT / "stacks" / "fleet.yaml").read_text().replace("fluxCompliance: true", "fluxCompliance: false")
    )
    runs = tmp_path / "runs"
    result = drift("dev", "staging", "--remediate", "--fleet", str(fleet), "--runs-dir", str(runs), "--format", "json")
    assert result.exit_code == 3, result.output  # what was found: drift; the remediation is in the report
    [run] = runs.glob("*.json")
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert [s["remediation"] for s in document["stacks"]] == [f"updated (run {run.stem})", None]
    record = json.loads(run.read_text())
    assert list(record["stacks"]) == ["dev"] and record["status"] == "done"
    [up] = fake.argv("up")
    assert up[up.index("--message") + 1] == f"fluxfleet rollout {run.stem}: dev #1"  # resumable, settled like any


def test_remediate_without_a_fleet_file_is_invalid_before_any_preview(fake, azure, tmp_path):
    scenario(fake, azure, dev="preview_update.jsonl")
    result = drift("dev", "--remediate", "--fleet", str(tmp_path / "none.yaml"))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"fluxfleet drift: --remediate rolls the drifted stacks out stage by stage: it needs {tmp_path / 'none.yaml'} "
        "(or --fleet)"
    )
    assert fake.calls() == []


class Webhook:
    """A Teams incoming webhook on 127.0.0.1: records what it is sent."""

    def __init__(self):
        self.bodies: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                hook.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhookb2/abc?sig=SIGNATURE-SECRET"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_notify_posts_a_card_only_when_something_drifted(fake, azure, webhook):
    scenario(fake, azure, dev="preview_in_sync.jsonl", staging="preview_update.jsonl")
    assert drift("dev", "--notify", "env:TEAMS_WEBHOOK").exit_code == 0
    assert webhook.bodies == []
    result = drift("dev", "staging", "--notify", "env:TEAMS_WEBHOOK")
    assert result.exit_code == 3
    [message] = webhook.bodies
    text = json.dumps(message)
    assert "staging: drifted (infrastructure 1)" in text and "dev:" not in text
    assert CANARY not in text and "SIGNATURE-SECRET" not in text and "SIGNATURE-SECRET" not in result.output


def test_notify_failure_is_a_warning_that_keeps_the_drift_exit_code(fake, azure, monkeypatch):
    monkeypatch.setenv("TEAMS_WEBHOOK", "http://127.0.0.1:9/webhookb2/abc?sig=SIGNATURE-SECRET")  # nothing listens
    scenario(fake, azure, staging="preview_update.jsonl")
    result = drift("staging", "--notify", "env:TEAMS_WEBHOOK")
    assert result.exit_code == 3
    assert "fluxfleet drift: --notify:" in result.stderr and "SIGNATURE-SECRET" not in result.output


class NoToken(FakeCredential):
    def get_token(self, *scopes, **kwargs):
        raise ClientAuthenticationError(
            "DefaultAzureCredential failed to retrieve a token from the included credentials."
        )

    get_token_info = get_token


def test_no_azure_token_is_one_line_before_any_preview(fake, azure, monkeypatch):
    scenario(fake, azure, dev="preview_in_sync.jsonl")
    monkeypatch.setattr(arm, "ArmReader", lambda: arm_reader(NoToken(), transport=ScriptedTransport(azure.respond)))
    result = drift("dev")
    assert result.exit_code == 1
    assert result.stderr.startswith("fluxfleet drift: no Azure token (DefaultAzureCredential failed")
    assert len(result.stderr.strip().splitlines()) == 1
    assert fake.argv("preview") == []


def test_a_stack_whose_cluster_another_stack_names_is_invalid_and_not_previewed(fake, azure, tmp_path):
    scenario(fake, azure, dev="preview_in_sync.jsonl")
    stacks = tmp_path / "stacks"
    shutil.copytree(ROOT / "stacks", stacks)
    add_stack_on_the_dev_cluster(stacks)  # invalid besides, and not asked about
    result = drift("--stacks-dir", str(stacks), "dev", "--format", "json")
    assert result.exit_code == 2, result.output
    [dev] = json.loads(result.stdout)["stacks"]
    assert dev["status"] == "invalid" and DEV_SHARED in json.dumps(dev)
    assert fake.argv("preview") == []
