"""A strict JSON Schema from an Azure REST API swagger definition, for request-body conformance tests.

Strict where the swagger is loose: an object accepts only the properties the swagger defines, and none of
the read-only ones (a request that sends them is wrong). Enums, bounds (minimum, maximum) and patterns as the
swagger has them. References to common-types files that are not in
tests/fixtures/arm-examples (ProxyResource, Identity) accept any value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def request_schema(swagger: Path, definition: str) -> dict[str, Any]:
    document = json.loads(swagger.read_text())
    definitions = document["definitions"]
    schema = _convert(definitions[definition])
    schema["$defs"] = {name: _convert(node) for name, node in definitions.items()}
    return schema


def _convert(node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        ref = node["$ref"]
        return {"$ref": "#/$defs/" + ref.split("/")[-1]} if ref.startswith("#/definitions/") else {}
    nullable = bool(node.get("x-nullable"))
    out: dict[str, Any] = {}
    if "type" in node:
        out["type"] = [node["type"], "null"] if nullable else node["type"]
    if "enum" in node:
        out["enum"] = [*node["enum"], *([None] if nullable else [])]
    for bound in ("minimum", "maximum", "pattern"):
        if bound in node:
            out[bound] = node[bound]
    if "items" in node:
        out["items"] = _convert(node["items"])
    if "properties" in node:
        out["properties"] = {
            name: _convert(prop) for name, prop in node["properties"].items() if not prop.get("readOnly")
        }
        out["additionalProperties"] = False
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _convert(node["additionalProperties"])
    return out


NO_DEFAULT = object()


def api_default(swagger: Path, definition: str, path: tuple[str, ...]) -> Any:
    """The `default` the swagger documents for the property at `path` (map entries by any key), or NO_DEFAULT."""
    definitions = json.loads(swagger.read_text())["definitions"]
    node: dict[str, Any] = definitions[definition]
    for key in path:
        node = _resolve(definitions, node)
        if key in node.get("properties", {}):
            node = node["properties"][key]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return NO_DEFAULT
    return _resolve(definitions, node).get("default", NO_DEFAULT)


def _resolve(definitions: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref", "")
    return definitions[ref.split("/")[-1]] if ref.startswith("#/definitions/") else node
