"""An azure-core transport that serves scripted HTTP responses, so the real Azure SDK clients run offline."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import requests
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest._requests_basic import RestRequestsTransportResponse


class FakeCredential:
    """A token credential that hands out a dummy token (no identity platform here)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("fake-token", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo("fake-token", int(time.time()) + 3600)


Responder = Callable[[Any], tuple[int, Any, dict[str, str]]]


class ScriptedTransport(HttpTransport):
    """Answers each request with `respond(request) -> (status, json body, headers)`; records the requests."""

    def __init__(self, respond: Responder):
        self.respond = respond
        self.requests: list[Any] = []

    def send(self, request: Any, **kwargs: Any) -> RestRequestsTransportResponse:
        self.requests.append(request)
        status, body, headers = self.respond(request)
        response = requests.Response()
        response.status_code = status
        response._content = b"" if body is None else json.dumps(body).encode()
        response.headers.update({"Content-Type": "application/json", **headers})
        response.url = request.url
        response.encoding = "utf-8"
        response._content_consumed = True
        return RestRequestsTransportResponse(request=request, internal_response=response)

    def open(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> ScriptedTransport:
        return self

    def __exit__(self, *args: Any) -> None: ...


def example(path: Any, status: str = "200") -> Any:
    """The response body of an x-ms-examples file."""
    return json.loads(path.read_text())["responses"][status]["body"]


class RecordingCredential(FakeCredential):
    """DefaultAzureCredential's stand-in: how it was built (`authority=`) and every scope a token was asked for."""

    def __init__(self, **options: Any):
        self.options = options
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes += scopes
        return super().get_token(*scopes, **kwargs)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        self.scopes += scopes
        return super().get_token_info(*scopes, options=options)


def recording_credentials(monkeypatch: Any) -> list[RecordingCredential]:
    """Every DefaultAzureCredential the code under test builds, as a RecordingCredential."""
    import azure.identity

    built: list[RecordingCredential] = []

    def build(**options: Any) -> RecordingCredential:
        built.append(RecordingCredential(**options))
        return built[-1]

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", build)
    return built
