"""Posts an Adaptive Card to a Microsoft Teams incoming webhook (a Teams Workflows webhook, or a legacy connector).

A webhook URL is a credential: anyone holding it can post to the channel (a Workflows URL is signed by its `sig=`
query; a connector URL by its path). So it is only ever read from an environment variable or Key Vault, and no
message or log line made here contains it: not a NotifyError, not azure-core's logging (no logging policy is in
the pipeline), not urllib3's request lines (silenced while a card is posted).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from azure.core import PipelineClient
from azure.core.exceptions import AzureError, ServiceRequestError
from azure.core.pipeline.policies import RetryPolicy
from azure.core.rest import HttpRequest

from modules.spec import KeyVaultRef, key_vault_ref_from_text

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
MAX_LINES = 25  # a Teams message is at most about 28 KB; past that the webhook answers 413 and nobody is told
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})  # plain http is for tests against a local server only
WHERE_TO_KEEP_IT = (
    "pass env:NAME (the URL in environment variable NAME) or keyvault:VAULT/SECRET (the URL in a Key Vault secret)"
)
# urllib3 logs every request line, path and query included, at DEBUG.
_URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry", "urllib3.poolmanager")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_posting: ContextVar[bool] = ContextVar("fluxfleet_notify_posting", default=False)


class NotifyError(Exception):
    """A notification that could not be sent; one line, never the webhook URL."""


@dataclass(frozen=True)
class Card:
    title: str
    summary: str  # one line
    facts: Sequence[tuple[str, str]] = ()  # e.g. ("drifted", "2 of 40 stacks")
    lines: Sequence[str] = ()  # e.g. one per drifted stack, short
    link: str | None = None  # e.g. the CI run's URL


def resolve_webhook(reference: str, environ: Mapping[str, str], read_secret: Callable[[KeyVaultRef], str]) -> str:
    """The webhook URL that `env:NAME` or `keyvault:VAULT/SECRET[@VERSION]` refers to.

    `read_secret` reads a Key Vault secret's value; its own errors pass through.
    """
    # Messages here never repeat `reference` whole: it may be a URL pasted where a reference belongs.
    kind, _, where = reference.partition(":")
    if kind == "env" and _ENV_NAME.match(where):
        url = environ.get(where, "").strip()
        if not url:
            raise NotifyError(f"environment variable {where} is unset or empty: it should hold the Teams webhook URL")
        source = f"environment variable {where}"
    elif kind == "keyvault":
        ref = _key_vault_ref(where)
        url = read_secret(ref).strip()
        if not url:
            raise NotifyError(f"{ref}: the Key Vault secret is empty: it should hold the Teams webhook URL")
        source = str(ref)
    elif "://" in reference:
        raise NotifyError(
            f"a webhook URL on the command line ends up in shell history and CI logs, and the URL is a credential: "
            f"{WHERE_TO_KEEP_IT}"
        )
    else:
        raise NotifyError(f"not a webhook reference: {WHERE_TO_KEEP_IT}")
    _check_url(url, source)
    return url


def post_card(
    url: str,
    card: Card,
    *,
    retry_total: int = 4,
    retry_backoff_factor: float = 0.8,
    timeout: float = 30,
    **pipeline_options: Any,
) -> None:
    """Posts `card`, retrying throttling (429, after its Retry-After) and server errors (5xx) with backoff.

    `timeout` bounds each attempt's connect and each read. `pipeline_options` go to azure-core's PipelineClient
    (`transport`, for one).
    """
    _check_url(url)
    host = urlsplit(url).hostname
    retry = RetryPolicy(
        retry_total=retry_total,
        retry_connect=retry_total,
        retry_status=retry_total,
        # A read error means the service may have posted the card already; a retry could post it twice.
        retry_read=0,
        retry_backoff_factor=retry_backoff_factor,
    )
    # Only the retry policy: no HttpLoggingPolicy (it logs URLs), no tracing (spans record the URL) and no
    # redirects (a redirect would send the card to another host).
    client = PipelineClient(url, policies=[retry], **pipeline_options)
    request = HttpRequest("POST", url, json=card_message(card))
    _silence_urllib3_while_posting()
    posting = _posting.set(True)
    status: int | None = None
    failure: str | None = None
    try:
        with client:
            response = client.send_request(
                request,
                connection_timeout=timeout,
                read_timeout=timeout,
                # azure-core retries a POST only on 500, 503 and 504; a card is safe to send again when it was
                # throttled (429), the gateway failed (502) or no connection was made.
                retry_on_methods=frozenset({"POST"}),
            )
            status = response.status_code
    # An azure-core error's message names the URL: only its type is kept, and raising outside these blocks leaves
    # no chained exception to carry it into a traceback.
    except ServiceRequestError as error:
        failure = f"no connection ({type(error).__name__}): check the network, a proxy (HTTPS_PROXY) and the host name"
    except AzureError as error:
        failure = (
            f"no answer ({type(error).__name__}); the card may have been posted: look in the channel before sending "
            "it again"
        )
    finally:
        _posting.reset(posting)
    if status is None:
        raise NotifyError(f"could not post to the Teams webhook at {host}: {failure}")
    if not 200 <= status < 300:
        raise NotifyError(f"the Teams webhook at {host} answered HTTP {status}: {_what_to_do(status)}")


def card_message(card: Card) -> dict[str, Any]:
    """The Teams message (Bot Framework activity) that carries `card` as an Adaptive Card."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": card.title, "size": "Medium", "weight": "Bolder", "wrap": True},
        {"type": "TextBlock", "text": card.summary, "wrap": True},
    ]
    if card.facts:
        body.append({"type": "FactSet", "facts": [{"title": title, "value": value} for title, value in card.facts]})
    lines = list(card.lines[:MAX_LINES])
    if len(card.lines) > MAX_LINES:
        lines.append(f"… and {len(card.lines) - MAX_LINES} more")
    body.extend({"type": "TextBlock", "text": line, "wrap": True, "spacing": "None"} for line in lines)
    content: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if card.link:
        content["actions"] = [{"type": "Action.OpenUrl", "title": "Open", "url": card.link}]
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": content}]}


def _key_vault_ref(where: str) -> KeyVaultRef:
    try:
        return key_vault_ref_from_text(where)  # the same names and URIs a stack file accepts
    except ValueError as error:
        raise NotifyError(f"keyvault:VAULT/SECRET[@VERSION]: {error}; {WHERE_TO_KEEP_IT}") from None


def _check_url(url: str, source: str | None = None) -> None:
    where = f" in {source}" if source else ""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading the port is what checks it
    except ValueError:
        parts = None
    if parts is None or not parts.hostname:
        raise NotifyError(f"the webhook URL{where} is not a URL")
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOCAL_HOSTS):
        return
    raise NotifyError(f"the webhook URL{where} must be https")


def _what_to_do(status: int) -> str:
    if status == 400:
        return "the service rejected the card; check the webhook expects an Adaptive Card (a Teams Workflows webhook)"
    if status in (401, 403, 404):
        return "the webhook is gone or refuses posts; create a new one and store its URL where the reference points"
    if status == 413:
        return "the card is too large for Teams (about 28 KB); send fewer or shorter lines"
    if status == 429:
        return "still throttled after the retries; post less often or try again later"
    if status >= 500:
        return "the service failed, retries included; try again later"
    return "an unexpected answer; check the webhook in Teams"


def _silence_urllib3_while_posting() -> None:
    for name in _URLLIB3_LOGGERS:
        logger = logging.getLogger(name)
        if _drop_while_posting not in logger.filters:
            logger.addFilter(_drop_while_posting)


def _drop_while_posting(record: logging.LogRecord) -> bool:
    return not _posting.get()
