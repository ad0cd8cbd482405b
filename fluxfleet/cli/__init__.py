"""The `fluxfleet` command line: one module per command, each declaring its options, turning them into the
command package's call, and mapping what it returns to output and an exit code (`fluxfleet/exits.py`)."""

from fluxfleet.cli import config, drift, inventory, plan, preflight, promote, rollout, status
from fluxfleet.cli.app import app

# Registered here, in the order help lists them.
COMMANDS = (
    plan.plan,
    config.config,
    promote.promote,
    preflight.preflight,
    rollout.rollout,
    drift.drift,
    status.status,
    inventory.inventory,
)
for command in COMMANDS:
    app.command(command.__name__)(command)

__all__ = ["app"]
