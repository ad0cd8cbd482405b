"""ResourceGraphReader over the real azure-mgmt-resourcegraph client, served through azure-core's transport: the
official Resource Graph examples (paging with skip tokens), a simulated service for many subscriptions, quota
throttling on a fake clock, and subscriptions the identity cannot read.

Recorded bodies are in tests/fixtures/resourcegraph/ (SOURCE.md names where each comes from).
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

from fluxfleet.azure.resource_graph import (
    PAGE_SIZE,
    SUBSCRIPTIONS_PER_REQUEST,
    VISIBLE_SUBSCRIPTIONS,
    DeniedSubscription,
    ResourceGraphReader,
    kql_string,
    quota_wait,
)
from fluxfleet.azure.status import AccessDenied, AzureError
from fluxfleet.simulation import FakeClock
from tests.azure_transport import FakeCredential, ScriptedTransport, example
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "resourcegraph"
SUB = "cfbbd179-59d2-4052-aa06-9270a38aa9d6"  # the official examples' subscription
QUERY = "Resources | where name contains 'test' | project id, name, type, location"
RESET_AFTER_2S = {"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "00:00:02"}
Answer = tuple[int, Any, dict[str, str]]


def fixture(name: str, status: str = "200") -> Any:
    return example(FIXTURES / name, status)


def subscription(number: int) -> str:
    return f"{number:08x}-0000-4000-8000-{number:012x}"


def request_body(request: Any) -> dict[str, Any]:
    return json.loads(request.body)


class ResourceGraphServer:
    """Answers Resource Graph queries as the service does, from the rows it holds: the subscription rows of
    `resourcecontainers` for the visibility query, its rows for any other query; `$top` rows a page (at most
    `page_size`), with a `$skipToken` while rows remain; rows of the request's subscriptions only.

    `hidden` subscriptions are left out of every answer, as the service does with a subscription the caller
    may not read; a request naming a `forbidden` one fails with 403 AccessDenied, naming no subscription (as the
    service's error does). `interruptions` answer requests first, in turn (throttling, failures)."""

    def __init__(
        self,
        rows: Iterable[Mapping[str, Any]] = (),
        *,
        page_size: int = PAGE_SIZE,
        hidden: Iterable[str] = (),
        forbidden: Iterable[str] = (),
        interruptions: Iterable[Answer] = (),
        headers: Callable[[int], dict[str, str]] | None = None,
    ):
        self.rows = [dict(row) for row in rows]
        self.page_size = page_size
        self.hidden = set(hidden)
        self.forbidden = set(forbidden)
        self.interruptions = list(interruptions)
        self.headers = headers or (lambda number: {})
        self.bodies: list[dict[str, Any]] = []

    def respond(self, request: Any) -> Answer:
        assert request.method == "POST" and urlsplit(request.url).path == "/providers/Microsoft.ResourceGraph/resources"
        body = request_body(request)
        self.bodies.append(body)
        if self.interruptions:
            return self.interruptions.pop(0)
        wanted = body["subscriptions"]
        if self.forbidden & set(wanted):
            return 403, fixture("AccessDenied.json", "403"), {}
        readable = [s for s in wanted if s not in self.hidden]
        if body["query"] == VISIBLE_SUBSCRIPTIONS:
            rows = [{"id": f"/subscriptions/{s}", "subscriptionId": s} for s in readable]
        else:
            rows = [row for row in self.rows if row["subscriptionId"] in readable and self._typed(body["query"], row)]
        options = body.get("options", {})
        token = options.get("$skipToken")
        start = int(base64.b64decode(token)) if token else 0
        page = rows[start : start + min(options.get("$top", 100), self.page_size)]
        answer = {"totalRecords": len(rows), "count": len(page), "resultTruncated": "false", "facets": [], "data": page}
        if start + len(page) < len(rows):
            answer["$skipToken"] = base64.b64encode(str(start + len(page)).encode()).decode()
        return 200, answer, self.headers(len(self.bodies))

    @staticmethod
    def _typed(query: str, row: Mapping[str, Any]) -> bool:
        """The one filter of a query this service evaluates: `where type in~ (...)`. Any other column a query
        computes (the inventory's `selected`) is recorded in the rows, as the service would have computed it."""
        found = re.search(r"\| where type in~ \(([^)]*)\)", query)
        if found is None:
            return True
        return str(row.get("type", "")).lower() in re.findall(r"'([^']*)'", found.group(1))

    def transport(self) -> ScriptedTransport:
        return ScriptedTransport(self.respond)

    def queries(self) -> list[dict[str, Any]]:
        """The requests of the query itself (not the visibility checks)."""
        return [body for body in self.bodies if body["query"] != VISIBLE_SUBSCRIPTIONS]


def reader_over(transport: ScriptedTransport, clock: FakeClock | None = None, **options: Any) -> ResourceGraphReader:
    return ResourceGraphReader(FakeCredential(), clock=clock or FakeClock(), transport=transport, **options)


def answering(*answers: Answer, visible: Iterable[str] = (SUB,)) -> tuple[ScriptedTransport, list[dict[str, Any]]]:
    """A transport that answers the visibility check with `visible`, then the given answers in turn."""
    bodies: list[dict[str, Any]] = []
    remaining = list(answers)

    def respond(request: Any) -> Answer:
        body = request_body(request)
        bodies.append(body)
        if body["query"] == VISIBLE_SUBSCRIPTIONS:
            data = [{"id": f"/subscriptions/{s}", "subscriptionId": s} for s in visible]
            return 200, {"totalRecords": len(data), "count": len(data), "resultTruncated": "false", "data": data}, {}
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return ScriptedTransport(respond), bodies


def one_line(error: BaseException) -> str:
    message = str(error)
    assert message and "\n" not in message, message
    return message


# --------------------------------------------------------------------------------------------- paging


def test_three_pages_follow_the_skip_tokens_of_the_official_examples():
    first, second = fixture("ResourcesFirstPageQuery.json"), fixture("ResourcesNextPageQuery.json")
    last = fixture("ResourcesBasicQuery.json")  # no $skipToken: the last page
    transport, bodies = answering((200, first, {}), (200, second, {}), (200, last, {}))
    result = reader_over(transport).query(QUERY, [SUB.upper()])
    assert [row["name"] for row in result.rows] == [
        *(row["name"] for row in first["data"]),
        *(row["name"] for row in second["data"]),
        *(row["name"] for row in last["data"]),
    ]
    assert result.requests == 4 and result.denied == ()  # the visibility check, then three pages
    queries = bodies[1:]
    assert [q["options"].get("$skipToken") for q in queries] == [None, first["$skipToken"], second["$skipToken"]]
    for query in queries:  # the same query and scope on every page, as the service requires
        assert query["query"] == QUERY and query["subscriptions"] == [SUB]  # ids compared in lower case
        assert query["options"]["$top"] == PAGE_SIZE and query["options"]["resultFormat"] == "objectArray"


def test_a_repeating_skip_token_is_a_malformed_answer_not_an_endless_loop():
    page = fixture("ResourcesFirstPageQuery.json")
    transport, _ = answering((200, page, {}))
    with pytest.raises(AzureError) as error:
        reader_over(transport).query(QUERY, [SUB])
    assert "does not fit the API" in one_line(error.value) and "repeats" in str(error.value)
    assert len(transport.requests) == 3


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"data": {"not": "a list"}}, "`data` is not a list of rows"),
        ({"data": [1, 2]}, "`data` is not a list of rows"),
        ({"resultTruncated": "true"}, "truncated"),
    ],
)
def test_answers_that_do_not_fit_are_one_line_errors(change, said):
    body = {**fixture("ResourcesBasicQuery.json"), **change}
    transport, _ = answering((200, body, {}))
    with pytest.raises(AzureError) as error:
        reader_over(transport).query(QUERY, [SUB])
    assert said in one_line(error.value)


def test_the_request_is_the_documented_post():
    transport, _ = answering((200, fixture("ResourcesBasicQuery.json"), {}))
    reader_over(transport).query(QUERY, [SUB])
    request = transport.requests[-1]
    url = urlsplit(request.url)
    assert (request.method, url.netloc, url.path) == (
        "POST",
        "management.azure.com",
        "/providers/Microsoft.ResourceGraph/resources",
    )
    assert parse_qs(url.query)["api-version"] == ["2021-03-01"]
    assert request.headers["Authorization"] == "Bearer fake-token"


# --------------------------------------------------------------------------------------------- many subscriptions


def test_many_subscriptions_in_one_query():
    subscriptions = [subscription(n) for n in range(20)]
    rows = [{"id": f"/subscriptions/{s}/x", "subscriptionId": s} for s in subscriptions]
    server = ResourceGraphServer(rows)
    result = reader_over(server.transport()).query("resources", subscriptions)
    assert result.requests == 2  # one visibility check, one query: all 20 subscriptions in each
    assert [sorted(body["subscriptions"]) for body in server.bodies] == [sorted(subscriptions)] * 2
    assert sorted(row["subscriptionId"] for row in result.rows) == sorted(subscriptions)


def test_subscriptions_past_the_limit_go_in_batches_of_the_limit():
    subscriptions = [subscription(n) for n in range(2 * SUBSCRIPTIONS_PER_REQUEST + 500)]
    rows = [{"id": f"/subscriptions/{s}/x", "subscriptionId": s} for s in subscriptions[::100]]
    server = ResourceGraphServer(rows)
    result = reader_over(server.transport()).query("resources", subscriptions)
    sizes = [len(body["subscriptions"]) for body in server.queries()]
    assert sizes == [SUBSCRIPTIONS_PER_REQUEST, SUBSCRIPTIONS_PER_REQUEST, 500]
    assert sorted(s for body in server.queries() for s in body["subscriptions"]) == sorted(subscriptions)
    assert result.requests == 6 and len(result.rows) == len(rows) and result.denied == ()


# --------------------------------------------------------------------------------------------- throttling


def test_a_429_without_retry_after_waits_for_the_quota_to_reset():
    throttled = (429, fixture("RateLimiting.json", "429"), RESET_AFTER_2S)
    server = ResourceGraphServer([{"id": "/x", "subscriptionId": SUB}], interruptions=[throttled])
    clock = FakeClock()
    result = reader_over(server.transport(), clock).query("resources", [SUB])
    assert len(result.rows) == 1 and result.requests == 3  # the visibility check throttled once, retried
    assert clock.sleeps == [2.0]  # the quota header, not azure-core's exponential backoff


def test_a_429_with_retry_after_waits_what_retry_after_says():
    throttled = (429, fixture("RateLimiting.json", "429"), {"Retry-After": "7"})
    server = ResourceGraphServer(interruptions=[throttled])
    clock = FakeClock()
    reader_over(server.transport(), clock).query("resources", [SUB])
    assert clock.sleeps == [7.0]


def test_a_page_that_uses_the_quota_up_makes_the_next_request_wait():
    rows = [{"id": f"/x/{n}", "subscriptionId": SUB} for n in range(3)]
    clock = FakeClock()
    sent_at: list[datetime] = []

    def headers(number: int) -> dict[str, str]:
        sent_at.append(clock.now())
        return {"x-ms-user-quota-remaining": "0" if number == 2 else "9", "x-ms-user-quota-resets-after": "00:00:03"}

    server = ResourceGraphServer(rows, page_size=2, headers=headers)
    result = reader_over(server.transport(), clock).query("resources", [SUB])
    assert len(result.rows) == 3 and result.requests == 3
    assert clock.sleeps == [3.0]  # before the third request only
    assert (sent_at[2] - sent_at[1]).total_seconds() == 3 and sent_at[1] == sent_at[0]


def test_a_quota_that_resets_too_late_fails_in_one_line_without_waiting():
    late = {"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "01:00:00"}
    server = ResourceGraphServer(
        [{"id": "/x", "subscriptionId": SUB}], interruptions=[(429, fixture("RateLimiting.json", "429"), late)]
    )
    clock = FakeClock()
    with pytest.raises(AzureError) as error:
        reader_over(server.transport(), clock).query("resources", [SUB])
    assert "resets only in 3,600s" in one_line(error.value) and clock.sleeps == []


def test_throttled_past_every_retry_is_one_line():
    server = ResourceGraphServer(interruptions=[(429, fixture("RateLimiting.json", "429"), RESET_AFTER_2S)] * 10)
    with pytest.raises(AzureError) as error:
        reader_over(server.transport(), retry_total=2).query("resources", [SUB])
    assert one_line(error.value).startswith("cannot query Azure Resource Graph: 429 RateLimiting still after 2 retries")


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        (RESET_AFTER_2S, 2.0),
        ({"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "00:01:04.5"}, 64.5),
        ({"x-ms-user-quota-remaining": "3", "x-ms-user-quota-resets-after": "00:00:02"}, None),
        ({"x-ms-user-quota-remaining": "0"}, None),
        ({"x-ms-user-quota-remaining": "none", "x-ms-user-quota-resets-after": "00:00:02"}, None),
        ({"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "2 seconds"}, None),
    ],
)
def test_quota_headers(headers, seconds):
    assert quota_wait(headers) == seconds


def test_a_service_failure_is_retried_then_answered():
    server = ResourceGraphServer(
        [{"id": "/x", "subscriptionId": SUB}],
        interruptions=[(503, {"error": {"code": "ServiceUnavailable", "message": "busy"}}, {})],
    )
    clock = FakeClock()
    result = reader_over(server.transport(), clock).query("resources", [SUB])
    assert len(result.rows) == 1 and result.requests == 3


# --------------------------------------------------------------------------------------------- denied subscriptions


def test_a_forbidden_subscription_is_found_by_halving_and_the_others_are_answered():
    subscriptions = [subscription(n) for n in range(8)]
    rows = [{"id": f"/subscriptions/{s}/x", "subscriptionId": s} for s in subscriptions]
    server = ResourceGraphServer(rows, forbidden=[subscriptions[5]])
    result = reader_over(server.transport()).query("resources", subscriptions)
    assert result.denied == (
        DeniedSubscription(
            subscriptions[5],
            "AccessDenied: Access is denied to the requested resource. The user might not have enough permission.",
        ),
    )
    assert sorted(row["subscriptionId"] for row in result.rows) == sorted(set(subscriptions) - {subscriptions[5]})
    assert all(subscriptions[5] not in body["subscriptions"] for body in server.queries())  # checked first
    assert result.requests == 1 + 6 + 1  # the 403 check, halved down to the one (2 per level), then the query


def test_a_subscription_the_service_leaves_out_is_denied_not_empty():
    subscriptions = [subscription(n) for n in range(3)]
    rows = [{"id": f"/subscriptions/{s}/x", "subscriptionId": s} for s in subscriptions]
    server = ResourceGraphServer(rows, hidden=[subscriptions[1]])
    result = reader_over(server.transport()).query("resources", subscriptions)
    [denied] = result.denied
    assert denied.subscription_id == subscriptions[1] and "does not show it" in denied.reason
    assert {row["subscriptionId"] for row in result.rows} == {subscriptions[0], subscriptions[2]}
    assert server.queries()[0]["subscriptions"] == [subscriptions[0], subscriptions[2]]


def test_a_403_that_names_its_subscriptions_drops_just_those():
    subscriptions = [subscription(n) for n in range(6)]
    body = copy.deepcopy(fixture("AccessDenied.json", "403"))
    body["error"]["details"][0]["message"] = (
        f"The client has no read access to subscription {subscriptions[4].upper()}."
    )
    calls = {"count": 0}

    def respond(request: Any) -> Answer:
        calls["count"] += 1
        wanted = request_body(request)["subscriptions"]
        if subscriptions[4] in wanted:
            return 403, body, {}
        data = [{"id": f"/subscriptions/{s}", "subscriptionId": s} for s in wanted]
        return 200, {"totalRecords": len(data), "count": len(data), "resultTruncated": "false", "data": data}, {}

    result = reader_over(ScriptedTransport(respond)).query("resources", subscriptions)
    assert [d.subscription_id for d in result.denied] == [subscriptions[4]]
    assert "no read access to subscription" in result.denied[0].reason
    assert result.requests == 3  # the 403, the visibility check without it, the query


def test_every_subscription_forbidden_is_every_one_denied():
    subscriptions = [subscription(n) for n in range(3)]
    server = ResourceGraphServer(forbidden=subscriptions)
    result = reader_over(server.transport()).query("resources", subscriptions)
    assert [d.subscription_id for d in result.denied] == sorted(subscriptions)
    assert result.rows == ()


def test_a_token_azure_rejects_is_access_denied_in_one_line():
    rejected = {"error": {"code": "InvalidAuthenticationToken", "message": "The access token is invalid."}}
    transport = ScriptedTransport(lambda request: (401, rejected, {}))
    with pytest.raises(AccessDenied) as error:
        reader_over(transport).query("resources", [SUB])
    assert one_line(error.value).startswith("cannot query Azure Resource Graph: 401 InvalidAuthenticationToken")


def test_no_token_and_no_network_are_one_line():
    class NoToken(FakeCredential):
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

        get_token_info = get_token

    transport = ScriptedTransport(lambda request: (200, {}, {}))
    with pytest.raises(AzureError) as error:
        ResourceGraphReader(NoToken(), clock=FakeClock(), transport=transport).query("resources", [SUB])
    assert "no Azure token" in one_line(error.value) and transport.requests == []

    def unreachable(request: Any) -> Answer:
        raise ServiceRequestError("Failed to resolve 'management.azure.com'")

    with pytest.raises(AzureError) as error:
        reader_over(ScriptedTransport(unreachable), retry_total=1).query("resources", [SUB])
    assert "cannot connect to Azure" in one_line(error.value)


def test_a_bad_query_is_one_line_with_azure_s_words_and_credentials_masked():
    bad = {
        "error": {
            "code": "BadRequest",
            "message": "Please provide below info",
            "details": [{"code": "InvalidQuery", "message": "Query is invalid. password=hunter2 near 'x'"}],
        }
    }
    transport, _ = answering((400, bad, {}))
    with pytest.raises(AzureError) as error:
        reader_over(transport).query("resources |", [SUB])
    message = one_line(error.value)
    assert message.startswith("cannot query Azure Resource Graph: 400 BadRequest: BadRequest: Query is invalid.")
    assert "hunter2" not in message


def test_no_subscription_is_no_request():
    transport = ScriptedTransport(lambda request: pytest.fail("no request expected"))
    result = reader_over(transport).query("resources", [])
    assert result == type(result)(rows=(), denied=(), requests=0)


# --------------------------------------------------------------------------------------------- KQL string literals


def read_kql_string(text: str) -> tuple[str, int]:
    """A single-quoted KQL string literal at the start of `text`, read as KQL reads it: its value, and where it
    ends. Only the escapes KQL documents; anything else is a test failure."""
    assert text[0] == "'"
    value, index = [], 1
    escapes = {"'": "'", '"': '"', "\\": "\\", "t": "\t", "n": "\n"}
    while text[index] != "'":
        if text[index] == "\\":
            value.append(escapes[text[index + 1]])
            index += 2
        else:
            assert text[index] not in "\r\n", "a raw line break inside a KQL literal"
            value.append(text[index])
            index += 1
    return "".join(value), index + 1


@pytest.mark.parametrize(
    "value",
    [
        "stores",
        "it's",
        "x' or 1 == 1 //",
        "a\\'; resources | project secrets //",
        "\\",
        "ends with a backslash\\",
        "\"double\" and 'single'",
        "tab\tand\nnewline",
        "ünïcödé ✓",
        "",
    ],
)
def test_kql_string_never_lets_a_value_out(value):
    literal = kql_string(value)
    read, end = read_kql_string(literal + " | where true")
    assert read == value and end == len(literal)


@pytest.mark.parametrize("character", ["\x00", "\x1b", "\r", "\x85", "\u2028", "\u202e"])
def test_kql_string_refuses_control_characters(character):
    with pytest.raises(ValueError):
        kql_string(f"a{character}b")
