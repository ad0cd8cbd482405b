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
    ("secret", "shown"),
    [
        (f"{{secure: 'v1:{CANARY}'}}", "[secret]"),  # a Pulumi secret as stored: ciphertext
        (f'"{CANARY}"', "[secret]"),  # a plaintext secret: an error, and still never shown
        (f"{{keyVault: kv-x, secret: s, extra: '{CANARY}'}}", "[secret]"),  # not a reference
        # a token typed into a reference's fields: the reference is shown, the token is not
        (f"{{keyVault: '{CANARY}', secret: github-pat}}", {"keyVault": "[secret]", "secret": "github-pat"}),
        (f"{{keyVault: kv-x, secret: '{CANARY}'}}", {"keyVault": "kv-x", "secret": "[secret]"}),
        (
            f"{{keyVault: kv-x, secret: s, version: '{CANARY}'}}",
            {"keyVault": "kv-x", "secret": "s", "version": "[secret]"},
        ),
    ],
)
def test_secrets_are_masked_in_every_format(stacks, secret, shown):
    path = stacks / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("{keyVault: kv-fleet-dev, secret: github-pat}", secret))
    extension = "    extension: {protectedSettings: {token: " + secret + "}}\n"
    path.write_text(path.read_text().replace("    configurations:\n", extension + "    configurations:\n", 1))
    for fmt in ("text", "json"):
        result = config("dev", "--stacks-dir", str(stacks), "--format", fmt)
        assert CANARY not in result.stdout and CANARY not in result.stderr
    found = values(config("dev", "--stacks-dir", str(stacks), "--format", "json"))
    assert found["fluxfleet:flux.configurations.platform.git.httpsKey"][0] == shown
    assert found["fluxfleet:flux.extension.protectedSettings.token"][0] == shown


CIPHERTEXT = "v1:Q2FuYXJ5Tm9uY2U=:Q0FOQVJZY2lwaGVydGV4dA=="  # as `pulumi config set --secret` stores it


def test_a_secure_value_over_a_profiles_map_stays_secret(stacks):
    """A stack's `{secure: ...}` where its profile has a map replaces that map whole, as a scalar does: merged key by
    key, the ciphertext would lose its marker and be shown as a plain `secure` key."""
    profile = stacks / "profiles" / "aks-platform.yaml"
    profile.write_text(profile.read_text().replace("    kind: aks\n", "    kind: aks\n    tags: {costCenter: cc-1}\n"))
    path = stacks / "Pulumi.dev.yaml"
    path.write_text(
        path.read_text().replace("tags: {environment: dev, owner: platform}", f"tags: {{secure: '{CIPHERTEXT}'}}")
    )
    for fmt in ("text", "json"):
        result = config("dev", "--stacks-dir", str(stacks), "--format", fmt)
        assert CIPHERTEXT not in result.stdout and "Q0FOQVJZ" not in result.stdout and CIPHERTEXT not in result.stderr
    found = values(config("dev", "--stacks-dir", str(stacks), "--format", "json"))
    assert found["fluxfleet:cluster.tags"] == ("[secret]", str(path))
    assert "fluxfleet:cluster.tags.costCenter" not in found


def test_a_reference_is_shown_part_by_part(stacks):
    """A Key Vault reference is no secret: its valid parts are shown; a part that cannot be one is masked."""
    path = stacks / "Pulumi.dev.yaml"
    written = "{keyVault: kv-fleet-dev, secret: github-pat}"
    path.write_text(path.read_text().replace(written, "{keyVault: kv-fleet-dev, secret: 'hunter2 for now'}"))
    found = values(config("dev", "--stacks-dir", str(stacks), "--format", "json"))
    shown = found["fluxfleet:flux.configurations.platform.git.httpsKey"][0]
    assert shown == {"keyVault": "kv-fleet-dev", "secret": "[secret]"}


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


# --- the command's work through its package, without typer ---------------------------------------------------------


def test_the_command_finds_the_stack_by_name_and_returns_its_config_with_its_problems(stacks):
    from fluxfleet.effective_config import ConfigRequest, config_of

    profile = stacks / "profiles" / "edge-store.yaml"
    profile.write_text(profile.read_text().replace("dependsOn: [infra]", "dependsOn: [inf]"))
    shown = config_of(ConfigRequest("edge-store-001", stacks))
    assert (shown.stack, shown.file, shown.profiles) == (
        "edge-store-001",
        str(stacks / "Pulumi.edge-store-001.yaml"),
        ("edge-store",),
    )
    [error] = shown.errors  # shown all the same: the command prints them and exits 2
    assert error.file == str(profile)


def test_the_command_refuses_files_it_cannot_merge_naming_file_and_key(stacks):
    from fluxfleet.effective_config import ConfigRequest, config_of
    from fluxfleet.exits import ExitCode, InvalidInput

    (stacks / "profiles" / "edge-store.yaml").unlink()
    with pytest.raises(InvalidInput) as raised:
        config_of(ConfigRequest("edge-store-001", stacks))
    assert raised.value.exit_code == ExitCode.INVALID_INPUT
    assert raised.value.lines == (
        f"{stacks}/Pulumi.edge-store-001.yaml: fluxfleet:profiles[0]: unknown profile 'edge-store' (known: aks-platform)",
    )
    with pytest.raises(InvalidInput) as raised:
        config_of(ConfigRequest("edge-store-001", stacks / "nowhere"))
    assert raised.value.lines == (f"fluxfleet config: {stacks / 'nowhere'}: no such directory",)
