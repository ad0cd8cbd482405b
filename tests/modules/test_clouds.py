"""Sovereign clouds in the spec and the program: `cluster.cloud` against `azure-native:environment`, Key Vault names
looked up in the stack's cloud, and the program's own Azure calls (Key Vault, provider registration) made there,
through the real SDK clients over a scripted transport."""

from __future__ import annotations

import copy
import runpy
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pulumi
import pytest

from modules.keyvault import KeyVaultReader
from modules.providers import register_provider
from modules.spec import KeyVaultRef, SpecError, key_vault_ref_from_text, load_stack_file, parse_spec
from tests.azure_transport import ScriptedTransport, example, recording_credentials
from tests.conftest import CANARY, ROOT, fixture_file
from tests.modules.test_keyvault import GET_SECRET

SUB = "11111111-2222-3333-4444-555555555555"

# What each cloud is, as Microsoft documents it (written out here, not taken from the code under test).
SOVEREIGN = [
    pytest.param(
        {
            "cloud": "AzureChinaCloud",
            "environment": "china",
            "arm": "management.chinacloudapi.cn",
            "arm_scope": "https://management.chinacloudapi.cn/.default",
            "authority": "login.chinacloudapi.cn",
            "vault": "vault.azure.cn",
        },
        id="china",
    ),
    pytest.param(
        {
            "cloud": "AzureUSGovernment",
            "environment": "usgovernment",
            "arm": "management.usgovcloudapi.net",
            "arm_scope": "https://management.core.usgovcloudapi.net/.default",  # ARM's audience there differs
            "authority": "login.microsoftonline.us",
            "vault": "vault.usgovcloudapi.net",
        },
        id="usgovernment",
    ),
]


def stack_in(raw: dict[str, Any], cloud: str) -> dict[str, Any]:
    stack = copy.deepcopy(raw)
    stack["cluster"]["cloud"] = cloud
    return stack


def stack_file(directory: Path, text: str, name: str = "cn") -> Path:
    path = directory / f"Pulumi.{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def errors(path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_stack_file(path, f"stacks/{path.name}")
    return str(caught.value).splitlines()


def vault_answering(suffix: str, transport_log: list[Any]) -> ScriptedTransport:
    """A Key Vault of the cloud of `suffix`: its challenge names the cloud's Key Vault resource, as the service's."""
    body = example(fixture_file(*GET_SECRET))
    body["value"] = CANARY

    def respond(request: Any) -> tuple[int, Any, dict[str, str]]:
        transport_log.append(request)
        if "Authorization" not in request.headers:
            challenge = (
                'Bearer authorization="https://login.example/72f988bf-86f1-41af-91ab-2d7cd011db47", '
                f'resource="https://{suffix}"'
            )
            return 401, {"error": {"code": "Unauthorized", "message": "AKV10000"}}, {"WWW-Authenticate": challenge}
        return 200, body, {}

    return ScriptedTransport(respond)


# --------------------------------------------------------------------------------------------- the spec


@pytest.mark.parametrize("cloud", SOVEREIGN)
def test_a_vault_name_is_looked_up_in_the_stacks_cloud(raw, cloud):
    spec = parse_spec(stack_in(raw, cloud["cloud"]), file="stacks/Pulumi.cn.yaml", environment=cloud["environment"])
    assert spec.cluster.cloud == cloud["cloud"]
    ref = spec.flux.configurations["demo"].git.https_key
    assert ref.vault_url == f"https://kv-test.{cloud['vault']}/"
    assert str(ref) == "keyvault:kv-test/github-pat"  # what the stack exports and drift compares: no cloud in it


def test_the_public_cloud_is_the_default_and_needs_no_environment(raw):
    spec = parse_spec(raw, file="stacks/Pulumi.dev.yaml")
    assert spec.cluster.cloud == "AzureCloud"
    assert spec.flux.configurations["demo"].git.https_key == KeyVaultRef("kv-test", "github-pat")
    assert spec.flux.configurations["demo"].git.https_key.vault_url == "https://kv-test.vault.azure.net/"
    assert parse_spec(raw, file="stacks/Pulumi.dev.yaml", environment="public") == spec


def test_an_environment_of_another_cloud_is_an_error_with_file_and_key(tmp_path):
    path = stack_file(
        tmp_path,
        """\
        config:
          azure-native:environment: usgovernment
          fluxfleet:cluster: {kind: arc, name: arc-cn, resourceGroup: rg-cn, cloud: AzureChinaCloud}
        """,
    )
    assert errors(path) == [
        "stacks/Pulumi.cn.yaml: azure-native:environment: 'usgovernment' is AzureUSGovernment, but "
        "fluxfleet:cluster.cloud is AzureChinaCloud (in stacks/Pulumi.cn.yaml): azure-native would deploy to another "
        "cloud than fluxfleet reads; set `azure-native:environment: china`, or change fluxfleet:cluster.cloud"
    ]


def test_a_public_stack_with_a_sovereign_environment_is_an_error(raw):
    with pytest.raises(SpecError) as caught:
        parse_spec(raw, file="stacks/Pulumi.dev.yaml", environment="china")
    assert str(caught.value).startswith(
        "stacks/Pulumi.dev.yaml: azure-native:environment: 'china' is AzureChinaCloud, but fluxfleet:cluster.cloud is "
        "AzureCloud (in stacks/Pulumi.dev.yaml)"
    )


def test_a_sovereign_cloud_without_environment_is_an_error_in_the_file_that_names_the_cloud(tmp_path):
    """The profile says the cloud; the stack file has to say the environment: azure-native reads only that file."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "cn.yaml").write_text(
        "config:\n  fluxfleet:cluster: {kind: arc, cloud: AzureChinaCloud}\n"
    )
    path = stack_file(
        tmp_path,
        """\
        config:
          fluxfleet:profiles: [cn]
          fluxfleet:cluster: {name: arc-cn, resourceGroup: rg-cn}
        """,
    )
    assert errors(path) == [
        "stacks/profiles/cn.yaml: fluxfleet:cluster.cloud: AzureChinaCloud needs `azure-native:environment: china` in "
        "stacks/Pulumi.cn.yaml: without it azure-native deploys to the public cloud"
    ]


def test_an_unknown_cloud_and_an_unknown_environment_are_errors(tmp_path):
    path = stack_file(
        tmp_path,
        """\
        config:
          azure-native:environment: german
          fluxfleet:cluster: {kind: arc, name: arc-de, resourceGroup: rg-de, cloud: AzureGermanCloud}
        """,
    )
    assert errors(path) == [
        "stacks/Pulumi.cn.yaml: fluxfleet:cluster.cloud: Input should be 'AzureCloud', 'AzureChinaCloud' or "
        "'AzureUSGovernment' (got 'AzureGermanCloud')"
    ]
    path.write_text(path.read_text().replace("AzureGermanCloud", "AzureCloud"))
    assert errors(path) == [
        "stacks/Pulumi.cn.yaml: azure-native:environment: 'german' is not one of public, china, usgovernment"
    ]


def test_a_vault_uri_says_its_cloud():
    """As `drift --notify keyvault:URI/SECRET` takes it: the reference is read in the vault's cloud."""
    assert key_vault_ref_from_text("https://kv-cn.vault.azure.cn/pat").cloud == "AzureChinaCloud"
    assert key_vault_ref_from_text("https://kv-gov.vault.usgovcloudapi.net/pat").cloud == "AzureUSGovernment"
    assert key_vault_ref_from_text("kv-cn/pat").cloud == "AzureCloud"


def test_a_vault_uri_of_another_cloud_is_an_error(raw):
    raw = stack_in(raw, "AzureChinaCloud")
    raw["flux"]["configurations"]["demo"]["git"]["httpsKey"]["keyVault"] = "https://kv-test.vault.azure.net/"
    with pytest.raises(SpecError) as caught:
        parse_spec(raw, file="stacks/Pulumi.cn.yaml", environment="china")
    assert str(caught.value) == (
        "stacks/Pulumi.cn.yaml: fluxfleet:flux.configurations.demo.git.httpsKey: kv-test.vault.azure.net is a Key "
        "Vault of AzureCloud, but fluxfleet:cluster.cloud is AzureChinaCloud: name the vault, or give its "
        "vault.azure.cn URI"
    )
    raw["flux"]["configurations"]["demo"]["git"]["httpsKey"]["keyVault"] = "https://kv-test.vault.azure.cn/"
    spec = parse_spec(raw, file="stacks/Pulumi.cn.yaml", environment="china")
    assert spec.flux.configurations["demo"].git.https_key.vault_url == "https://kv-test.vault.azure.cn/"


# --------------------------------------------------------------------------------------------- the program's reads


@pytest.mark.parametrize("cloud", SOVEREIGN)
def test_the_key_vault_reader_reads_the_vault_of_the_stacks_cloud_signed_in_there(monkeypatch, cloud):
    credentials = recording_credentials(monkeypatch)
    requests: list[Any] = []
    reader = KeyVaultReader(transport=vault_answering(cloud["vault"], requests))
    read = reader.get_secret(KeyVaultRef("kv-test", "github-pat", cloud=cloud["cloud"]))
    assert read.value == CANARY
    assert {urlsplit(r.url).hostname for r in requests} == {f"kv-test.{cloud['vault']}"}
    [credential] = credentials
    assert credential.options == {"authority": cloud["authority"]}
    assert credential.scopes == [f"https://{cloud['vault']}/.default"]  # the vault's audience, from its challenge


@pytest.mark.parametrize("cloud", SOVEREIGN)
def test_provider_registration_goes_to_the_stacks_cloud(monkeypatch, cloud):
    credentials = recording_credentials(monkeypatch)
    requests: list[Any] = []

    def respond(request: Any) -> tuple[int, Any, dict[str, str]]:
        requests.append(request)
        return 200, {"namespace": "Microsoft.Kubernetes", "registrationState": "Registered"}, {}

    state = register_provider(
        SUB, "Microsoft.Kubernetes", poll=0, cloud=cloud["cloud"], transport=ScriptedTransport(respond)
    )
    assert state == "Registered"
    assert {urlsplit(r.url).hostname for r in requests} == {cloud["arm"]}
    [credential] = credentials
    assert credential.options == {"authority": cloud["authority"]}
    assert set(credential.scopes) == {cloud["arm_scope"]}


def china_stack_config(raw: dict[str, Any], environment: str | None = "china") -> dict[str, Any]:
    raw = stack_in(raw, "AzureChinaCloud")
    raw["cluster"] = {"kind": "arc", "name": "arc-cn", "resourceGroup": "rg-cn", "cloud": "AzureChinaCloud"}
    raw["flux"]["configurations"]["demo"]["git"]["httpsKey"]["keyVault"] = "kv-cn"
    config = {f"fluxfleet:{key}": value for key, value in raw.items()}
    if environment is not None:
        config["azure-native:environment"] = environment
    return config


def test_the_program_of_a_china_stack_reads_and_registers_in_china(raw, monkeypatch):
    """`pulumi up` of a China stack under the mock engine: the engine passes azure-native:environment to the
    provider (the stack file's key, checked against cluster.cloud); the program's own calls go to China."""
    import modules.keyvault
    from tests.test_main import with_config

    credentials = recording_credentials(monkeypatch)
    requests: list[Any] = []
    real = modules.keyvault.KeyVaultReader
    monkeypatch.setattr(
        modules.keyvault, "KeyVaultReader", lambda: real(transport=vault_answering("vault.azure.cn", requests))
    )

    def main():
        runpy.run_path(str(ROOT / "__main__.py"))
        return pulumi.runtime.get_root_resource().outputs

    outputs, records = with_config(china_stack_config(raw), stack="cn")(main)
    registrations = [r for r in records if r.type.endswith(":ProviderRegistration")]
    assert registrations and {r.inputs["cloud"] for r in registrations} == {"AzureChinaCloud"}
    assert {urlsplit(r.url).hostname for r in requests} == {"kv-cn.vault.azure.cn"}
    assert [c.options for c in credentials] == [{"authority": "login.chinacloudapi.cn"}]
    assert set(outputs["secretVersions"]) == {"keyvault:kv-cn/github-pat"}


def test_the_program_refuses_a_china_stack_whose_stack_file_names_no_environment(raw):
    from tests.test_main import with_config

    with pytest.raises(pulumi.RunError) as caught:
        with_config(china_stack_config(raw, environment=None), stack="cn")(
            lambda: runpy.run_path(str(ROOT / "__main__.py"))
        )
    assert str(caught.value) == (
        "stacks/Pulumi.cn.yaml: fluxfleet:cluster.cloud: AzureChinaCloud needs `azure-native:environment: china` in "
        "stacks/Pulumi.cn.yaml: without it azure-native deploys to the public cloud"
    )
    with pytest.raises(pulumi.RunError) as caught:
        with_config(china_stack_config(raw, environment="usgovernment"), stack="cn")(
            lambda: runpy.run_path(str(ROOT / "__main__.py"))
        )
    assert str(caught.value).startswith(
        "stacks/Pulumi.cn.yaml: azure-native:environment: 'usgovernment' is AzureUSGovernment, but "
        "fluxfleet:cluster.cloud is AzureChinaCloud"
    )


def test_a_public_stack_registers_as_before(raw):
    """No `cloud` input on a public stack's registrations: stacks deployed before clouds were named see no change."""
    from tests.conftest import deploy

    registrations = [r for r in deploy(raw).records if r.type.endswith(":ProviderRegistration")]
    assert registrations and all("cloud" not in r.inputs for r in registrations)


def test_the_2025_flux_configuration_is_written_in_the_stacks_cloud(raw, monkeypatch):
    """fluxfleet's own Flux configuration resource (API 2025-04-01) calls ARM from its dynamic provider: the stack's
    cloud is one of its inputs, and the provider reads and writes there, signed in there."""
    from modules.flux_configuration_v2025 import FluxConfigurationProvider
    from tests.conftest import deploy
    from tests.modules.test_flux_configuration_v2025 import NOT_FOUND, dynamic_props, oci_example_stack

    credentials = recording_credentials(monkeypatch)
    stack = oci_example_stack(raw)
    stack["cluster"]["cloud"] = "AzureChinaCloud"
    props = dynamic_props(deploy(stack, environment="china"), "srs-fluxconfig")
    assert props["cloud"] == "AzureChinaCloud"
    assert "cloud" not in dynamic_props(deploy(oci_example_stack(raw)), "srs-fluxconfig")  # public: as before
    requests: list[Any] = []
    transport = ScriptedTransport(lambda request: requests.append(request) or (404, NOT_FOUND, {}))
    assert FluxConfigurationProvider(transport=transport, retry_total=0).read("id", props).id == ""  # gone
    assert {urlsplit(r.url).hostname for r in requests} == {"management.chinacloudapi.cn"}
    [credential] = credentials
    assert credential.options == {"authority": "login.chinacloudapi.cn"}
    assert set(credential.scopes) == {"https://management.chinacloudapi.cn/.default"}
