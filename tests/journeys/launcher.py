"""`fluxfleet ARGS` as a user types it, in a world whose Azure is simulated: `python launcher.py ARGS`.

Only Azure's control plane is replaced, at its two seams: the credential (`Cloud.default_credential`, which every
Azure client of fluxfleet uses unless given one) and azure-core's default HTTP transport, which becomes a
ScriptedTransport answering from the world's state file (JOURNEY_WORLD; see world.py). Everything else is the real
command line: `fluxfleet.cli`'s app, the real Azure SDK clients and readers, the Automation API over the `pulumi`
first on PATH (the scripted one)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import azure.core.pipeline.transport._requests_basic as requests_basic

    from modules.clouds import Cloud
    from tests.azure_transport import FakeCredential, ScriptedTransport
    from tests.journeys.world import WORLD_ENV, World, responder

    transport = ScriptedTransport(responder(World(Path(os.environ[WORLD_ENV]))))
    Cloud.default_credential = lambda self: FakeCredential()  # no identity platform here
    # azure-core builds its default transport here when a client is given none (azure/core/_pipeline_client.py)
    requests_basic.RequestsTransport = lambda **options: transport

    from fluxfleet.cli import app

    app(prog_name="fluxfleet")


if __name__ == "__main__":
    main()
