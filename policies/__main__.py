"""The fluxfleet CrossGuard policy pack: `pulumi preview --policy-pack policies`."""

import sys
from pathlib import Path

# The rules are shared with `fluxfleet plan`, which lives one directory up: import them from there.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack  # noqa: E402

from policies.pack import policies  # noqa: E402

PolicyPack("fluxfleet", policies=policies())
