"""Resource providers and preview features that Flux on Azure needs, registered on the subscription.

azure-native has no resource for a provider registration, so `ProviderRegistration` is a Pulumi dynamic
resource over azure-mgmt-resource: create registers and polls until `Registered`; delete never
unregisters (other workloads in the subscription depend on the providers).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.dynamic
from pulumi_azure_native import features

from modules.clouds import DEFAULT_CLOUD, cloud as cloud_named
from modules.dynamic import provider_serialized

REGISTER_TIMEOUT_SECONDS = 15 * 60
POLL_SECONDS = 10


def register_provider(
    subscription_id: str,
    namespace: str,
    credential: Any = None,
    timeout: float = REGISTER_TIMEOUT_SECONDS,
    poll: float = POLL_SECONDS,
    *,
    cloud: str = DEFAULT_CLOUD,
    **client_options: Any,
) -> str:
    """Register `namespace` and wait until Azure reports it `Registered`; returns the final state. `cloud` says
    whose ARM endpoint and audience (and, without a `credential`, whose sign-in authority) to use.

    States are compared case-insensitively: the API has been seen to answer `registered`."""
    from azure.mgmt.resource.resources import ResourceManagementClient

    settings = cloud_named(cloud)
    credential = credential or settings.default_credential()
    client = ResourceManagementClient(credential, subscription_id, **settings.client_settings(), **client_options)
    state = client.providers.get(namespace).registration_state or "NotRegistered"
    if state.lower() != "registered":
        state = client.providers.register(namespace).registration_state or state
    deadline = time.monotonic() + timeout
    while state.lower() != "registered":
        if time.monotonic() > deadline:
            raise TimeoutError(f"{namespace} is still {state} after {timeout:.0f}s on subscription {subscription_id}")
        time.sleep(poll)
        state = client.providers.get(namespace).registration_state or "NotRegistered"
    return state


def _provider_id(subscription_id: str, namespace: str) -> str:
    return f"/subscriptions/{subscription_id}/providers/{namespace}"


class _ProviderRegistrationProvider(pulumi.dynamic.ResourceProvider):
    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        state = register_provider(props["subscriptionId"], props["namespace"], cloud=props.get("cloud", DEFAULT_CLOUD))
        return pulumi.dynamic.CreateResult(
            _provider_id(props["subscriptionId"], props["namespace"]), {**props, "registrationState": state}
        )

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        # Both inputs identify the registration, so any change is a replacement (and there is no update).
        changed = [key for key in ("subscriptionId", "namespace") if olds.get(key) != news.get(key)]
        return pulumi.dynamic.DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=False)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Never unregister: the provider serves the whole subscription, not just this stack."""


class ProviderRegistration(pulumi.dynamic.Resource, module="azure", name="ProviderRegistration"):
    registration_state: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        namespace: str,
        subscription_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
        cloud: str = DEFAULT_CLOUD,
    ):
        props = {"namespace": namespace, "subscriptionId": subscription_id, "registrationState": None}
        if cloud != DEFAULT_CLOUD:  # absent: the public cloud, as for every registration made before clouds were named
            props["cloud"] = cloud
        with provider_serialized():  # pulumi's serialization leaks a pickle wrapper per resource (modules/dynamic.py)
            super().__init__(_ProviderRegistrationProvider(), name, props, opts)


@dataclass(frozen=True)
class ProviderRegistrationsArgs:
    subscription_id: pulumi.Input[str]
    providers: Sequence[str]
    features: Sequence[str] = ()  # Namespace/FeatureName
    cloud: str = DEFAULT_CLOUD  # the stack's cluster.cloud: the dynamic provider registers there


class ProviderRegistrations(pulumi.ComponentResource):
    """Registers every listed provider and feature on the stack's subscription."""

    def __init__(self, name: str, args: ProviderRegistrationsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("fluxfleet:azure:ProviderRegistrations", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.providers = [
            ProviderRegistration(namespace.lower(), namespace, args.subscription_id, child, args.cloud)
            for namespace in args.providers
        ]
        self.features = []
        for feature in args.features:
            namespace, feature_name = feature.split("/", 1)
            self.features.append(
                features.SubscriptionFeatureRegistration(
                    f"{namespace.lower()}-{feature_name.lower()}",
                    provider_namespace=namespace,
                    feature_name=feature_name,
                    properties=features.SubscriptionFeatureRegistrationPropertiesArgs(),
                    opts=child,
                )
            )
        self.resources: list[pulumi.Resource] = [*self.providers, *self.features]
        self.register_outputs({"providers": [p.id for p in self.providers]})
