"""Every rule of the stack spec, good and bad, with the exact file and key path a user sees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modules.spec import (
    ConfigSecret,
    KeyVaultRef,
    SpecError,
    load_stack_file,
    parse_duration,
    parse_spec,
)

FILE = "stacks/Pulumi.dev.yaml"


def errors(raw: dict[str, Any], **kwargs: Any) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(raw, file=FILE, **kwargs)
    return [str(issue) for issue in caught.value.issues]


def demo(raw: dict[str, Any]) -> dict[str, Any]:
    return raw["flux"]["configurations"]["demo"]


def test_valid_spec_reads_into_typed_values(raw):
    spec = parse_spec(raw, file=FILE)
    configuration = spec.flux.configurations["demo"]
    assert configuration.kustomization_order() == ["infra", "apps"]
    assert configuration.git.https_key == KeyVaultRef("kv-test", "github-pat")
    assert spec.providers == ["Microsoft.Kubernetes", "Microsoft.ContainerService", "Microsoft.KubernetesConfiguration"]
    assert spec.flux.extension.release_train == "Stable" and spec.flux.extension.auto_upgrade_minor_version


def test_unknown_dependency_names_file_path_and_known_names(raw):
    demo(raw)["kustomizations"]["apps"]["dependsOn"] = ["infr"]
    assert errors(raw) == [
        f"{FILE}: fluxfleet:flux.configurations.demo.kustomizations.apps.dependsOn[0]: "
        "unknown kustomization 'infr' (known: apps, infra)"
    ]


def test_self_dependency(raw):
    demo(raw)["kustomizations"]["apps"]["dependsOn"] = ["apps"]
    assert errors(raw) == [
        f"{FILE}: fluxfleet:flux.configurations.demo.kustomizations.apps.dependsOn[0]: "
        "a kustomization cannot depend on itself"
    ]


def test_cycle_is_named(raw):
    kustomizations = demo(raw)["kustomizations"]
    kustomizations["infra"]["dependsOn"] = ["config"]
    kustomizations["config"] = {"path": "./config", "dependsOn": ["apps"]}
    [message] = errors(raw)
    assert message.startswith(f"{FILE}: fluxfleet:flux.configurations.demo.kustomizations.")
    cycle = message.split("dependency cycle: ")[1].split(" -> ")
    assert cycle[0] == cycle[-1] and set(cycle) == {"infra", "config", "apps"}
    # each arrow reads "depends on"
    for a, b in zip(cycle, cycle[1:], strict=False):
        assert b in kustomizations[a]["dependsOn"]


def test_duplicate_dependency(raw):
    kustomizations = demo(raw)["kustomizations"]
    kustomizations["apps"]["dependsOn"] = ["infra", "infra"]
    assert errors(raw) == [
        f"{FILE}: fluxfleet:flux.configurations.demo.kustomizations.apps.dependsOn[1]: duplicate 'infra'"
    ]


@pytest.mark.parametrize("name", ["Demo", "demo_1", "-demo", "demo-", "a" * 64])
def test_configuration_name_is_dns_label(raw, name):
    raw["flux"]["configurations"] = {name: demo(raw)}
    message = errors(raw)[0]  # a 64-character name also makes the Flux object names too long
    assert message.startswith(f"{FILE}: fluxfleet:flux.configurations.{name}: configuration name ")
    assert "DNS-1123" in message


def test_kustomization_name_is_dns_label(raw):
    kustomizations = demo(raw)["kustomizations"]
    kustomizations["Apps"] = kustomizations.pop("apps")
    assert errors(raw)[0].startswith(
        f"{FILE}: fluxfleet:flux.configurations.demo.kustomizations.Apps: kustomization name"
    )


def test_flux_object_name_fits_63_characters(raw):
    name = "c" * 30
    raw["flux"]["configurations"] = {name: demo(raw)}
    demo_config = raw["flux"]["configurations"][name]
    demo_config["kustomizations"] = {"k" * 32: {"path": "./x"}}  # 30 + 1 + 32 = 63: fits
    parse_spec(raw, file=FILE)
    demo_config["kustomizations"] = {"k" * 33: {"path": "./x"}}  # 64: does not
    [message] = errors(raw)
    assert f"fluxfleet:flux.configurations.{name}.kustomizations.{'k' * 33}:" in message
    assert "64 characters" in message


@pytest.mark.parametrize("namespace", ["Flux", "a" * 64, "flux.system", ""])
def test_namespace_is_dns_label_not_subdomain(raw, namespace):
    demo(raw)["namespace"] = namespace
    [message] = errors(raw)
    assert message.startswith(f"{FILE}: fluxfleet:flux.configurations.demo.namespace: ")


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("10m", 600), ("1h30m", 5400), ("2h", 7200), ("1h0m5s", 3605), (600, 600)]
)
def test_durations_convert_to_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["10ms", "1h30mfoo", "-5m", "0s", 0, -30, "", "m", "10", "1.5h", "10 m", True, 1.5, "5m1h"]
)
def test_bad_durations_are_errors(raw, text):
    demo(raw)["kustomizations"]["apps"]["syncInterval"] = text
    [message] = errors(raw)
    assert message.startswith(f"{FILE}: fluxfleet:flux.configurations.demo.kustomizations.apps.syncInterval: ")


@pytest.mark.parametrize(
    ("settings", "expect"),
    [
        ({"syncInterval": "1m", "timeout": "2m"}, "timeout is longer than syncInterval"),
        ({"timeout": "15m"}, "timeout is longer than syncInterval (600s unless set)"),
    ],
)
def test_timeout_not_longer_than_the_interval(raw, settings, expect):
    demo(raw)["git"].update(settings)
    demo(raw)["kustomizations"]["apps"].update(settings)
    assert errors(raw) == [
        f"{FILE}: fluxfleet:flux.configurations.demo.git.timeout: {expect}",
        f"{FILE}: fluxfleet:flux.configurations.demo.kustomizations.apps.timeout: {expect}",
    ]


def test_reconciliation_wait_duration_is_iso8601(raw):
    demo(raw)["waitForReconciliation"] = True
    demo(raw)["reconciliationWaitDuration"] = "PT30M"
    assert parse_spec(raw, file=FILE).flux.configurations["demo"].reconciliation_wait_duration == "PT30M"
    demo(raw)["reconciliationWaitDuration"] = "30m"
    assert errors(raw) == [
        f"{FILE}: fluxfleet:flux.configurations.demo.reconciliationWaitDuration: "
        "'30m' is not an ISO-8601 duration such as PT30M, PT1H or P1D"
    ]


@pytest.mark.parametrize(
    "refs", [{}, {"branch": "main", "tag": "v1"}, {"tag": "v1", "semver": ">=1.0"}, {"commit": "0ba6f0d"}]
)
def test_exactly_one_git_ref(raw, refs):
    git = demo(raw)["git"]
    del git["branch"]
    git.update(refs)
    [message] = errors(raw)
    assert message.startswith(f"{FILE}: fluxfleet:flux.configurations.demo.git: ")


def test_commit_goes_with_its_branch(raw):
    demo(raw)["git"]["commit"] = "0ba6f0d3c1b2a4e5f6a7b8c9d0e1f2a3b4c5d6e7"
    assert parse_spec(raw, file=FILE).flux.configurations["demo"].git.commit.startswith("0ba6f0d")


@pytest.mark.parametrize(
    ("url", "expect"),
    [
        ("http://github.com/org/repo", "http:// sends"),
        ("https://user:pat@github.com/org/repo", "credentials inside the URL"),
        ("https://git@github.com/org/repo", "credentials inside the URL"),
        ("ftp://github.com/org/repo", "must start with https://, ssh:// or git@"),
        ("github.com/org/repo", "must start with"),
    ],
)
def test_git_url_rules(raw, url, expect):
    demo(raw)["git"]["url"] = url
    messages = errors(raw)
    assert any(m.startswith(f"{FILE}: fluxfleet:flux.configurations.demo.git.url: ") and expect in m for m in messages)
    assert all("pat@" not in m for m in messages)  # the URL's credentials are not echoed


def test_ssh_credentials_only_with_ssh_urls(raw):
    git = demo(raw)["git"]
    git["sshPrivateKey"] = {"keyVault": "kv-test", "secret": "deploy-key"}
    assert f"{FILE}: fluxfleet:flux.configurations.demo.git.sshPrivateKey: only with an ssh:// or git@ URL" in errors(
        raw
    )


@pytest.mark.parametrize("url", ["ssh://git@github.com/org/repo", "git@github.com:org/repo.git"])
def test_https_credentials_only_with_https_urls(raw, url):
    demo(raw)["git"]["url"] = url
    assert errors(raw) == [
        f"{FILE}: fluxfleet:flux.configurations.demo.git.httpsUser: only with an https:// URL",
        f"{FILE}: fluxfleet:flux.configurations.demo.git.httpsKey: only with an https:// URL",
    ]


def test_https_user_and_key_go_together(raw):
    del demo(raw)["git"]["httpsKey"]
    assert errors(raw) == [
        f"{FILE}: fluxfleet:flux.configurations.demo.git.httpsKey: httpsUser and httpsKey go together"
    ]


def test_plaintext_secret_is_an_error_and_is_not_echoed(raw):
    demo(raw)["git"]["httpsKey"] = "ghp_plaintextCANARY0123456789"
    [message] = errors(raw)
    assert message.startswith(f"{FILE}: fluxfleet:flux.configurations.demo.git.httpsKey: plaintext secret")
    assert "CANARY" not in message


def test_pulumi_secret_config_is_accepted(raw):
    demo(raw)["git"]["httpsKey"] = {"secure": "v1:AAAABBBB"}  # as `pulumi config set --secret` stores it
    assert parse_spec(raw, file=FILE).flux.configurations["demo"].git.https_key == ConfigSecret(None)
    # decrypted by the engine: a plain string, allowed because Pulumi marks `fluxfleet:flux` secret
    demo(raw)["git"]["httpsKey"] = "ghp_decrypted"
    key = parse_spec(raw, file=FILE, plain_strings_are_secret=True).flux.configurations["demo"].git.https_key
    assert key == ConfigSecret("ghp_decrypted") and "ghp_decrypted" not in repr(key)


@pytest.mark.parametrize(
    "ref",
    [
        {"keyVault": "kv", "secret": "x"},
        {"keyVault": "kv-test", "secret": "a_b"},
        {"keyVault": "kv-test"},
        {"keyVault": "kv-test", "secret": "x", "version": "latest"},
        {"keyVault": "kv-test", "secret": "x", "extra": 1},
    ],
)
def test_bad_key_vault_references(raw, ref):
    demo(raw)["git"]["httpsKey"] = ref
    [message] = errors(raw)
    assert message.startswith(f"{FILE}: fluxfleet:flux.configurations.demo.git.httpsKey: ")


def test_key_vault_reference_by_uri(raw):
    demo(raw)["git"]["httpsKey"] = {
        "keyVault": "https://kv-test.vault.azure.net/",
        "secret": "pat",
        "version": "0123456789abcdef0123456789abcdef",
    }
    key = parse_spec(raw, file=FILE).flux.configurations["demo"].git.https_key
    assert key.vault_url == "https://kv-test.vault.azure.net/" and key.version == "0123456789abcdef0123456789abcdef"


def test_secure_value_in_a_plain_field(raw):
    demo(raw)["git"]["httpsUser"] = {"secure": "v1:xyz"}
    assert errors(raw) == [
        f"{FILE}: fluxfleet:flux.configurations.demo.git.httpsUser: "
        "is a Pulumi secret, but this key is not a secret field: set it without --secret"
    ]


def test_unknown_keys_suggest_the_right_one(raw):
    demo(raw)["kustomizations"]["apps"]["dependOn"] = ["infra"]
    raw["clustr"] = {}
    assert errors(raw) == [
        f"{FILE}: fluxfleet:flux.configurations.demo.kustomizations.apps.dependOn: unknown key (did you mean 'dependsOn'?)",
        f"{FILE}: fluxfleet:clustr: unknown key (did you mean 'cluster'?)",
    ]


def test_unknown_keys_in_list_items_and_secret_references(raw):
    raw["cluster"]["nodePools"][0]["vmsize"] = "Standard_D4s_v5"
    raw["flux"]["configurations"]["demo"]["kustomizations"]["apps"]["postBuild"] = {
        "substituteFrom": [{"kind": "Secret", "name": "v", "optinal": True}]
    }
    assert errors(raw) == [
        f"{FILE}: fluxfleet:cluster.nodePools[0].vmsize: unknown key (did you mean 'vmSize'?)",
        f"{FILE}: fluxfleet:flux.configurations.demo.kustomizations.apps.postBuild.substituteFrom[0].optinal: "
        "unknown key (did you mean 'optional'?)",
    ]


def test_many_errors_reported_together(raw):
    raw["cluster"]["kind"] = "eks"
    demo(raw)["kustomizations"]["apps"]["syncInterval"] = "10ms"
    demo(raw)["scope"] = "tenant"
    assert errors(raw) == [
        f"{FILE}: fluxfleet:cluster.kind: Input should be 'aks' or 'arc' (got 'eks')",
        f"{FILE}: fluxfleet:flux.configurations.demo.scope: Input should be 'cluster' or 'namespace' (got 'tenant')",
        f"{FILE}: fluxfleet:flux.configurations.demo.kustomizations.apps.syncInterval: "
        "'10ms' is not a duration: use whole h, m and s units such as 30s, 10m or 1h30m, or a number of seconds",
    ]


def test_exactly_one_source(raw):
    demo(raw)["bucket"] = {"url": "https://minio.example.com", "bucketName": "flux"}
    assert errors(raw) == [
        f"{FILE}: fluxfleet:flux.configurations.demo: set exactly one source: git, bucket, azureBlob or oci (found: git, bucket)"
    ]


def test_bucket_defaults_to_tls_and_pairs_keys(raw):
    del demo(raw)["git"]
    demo(raw)["bucket"] = {"url": "https://minio.example.com", "bucketName": "flux", "accessKey": "AKIA"}
    assert errors(raw) == [
        f"{FILE}: fluxfleet:flux.configurations.demo.bucket.secretKey: accessKey and secretKey go together"
    ]
    demo(raw)["bucket"]["secretKey"] = {"keyVault": "kv-test", "secret": "minio"}
    assert parse_spec(raw, file=FILE).flux.configurations["demo"].bucket.insecure is False
    demo(raw)["bucket"]["url"] = "http://minio.example.com"
    assert errors(raw) == [
        f"{FILE}: fluxfleet:flux.configurations.demo.bucket.url: an http:// endpoint needs insecure: true; prefer https://"
    ]


def test_azure_blob_one_auth_method(raw):
    del demo(raw)["git"]
    demo(raw)["azureBlob"] = {
        "url": "https://acct.blob.core.windows.net",
        "containerName": "flux",
        "accountKey": {"keyVault": "kv-test", "secret": "k"},
        "sasToken": {"keyVault": "kv-test", "secret": "s"},
    }
    assert errors(raw) == [
        f"{FILE}: fluxfleet:flux.configurations.demo.azureBlob: set at most one of accountKey, sasToken, managedIdentity "
        "(found: accountKey, sasToken)"
    ]


def test_kustomization_path_stays_inside_the_source(raw):
    demo(raw)["kustomizations"]["apps"]["path"] = "../other"
    assert errors(raw) == [
        f"{FILE}: fluxfleet:flux.configurations.demo.kustomizations.apps.path: "
        "must be a path inside the source, relative to its root (no leading / or ..)"
    ]


def test_arc_cluster_takes_no_aks_keys(raw):
    raw["cluster"]["kind"] = "arc"
    assert errors(raw) == [
        f"{FILE}: fluxfleet:cluster.kubernetesVersion: only for kind 'aks': an Arc cluster is adopted as it is",
        f"{FILE}: fluxfleet:cluster.nodePools: only for kind 'aks': an Arc cluster is adopted as it is",
    ]


def test_aks_location_defaults_to_azure_native_location(raw):
    del raw["cluster"]["location"]
    assert errors(raw) == [
        f"{FILE}: fluxfleet:cluster.location: an AKS cluster needs a location: set it here or in azure-native:location"
    ]
    assert parse_spec(raw, file=FILE, default_location="northeurope").cluster.location == "northeurope"


@pytest.mark.parametrize(
    ("pools", "path", "expect"),
    [
        ([{"name": "user", "vmSize": "x", "count": 1}], "nodePools", "mode: System"),
        (
            [{"name": "system", "vmSize": "x", "mode": "System"}],
            "nodePools[0]",
            "set count, or both minCount and maxCount",
        ),
        (
            [{"name": "system", "vmSize": "x", "mode": "System", "count": 2, "minCount": 1, "maxCount": 3}],
            "nodePools[0]",
            "not both",
        ),
        (
            [{"name": "system", "vmSize": "x", "mode": "System", "minCount": 4, "maxCount": 3}],
            "nodePools[0].minCount",
            "greater than maxCount",
        ),
        (
            [{"name": "system", "vmSize": "x", "mode": "System", "count": 1}] * 2,
            "nodePools[1].name",
            "duplicate node pool",
        ),
        ([{"name": "System-Pool", "vmSize": "x", "mode": "System", "count": 1}], "nodePools[0].name", "node pool name"),
    ],
)
def test_node_pool_rules(raw, pools, path, expect):
    raw["cluster"]["nodePools"] = pools
    messages = errors(raw)
    assert any(m.startswith(f"{FILE}: fluxfleet:cluster.{path}: ") and expect in m for m in messages), messages


@pytest.mark.parametrize(
    ("settings", "path", "expect"),
    [
        ({"authorizedIpRanges": ["203.0.113.0/33"]}, "authorizedIpRanges[0]", "'203.0.113.0/33' is not an IP range"),
        ({"authorizedIpRanges": ["203.0.113.1/24"]}, "authorizedIpRanges[0]", "'203.0.113.1/24' is not an IP range"),
        (
            {"authorizedIpRanges": ["203.0.113.0/24"], "privateCluster": True},
            "authorizedIpRanges",
            "a private cluster has no public API server to restrict",
        ),
        ({"networkPolicy": "cilium", "networkPlugin": "kubenet"}, "networkPolicy", "cilium needs networkPlugin: azure"),
        ({"autoUpgradeChannel": "weekly"}, "autoUpgradeChannel", "'weekly'"),
    ],
)
def test_api_server_access_network_and_upgrade_rules(raw, settings, path, expect):
    raw["cluster"].update(settings)
    [error] = errors(raw)
    assert error.startswith(f"{FILE}: fluxfleet:cluster.{path}: ") and expect in error


def test_providers_must_include_what_flux_needs(raw):
    raw["providers"] = ["Microsoft.Kubernetes", "Microsoft.KubernetesConfiguration", "Microsoft.Kubernetes"]
    assert errors(raw) == [
        f"{FILE}: fluxfleet:providers[2]: duplicate 'Microsoft.Kubernetes'",
        f"{FILE}: fluxfleet:providers: Flux on Azure needs Microsoft.ContainerService registered too",
    ]


def test_features_are_namespace_slash_name(raw):
    raw["features"] = ["Microsoft.ContainerService/AKS-ExtensionManager"]  # legacy, accepted when listed
    assert parse_spec(raw, file=FILE).features == ["Microsoft.ContainerService/AKS-ExtensionManager"]
    raw["features"] = ["AKS-ExtensionManager"]
    assert errors(raw)[0].startswith(
        f"{FILE}: fluxfleet:features[0]: 'AKS-ExtensionManager' is not Namespace/FeatureName"
    )


def test_pinned_extension_version_needs_auto_upgrade_off(raw):
    raw["flux"]["extension"] = {"version": "1.22.2"}
    assert errors(raw) == [
        f"{FILE}: fluxfleet:flux.extension.version: a pinned version needs autoUpgradeMinorVersion: false"
    ]
    raw["flux"]["extension"]["autoUpgradeMinorVersion"] = False
    assert parse_spec(raw, file=FILE).flux.extension.version == "1.22.2"


def test_extension_settings_are_strings_and_protected_settings_secret(raw):
    raw["flux"]["extension"] = {
        "settings": {"multiTenancy.enforce": False, "replicas": 2},
        "protectedSettings": {"token": "plain"},
    }
    assert errors(raw) == [
        f"{FILE}: fluxfleet:flux.extension.protectedSettings.token: plaintext secret: use a Key Vault "
        "reference {keyVault: NAME, secret: NAME} or `pulumi config set --secret --path` for this key"
    ]
    raw["flux"]["extension"]["protectedSettings"] = {"token": {"keyVault": "kv-test", "secret": "t"}}
    assert parse_spec(raw, file=FILE).flux.extension.settings == {"multiTenancy.enforce": "false", "replicas": "2"}


CONTROLLERS = f"{FILE}: fluxfleet:flux.extension.controllers"
CLIENT_ID = "0a1b2c3d-1111-2222-3333-444455556666"


def test_typed_controller_settings_read_into_typed_values(raw):
    raw["flux"]["extension"] = {
        "controllers": {
            "source": {"enabled": True},
            "kustomize": {"concurrent": 8, "requeueDependency": "1m"},
            "imageAutomation": {"enabled": True},
            "imageReflector": {"enabled": True},
            "multiTenancy": {"enforce": False},
            "workloadIdentity": {"enable": True, "azureClientId": CLIENT_ID},
            "useKubeletIdentity": False,
        }
    }
    controllers = parse_spec(raw, file=FILE).flux.extension.controllers
    assert controllers.kustomize.concurrent == 8 and controllers.kustomize.requeue_dependency == 60
    assert controllers.multi_tenancy.enforce is False and controllers.workload_identity.azure_client_id == CLIENT_ID
    assert controllers.helm.enabled is None  # unset: the extension's own default, no key sent


@pytest.mark.parametrize(
    ("controllers", "path", "message"),
    [
        ({"kustomize": {"concurrent": 0}}, "kustomize.concurrent", "Input should be greater than or equal to 1"),
        ({"kustomize": {"concurrent": 101}}, "kustomize.concurrent", "Input should be less than or equal to 100"),
        ({"kustomize": {"concurrent": "6"}}, "kustomize.concurrent", "Input should be a valid integer"),
        (
            {"kustomize": {"requeueDependency": "10ms"}},
            "kustomize.requeueDependency",
            "'10ms' is not a duration: use whole h, m and s units such as 30s, 10m or 1h30m, or a number of seconds",
        ),
        ({"helm": {"enabled": "false"}}, "helm.enabled", "Input should be a valid boolean"),
        ({"multiTenancy": {"enforce": 1}}, "multiTenancy.enforce", "Input should be a valid boolean"),
        (
            {"workloadIdentity": {"enable": True, "azureClientId": "abc"}},
            "workloadIdentity.azureClientId",
            "'abc' is not a GUID",
        ),
        ({"kustomize": {"concurent": 6}}, "kustomize.concurent", "unknown key (did you mean 'concurrent'?)"),
        ({"multiTenancy": {"enabled": False}}, "multiTenancy.enabled", "unknown key (allowed: enforce)"),
        (
            {"workloadIdentity": {"enable": True}},
            "workloadIdentity.azureClientId",
            "required with enable: true: the client ID of the managed identity that holds the federated credentials",
        ),
        (
            {"workloadIdentity": {"azureClientId": CLIENT_ID}},
            "workloadIdentity.azureClientId",
            "the extension reads it only with enable: true",
        ),
        (
            {"source": {"enabled": False}},
            "source.enabled",
            "the Flux configurations need the source controller: it fetches their sources",
        ),
        (
            {"imageAutomation": {"enabled": True}},
            "imageAutomation.enabled",
            "needs imageReflector.enabled: true (image automation acts on the reflector's image policies)",
        ),
    ],
)
def test_bad_controller_settings_name_file_and_key(raw, controllers, path, message):
    raw["flux"]["extension"] = {"controllers": controllers}
    assert errors(raw) == [f"{CONTROLLERS}.{path}: {message}"]


def test_without_configurations_the_source_and_kustomize_controllers_may_be_off(raw):
    raw["flux"] = {"extension": {"controllers": {"kustomize": {"enabled": False, "requeueDependency": "5s"}}}}
    assert errors(raw) == [
        f"{CONTROLLERS}.kustomize.requeueDependency: the kustomize controller is off (enabled: false)"
    ]
    raw["flux"] = {"extension": {"controllers": {"source": {"enabled": False}, "kustomize": {"enabled": False}}}}
    assert parse_spec(raw, file=FILE).flux.extension.configuration_settings == {
        "source-controller.enabled": "false",
        "kustomize-controller.enabled": "false",
    }


def test_a_key_both_typed_and_free_form_is_an_error_naming_both(raw):
    raw["flux"]["extension"] = {
        "controllers": {"multiTenancy": {"enforce": False}, "kustomize": {"concurrent": 4}},
        "settings": {"multiTenancy.enforce": True, "kustomize-controller.concurrent": 4, "replicas": 2},
    }
    assert errors(raw) == [
        f"{CONTROLLERS}.kustomize.concurrent: kustomize-controller.concurrent is set twice, here and as "
        "fluxfleet:flux.extension.settings.kustomize-controller.concurrent: keep this one, remove the other",
        f"{CONTROLLERS}.multiTenancy.enforce: multiTenancy.enforce is set twice, here and as "
        "fluxfleet:flux.extension.settings.multiTenancy.enforce: keep this one, remove the other",
    ]
    del raw["flux"]["extension"]["controllers"]  # free-form alone, as before `controllers`, stays valid
    assert parse_spec(raw, file=FILE).flux.extension.configuration_settings["multiTenancy.enforce"] == "true"


# ------------------------------------------------------------------------------------------ stack files


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_stack_file_reads_the_project_namespace(tmp_path):
    path = write(
        tmp_path,
        "Pulumi.edge.yaml",
        """
config:
  azure-native:location: eastus
  fluxfleet:cluster: {kind: arc, name: arc-1, resourceGroup: rg}
  flux:
    configurations:
      demo:
        git: {url: "https://github.com/o/r", branch: main, httpsUser: git, httpsKey: {secure: v1:abcd}}
        kustomizations: {apps: {path: ./apps}}
""",
    )
    stack = load_stack_file(path, "stacks/Pulumi.edge.yaml")
    assert stack.name == "edge" and stack.file == "stacks/Pulumi.edge.yaml"
    assert stack.spec.flux.configurations["demo"].git.https_key == ConfigSecret(None)


SUBSCRIPTION = "00000000-0000-0000-0000-0000000000c1"


@pytest.mark.parametrize(
    ("cluster", "expect"),
    [
        ("{kind: arc, name: arc-1, resourceGroup: rg}", SUBSCRIPTION),  # `pulumi up` puts the cluster there
        (
            f"{{kind: arc, name: arc-1, resourceGroup: rg, subscriptionId: {SUBSCRIPTION[:-1]}2}}",
            SUBSCRIPTION[:-1] + "2",
        ),
    ],
)
def test_azure_native_subscription_is_the_cluster_s_when_the_cluster_names_none(tmp_path, cluster, expect):
    config = f"config:\n  azure-native:subscriptionId: {SUBSCRIPTION}\n  fluxfleet:cluster: {cluster}\n"
    stack = load_stack_file(write(tmp_path, "Pulumi.edge.yaml", config), "stacks/Pulumi.edge.yaml")
    assert stack.spec.cluster.subscription_id == expect


@pytest.mark.parametrize(
    ("value", "expect"),
    [
        ("not-a-guid", "'not-a-guid' is not a subscription id"),
        ("{secure: v1:abcd}", "an encrypted value is not a subscription id"),
        ("42", "42 is not a subscription id"),
    ],
)
def test_an_azure_native_subscription_that_cannot_say_where_the_cluster_is_is_an_error(tmp_path, value, expect):
    config = f"config:\n  azure-native:subscriptionId: {value}\n  fluxfleet:cluster: {{kind: arc, name: a, resourceGroup: rg}}\n"
    with pytest.raises(SpecError) as caught:
        load_stack_file(write(tmp_path, "Pulumi.edge.yaml", config), "stacks/Pulumi.edge.yaml")
    assert str(caught.value) == (
        f"stacks/Pulumi.edge.yaml: azure-native:subscriptionId: {expect}: set fluxfleet:cluster.subscriptionId, where "
        "the cluster is"
    )


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("config: [1, 2]\n", "stacks/Pulumi.x.yaml: config: must be a mapping of config keys"),
        (
            "config:\n  a: 1\n  a: 2\n",
            "stacks/Pulumi.x.yaml: fluxfleet:a: duplicate key (first at line 2, again at line 3)",
        ),
        ("config: {fluxfleet:cluster: {kind: aks\n", "stacks/Pulumi.x.yaml: line "),
        ("- a\n", "stacks/Pulumi.x.yaml: -: a stack file is a YAML mapping"),
        ("config: {}\n", "stacks/Pulumi.x.yaml: fluxfleet:cluster: required key is missing"),
        (b"config:\n  fluxfleet:cluster: \xff\xfe\n", "stacks/Pulumi.x.yaml: -: not UTF-8 text (byte 29)"),
    ],
)
def test_bad_stack_files(tmp_path, text, expect):
    path = tmp_path / "Pulumi.x.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(SpecError) as caught:
        load_stack_file(path, "stacks/Pulumi.x.yaml")
    assert str(caught.value).startswith(expect)


def test_a_missing_stack_of_a_large_fleet_names_the_closest_and_a_bounded_list(tmp_path):
    from modules.spec import stack_files

    for number in range(30):
        (tmp_path / f"Pulumi.store-{number:03}.yaml").write_text("config: {}\n")
    with pytest.raises(SpecError) as caught:
        stack_files(tmp_path, ["store-007", "stor-017", "Pulumi.store-001.yaml"])
    [issue] = caught.value.issues
    assert issue.path == "'stor-017'" and issue.message.startswith("no such stack (did you mean 'store-017' or ")
    assert "?); the stacks are store-000, store-001, " in issue.message
    assert issue.message.endswith("store-019, … (30 in all)")


# ------------------------------------------------------------------------------------------ property-based

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "cluster",
        "flux",
        "providers",
        "features",
        "kind",
        "name",
        "configurations",
        "git",
        "url",
        "kustomizations",
        "dependsOn",
        "path",
        "httpsKey",
        "keyVault",
        "secret",
        "secure",
        "extension",
    ]
)


def mutate(base: Any, data: st.DataObject) -> Any:
    """A random edit of a valid config: replace a subtree, drop or add a key."""
    if isinstance(base, dict) and base and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(base)))
        choice = data.draw(st.integers(0, 2))
        edited = dict(base)
        if choice == 0:
            edited[key] = mutate(base[key], data)
        elif choice == 1:
            del edited[key]
        else:
            edited[data.draw(keys)] = data.draw(json_values)
        return edited
    if isinstance(base, list) and base and data.draw(st.booleans()):
        index = data.draw(st.integers(0, len(base) - 1))
        return [mutate(item, data) if i == index else item for i, item in enumerate(base)]
    return data.draw(json_values) if data.draw(st.booleans()) else base


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_parser_raises_only_its_own_error(data):
    from tests.conftest import BASE_STACK

    candidate = mutate(json.loads(json.dumps(BASE_STACK)), data)
    if not isinstance(candidate, dict):
        candidate = {"cluster": candidate}
    try:
        parse_spec(candidate, file=FILE, plain_strings_are_secret=data.draw(st.booleans()))
    except SpecError as error:
        assert error.issues and all(str(issue).startswith(f"{FILE}: ") for issue in error.issues)


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/FluxCD/flux2-kustomize-helm-example",
        "https://github.com/fluxcd/flux2-kustomize-helm-example.git/",
        "ssh://git@github.com/fluxcd/flux2-kustomize-helm-example",
        "git@github.com:fluxcd/flux2-kustomize-helm-example.git",
    ],
)
def test_one_repository_however_addressed(url):
    from modules.spec import repository_key

    assert repository_key(url) == "github.com/fluxcd/flux2-kustomize-helm-example"


def test_two_kustomizations_flux_would_name_alike_are_an_error(raw):
    """`a-b` + `c` and `a` + `b-c` are both `a-b-c` on the cluster: the second would overwrite the first."""
    demo = raw["flux"]["configurations"].pop("demo")
    raw["flux"]["configurations"]["a-b"] = {**demo, "kustomizations": {"c": {"path": "./c"}}}
    raw["flux"]["configurations"]["a"] = {**demo, "kustomizations": {"b-c": {"path": "./bc"}}}
    assert errors(raw) == [
        "stacks/Pulumi.dev.yaml: fluxfleet:flux.configurations.a.kustomizations.b-c: Flux names it 'a-b-c' in namespace "
        "flux-system, as it names kustomization c of configuration a-b: rename one"
    ]
    raw["flux"]["configurations"]["a"]["namespace"] = "other"  # another namespace: no collision
    assert set(parse_spec(raw, file=FILE).flux.configurations) == {"a-b", "a"}


def test_a_reconciliation_wait_of_zero_is_an_error(raw):
    demo = raw["flux"]["configurations"]["demo"]
    demo.update(waitForReconciliation=True, reconciliationWaitDuration="PT0S")
    assert errors(raw) == [
        "stacks/Pulumi.dev.yaml: fluxfleet:flux.configurations.demo.reconciliationWaitDuration: 'PT0S' is zero: a wait "
        "must be longer than that"
    ]


def test_a_key_written_as_pydantics_key_marker_is_an_unknown_key_not_a_crash():
    """`[key]` is how pydantic marks an error in a map's key; a user may still write a key so (found by hypothesis)."""
    assert errors({"[key]": None}) == [
        f"{FILE}: fluxfleet:cluster: required key is missing",
        f"{FILE}: fluxfleet:[key]: unknown key (allowed: cluster, features, flux, providers, windows)",
    ]
