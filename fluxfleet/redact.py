"""Credentials masked out of text that came from somewhere else: a provider's error, an Azure status message, a Flux
condition. Those messages quote what the service was given (a clone URL with its password, a connection string, a
request header) and end up in journals, reports and chat cards; `mask_secrets` replaces each credential it recognises
with `[secret]` and leaves the rest readable: commit SHAs, resource ids, GUIDs and plain URLs stay as they are.
"""

from __future__ import annotations

import re

from modules.spec.credentials import (
    ACCESS_TOKEN,
    BASE64_RUN,
    BASIC,
    BEARER,
    JWT,
    KEY_VALUE,
    MASK,
    PEM_PRIVATE_KEY,
    STORAGE_KEY,
    URL_USERINFO,
    WEBHOOK_URL,
    is_basic_credential,
    is_credential_assignment,
)

# The patterns are modules.spec.credentials': the spec refuses in a stack file what is masked here.


def mask_secrets(text: str) -> str:
    """`text` with every credential it recognises replaced by `[secret]`."""
    text = PEM_PRIVATE_KEY.sub(MASK, text)
    text = WEBHOOK_URL.sub(lambda m: m.group(1) + MASK, text)
    text = URL_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    text = BEARER.sub(lambda m: m.group(1) + MASK, text)
    text = BASIC.sub(lambda m: m.group(1) + MASK if is_basic_credential(m.group(2)) else m.group(), text)
    text = JWT.sub(MASK, text)
    text = ACCESS_TOKEN.sub(MASK, text)
    text = _mask_key_values(text)
    text = STORAGE_KEY.sub(MASK, text)
    return BASE64_RUN.sub(lambda m: MASK if _looks_random(m.group()) else m.group(), text)


def _mask_key_values(text: str) -> str:
    """Every credential key's value masked. The value of any other key is searched too: `Message="... password=x"`
    quotes one."""
    parts, position = [], 0
    while match := KEY_VALUE.search(text, position):
        if is_credential_assignment(match):
            parts += [text[position : match.start()], _masked_value(match)]
            position = match.end()
        else:
            parts.append(text[position : match.end(3)])
            position = match.end(3)
    return "".join(parts) + text[position:]


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
