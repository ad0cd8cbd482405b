"""Issue 15: a plaintext credential in a stack file is invalid input (exit 2) at its file and key, and its value is
in no output of any command: `plan` in every format, `config` in every format, their stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fluxfleet.cli import app
from tests.fluxfleet.plan.test_plan import fleet_with

PASSWORD = "CanaryPw-7f3a-plaintext"
PEM_BODY = "MIIEowCANARYpemBody0123456789abcdef"
TOKEN = "ghp_" + "CANARYurlToken0123456789abcdef"
CANARIES = (PASSWORD, PEM_BODY, TOKEN)
PEM = f"-----BEGIN RSA PRIVATE KEY-----\\n{PEM_BODY}\\n-----END RSA PRIVATE KEY-----"  # escaped in YAML's quotes
FILE = "stacks/Pulumi.dev.yaml"
SETTING = "fluxfleet:flux.extension.settings.helm-password"
SUBSTITUTION = "fluxfleet:flux.configurations.platform.kustomizations.apps.postBuild.substitute.tls_key"
URL = "fluxfleet:flux.configurations.platform.git.url"


@pytest.fixture
def leaky(tmp_path: Path, monkeypatch) -> Path:
    """dev with a password in its extension settings, a PEM in a postBuild substitution and a token in its git URL."""
    monkeypatch.chdir(tmp_path)
    return fleet_with(
        tmp_path,
        **{
            "extension: {releaseTrain: Stable, autoUpgradeMinorVersion: true}": (
                f"extension:\n      settings: {{helm-password: {PASSWORD}, multiTenancy.enforce: false}}"
            ),
            "retryInterval: 2m}": f'retryInterval: 2m, postBuild: {{substitute: {{tls_key: "{PEM}", env: dev}}}}}}',
            "url: https://github.com/": f"url: https://x-access-token:{TOKEN}@github.com/",
        },
    )


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def assert_no_canary(result) -> None:
    for canary in CANARIES:
        assert canary not in result.stdout and canary not in result.stderr, canary


def test_plan_refuses_plaintext_credentials_at_file_and_key_and_prints_none(leaky):
    for fmt in ("text", "json", "markdown", "sarif"):
        result = invoke("plan", "--stacks-dir", "stacks", "--format", fmt)
        assert result.exit_code == 2, (fmt, result.output)
        assert_no_canary(result)
    text = invoke("plan", "--stacks-dir", "stacks").stdout  # the report; JSON's errors go to stderr as these lines
    errors = invoke("plan", "--stacks-dir", "stacks", "--format", "json").stderr
    for expected in (
        f"{FILE}: {SETTING}: looks like a plaintext credential (its key names one): move it to protectedSettings",
        f"{FILE}: {SUBSTITUTION}: looks like a plaintext credential (a PEM private key): keep it in a Kubernetes",
        f"{FILE}: {URL}: credentials inside the URL: put the user in httpsUser and the key in httpsKey",
    ):
        assert expected in text and expected in errors
    [stack] = json.loads(invoke("plan", "--stacks-dir", "stacks", "--format", "json").stdout)["stacks"]
    assert {(e["file"], e["path"]) for e in stack["errors"]} == {(FILE, SETTING), (FILE, SUBSTITUTION), (FILE, URL)}
    sarif = json.loads(invoke("plan", "--stacks-dir", "stacks", "--format", "sarif").stdout)
    assert len([r for r in sarif["runs"][0]["results"] if r["ruleId"] == "stack-spec"]) == 3


def test_config_shows_plaintext_credentials_as_secret_and_exits_2(leaky):
    for fmt in ("text", "json"):
        result = invoke("config", "dev", "--stacks-dir", "stacks", "--format", fmt)
        assert result.exit_code == 2, (fmt, result.output)
        assert_no_canary(result)
    result = invoke("config", "dev", "--stacks-dir", "stacks", "--format", "json")
    values = {v["key"]: v["value"] for v in json.loads(result.stdout)["values"]}
    assert values[SETTING] == values[SUBSTITUTION] == values[URL] == "[secret]"
    assert values["fluxfleet:flux.extension.settings.multiTenancy.enforce"] is False  # the rest is shown as it is
    assert values["fluxfleet:flux.configurations.platform.kustomizations.apps.postBuild.substitute.env"] == "dev"
    assert f"{SETTING}: looks like a plaintext credential" in result.stderr


def test_plan_inputs_show_a_value_under_a_credential_key_as_secret(tmp_path, monkeypatch):
    """A tag is no secret field and no rule refuses `deploy-token: VALUE`; the plan's inputs still never show it."""
    monkeypatch.chdir(tmp_path)
    fleet_with(
        tmp_path,
        **{"tags: {environment: dev, owner: platform}": f"tags: {{environment: dev, deploy-token: {PASSWORD}}}"},
    )
    for fmt in ("text", "json", "markdown", "sarif"):
        result = invoke("plan", "--stacks-dir", "stacks", "--format", fmt)
        assert result.exit_code == 0, (fmt, result.output)
        assert_no_canary(result)
    [stack] = json.loads(invoke("plan", "--stacks-dir", "stacks", "--format", "json").stdout)["stacks"]
    [cluster] = [r for r in stack["resources"] if r["type"].endswith(":ManagedCluster")]
    assert cluster["inputs"]["tags"] == {"environment": "dev", "deploy-token": "[secret]"}


def test_ordinary_values_still_plan(tmp_path, monkeypatch):
    """False positives: a branch, a path and substitutions that only name credentials pass and are shown."""
    monkeypatch.chdir(tmp_path)
    fleet_with(
        tmp_path,
        **{
            "branch: main": "branch: feature/password-reset",
            "retryInterval: 2m}": (
                "retryInterval: 2m, postBuild: {substitute: {SECRET_NAME: flux-git-auth, "
                "DB_PASSWORD: '${DB_PASSWORD}', token_ttl: 1h}}}"
            ),
        },
    )
    result = invoke("plan", "--stacks-dir", "stacks", "--format", "json")
    assert result.exit_code == 0, result.output
    [stack] = json.loads(result.stdout)["stacks"]
    [flux] = [r for r in stack["resources"] if r["type"].endswith(":FluxConfiguration")]
    assert flux["inputs"]["kustomizations"]["apps"]["postBuild"]["substitute"] == {
        "SECRET_NAME": "flux-git-auth",
        "DB_PASSWORD": "${DB_PASSWORD}",
        "token_ttl": "1h",
    }
    assert flux["inputs"]["gitRepository"]["repositoryRef"]["branch"] == "feature/password-reset"
