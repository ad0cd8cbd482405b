"""Which Azure subscription a command works in when the stack does not say."""

from __future__ import annotations

import configparser
import json
import os
from collections.abc import Mapping
from pathlib import Path

from modules.clouds import DEFAULT_CLOUD

SUBSCRIPTION_VARIABLES = ("AZURE_SUBSCRIPTION_ID", "ARM_SUBSCRIPTION_ID")


def default_subscription(
    environ: Mapping[str, str] | None = None, azure_dir: Path | None = None, cloud: str | None = None
) -> str | None:
    """The subscription you are logged in to: AZURE_SUBSCRIPTION_ID / ARM_SUBSCRIPTION_ID, else the Azure CLI's
    default (`az account set`), as azure-native picks it for `pulumi up`. With `cloud`, the Azure CLI's default in
    that cloud: the one it keeps for each cloud in clouds.config (what `az cloud set` returns to), else the current
    default if it is in that cloud (azureProfile.json's `environmentName`)."""
    environ = os.environ if environ is None else environ
    for variable in SUBSCRIPTION_VARIABLES:
        if environ.get(variable):
            return environ[variable]
    azure_dir = azure_dir or Path(environ.get("AZURE_CONFIG_DIR") or Path.home() / ".azure")
    if cloud is not None and (subscription := _cloud_subscription(azure_dir / "clouds.config", cloud)):
        return subscription
    try:
        # The CLI writes this file with a byte-order mark.
        subscriptions = json.loads((azure_dir / "azureProfile.json").read_text(encoding="utf-8-sig")).get(
            "subscriptions", []
        )
    except (OSError, ValueError, AttributeError):
        return None
    return next(
        (
            s.get("id")
            for s in subscriptions
            if isinstance(s, dict)
            and s.get("isDefault")
            and (cloud is None or s.get("environmentName", DEFAULT_CLOUD) == cloud)
        ),
        None,
    )


def _cloud_subscription(path: Path, cloud: str) -> str | None:
    """The Azure CLI's default subscription of `cloud` (its clouds.config); None when it keeps none, or the file
    cannot be read (it is the CLI's, not the user's: a broken one means no default, not an error)."""
    clouds = configparser.ConfigParser(interpolation=None)
    try:
        clouds.read(path, encoding="utf-8")  # a missing file reads as empty
    except (configparser.Error, UnicodeDecodeError):
        return None
    return clouds.get(cloud, "subscription", fallback=None) or None
