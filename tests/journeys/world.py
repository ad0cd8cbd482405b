"""The simulated Azure of the journeys: one JSON state file, answered over HTTP as Azure answers.

The state (`World.path`) is what Azure holds, and nothing else:

    {
      "subscriptions": {
        "<subscription id>": {
          "readable": true,            false: the signed-in identity may not read it (ARM 403, hidden from Resource Graph)
          "clusters": {
            "<resource group>/<name>": {
              "kind": "aks" | "arc", "location": "eastus", "tags": {...},
              "connected": true,       (Arc) the agent's connectivity
              "kubernetesVersion": "1.35.1",  (AKS) optional: the version the world tracks (an update sets what
                                       the stack asks for); without it, every AKS cluster runs 1.35.1
              "readable": true,        false: the identity may not read this cluster (ARM 403; Resource Graph
                                       leaves it out, as it leaves out what the caller may not read)
              "flux": null | {         the Flux extension, absent until a stack installs it
                "extension": {"version": "1.17.3"},
                "configurations": {"<name>": {"namespace", "scope", "url", "ref": {"tag": "v1.0.0"},
                                               "kustomizations": {"<name>": "<path>"},
                                               "compliance": "Compliant" | "Non-Compliant", "message": ...,
                                               "updatedAt": "<ISO time>"}}
              }
            }
          }
        }
      },
      "broken": ["<configuration>@<ref>"],   what fails on any cluster that runs it (the world decides health)
      "secrets": {"<vault>/<secret>": "<current version>"}
    }

`respond(request)` answers the requests fluxfleet's real readers send (tests/azure_transport.py's ScriptedTransport):
ARM GETs of clusters and their extension, Flux and source-control lists; Key Vault secret reads; the Resource Graph
queries of fluxfleet/azure/fleet_graph.py, inventory.py and resource_graph.py's visibility check. Bodies are the
official examples of tests/fixtures/resourcegraph (see its SOURCE.md), filled from the state. What is gone is a 404
with ARM's error body; what the identity may not read, a 403 as ARM and Resource Graph send it. A query fluxfleet
does not send is a 400, as an unparseable one is.

`apply_stack` is what `pulumi up` of a stack does to this state (the scripted Pulumi's program, pulumi_program.py).
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXAMPLES = FIXTURES / "resourcegraph"
KEY_VAULT_EXAMPLE = (
    FIXTURES
    / "arm-examples/specification/keyvault/data-plane/Microsoft.KeyVault/stable/7.6/examples/GetSecret-example.json"
)
CLUSTER_TYPES = {"aks": "Microsoft.ContainerService/managedClusters", "arc": "Microsoft.Kubernetes/connectedClusters"}
FLUX_EXTENSION = "flux"
WORLD_BEGAN = "2026-01-01T00:00:00Z"
WORLD_ENV = "JOURNEY_WORLD"  # the state file, for the launcher and the scripted Pulumi's program
_CLUSTER_URL = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"(?P<type>Microsoft\.ContainerService/managedClusters|Microsoft\.Kubernetes/connectedClusters)/(?P<name>[^/]+)"
    r"(?:/providers/Microsoft\.KubernetesConfiguration/(?P<child>[^/]+))?/?$",
    re.IGNORECASE,
)
_SECRET_URL = re.compile(r"/secrets/(?P<secret>[^/]+)(?:/(?P<version>[^/]*))?/?$")
_KQL_STRING = r"'(?:[^'\\]|\\.)*'"


def example(name: str, status: str = "200") -> Any:
    path = KEY_VAULT_EXAMPLE if name == "GetSecret" else EXAMPLES / f"{name}.json"
    return copy.deepcopy(json.loads(path.read_text(encoding="utf-8"))["responses"][status]["body"])


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ref_name(ref: dict[str, str]) -> str:
    """The ref as Flux names it in a revision: the tag, else the branch (a commit alone: its SHA)."""
    return ref.get("tag") or ref.get("semver") or ref.get("branch") or ref.get("commit") or ""


def commit_of(url: str, ref: dict[str, str]) -> str:
    """The commit a ref points at in this world: a pinned commit is itself, anything else a stable made-up SHA."""
    return ref.get("commit") or hashlib.sha1(f"{url}#{ref_name(ref)}".encode()).hexdigest()


class World:
    """The state file, read and changed under an exclusive lock (updates of several stacks run at once)."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> dict[str, Any]:
        return json.loads(self.path.read_text(encoding="utf-8"))

    def write(self, state: dict[str, Any]) -> None:
        with self.changing() as current:
            current.clear()
            current.update(state)

    @contextmanager
    def changing(self) -> Iterator[dict[str, Any]]:
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self.read() if self.path.exists() else {}
            yield state
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            temporary.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
            os.replace(temporary, self.path)

    # ------------------------------------------------------------------ what `pulumi up` does

    def apply_stack(self, subscription: str, declared: dict[str, Any]) -> str | None:
        """Make the cluster hold what a stack declares (`declared`, see pulumi_program.declared): the cluster (an
        AKS one is created, an Arc one must exist), the Flux extension, exactly the declared configurations. None,
        or the one-line error of the update (Azure's own words for a missing cluster)."""
        with self.changing() as state:
            account = state["subscriptions"].get(subscription)
            if account is None or not account.get("readable", True):
                return f"AuthorizationFailed: the client does not have authorization over /subscriptions/{subscription}"
            key, cluster = find_cluster(account["clusters"], declared["resourceGroup"], declared["name"])
            if cluster is not None and not cluster.get("readable", True):
                return f"AuthorizationFailed: the client does not have authorization over {key}"
            if cluster is None:
                if declared["kind"] == "arc":
                    return (
                        f"ResourceNotFound: The Resource '{CLUSTER_TYPES['arc']}/{declared['name']}' under resource "
                        f"group '{declared['resourceGroup']}' was not found."
                    )
                key = f"{declared['resourceGroup']}/{declared['name']}"
                cluster = account["clusters"][key] = {"kind": "aks", "location": declared["location"], "tags": {}}
            if declared["kind"] == "aks":
                cluster["tags"] = declared["tags"]
                if "kubernetesVersion" in cluster and declared.get("kubernetesVersion"):  # a version the world tracks
                    cluster["kubernetesVersion"] = declared["kubernetesVersion"]
            flux = cluster.get("flux") or {"configurations": {}}
            flux["extension"] = {"version": declared["extensionVersion"]}
            configurations = {}
            for name, wanted in declared["configurations"].items():
                running = flux["configurations"].get(name)
                same = running is not None and all(running[k] == wanted[k] for k in wanted)
                configurations[name] = running if same else {**wanted, **self._health(state, name, wanted["ref"])}
            flux["configurations"] = configurations
            cluster["flux"] = flux
        return None

    @staticmethod
    def _health(state: dict[str, Any], name: str, ref: dict[str, str]) -> dict[str, Any]:
        broken = f"{name}@{ref_name(ref)}" in state.get("broken", [])
        return {
            "compliance": "Non-Compliant" if broken else "Compliant",
            "message": f"kustomize build failed at {ref_name(ref)}: accumulating resources" if broken else None,
            "updatedAt": now(),
        }


def find_cluster(clusters: dict[str, Any], group: str, name: str) -> tuple[str | None, dict[str, Any] | None]:
    """The cluster `group/name` (Azure compares both without case)."""
    wanted = f"{group}/{name}".lower()
    return next(((key, c) for key, c in clusters.items() if key.lower() == wanted), (None, None))


# --------------------------------------------------------------------------------------------- bodies


def cluster_id(subscription: str, key: str, kind: str) -> str:
    group, name = key.split("/", 1)
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{CLUSTER_TYPES[kind]}/{name}"


def cluster_body(subscription: str, key: str, cluster: dict[str, Any]) -> dict[str, Any]:
    """The cluster's GET body: the official example, with this cluster's id, name, place and state."""
    name = key.split("/", 1)[1]
    if cluster["kind"] == "aks":
        body = example("ManagedClustersGet")
        version = cluster.get("kubernetesVersion", "1.35")  # as asked: a minor (AKS runs its .1) or a patch
        body["properties"].update(
            provisioningState="Succeeded",
            kubernetesVersion=version,
            currentKubernetesVersion=version if version.count(".") == 2 else f"{version}.1",
        )
    else:
        body = example("GetClusterExample")
        connected = cluster.get("connected", True)
        body["properties"].update(
            connectivityStatus="Connected" if connected else "Offline",
            lastConnectivityTime=now() if connected else WORLD_BEGAN,
            provisioningState="Succeeded",
        )
        body["properties"]["arcAgentProfile"].update(agentErrors=[], agentState="Succeeded")
    body.update(id=cluster_id(subscription, key, cluster["kind"]), name=name, location=cluster["location"])
    body["tags"] = dict(cluster.get("tags", {}))
    return body


def extension_body(parent: str, extension: dict[str, Any]) -> dict[str, Any]:
    body = example("GetExtension")
    body.update(
        id=f"{parent}/providers/Microsoft.KubernetesConfiguration/extensions/{FLUX_EXTENSION}", name=FLUX_EXTENSION
    )
    body["properties"].update(
        extensionType="microsoft.flux",
        autoUpgradeMinorVersion=True,
        releaseTrain="Stable",
        version=extension["version"],
        currentVersion=extension["version"],
        scope={"cluster": {"releaseNamespace": "flux-system"}},
        configurationSettings={},
    )
    return body


def flux_configuration_body(parent: str, name: str, configuration: dict[str, Any], connected: bool) -> dict[str, Any]:
    """The configuration's GET body, its statuses as Flux reports them: the source's fetched revision, each
    kustomization applied (or failing, with the world's message) when the configuration last changed. The Flux
    agent of a connected cluster reports its status again and again, so `statusUpdatedAt` is now (an offline Arc
    cluster's is when it last changed)."""
    body = example("GetFluxConfiguration")
    ref = configuration["ref"]
    revision = f"{ref_name(ref)}@sha1:{commit_of(configuration['url'], ref)}"
    compliant = configuration["compliance"] == "Compliant"
    updated = configuration.get("updatedAt", WORLD_BEGAN)  # a configuration a journey starts with: since then
    [source, kustomization, _] = body["properties"]["statuses"]
    source.update(name=name, complianceState="Compliant")
    source["statusConditions"][0].update(
        message=f"stored artifact for revision '{revision}'", lastTransitionTime=updated
    )
    statuses = [source]
    for index, kustomization_name in enumerate(sorted(configuration["kustomizations"])):
        status = copy.deepcopy(kustomization)
        failing = not compliant and index == 0
        status.update(name=f"{name}-{kustomization_name}", complianceState="Non-Compliant" if failing else "Compliant")
        status["statusConditions"][0].update(
            message=configuration["message"] if failing else f"Applied revision: {revision}",
            reason="BuildFailed" if failing else "ReconciliationSucceeded",
            status="False" if failing else "True",
            lastTransitionTime=updated,
        )
        statuses.append(status)
    kustomizations = {
        k: {"name": k, "path": path, "dependsOn": [], "timeoutInSeconds": 600, "syncIntervalInSeconds": 600}
        for k, path in sorted(configuration["kustomizations"].items())
    }
    body.update(id=f"{parent}/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/{name}", name=name)
    body["properties"].update(
        scope=configuration["scope"],
        namespace=configuration["namespace"],
        gitRepository={
            "url": configuration["url"],
            "timeoutInSeconds": 600,
            "syncIntervalInSeconds": 600,
            "repositoryRef": {key: ref.get(key) for key in ("branch", "tag", "semver", "commit")},
        },
        kustomizations=kustomizations,
        statuses=statuses,
        sourceSyncedCommitId=revision,
        sourceUpdatedAt=updated,
        statusUpdatedAt=now() if connected else updated,
        complianceState=configuration["compliance"],
        errorMessage="",
    )
    return body


def _error(status: int, code: str, message: str, **more: Any) -> tuple[int, Any, dict[str, str]]:
    """ARM's error answer: `{"error": {"code", "message"}}`."""
    return status, {"error": {"code": code, "message": message, **more}}, {}


def _not_found(resource_type: str, group: str, name: str) -> tuple[int, Any, dict[str, str]]:
    message = (
        f"The Resource '{resource_type}/{name}' under resource group '{group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix"
    )
    return _error(404, "ResourceNotFound", message)


def _forbidden(scope: str) -> tuple[int, Any, dict[str, str]]:
    message = (
        "The client 'journey@example.com' with object id '00000000-0000-0000-0000-0000000000aa' does not have "
        f"authorization to perform action 'read' over scope '{scope}' or the scope is invalid."
    )
    return _error(403, "AuthorizationFailed", message)


def _page(items: list[Any]) -> tuple[int, Any, dict[str, str]]:
    return 200, {"value": items, "nextLink": None}, {}


# --------------------------------------------------------------------------------------------- answers


def responder(world: World) -> Callable[[Any], tuple[int, Any, dict[str, str]]]:
    """`respond(request)` for ScriptedTransport: each request answered from the state as it is now."""

    def respond(request: Any) -> tuple[int, Any, dict[str, str]]:
        state = world.read()
        url = urlparse(request.url)
        path = unquote(url.path)
        if url.hostname and url.hostname.endswith(".vault.azure.net"):
            return _secret(state, url.hostname.split(".", 1)[0], path)
        if request.method == "POST" and path.lower() == "/providers/microsoft.resourcegraph/resources":
            return _graph(state, json.loads(request.body))
        match = _CLUSTER_URL.match(path)
        if request.method != "GET" or match is None:
            return _error(400, "InvalidRequest", f"no such API: {request.method} {path}")
        return _arm(state, match)

    return respond


def _arm(state: dict[str, Any], match: re.Match[str]) -> tuple[int, Any, dict[str, str]]:
    subscription, group, name, child = match["sub"], match["rg"], match["name"], match["child"]
    kind = "aks" if match["type"].lower() == CLUSTER_TYPES["aks"].lower() else "arc"
    account = state["subscriptions"].get(subscription.lower())
    if account is None:
        return _error(404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")
    if not account.get("readable", True):
        return _forbidden(match.group(0))
    key, cluster = find_cluster(account["clusters"], group, name)
    if cluster is None or cluster["kind"] != kind:
        return _not_found(CLUSTER_TYPES[kind], group, name)
    if not cluster.get("readable", True):
        return _forbidden(match.group(0))
    parent = cluster_id(subscription.lower(), key, kind)
    flux = cluster.get("flux")
    if child is None:
        return 200, cluster_body(subscription.lower(), key, cluster), {}
    if child.lower() == "extensions":
        return _page([extension_body(parent, flux["extension"])] if flux else [])
    if child.lower() == "fluxconfigurations":
        configurations = (flux or {}).get("configurations", {})
        connected = cluster.get("connected", True)
        return _page([flux_configuration_body(parent, n, c, connected) for n, c in sorted(configurations.items())])
    if child.lower() == "sourcecontrolconfigurations":
        return _page([])
    return _error(400, "InvalidResourceType", f"no resource type {child}")


def _secret(state: dict[str, Any], vault: str, path: str) -> tuple[int, Any, dict[str, str]]:
    match = _SECRET_URL.search(path)
    version = state.get("secrets", {}).get(f"{vault}/{match['secret']}") if match else None
    if version is None:
        return _error(404, "SecretNotFound", f"A secret with (name/id) {path} was not found in this key vault.")
    body = example("GetSecret")
    body.update(value="journey-secret-value", id=f"https://{vault}.vault.azure.net/secrets/{match['secret']}/{version}")
    return 200, body, {}


# --------------------------------------------------------------------------------------------- Resource Graph


def _graph(state: dict[str, Any], request: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    """The queries fluxfleet sends, over the readable subscriptions of the request (a subscription the identity
    may not read is left out without an error, as Resource Graph does)."""
    query = request["query"]
    subscriptions = [s.lower() for s in request.get("subscriptions", [])]
    known = state["subscriptions"]
    readable = {s for s in subscriptions if s in known and known[s].get("readable", True)}
    clusters = [
        (s, key, cluster)
        for s in sorted(readable)
        for key, cluster in sorted(state["subscriptions"][s]["clusters"].items())
        if cluster.get("readable", True)
    ]
    if query.startswith("resourcecontainers"):
        rows = [{"id": f"/subscriptions/{s}", "subscriptionId": s} for s in sorted(readable)]
    elif "kubernetesconfigurationresources" in query:
        ids = set(re.findall(_KQL_STRING, query.split("| where clusterId in (", 1)[1].split(")", 1)[0]))
        wanted = {_kql_text(literal) for literal in ids}
        rows = [_fleet_row(s, key, c) for s, key, c in clusters if cluster_id(s, key, c["kind"]).lower() in wanted]
    elif "| extend selected = " in query:
        types = {_kql_text(t) for t in re.findall(_KQL_STRING, query.split("type in~ (", 1)[1].split(")", 1)[0])}
        selected = query.split("| extend selected = ", 1)[1].split("\n", 1)[0]
        rows = [
            _inventory_row(s, key, c, selected) for s, key, c in clusters if CLUSTER_TYPES[c["kind"]].lower() in types
        ]
    else:
        details = [{"code": "InvalidQuery", "message": "Query is invalid."}]
        return _error(400, "BadRequest", "Please provide below info when asking for support", details=details)
    rows.sort(key=lambda row: row["id"])
    body = example("ResourcesBasicQuery")
    body.update(totalRecords=len(rows), count=len(rows), data=rows)
    return 200, body, {}


def _fleet_row(subscription: str, key: str, cluster: dict[str, Any]) -> dict[str, Any]:
    """The fleet query's row: the cluster's columns, and its extensions and Flux configurations as `children`, their
    properties in PascalCase as kubernetesconfigurationresources holds them."""
    body = cluster_body(subscription, key, cluster)
    parent = body["id"]
    flux = cluster.get("flux")
    children = []
    if flux:
        children.append(extension_body(parent, flux["extension"]))
        connected = cluster.get("connected", True)
        children += [
            flux_configuration_body(parent, n, c, connected) for n, c in sorted(flux["configurations"].items())
        ]
    return {
        "id": body["id"],
        "name": body["name"],
        "type": body["type"].lower(),
        "subscriptionId": subscription,
        "resourceGroup": key.split("/", 1)[0].lower(),
        "identity": body.get("identity"),
        "properties": body["properties"],
        "children": [
            {
                "id": c["id"],
                "name": c["name"],
                "type": c["type"].lower(),
                "properties": {k[:1].upper() + k[1:]: v for k, v in c["properties"].items()},
            }
            for c in children
        ]
        or None,
    }


def _inventory_row(subscription: str, key: str, cluster: dict[str, Any], selected: str) -> dict[str, Any]:
    body = cluster_body(subscription, key, cluster)
    row = {
        "id": body["id"],
        "name": body["name"],
        "type": body["type"].lower(),
        "subscriptionId": subscription,
        "resourceGroup": key.split("/", 1)[0].lower(),
        "location": body["location"],
        "tags": body["tags"],
    }
    return {**row, "selected": _selected(selected, row)}


def _kql_text(literal: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"t": "\t", "n": "\n"}.get(m[1], m[1]), literal[1:-1])


_TOKEN = re.compile(
    rf"\s*(?:(?P<open>\()|(?P<close>\))|(?P<and>and\b)|(?P<or>or\b)|(?P<true>true\b)|"
    rf"(?P<column>resourceGroup|location|tostring\(tags\[(?P<tag>{_KQL_STRING})\]\))\s*"
    rf"(?P<op>=~|==|matches regex)\s*(?P<value>{_KQL_STRING}))"
)


def _selected(expression: str, row: dict[str, Any]) -> bool:
    """The `selected` column: the inventory's selection (`true`, or terms joined by `and`, each a parenthesised
    `or` of comparisons) evaluated on a row, as KQL would."""
    tokens: list[Any] = []
    position, end = 0, len(expression.rstrip())
    while position < end:
        match = _TOKEN.match(expression, position)
        if match is None:
            raise ValueError(f"the world cannot evaluate {expression[position:]!r}")
        position = match.end()
        if match["column"]:
            column, wanted = match["column"], _kql_text(match["value"])
            value = str(row["tags"].get(_kql_text(match["tag"]), "")) if match["tag"] else str(row[column])
            if match["op"] == "=~":
                tokens.append(value.lower() == wanted.lower())
            elif match["op"] == "==":
                tokens.append(value == wanted)
            else:
                tokens.append(re.search(wanted, value) is not None)
        else:
            tokens.append(True if match["true"] else next(k for k in ("open", "close", "and", "or") if match[k]))
    value, rest = _disjunction(tokens)
    if rest:
        raise ValueError(f"the world cannot evaluate {expression!r}")
    return value


def _disjunction(tokens: list[Any]) -> tuple[bool, list[Any]]:
    value, tokens = _conjunction(tokens)
    while tokens[:1] == ["or"]:
        other, tokens = _conjunction(tokens[1:])
        value = value or other
    return value, tokens


def _conjunction(tokens: list[Any]) -> tuple[bool, list[Any]]:
    value, tokens = _operand(tokens)
    while tokens[:1] == ["and"]:
        other, tokens = _operand(tokens[1:])
        value = value and other
    return value, tokens


def _operand(tokens: list[Any]) -> tuple[bool, list[Any]]:
    if tokens[:1] == ["open"]:
        value, tokens = _disjunction(tokens[1:])
        if tokens[:1] != ["close"]:
            raise ValueError("unbalanced parentheses")
        return value, tokens[1:]
    if not tokens or not isinstance(tokens[0], bool):
        raise ValueError("a comparison expected")
    return tokens[0], tokens[1:]
