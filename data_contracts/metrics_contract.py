"""The ``metrics.json`` output contract: ODCS YAML compiled to a JSON Schema, and its validator.

``data_contracts/metrics.odcs.yaml`` describes the document as one ODCS schema
object with nested ``properties`` (objects) and ``items`` (arrays). Logical
types used there:

- ``string`` (optional ``logicalTypeOptions.pattern``), ``date`` (ISO
  ``YYYY-MM-DD``), ``boolean``, ``integer`` (optional ``minimum``);
- ``count``: an integer of at least 0; ``money``: yuan as a string with
  exactly two decimals (``"-12.05"``);
- ``number``: a rate, ratio or share; always nullable (undefined rates are
  null);
- ``object`` with ``properties``, or with customProperties ``mapValues``
  (``number`` or ``text``) for a map of free keys; ``array`` with ``items``.

``required: true`` means the key must be present; customProperties
``nullable: true`` lets it be null; ``validValues`` restricts a string.
Objects with declared properties allow no other keys.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

# jsonschema ships without type information and no stub package is installed.
import jsonschema  # type: ignore[import-untyped]
import yaml

from data_contracts.contract import conforming_odcs

MONEY_PATTERN = r"^-?\d+\.\d{2}$"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


class MetricsContractError(ValueError):
    """A metrics document breaks its contract; the message lists every breach."""


def contract_path() -> Path:
    """Path of the packaged metrics contract.

    Returns:
        ``data_contracts/metrics.odcs.yaml``.
    """
    return Path(str(resources.files("data_contracts") / "metrics.odcs.yaml"))


def load_contract(path: Path | None = None) -> dict[str, Any]:
    """Read the ODCS YAML.

    Args:
        path: Contract file; the packaged one by default.

    Returns:
        The parsed document.

    Raises:
        ValueError: If the file is not an ODCS data contract with one schema object.
    """
    source = path or contract_path()
    stat = source.stat()
    # A copy: callers own what they get, the parsed original stays as read.
    return copy.deepcopy(_parsed(source, stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=8)
def _parsed(source: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    """The checked contract at ``source``; keyed by its mtime and size, so an edited
    file is read again while one metrics run parses it once."""
    del mtime_ns, size  # the cache key only
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    conforming_odcs(raw, source)
    if not isinstance(raw, dict) or raw.get("kind") != "DataContract":
        raise ValueError("not an ODCS data contract")
    schemas = raw.get("schema")
    if not isinstance(schemas, list) or len(schemas) != 1:
        raise ValueError("the metrics contract must hold exactly one schema object")
    return raw


def _custom(prop: Mapping[str, Any]) -> dict[str, Any]:
    return {c["property"]: c["value"] for c in prop.get("customProperties", [])}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema["type"]
    schema["type"] = [*kind, "null"] if isinstance(kind, list) else [kind, "null"]
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
    return schema


_MAP_VALUES: dict[str, dict[str, Any]] = {
    "number": {"type": ["number", "null"]},
    "text": {"type": ["string", "integer"]},
}


def compile_property(prop: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema of one ODCS property (recursively).

    Args:
        prop: An ODCS property (or an array's ``items``).

    Returns:
        A JSON Schema (draft 2020-12) fragment.

    Raises:
        ValueError: If the logical type is unknown or an object has no shape.
    """
    logical = prop.get("logicalType")
    options = prop.get("logicalTypeOptions", {})
    custom = _custom(prop)
    schema: dict[str, Any]
    if logical == "string":
        schema = {"type": "string"}
        if "pattern" in options:
            schema["pattern"] = options["pattern"]
        if "validValues" in custom:
            schema["enum"] = list(custom["validValues"])
    elif logical == "date":
        schema = {"type": "string", "pattern": DATE_PATTERN}
    elif logical == "money":
        schema = {"type": "string", "pattern": MONEY_PATTERN}
    elif logical == "count":
        schema = {"type": "integer", "minimum": 0}
    elif logical == "integer":
        schema = {"type": "integer"}
        if "minimum" in options:
            schema["minimum"] = options["minimum"]
    elif logical == "number":
        return {"type": ["number", "null"]}
    elif logical == "boolean":
        schema = {"type": "boolean"}
    elif logical == "array":
        schema = {"type": "array", "items": compile_property(prop["items"])}
        if "minItems" in options:
            schema["minItems"] = options["minItems"]
        if "maxItems" in options:
            schema["maxItems"] = options["maxItems"]
    elif logical == "object":
        if "mapValues" in custom:
            schema = {"type": "object", "additionalProperties": _MAP_VALUES[custom["mapValues"]]}
        elif "properties" in prop:
            children = prop["properties"]
            schema = {
                "type": "object",
                "properties": {c["name"]: compile_property(c) for c in children},
                "required": [c["name"] for c in children if c.get("required")],
                "additionalProperties": False,
            }
        else:
            raise ValueError(f"object property {prop.get('name')!r} has no properties")
    else:
        raise ValueError(f"property {prop.get('name')!r}: unknown logicalType {logical!r}")
    return _nullable(schema) if custom.get("nullable") else schema


def compile_json_schema(contract: Mapping[str, Any]) -> dict[str, Any]:
    """Compile the metrics contract to a JSON Schema.

    Args:
        contract: Output of :func:`load_contract`.

    Returns:
        The JSON Schema of a metrics document, with the contract's id and version.
    """
    (document,) = contract["schema"]
    schema = compile_property(document)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{contract['id']}/{contract['version']}",
        "title": str(contract["name"]),
        **schema,
    }


@cache
def metrics_json_schema() -> dict[str, Any]:
    """The JSON Schema of the packaged contract (compiled once).

    Returns:
        The JSON Schema.
    """
    return compile_json_schema(load_contract())


def contract_version() -> str:
    """Version of the packaged metrics contract.

    Returns:
        The ODCS ``version``.
    """
    return str(load_contract()["version"])


def contract_conventions() -> dict[str, str]:
    """The metric conventions the contract states (definition name to text).

    Returns:
        The ``conventions`` custom property of the contract.
    """
    raw = _custom(load_contract()).get("conventions", {})
    return {str(k): " ".join(str(v).split()) for k, v in raw.items()}


@cache
def _validator() -> Any:
    """The validator of the packaged contract's JSON Schema (built once)."""
    return jsonschema.Draft202012Validator(metrics_json_schema())


def metrics_errors(document: Mapping[str, Any]) -> list[str]:
    """Every breach of the contract in a document, as ``path: message``.

    Args:
        document: A metrics document (parsed JSON or the dict before dumping).

    Returns:
        Messages sorted by path; empty when the document conforms.
    """
    validator = _validator()
    messages = []
    for error in validator.iter_errors(document):
        where = "/".join(str(p) for p in error.absolute_path) or "(document)"
        messages.append(f"{where}: {error.message}")
    return sorted(messages)


def validate_metrics(document: Mapping[str, Any]) -> None:
    """Refuse a document that breaks the metrics contract.

    Args:
        document: A metrics document.

    Raises:
        MetricsContractError: Listing every breach.
    """
    errors = metrics_errors(document)
    if errors:
        raise MetricsContractError(
            "metrics document breaks data_contracts/metrics.odcs.yaml:\n  " + "\n  ".join(errors)
        )
