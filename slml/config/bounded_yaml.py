"""YAML loading with bounds, so a hostile or mistaken slml.yaml costs milliseconds.

``load_bounded(text, source=)`` is ``yaml.safe_load`` with three limits, each a
``ConfigError`` that says which limit and where:

- the text is at most ``MAX_BYTES`` (a config file is a few KB; this bounds reading);
- nesting is at most ``MAX_DEPTH`` levels, checked on the parser's event stream, which
  is iterative (PyYAML's composer and constructor recurse, so a 5,000-deep ``[[[...]]]``
  would otherwise be a ``RecursionError``);
- the document, with every alias expanded, has at most ``MAX_NODES`` values. Aliases
  stay allowed (``env: *common`` is a fair use), but a "billion laughs" alias bomb is
  refused before anything walks, validates or prints the expanded tree.
"""

from __future__ import annotations

from typing import Any

import yaml

from slml.errors import ConfigError

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_NODES = 10_000

#: libyaml's parser when built in: PyYAML's own scanner slows down on deep flow nesting
#: (its simple-key lookahead is quadratic in depth: ~1 s for 1,000 levels), libyaml's not.
_EVENT_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
_HINT = "slml.yaml is a short, flat file: see `slml init` for its shape"


def load_bounded(text: str, *, source: str) -> Any:
    """Parse ``text`` as YAML within the module's limits; ``None`` for an empty file.

    Raises ``ConfigError`` for a limit and lets ``yaml.YAMLError`` through for
    malformed YAML (the caller reports its line and column)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise ConfigError(
            f"{source}: {size:,} bytes, over the {MAX_BYTES:,} bytes a config may be",
            hint=_HINT,
        )
    _check_depth(text, source=source)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, source=source)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_depth(text: str, *, source: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=_EVENT_LOADER):
        if isinstance(event, _OPEN):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise ConfigError(
                    f"{source}: nested more than {MAX_DEPTH} levels deep (line {line})",
                    hint=_HINT,
                )
        elif isinstance(event, _CLOSE):
            depth -= 1


def _check_expansion(root: yaml.Node, *, source: str) -> None:
    """Count the values ``root`` stands for with aliases expanded, without expanding
    them: an alias is the same node object, so each node's size is computed once."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:  # post-order without recursion: a node after all its children
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if not children_done:
            if id(node) in open_nodes:
                raise ConfigError(f"{source}: {_at(node)} contains itself (a recursive alias)")
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node))
            continue
        total = 1 + sum(sizes[id(child)] for child in _children(node))
        if total > MAX_NODES:
            raise ConfigError(
                f"{source}: {_at(node)} expands to more than {MAX_NODES:,} values with its "
                "aliases expanded (aliases repeated inside each other?); refusing to load it",
                hint="use each anchor (&name) for a small block, or write the values out",
            )
        sizes[id(node)] = total


def _at(node: yaml.Node) -> str:
    return f"the value at line {node.start_mark.line + 1}" if node.start_mark else "a value"


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
