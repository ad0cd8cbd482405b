"""`ResourceGraphReader`: the one Azure Resource Graph client of fluxfleet. `query(kql, subscriptions)` answers every
row of a KQL query over many subscriptions, says which subscriptions could not be read, and counts its requests.

How it reads:
- Subscriptions go in batches of SUBSCRIPTIONS_PER_REQUEST (1,000, Resource Graph's limit per request); each batch's
  rows are read page by page (`$top` 1,000, the most a page holds), following `$skipToken` until the answer has none.
- Quota: every answer carries `x-ms-user-quota-remaining` and `x-ms-user-quota-resets-after` (hh:mm:ss). When the
  remaining quota reaches 0, the next request waits until the window resets (on the injected clock, so tests and
  the benchmark never sleep). A 429 is retried by azure-core's RetryPolicy, which honours `Retry-After`; without
  one, it waits as long as the quota header says. A wait longer than QUOTA_WAIT_MAX fails the read instead.
  Queries are POSTs that only read: they are retried like GETs (azure-core retries no POST on 429 by default).
- Subscriptions the identity cannot read. Resource Graph answers only what the caller may read, and shows it in
  two ways: resources the caller may not read are left out of the answer without an error (its documentation:
  without read access "results aren't returned"), and a request whose scope it refuses fails as a whole with 403
  AccessDenied, "Access is denied to the requested resource. The user might not have enough permission." (as
  public bug reports quote it), naming no subscription. An empty answer must not pass for an empty subscription,
  so each batch first asks which of its subscriptions are visible (one small query on `resourcecontainers`, where
  a subscription is listed only to those who may read it); those that are not are denied. A 403 drops the
  subscriptions its error names, if it names any, else splits the batch in halves and asks each again, down to
  single subscriptions (about 2·log2(n) more requests per denied one): the others are still answered, and every
  denied subscription is reported with what Azure said, never taken as empty.
SDK models never leave this module; every other failure leaves it as a one-line `AzureError`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core import exceptions as sdk_errors
from azure.core.pipeline.policies import HTTPPolicy, RetryPolicy
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

# arm.py's one-line wording of Azure's errors, shared so both readers speak alike
from fluxfleet.azure.arm import (
    DETAIL_MAX,
    RETRIED_STATUSES,
    identity_of,
    error_code,
    first_line,
    transport_failure,
)
from fluxfleet.azure.access import SIGN_IN
from fluxfleet.azure.status import AccessDenied, AzureError
from fluxfleet.clock import Clock, SystemClock
from fluxfleet.redact import mask_secrets
from modules.clouds import DEFAULT_CLOUD, cloud as cloud_named
from modules.spec.errors import UNPRINTABLE, printable

SUBSCRIPTIONS_PER_REQUEST = 1000  # Resource Graph's limit of subscriptions in one request
PAGE_SIZE = 1000  # `$top`: the most rows one page holds
QUOTA_WAIT_MAX = 300.0  # seconds fluxfleet waits for Resource Graph's quota to reset before it gives up
QUOTA_REMAINING = "x-ms-user-quota-remaining"
QUOTA_RESETS_AFTER = "x-ms-user-quota-resets-after"
# Subscriptions the identity may read: Resource Graph lists a subscription in `resourcecontainers` only then.
VISIBLE_SUBSCRIPTIONS = (
    "resourcecontainers | where type =~ 'microsoft.resources/subscriptions' | project id, subscriptionId"
)
_KQL_ESCAPES = {"\t": "\\t", "\n": "\\n"}
_HH_MM_SS = re.compile(r"(\d{1,9}):([0-5]?\d):([0-5]?\d(?:\.\d{1,9})?)")


def kql_string(text: str) -> str:
    """`text` as a KQL string literal that no value can break out of: single-quoted, with a quote, a backslash, a tab
    and a newline escaped as KQL documents them (`\\'`, `\\\\`, `\\t`, `\\n`). Any other control character has
    no documented escape: ValueError (selections refuse them before they get here)."""
    escaped = []
    for character in text:
        if character in ("'", '"', "\\"):
            escaped.append("\\" + character)
        elif character in _KQL_ESCAPES:
            escaped.append(_KQL_ESCAPES[character])
        elif UNPRINTABLE.fullmatch(character):
            raise ValueError(f"{printable(character)} cannot be part of a KQL string")
        else:
            escaped.append(character)
    return "'" + "".join(escaped) + "'"


@dataclass(frozen=True)
class DeniedSubscription:
    subscription_id: str
    reason: str  # one line: what Resource Graph said, masked and bounded


@dataclass(frozen=True)
class QueryResult:
    rows: tuple[Mapping[str, Any], ...]
    denied: tuple[DeniedSubscription, ...]  # sorted by subscription id
    requests: int  # HTTP requests this query made, retries included


def quota_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds until Resource Graph's quota resets when these answer headers say it is used up; else None."""
    remaining, resets = headers.get(QUOTA_REMAINING), headers.get(QUOTA_RESETS_AFTER)
    if remaining is None or resets is None:
        return None
    try:
        used_up = int(remaining.strip()) <= 0
    except ValueError:
        return None
    match = _HH_MM_SS.fullmatch(resets.strip())
    if not used_up or match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


class _QuotaExhausted(AzureError):
    pass


def _too_long(seconds: float) -> _QuotaExhausted:
    return _QuotaExhausted(
        f"Azure Resource Graph's quota for this identity resets only in {seconds:,.0f}s (fluxfleet waits at most "
        f"{QUOTA_WAIT_MAX:.0f}s): run again later, or from an identity that queries Resource Graph less"
    )


class _Quota:
    """When the next request may go, from the quota headers of the last answer; and how many requests went."""

    def __init__(self, clock: Clock):
        self._clock = clock
        self._lock = threading.Lock()
        self._not_before: datetime | None = None
        self.requests = 0

    def note(self, headers: Mapping[str, str]) -> None:
        seconds = quota_wait(headers)
        if seconds is not None:
            with self._lock:
                self._not_before = self._clock.now() + timedelta(seconds=seconds)

    def before_request(self) -> None:
        """Counts the request, after waiting for the quota to reset if the last answer used it up."""
        with self._lock:
            not_before, self._not_before = self._not_before, None
        seconds = (not_before - self._clock.now()).total_seconds() if not_before is not None else 0
        if seconds > QUOTA_WAIT_MAX:  # the answer that said so is kept; no further request is made
            raise _too_long(seconds)
        if seconds > 0:
            self._clock.sleep(seconds)
        with self._lock:
            self.requests += 1


class _QuotaPolicy(HTTPPolicy):
    """Per attempt (it runs after the RetryPolicy): waits for the quota before sending, notes it from the answer."""

    def __init__(self, quota: _Quota):
        super().__init__()
        self._quota = quota

    def send(self, request: Any) -> Any:
        self._quota.before_request()
        response = self.next.send(request)
        self._quota.note(response.http_response.headers)
        return response


class _QuotaRetryPolicy(RetryPolicy):
    """azure-core's RetryPolicy with three changes: it retries Resource Graph's POSTs (they only read); a 429 without
    Retry-After waits until the quota resets; and every wait is on the injected clock."""

    def __init__(self, clock: Clock, **kwargs: Any):
        super().__init__(**kwargs)
        self._clock = clock

    def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
        settings = super().configure_retries(options)
        settings["methods"] = frozenset(settings["methods"]) | {"POST"}
        return settings

    def get_retry_after(self, response: Any) -> float | None:
        seconds = super().get_retry_after(response)
        if seconds is None and response.http_response.status_code == 429:
            # No Retry-After: the quota header says when the window resets. A 429 that says neither backs off.
            seconds = quota_wait(response.http_response.headers)
        return seconds

    def sleep(self, settings: dict[str, Any], transport: Any, response: Any = None) -> None:
        seconds = self.get_retry_after(response) if response is not None else None
        if not seconds:
            seconds = self.get_backoff_time(settings)
        if seconds > QUOTA_WAIT_MAX:
            raise _too_long(seconds)
        if seconds > 0:
            self._clock.sleep(seconds)


class _Denied(Exception):
    """A 403 on a query: `text` is all Azure said (to find subscriptions it names), `reason` one line of it."""

    def __init__(self, reason: str, text: str):
        super().__init__(reason)
        self.reason, self.text = reason, text


class _MalformedAnswer(ValueError):
    pass


class ResourceGraphReader:
    """Queries the Azure Resource Graph of one cloud (at its ARM endpoint) with one credential
    (`DefaultAzureCredential` signing in at the cloud's authority, unless given one).

    `client_options` go to the SDK client as azure-core pipeline options (tests pass `transport=`)."""

    def __init__(
        self,
        credential: Any = None,
        *,
        cloud: str = DEFAULT_CLOUD,
        clock: Clock | None = None,
        retry_total: int = 6,
        retry_backoff_factor: float = 0.8,
        retry_backoff_max: float = 60,
        timeout: float = 60,
        **client_options: Any,
    ):
        self.cloud = cloud
        self._cloud = cloud_named(cloud)
        self._credential = credential
        self._clock = clock or SystemClock()
        self._quota = _Quota(self._clock)
        self._retry_total = retry_total
        self._timeout = timeout
        retries = {
            # RetryPolicy stops at the smallest of its counters: all of them follow retry_total.
            "retry_total": retry_total,
            "retry_connect": retry_total,
            "retry_read": retry_total,
            "retry_status": retry_total,
            "retry_backoff_factor": retry_backoff_factor,
            "retry_backoff_max": retry_backoff_max,
        }
        self._options = {
            **client_options,
            "retry_policy": _QuotaRetryPolicy(self._clock, **retries),
            "per_retry_policies": [_QuotaPolicy(self._quota)],
            "connection_timeout": timeout,
            "read_timeout": timeout,
            "logging_enable": False,
        }
        self._client: ResourceGraphClient | None = None
        self._lock = threading.Lock()

    @property
    def requests(self) -> int:
        """HTTP requests made so far, retries included."""
        return self._quota.requests

    def query(self, kql: str, subscriptions: Sequence[str]) -> QueryResult:
        """Every row `kql` answers over `subscriptions` (GUIDs; compared and returned lower-case), and the
        subscriptions that could not be read. AzureError when Resource Graph cannot be read at all."""
        return self.query_many([kql], subscriptions)

    def query_many(self, kqls: Sequence[str], subscriptions: Sequence[str]) -> QueryResult:
        """The rows of every query in `kqls` (one query split in parts), as `query` answers them: one visibility
        check per batch of subscriptions serves all the parts."""
        before = self.requests
        wanted = sorted({subscription.lower() for subscription in subscriptions})
        rows: list[Mapping[str, Any]] = []
        denied: dict[str, str] = {}
        with self._failures():
            for start in range(0, len(wanted), SUBSCRIPTIONS_PER_REQUEST):
                batch = wanted[start : start + SUBSCRIPTIONS_PER_REQUEST]
                visible_rows, refused = self._answered(VISIBLE_SUBSCRIPTIONS, batch)
                denied |= refused
                visible = {str(row.get("subscriptionId", "")).lower() for row in visible_rows}
                for subscription in batch:
                    if subscription not in visible and subscription not in denied:
                        denied[subscription] = "Resource Graph does not show it to the signed-in identity"
                for kql in kqls:
                    batch_rows, refused = self._answered(kql, [s for s in batch if s not in denied])
                    rows += batch_rows
                    denied |= refused
        return QueryResult(
            rows=tuple(rows),
            denied=tuple(DeniedSubscription(s, reason) for s, reason in sorted(denied.items())),
            requests=self.requests - before,
        )

    # ------------------------------------------------------------------ one batch

    def _answered(self, kql: str, subscriptions: list[str]) -> tuple[list[Mapping[str, Any]], dict[str, str]]:
        """The rows of `kql` over `subscriptions`, narrowing a 403 down to the subscriptions it is about."""
        rows: list[Mapping[str, Any]] = []
        denied: dict[str, str] = {}
        pending = [subscriptions] if subscriptions else []
        while pending:
            batch = pending.pop()
            try:
                rows += self._pages(kql, batch)
            except _Denied as error:
                named = [s for s in batch if s in error.text.lower()]
                if len(batch) == 1 or named:
                    denied |= dict.fromkeys(named or batch, error.reason)
                    rest = [s for s in batch if s not in named]
                    if named and rest:
                        pending.append(rest)
                else:
                    middle = len(batch) // 2
                    pending += [batch[middle:], batch[:middle]]
        return rows, denied

    def _pages(self, kql: str, subscriptions: list[str]) -> list[Mapping[str, Any]]:
        rows: list[Mapping[str, Any]] = []
        token: str | None = None
        seen: set[str] = set()
        while True:
            options = QueryRequestOptions(skip_token=token, top=PAGE_SIZE, result_format="objectArray")
            request = QueryRequest(subscriptions=subscriptions, query=kql, options=options)
            try:
                answer = self._graph().resources(request)
            except sdk_errors.HttpResponseError as error:
                if error.status_code == 403:
                    raise _Denied(_reason(error), _all_said(error)) from None
                raise
            data = answer.data
            if not isinstance(data, list) or not all(isinstance(row, Mapping) for row in data):
                raise _MalformedAnswer("`data` is not a list of rows")
            rows += data
            token = answer.skip_token
            if not token:
                if str(answer.result_truncated).lower() == "true":
                    raise _MalformedAnswer("the answer is truncated and has no `$skipToken` to read the rest")
                return rows
            if token in seen:  # the SDK would fetch pages forever
                raise _MalformedAnswer(f"the `$skipToken` {mask_secrets(token)[:DETAIL_MAX]} repeats")
            seen.add(token)

    # ------------------------------------------------------------------ client and failures

    @property
    def credential(self) -> Any:
        with self._lock:
            if self._credential is None:
                self._credential = self._cloud.default_credential()
            return self._credential

    def _graph(self) -> ResourceGraphClient:
        credential = self.credential
        with self._lock:
            if self._client is None:
                self._client = ResourceGraphClient(credential, **self._cloud.client_settings(), **self._options)
            return self._client

    @contextmanager
    def _failures(self) -> Iterator[None]:
        """Every SDK and transport failure as a one-line AzureError that says what to do."""
        failed = "cannot query Azure Resource Graph"
        try:
            yield
        except AzureError:
            raise
        except sdk_errors.HttpResponseError as error:
            raise self._http_failure(failed, error) from None
        except sdk_errors.AzureError as error:
            raise transport_failure(failed, error, self._timeout, self._retry_total + 1) from None
        except (sdk_errors.DeserializationError, _MalformedAnswer, TypeError, AttributeError, ValueError) as error:
            detail = (
                str(error) if isinstance(error, _MalformedAnswer) else f"{type(error).__name__}: {first_line(error)}"
            )
            raise AzureError(
                f"{failed}: Azure's answer does not fit the API ({detail}); run again, and if it persists, "
                "`az graph query` shows what Azure sends"
            ) from None

    def _http_failure(self, failed: str, error: sdk_errors.HttpResponseError) -> AzureError:
        status = error.status_code
        if status is None:  # the credential failed: no request reached Azure
            return AzureError(f"{failed}: no Azure token ({first_line(error)}); {SIGN_IN}")
        if 200 <= status < 300:  # azure-core's DecodeError: a success whose body is not JSON
            return AzureError(f"{failed}: Azure's answer is not JSON ({first_line(error)}); run again")
        answer = f"{status} {error_code(error)}"
        if status == 401:
            return AccessDenied(
                f"{failed}: {answer}: Azure did not accept the token of {self._identity()}; sign in again "
                "(`az login`, to the subscriptions' tenant)"
            )
        if status in RETRIED_STATUSES:
            return AzureError(
                f"{failed}: {answer} still after {self._retry_total} retries: Azure is throttling or failing; "
                "run again in a few minutes"
            )
        return AzureError(f"{failed}: {answer}: {_reason(error)}")

    def _identity(self) -> str:
        return identity_of(self.credential, self._cloud)


def _reason(error: sdk_errors.HttpResponseError) -> str:
    """What Azure said, in one line: the first detail's message when there is one (Resource Graph's top-level
    message is often only "Please provide below info when asking for support: ...")."""
    odata = error.error
    details = [detail for detail in (getattr(odata, "details", None) or ()) if getattr(detail, "message", None)]
    message = details[0].message if details else (odata.message if odata and odata.message else str(error))
    return f"{error_code(error)}: {first_line(message)}"


def _all_said(error: sdk_errors.HttpResponseError) -> str:
    try:
        body = error.response.text() if error.response is not None else ""
    except (ValueError, UnicodeDecodeError):
        body = ""
    return f"{error}\n{body}"
