"""A second process working on the same store as a test: `python -m tests.fluxfleet.runstate.child COMMAND ...`,
the store described by FLUXFLEET_TEST_STORE in its environment (JSON: tests/fluxfleet/runstate/conftest.py).

- append NAME TAG COUNT: COUNT appends of one line each, "TAG-I" padded to a length of its own;
- hold LOCK SECONDS: take the lock, say "held" (or "busy"), hold it SECONDS, release it;
- hand LOCK SECONDS: take the lock, hand its `fd` to a child process that lives SECONDS in a session of its own (as
  fluxfleet hands it to `pulumi up`), say that child's pid, then wait to be killed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fluxfleet.runstate.azblob import BlobStore, container_client_from_connection_string
from fluxfleet.runstate.local import LocalStore
from fluxfleet.runstate.store import StateStore, this_process


def open_store(spec: dict[str, Any]) -> StateStore:
    if spec["kind"] == "local":
        return LocalStore(Path(spec["root"]))
    container = container_client_from_connection_string(spec["connection_string"], spec["container"])
    return BlobStore(container, spec["prefix"], lease_seconds=spec["lease_seconds"])


def line(tag: str, index: int) -> bytes:
    """One append: its own text, of a length that varies with it (so that a torn or merged append shows)."""
    return f"{tag}-{index}-{'x' * ((index * 37) % 200)}\n".encode()


def main(argv: list[str]) -> int:
    store = open_store(json.loads(os.environ["FLUXFLEET_TEST_STORE"]))
    command, name = argv[0], argv[1]
    if command == "append":
        tag, count = argv[2], int(argv[3])
        for index in range(count):
            store.append(name, line(tag, index))
        return 0
    lock = store.lock(name)
    if not lock.try_acquire(this_process(f"test child {command}")):
        print("busy", flush=True)
        return 1
    if command == "hold":
        print("held", flush=True)
        time.sleep(float(argv[2]))
        lock.release()
        return 0
    if command == "hand":
        child = subprocess.Popen(
            [sys.executable, "-c", f"import time; time.sleep({float(argv[2])})"],
            pass_fds=(lock.fd,),
            start_new_session=True,
        )
        print(child.pid, flush=True)
        time.sleep(3600)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
