"""fluxfleet's Flux configuration at API 2025-04-01 (modules/flux_configuration_v2025.py): which configurations get it,
the body it sends (field by field against the official examples and the swagger), its create, read, update and delete
through the real Azure SDK client over azure-core's transport (official 2025-04-01 responses, and the project's own
failing create), and its secrets, which are never plain in what the engine records or in an error."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest

from modules.flux_configuration_v2025 import (
    ADOPT_KEY,
    TYPE,
    FluxConfigurationError,
    FluxConfigurationProvider,
    body,
)
from modules.spec import load_stack_file
from tests.azure_transport import FakeCredential, ScriptedTransport, example
from modules.keyvault import SecretValue
from tests.conftest import (
    CANARY,
    CANARY_VERSION,
    ROOT,
    CanaryKeyVault,
    deploy_spec,
    fixture_file,
    is_secret,
    reveal,
    unwrap_secrets,
)
from tests.conftest import deploy as deploy_with
from tests.modules.spec.ssh import private_key
from tests.swagger import NO_DEFAULT, api_default, request_schema

AZURE_NATIVE = "azure-native:kubernetesconfiguration:FluxConfiguration"
KC = ("specification", "kubernetesconfiguration", "resource-manager", "Microsoft.KubernetesConfiguration")
FLUX_2025 = (*KC, "fluxConfigurations", "stable", "2025-04-01")
SWAGGER = fixture_file("arm-examples", *FLUX_2025, "fluxconfiguration.json")
SUB = "11111111-2222-3333-4444-555555555555"
IDENTITY = "6f1c2e0a-3b4d-4c5e-8f90-1a2b3c4d5e6f"
KV = {"keyVault": "kv-test", "secret": "s"}
APP_KEY = {"keyVault": "kv-test", "secret": "github-app-key"}  # a private key: read as PEM
TLS_KEY = {"keyVault": "kv-test", "secret": "registry-client-key"}
PEM = private_key("rsa", "pkcs1")


class KeyVault(CanaryKeyVault):
    """Every secret reads as the canary, but a private key's (a name ending in -key), which reads as a real one."""

    def get_secret(self, ref: Any) -> SecretValue:
        if ref.secret.endswith("-key"):
            self.reads.append(ref)
            return SecretValue(PEM, CANARY_VERSION)
        return super().get_secret(ref)


def deploy(raw: dict[str, Any]) -> Any:
    return deploy_with(raw, KeyVault())


def official(name: str) -> dict[str, Any]:
    """A whole x-ms-examples file of the 2025-04-01 Flux configurations."""
    return json.loads(fixture_file("arm-examples", *FLUX_2025, "examples", name).read_text())


def own(name: str) -> dict[str, Any]:
    return json.loads(fixture_file("arm", f"{name}.json").read_text())


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --------------------------------------------------------------------------------------------- which resource


def with_identity(raw: dict[str, Any]) -> dict[str, Any]:
    raw["flux"]["extension"] = {"controllers": {"workloadIdentity": {"enable": True, "azureClientId": IDENTITY}}}
    return raw


def oci_source(**extra: Any) -> dict[str, Any]:
    return {
        "url": "oci://ghcr.io/stefanprodan/manifests/podinfo",
        "tag": "6.6.2",
        "verify": {
            "provider": "cosign",
            "matchOidcIdentity": [
                {
                    "issuer": "^https://token\\.actions\\.githubusercontent\\.com$",
                    "subject": "^https://github\\.com/stefanprodan/podinfo/\\.github/workflows/release\\.yml@.+$",
                }
            ],
        },
        **extra,
    }


def github_app(raw: dict[str, Any]) -> dict[str, Any]:
    git = raw["flux"]["configurations"]["demo"]["git"]
    del git["httpsUser"], git["httpsKey"]
    git.update(provider="GitHub", githubAppID=123456, githubAppInstallationID=7654321, githubAppPrivateKey=APP_KEY)
    return raw


def flux_records(deployment: Any) -> dict[str, Any]:
    return {r.name: r for r in deployment.records if r.type in (AZURE_NATIVE, TYPE)}


@pytest.mark.parametrize("stack_file", sorted(p.name for p in (ROOT / "stacks").glob("Pulumi.*.yaml")))
def test_every_example_stack_keeps_azure_natives_resource(stack_file):
    """Nothing an existing stack declares needs 2025-04-01: its Flux configurations stay where they are."""
    from tests.modules.spec.ssh import DeployKeyVault

    stack = load_stack_file(ROOT / "stacks" / stack_file)
    deployment = deploy_spec(stack.spec, DeployKeyVault(), stack=stack.name)
    assert {r.type for r in flux_records(deployment).values()} == {AZURE_NATIVE}


def test_a_configuration_gets_the_2025_resource_only_for_what_2023_cannot_express(raw):
    configurations = with_identity(raw)["flux"]["configurations"]
    generic = copy.deepcopy(configurations["demo"])
    generic["git"]["provider"] = "Generic"
    configurations["generic"] = generic
    configurations["ado"] = {
        "git": {"url": "https://dev.azure.com/contoso/fleet/_git/platform", "branch": "main", "provider": "Azure"},
        "kustomizations": {"apps": {"prune": True}},
    }
    configurations["oci"] = {"oci": oci_source(), "kustomizations": {"apps": {"prune": True}}}
    records = flux_records(deploy(raw))
    assert {name: r.type for name, r in records.items()} == {
        "demo": AZURE_NATIVE,
        "generic": AZURE_NATIVE,  # Generic is what 2023-05-01 does without saying it: not sent
        "ado": TYPE,
        "oci": TYPE,
    }
    assert "provider" not in records["generic"].inputs["gitRepository"]
    # One component, one name: only the child's type differs (what a move between them is, for Pulumi).
    assert records["demo"].urn.replace(AZURE_NATIVE, TYPE) == records["oci"].urn.replace("::oci", "::demo")
    for name in ("ado", "oci"):
        options = records[name].options
        assert options["replaceOnChanges"] == ["scope", "namespace"] and options["deleteBeforeReplace"] is True
        assert any(urn.endswith("Extension::flux") for urn in options["dependsOn"])  # after the extension


# --------------------------------------------------------------------------------------------- the body


def dynamic_props(deployment: Any, name: str = "demo") -> dict[str, Any]:
    """The dynamic resource's inputs as its provider receives them: secrets in plain text, no serialized provider."""
    [inputs] = [v for (t, n), v in deployment.raw_inputs.items() if t == TYPE and n == name]
    return {key: value for key, value in unwrap_secrets(inputs).items() if key != "__provider"}


def leaves(value: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(value, dict) and value:
        found: dict[tuple[str, ...], Any] = {}
        for key, item in value.items():
            found.update(leaves(item, (*prefix, key)))
        return found
    return {prefix: value}


def differences(ours: Any, theirs: Any) -> dict[str, tuple[Any, Any]]:
    """Every leaf path where two bodies differ: (the official example's value, ours), "-" for absent."""
    mine, expected = leaves(ours), leaves(theirs)
    return {
        ".".join(path): (expected.get(path, "-"), mine.get(path, "-"))
        for path in {*mine, *expected}
        if mine.get(path, "-") != expected.get(path, "-")
    }


def oci_example_stack(raw: dict[str, Any]) -> dict[str, Any]:
    """The stack that declares what CreateFluxConfigurationWithOCIRepository.json creates, on its Arc cluster."""
    raw["cluster"] = {"kind": "arc", "name": "clusterName1", "resourceGroup": "rg1", "subscriptionId": SUB}
    raw["flux"]["configurations"] = {
        "srs-fluxconfig": {
            "namespace": "srs-namespace",
            "scope": "cluster",
            "oci": {
                "url": "oci://ghcr.io/stefanprodan/manifests/podinfo",
                "tag": "latest",  # the example names no ref: the API's default tag
                "serviceAccountName": "testserviceaccount",
                "syncInterval": 1000,
                "timeout": 1000,
            },
            "kustomizations": {
                "srs-kustomization1": {"path": "./test/path", "syncInterval": 600, "timeout": 600},
                "srs-kustomization2": {
                    "path": "./other/test/path",
                    "dependsOn": ["srs-kustomization1"],
                    "prune": False,
                    "retryInterval": 600,
                    "syncInterval": 600,
                    "timeout": 600,
                },
            },
        }
    }
    return raw


def test_the_oci_body_is_the_official_examples_field_by_field(raw):
    ours = body(dynamic_props(deploy(oci_example_stack(raw)), "srs-fluxconfig"))
    theirs = official("CreateFluxConfigurationWithOCIRepository.json")["parameters"]["fluxConfiguration"]
    assert differences(ours, theirs) == {
        # An empty dependsOn is no dependency: the program leaves it out, as azure-native's resource does.
        "properties.kustomizations.srs-kustomization1.dependsOn": ([], "-"),
        # What the stack says where the example leaves the API to its defaults.
        "properties.ociRepository.repositoryRef.tag": ("-", "latest"),
        "properties.ociRepository.insecure": ("-", False),
    }
    for path in (("ociRepository", "insecure"),):
        assert api_default(SWAGGER, "FluxConfigurationProperties", path) is False  # the defaults they are


def test_a_workload_identity_source_is_the_official_provider_example_field_by_field(raw):
    """The stack that declares what CreateFluxConfigurationWithProvider.json creates (Azure DevOps through workload
    identity: no credential at all) sends that body, but for what it says where the example leaves the defaults."""
    raw["cluster"] = {"kind": "arc", "name": "clusterName1", "resourceGroup": "rg1", "subscriptionId": SUB}
    with_identity(raw)["flux"]["configurations"] = {
        "srs-fluxconfig": {
            "namespace": "srs-namespace",
            "scope": "cluster",
            "git": {
                "url": "https://dev.azure.com/org/proj/_git/arc-k8s-demo",
                "branch": "master",
                "provider": "Azure",
                "httpsCACert": "examplecertificate",
                "syncInterval": 600,
                "timeout": 600,
            },
            "kustomizations": {
                "srs-kustomization1": {
                    "path": "./test/path",
                    "syncInterval": 600,
                    "timeout": 600,
                    "wait": True,
                    "postBuild": {
                        "substitute": {"cluster_env": "prod", "replica_count": "2"},
                        "substituteFrom": [{"kind": "ConfigMap", "name": "cluster-test", "optional": True}],
                    },
                },
                "srs-kustomization2": {
                    "path": "./other/test/path",
                    "dependsOn": ["srs-kustomization1"],
                    "syncInterval": 600,
                    "timeout": 600,
                    "retryInterval": 600,
                    "prune": False,
                    "wait": False,
                    "postBuild": {
                        "substituteFrom": [
                            {"kind": "ConfigMap", "name": "cluster-values", "optional": True},
                            {"kind": "Secret", "name": "secret-name", "optional": False},
                        ]
                    },
                },
            },
            "waitForReconciliation": True,
            "reconciliationWaitDuration": "PT30M",
        }
    }
    ours = body(dynamic_props(deploy(raw), "srs-fluxconfig"))
    theirs = official("CreateFluxConfigurationWithProvider.json")["parameters"]["fluxConfiguration"]
    assert differences(ours, theirs) == {
        # An empty dependsOn is no dependency: the program leaves it out, as azure-native's resource does.
        "properties.kustomizations.srs-kustomization1.dependsOn": ([], "-"),
    }


def test_a_github_app_source_sends_the_example_git_fields_the_provider_and_its_keys_protected(raw):
    """No 2025-04-01 example has a GitHub App: the git fields are CreateFluxConfiguration.json's, the provider is
    the swagger's enum, and the App's ID, installation and key go as protected settings under Flux's keys."""
    raw["flux"]["configurations"]["demo"]["git"].update(url="https://github.com/Azure/arc-k8s-demo", branch="master")
    raw["flux"]["configurations"]["demo"]["git"].update(syncInterval=600, timeout=600)
    props = dynamic_props(deploy(github_app(raw)))
    git = body(props)["properties"]["gitRepository"]
    example = official("CreateFluxConfiguration.json")["parameters"]["fluxConfiguration"]["properties"]["gitRepository"]
    shared = {key: example[key] for key in ("url", "repositoryRef", "syncIntervalInSeconds", "timeoutInSeconds")}
    assert {key: git[key] for key in shared} == shared
    assert git["provider"] == "GitHub" and "httpsUser" not in git
    enum = json.loads(SWAGGER.read_text())["definitions"]["ProviderType"]["enum"]
    assert git["provider"] in enum
    assert props["configurationProtectedSettings"] == {
        "githubAppID": b64("123456"),
        "githubAppInstallationID": b64("7654321"),
        "githubAppPrivateKey": b64(PEM),
    }


def test_every_new_source_body_validates_against_the_2025_swagger(raw):
    schema = jsonschema.Draft7Validator(request_schema(SWAGGER, "FluxConfiguration"))
    configurations = with_identity(raw)["flux"]["configurations"]
    configurations["oci"] = {
        "oci": oci_source(
            useWorkloadIdentity=True,
            serviceAccountName="flux-pull",
            tlsConfig={"clientCertificate": KV, "privateKey": TLS_KEY, "caCertificate": KV},
            syncInterval="5m",
        ),
        "kustomizations": {"apps": {"prune": True, "postBuild": {"substitute": {"a": "b"}}}},
        "waitForReconciliation": True,
        "reconciliationWaitDuration": "PT5M",
    }
    configurations["signed"] = {
        "oci": {
            "url": "oci://contoso.azurecr.io/manifests/platform",
            "digest": "sha256:" + "a" * 64,
            "verify": {"provider": "notation", "verificationConfig": {"trustpolicy.json": KV, "ca.crt": KV}},
        },
        "kustomizations": {"apps": {"prune": True}},
    }
    configurations["ado"] = {
        "git": {"url": "https://dev.azure.com/contoso/fleet/_git/platform", "tag": "v1.0.0", "provider": "Azure"},
        "kustomizations": {"apps": {"prune": True}},
    }
    configurations["app"] = copy.deepcopy(github_app(raw)["flux"]["configurations"]["demo"])
    deployment = deploy(raw)
    for name in ("oci", "signed", "ado", "app"):
        found = [
            f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in schema.iter_errors(body(dynamic_props(deployment, name)))
        ]
        assert found == [], name
    props = dynamic_props(deployment, "oci")
    assert props["ociRepository"]["tlsConfig"] == {
        "clientCertificate": b64(CANARY),
        "privateKey": b64(PEM),
        "caCertificate": b64(CANARY),
    }
    assert props["ociRepository"]["useWorkloadIdentity"] is True and props["ociRepository"]["insecure"] is False
    assert dynamic_props(deployment, "signed")["ociRepository"]["verify"]["verificationConfig"] == {
        "trustpolicy.json": CANARY,  # sent as they are: the API names no encoding for them
        "ca.crt": CANARY,
    }


def test_the_schema_check_catches_a_wrong_body(raw):
    schema = jsonschema.Draft7Validator(request_schema(SWAGGER, "FluxConfiguration"))
    raw["flux"]["configurations"]["demo"] = {"oci": oci_source(), "kustomizations": {"apps": {}}}
    wrong = body(dynamic_props(deploy(raw)))
    wrong["properties"]["ociRepository"]["ref"] = {"tag": "v1"}
    wrong["properties"]["ociRepository"]["verify"]["matchOIDCIdentity"] = []
    messages = [e.message for e in schema.iter_errors(wrong)]
    assert any("'ref'" in m for m in messages) and any("matchOIDCIdentity" in m for m in messages)


# --------------------------------------------------------------------------------------------- secrets in state


def test_secrets_are_secret_in_what_the_engine_records_and_never_plain(raw):
    configurations = with_identity(raw)["flux"]["configurations"]
    configurations["oci"] = {
        "oci": oci_source(
            tlsConfig={"clientCertificate": KV, "privateKey": TLS_KEY, "caCertificate": KV},
            verify={"provider": "cosign", "verificationConfig": {"cosign.pub": KV}},
        ),
        "kustomizations": {"apps": {"prune": True}},
    }
    github_app(raw)
    deployment = deploy(raw)
    records = flux_records(deployment)
    plain = (CANARY, b64(CANARY), PEM.splitlines()[1], b64(PEM))
    for name, record in records.items():
        text = json.dumps(record.inputs)
        assert not any(secret in text for secret in plain), name
    assert records["demo"].secrets == ["configurationProtectedSettings"]
    assert sorted(records["oci"].secrets) == [
        "ociRepository.tlsConfig.caCertificate",
        "ociRepository.tlsConfig.clientCertificate",
        "ociRepository.tlsConfig.privateKey",
        "ociRepository.verify.verificationConfig.cosign.pub",
    ]
    # What the engine received: each secret wrapped as a Pulumi secret on the wire...
    [demo] = [v for (t, n), v in deployment.raw_inputs.items() if t == TYPE and n == "demo"]
    assert is_secret(demo["configurationProtectedSettings"])
    assert reveal(demo["configurationProtectedSettings"])["githubAppPrivateKey"] == b64(PEM)
    [oci] = [v for (t, n), v in deployment.raw_inputs.items() if t == TYPE and n == "oci"]
    source = oci["ociRepository"]  # the mock engine hands a map holding a secret over as one secret
    assert is_secret(source) or all(is_secret(v) for v in source["tlsConfig"].values())
    # ...and the top-level outputs that hold them listed as secret outputs: the provider, which accepts no secrets,
    # hands them back in plain text, and the engine keeps them secret by these keys.
    assert records["demo"].options["additionalSecretOutputs"] == ["configurationProtectedSettings"]
    assert records["oci"].options["additionalSecretOutputs"] == ["ociRepository"]


def test_the_providers_outputs_hold_secrets_only_under_the_keys_kept_secret(raw):
    github_app(with_identity(raw))
    props = dynamic_props(deploy(raw))
    transport = Azure(
        {
            ("GET", "fluxConfigurations/demo"): [(404, NOT_FOUND, {})],
            ("PUT", "fluxConfigurations/demo"): [(200, created(props), {})],
        }
    )
    outputs = provider(transport).create({**props, "__provider": "x"}).outs
    secrets = (PEM.splitlines()[1], b64(PEM))
    holding = {
        path[0]
        for path, value in leaves(outputs).items()
        if isinstance(value, str) and any(s in value for s in secrets)
    }
    assert holding == {"configurationProtectedSettings"}
    assert "__provider" not in outputs


# --------------------------------------------------------------------------------------------- CRUD over the SDK

NOT_FOUND = {"error": {"code": "ResourceNotFound", "message": "The Resource was not found."}}


class Azure(ScriptedTransport):
    """Answers by (method, path suffix) in turn (the last answer repeats); records requests and the poller's waits."""

    def __init__(self, answers: dict[tuple[str, str], list[tuple[int, Any, dict[str, str]]]]):
        self.answers = {key: list(value) for key, value in answers.items()}
        self.slept: list[float] = []
        super().__init__(self._answer)

    def _answer(self, request: Any) -> tuple[int, Any, dict[str, str]]:
        path = urlsplit(request.url).path
        for (method, suffix), queue in self.answers.items():
            if request.method == method and path.endswith(suffix):
                return queue.pop(0) if len(queue) > 1 else queue[0]
        raise AssertionError(f"unexpected {request.method} {request.url}")

    def sleep(self, duration: float) -> None:
        self.slept.append(duration)

    def calls(self) -> list[str]:
        return [f"{r.method} {urlsplit(r.url).path.rsplit('/', 2)[-2:][-1]}" for r in self.requests]


def https(headers: dict[str, str]) -> dict[str, str]:
    """The examples write their Azure-AsyncOperation URLs with http:// (INDEX.md's quirks), where Azure sends https://:
    azure-core rightly sends no token over http."""
    return {key: value.replace("http://", "https://", 1) for key, value in headers.items()}


def provider(transport: Azure) -> FluxConfigurationProvider:
    return FluxConfigurationProvider(FakeCredential(), transport=transport, retry_total=0)


def created(props: dict[str, Any], state: str = "Succeeded") -> dict[str, Any]:
    """What Azure answers a PUT of these props with: the body echoed, with an id and a state."""
    answer = copy.deepcopy(body(props))
    answer["properties"].pop("configurationProtectedSettings", None)  # never returned
    answer["properties"]["provisioningState"] = state
    answer["id"] = "/subscriptions/x/fluxConfigurations/" + props["fluxConfigurationName"]
    return answer


def arc_oci_props(raw: dict[str, Any]) -> dict[str, Any]:
    return dynamic_props(deploy(oci_example_stack(raw)), "srs-fluxconfig")


def test_create_puts_the_body_and_polls_the_operation_to_its_end(raw):
    """The create of CreateFluxConfigurationWithOCIRepository.json, long-running as CreateFluxConfiguration.json's 201
    shows it: accepted with Azure-AsyncOperation, polled while InProgress, then read."""
    props = arc_oci_props(raw)
    oci = official("CreateFluxConfigurationWithOCIRepository.json")["responses"]
    accepted = https(official("CreateFluxConfiguration.json")["responses"]["201"]["headers"])
    creating = copy.deepcopy(oci["201"]["body"])
    creating["properties"]["provisioningState"] = "Creating"
    in_progress = own("flux_configuration_create_failed")["responses"]["operationInProgress"]["body"]
    succeeded = example(
        fixture_file("arm-examples", *FLUX_2025, "examples", "GetFluxConfigurationAsyncOperationStatus.json")
    )
    transport = Azure(
        {
            ("GET", "fluxConfigurations/srs-fluxconfig"): [(404, NOT_FOUND, {}), (200, oci["200"]["body"], {})],
            ("PUT", "fluxConfigurations/srs-fluxconfig"): [(201, creating, accepted)],
            ("GET", "operations/operationId"): [(200, in_progress, {"Retry-After": "7"}), (200, succeeded, {})],
        }
    )
    result = provider(transport).create(props)
    assert [(r.method, urlsplit(r.url).path.rsplit("/", 1)[-1]) for r in transport.requests] == [
        ("GET", "srs-fluxconfig"),  # is one there already?
        ("PUT", "srs-fluxconfig"),
        ("GET", "operationId"),  # Azure-AsyncOperation: InProgress
        ("GET", "operationId"),  # Succeeded
        ("GET", "srs-fluxconfig"),  # the final state
    ]
    assert transport.slept == [7]  # between the two polls, as Azure's Retry-After said (no real sleep in tests)
    put = transport.requests[1]
    assert urlsplit(put.url).path == (
        f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/clusterName1"
        "/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/srs-fluxconfig"
    )
    assert {parse_qs(urlsplit(r.url).query)["api-version"][0] for r in transport.requests} == {"2025-04-01"}
    assert json.loads(put.body) == body(props)
    assert result.id == oci["200"]["body"]["id"]
    assert result.outs["provisioningState"] == "Succeeded" and result.outs["ociRepository"] == props["ociRepository"]


def test_create_refuses_to_take_over_a_live_configuration_unless_told_to(raw):
    props = arc_oci_props(raw)
    live = official("CreateFluxConfigurationWithOCIRepository.json")["responses"]["200"]["body"]
    transport = Azure(
        {("GET", "fluxConfigurations/srs-fluxconfig"): [(200, live, {})], ("PUT", "srs-fluxconfig"): [(200, live, {})]}
    )
    with pytest.raises(FluxConfigurationError) as refused:
        provider(transport).create(props)
    message = str(refused.value)
    assert "\n" not in message and "already on the cluster" in message and "adoptLiveConfiguration: true" in message
    assert "pulumi state delete" in message
    assert [r.method for r in transport.requests] == ["GET"]  # nothing written
    adopted = provider(transport).create({**props, ADOPT_KEY: True})
    assert [r.method for r in transport.requests] == ["GET", "GET", "PUT"] and adopted.id == live["id"]


def test_a_create_whose_operation_fails_is_one_line_with_azures_words_and_no_secret(raw):
    """The project's failing create (tests/fixtures/arm/flux_configuration_create_failed.json): provider Azure
    without a federated credential; the poller sees the operation Failed."""
    raw["flux"]["configurations"]["demo"]["git"].update(url="https://dev.azure.com/contoso/fleet/_git/platform")
    github_app(with_identity(raw))  # protected settings that an error must not show
    props = dynamic_props(deploy(raw))
    fixture = own("flux_configuration_create_failed")["responses"]
    transport = Azure(
        {
            ("GET", "fluxConfigurations/demo"): [(404, NOT_FOUND, {})],
            ("PUT", "fluxConfigurations/demo"): [(201, fixture["201"]["body"], fixture["201"]["headers"])],
            ("GET", "/operations/5b3c8a1e-0d4f-4a7e-9c21-6f0e2d9b7a44"): [
                (200, fixture["operationInProgress"]["body"], {}),
                (200, fixture["operationFailed"]["body"], {}),
            ],
        }
    )
    with pytest.raises(FluxConfigurationError) as failed:
        provider(transport).create(props)
    message = str(failed.value)
    assert "\n" not in message and "create failed" in message
    assert "FluxConfigurationCreateFailed" in message and "AADSTS700213" in message
    assert b64(PEM) not in message and PEM.splitlines()[1] not in message


def test_a_create_that_ends_failed_says_why(raw):
    props = dynamic_props(deploy(github_app(with_identity(raw))))
    failing = own("flux_configuration_create_failed")["responses"]["200"]["body"]
    transport = Azure(
        {
            ("GET", "fluxConfigurations/demo"): [(404, NOT_FOUND, {})],
            ("PUT", "fluxConfigurations/demo"): [(200, failing, {})],
        }
    )
    with pytest.raises(FluxConfigurationError, match=r"create ended Failed: Error: \{failed to reconcile the source"):
        provider(transport).create(props)


def test_an_error_that_quotes_a_secret_shows_it_masked(raw):
    props = dynamic_props(deploy(github_app(with_identity(raw))))
    line = PEM.splitlines()[1]
    leak = {"error": {"code": "InvalidParameter", "message": f"bad githubAppPrivateKey {b64(PEM)} ({line})"}}
    transport = Azure(
        {
            ("GET", "fluxConfigurations/demo"): [(404, NOT_FOUND, {})],
            ("PUT", "fluxConfigurations/demo"): [(400, leak, {})],
        }
    )
    with pytest.raises(FluxConfigurationError) as failed:
        provider(transport).create(props)
    assert str(failed.value).endswith(
        "create failed: 400 InvalidParameter: bad githubAppPrivateKey [secret] ([secret])"
    )


def test_read_maps_azure_onto_what_is_declared(raw):
    props = arc_oci_props(raw)
    live = copy.deepcopy(official("CreateFluxConfigurationWithOCIRepository.json")["responses"]["200"]["body"])
    live["properties"]["kustomizations"]["by-hand"] = {"name": "by-hand", "path": "./extra"}
    live["properties"]["ociRepository"]["syncIntervalInSeconds"] = 300  # changed in Azure
    result = provider(Azure({("GET", "srs-fluxconfig"): [(200, live, {})]})).read("id-1", props)
    outs = result.outs
    assert result.id == "id-1" and outs["provisioningState"] == "Succeeded"
    assert outs["ociRepository"]["syncIntervalInSeconds"] == 300  # drift shows
    # A key Azure does not return is taken as declared (write-only, or left out of the answer): no false drift.
    assert outs["ociRepository"]["repositoryRef"] == {"tag": "latest"} and outs["ociRepository"]["insecure"] is False
    # Azure's own fields (`name`, defaults) are not compared; a kustomization Azure holds beyond the declared is.
    assert outs["kustomizations"]["srs-kustomization1"] == props["kustomizations"]["srs-kustomization1"]
    assert outs["kustomizations"]["by-hand"] == {"name": "by-hand", "path": "./extra"}


def test_read_keeps_write_only_secrets_and_says_gone_for_404(raw):
    props = dynamic_props(deploy(github_app(with_identity(raw))))
    live = created(props)
    outs = provider(Azure({("GET", "fluxConfigurations/demo"): [(200, live, {})]})).read("id-1", props).outs
    assert outs["configurationProtectedSettings"] == props["configurationProtectedSettings"]
    gone = provider(Azure({("GET", "fluxConfigurations/demo"): [(404, NOT_FOUND, {})]})).read("id-1", props)
    assert gone.id == "" and gone.outs == {}


def test_update_puts_the_whole_declared_body(raw):
    props = dynamic_props(deploy(github_app(with_identity(raw))))
    news = copy.deepcopy(props)
    del news["kustomizations"]["apps"]
    transport = Azure({("PUT", "fluxConfigurations/demo"): [(200, created(news), {})]})
    result = provider(transport).update("id-1", props, news)
    [put] = transport.requests
    assert json.loads(put.body) == body(news) and "apps" not in json.loads(put.body)["properties"]["kustomizations"]
    assert result.outs["kustomizations"] == news["kustomizations"]


@pytest.mark.parametrize("answer", ["202", "204"])
def test_delete_polls_until_done_and_a_configuration_already_gone_is_no_error(raw, answer):
    props = dynamic_props(deploy(github_app(with_identity(raw))))
    deleted = official("DeleteFluxConfiguration.json")["responses"][answer]
    status = official("GetFluxConfigurationAsyncOperationStatus.json")["responses"]["200"]["body"]
    transport = Azure(
        {
            ("DELETE", "fluxConfigurations/demo"): [
                (int(answer), deleted.get("body"), https(deleted.get("headers") or {}))
            ],
            # The example's Azure-AsyncOperation points at extensions/ClusterMonitor (INDEX.md: a copy-paste quirk).
            ("GET", "operations/operationId"): [(200, status, {})],
        }
    )
    provider(transport).delete("id-1", props)
    assert [r.method for r in transport.requests] == (["DELETE", "GET"] if answer == "202" else ["DELETE"])
    provider(Azure({("DELETE", "fluxConfigurations/demo"): [(404, NOT_FOUND, {})]})).delete("id-1", props)


@pytest.mark.parametrize(
    ("change", "replaces"),
    [
        (lambda p: p.update(namespace="other"), ["namespace"]),
        (lambda p: p.update(scope="namespace"), ["scope"]),
        (lambda p: p.update(clusterName="elsewhere"), ["clusterName"]),
        (lambda p: p["kustomizations"]["apps"].update(prune=False), []),
        (lambda p: p.update(configurationProtectedSettings={"githubAppPrivateKey": "rotated"}), []),
    ],
)
def test_diff_replaces_on_what_arm_cannot_change(raw, change: Callable[[dict[str, Any]], None], replaces):
    olds = dynamic_props(deploy(github_app(with_identity(raw))))
    news = copy.deepcopy(olds)
    change(news)
    result = FluxConfigurationProvider().diff("id-1", olds, news)
    assert result.changes is True and result.replaces == replaces and result.delete_before_replace is True
    same = FluxConfigurationProvider().diff(
        "id-1", olds, {**copy.deepcopy(olds), ADOPT_KEY: True, "provisioningState": "x"}
    )
    assert same.changes is False  # adopting is no change of the configuration


def test_no_default_sneaks_into_the_body(raw):
    """Every key the body sends is one the stack set or one the program always sends (documented in docs/config.md):
    the API's defaults are left to the API."""
    raw["flux"]["configurations"]["demo"] = {"oci": oci_source(), "kustomizations": {"apps": {}}}
    properties = body(dynamic_props(deploy(raw)))["properties"]
    assert properties["ociRepository"].keys() == {"url", "repositoryRef", "insecure", "verify"}
    assert api_default(SWAGGER, "FluxConfigurationProperties", ("ociRepository", "useWorkloadIdentity")) is False
    assert api_default(SWAGGER, "FluxConfigurationProperties", ("ociRepository", "url")) is NO_DEFAULT


def test_declaring_dynamic_resources_leaves_pickle_as_it_was(raw):
    """pulumi's serialize_provider wraps pickle's `_batch_setitems` once more per dynamic resource and never undoes it:
    a plan of many stacks in one process then recursed past Python's limit (modules/dynamic.py)."""
    import pickle

    before = pickle._Pickler._batch_setitems
    deploy(github_app(with_identity(raw)))  # three provider registrations and a 2025-04-01 configuration
    assert pickle._Pickler._batch_setitems is before
