"""A stack's config as Pulumi holds it: `namespace:name` keys under `config:`, split by namespace and checked."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


from modules.spec.errors import KEY_PART_MAX, NAMESPACE, Loc, SpecError, SpecIssue, bounded, key_path, shown
from modules.spec.files import read_yaml


# The config keys of the azure-native provider (pulumi-azure-native 3.x, config/vars.py): the only `azure-native:`
# keys a stack may set.
AZURE_NATIVE_KEYS = (
    "auxiliaryTenantIds",
    "clientCertificatePassword",
    "clientCertificatePath",
    "clientId",
    "clientSecret",
    "disableInstanceDiscovery",
    "disablePulumiPartnerId",
    "environment",
    "location",
    "metadataHost",
    "msiEndpoint",
    "oidcRequestToken",
    "oidcRequestUrl",
    "oidcToken",
    "oidcTokenFilePath",
    "partnerId",
    "subscriptionId",
    "tenantId",
    "useDefaultAzureCredential",
    "useMsi",
    "useOidc",
)
_CHECKED_NAMESPACES = (NAMESPACE, "azure-native")


def split_config(file: str, config: Mapping[Any, Any]) -> tuple[dict[str, Any], list[SpecIssue]]:
    """A stack's config keys: the `fluxfleet:` ones by name (a bare key is the project's, fluxfleet's), and what is
    wrong with the keys: a namespace that is a typo of fluxfleet or azure-native, an azure-native key the provider
    does not have, a key written both bare and with its namespace. Other namespaces (pulumi:, a user's) are allowed."""
    raw: dict[str, Any] = {}
    written: dict[str, str] = {}  # name -> the key as written
    issues = []
    for key, value in config.items():
        if not isinstance(key, str):
            issues.append(SpecIssue(file, shown(key), "a config key is a string such as fluxfleet:cluster"))
            continue
        where = bounded(key, KEY_PART_MAX)
        namespace, colon, name = key.partition(":")  # Pulumi's `namespace:name`: the first colon
        if not colon:
            namespace, name = NAMESPACE, key
        if namespace == NAMESPACE:
            if name in written:
                message = f"the same key as {shown(written[name])} (a bare key is in the project namespace, fluxfleet)"
                issues.append(SpecIssue(file, where, message + ": keep one"))
                continue
            written[name], raw[name] = key, value
        elif namespace == "azure-native":
            if name not in AZURE_NATIVE_KEYS:
                guess = _close(name, AZURE_NATIVE_KEYS)
                hint = f" (did you mean 'azure-native:{guess}'?)" if guess else ""
                issues.append(SpecIssue(file, where, "not a config key of the azure-native provider" + hint))
        elif guess := _close(namespace, _CHECKED_NAMESPACES, cutoff=0.8):
            issues.append(SpecIssue(file, where, f"unknown namespace {shown(namespace)} (did you mean {guess!r}?)"))
    return raw, issues


def _close(word: str, known: Sequence[str], cutoff: float = 0.6) -> str | None:
    """The known word `word` is likely a typo of: the same but for case, else the closest (difflib)."""
    if len(word) > KEY_PART_MAX:
        return None
    folded = {item.lower(): item for item in known}
    guess = difflib.get_close_matches(word.lower(), list(folded), n=1, cutoff=cutoff)
    return folded[guess[0]] if guess else None


def stack_file_path(loc: Loc) -> str:
    """A key path of a stack file as errors name config keys: ('config', 'fluxfleet:flux', 'configurations') ->
    'fluxfleet:flux.configurations'."""
    if len(loc) < 2 or loc[0] != "config" or not isinstance(loc[1], str):
        return key_path(loc, "")
    namespace, colon, name = loc[1].partition(":")
    return key_path((name, *loc[2:]), namespace) if colon else key_path(loc[1:])


def read_config(path: Path, file: str, what: str, *, text: str | None = None) -> Mapping[Any, Any]:
    """The `config:` map of a stack file or a profile (`what`), read as every user file is (see read_yaml; `text`:
    the file's, when the caller has read it)."""
    document = read_yaml(path, file, stack_file_path, text=text)
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise SpecError([SpecIssue(file, "-", f"a {what} is a YAML mapping with a `config:` key")])
    config = document.get("config") or {}
    if not isinstance(config, Mapping):
        raise SpecError([SpecIssue(file, "config", "must be a mapping of config keys")])
    return config
