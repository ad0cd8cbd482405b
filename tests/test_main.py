"""The `pulumi up` path: config read through pulumi.Config, errors as Pulumi RunErrors, the whole __main__."""

from __future__ import annotations

import json
import runpy

import pulumi
import pytest

from fluxfleet.mock_engine import ArmMocks, run_program
from modules.spec import ConfigSecret, SpecError, spec_from_pulumi_config
from tests.conftest import ROOT


def with_config(config: dict, secret_keys: list[str] = (), stack: str = "dev"):
    """Run `fn` inside a mock-engine program whose stack config is `config` (as the engine passes it: JSON)."""

    def run(fn):
        result = {}

        def program():
            pulumi.runtime.set_all_config(
                {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}, list(secret_keys)
            )
            result["value"] = fn()

        try:
            records = run_program(stack, program, ArmMocks())
        finally:
            pulumi.runtime.set_all_config({}, [])
        return result.get("value"), records

    return run


def config_of(raw: dict) -> dict:
    return {f"fluxfleet:{key}": value for key, value in raw.items()}


def test_spec_from_pulumi_config_with_location_default(raw):
    del raw["cluster"]["location"]
    stack, _ = with_config({**config_of(raw), "azure-native:location": "northeurope"})(spec_from_pulumi_config)
    assert stack.name == "dev" and stack.file == "stacks/Pulumi.dev.yaml"
    assert stack.spec.cluster.location == "northeurope"


def test_decrypted_secret_config_is_accepted_only_when_pulumi_says_secret(raw):
    raw["flux"]["configurations"]["demo"]["git"]["httpsKey"] = "ghp_decryptedByTheEngine"
    stack, _ = with_config(config_of(raw), secret_keys=["fluxfleet:flux"])(spec_from_pulumi_config)
    assert stack.spec.flux.configurations["demo"].git.https_key == ConfigSecret("ghp_decryptedByTheEngine")
    with pytest.raises(SpecError) as caught:
        with_config(config_of(raw))(spec_from_pulumi_config)
    assert str(caught.value).startswith(
        "stacks/Pulumi.dev.yaml: fluxfleet:flux.configurations.demo.git.httpsKey: plaintext secret"
    )
    assert "ghp_decrypted" not in str(caught.value)


def test_main_builds_the_stack_and_exports_ids(raw):
    raw["cluster"] = {"kind": "arc", "name": "arc-1", "resourceGroup": "rg-edge"}
    del raw["flux"]["configurations"]["demo"]["git"]["httpsUser"]
    del raw["flux"]["configurations"]["demo"]["git"]["httpsKey"]  # a public repository: no Key Vault read

    def main():
        runpy.run_path(str(ROOT / "__main__.py"))
        return pulumi.runtime.get_root_resource().outputs

    outputs, records = with_config(config_of(raw))(main)
    assert set(outputs) == {
        "clusterId",
        "fluxExtensionId",
        "fluxConfigurationIds",
        "secretVersions",
        "fluxConfigurationRefs",
        "platformVersions",
    }
    types = {r.type for r in records}
    assert {
        "azure-native:kubernetes:ConnectedCluster",
        "azure-native:kubernetesconfiguration:Extension",
        "azure-native:kubernetesconfiguration:FluxConfiguration",
    } <= types


def test_main_reports_bad_config_as_a_run_error(raw):
    raw["cluster"]["kind"] = "eks"
    with pytest.raises(pulumi.RunError) as caught:
        with_config(config_of(raw))(lambda: runpy.run_path(str(ROOT / "__main__.py")))
    assert (
        str(caught.value)
        == "stacks/Pulumi.dev.yaml: fluxfleet:cluster.kind: Input should be 'aks' or 'arc' (got 'eks')"
    )
    assert caught.value.__cause__ is None


def test_a_config_key_that_is_not_structured(raw):
    config = {**config_of(raw), "fluxfleet:cluster": "aks-dev"}  # `pulumi config set fluxfleet:cluster aks-dev`
    with pytest.raises(SpecError) as caught:
        with_config(config)(spec_from_pulumi_config)
    assert str(caught.value) == "stacks/Pulumi.dev.yaml: fluxfleet:cluster: must be a structured (YAML or JSON) value"


def test_pulumi_up_builds_what_plan_shows_for_a_stack_over_profiles(tmp_path, monkeypatch):
    """`pulumi up -s edge-store-001` reads the stack's own keys from the engine and its profiles from the project's
    stacks/profiles (not from the working directory): the program registers exactly what `fluxfleet plan` shows."""
    from ruamel.yaml import YAML

    from fluxfleet.plan import plan_stack

    path = ROOT / "stacks" / "Pulumi.edge-store-001.yaml"
    own = YAML(typ="safe").load(path.read_text())["config"]
    assert "fluxfleet:profiles" in own and "fluxfleet:flux" not in own  # the Flux configuration is the profile's
    monkeypatch.chdir(tmp_path)
    _, records = with_config(own, stack="edge-store-001")(lambda: runpy.run_path(str(ROOT / "__main__.py")))
    planned = plan_stack(path, "stacks/Pulumi.edge-store-001.yaml")
    assert planned.ok and planned.resources
    assert [(r.type, r.name, r.parent, r.inputs, r.options) for r in records] == [
        (r.type, r.name, r.parent, r.inputs, r.options) for r in planned.resources
    ]


def test_pulumi_up_names_the_profile_in_an_error(tmp_path, monkeypatch):
    import modules.spec.load

    (tmp_path / "Pulumi.yaml").write_text("name: fluxfleet\nruntime: python\nstackConfigDir: fleet\n")
    (tmp_path / "fleet" / "profiles").mkdir(parents=True)
    (tmp_path / "fleet" / "profiles" / "edge.yaml").write_text("config:\n  fluxfleet:cluster: {kind: ark}\n")
    monkeypatch.setattr(modules.spec.load, "PROJECT_ROOT", tmp_path)
    config = {"fluxfleet:profiles": ["edge"], "fluxfleet:cluster": {"name": "c", "resourceGroup": "rg"}}
    with pytest.raises(SpecError) as caught:
        with_config(config)(spec_from_pulumi_config)
    assert (
        str(caught.value)
        == "fleet/profiles/edge.yaml: fluxfleet:cluster.kind: Input should be 'aks' or 'arc' (got 'ark')"
    )


def project_with_staging_pinned(root, monkeypatch) -> None:
    """A copy of the project in `root`, its staging stage pinning platform to v1.4.0, taken for the project's root."""
    import shutil

    import modules.spec.load

    shutil.copy(ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", root / "stacks")
    fleet = root / "stacks" / "fleet.yaml"
    fleet.write_text(
        fleet.read_text().replace("  - name: staging\n", "  - name: staging\n    pins: {platform: {tag: v1.4.0}}\n")
    )
    monkeypatch.setattr(modules.spec.load, "PROJECT_ROOT", root)


def test_pulumi_up_applies_the_stage_pin_as_plan_does(tmp_path, monkeypatch):
    """The program finds the stack's stage in the project's fleet.yaml: `pulumi up` deploys the pinned ref."""
    from ruamel.yaml import YAML

    from fluxfleet.plan import plan_stack
    from modules.spec import load_stack_file

    project_with_staging_pinned(tmp_path, monkeypatch)
    path = tmp_path / "stacks" / "Pulumi.staging.yaml"
    own = YAML(typ="safe").load(path.read_text())["config"]
    deployed, _ = with_config(own, stack="staging")(spec_from_pulumi_config)
    planned = load_stack_file(path)
    assert deployed.spec == planned.spec and deployed.spec.flux.configurations["platform"].git.tag == "v1.4.0"
    assert plan_stack(path, "stacks/Pulumi.staging.yaml").refs["platform"].file == "stacks/fleet.yaml"


def test_a_rollback_update_deploys_the_refs_it_is_given_over_the_stage_pin(tmp_path, monkeypatch):
    """`fluxfleet rollout` rolls a stack back by running `pulumi up` with ROLLBACK_REFS_ENV: the program deploys those
    refs over the pin fleet.yaml still holds, and exports the refs it deployed (what a later rollback returns to)."""
    import modules.keyvault
    from ruamel.yaml import YAML

    from modules.spec import ROLLBACK_REFS_ENV
    from tests.conftest import CanaryKeyVault

    project_with_staging_pinned(tmp_path, monkeypatch)
    monkeypatch.setattr(modules.keyvault, "KeyVaultReader", CanaryKeyVault)
    own = YAML(typ="safe").load((tmp_path / "stacks" / "Pulumi.staging.yaml").read_text())["config"]

    def main():
        runpy.run_path(str(ROOT / "__main__.py"))
        return pulumi.runtime.get_root_resource().outputs

    monkeypatch.setenv(ROLLBACK_REFS_ENV, json.dumps({"platform": {"commit": "0ba6f0d2", "branch": "main"}}))
    outputs, records = with_config(own, stack="staging")(main)
    [platform] = [r for r in records if r.type.endswith(":FluxConfiguration") and r.name == "platform"]
    assert platform.inputs["gitRepository"]["repositoryRef"] == {"commit": "0ba6f0d2", "branch": "main"}
    refs = outputs["fluxConfigurationRefs"]
    assert refs["platform"] == {"commit": "0ba6f0d2", "branch": "main"}

    monkeypatch.setenv(ROLLBACK_REFS_ENV, json.dumps({"platform": {"tag": 7}}))
    with pytest.raises(pulumi.RunError) as caught:
        with_config(own, stack="staging")(main)
    assert str(caught.value) == (
        "FLUXFLEET_ROLLBACK_REFS: platform: must map ref keys (branch, tag, semver, commit, digest) to strings"
    )
    monkeypatch.setenv(ROLLBACK_REFS_ENV, json.dumps({"apps-nowhere": {"tag": "v1"}}))
    with pytest.raises(pulumi.RunError) as caught:
        with_config(own, stack="staging")(main)
    assert "apps-nowhere" in str(caught.value) and "does not run from such a source" in str(caught.value)
