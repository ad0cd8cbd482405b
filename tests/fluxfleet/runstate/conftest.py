"""Fixtures of the run-state store's tests: Azurite, started once for the session (tests/tools/azurite), a fresh
container of it for each test, and each backend as a store that a child process can open too."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from azure.storage.blob import ContainerClient

from fluxfleet.runstate.azblob import container_client_from_connection_string
from fluxfleet.runstate.store import StateStore
from tests.fluxfleet.runstate.child import open_store

LEASE_SECONDS = 15  # Azure's shortest lease: what a test that waits for one to expire waits


@pytest.fixture
def container(azurite) -> Iterator[ContainerClient]:
    """A container of its own for the test, empty."""
    client = container_client_from_connection_string(azurite.connection_string(), f"t{uuid.uuid4().hex[:20]}")
    client.create_container()
    yield client
    client.delete_container()


@dataclass
class Backend:
    kind: str
    spec: dict[str, Any]  # what a child process opens the same store from (tests/fluxfleet/runstate/child.py)
    store: StateStore

    @property
    def environment(self) -> dict[str, str]:
        return {"FLUXFLEET_TEST_STORE": json.dumps(self.spec)}


@pytest.fixture(params=["local", "blob"])
def backend(request, tmp_path) -> Backend:
    """Each backend in turn: files in a directory of the test's own, or a container of Azurite."""
    if request.param == "local":
        spec: dict[str, Any] = {"kind": "local", "root": str(tmp_path / "runs")}
    else:
        container = request.getfixturevalue("container")
        azurite = request.getfixturevalue("azurite")
        spec = {
            "kind": "blob",
            "connection_string": azurite.connection_string(),
            "container": container.container_name,
            "prefix": ".fluxfleet/runs/",
            "lease_seconds": LEASE_SECONDS,
        }
    return Backend(request.param, spec, open_store(spec))
