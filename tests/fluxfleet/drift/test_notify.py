"""The Teams card: resolving the webhook reference, and posting to a real HTTP server on 127.0.0.1 with retries,
without the webhook URL (a credential) reaching a request body, a log record or an error."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from fluxfleet.drift.notify import MAX_LINES, Card, NotifyError, card_message, post_card, resolve_webhook
from modules.spec import KeyVaultRef
from tests.conftest import CANARY, SECRET_SIG

WORKFLOW_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # a Workflows URL's path names the flow: as secret as the sig
WEBHOOK_PATH = f"/workflows/{WORKFLOW_ID}/triggers/manual/paths/invoke"
WEBHOOK_QUERY = f"api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SECRET_SIG}"
SECRETS = (SECRET_SIG, WORKFLOW_ID, CANARY)
FAST = {"retry_backoff_factor": 0.001}  # azure-core's backoff, made tiny

CARD = Card(
    title="Drift: 2 of 40 stacks",
    summary="Nightly drift check found changes outside Pulumi.",
    facts=[("drifted", "2 of 40 stacks"), ("unreachable", "1")],
    lines=["prod-weu: 2 resources changed", "prod-neu: flux-apps kustomization"],
    link="https://github.com/contoso/fleet/actions/runs/42",
)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Webhook:
    """A local HTTP server standing in for Teams: answers from a script (its last answer repeats)."""

    server: ThreadingHTTPServer
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=lambda: [(202, {})])
    delay: float = 0.0  # seconds before each answer
    received: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{WEBHOOK_PATH}?{WEBHOOK_QUERY}"


@pytest.fixture
def webhook(monkeypatch) -> Iterator[Webhook]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # a proxy set for the machine must not take these
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hook.received.append(Received("POST", self.path, dict(self.headers), body))
            status, headers = hook.answers[min(len(hook.received), len(hook.answers)) - 1]
            time.sleep(hook.delay)
            self.send_response(status)
            for name, value in {"Content-Length": "0", **headers}.items():
                self.send_header(name, value)
            self.end_headers()

        def log_message(self, format: str, *args) -> None:  # the test server logs nothing
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook = Webhook(server)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield hook
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


# --- the card ---------------------------------------------------------------------------------------------------


def test_posts_an_adaptive_card_in_a_teams_message(webhook):
    post_card(webhook.url, CARD, **FAST)
    [request] = webhook.received
    assert request.path == f"{WEBHOOK_PATH}?{WEBHOOK_QUERY}"
    assert request.headers["Content-Type"] == "application/json"
    message = json.loads(request.body)
    assert message == {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {
                            "type": "TextBlock",
                            "text": "Drift: 2 of 40 stacks",
                            "size": "Medium",
                            "weight": "Bolder",
                            "wrap": True,
                        },
                        {
                            "type": "TextBlock",
                            "text": "Nightly drift check found changes outside Pulumi.",
                            "wrap": True,
                        },
                        {
                            "type": "FactSet",
                            "facts": [
                                {"title": "drifted", "value": "2 of 40 stacks"},
                                {"title": "unreachable", "value": "1"},
                            ],
                        },
                        {"type": "TextBlock", "text": "prod-weu: 2 resources changed", "wrap": True, "spacing": "None"},
                        {
                            "type": "TextBlock",
                            "text": "prod-neu: flux-apps kustomization",
                            "wrap": True,
                            "spacing": "None",
                        },
                    ],
                    "actions": [
                        {
                            "type": "Action.OpenUrl",
                            "title": "Open",
                            "url": "https://github.com/contoso/fleet/actions/runs/42",
                        }
                    ],
                },
            }
        ],
    }
    assert_no_secret(request.body.decode())


def test_a_card_without_facts_lines_or_link_is_title_and_summary_only():
    content = card_message(Card("Drift: none", "All 40 stacks match."))["attachments"][0]["content"]
    assert [block["text"] for block in content["body"]] == ["Drift: none", "All 40 stacks match."]
    assert "actions" not in content


def test_many_lines_are_cut_to_keep_the_message_under_the_teams_limit():
    lines = [f"stack-{n}: drifted" for n in range(MAX_LINES + 7)]
    body = card_message(Card("t", "s", lines=lines))["attachments"][0]["content"]["body"]
    texts = [block["text"] for block in body[2:]]
    assert texts == [*lines[:MAX_LINES], "… and 7 more"]


# --- retries ----------------------------------------------------------------------------------------------------


def test_503_twice_then_success_posts_once_after_three_requests(webhook):
    webhook.answers = [(503, {}), (503, {}), (200, {})]
    post_card(webhook.url, CARD, **FAST)
    assert len(webhook.received) == 3
    assert len({request.body for request in webhook.received}) == 1  # the same card each time


def test_500_forever_fails_after_the_retries_with_the_status_and_no_url(webhook):
    webhook.answers = [(500, {})]
    with pytest.raises(NotifyError) as raised:
        post_card(webhook.url, CARD, retry_total=2, **FAST)
    assert len(webhook.received) == 3
    message = str(raised.value)
    assert "HTTP 500" in message and "try again later" in message and "\n" not in message
    assert webhook.url not in message and WEBHOOK_PATH not in message
    assert_no_secret(message)


def test_429_waits_for_its_retry_after(webhook):
    webhook.answers = [(429, {"Retry-After": "1"}), (202, {})]
    started = time.monotonic()
    post_card(webhook.url, CARD, **FAST)
    assert len(webhook.received) == 2
    assert time.monotonic() - started >= 0.95


def test_429_without_retry_after_and_502_are_retried_too(webhook):
    webhook.answers = [(429, {}), (502, {}), (200, {})]
    post_card(webhook.url, CARD, **FAST)
    assert len(webhook.received) == 3


@pytest.mark.parametrize(
    "status, advice", [(400, "Adaptive Card"), (404, "create a new one"), (413, "too large"), (302, "unexpected")]
)
def test_a_client_error_fails_at_once_saying_what_to_do(webhook, status, advice):
    webhook.answers = [(status, {"Location": "https://example.invalid/elsewhere"})]
    with pytest.raises(NotifyError, match=f"HTTP {status}: .*{advice}") as raised:
        post_card(webhook.url, CARD, **FAST)
    assert len(webhook.received) == 1  # neither retried nor redirected
    assert_no_secret(str(raised.value))


def test_a_refused_connection_is_a_notify_error_without_the_url():
    with socket.socket() as probe:  # a port that was free a moment ago, with nothing listening now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}?{WEBHOOK_QUERY}"
    with pytest.raises(NotifyError, match="could not post to the Teams webhook at 127.0.0.1: no connection") as raised:
        post_card(url, CARD, retry_total=1, **FAST)
    assert raised.value.__cause__ is None and raised.value.__context__ is None  # no chained error names the URL
    assert_no_secret(str(raised.value))


def test_a_slow_answer_times_out_and_is_not_sent_twice(webhook):
    webhook.delay = 1.0
    with pytest.raises(
        NotifyError, match=r"no answer \(ServiceResponseTimeoutError\); the card may have been posted"
    ) as raised:
        post_card(webhook.url, CARD, timeout=0.2, **FAST)
    assert len(webhook.received) == 1  # the service may have posted it: a retry could post it twice
    assert_no_secret(str(raised.value))


def test_nothing_logs_the_url_even_at_debug(webhook, caplog):
    caplog.set_level(logging.DEBUG)  # the root logger: azure-core, requests and urllib3 alike
    webhook.answers = [(503, {}), (500, {})]
    with pytest.raises(NotifyError):
        post_card(webhook.url, CARD, retry_total=2, **FAST)
    assert len(webhook.received) == 3
    assert_no_secret(caplog.text, *(str(record.args) for record in caplog.records))

    # The capture works, and urllib3 still logs everything else: its request line is silenced only for the card.
    requests.post(f"http://127.0.0.1:{webhook.server.server_port}/other?visible=1", timeout=5)
    assert '"POST /other?visible=1 HTTP/1.1"' in caplog.text


def test_post_card_refuses_plain_http_to_another_host():
    with pytest.raises(NotifyError, match="must be https") as raised:
        post_card(f"http://teams.example.com{WEBHOOK_PATH}?{WEBHOOK_QUERY}", CARD)
    assert_no_secret(str(raised.value))


# --- resolving the reference ------------------------------------------------------------------------------------

HTTPS_URL = f"https://prod-12.westeurope.logic.azure.com:443{WEBHOOK_PATH}?{WEBHOOK_QUERY}"


class FakeKeyVault:
    def __init__(self, value: str = HTTPS_URL) -> None:
        self.value = value
        self.reads: list[KeyVaultRef] = []

    def __call__(self, ref: KeyVaultRef) -> str:
        self.reads.append(ref)
        return self.value


def no_key_vault(ref: KeyVaultRef) -> str:
    raise AssertionError(f"Key Vault read for {ref}")


def test_env_reference_reads_the_variable():
    assert resolve_webhook("env:TEAMS_WEBHOOK", {"TEAMS_WEBHOOK": f" {HTTPS_URL}\n"}, no_key_vault) == HTTPS_URL


@pytest.mark.parametrize("environ", [{}, {"TEAMS_WEBHOOK": ""}, {"TEAMS_WEBHOOK": "  "}])
def test_an_unset_or_empty_variable_is_named(environ):
    with pytest.raises(NotifyError, match="environment variable TEAMS_WEBHOOK is unset or empty"):
        resolve_webhook("env:TEAMS_WEBHOOK", environ, no_key_vault)


@pytest.mark.parametrize(
    "reference, expected",
    [
        ("keyvault:kv-fleet/teams-webhook", KeyVaultRef("kv-fleet", "teams-webhook")),
        (
            "keyvault:https://kv-fleet.vault.azure.net/teams-webhook",
            KeyVaultRef("https://kv-fleet.vault.azure.net", "teams-webhook"),
        ),
        (
            "keyvault:kv-fleet/teams-webhook@0123456789abcdef0123456789abcdef",
            KeyVaultRef("kv-fleet", "teams-webhook", "0123456789abcdef0123456789abcdef"),
        ),
    ],
)
def test_keyvault_reference_reads_the_secret(reference, expected):
    vault = FakeKeyVault()
    assert resolve_webhook(reference, {}, vault) == HTTPS_URL
    assert vault.reads == [expected]


@pytest.mark.parametrize(
    "reference, error",
    [
        ("keyvault:teams-webhook", "keyVault must be"),
        ("keyvault:kv_fleet/teams-webhook", "keyVault must be"),
        ("keyvault:kv-fleet/", "secret must be"),
        ("keyvault:kv-fleet/teams webhook", "secret must be"),
        ("keyvault:kv-fleet/teams-webhook@latest", "version must be"),
        (f"keyvault:{HTTPS_URL}", "keyVault must be"),  # a URL pasted after the prefix is not repeated either
    ],
)
def test_a_malformed_keyvault_reference_is_rejected(reference, error):
    with pytest.raises(NotifyError, match=error) as raised:
        resolve_webhook(reference, {}, no_key_vault)
    assert_no_secret(str(raised.value))


def test_an_empty_keyvault_secret_is_rejected():
    with pytest.raises(NotifyError, match="keyvault:kv-fleet/teams-webhook: the Key Vault secret is empty"):
        resolve_webhook("keyvault:kv-fleet/teams-webhook", {}, FakeKeyVault(""))


@pytest.mark.parametrize(
    "literal",
    [HTTPS_URL, f"http://127.0.0.1:8080{WEBHOOK_PATH}?{WEBHOOK_QUERY}", f"env:{HTTPS_URL}", f"env: {HTTPS_URL}"],
)
def test_a_literal_url_is_rejected_without_repeating_it(literal):
    with pytest.raises(NotifyError, match="shell history and CI logs.*env:NAME.*keyvault:VAULT/SECRET") as raised:
        resolve_webhook(literal, {}, no_key_vault)
    assert_no_secret(str(raised.value))


@pytest.mark.parametrize("reference", ["TEAMS_WEBHOOK", "env:", "vault:kv/secret", f"{WORKFLOW_ID}:{SECRET_SIG}"])
def test_anything_else_is_not_a_reference(reference):
    with pytest.raises(NotifyError, match="not a webhook reference: pass env:NAME") as raised:
        resolve_webhook(reference, {}, no_key_vault)
    assert_no_secret(str(raised.value))


@pytest.mark.parametrize(
    "url",
    [
        f"http://prod-12.westeurope.logic.azure.com{WEBHOOK_PATH}?{WEBHOOK_QUERY}",
        f"ftp://teams.example.com{WEBHOOK_PATH}?{WEBHOOK_QUERY}",
        f"http://127.0.0.2{WEBHOOK_PATH}?{WEBHOOK_QUERY}",
    ],
)
def test_a_resolved_url_must_be_https_unless_local(url):
    with pytest.raises(
        NotifyError, match="the webhook URL in environment variable TEAMS_WEBHOOK must be https"
    ) as raised:
        resolve_webhook("env:TEAMS_WEBHOOK", {"TEAMS_WEBHOOK": url}, no_key_vault)
    assert_no_secret(str(raised.value))
    vault = FakeKeyVault(url)
    with pytest.raises(NotifyError, match="the webhook URL in keyvault:kv-fleet/teams-webhook must be https") as raised:
        resolve_webhook("keyvault:kv-fleet/teams-webhook", {}, vault)
    assert_no_secret(str(raised.value))


@pytest.mark.parametrize("value", [SECRET_SIG, f"https://{CANARY}:99999/x", "https:///no-host"])
def test_a_resolved_value_that_is_no_url_is_rejected_without_repeating_it(value):
    with pytest.raises(
        NotifyError, match="the webhook URL in environment variable TEAMS_WEBHOOK is not a URL"
    ) as raised:
        resolve_webhook("env:TEAMS_WEBHOOK", {"TEAMS_WEBHOOK": value}, no_key_vault)
    assert_no_secret(str(raised.value))


def test_plain_http_is_allowed_to_this_machine_only():
    for host in ("127.0.0.1:8080", "localhost", "[::1]:9000"):
        url = f"http://{host}/hook"
        assert resolve_webhook("env:HOOK", {"HOOK": url}, no_key_vault) == url
