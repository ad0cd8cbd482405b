"""What a credential looks like: one list of patterns for the whole project.

The stack spec refuses a value that looks like one outside a secret field (stack.py), the policy rules flag one in
a resource's inputs (policies/rules.py), every output shows one as `[secret]` (`masked`), and fluxfleet's
`mask_secrets` (fluxfleet/redact.py) masks them in free text from Azure and Pulumi with the same patterns.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections.abc import Mapping
from typing import Any

MASK = "[secret]"

# Keys whose value is a credential, compared lower-cased without `-`, `_` and `.`, by suffix: `client_secret`,
# `AZURE_CLIENT_SECRET`, `helm.password` and `GITHUB_TOKEN` all end in one of them; `secretName` does not.
CREDENTIAL_KEYS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "accountkey",
    "sharedaccesskey",
    "sharedaccesssignature",
    "sig",
    "apikey",
    "privatekey",
    "secretkey",
    "accesskey",
    "httpskey",
    "sastoken",
    "credential",
    "credentials",
    "connectionstring",
)
KEY_SUFFIX = re.compile("(?:" + "|".join(CREDENTIAL_KEYS) + ")$")

PEM_PRIVATE_KEY = re.compile(
    # A block cut short (a first line of a longer message) is masked to the end.
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|.*\Z)",
    re.DOTALL,
)
# scheme://userinfo@host: everything before the `@` of the authority is a credential, except the bare `git` user of
# SSH URLs (ssh://git@github.com), which every git host uses and which identifies nobody.
URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)(?!git@)([^\s/?#@\[\]]+)@")
# A token after `Bearer`, not the prose "bearer authentication": it has a digit or punctuation, or is long.
BEARER = re.compile(r"\b(Bearer\s+)(?=[A-Za-z]*[0-9\-._~+/=]|[A-Za-z]{20})[A-Za-z0-9\-._~+/]{8,}=*", re.IGNORECASE)
# GitHub's tokens (personal, OAuth, user-to-server, server-to-server, refresh; fine-grained) and GitLab's.
# HTTP Basic credentials (`Authorization: Basic dXNlcjpwYXNz`): base64 of `user:password`; prose ("Basic auth") is
# no credential, as it decodes to no `user:password` pair.
BASIC = re.compile(r"\b(Basic\s+)([A-Za-z0-9+/]{4,}={0,2})(?![A-Za-z0-9+/=])", re.IGNORECASE)
# Incoming webhooks whose path is their only key: Teams/Office 365 connectors (`*.webhook.office.com/webhookb2/`, the
# older `outlook.office.com/webhook/`), Slack and Discord. Logic Apps and Power Automate URLs carry a `sig=` instead.
WEBHOOK_URL = re.compile(
    r"(?i)\b(https?://(?:[a-z0-9-]+\.)*(?:webhook\.office\.com/webhookb2|outlook\.office(?:365)?\.com/webhook"
    r"|hooks\.slack\.com/(?:services|workflows|triggers)|(?:discord|discordapp)\.com/api/webhooks)/)[^\s\"'<>\]\)]+"
)
ACCESS_TOKEN = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,})")
JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# "key": "value" (JSON, also JSON quoted inside a string), key=value (query strings, connection strings, env),
# key: value (YAML, headers). A key starts a word: `git.httpsKey: deployed version` (a key path in fluxfleet's own
# messages) is not one.
_KEY = r"""(?<![A-Za-z0-9_.\-])(\\?["']?)([A-Za-z][A-Za-z0-9_-]*)(\1\s*([=:])\s*)"""
KEY_VALUE = re.compile(_KEY + r"""(\\?"(?:[^"\\]|\\[^"])*\\?"|'[^']*'|[^\s&;,"'<>}]+)""")
_ASSIGNMENT = re.compile(_KEY)  # the key alone: a value is not read to its end (linear in the longest value)
_NO_VALUE = frozenset(" \t\r\n&;,\"'<>}\\")
# `InvalidAuthenticationToken: The access token is invalid.`: ARM error codes and Azure credential classes name
# themselves before a colon; what follows is a message, not their value.
PASCAL_CASE = re.compile(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+")
STORAGE_KEY = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==")
BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40,}={0,2}")
# A value that names a variable rather than holding one: Flux's `${VAR}`, a shell's `$(...)`, a template's `{{ }}`.
_REFERENCE = re.compile(r"""\\?["']?(?:\$\{|\$\(|\{\{)""")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")


def is_credential_key(key: Any) -> bool:
    """Whether a key names a credential (`password`, `helm.password`, `GITHUB_TOKEN`, `client_secret`)."""
    normalised = str(key).lower().replace("-", "").replace("_", "").replace(".", "")
    return bool(KEY_SUFFIX.search(normalised))


def is_credential_assignment(match: re.Match[str]) -> bool:
    """Whether a key-value match (groups: quote, key, separator, sign) assigns a credential: its key names one, and
    it is not an error code before a colon."""
    quote, key, sign = match.group(1), match.group(2), match.group(4)
    if not is_credential_key(key):
        return False
    return not (sign == ":" and not quote and PASCAL_CASE.fullmatch(key))


def is_basic_credential(token: str) -> bool:
    """Whether a token after `Basic` is base64 of `user:password`."""
    with contextlib.suppress(binascii.Error, ValueError):
        return ":" in base64.b64decode(token, validate=True).decode("utf-8", "ignore")
    return False


def is_reference(value: str) -> bool:
    """`${DB_PASSWORD}`, `$(cat f)`, `{{ .Values.token }}`: a name of a credential, not one."""
    return bool(_REFERENCE.match(value.strip()))


def credential_kind(value: Any) -> str | None:
    """What kind of credential a value looks like (also base64-encoded), or None. Never the value itself.

    Kept to what is unmistakable in a config value: a private key, an access token, a JWT, a password in a URL, a
    `password=`-like assignment, a storage account key. A URL, a path, a branch, a certificate or a known_hosts
    line is none."""
    if not isinstance(value, str) or not value:
        return None
    candidates = [value]
    if _BASE64.fullmatch(value):
        with contextlib.suppress(binascii.Error, ValueError):
            candidates.append(base64.b64decode(value, validate=True).decode("utf-8", "ignore"))
    for text in candidates:
        if kind := _kind(text):
            return kind
    return None


def _kind(text: str) -> str | None:
    if PEM_PRIVATE_KEY.search(text):
        return "a PEM private key"
    if ACCESS_TOKEN.search(text):
        return "an access token"
    if JWT.search(text):
        return "a JSON web token"
    if any(":" in match.group(2) for match in URL_USERINFO.finditer(text)):
        return "a password in a URL"  # a user alone (ssh://deploy@host) is no credential
    if BEARER.search(text):
        return "a bearer token"
    if any(is_basic_credential(match.group(2)) for match in BASIC.finditer(text)):
        return "a Basic credential"
    if WEBHOOK_URL.search(text):
        return "a webhook URL"
    for match in _ASSIGNMENT.finditer(text):  # as mask_secrets reads them: `url=https://h/?token=x` has two
        value = text[match.end() : match.end() + 4].lstrip("\\")
        value = value[1:] if value[:1] in ("'", '"') else value  # an opening quote
        if is_credential_assignment(match) and value and value[0] not in _NO_VALUE and not is_reference(value):
            return f"the value of {match.group(2)}"
    if STORAGE_KEY.search(text):
        return "a storage account key"
    return None


def masked(value: Any, key: Any = None) -> Any:
    """`value` with every string that is a credential replaced by `[secret]`: one that looks like one, or one under a
    key that names one (`helm.password: hunter2`). Maps and lists are walked; other values are kept."""
    if isinstance(value, Mapping):
        return {name: masked(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [masked(item, key) for item in value]
    if not isinstance(value, str) or value == MASK:
        return value
    if key is not None and is_credential_key(key) and value.strip() and not is_reference(value):
        return MASK
    return MASK if credential_kind(value) else value
