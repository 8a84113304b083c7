"""A YAML loader for files a stranger may have written: deal terms and servicer mappings.

On top of PyYAML's safe loader (no Python objects, only plain data), it refuses:

- a file larger than ``max_yaml_bytes`` (checked before it is read);
- more than ``max_yaml_aliases`` aliases, more than ``max_yaml_nodes`` nodes once every
  alias is expanded (the "billion laughs" bomb: a few lines that expand to billions of
  values), and nesting deeper than ``max_yaml_depth`` (checked while composing, before
  any Python object is built);
- a mapping that repeats a key (PyYAML keeps the last one silently);
- more than one document in the file.

Dates are left as text (no implicit timestamps): the typed model parses them, so a
bad date is reported with its field and value instead of failing inside the loader.

Every refusal is an :class:`~flows.errors.InputRejectedError` naming the file, the line
and what to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from flows.errors import InputRejectedError
from flows.limits import Limits, read_regular

_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _Refused(yaml.YAMLError):
    """A limit or rule broken while loading; carries the line it was found on."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class _GuardedLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases and depth while composing and rejects duplicate keys."""

    limits: Limits

    def __init__(self, stream: str, limits: Limits) -> None:
        super().__init__(stream)
        self.limits = limits
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > self.limits.max_yaml_aliases:
                raise _Refused(
                    f"more than {self.limits.max_yaml_aliases} aliases: over "
                    f"{self.limits.describe('max_yaml_aliases')}; write the values out",
                    line,
                )
        self._depth += 1
        try:
            if self._depth > self.limits.max_yaml_depth:
                raise _Refused(f"nested deeper than {self.limits.describe('max_yaml_depth')}", line)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _Refused(f"duplicate key {key!r} (first on line {seen[key]}); keep one", line)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


_GuardedLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _expanded_size(root: Node, cap: int) -> int:
    """Nodes in the document with every alias expanded, counted without expanding them."""
    sizes: dict[int, int] = {}
    # Post-order walk without recursion; an alias is the same node object seen again.
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        if children_done or not children:
            size = 1 + sum(sizes.get(id(c), 0) for c in children)
            sizes[id(node)] = min(size, cap + 1)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def load_yaml_text(text: str, where: str, limits: Limits) -> Any:
    """Parse one YAML document under the limits.

    Raises:
        InputRejectedError: naming ``where``, the line and the broken rule.
    """
    try:
        loader = _GuardedLoader(text, limits)
    except yaml.YAMLError as exc:
        raise InputRejectedError(f"not valid YAML: {exc}", where=where) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, limits.max_yaml_nodes)
        if size > limits.max_yaml_nodes:
            raise _Refused(
                f"expands to more than {limits.max_yaml_nodes} values: over "
                f"{limits.describe('max_yaml_nodes')} (aliases repeat too much)",
                None,
            )
        return loader.construct_document(node)
    except _Refused as exc:
        shown = f"{where}:{exc.line}" if exc.line else where
        raise InputRejectedError(exc.message, where=shown) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        shown = f"{where}:{mark.line + 1}" if mark is not None else where
        problem = exc.problem or exc.context or "not valid YAML"
        raise InputRejectedError(f"not valid YAML: {problem}", where=shown) from None
    except yaml.YAMLError as exc:
        raise InputRejectedError(f"not valid YAML: {exc}", where=where) from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise InputRejectedError(f"not valid YAML: {exc}", where=where) from None
    finally:
        loader.dispose()


def load_yaml_file(path: Path, root: Path, limits: Limits) -> Any:
    """Read a regular YAML file inside ``root`` (at most ``max_yaml_bytes``) and parse it.

    Raises:
        InputRejectedError: the path is refused, the file is too large or not UTF-8,
            or its YAML breaks a rule; the message names the file and line.
    """
    data = read_regular(path, root, limits.max_yaml_bytes, "max_yaml_bytes", limits)
    where = path.relative_to(root).as_posix()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputRejectedError("not UTF-8 text", where=f"{where}:{line}") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InputRejectedError("contains a NUL byte", where=f"{where}:{line}")
    return load_yaml_text(text, where, limits)
