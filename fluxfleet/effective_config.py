"""`fluxfleet config STACK`: a stack's effective config, each value with the file it came from (the stack file or one
of its profiles), so that a user can see why a cluster gets what it gets. Secrets are never shown: a value at a
secret field is `[secret]` unless it is a Key Vault reference (which is no secret; a part of it that cannot be one, a
token typed into `secret`, is masked), and so is every Pulumi secure value and every plaintext credential (which the
spec refuses) wherever it is."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.text import Text

from fluxfleet.exits import InvalidInput
from fluxfleet.inputs import check_output, stack_paths
from modules.spec import SpecError, SpecIssue, bounded, printable, read_stack_config
from modules.spec.errors import Loc, is_pulumi_secure, key_path
from modules.spec.origins import Origins
from modules.spec.secrets import shown_reference
from modules.spec.stack import is_secret_field, plaintext_credential

SECRET = "[secret]"
VALUE_SHOWN_MAX = 500  # characters of a value in the text table (JSON has it whole)

Format = Literal["text", "json"]


@dataclass(frozen=True)
class ConfigValue:
    key: str  # as errors name it: fluxfleet:cluster.name
    value: Any  # a scalar, a list or an empty map; secrets masked
    file: str  # the file that wrote it


@dataclass
class EffectiveConfig:
    stack: str
    file: str
    profiles: tuple[str, ...]
    values: list[ConfigValue]
    errors: list[SpecIssue] = field(default_factory=list)  # the spec's problems: the config is shown all the same


def effective_config(path: Path, display: str | None = None) -> EffectiveConfig:
    """A stack's merged config with provenance. A SpecError when it cannot be merged at all (a file unreadable, a
    profile missing); the problems of the merged values are kept in `errors`."""
    config = read_stack_config(path, display)
    values = []
    if config.default_location is not None:
        values.append(ConfigValue("azure-native:location", _masked((), config.default_location), config.file))
    if config.environment is not None:
        values.append(ConfigValue("azure-native:environment", _masked((), config.environment), config.file))
    values += _values(config.raw, config.origins, ())
    try:
        config.spec()
        errors = []
    except SpecError as error:
        errors = error.issues
    return EffectiveConfig(config.name, config.file, config.profiles, values, errors)


def _values(raw: Mapping[str, Any], origins: Origins, loc: Loc) -> list[ConfigValue]:
    values = []
    for key, value in raw.items():
        here = (*loc, key)
        opaque = is_pulumi_secure(value) or is_secret_field(here)  # never split into its parts
        if isinstance(value, Mapping) and value and not opaque:
            values += _values(value, origins, here)
        else:
            values.append(ConfigValue(key_path(here), _masked(here, value), origins.file_of(here)))
    return values


def _masked(loc: Loc, value: Any) -> Any:
    if is_pulumi_secure(value):
        return SECRET
    if is_secret_field(loc):
        reference = shown_reference(value)
        return SECRET if reference is None else reference
    if isinstance(value, list):
        return [_masked((*loc, index), item) for index, item in enumerate(value)]
    if isinstance(value, Mapping):
        return {key: _masked((*loc, str(key)), item) for key, item in value.items()}
    return SECRET if plaintext_credential(loc, value) else value


def render(config: EffectiveConfig, fmt: Format, color: bool = False, width: int = 120) -> str:
    if fmt == "json":
        document = {
            "stack": config.stack,
            "file": config.file,
            "profiles": list(config.profiles),
            "values": [{"key": v.key, "value": v.value, "file": v.file} for v in config.values],
            "errors": [{"file": e.file, "path": e.path, "message": e.message} for e in config.errors],
        }
        return json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width, highlight=False)
    profiles = ", ".join(config.profiles) or "none"
    console.print(Text(printable(f"{config.stack}  {config.file}  profiles: {profiles}"), style="bold"))
    for value in config.values:  # one line each, never wrapped: people grep them
        shown = bounded(json.dumps(value.value, ensure_ascii=False, default=str), VALUE_SHOWN_MAX)
        line = Text(f"{printable(value.key)} = {shown}  ")
        line.append(f"({printable(value.file)})", style="dim")
        console.print(line, soft_wrap=True)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------- `fluxfleet config`


@dataclass(frozen=True)
class ConfigRequest:
    stack: str  # a stack name
    stacks_dir: Path = Path("stacks")
    output: Path | None = None  # where the command line writes the report: checked before any work


def config_of(request: ConfigRequest) -> EffectiveConfig:
    """`fluxfleet config`'s work: the stack's file in `stacks_dir`, and its effective config. InvalidInput (exit 2)
    when there is no such file or its files cannot be merged at all."""
    from fluxfleet.plan import display_path

    check_output("config", "--output", request.output)
    [path] = stack_paths("config", request.stacks_dir, [request.stack])
    try:
        return effective_config(path, display_path(path))
    except SpecError as error:
        raise InvalidInput.of(error) from None
