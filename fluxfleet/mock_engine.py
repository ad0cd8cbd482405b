"""Runs the Pulumi program under Pulumi's mock engine and records what it registered.

No Pulumi CLI, no cloud, no network: the resource monitor is `pulumi.runtime.MockMonitor`, and every
registration is recorded with its wire-format inputs (camelCase, as a provider would receive them),
with each secret value replaced by `[secret]` and its path listed.
"""

from __future__ import annotations

import copy
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.runtime
from google.protobuf import json_format
from pulumi.runtime import settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

PROJECT = "fluxfleet"
OFFLINE_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
OFFLINE_TENANT = "00000000-0000-0000-0000-00000000000a"
SECRET = "[secret]"
UNKNOWN = "[unknown]"
# Markers of Pulumi's resource-monitor wire protocol.
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
_INTERNAL_INPUTS = ("__provider",)  # a dynamic resource's pickled provider


@dataclass
class RecordedResource:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    read: bool  # looked up with `.get`, not managed
    inputs: dict[str, Any]
    secrets: list[str]
    options: dict[str, Any] = field(default_factory=dict)


def redact(value: Any, path: str = "", secrets: list[str] | None = None) -> tuple[Any, list[str]]:
    """Replace secret values by `[secret]` and unknowns by `[unknown]`; return the paths of the secrets."""
    found = [] if secrets is None else secrets
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            found.append(path)
            return SECRET, found
        out = {}
        for key, item in value.items():
            out[key], _ = redact(item, f"{path}.{key}" if path else key, found)
        return out, found
    if isinstance(value, list):
        return [redact(item, f"{path}[{index}]", found)[0] for index, item in enumerate(value)], found
    if value == _UNKNOWN_VALUE:
        return UNKNOWN, found
    if isinstance(value, float) and value.is_integer():  # the wire has only doubles; ARM's integers are ints
        return int(value), found
    return value, found


class ArmMocks(pulumi.runtime.Mocks):
    """Echo inputs as outputs, with a plausible ARM id and name, and the offline subscription."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        state = dict(args.inputs)
        name = next(
            (
                state[key]
                for key in (
                    "agentPoolName",  # before resourceName: an agent pool's resourceName is its cluster's
                    "resourceName",
                    "extensionName",
                    "fluxConfigurationName",
                    "featureName",
                    "namespace",
                )
                if isinstance(state.get(key), str)
            ),
            args.name,
        )
        resource_id = args.resource_id or _arm_id(args.typ, state, name)
        if args.resource_id:  # a lookup: the name is the id's last segment
            name = args.resource_id.rstrip("/").rsplit("/", 1)[-1]
        state.setdefault("name", name)
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        if args.token == "azure-native:authorization:getClientConfig":
            return {
                "subscriptionId": OFFLINE_SUBSCRIPTION,
                "tenantId": OFFLINE_TENANT,
                "clientId": OFFLINE_TENANT,
                "objectId": OFFLINE_TENANT,
            }
        return {}


def _arm_id(type_: str, state: dict, name: str) -> str:
    group = f"/subscriptions/{OFFLINE_SUBSCRIPTION}/resourceGroups/{state.get('resourceGroupName', '-')}"
    if "clusterRp" in state:  # extensions and flux configurations are sub-resources of the cluster
        child = "extensions" if type_.endswith(":Extension") else "fluxConfigurations"
        return (
            f"{group}/providers/{state['clusterRp']}/{state['clusterResourceName']}/{state['clusterName']}"
            f"/providers/Microsoft.KubernetesConfiguration/{child}/{name}"
        )
    if type_ == "azure-native:containerservice:ManagedCluster":
        return f"{group}/providers/Microsoft.ContainerService/managedClusters/{name}"
    if type_ == "azure-native:containerservice:AgentPool":
        cluster = state.get("resourceName", "-")
        return f"{group}/providers/Microsoft.ContainerService/managedClusters/{cluster}/agentPools/{name}"
    return f"/subscriptions/{OFFLINE_SUBSCRIPTION}/offline/{type_}/{name}"


class _RecordingMonitor(MockMonitor):
    def __init__(self, mocks: ArmMocks):
        super().__init__(mocks)
        self.records: list[RecordedResource] = []
        self.root_urn: str | None = None

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            self.root_urn = response.urn
            return response
        timeouts = request.customTimeouts
        options = {
            "dependsOn": sorted(request.dependencies),  # a set in the SDK: its order means nothing
            "protect": bool(request.protect),
            "replaceOnChanges": list(request.replaceOnChanges),
            "ignoreChanges": list(request.ignoreChanges),
            "additionalSecretOutputs": list(request.additionalSecretOutputs),
            "deleteBeforeReplace": bool(request.deleteBeforeReplace),
            "customTimeouts": {k: getattr(timeouts, k) for k in ("create", "update", "delete") if getattr(timeouts, k)},
        }
        self._record(request, response.urn, request.object, read=False, options=options)
        return response

    def ReadResource(self, request: Any) -> Any:
        response = super().ReadResource(request)
        self._record(request, response.urn, request.properties, read=True, options={"id": request.id})
        return response

    def _record(self, request: Any, urn: str, struct: Any, read: bool, options: dict[str, Any]) -> None:
        raw = json_format.MessageToDict(struct)
        for key in _INTERNAL_INPUTS:
            raw.pop(key, None)
        inputs, secrets = redact(raw)
        parent = request.parent if request.parent and request.parent != self.root_urn else None
        custom = bool(getattr(request, "custom", True))
        self.records.append(
            RecordedResource(urn, request.type, request.name, parent, custom, read, inputs, secrets, options)
        )


def run_program(stack: str, program: Callable[[], Any], mocks: ArmMocks | None = None) -> list[RecordedResource]:
    """Run `program` as stack `stack` of project fluxfleet under mocks (a preview); return its registrations."""
    mocks = mocks or ArmMocks()
    monitor = _RecordingMonitor(mocks)
    settings.ROOT.set(None)  # a fresh root stack resource for every stack planned in this process
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=True, monitor=monitor)
    monitor.root_urn = monitor.root_urn or f"urn:pulumi:{stack}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{stack}"
    pulumi.runtime.register_stack_transformation(_without_aliases)
    _sync_await(run_pulumi_func(lambda: _sync_await(pulumi.Output.from_input(program()).future())))
    return apply_order(monitor.records)


def _without_aliases(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
    """Aliases only move existing state between type tokens, and a plan has no state. azure-native gives each
    resource one per past API version (over a hundred on a ManagedCluster): resolving them was most of the
    plan's time."""
    if not args.opts.aliases:
        return None
    opts = copy.copy(args.opts)
    opts.aliases = None
    return pulumi.ResourceTransformationResult(args.props, opts)


def apply_order(records: list[RecordedResource]) -> list[RecordedResource]:
    """Registrations arrive from worker threads in any order: put them in dependency order (a parent
    before its children, ties by name) so that every plan of the same stack reads the same."""
    by_urn = {record.urn: record for record in records}
    waits_for = {
        record.urn: {urn for urn in (*record.options.get("dependsOn", ()), record.parent) if urn in by_urn}
        for record in records
    }
    ready = [(record.name, record.urn) for record in records if not waits_for[record.urn]]
    heapq.heapify(ready)
    ordered: list[RecordedResource] = []
    while ready:
        _, urn = heapq.heappop(ready)
        ordered.append(by_urn[urn])
        for other, waiting in waits_for.items():
            if urn in waiting:
                waiting.discard(urn)
                if not waiting:
                    heapq.heappush(ready, (by_urn[other].name, other))
    return ordered
