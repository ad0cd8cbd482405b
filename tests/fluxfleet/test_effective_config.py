"""`fluxfleet config STACK`: the effective config with the file each value came from; secrets never shown."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fluxfleet.cli import app
from tests.conftest import ROOT

CANARY = "ghp_CANARYconfig0123456789abcdef"


def config(*args: str):
    return CliRunner().invoke(app, ["config", *args])


@pytest.fixture
def stacks(tmp_path: Path) -> Path:
    directory = tmp_path / "stacks"
    shutil.copytree(ROOT / "stacks", directory)
    return directory


def values(result) -> dict[str, tuple[object, str]]:
    return {v["key"]: (v["value"], v["file"]) for v in json.loads(result.stdout)["values"]}


def test_each_value_shows_the_file_it_came_from(stacks):
    result = config("edge-store-001", "--stacks-dir", str(stacks), "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["stack"], report["profiles"], report["errors"]) == ("edge-store-001", ["edge-store"], [])
    found = values(result)
    stack_file, profile = str(stacks / "Pulumi.edge-store-001.yaml"), str(stacks / "profiles" / "edge-store.yaml")
    assert found["fluxfleet:cluster.name"] == ("flux-demo-arc", stack_file)
    assert found["fluxfleet:cluster.kind"] == ("arc", profile)
    assert found["azure-native:location"] == ("eastus", stack_file)
    assert found["fluxfleet:flux.configurations.gitops-demo.kustomizations.apps.dependsOn"] == (["infra"], profile)
    text = config("edge-store-001", "--stacks-dir", str(stacks)).stdout
    assert f'fluxfleet:cluster.kind = "arc"  ({profile})' in text.splitlines()


def test_a_stack_overriding_its_profile_shows_its_own_file(stacks):
    found = values(config("prod-weu", "--stacks-dir", str(stacks), "--format", "json"))
    assert found["fluxfleet:flux.configurations.platform.kustomizations.apps.path"][1].endswith("Pulumi.prod-weu.yaml")
    assert found["fluxfleet:flux.configurations.platform.kustomizations.apps.prune"][1].endswith("aks-platform.yaml")
    assert "fluxfleet:flux.configurations.platform.git.branch" not in found  # removed by the stack's null
    assert found["fluxfleet:flux.configurations.platform.git.sshPrivateKey"][0] == {
        "keyVault": "kv-fleet-prod-weu",
        "secret": "flux-deploy-key",
    }  # a reference is no secret


@pytest.mark.parametrize(
    "secret",
    [
        f"{{secure: 'v1:{CANARY}'}}",  # a Pulumi secret as stored: ciphertext
        f'"{CANARY}"',  # a plaintext secret: an error, and still never shown
        f"{{keyVault: kv-x, secret: s, extra: '{CANARY}'}}",  # not a reference
    ],
)
def test_secrets_are_masked_in_every_format(stacks, secret):
    path = stacks / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("{keyVault: kv-fleet-dev, secret: github-pat}", secret))
    extension = "    extension: {protectedSettings: {token: " + secret + "}}\n"
    path.write_text(path.read_text().replace("    configurations:\n", extension + "    configurations:\n", 1))
    for fmt in ("text", "json"):
        result = config("dev", "--stacks-dir", str(stacks), "--format", fmt)
        assert CANARY not in result.stdout and CANARY not in result.stderr
    found = values(config("dev", "--stacks-dir", str(stacks), "--format", "json"))
    assert found["fluxfleet:flux.configurations.platform.git.httpsKey"][0] == "[secret]"
    assert found["fluxfleet:flux.extension.protectedSettings.token"][0] == "[secret]"


def test_an_invalid_config_is_shown_with_its_errors_and_exit_2(stacks):
    profile = stacks / "profiles" / "edge-store.yaml"
    profile.write_text(profile.read_text().replace("dependsOn: [infra]", "dependsOn: [inf]"))
    result = config("edge-store-001", "--stacks-dir", str(stacks), "--format", "json")
    assert result.exit_code == 2
    [error] = json.loads(result.stdout)["errors"]
    assert error["file"] == str(profile) and error["message"].startswith("unknown kustomization 'inf'")
    assert result.stderr.strip().startswith(f"{profile}: fluxfleet:flux.configurations.gitops-demo")


def test_a_missing_profile_or_stack_is_one_line_and_exit_2(stacks):
    (stacks / "profiles" / "edge-store.yaml").unlink()
    result = config("edge-store-001", "--stacks-dir", str(stacks))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{stacks}/Pulumi.edge-store-001.yaml: fluxfleet:profiles[0]: unknown profile 'edge-store' (known: aks-platform)"
    ]
    result = config("nope", "--stacks-dir", str(stacks))
    assert result.exit_code == 2 and "Traceback" not in result.output and len(result.stderr.splitlines()) == 1
