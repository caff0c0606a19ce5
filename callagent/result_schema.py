"""What a client asks a call to learn, as a JSON Schema (`make_phone_call(result_schema=…)`).

Pure. `check` refuses what cannot serve as one: not an object schema, too big or too deep, a
keyword the model's structured output does not support, or not valid JSON Schema at all.
`for_model` turns it into the strict form the summarizer's model answers in: every property
present, each one nullable, because what the call did not learn is null, never invented.
`problems` checks an answer against it.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_RESULT_SCHEMA_CHARS", "InvalidSchema", "check", "for_model", "problems"]

MAX_RESULT_SCHEMA_CHARS = 4000
MAX_DEPTH = 4
MAX_PROPERTIES = 40
# What OpenAI's strict structured output takes (and what a call's answers need); the rest is
# refused by name rather than silently ignored by the model.
_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "items",
        "enum",
        "const",
        "description",
        "title",
        "additionalProperties",
        "anyOf",
    }
)
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})


class InvalidSchema(ValueError):
    """The result_schema cannot be used; the message says where and why."""


def check(schema: object) -> dict[str, Any]:
    """`schema` if it is a usable result schema, else InvalidSchema naming the problem."""
    if not isinstance(schema, dict):
        raise InvalidSchema('result_schema must be a JSON Schema object, like {"type": "object", "properties": …}')
    try:
        size = len(json.dumps(schema))
    except (TypeError, ValueError) as exc:
        raise InvalidSchema(f"result_schema is not JSON: {exc}") from None
    if size > MAX_RESULT_SCHEMA_CHARS:
        raise InvalidSchema(
            f"result_schema is {size} characters as JSON, more than the {MAX_RESULT_SCHEMA_CHARS} allowed"
        )
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict) or not schema["properties"]:
        raise InvalidSchema('result_schema must be {"type": "object"} with at least one property in "properties"')
    _walk(schema, "result_schema", 0)
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "the top"
        raise InvalidSchema(f"result_schema is not valid JSON Schema at {where}: {exc.message}") from None
    return schema


def _walk(node: object, where: str, depth: int) -> None:
    if not isinstance(node, dict):
        raise InvalidSchema(f"{where} must be a schema object")
    if depth > MAX_DEPTH:
        raise InvalidSchema(f"{where} is nested more than {MAX_DEPTH} levels deep")
    unknown = sorted(set(node) - _KEYWORDS)
    if unknown:
        raise InvalidSchema(
            f"{where} uses {', '.join(map(repr, unknown))}, not supported here; use only {', '.join(sorted(_KEYWORDS))}"
        )
    kinds = node.get("type")
    for kind in kinds if isinstance(kinds, list) else [kinds] if kinds is not None else []:
        if kind not in _TYPES:
            raise InvalidSchema(f"{where} has type {kind!r}; use one of {', '.join(sorted(_TYPES))}")
    if node.get("additionalProperties") not in (None, False):
        raise InvalidSchema(f"{where}: additionalProperties may only be false (the answer has exactly these fields)")
    properties = node.get("properties", {})
    if not isinstance(properties, dict) or len(properties) > MAX_PROPERTIES:
        raise InvalidSchema(f"{where}.properties must be an object of at most {MAX_PROPERTIES} properties")
    for name, sub in properties.items():
        _walk(sub, f"{where}.properties.{name}", depth + 1)
    if "items" in node:
        _walk(node["items"], f"{where}.items", depth + 1)
    for i, sub in enumerate(node.get("anyOf", [])):
        _walk(sub, f"{where}.anyOf[{i}]", depth + 1)


def for_model(schema: dict[str, Any]) -> dict[str, Any]:
    """The strict form: every property required but nullable, no other properties, no titles."""

    def strict(node: dict[str, Any], nullable: bool) -> dict[str, Any]:
        node = {k: v for k, v in node.items() if k != "title"}
        if "properties" in node:
            node["properties"] = {name: strict(sub, True) for name, sub in node["properties"].items()}
            node["required"] = list(node["properties"])
            node["additionalProperties"] = False
        if "items" in node:
            node["items"] = strict(node["items"], False)
        if "anyOf" in node:
            node["anyOf"] = [strict(sub, False) for sub in node["anyOf"]]
        return {"anyOf": [node, {"type": "null"}]} if nullable else node

    return strict(schema, False)


def problems(data: object, schema: dict[str, Any]) -> list[str]:
    """Where `data` does not fit `schema` in its strict form (nulls allowed); [] if it fits."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(for_model(schema))
    return [f"{'/'.join(map(str, e.path)) or 'data'}: {e.message}" for e in validator.iter_errors(data)]
