"""Which resource declares each Flux configuration, as `plan` shows it (text, JSON, Markdown), and a configuration that
moves between azure-native's resource (API 2023-05-01) and fluxfleet's (2025-04-01): plan marks it destructive and
prints the state command that adopts the live one; the rollout refuses the update that would delete it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fluxfleet.cli import app
from fluxfleet.rollout.journal import RunStatus
from fluxfleet.runner import OperationResult, ResourceChange
from modules.flux_configuration_v2025 import TYPE
from tests.fluxfleet.rollout.test_orchestrator import Harness, fleet, stage

AZURE_NATIVE = "azure-native:kubernetesconfiguration:FluxConfiguration"
STACK = """\
config:
  fluxfleet:cluster: {kind: arc, name: flux-demo-arc, resourceGroup: flux-demo-rg}
  fluxfleet:flux:
    configurations:
      gitops-demo:
        git: {url: 'https://github.com/fluxcd/flux2-kustomize-helm-example', branch: main}
        kustomizations: {apps: {path: ./apps/staging, prune: true}}
      podinfo:
        adoptLiveConfiguration: true
        oci:
          url: oci://ghcr.io/stefanprodan/manifests/podinfo
          tag: 6.6.2
          verify:
            provider: cosign
            matchOidcIdentity:
              - issuer: '^https://token\\.actions\\.githubusercontent\\.com$'
                subject: '^https://github\\.com/stefanprodan/podinfo/.+$'
        kustomizations: {apps: {prune: true}}
"""


def stacks(tmp_path: Path) -> Path:
    directory = tmp_path / "stacks"
    directory.mkdir(exist_ok=True)
    (directory / "Pulumi.store.yaml").write_text(STACK)
    return directory


def plan(tmp_path: Path, *args: str):
    stacks(tmp_path)
    return CliRunner().invoke(app, ["plan", "--stacks-dir", "stacks", *args])


@pytest.fixture(autouse=True)
def short_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the text report wraps at 120 columns: short file names keep each line whole


def test_plan_json_says_which_resource_and_api_each_configuration_gets(tmp_path):
    result = plan(tmp_path, "--format", "json")
    assert result.exit_code == 0, result.output
    [stack] = json.loads(result.stdout)["stacks"]
    assert stack["fluxConfigurations"] == {
        "gitops-demo": {"api": "2023-05-01", "resource": AZURE_NATIVE, "because": [], "adoptLiveConfiguration": False},
        "podinfo": {
            "api": "2025-04-01",
            "resource": TYPE,
            "because": ["an oci source"],
            "adoptLiveConfiguration": True,
        },
    }
    by_name = {r["name"]: r for r in stack["resources"] if r["type"] in (AZURE_NATIVE, TYPE)}
    assert by_name["podinfo"]["type"] == TYPE and by_name["gitops-demo"]["type"] == AZURE_NATIVE
    assert by_name["podinfo"]["destructiveOnChange"] == (
        "replaced if scope, namespace change(s) or it moves to or from azure-native's resource (API 2023-05-01): "
        "that deletes everything Flux applied (prune)"
    )
    assert by_name["gitops-demo"]["destructiveOnChange"] == (  # unchanged for azure-native's
        "replaced if scope, namespace change(s): that deletes everything Flux applied (prune)"
    )


def test_plan_text_shows_the_api_and_the_command_that_adopts_the_live_configuration(tmp_path):
    result = plan(tmp_path)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "flux configuration gitops-demo  at branch main" in text
    assert "API 2023-05-01 (azure-native)" in text
    assert (
        "flux configuration podinfo  at tag 6.6.2 (stacks/Pulumi.store.yaml)  API 2025-04-01 (fluxfleet's resource: an oci "
        in text
    )
    urn = f"urn:pulumi:store::fluxfleet::fluxfleet:flux:Configuration${AZURE_NATIVE}::podinfo"
    assert (
        "i adopting a live configuration: once, before pulumi up, forget the old resource: "
        f"pulumi state delete -s store '{urn}'"
    ) in text
    assert "gitops-demo'" not in text  # no command for a configuration that does not adopt
    markdown = plan(tmp_path, "--format", "markdown").stdout
    assert (
        "Flux configuration `podinfo` at `tag 6.6.2` (`stacks/Pulumi.store.yaml`), API 2025-04-01 (fluxfleet's "
        "resource: an oci source):"
    ) in markdown


# --------------------------------------------------------------------------------------------- the rollout


def urn(stack: str, type_: str, name: str) -> str:
    return f"urn:pulumi:{stack}::fluxfleet::fluxfleet:flux:Configuration${type_}::{name}"


def moving(stack: str, old: str, new: str) -> OperationResult:
    """A preview in which a configuration moves: the new resource created, the old one deleted, under one name."""
    return OperationResult(
        stack,
        ok=True,
        changes=(
            ResourceChange(urn(stack, new, "platform"), new, "platform", "create"),
            ResourceChange(urn(stack, old, "platform"), old, "platform", "delete"),
        ),
    )


def test_the_rollout_refuses_a_configuration_that_moves_and_says_how_to_adopt_it(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a", "b", "c"], failures=3)))
    h.runner.previews["a"] = moving("a", AZURE_NATIVE, TYPE)
    h.runner.previews["b"] = moving("b", TYPE, AZURE_NATIVE)
    h.runner.previews["c"] = OperationResult(
        "c", ok=True, changes=(ResourceChange(urn("c", TYPE, "p"), TYPE, "p", "create"),)
    )
    assert h.start() is RunStatus.done
    assert h.runner.applied == {"c": 1}  # a new 2025-04-01 configuration is no move: applied
    record = h.record()
    assert record.stacks["a"].message == (
        "refused: Flux configuration platform moves to API 2025-04-01 (fluxfleet's resource): the update would delete "
        "the live configuration and, with prune on, everything Flux applied. Without deleting it: `pulumi state delete "
        f"'{urn('a', AZURE_NATIVE, 'platform')}'` (forgets the old resource, Azure keeps the configuration), then set "
        "adoptLiveConfiguration: true and update again (README: Migrating a Flux configuration)"
    )
    assert record.stacks["b"].message.startswith(
        "refused: Flux configuration platform moves to API 2023-05-01 (azure-native's resource)"
    )
    assert "`pulumi import` the live configuration" in record.stacks["b"].message


def test_the_rollout_refuses_replacing_the_2025_configuration_like_azure_natives(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a"])))
    change = ResourceChange(urn("a", TYPE, "platform"), TYPE, "platform", "replace", ("namespace",))
    h.runner.previews["a"] = OperationResult("a", ok=True, changes=(change,))
    assert h.start() is RunStatus.halted
    assert h.record().stacks["a"].message == (
        "refused: the update would replace Flux configuration platform (namespace): with prune on, that deletes "
        "everything Flux applied; apply it by hand if that is intended"
    )
