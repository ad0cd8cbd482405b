"""Where a secret of the spec comes from: a Key Vault reference (`{keyVault, secret, version?}`) or a Pulumi secret
(`secure:` in the stack file, decrypted by the engine); never a plain value."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import PlainValidator, ValidationInfo

from modules.clouds import CLOUDS, DEFAULT_CLOUD
from modules.spec.credentials import MASK, credential_kind


@dataclass(frozen=True)
class KeyVaultRef:
    """A secret kept in Azure Key Vault; only the reference is ever in config."""

    vault: str  # a vault name, or its URI
    secret: str
    version: str | None = None
    cloud: str = DEFAULT_CLOUD  # the stack's cluster.cloud: where a vault name is looked up

    @property
    def vault_url(self) -> str:
        if self.vault.startswith("https://"):
            return self.vault.rstrip("/") + "/"
        return CLOUDS[self.cloud].vault_url(self.vault)

    def __str__(self) -> str:
        return f"keyvault:{self.vault}/{self.secret}" + (f"@{self.version}" if self.version else "")


@dataclass(frozen=True)
class ConfigSecret:
    """A Pulumi secret config value. `value` is None when it is still encrypted (offline plan)."""

    value: str | None = None

    def __repr__(self) -> str:  # the value never reaches a repr, a log line or an error
        return "ConfigSecret(encrypted)" if self.value is None else "ConfigSecret([secret])"

    __str__ = __repr__


SecretSource = KeyVaultRef | ConfigSecret

_VAULT_NAME = re.compile(r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")
_VAULT_URI = re.compile(r"^https://[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]\.vault\.[a-z0-9.]+/?$")
_KV_SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
_KV_VERSION = re.compile(r"^[0-9a-f]{32}$")


def key_vault_ref(vault: Any, secret: Any, version: Any = None, cloud: str = DEFAULT_CLOUD) -> KeyVaultRef:
    """A Key Vault reference with valid parts, or ValueError naming the part that is not (never its value)."""
    if not isinstance(vault, str) or not (_VAULT_NAME.fullmatch(vault) or _VAULT_URI.fullmatch(vault)):
        raise ValueError("keyVault must be a Key Vault name (3-24 letters, digits, hyphens) or its https URI")
    if not isinstance(secret, str) or not _KV_SECRET_NAME.fullmatch(secret):
        raise ValueError("secret must be a Key Vault secret name (1-127 letters, digits, hyphens)")
    if version is not None and (not isinstance(version, str) or not _KV_VERSION.fullmatch(version)):
        raise ValueError("version must be a Key Vault secret version (32 hex characters)")
    if vault.startswith("https://"):  # a URI says its cloud (a stack's rules refuse one of another cloud)
        suffix = vault.split("/")[2].partition(".")[2]
        cloud = next((c.name for c in CLOUDS.values() if c.key_vault_dns_suffix == suffix), cloud)
    return KeyVaultRef(vault, secret, version, cloud)


_REFERENCE_PARTS = {
    "keyVault": lambda part: bool(_VAULT_NAME.fullmatch(part) or _VAULT_URI.fullmatch(part)),
    "secret": _KV_SECRET_NAME.fullmatch,
    "version": _KV_VERSION.fullmatch,
}


def shown_reference(value: Any) -> dict[str, Any] | None:
    """A Key Vault reference as a report may show it, or None when `value` is no reference. A part that cannot be
    what it names (a token typed into `secret`), or that looks like a credential, is masked: a reference is no
    secret, but what a user typed into one may be."""
    if not isinstance(value, Mapping) or not set(value) <= set(_REFERENCE_PARTS) or "secret" not in value:
        return None
    return {
        key: part if isinstance(part, str) and _REFERENCE_PARTS[key](part) and not credential_kind(part) else MASK
        for key, part in value.items()
    }


def key_vault_ref_from_text(text: str, cloud: str = DEFAULT_CLOUD) -> KeyVaultRef:
    """`VAULT/SECRET[@VERSION]` (VAULT a name or its https URI), as command-line options take a reference."""
    vault, _, secret = text.rpartition("/")
    secret, _, version = secret.partition("@")
    return key_vault_ref(vault, secret, version or None, cloud)


PLAINTEXT_SECRET = (
    "plaintext secret: use a Key Vault reference {keyVault: NAME, secret: NAME} "
    "or `pulumi config set --secret --path` for this key"
)


def _parse_secret_source(value: Any, info: ValidationInfo) -> SecretSource:
    # Messages here never include the value: it may be the secret itself.
    if isinstance(value, Mapping):
        keys = set(value)
        if keys == {"secure"}:
            return ConfigSecret(None)  # `pulumi config set --secret`, as stored (encrypted) in the stack file
        unknown = keys - {"keyVault", "secret", "version"}
        if unknown:
            raise ValueError(
                f"unknown key(s) {', '.join(sorted(map(str, unknown)))} in a Key Vault reference "
                "(allowed: keyVault, secret, version)"
            )
        cloud = (info.context or {}).get("cloud", DEFAULT_CLOUD)  # the stack's, for a vault given by name
        return key_vault_ref(value.get("keyVault"), value.get("secret"), value.get("version"), cloud)
    if isinstance(value, str):
        if (info.context or {}).get("plain_strings_are_secret"):
            return ConfigSecret(value)
        raise ValueError(PLAINTEXT_SECRET)
    raise ValueError("must be a Key Vault reference {keyVault: NAME, secret: NAME, version?} or a Pulumi secret")


SecretField = Annotated[SecretSource, PlainValidator(_parse_secret_source)]
