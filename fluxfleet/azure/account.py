"""Which Azure subscription a command works in when the stack does not say."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

SUBSCRIPTION_VARIABLES = ("AZURE_SUBSCRIPTION_ID", "ARM_SUBSCRIPTION_ID")


def default_subscription(environ: Mapping[str, str] | None = None, azure_dir: Path | None = None) -> str | None:
    """The subscription you are logged in to: AZURE_SUBSCRIPTION_ID / ARM_SUBSCRIPTION_ID, else the Azure CLI's
    default (`az account set`), as azure-native picks it for `pulumi up`."""
    environ = os.environ if environ is None else environ
    for variable in SUBSCRIPTION_VARIABLES:
        if environ.get(variable):
            return environ[variable]
    profile = (azure_dir or Path(environ.get("AZURE_CONFIG_DIR") or Path.home() / ".azure")) / "azureProfile.json"
    try:
        # The CLI writes this file with a byte-order mark.
        subscriptions = json.loads(profile.read_text(encoding="utf-8-sig")).get("subscriptions", [])
    except (OSError, ValueError, AttributeError):
        return None
    return next((s.get("id") for s in subscriptions if isinstance(s, dict) and s.get("isDefault")), None)
