"""The `fluxfleet` command line: one module per command, each declaring its options, turning them into the
command package's call, and mapping what it returns to output and an exit code (`fluxfleet/exits.py`)."""

from fluxfleet.cli import (
    affected,
    config,
    decommission,
    drift,
    inventory,
    plan,
    preflight,
    promote,
    rollout,
    runs,
    status,
    workflows,
)
from fluxfleet.cli.app import app, register

# In the order of a fleet's day, as help lists them: check the change offline, see which stacks it affects, look at a
# stack, check Azure is ready, write the CI that rolls out, roll out, see where the runs stand, look at the fleet,
# promote a ref, find drift, find clusters, retire them.
COMMANDS = (
    plan,
    affected,
    config,
    preflight,
    workflows,
    rollout,
    runs,
    status,
    promote,
    drift,
    inventory,
    decommission,
)
for module in COMMANDS:
    register(getattr(module, module.__name__.rsplit(".", 1)[1]), module.EXAMPLES)

__all__ = ["app"]
