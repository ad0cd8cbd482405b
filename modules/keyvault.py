"""Secret values for the program: Key Vault references and Pulumi secret config, always as Pulumi secrets.

The Key Vault reader is the narrow interface: `KeyVaultReader` reads for real with azure-keyvault-secrets
and DefaultAzureCredential; `OfflineKeyVault` (for `plan` and tests) returns a marked placeholder and
opens no connection. Whatever the reader, `Secrets.resolve` hands back `pulumi.Output.secret` values, checks a
value read for a field that takes a particular kind (an SSH private key) as the spec checks a decrypted one, and
remembers which version of each Key Vault secret it read (the stack exports those, never the values, so that
`fluxfleet drift` can tell a rotated secret the cluster has not received yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import pulumi

from modules.clouds import cloud
from modules.spec import ConfigSecret, KeyVaultRef, SecretSource
from modules.spec.errors import Loc, key_path
from modules.spec.fields import secret_value_problem

OFFLINE_PLACEHOLDER = "offline-placeholder"


@dataclass(frozen=True)
class SecretValue:
    value: str
    version: str | None  # the Key Vault version read: the current one, unless the reference pins a version
    known: bool = True  # False for a stand-in (offline): there is no value to check

    def __repr__(self) -> str:  # the value never reaches a repr, a log line or an error
        return f"SecretValue([secret], version={self.version!r})"

    __str__ = __repr__


class SecretValueReader(Protocol):
    def get_secret(self, ref: KeyVaultRef) -> SecretValue: ...


class KeyVaultReader:
    """Reads secrets from Azure Key Vault with one client per vault, and (unless given one) one credential per cloud:
    `DefaultAzureCredential` signing in at the reference's cloud's authority."""

    def __init__(self, credential: Any = None, **client_options: Any):
        self._credential = credential
        self._credentials: dict[str, Any] = {}  # cloud -> its DefaultAzureCredential
        self._client_options = client_options  # azure-core pipeline options, such as `transport`
        self._clients: dict[str, Any] = {}

    def get_secret(self, ref: KeyVaultRef) -> SecretValue:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            secret = self._client(ref).get_secret(ref.secret, ref.version)
        except ResourceNotFoundError:
            raise pulumi.RunError(f"{ref}: no such secret in Key Vault {ref.vault_url}") from None
        except AzureError as error:
            # The SDK's messages carry the status and the vault, never a secret value.
            reason = getattr(error, "message", None) or type(error).__name__
            raise pulumi.RunError(f"{ref}: cannot read the secret: {reason.splitlines()[0]}") from None
        if secret.value is None:
            raise pulumi.RunError(f"{ref}: the secret has no value")
        return SecretValue(secret.value, secret.properties.version)

    def _client(self, ref: KeyVaultRef) -> Any:
        vault_url = ref.vault_url
        if vault_url not in self._clients:
            from azure.keyvault.secrets import SecretClient

            credential = self._credential or self._credentials.get(ref.cloud)
            if credential is None:
                credential = cloud(ref.cloud).default_credential()
                self._credentials[ref.cloud] = credential
            # The token's audience is the vault's own: SecretClient takes it from the vault's challenge.
            self._clients[vault_url] = SecretClient(vault_url, credential, **self._client_options)
        return self._clients[vault_url]


class OfflineKeyVault:
    """Stands in for Key Vault where there is no Azure: a placeholder naming the reference, no network."""

    def get_secret(self, ref: KeyVaultRef) -> SecretValue:
        return SecretValue(f"{OFFLINE_PLACEHOLDER}:{ref}", None, known=False)


class Secrets:
    """Resolves the spec's secret sources to Pulumi secret outputs, reading each Key Vault secret once."""

    def __init__(self, key_vault: SecretValueReader):
        self._key_vault = key_vault
        self._cache: dict[KeyVaultRef, pulumi.Output[str]] = {}
        self._read: dict[KeyVaultRef, SecretValue] = {}
        self.versions: dict[str, str] = {}  # "keyvault:VAULT/SECRET" -> the version read

    def resolve(self, source: SecretSource, loc: Loc = ()) -> pulumi.Output[str]:
        """The secret as a Pulumi secret. `loc`, the field's key path (keys without the namespace), says which kind of
        value it takes: a Key Vault secret that is not one is a RunError naming the field and the reference, never
        the value (a Pulumi secret's value was checked with the spec)."""
        if isinstance(source, ConfigSecret):
            # None: the stack file's encrypted value, which only the Pulumi engine can decrypt.
            return pulumi.Output.secret(source.value if source.value is not None else f"{OFFLINE_PLACEHOLDER}:config")
        if source not in self._cache:
            read = self._key_vault.get_secret(source)
            if read.version:
                self.versions[str(source)] = read.version
            self._read[source] = read
            self._cache[source] = pulumi.Output.secret(read.value)
        read = self._read[source]
        if read.known and (problem := secret_value_problem(loc, read.value)):
            raise pulumi.RunError(f"{key_path(loc)}: the Key Vault secret {source} {problem}")
        return self._cache[source]
