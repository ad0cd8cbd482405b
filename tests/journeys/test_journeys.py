"""Journeys: a fleet's story through the command line a user types, step after step, with one world carried across
the steps (journey.py: the stack files and fleet.yaml, the scripted Pulumi's persistent backend, the simulated Azure
that `pulumi up` changes and the real Azure SDK clients read). Each journey ends by comparing the whole final world
with the one expected, built here explicitly; each runs again with one step SIGKILLed at a random moment (seeded)
and resumed as a user would, and must end in the same world."""

from __future__ import annotations

import copy
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.journeys.journey import SUBSCRIPTION, Journey, assert_world, timeless
from tests.journeys.pulumi_program import NEWEST_FLUX_EXTENSION

DEMO_URL = "https://github.com/fluxcd/flux2-kustomize-helm-example"
OTHER_SUBSCRIPTION = "2c9d7e1f-4a6b-4c8d-9e0f-1a2b3c4d5e6f"
# One kill per journey by default: seed 13 kills a rollout, drift --remediate or an inventory --prune (the third
# step of a four- or five-step journey, the fifth of promotion's eleven); JOURNEY_KILL_SEEDS=1,2,3 runs more.
KILL_SEEDS = tuple(int(seed) for seed in os.environ.get("JOURNEY_KILL_SEEDS", "13").split(",") if seed.strip())
GATE = "gate:\n  fluxCompliance: true\n  timeout: 20s\n  pollInterval: 1s\n"


# --------------------------------------------------------------------------------------------- the world's parts


def arc(tags: dict[str, str] | None = None, flux: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    return {"kind": "arc", "location": "westeurope", "tags": tags or {}, "connected": True, "flux": flux, **more}


def aks(name: str, flux: dict[str, Any], tags: dict[str, str], version: str = NEWEST_FLUX_EXTENSION) -> dict[str, Any]:
    return {"kind": "aks", "location": "westeurope", "tags": tags, "flux": {"extension": {"version": version}, **flux}}


def flux(version: str = NEWEST_FLUX_EXTENSION, **configurations: dict[str, Any]) -> dict[str, Any]:
    return {"extension": {"version": version}, "configurations": configurations}


def gitops_demo(ref: dict[str, str], broken: bool = False) -> dict[str, Any]:
    """The edge-store profile's configuration, as Azure holds it at `ref`."""
    return {
        "namespace": "gitops-demo",
        "scope": "cluster",
        "url": DEMO_URL,
        "ref": ref,
        "kustomizations": {"apps": "./apps/staging", "infra": "./infrastructure"},
        **health(ref, broken),
    }


def platform(ref: dict[str, str], apps: str = "./apps/staging", url: str = DEMO_URL) -> dict[str, Any]:
    """The aks-platform profile's configuration."""
    kustomizations = {"apps": apps, "infra-configs": "./infrastructure/configs"}
    kustomizations["infra-controllers"] = "./infrastructure/controllers"
    return {
        "namespace": "flux-system",
        "scope": "cluster",
        "url": url,
        "ref": ref,
        "kustomizations": kustomizations,
        **health(ref, False),
    }


def health(ref: dict[str, str], broken: bool) -> dict[str, Any]:
    name = ref.get("tag") or ref.get("branch")
    if broken:
        return {"compliance": "Non-Compliant", "message": f"kustomize build failed at {name}: accumulating resources"}
    return {"compliance": "Compliant", "message": None}


def outputs(subscription: str, group: str, name: str, kind: str, refs: dict[str, Any], secrets=None) -> dict[str, Any]:
    """The stack outputs modules/stack.py exports."""
    provider = (
        "Microsoft.ContainerService/managedClusters" if kind == "aks" else "Microsoft.Kubernetes/connectedClusters"
    )
    cluster = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{provider}/{name}"
    children = f"{cluster}/providers/Microsoft.KubernetesConfiguration"
    return {
        "clusterId": cluster,
        "fluxExtensionId": f"{children}/extensions/flux",
        "fluxConfigurationIds": {c: f"{children}/fluxConfigurations/{c}" for c in refs},
        "secretVersions": secrets or {},
        "fluxConfigurationRefs": refs,
    }


def store_file(name: str) -> str:
    """A store's stack file as a platform team writes it: the profile, the cluster, the default subscription."""
    return (
        "config:\n  azure-native:location: westeurope\n  fluxfleet:profiles: [edge-store]\n"
        f"  fluxfleet:cluster: {{name: {name}, resourceGroup: rg-stores}}\n"
    )


def journey_ids(name: str) -> list[Any]:
    return [pytest.param(None, id=name)] + [pytest.param(seed, id=f"{name}-killed-seed{seed}") for seed in KILL_SEEDS]


def kill_of(seed: int | None, steps: int) -> tuple[int, int] | None:
    """(which step to kill, the seed of when), from the seed: printed in every assertion through the test id."""
    if seed is None:
        return None
    import random

    return random.Random(seed).randrange(steps), seed


# --------------------------------------------------------------------------------------------- bootstrap

BOOTSTRAP_FLEET = GATE + "stages:\n  - name: edge\n    profiles: [edge-store]\n    maxConcurrency: 2\n"


@pytest.mark.parametrize("seed", journey_ids("bootstrap"))
def test_bootstrap_inventory_finds_the_stores_writes_their_stacks_and_the_rollout_makes_them_healthy(tmp_path, seed):
    stores = {
        "rg-stores/store-berlin": arc({"fleet": "stores"}),
        "rg-stores/store-paris": arc({"fleet": "stores"}),
        "rg-labs/lab-1": arc({"fleet": "labs"}),  # not selected: no stack is written for it
    }
    azure = {"subscriptions": {SUBSCRIPTION: {"clusters": stores}}, "broken": [], "secrets": {}}
    journey = Journey(tmp_path, azure, BOOTSTRAP_FLEET, kill=kill_of(seed, 4))

    journey.step(3, "inventory", "--select", "kind:arc tag:fleet=stores", "--profile", "edge-store", "--write")
    journey.step(0, "plan")
    journey.step(0, "rollout")
    journey.step(0, "status")

    today = datetime.now(UTC).date().isoformat()
    written = {
        f"Pulumi.{name}.yaml": (
            f"# {name}: written by `fluxfleet inventory --write` from Azure Resource Graph ({today}).\n"
            "config:\n  fluxfleet:profiles: [edge-store]\n  fluxfleet:cluster:\n    kind: arc\n"
            f"    name: {name}\n    resourceGroup: rg-stores\n    subscriptionId: {SUBSCRIPTION}\n"
        )
        for name in ("store-berlin", "store-paris")
    }
    main = {"branch": "main"}
    expected_azure = copy.deepcopy(azure)
    for key in ("rg-stores/store-berlin", "rg-stores/store-paris"):
        expected_azure["subscriptions"][SUBSCRIPTION]["clusters"][key]["flux"] = flux(
            **{"gitops-demo": gitops_demo(main)}
        )
    expected = {
        "files": {**written, "fleet.yaml": BOOTSTRAP_FLEET, **profiles()},
        "backend": {
            name: {
                "updates": ["succeeded"],
                "outputs": outputs(SUBSCRIPTION, "rg-stores", name, "arc", {"gitops-demo": main}),
            }
            for name in ("store-berlin", "store-paris")
        },
        "azure": timeless(expected_azure),
    }
    assert_world(journey, expected)


def profiles() -> dict[str, str]:
    root = Path(__file__).resolve().parents[2] / "stacks" / "profiles"
    return {f"profiles/{p.name}": p.read_text(encoding="utf-8") for p in sorted(root.glob("*.yaml"))}


# --------------------------------------------------------------------------------------------- failure

FAILURE_FLEET = GATE + (
    "stages:\n"
    "  - name: edge\n"
    "    profiles: [edge-store]\n"
    "    maxConcurrency: 1\n"
    "    maxFailures: 1       # a second store failing halts the stage\n"
    "    rollback: true\n"
    "    pins:\n"
    "      gitops-demo: {tag: v1.0.0}\n"
)


@pytest.mark.parametrize("seed", journey_ids("failure"))
def test_failure_past_max_failures_rolls_the_stage_back_to_its_pins_and_status_shows_the_old_ref(tmp_path, seed):
    names = ("store-1", "store-2", "store-3")
    stores = {f"rg-stores/{name}": arc({"fleet": "stores"}) for name in names}
    azure = {"subscriptions": {SUBSCRIPTION: {"clusters": stores}}, "broken": ["gitops-demo@v2.0.0"], "secrets": {}}
    files = {f"Pulumi.{name}.yaml": store_file(name) for name in names}
    journey = Journey(tmp_path, azure, FAILURE_FLEET, files=files, kill=kill_of(seed, 4))

    journey.step(0, "rollout")  # the stores run v1.0.0
    journey.step(0, "promote", "gitops-demo", "--to", "v2.0.0")  # v2.0.0 is broken: every store fails it
    journey.step(1, "rollout")  # store-1 fails, store-2 fails (past maxFailures): both go back; store-3 never moves
    journey.step(0, "status")

    v1 = {"tag": "v1.0.0"}
    expected_azure = copy.deepcopy(azure)
    for key in stores:
        expected_azure["subscriptions"][SUBSCRIPTION]["clusters"][key]["flux"] = flux(
            **{"gitops-demo": gitops_demo(v1)}
        )
    rolled_back = ["succeeded", "succeeded", "succeeded"]  # newest first: the rollback, the failed ref, the first
    expected = {
        "files": {**files, "fleet.yaml": FAILURE_FLEET, **profiles()},  # the pin restored as it was written
        "backend": {
            name: {
                "updates": rolled_back if name != "store-3" else ["succeeded"],
                "outputs": outputs(SUBSCRIPTION, "rg-stores", name, "arc", {"gitops-demo": v1}),
            }
            for name in names
        },
        "azure": timeless(expected_azure),
    }
    assert_world(journey, expected)
    assert "v1.0.0" in journey.steps[-1].stdout and "v2.0.0" not in journey.steps[-1].stdout, journey.steps[-1]


# --------------------------------------------------------------------------------------------- promotion

PROMOTION_FLEET = GATE + (
    "stages:\n"
    "  - name: dev\n    stacks: [dev]\n"
    "  - name: staging\n    stacks: [staging]\n"
    "  - name: edge\n    profiles: [edge-store]\n    maxConcurrency: 10\n    maxFailures: 2\n    rollback: true\n"
    '  - name: production\n    stacks: ["prod-*"]\n    approval: true\n    rollback: true\n'
)
SECRETS = {
    "kv-fleet-dev/github-pat": "a1",
    "kv-fleet-staging/github-pat": "b2",
    "kv-fleet-prod-weu/flux-deploy-key": "c3",
}
PLATFORM_CLUSTERS = {  # (resource group, cluster, tags, Key Vault secret) of the repository's AKS stacks
    "dev": ("rg-fleet-dev", "aks-dev-weu", {"environment": "dev", "owner": "platform"}, "kv-fleet-dev/github-pat"),
    "staging": (
        "rg-fleet-staging",
        "aks-staging-weu",
        {"environment": "staging", "owner": "platform"},
        "kv-fleet-staging/github-pat",
    ),
    "prod-weu": (
        "rg-fleet-prod-weu",
        "aks-prod-weu",
        {"environment": "production", "owner": "platform"},
        "kv-fleet-prod-weu/flux-deploy-key",
    ),
}


def platform_fleet() -> dict[str, Any]:
    """The repository's example fleet as Azure holds it before its first rollout: the clusters, no Flux."""
    clusters = {
        f"{group}/{name}": {"kind": "aks", "location": "westeurope", "tags": {}, "flux": None}
        for group, name, _, _ in PLATFORM_CLUSTERS.values()
    }
    clusters["flux-demo-rg/flux-demo-arc"] = arc()
    return {"subscriptions": {SUBSCRIPTION: {"clusters": clusters}}, "broken": [], "secrets": SECRETS}


def platform_stages(pinned: str) -> str:
    """fleet.yaml as a promotion leaves it: `pinned` (a stage's `pins:` block) in each stage but edge's."""
    return GATE + (
        "stages:\n"
        f"  - name: dev\n    stacks: [dev]\n{pinned}"
        f"  - name: staging\n    stacks: [staging]\n{pinned}"
        "  - name: edge\n    profiles: [edge-store]\n    maxConcurrency: 10\n    maxFailures: 2\n    rollback: true\n"
        f'  - name: production\n    stacks: ["prod-*"]\n    approval: true\n    rollback: true\n{pinned}'
    )


@pytest.mark.parametrize("seed", journey_ids("promotion"))
def test_promotion_takes_a_configuration_to_production_through_exactly_the_stages_that_run_it(tmp_path, seed):
    stacks = ("dev", "staging", "edge-store-001", "prod-weu")
    azure = platform_fleet()
    journey = Journey(tmp_path, azure, PROMOTION_FLEET, stacks=stacks, kill=kill_of(seed, 11))

    journey.step(0, "rollout", "--approve", "production")  # the fleet as its stack files say
    # staging before dev pins the ref: refused offline, so its dry run is refused too (exit 1), not shown as a change
    journey.step(1, "promote", "platform", "--to", "v1.1.0", "--stage", "staging", "--dry-run")
    journey.step(0, "promote", "platform", "--to", "v1.1.0")  # dev
    # staging before dev runs it: refused once Azure says dev does not run it yet
    journey.step(1, "promote", "platform", "--to", "v1.1.0", "--stage", "staging")
    journey.step(0, "rollout", "--stage", "dev")
    journey.step(0, "promote", "platform", "--to", "v1.1.0")  # staging
    journey.step(0, "rollout", "--stage", "staging")
    journey.step(0, "promote", "platform", "--to", "v1.1.0")  # production: no edge stack runs platform
    journey.step(0, "rollout", "--stage", "production", "--approve", "production")
    journey.step(0, "promote", "platform", "--to", "v1.1.0")  # every stage that runs it does: nothing to do
    journey.step(0, "status")

    fleet = platform_stages("    pins:\n      platform: {tag: v1.1.0}\n")
    v110 = {"tag": "v1.1.0"}
    expected_azure = copy.deepcopy(azure)
    clusters = expected_azure["subscriptions"][SUBSCRIPTION]["clusters"]
    for stack, (group, name, tags, _) in PLATFORM_CLUSTERS.items():
        production = stack == "prod-weu"
        configuration = platform(
            v110,
            apps="./apps/production" if production else "./apps/staging",
            url="ssh://git@github.com/fluxcd/flux2-kustomize-helm-example" if production else DEMO_URL,
        )
        clusters[f"{group}/{name}"].update(
            tags=tags, flux=flux("1.23.0" if production else NEWEST_FLUX_EXTENSION, platform=configuration)
        )
    clusters["flux-demo-rg/flux-demo-arc"]["flux"] = flux(**{"gitops-demo": gitops_demo({"branch": "main"})})
    backend = {
        stack: {
            "updates": ["succeeded", "succeeded"],
            "outputs": outputs(
                SUBSCRIPTION, group, name, "aks", {"platform": v110}, {f"keyvault:{secret}": SECRETS[secret]}
            ),
        }
        for stack, (group, name, _, secret) in PLATFORM_CLUSTERS.items()
    }
    backend["edge-store-001"] = {
        "updates": ["succeeded"],
        "outputs": outputs(SUBSCRIPTION, "flux-demo-rg", "flux-demo-arc", "arc", {"gitops-demo": {"branch": "main"}}),
    }
    repository = Path(__file__).resolve().parents[2] / "stacks"
    files = {f"Pulumi.{s}.yaml": (repository / f"Pulumi.{s}.yaml").read_text(encoding="utf-8") for s in stacks}
    expected = {
        "files": {**files, "fleet.yaml": fleet, **profiles()},
        "backend": backend,
        "azure": timeless(expected_azure),
    }
    assert_world(journey, expected)


@pytest.mark.parametrize("seed", journey_ids("kubernetes"))
def test_kubernetes_is_promoted_one_minor_at_a_time_through_the_aks_stages_each_rolled_out(tmp_path, seed):
    stacks = ("dev", "staging", "edge-store-001", "prod-weu")
    azure = platform_fleet()
    for group, name, _, _ in PLATFORM_CLUSTERS.values():  # the world tracks the AKS clusters' versions
        azure["subscriptions"][SUBSCRIPTION]["clusters"][f"{group}/{name}"]["kubernetesVersion"] = "1.35.1"
    journey = Journey(tmp_path, azure, PROMOTION_FLEET, stacks=stacks, kill=kill_of(seed, 10))

    journey.step(0, "rollout", "--approve", "production")  # the fleet as its stack files say: 1.35
    journey.step(1, "promote", "kubernetes", "--to", "1.37")  # skips 1.36: refused offline
    journey.step(0, "promote", "kubernetes", "--to", "1.36")  # dev
    journey.step(1, "promote", "kubernetes", "--to", "1.36")  # staging: dev's cluster still runs 1.35.1
    journey.step(0, "rollout", "--stage", "dev")
    journey.step(0, "promote", "kubernetes", "--to", "1.36")  # staging
    journey.step(0, "rollout", "--stage", "staging")
    journey.step(0, "promote", "kubernetes", "--to", "1.36")  # production: edge has no AKS cluster
    journey.step(0, "rollout", "--stage", "production", "--approve", "production")
    journey.step(0, "promote", "kubernetes", "--to", "1.36")  # every AKS stage runs it: nothing to do

    said = {" ".join(step.args): step for step in journey.steps}
    assert (
        "refused: stage dev: dev runs kubernetes 1.35: 1.37 skips 1.36: AKS upgrades a control plane one minor at a "
        "time: promote kubernetes --to 1.36 first" in said["promote kubernetes --to 1.37"].stderr
    )
    fleet = platform_stages('    pins:\n      kubernetes: "1.36"\n')
    main = {"branch": "main"}
    expected_azure = copy.deepcopy(azure)
    clusters = expected_azure["subscriptions"][SUBSCRIPTION]["clusters"]
    refs = {}
    for stack, (group, name, tags, _) in PLATFORM_CLUSTERS.items():
        production = stack == "prod-weu"
        ref = {"tag": "v1.0.0"} if production else main
        refs[stack] = ref
        configuration = platform(
            ref,
            apps="./apps/production" if production else "./apps/staging",
            url="ssh://git@github.com/fluxcd/flux2-kustomize-helm-example" if production else DEMO_URL,
        )
        clusters[f"{group}/{name}"].update(
            tags=tags,
            kubernetesVersion="1.36",
            flux=flux("1.23.0" if production else NEWEST_FLUX_EXTENSION, platform=configuration),
        )
    clusters["flux-demo-rg/flux-demo-arc"]["flux"] = flux(**{"gitops-demo": gitops_demo(main)})
    backend = {
        stack: {
            "updates": ["succeeded", "succeeded"],
            "outputs": outputs(
                SUBSCRIPTION, group, name, "aks", {"platform": refs[stack]}, {f"keyvault:{secret}": SECRETS[secret]}
            ),
        }
        for stack, (group, name, _, secret) in PLATFORM_CLUSTERS.items()
    }
    backend["edge-store-001"] = {
        "updates": ["succeeded"],
        "outputs": outputs(SUBSCRIPTION, "flux-demo-rg", "flux-demo-arc", "arc", {"gitops-demo": main}),
    }
    repository = Path(__file__).resolve().parents[2] / "stacks"
    files = {f"Pulumi.{s}.yaml": (repository / f"Pulumi.{s}.yaml").read_text(encoding="utf-8") for s in stacks}
    expected = {
        "files": {**files, "fleet.yaml": fleet, **profiles()},
        "backend": backend,
        "azure": timeless(expected_azure),
    }
    assert_world(journey, expected)


# --------------------------------------------------------------------------------------------- drift


@pytest.mark.parametrize("seed", journey_ids("drift"))
def test_drift_finds_a_configuration_changed_in_azure_remediates_it_and_is_clean_after(tmp_path, seed):
    names = ("store-1", "store-2")
    stores = {f"rg-stores/{name}": arc({"fleet": "stores"}) for name in names}
    azure = {"subscriptions": {SUBSCRIPTION: {"clusters": stores}}, "broken": [], "secrets": {}}
    files = {f"Pulumi.{name}.yaml": store_file(name) for name in names}
    journey = Journey(tmp_path, azure, FAILURE_FLEET, files=files, kill=kill_of(seed, 4))

    journey.step(0, "rollout")
    with journey.azure.changing() as state:  # someone runs `az k8s-configuration flux update ... --tag v1.0.1-hotfix`
        clusters = state["subscriptions"][SUBSCRIPTION]["clusters"]
        clusters["rg-stores/store-2"]["flux"]["configurations"]["gitops-demo"]["ref"] = {"tag": "v1.0.1-hotfix"}
    found = journey.step(3, "drift")
    remediated = journey.step(3, "drift", "--remediate")  # drift was found (3), and the remediation put it right
    journey.step(0, "drift")

    assert "store-2" in found.stdout and "v1.0.1-hotfix" in found.stdout, found
    if journey.kill_at != 2:  # run again after a kill, it may find the drift already put right
        assert "remediation: updated (run " in remediated.stdout, remediated
    v1 = {"tag": "v1.0.0"}
    expected_azure = copy.deepcopy(azure)
    for key in stores:
        expected_azure["subscriptions"][SUBSCRIPTION]["clusters"][key]["flux"] = flux(
            **{"gitops-demo": gitops_demo(v1)}
        )
    expected = {
        "files": {**files, "fleet.yaml": FAILURE_FLEET, **profiles()},
        "backend": {
            name: {
                "updates": ["succeeded", "succeeded"] if name == "store-2" else ["succeeded"],  # only the drifted
                "outputs": outputs(SUBSCRIPTION, "rg-stores", name, "arc", {"gitops-demo": v1}),
            }
            for name in names
        },
        "azure": timeless(expected_azure),
    }
    assert_world(journey, expected)


# --------------------------------------------------------------------------------------------- retirement


@pytest.mark.parametrize("seed", journey_ids("retirement"))
def test_retirement_prunes_the_stack_of_a_cluster_deleted_in_azure_and_keeps_one_merely_unread(tmp_path, seed):
    names = ("store-berlin", "store-paris", "store-rome")
    running = flux(**{"gitops-demo": gitops_demo({"branch": "main"})})  # rolled out before the story begins
    stores = {f"rg-stores/{name}": arc({"fleet": "stores"}, running) for name in names}
    oslo = f"{store_file('store-oslo').rstrip()[:-1]}, subscriptionId: {OTHER_SUBSCRIPTION}}}\n"
    azure = {
        "subscriptions": {
            SUBSCRIPTION: {"clusters": stores},
            OTHER_SUBSCRIPTION: {"clusters": {"rg-stores/store-oslo": arc({"fleet": "stores"}, running)}},
        },
        "broken": [],
        "secrets": {},
    }
    files = {f"Pulumi.{name}.yaml": store_file(name) for name in names} | {"Pulumi.store-oslo.yaml": oslo}
    journey = Journey(tmp_path, azure, BOOTSTRAP_FLEET, files=files, kill=kill_of(seed, 5))
    select = ("--select", "kind:arc tag:fleet=stores")

    journey.step(0, "inventory", *select)
    with journey.azure.changing() as state:
        clusters = state["subscriptions"][SUBSCRIPTION]["clusters"]
        del clusters["rg-stores/store-paris"]  # `az connectedk8s delete`: gone
        clusters["rg-stores/store-rome"]["readable"] = False  # its role assignment removed: unread, not gone
    # store-paris gone; store-rome unconfirmed (ARM answers 403): the picture is incomplete (1, over 3), never deleted
    journey.step(1, "inventory", *select)
    # Only the other subscription searched: the stacks without subscriptionId live in the default one, which was not
    # searched: unconfirmed (1), nothing deleted.
    journey.step(1, "inventory", *select, "--subscription", OTHER_SUBSCRIPTION, "--prune")
    journey.step(1, "inventory", *select, "--prune")  # store-paris's file deleted, store-rome's kept
    status = journey.step(1, "status")  # part of the fleet unread: store-rome
    [rome] = [line for line in status.stdout.splitlines() if "arc rg-stores/store-rome" in line]
    assert rome.split()[5:] == ["unread", "-", "unread", "unread"], status  # state, kubernetes, extension, flux
    assert "store-rome: unread: cannot read" in status.stdout and "not found" not in status.stdout, status

    expected_azure = copy.deepcopy(azure)
    clusters = expected_azure["subscriptions"][SUBSCRIPTION]["clusters"]
    del clusters["rg-stores/store-paris"]
    clusters["rg-stores/store-rome"]["readable"] = False
    kept = {name: text for name, text in files.items() if name != "Pulumi.store-paris.yaml"}
    expected = {
        "files": {**kept, "fleet.yaml": BOOTSTRAP_FLEET, **profiles()},
        "backend": {},
        "azure": timeless(expected_azure),
    }
    assert_world(journey, expected)


def test_two_promotions_at_once_both_land_each_in_the_stage_that_runs_its_configuration(tmp_path):
    stacks = ("dev", "staging", "edge-store-001", "prod-weu")
    azure = platform_fleet()
    journey = Journey(tmp_path, azure, PROMOTION_FLEET, stacks=stacks)

    # Two teams, two CI jobs, one fleet.yaml: neither change may be lost, and neither goes where its
    # configuration does not run (gitops-demo runs on the edge only, platform everywhere but the edge).
    journey.together(0, ("promote", "platform", "--to", "v1.1.0"), ("promote", "gitops-demo", "--to", "v2.0.0"))

    fleet = PROMOTION_FLEET.replace(
        "  - name: dev\n    stacks: [dev]\n",
        "  - name: dev\n    stacks: [dev]\n    pins:\n      platform: {tag: v1.1.0}\n",
    ).replace(
        "    rollback: true\n  - name: production",
        "    rollback: true\n    pins:\n      gitops-demo: {tag: v2.0.0}\n  - name: production",
    )
    repository = Path(__file__).resolve().parents[2] / "stacks"
    files = {f"Pulumi.{s}.yaml": (repository / f"Pulumi.{s}.yaml").read_text(encoding="utf-8") for s in stacks}
    expected = {"files": {**files, "fleet.yaml": fleet, **profiles()}, "backend": {}, "azure": timeless(azure)}
    assert_world(journey, expected)


# --------------------------------------------------------------------------------------------- a new cluster

NEW_CLUSTER_FLEET = GATE + 'stages:\n  - name: production\n    stacks: ["prod-*"]\n'


@pytest.mark.parametrize("seed", journey_ids("new-cluster"))
def test_a_new_aks_cluster_with_a_pinned_extension_is_created_by_its_first_rollout(tmp_path, seed):
    azure = {"subscriptions": {SUBSCRIPTION: {"clusters": {}}}, "broken": [], "secrets": SECRETS}
    journey = Journey(tmp_path, azure, NEW_CLUSTER_FLEET, stacks=("prod-weu",), kill=kill_of(seed, 2))

    journey.step(0, "rollout")  # prod-weu pins microsoft.flux 1.23.0 on a cluster its update creates
    journey.step(0, "status")

    group, name, tags, secret = PLATFORM_CLUSTERS["prod-weu"]
    v100 = {"tag": "v1.0.0"}
    configuration = platform(
        v100, apps="./apps/production", url="ssh://git@github.com/fluxcd/flux2-kustomize-helm-example"
    )
    expected_azure = copy.deepcopy(azure)
    expected_azure["subscriptions"][SUBSCRIPTION]["clusters"][f"{group}/{name}"] = {
        "kind": "aks",
        "location": "westeurope",
        "tags": tags,
        "flux": flux("1.23.0", platform=configuration),
    }
    repository = Path(__file__).resolve().parents[2] / "stacks"
    expected = {
        "files": {
            "Pulumi.prod-weu.yaml": (repository / "Pulumi.prod-weu.yaml").read_text(encoding="utf-8"),
            "fleet.yaml": NEW_CLUSTER_FLEET,
            **profiles(),
        },
        "backend": {
            "prod-weu": {
                "updates": ["succeeded"],
                "outputs": outputs(SUBSCRIPTION, group, name, "aks", {"platform": v100}, {f"keyvault:{secret}": "c3"}),
            }
        },
        "azure": timeless(expected_azure),
    }
    assert_world(journey, expected)
