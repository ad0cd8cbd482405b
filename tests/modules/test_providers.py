"""Provider registration over the real azure-mgmt-resource client, with the official GetProvider example."""

from __future__ import annotations

import copy

import pytest

from modules.providers import register_provider
from tests.azure_transport import FakeCredential, ScriptedTransport, example
from tests.conftest import deploy, fixture_file

GET_PROVIDER = (
    "arm-examples",
    "specification",
    "resources",
    "resource-manager",
    "Microsoft.Resources",
    "stable",
    "2024-11-01",
    "examples",
    "GetProvider.json",
)
SUB = "11111111-2222-3333-4444-555555555555"


def provider_states(*states: str):
    """GETs answer the given states in turn (the last one repeats); POST register answers `Registering`."""
    base = example(fixture_file(*GET_PROVIDER))
    remaining = list(states)

    def respond(request):
        body = copy.deepcopy(base)
        if request.method == "POST":
            body["registrationState"] = "Registering"
        else:
            body["registrationState"] = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return 200, body, {}

    return ScriptedTransport(respond)


def test_registers_and_polls_until_registered():
    transport = provider_states("NotRegistered", "Registering", "registered")  # lower case, as seen in the wild
    state = register_provider(SUB, "Microsoft.KubernetesConfiguration", FakeCredential(), poll=0, transport=transport)
    assert state.lower() == "registered"
    methods = [(r.method, r.url.split("?")[0].rsplit("/", 1)[-1]) for r in transport.requests]
    assert methods.count(("POST", "register")) == 1
    assert transport.requests[0].url.startswith(
        f"https://management.azure.com/subscriptions/{SUB}/providers/Microsoft.KubernetesConfiguration"
    )


def test_already_registered_is_left_alone():
    transport = provider_states("Registered")
    register_provider(SUB, "Microsoft.Kubernetes", FakeCredential(), poll=0, transport=transport)
    assert [r.method for r in transport.requests] == ["GET"]


def test_gives_up_after_the_timeout():
    with pytest.raises(TimeoutError, match=f"Microsoft.Kubernetes is still Registering after 0s on subscription {SUB}"):
        register_provider(
            SUB,
            "Microsoft.Kubernetes",
            FakeCredential(),
            poll=0,
            timeout=0,
            transport=provider_states("NotRegistered", "Registering"),
        )


def test_program_registers_listed_providers_and_features(raw):
    raw["features"] = ["Microsoft.ContainerService/AKS-ExtensionManager"]
    deployment = deploy(raw)
    namespaces = sorted(r.inputs["namespace"] for r in deployment.records if r.type.endswith(":ProviderRegistration"))
    assert namespaces == ["Microsoft.ContainerService", "Microsoft.Kubernetes", "Microsoft.KubernetesConfiguration"]
    feature = deployment.one(":SubscriptionFeatureRegistration")
    assert (feature.inputs["providerNamespace"], feature.inputs["featureName"]) == (
        "Microsoft.ContainerService",
        "AKS-ExtensionManager",
    )


def test_legacy_feature_is_not_registered_unless_listed(raw):
    assert not [r for r in deploy(raw).records if r.type.endswith(":SubscriptionFeatureRegistration")]


def test_delete_never_unregisters(monkeypatch):
    """Other workloads in the subscription use the providers: destroying a stack must not touch them."""
    import azure.mgmt.resource.resources as resources

    from modules.providers import _ProviderRegistrationProvider

    def no_client(*args, **kwargs):
        raise AssertionError("delete must not call Azure")

    monkeypatch.setattr(resources, "ResourceManagementClient", no_client)
    assert (
        _ProviderRegistrationProvider().delete("id", {"namespace": "Microsoft.Kubernetes", "subscriptionId": SUB})
        is None
    )


def test_create_registers_and_a_changed_namespace_replaces(monkeypatch):
    import modules.providers as providers

    calls = []
    monkeypatch.setattr(
        providers, "register_provider", lambda sub, ns, cloud: calls.append((sub, ns, cloud)) or "Registered"
    )
    provider = providers._ProviderRegistrationProvider()
    created = provider.create({"namespace": "Microsoft.Kubernetes", "subscriptionId": SUB})
    assert calls == [(SUB, "Microsoft.Kubernetes", "AzureCloud")]  # a registration without `cloud`: made before
    provider.create({"namespace": "Microsoft.Kubernetes", "subscriptionId": SUB, "cloud": "AzureChinaCloud"})
    assert calls[-1] == (SUB, "Microsoft.Kubernetes", "AzureChinaCloud")
    assert created.id == f"/subscriptions/{SUB}/providers/Microsoft.Kubernetes"
    assert created.outs["registrationState"] == "Registered"
    olds = {"namespace": "Microsoft.Kubernetes", "subscriptionId": SUB}
    assert provider.diff("id", olds, dict(olds)).changes is False
    changed = provider.diff("id", olds, {**olds, "namespace": "Microsoft.ContainerService"})
    assert changed.changes is True and changed.replaces == ["namespace"]
