"""Azurite, Microsoft's Azure Storage emulator, as a test tool: its Blob service on a free loopback port, in memory,
silent, with the well-known development account (devstoreaccount1). `make test` installs it (npm ci of the pinned
package in this folder); nothing is fetched at run time, and its telemetry is off."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
MAIN = HERE / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
ACCOUNT = "devstoreaccount1"
# Azurite's published development key (https://learn.microsoft.com/azure/storage/common/storage-use-azurite): not a
# secret, but the tests treat it as one, and check that no message ever shows it.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
LISTENING = re.compile(rb"listens on http://127\.0\.0\.1:(\d+)")
START_SECONDS = 30


@dataclass
class Azurite:
    process: subprocess.Popen
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    def connection_string(self, key: str = KEY) -> str:
        return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};BlobEndpoint={self.endpoint};"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_azurite(workdir: Path, on_disk: bool = False) -> Azurite:
    """Start azurite-blob in `workdir` and wait until it listens; fail the test, saying how to install it, when it is
    not installed. `on_disk`: its data in `workdir`, so that an Azurite started again there has it (in memory
    otherwise)."""
    node = shutil.which("node")
    if node is None or not MAIN.exists():
        pytest.fail("Azurite is not installed: run `make test`, which installs it with npm (Node.js needed)")
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "azurite.log"
    log.unlink(missing_ok=True)  # a restart's "listens on" line is its own
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [
                node,
                str(MAIN),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                "0",  # a free port, chosen by the system: the line "listens on" says which
                *(
                    ("--location", str(workdir / "data"))
                    if on_disk
                    else ("--inMemoryPersistence", "--extentMemoryLimit", "256")
                ),
                "--silent",
                "--disableTelemetry",
                "--skipApiVersionCheck",  # azure-storage-blob may speak a newer API version than Azurite knows
            ],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + START_SECONDS
    seen = b""
    while time.monotonic() < deadline and process.poll() is None:
        seen = log.read_bytes()
        found = LISTENING.search(seen)
        if found:
            return Azurite(process, int(found.group(1)))
        time.sleep(0.05)
    process.kill()
    process.wait()
    pytest.fail(f"Azurite did not start within {START_SECONDS} s: {seen.decode('utf-8', 'replace')[-500:]}")
