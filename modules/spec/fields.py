"""The field types and formats every model of the spec uses (durations, DNS labels, bounded one-line and
multi-line text, keys), `SpecModel`, the models' base, and `Reconciled`, the base of what Flux syncs on an interval."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PlainValidator,
    StringConstraints,
)
from pydantic.alias_generators import to_camel

from modules.spec.errors import (
    UNPRINTABLE,
    UNPRINTABLE_IN_LINES,
    Loc,
    printable,
    shown,
)


# --------------------------------------------------------------------------------------------- scalar formats

# Durations: digits bounded by the regex (int() never sees thousands of them), values by DURATION_MAX.
_GO_DURATION = re.compile(r"(?:(\d{1,20})h)?(?:(\d{1,20})m)?(?:(\d{1,20})s)?")
_ISO_DURATION = re.compile(r"P(?:(\d{1,20})D)?(?:T(?:(\d{1,20})H)?(?:(\d{1,20})M)?(?:(\d{1,20})S)?)?")
DURATION_MAX = 30 * 24 * 3600  # 30 days (720h): longer is a mistake, and overflows timers
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LOCATION = re.compile(r"[a-z0-9]{1,90}")


def parse_duration(value: Any) -> int:
    """A Go duration of whole hours, minutes and seconds (`30s`, `10m`, `1h30m`) or positive integer seconds,
    at most 30 days."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 30s, 10m or 1h30m, or a number of seconds")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and value and (match := _GO_DURATION.fullmatch(value)):
        hours, minutes, secs = (int(part) if part else 0 for part in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise ValueError(
            f"{shown(value)} is not a duration: use whole h, m and s units such as 30s, 10m or 1h30m, "
            "or a number of seconds"
        )
    if seconds <= 0:
        raise ValueError("must be longer than zero")
    if seconds > DURATION_MAX:
        raise ValueError(f"{shown(value)} is longer than 30 days (720h), the longest duration fluxfleet takes")
    return seconds


def _iso_duration(value: Any) -> str:
    match = None
    if isinstance(value, str) and value not in ("P", "PT") and not value.endswith("T"):
        match = _ISO_DURATION.fullmatch(value)
    if not match:
        raise ValueError(f"{shown(value)} is not an ISO-8601 duration such as PT30M, PT1H or P1D")
    days, hours, minutes, secs = (int(part) if part else 0 for part in match.groups())
    if days * 86400 + hours * 3600 + minutes * 60 + secs == 0:
        raise ValueError(f"{shown(value)} is zero: a wait must be longer than that")
    if days * 86400 + hours * 3600 + minutes * 60 + secs > DURATION_MAX:
        raise ValueError(f"{shown(value)} is longer than 30 days (P30D), the longest duration fluxfleet takes")
    return value


def dns_label_problem(value: str) -> str | None:
    if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        return (
            f"{shown(value)} is not a DNS-1123 label (lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return None


def _dns_label(value: str) -> str:
    if problem := dns_label_problem(value):
        raise ValueError(problem)
    return value


def location_problem(value: Any) -> str | None:
    """What is wrong with an Azure region name (`cluster.location`, `azure-native:location`), if anything."""
    if not isinstance(value, str) or not _LOCATION.fullmatch(value):
        return f"{shown(value)} is not an Azure region name such as westeurope"
    return None


def _location(value: str) -> str:
    if problem := location_problem(value):
        raise ValueError(problem)
    return value


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        raise ValueError(f"{shown(value)} is not an IP range such as 203.0.113.0/24") from None


def guid(value: str) -> str:
    if not GUID.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a GUID")
    return value


def pattern(regex: str, what: str):
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{shown(value)} is not {what}")
        return value

    return AfterValidator(check)


def _one_line(value: str) -> str:
    if found := UNPRINTABLE.search(value):
        raise ValueError(
            f"contains {printable(found.group())}: no control characters, line breaks or bidirectional overrides here"
        )
    return value


def _lines(value: str) -> str:
    if found := UNPRINTABLE_IN_LINES.search(value):
        raise ValueError(f"contains {printable(found.group())}: only printable text, newlines and tabs here")
    return value


KNOWN_HOSTS_MARKERS = ("@cert-authority", "@revoked")


def _known_hosts(value: str) -> str:
    """known_hosts lines (`HOSTS KEY-TYPE BASE64-KEY [comment]`, as `ssh-keyscan` prints them): each key must be
    one `cryptography` reads, so that a cut or mistyped key fails here, not as Flux's failed clone."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    lines = value.splitlines()
    entries = 0
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0] in KNOWN_HOSTS_MARKERS:
            fields = fields[1:]
        where = f"line {number} " if len(lines) > 1 else ""
        try:
            if len(fields) < 3:
                raise ValueError
            load_ssh_public_key(f"{fields[1]} {fields[2]}".encode())
        except (ValueError, UnsupportedAlgorithm):
            raise ValueError(
                f"{where}is not a known_hosts line: hosts, key type and base64 key, as `ssh-keyscan HOST` prints them"
            ) from None
        entries += 1
    if not entries:
        raise ValueError("has no known_hosts line: hosts, key type and base64 key, as `ssh-keyscan HOST` prints them")
    return value


OPENSSH_KEY_LABEL = b"OPENSSH PRIVATE KEY"  # the PEM label ssh-keygen's own format writes: a format marker, no key


def ssh_private_key_problem(text: str) -> str | None:
    """What is wrong with an SSH private key for Flux, if anything: it must be a PEM or OpenSSH private key without
    a passphrase (Flux has none to give). The message never quotes the key."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_ssh_private_key

    data = text.encode("utf-8", "replace")
    try:
        if b"-----BEGIN " + OPENSSH_KEY_LABEL in data:
            load_ssh_private_key(data, password=None)
        else:
            load_pem_private_key(data, password=None, unsafe_skip_rsa_key_validation=True)  # its format, not its math
    except TypeError:  # cryptography's way of saying "a password is needed"
        return "is an encrypted private key: Flux needs it without a passphrase (ssh-keygen -p -N '' -f KEY)"
    except (ValueError, UnsupportedAlgorithm):
        return "is not a private key in PEM or OpenSSH format (-----BEGIN ... PRIVATE KEY-----)"
    return None


def pem_private_key_problem(text: str) -> str | None:
    """What is wrong with a PEM private key (a GitHub App's, a TLS client's), if anything: Flux takes it unencrypted.
    The message never quotes the key."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        load_pem_private_key(text.encode("utf-8", "replace"), password=None, unsafe_skip_rsa_key_validation=True)
    except TypeError:
        return "is an encrypted private key: Flux needs it without a passphrase"
    except (ValueError, UnsupportedAlgorithm):
        return "is not a private key in PEM format (-----BEGIN ... PRIVATE KEY-----)"
    return None


def secret_value_problem(loc: Loc, value: str) -> str | None:
    """What is wrong with the value of the secret field at `loc` (keys without the namespace), if anything: checked
    wherever a value is known (a decrypted Pulumi secret, a Key Vault secret as it is read), never quoting it."""
    if len(loc) == 5 and loc[:2] == ("flux", "configurations") and loc[3:] == ("git", "sshPrivateKey"):
        return ssh_private_key_problem(value)
    if len(loc) == 5 and loc[:2] == ("flux", "configurations") and loc[3:] == ("git", "githubAppPrivateKey"):
        return pem_private_key_problem(value)
    if len(loc) == 6 and loc[:2] == ("flux", "configurations") and loc[3:] == ("oci", "tlsConfig", "privateKey"):
        return pem_private_key_problem(value)
    return None


API_DEFAULT_INTERVAL = 600  # seconds: the sync interval and timeout the Flux configuration API applies by default
LINE_MAX = 2048  # characters of a one-line field (a URL, a path, a ref, a tag): generous, but bounded
TEXT_MAX = 65536  # characters of a multi-line field (a CA certificate, known_hosts)


def _setting_value(value: Any) -> str:
    # Extension settings are strings on the wire; YAML booleans and numbers are written as Helm expects them.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if len(value) > TEXT_MAX:
            raise ValueError(f"has {len(value):,} characters (at most {TEXT_MAX:,})")
        return _lines(value)
    raise ValueError("must be a string, number or boolean")


Duration = Annotated[int, PlainValidator(parse_duration)]
IsoDuration = Annotated[str, PlainValidator(_iso_duration)]
DnsLabel = Annotated[str, AfterValidator(_dns_label)]
Location = Annotated[str, AfterValidator(_location)]
Guid = Annotated[str, AfterValidator(guid)]
Cidr = Annotated[str, AfterValidator(_cidr)]
SettingValue = Annotated[str, PlainValidator(_setting_value)]
# Every free-form string of the spec is one of these: `Line` one line of printable text (a URL, a ref, a path, a
# glob), `Text` printable lines (a certificate); both bounded. `MaybeEmpty...` may also be "".
Line = Annotated[str, StringConstraints(min_length=1, max_length=LINE_MAX), AfterValidator(_one_line)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=TEXT_MAX), AfterValidator(_lines)]
MaybeEmptyLine = Annotated[str, StringConstraints(max_length=LINE_MAX), AfterValidator(_one_line)]
MaybeEmptyText = Annotated[str, StringConstraints(max_length=TEXT_MAX), AfterValidator(_lines)]
KnownHosts = Annotated[Text, AfterValidator(_known_hosts)]


class SpecModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True, strict=True)


class Reconciled(SpecModel):
    """A Flux object synced on an interval, with a timeout."""

    sync_interval: Duration | None = None
    timeout: Duration | None = None

    @property
    def effective_timeout(self) -> int | None:
        """The timeout to send: the one set, else a sync interval shorter than the API's default timeout (the
        default would let one attempt run past the next sync)."""
        if self.timeout is None and self.sync_interval is not None and self.sync_interval < API_DEFAULT_INTERVAL:
            return self.sync_interval
        return self.timeout

    def timeout_issue(self) -> str | None:
        interval = self.sync_interval or API_DEFAULT_INTERVAL
        if self.timeout and self.timeout > interval:
            default = "" if self.sync_interval else f" ({API_DEFAULT_INTERVAL}s unless set)"
            return f"timeout is longer than syncInterval{default}"
        return None
