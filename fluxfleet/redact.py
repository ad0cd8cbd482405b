"""Credentials masked out of text that came from somewhere else: a provider's error, an Azure status message, a Flux
condition. Those messages quote what the service was given (a clone URL with its password, a connection string, a
request header) and end up in journals, reports and chat cards; `mask_secrets` replaces each credential it recognises
with `[secret]` and leaves the rest readable: commit SHAs, resource ids, GUIDs and plain URLs stay as they are.
"""

from __future__ import annotations

import re

MASK = "[secret]"

# Keys whose value is a credential, compared lower-cased without `-` and `_`, by suffix: `client_secret`,
# `AZURE_CLIENT_SECRET` and `GITHUB_TOKEN` all end in one of them.
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
)
_KEY_SUFFIX = re.compile("(?:" + "|".join(CREDENTIAL_KEYS) + ")$")

_PEM_PRIVATE_KEY = re.compile(
    # A block cut short (a first line of a longer message) is masked to the end.
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|.*\Z)",
    re.DOTALL,
)
# scheme://userinfo@host: everything before the `@` of the authority is a credential, except the bare `git` user of
# SSH URLs (ssh://git@github.com), which every git host uses and which identifies nobody.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)(?!git@)([^\s/?#@\[\]]+)@")
# A token after `Bearer`, not the prose "bearer authentication": it has a digit or punctuation, or is long.
_BEARER = re.compile(r"\b(Bearer\s+)(?=[A-Za-z]*[0-9\-._~+/=]|[A-Za-z]{20})[A-Za-z0-9\-._~+/]{8,}=*", re.IGNORECASE)
_GITHUB_TOKEN = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})\b")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# "key": "value" (JSON, also JSON quoted inside a string), key=value (query strings, connection strings, env),
# key: value (YAML, headers). A key starts a word: `git.httpsKey: deployed version` (a key path in fluxfleet's own
# messages) is not one.
_KEY_VALUE = re.compile(
    r"""(?<![A-Za-z0-9_.\-])(\\?["']?)([A-Za-z][A-Za-z0-9_-]*)(\1\s*([=:])\s*)"""
    r"""(\\?"(?:[^"\\]|\\[^"])*\\?"|'[^']*'|[^\s&;,"'<>}]+)"""
)
# `InvalidAuthenticationToken: The access token is invalid.`: ARM error codes and Azure credential classes name
# themselves before a colon; what follows is a message, not their value.
_PASCAL_CASE = re.compile(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+")
_STORAGE_KEY = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==")
_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40,}={0,2}")


def mask_secrets(text: str) -> str:
    """`text` with every credential it recognises replaced by `[secret]`."""
    text = _PEM_PRIVATE_KEY.sub(MASK, text)
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    text = _JWT.sub(MASK, text)
    text = _GITHUB_TOKEN.sub(MASK, text)
    text = _mask_key_values(text)
    text = _STORAGE_KEY.sub(MASK, text)
    return _BASE64_RUN.sub(lambda m: MASK if _looks_random(m.group()) else m.group(), text)


def _mask_key_values(text: str) -> str:
    """Every credential key's value masked. The value of any other key is searched too: `Message="... password=x"`
    quotes one."""
    parts, position = [], 0
    while match := _KEY_VALUE.search(text, position):
        if _is_credential(match):
            parts += [text[position : match.start()], _masked_value(match)]
            position = match.end()
        else:
            parts.append(text[position : match.end(3)])
            position = match.end(3)
    return "".join(parts) + text[position:]


def _is_credential(match: re.Match[str]) -> bool:
    quote, key, _, sign, _ = match.groups()
    if not _KEY_SUFFIX.search(key.lower().replace("-", "").replace("_", "")):
        return False
    return not (sign == ":" and not quote and _PASCAL_CASE.fullmatch(key))


def _masked_value(match: re.Match[str]) -> str:
    quote, key, separator, _, value = match.groups()
    if value.startswith(('"', '\\"', "'")):
        opening = value[:2] if value.startswith("\\") else value[0]
        closing = value[-2:] if value.endswith('\\"') and opening == '\\"' else value[-1]
        if len(value) <= len(opening) + len(closing):  # an empty value hides nothing
            return match.group()
        return f"{quote}{key}{separator}{opening}{MASK}{closing}"
    return f"{quote}{key}{separator}{MASK}"


def _mixed(text: str) -> bool:
    return any(c.isupper() for c in text) and any(c.islower() for c in text) and any(c.isdigit() for c in text)


def _looks_random(run: str) -> bool:
    """A long run of base64 characters that is a key rather than a path: upper case, lower case and digits mixed,
    and, when it holds `/`, a piece between them that is itself random (a resource id's pieces are words:
    `resourceGroups/myGroup1/providers/Microsoft`)."""
    if not _mixed(run):
        return False
    if "/" not in run:
        return True
    return any(len(piece) >= 12 and _mixed(piece) and re.search(r"\d[A-Za-z]", piece) for piece in run.split("/"))
