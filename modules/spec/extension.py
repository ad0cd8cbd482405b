"""`flux.extension`: the Azure-managed Flux extension's spec, its typed controller settings, how they map to the
settings keys the extension takes (one table, used by the component and by drift), and the rules on a pinned version
and on the controllers' settings."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field
from pydantic.alias_generators import to_camel

from modules.flux_extension_versions import pin_problem as extension_pin_problem
from modules.spec.errors import Loc, key_path, shown
from modules.spec.fields import Duration, Guid, Line, SettingValue, SpecModel, guid, parse_duration, pattern
from modules.spec.findings import Finding, Partner
from modules.spec.secrets import SecretField


# The extension's documented configuration settings, typed (`flux.extension.controllers`). A field left unset sends no
# key, and the extension keeps its own value. EXTENSION_SETTINGS below is the one table of the keys they are sent as.
CONCURRENT_MAX = 100  # reconciliations a controller runs at once: Flux's default is 4; more than this is a typo


class ControllerSpec(SpecModel):
    enabled: bool | None = None


class KustomizeControllerSpec(ControllerSpec):
    concurrent: Annotated[int, Field(ge=1, le=CONCURRENT_MAX)] | None = None
    requeue_dependency: Duration | None = None


class MultiTenancySpec(SpecModel):
    enforce: bool | None = None


class WorkloadIdentitySpec(SpecModel):
    enable: bool | None = None
    azure_client_id: Guid | None = None


class ControllersSpec(SpecModel):
    source: ControllerSpec = ControllerSpec()
    kustomize: KustomizeControllerSpec = KustomizeControllerSpec()
    helm: ControllerSpec = ControllerSpec()
    notification: ControllerSpec = ControllerSpec()
    image_automation: ControllerSpec = ControllerSpec()
    image_reflector: ControllerSpec = ControllerSpec()
    multi_tenancy: MultiTenancySpec = MultiTenancySpec()
    workload_identity: WorkloadIdentitySpec = WorkloadIdentitySpec()
    use_kubelet_identity: bool | None = None

    def configuration_settings(self) -> dict[str, str]:
        """The extension's settings keys for the fields that are set, with their values as the extension takes them
        (strings: `true`, `6`, `50s`)."""
        return {s.key: s.text(value) for s in EXTENSION_SETTINGS if (value := s.value_in(self)) is not None}

    @classmethod
    def from_configuration_settings(cls, settings: Mapping[str, str]) -> ControllersSpec:
        """The typed fields the extension's settings keys hold (what Azure returns); other keys are not read.
        Raises ValueError for a value that is not of its key's kind."""
        tree: dict[str, Any] = {}
        for setting in EXTENSION_SETTINGS:
            if setting.key in settings:
                *parents, last = setting.aliases
                node = tree
                for part in parents:
                    node = node.setdefault(part, {})
                node[last] = setting.parse(settings[setting.key])
        return cls.model_validate(tree, by_alias=True)


def go_duration(seconds: int) -> str:
    """Seconds as a Go duration, as Flux's flags take one: 50 -> `50s`, 90 -> `1m30s`, 3600 -> `1h`."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n) or "0s"


@dataclass(frozen=True)
class ExtensionSetting:
    """One documented setting of the extension: its key, the `controllers` field that holds it, the kind of its value
    and the value the extension runs with when the key is not sent (None where the documentation gives none)."""

    key: str
    field: tuple[str, ...]  # attribute names from ControllersSpec down
    kind: Literal["bool", "count", "duration", "guid"]
    default: str | None = None

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(to_camel(name) for name in self.field)

    @property
    def loc(self) -> Loc:
        return ("flux", "extension", "controllers", *self.aliases)

    def value_in(self, controllers: ControllersSpec) -> Any:
        value: Any = controllers
        for name in self.field:
            value = getattr(value, name)
        return value

    def text(self, value: Any) -> str:
        """A field's value as the setting's string."""
        if self.kind == "bool":
            return "true" if value else "false"
        return go_duration(value) if self.kind == "duration" else str(value)

    def parse(self, text: Any) -> Any:
        """A setting's string as the field's value; ValueError if it is not one (a setting set by hand, say)."""
        if not isinstance(text, str):
            raise ValueError(f"{shown(text)} is not a setting's string")
        if self.kind == "bool":
            if text.strip().lower() not in ("true", "false"):
                raise ValueError(f"{shown(text)} is not true or false")
            return text.strip().lower() == "true"
        if self.kind == "count":
            if not re.fullmatch(r"[0-9]{1,9}", text.strip()):
                raise ValueError(f"{shown(text)} is not a whole number")
            return int(text.strip())
        if self.kind == "duration":
            return parse_duration(text.strip())
        return guid(text.strip())


# The keys and their defaults, as Microsoft documents them (the spellings are the documentation's):
# - `<controller>.enabled` (source, kustomize, helm, notification on; image-automation, image-reflector off),
#   `useKubeletIdentity`, `workloadIdentity.enable` with `workloadIdentity.azureClientId`, and the kustomize
#   controller's `kustomize-controller.concurrent` and `kustomize-controller.requeue-dependency` (Vertical scaling):
#   https://learn.microsoft.com/azure/azure-arc/kubernetes/tutorial-use-gitops-flux2
# - `multiTenancy.enforce` (on unless set to false):
#   https://learn.microsoft.com/azure/azure-arc/kubernetes/conceptual-gitops-flux2#opt-out-of-multi-tenancy
# The identities are off unless set to true. The docs give no default for the kustomize controller's arguments (Flux's
# own are 4 and 30s; the extension may set others). Every other key the extension takes stays in free-form `settings`.
EXTENSION_SETTINGS = (
    ExtensionSetting("source-controller.enabled", ("source", "enabled"), "bool", "true"),
    ExtensionSetting("kustomize-controller.enabled", ("kustomize", "enabled"), "bool", "true"),
    ExtensionSetting("helm-controller.enabled", ("helm", "enabled"), "bool", "true"),
    ExtensionSetting("notification-controller.enabled", ("notification", "enabled"), "bool", "true"),
    ExtensionSetting("image-automation-controller.enabled", ("image_automation", "enabled"), "bool", "false"),
    ExtensionSetting("image-reflector-controller.enabled", ("image_reflector", "enabled"), "bool", "false"),
    ExtensionSetting("kustomize-controller.concurrent", ("kustomize", "concurrent"), "count"),
    ExtensionSetting("kustomize-controller.requeue-dependency", ("kustomize", "requeue_dependency"), "duration"),
    ExtensionSetting("multiTenancy.enforce", ("multi_tenancy", "enforce"), "bool", "true"),
    ExtensionSetting("workloadIdentity.enable", ("workload_identity", "enable"), "bool", "false"),
    ExtensionSetting("workloadIdentity.azureClientId", ("workload_identity", "azure_client_id"), "guid"),
    ExtensionSetting("useKubeletIdentity", ("use_kubelet_identity",), "bool", "false"),
)
EXTENSION_SETTINGS_BY_KEY = {setting.key: setting for setting in EXTENSION_SETTINGS}


def same_extension_setting(key: str, azure: Any, declared: Any) -> bool:
    """Whether the value Azure holds for a settings key and the one the program sends (None: not sent) mean the same:
    a typed key compares by value (`True` is `true`, `90s` is `1m30s`), and a key not sent is the same as the
    extension's documented default for it; any other key compares as text."""
    setting = EXTENSION_SETTINGS_BY_KEY.get(key)
    if declared is None:
        declared = setting.default if setting else None
    if azure is None or declared is None or setting is None:
        return azure == declared
    try:
        azure, declared = setting.parse(azure), setting.parse(declared)
    except ValueError:
        return azure == declared
    return azure.lower() == declared.lower() if setting.kind == "guid" else azure == declared


def same_extension_settings(azure: Mapping[str, Any], declared: Mapping[str, Any]) -> bool:
    """Whether the extension's configurationSettings as Azure holds them and as the program sends them mean the same,
    key by key (same_extension_setting)."""
    return all(same_extension_setting(key, azure.get(key), declared.get(key)) for key in {*azure, *declared})


class ExtensionSpec(SpecModel):
    release_train: Literal["Stable", "Preview"] = "Stable"
    auto_upgrade_minor_version: bool = True
    version: Annotated[str, pattern(r"\d+\.\d+\.\d+", "an extension version such as 1.15.1")] | None = None
    controllers: ControllersSpec = ControllersSpec()
    settings: dict[Line, SettingValue] = {}
    protected_settings: dict[Line, SecretField] = {}

    @property
    def configuration_settings(self) -> dict[str, str]:
        """The extension's configurationSettings: the free-form settings, then the typed controllers' keys (a key is
        never in both: the spec refuses that)."""
        return {**self.settings, **self.controllers.configuration_settings()}


WORKLOAD_IDENTITY_SETTINGS = ("workloadIdentity.enable", "workloadIdentity.azureClientId")


def extension_workload_identity(extension: ExtensionSpec) -> str | None:
    """The client ID of the managed identity the Flux extension's controllers run as (workload identity), or None when
    the extension's settings do not turn it on: typed (controllers.workloadIdentity) or free-form."""
    settings = extension.configuration_settings
    enable, client_id = (settings.get(key) for key in WORKLOAD_IDENTITY_SETTINGS)
    return client_id if str(enable).lower() == "true" and client_id else None


# --------------------------------------------------------------------------------------------- rules


def extension_issues(extension: ExtensionSpec, *, has_configurations: bool) -> Iterator[Finding]:
    """A pinned version, and the typed controller settings against the free-form ones and against each other."""
    if extension.version and extension.auto_upgrade_minor_version:
        yield ("flux", "extension", "version"), "a pinned version needs autoUpgradeMinorVersion: false"
    if extension.version and (problem := extension_pin_problem(extension.version)):
        yield ("flux", "extension", "version"), problem
    yield from _controllers_issues(extension, has_configurations=has_configurations)


def _controllers_issues(extension: ExtensionSpec, *, has_configurations: bool) -> Iterator[Finding]:
    """The typed controller settings against the free-form ones and against each other."""
    controllers = extension.controllers
    for setting in EXTENSION_SETTINGS:
        if setting.value_in(controllers) is not None and setting.key in extension.settings:
            elsewhere = key_path(("flux", "extension", "settings", setting.key))
            yield setting.loc, f"{setting.key} is set twice, here and as {elsewhere}: keep this one, remove the other"
    here = ("flux", "extension", "controllers")
    identity = controllers.workload_identity
    if identity.enable and identity.azure_client_id is None:
        needed = "the client ID of the managed identity that holds the federated credentials"
        rule = f"required with enable: true: {needed}"
        yield (*here, "workloadIdentity", "azureClientId"), Partner((*here, "workloadIdentity", "enable"), rule)
    if identity.azure_client_id is not None and not identity.enable:
        yield (*here, "workloadIdentity", "azureClientId"), "the extension reads it only with enable: true"
    kustomize = controllers.kustomize
    if kustomize.enabled is False:
        for field in ("concurrent", "requeue_dependency"):
            if getattr(kustomize, field) is not None:
                yield (*here, "kustomize", to_camel(field)), "the kustomize controller is off (enabled: false)"
    if has_configurations:
        for name, does in (("source", "fetches their sources"), ("kustomize", "applies their kustomizations")):
            if getattr(controllers, name).enabled is False:
                yield (*here, name, "enabled"), f"the Flux configurations need the {name} controller: it {does}"
    if controllers.image_automation.enabled and not controllers.image_reflector.enabled:
        why = "image automation acts on the reflector's image policies"
        yield (*here, "imageAutomation", "enabled"), f"needs imageReflector.enabled: true ({why})"
