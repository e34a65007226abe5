"""The stack file's release block, edited in place with ruamel.yaml's round-trip mode: comments,
quoting, key order and flow-style lists survive, and untouched lines stay byte-for-byte identical."""

from __future__ import annotations

import copy
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

RELEASE_KEY = "plexichat:release"


def round_trip_yaml() -> YAML:
    round_trip = YAML()
    round_trip.preserve_quotes = True
    round_trip.indent(mapping=2, sequence=4, offset=2)  # the stack files' style
    round_trip.width = 4096  # never re-wrap a long line
    return round_trip


def plain(value: Any) -> Any:
    """Round-trip nodes (quoted strings, ints with their formatting) as plain Python values."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def set_keys(block: CommentedMap, wanted: dict[str, Any]) -> None:
    """Make `block` hold exactly `wanted`, in that order, touching only keys that change."""
    trailing = _take_trailing_comment(block)
    for key in [k for k in block if k not in wanted]:
        del block[key]
    for index, (key, value) in enumerate(wanted.items()):
        if key not in block:
            block.insert(index, key, value)
        elif plain(block[key]) != plain(value):
            block[key] = value
    if trailing is not None:
        _put_trailing_comment(block, trailing)


# ruamel keeps the comment lines that follow a mapping (e.g. above the next stack key) on the
# deepest last value inside it; when that value is deleted they would vanish with it.
def _deepest_last(node: CommentedMap) -> tuple[CommentedMap, str]:
    key = list(node)[-1]
    value = node[key]
    if isinstance(value, CommentedMap) and value:
        return _deepest_last(value)
    return node, key


def _take_trailing_comment(block: CommentedMap):
    holder, key = _deepest_last(block)
    slot = holder.ca.items.get(key)
    token = slot[2] if slot and len(slot) > 2 else None
    if token is None or "\n" not in token.value:
        return None
    inline, lines = token.value.split("\n", 1)
    if not lines.strip():
        return None
    slot[2] = copy.copy(token) if inline else None
    if inline:
        slot[2].value = inline + "\n"
    token.value = "\n" + lines
    return token


def _put_trailing_comment(block: CommentedMap, token) -> None:
    holder, key = _deepest_last(block)
    slot = holder.ca.items.setdefault(key, [None, None, None, None])
    if slot[2] is None:
        slot[2] = token
    else:
        slot[2].value = slot[2].value.rstrip("\n") + token.value


def flow_list(values: list) -> CommentedSeq:
    seq = CommentedSeq(values)
    seq.fa.set_flow_style()  # `steps: [10, 25, 50, 100]`, as people write it
    return seq
