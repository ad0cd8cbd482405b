"""Shared fixtures: a valid stack spec to vary, the program under mocks, and the fixture files of tests/fixtures."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.tools.azurite.server import Azurite, start_azurite

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
# Verbatim copies, kept in the repository so that a clone tests on its own (sources: arm-examples/INDEX.md,
# gitops-example/SOURCE.md): Azure REST API specs examples and swagger, and the Flux example GitOps repository.
ARM_EXAMPLES = FIXTURES / "arm-examples"
# The example stacks as single files, their profiles merged in: for tests that edit a stack file by text.
STANDALONE_STACKS = FIXTURES / "stacks"


def fixture_file(*parts: str) -> Path:
    """A file or folder of tests/fixtures (arm-examples/..., gitops-example); a test fails if it is missing."""
    path = FIXTURES.joinpath(*parts)
    assert path.exists(), f"{path} is missing from the repository's test fixtures"
    return path


BASE_STACK: dict[str, Any] = {
    "cluster": {
        "kind": "aks",
        "name": "aks-test",
        "resourceGroup": "rg-test",
        "location": "westeurope",
        "kubernetesVersion": "1.35",
        "nodePools": [{"name": "system", "vmSize": "Standard_D4s_v5", "count": 3, "mode": "System"}],
    },
    "flux": {
        "configurations": {
            "demo": {
                "namespace": "flux-system",
                "git": {
                    "url": "https://github.com/fluxcd/flux2-kustomize-helm-example",
                    "branch": "main",
                    "httpsUser": "git",
                    "httpsKey": {"keyVault": "kv-test", "secret": "github-pat"},
                },
                "kustomizations": {
                    "infra": {"path": "./infrastructure", "prune": True},
                    "apps": {"path": "./apps/staging", "prune": True, "dependsOn": ["infra"]},
                },
            }
        }
    },
}


@pytest.fixture(autouse=True)
def versions_table_fresh(monkeypatch):
    """`plan` and `preflight` tests see no stale-table notice on stderr whatever the calendar says; the notice's own
    tests set another date."""
    from modules import kubernetes_versions

    monkeypatch.setattr(kubernetes_versions, "today", lambda: kubernetes_versions.AS_OF)


@pytest.fixture(autouse=True)
def plan_cache_apart(tmp_path, monkeypatch):
    """Each test's `plan` keeps its cache in its own directory: never the project's, nor another test's."""
    monkeypatch.setenv("FLUXFLEET_CACHE_DIR", str(tmp_path / "plan-cache"))


@pytest.fixture(scope="session")
def azurite(tmp_path_factory) -> Iterator[Azurite]:
    """Azurite's Blob service for the session (tests/tools/azurite): the run-state store's tests and the races
    across machines."""
    server = start_azurite(tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


@pytest.fixture
def raw() -> dict[str, Any]:
    """A fresh copy of a valid `fluxfleet:` config to break in one place."""
    return copy.deepcopy(BASE_STACK)


CANARY = "ghp_CANARYcanary0123456789abcdefXYZ"  # a fake PAT that must never surface outside the secret
CANARY_VERSION = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # the Key Vault version the canary is read at
SECRET_SIG = "4dabf18193072939515e22adb298388d"


class CanaryKeyVault:
    """Key Vault stand-in: every secret reads as the canary, and every read is counted."""

    def __init__(self) -> None:
        self.reads: list[Any] = []

    def get_secret(self, ref: Any) -> Any:
        from modules.keyvault import SecretValue

        self.reads.append(ref)
        return SecretValue(CANARY, CANARY_VERSION)


@dataclass
class Deployment:
    records: list[Any]
    raw_inputs: dict[tuple[str, str], dict]  # (type, name) -> inputs as the mock engine received them

    def one(self, type_suffix: str) -> Any:
        [record] = [r for r in self.records if r.type.endswith(type_suffix)]
        return record

    def raw(self, type_suffix: str) -> dict:
        [inputs] = [v for (t, _), v in self.raw_inputs.items() if t.endswith(type_suffix)]
        return inputs


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and SECRET_SIG in value


def reveal(value: Any) -> Any:
    """The value inside a Pulumi secret as the engine received it."""
    assert is_secret(value), f"not a secret: {value!r}"
    return value["value"]


def deploy(raw: dict[str, Any], key_vault: Any = None, stack: str = "test", **parse: Any) -> Deployment:
    """Run the real program (`build_stack`) for a `fluxfleet:` config under Pulumi's mock engine."""
    from modules.spec import parse_spec

    return deploy_spec(parse_spec(raw, file=f"stacks/Pulumi.{stack}.yaml", **parse), key_vault, stack)


def deploy_spec(spec: Any, key_vault: Any = None, stack: str = "test") -> Deployment:
    from fluxfleet.mock_engine import ArmMocks, run_program
    from modules.keyvault import Secrets
    from modules.stack import build_stack

    raw_inputs: dict[tuple[str, str], dict] = {}

    class CapturingMocks(ArmMocks):
        def new_resource(self, args):
            raw_inputs[(args.typ, args.name)] = args.inputs
            return super().new_resource(args)

    secrets = Secrets(key_vault or CanaryKeyVault())
    records = run_program(stack, lambda: build_stack(spec, secrets), CapturingMocks())
    return Deployment(records, raw_inputs)


def unwrap_secrets(value: Any) -> Any:
    """Inputs as the provider sends them to ARM: secret markers removed, values kept."""
    if is_secret(value):
        return unwrap_secrets(value["value"])
    if isinstance(value, dict):
        return {key: unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(item) for item in value]
    return value


def add_stack_on_the_dev_cluster(stacks_dir: Path) -> Path:
    """`Pulumi.sandbox.yaml`: a stack that names the dev example's cluster (in other case, as Azure compares names)
    and is invalid otherwise: the pair must be found whichever of the two a command reads."""
    path = stacks_dir / "Pulumi.sandbox.yaml"
    path.write_text(
        "config:\n"
        "  fluxfleet:cluster: {name: AKS-DEV-WEU, resourceGroup: RG-Fleet-Dev, nodePools: 3}\n"
        "  fluxfleet:flux: {configurations: {platform: {scope: everywhere}}}\n"
    )
    return path


DEV_SHARED = (
    "the same cluster as stack sandbox (rg-fleet-dev/aks-dev-weu): two stacks would update one cluster; keep one"
)
