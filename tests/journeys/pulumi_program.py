"""What `pulumi up` and `pulumi preview` of a stack do to the journeys' simulated Azure (world.py): the scripted
`pulumi` (tests/tools/fake_pulumi, scenario key "program") calls `up` and `preview` here.

What a stack declares is read the way the program reads it (modules/spec/load.py's `compose`: its profiles, its stack
file, its stage's pins in fleet.yaml, then FLUXFLEET_ROLLBACK_REFS), from the project directory the CLI runs in.
`up` makes the world hold it and returns the stack's outputs as modules/stack.py exports them; `preview` reports
one `update` step per configuration whose live state differs from the declared one (and a `create` for one that is
missing), so drift and the rollout see what a real preview would show.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the scripted CLI runs from the project copy
    sys.path.insert(0, str(ROOT))


from modules.flux_extension_versions import LATEST, shown  # noqa: E402 (plain data)
from tests.journeys.world import WORLD_ENV, World, find_cluster  # noqa: E402

NEWEST_FLUX_EXTENSION = shown(LATEST)  # what Azure installs when a stack pins no version
SUBSCRIPTION_ENV = "AZURE_SUBSCRIPTION_ID"  # azure-native's subscription when a stack names none
STACK_TYPE = "pulumi:pulumi:Stack"
CONFIGURATION_TYPE = "azure-native:kubernetesconfiguration:FluxConfiguration"


def declared(project_dir: Path, stack: str, environ: dict[str, str]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(subscription, what the stack declares in world.py's terms, the spec) as `pulumi up -s STACK` reads it."""
    from modules.spec.config import read_config, split_config
    from modules.spec.load import ROLLBACK_REFS_ENV, compose, project_stacks_dir, rollback_refs
    from modules.spec.profiles import ProfileLibrary

    stacks_dir, display = project_stacks_dir(project_dir)
    path = stacks_dir / f"Pulumi.{stack}.yaml"
    file = str(Path(display) / path.name)
    config = read_config(path, file, "stack file")
    own, issues = split_config(file, config)
    composed = compose(
        stack,
        file,
        own,
        ProfileLibrary(stacks_dir, display),
        config.get("azure-native:location"),
        rollback=rollback_refs(environ.get(ROLLBACK_REFS_ENV)),
        environment=config.get("azure-native:environment"),
    )
    composed.issues[:0] = issues
    spec = composed.spec().spec
    cluster = spec.cluster
    configurations = {
        name: {
            "namespace": c.namespace,
            "scope": c.scope,
            "url": c.git.url,
            "ref": c.git.ref_keys,
            "kustomizations": {k: kustomization.path or "" for k, kustomization in sorted(c.kustomizations.items())},
        }
        for name, c in sorted(spec.flux.configurations.items())
    }
    wanted = {
        "kind": cluster.kind,
        "resourceGroup": cluster.resource_group,
        "name": cluster.name,
        "location": cluster.location,
        "tags": dict(cluster.tags or {}),
        "extensionVersion": spec.flux.extension.version or NEWEST_FLUX_EXTENSION,
        "kubernetesVersion": cluster.kubernetes_version if cluster.is_aks else None,
        "configurations": configurations,
    }
    subscription = (cluster.subscription_id or environ[SUBSCRIPTION_ENV]).lower()
    return subscription, wanted, spec


def up(stack: str, project_dir: Path, environ: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the RUN the scripted CLI plays, the stack's outputs after a successful update, else None)."""
    from modules.spec import SpecError, key_vault_refs

    world = World(Path(environ[WORLD_ENV]))
    try:
        subscription, wanted, spec = declared(project_dir, stack, environ)
    except SpecError as error:
        return _failed(stack, str(error)), None
    secrets = world.read().get("secrets", {})
    versions = {}
    for _, ref in key_vault_refs(spec):
        version = secrets.get(f"{ref.vault}/{ref.secret}")
        if version is None:
            return _failed(stack, f"{ref}: SecretNotFound"), None
        versions[f"keyvault:{ref.vault}/{ref.secret}"] = ref.version or version
    steps = _steps(stack, world.read(), subscription, wanted)
    error = world.apply_stack(subscription, wanted)
    if error is not None:
        return _failed(stack, error), None
    group, name = wanted["resourceGroup"], wanted["name"]
    provider = (
        "Microsoft.ContainerService/managedClusters"
        if wanted["kind"] == "aks"
        else ("Microsoft.Kubernetes/connectedClusters")
    )
    cluster_id = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{provider}/{name}"
    children = f"{cluster_id}/providers/Microsoft.KubernetesConfiguration"
    outputs = {
        "clusterId": cluster_id,
        "fluxExtensionId": f"{children}/extensions/flux",
        "fluxConfigurationIds": {n: f"{children}/fluxConfigurations/{n}" for n in wanted["configurations"]},
        "secretVersions": versions,
        "fluxConfigurationRefs": spec.source_refs(),
    }
    return {"events": [*steps, _summary(steps)]}, outputs


def preview(stack: str, project_dir: Path, environ: dict[str, str]) -> dict[str, Any]:
    from modules.spec import SpecError

    world = World(Path(environ[WORLD_ENV]))
    try:
        subscription, wanted, _ = declared(project_dir, stack, environ)
    except SpecError as error:
        return _failed(stack, str(error))
    steps = _steps(stack, world.read(), subscription, wanted)
    return {"events": [*steps, _summary(steps)]}


def _steps(stack: str, state: dict[str, Any], subscription: str, wanted: dict[str, Any]) -> list[dict[str, Any]]:
    """One engine event per configuration that an update would change: `create` for one Azure lacks, `update` (with
    the detailed diff of its ref) for one at another ref, `delete` for one the stack no longer declares."""
    account = state["subscriptions"].get(subscription, {})
    _, cluster = find_cluster(account.get("clusters", {}), wanted["resourceGroup"], wanted["name"])
    running = ((cluster or {}).get("flux") or {}).get("configurations", {})
    steps = []
    for name in sorted({*running, *wanted["configurations"]}):
        live, new = running.get(name), wanted["configurations"].get(name)
        if live is not None and new is not None and all(live[k] == new[k] for k in new):
            continue
        op = "create" if live is None else "delete" if new is None else "update"
        urn = f"urn:pulumi:{stack}::fluxfleet::fluxfleet:flux:Configuration${CONFIGURATION_TYPE}::{name}"
        metadata: dict[str, Any] = {"op": op, "urn": urn, "type": CONFIGURATION_TYPE, "provider": ""}
        if op == "update":
            paths = [f"gitRepository.repositoryRef.{k}" for k in sorted({*live["ref"], *new["ref"]})]
            paths = [p for p in paths if live["ref"].get(p.rsplit(".", 1)[1]) != new["ref"].get(p.rsplit(".", 1)[1])]
            paths += [k for k in ("namespace", "scope") if live[k] != new[k]]
            paths += ["kustomizations"] if live["kustomizations"] != new["kustomizations"] else []
            paths += ["gitRepository.url"] if live["url"] != new["url"] else []
            metadata.update(
                diffs=paths,
                detailedDiff={p: {"diffKind": "update", "inputDiff": False} for p in paths},
                old=_resource(urn, live),
                new=_resource(urn, new),
            )
        steps.append({"resourcePreEvent": {"metadata": metadata}})
    return steps


def _resource(urn: str, configuration: dict[str, Any]) -> dict[str, Any]:
    properties = {
        "namespace": configuration["namespace"],
        "scope": configuration["scope"],
        "gitRepository": {"url": configuration["url"], "repositoryRef": configuration["ref"]},
        "kustomizations": {k: {"path": p} for k, p in configuration["kustomizations"].items()},
    }
    return {"type": CONFIGURATION_TYPE, "urn": urn, "custom": True, "inputs": properties, "outputs": properties}


def _summary(steps: list[dict[str, Any]]) -> dict[str, Any]:
    changes: dict[str, int] = {"same": 4}
    for step in steps:
        op = step["resourcePreEvent"]["metadata"]["op"]
        changes[op] = changes.get(op, 0) + 1
    return {"summaryEvent": {"maybeCorrupt": False, "durationSeconds": 1, "resourceChanges": changes}}


def _failed(stack: str, error: str) -> dict[str, Any]:
    line = error.splitlines()[0]
    urn = f"urn:pulumi:{stack}::fluxfleet::{STACK_TYPE}::fluxfleet-{stack}"
    diagnostic = {"diagnosticEvent": {"urn": urn, "severity": "error", "message": f"error: {line}\n", "color": "never"}}
    return {"events": [diagnostic, {"summaryEvent": {"resourceChanges": {}}}], "stderr": f"error: {line}", "exit": 255}


def stack_names(project_dir: Path) -> list[str]:
    """The stacks of the project: one per stack file (the journeys' backend has every stack file's stack), in
    Pulumi.yaml's stackConfigDir (the journeys' projects keep fluxfleet's: stacks/)."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in (project_dir / "stacks").glob("Pulumi.*.yaml"))
