"""The Azure clouds a stack may name (`cluster.cloud`), and what each means to the program and the command line.

A cloud is named as the Azure CLI names it (`az cloud list`). Its Microsoft Entra authority comes from azure-identity
(`AzureAuthorityHosts`), its ARM endpoint and token audience from azure-mgmt-core (`get_arm_endpoints` of azure-core's
`AzureClouds`): the SDKs' own settings, never URLs written here. Resource Graph is an ARM resource provider, so it is
reached at the cloud's ARM endpoint. Two things no installed SDK holds are in the table: azure-native's name of the
cloud (its `environment` config: `public`, `china`, `usgovernment`, pulumi-azure-native 3.x config/vars.py), and the
Key Vault DNS suffix (Microsoft's "Access Azure Key Vault behind a firewall", global and Azure China editions, and the
Azure Government developer guide; Az PowerShell's `AzureKeyVaultDnsSuffix` of each environment says the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

CloudName = Literal["AzureCloud", "AzureChinaCloud", "AzureUSGovernment"]
DEFAULT_CLOUD: CloudName = "AzureCloud"


@dataclass(frozen=True)
class Cloud:
    name: CloudName  # as the Azure CLI names it
    environment: str  # azure-native:environment
    sdk_cloud: str  # the member of azure.core.AzureClouds
    authority_host: str  # the attribute of azure.identity.AzureAuthorityHosts
    key_vault_dns_suffix: str

    @property
    def authority(self) -> str:
        """The Microsoft Entra authority host credentials sign in at (azure-identity's)."""
        from azure.identity import AzureAuthorityHosts

        return getattr(AzureAuthorityHosts, self.authority_host)

    @property
    def azure_clouds(self) -> Any:
        from azure.core import AzureClouds

        return AzureClouds[self.sdk_cloud]

    @property
    def resource_manager(self) -> str:
        """The ARM endpoint (azure-mgmt-core's), `https://management.azure.com/` in the public cloud."""
        return self._arm_endpoints()["resource_manager"]

    @property
    def credential_scopes(self) -> list[str]:
        """The scopes of an ARM token (azure-mgmt-core's): the cloud's ARM audience + `/.default`."""
        return list(self._arm_endpoints()["credential_scopes"])

    def client_settings(self) -> dict[str, Any]:
        """What an azure-mgmt client needs to speak to this cloud's ARM: `base_url=` and `credential_scopes=`."""
        return {"base_url": self.resource_manager, "credential_scopes": self.credential_scopes}

    def default_credential(self) -> Any:
        """`DefaultAzureCredential` signing in at this cloud's authority: what every Azure client of fluxfleet uses
        unless it is given a credential."""
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential(authority=self.authority)

    def vault_url(self, vault: str) -> str:
        return f"https://{vault}.{self.key_vault_dns_suffix}/"

    def _arm_endpoints(self) -> dict[str, Any]:
        from azure.mgmt.core.tools import get_arm_endpoints

        return get_arm_endpoints(self.azure_clouds)


CLOUDS: dict[str, Cloud] = {
    cloud.name: cloud
    for cloud in (
        Cloud("AzureCloud", "public", "AZURE_PUBLIC_CLOUD", "AZURE_PUBLIC_CLOUD", "vault.azure.net"),
        Cloud("AzureChinaCloud", "china", "AZURE_CHINA_CLOUD", "AZURE_CHINA", "vault.azure.cn"),
        Cloud(
            "AzureUSGovernment", "usgovernment", "AZURE_US_GOVERNMENT", "AZURE_GOVERNMENT", "vault.usgovcloudapi.net"
        ),
    )
}
ENVIRONMENTS: dict[str, Cloud] = {cloud.environment: cloud for cloud in CLOUDS.values()}


def cloud(name: str | None) -> Cloud:
    """The cloud of this name (None: the public cloud); KeyError for a name the spec would have refused."""
    return CLOUDS[name or DEFAULT_CLOUD]
