"""JSON text measured before it is decoded: the decoder recurses once per level of nesting, so a text of a few
hundred kilobytes of brackets takes a thread's stack to Python's recursion limit, where whatever else runs (a finalizer
the garbage collector calls) fails too. Both the mock and the recording proxy read bodies they did not write.

Also the one rule by which the mock reads JSON fast (`quick_loads`, `decoded`): by orjson where it reads as json."""

from __future__ import annotations

import functools
import json
import math
import re
import sys
from typing import Any, Callable, Iterator

import orjson

# a JSON string once its escaped backslashes and quotes are gone; an unterminated one runs to the end
_STRING = re.compile(r'"[^"]*"?')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def nests_deeper(text: str, limit: int) -> bool:
    """Whether `text` opens more than `limit` arrays or objects one inside another (brackets in strings do not
    count). Made only when the text holds more than `limit` opening brackets, by string operations alone: with
    strings and all but brackets dropped, each pass takes out every pair with nothing inside, one level of nesting,
    and at most `limit` + 1 passes are needed (a 1 MiB text of 32-deep blocks, the costliest, takes about 80 ms;
    decoding a valid 1 MiB array takes about as long). Brackets left unclosed count as levels on top of those taken
    out (the decoder would recurse into them), so a text that is not JSON can be counted deeper than it is, never
    shallower."""
    if text.count("[") + text.count("{") <= limit:
        return False
    unescaped = text.replace("\\\\", "").replace('\\"', "")  # JSON has backslashes only in strings
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", unescaped)).replace("{", "[").replace("}", "]")
    for levels in range(limit + 1):
        if "[]" not in brackets:
            return brackets.count("[") + levels > limit
        brackets = brackets.replace("[]", "")
    return True


def value_nests_deeper(value: object, limit: int) -> bool:
    """Whether a decoded value (dicts and lists) nests more than `limit` levels deep, found without recursing."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return False


def loads(text: str, limit: int, strict: bool = False, duplicates: list[str] | None = None) -> Any:
    """`json.loads(text)`, but a text nested more than `limit` levels deep is refused undecoded: ValueError. `strict`
    refuses, as ValueError too, what json reads though JSON has no such number (NaN, Infinity) and numbers past a
    double's range (`1e400`, which json reads as infinite): written again, each would be `NaN` or `Infinity`, which
    strict JSON readers refuse. `duplicates`, if given, gets the keys the text gives twice in one object, each once, in
    the order met: json keeps the last of them, as most readers do, but not all (some keep the first, some refuse the
    text)."""
    if nests_deeper(text, limit):
        raise ValueError(f"nests deeper than {limit} levels")
    options = {**STRICT_NUMBERS} if strict else {}
    if duplicates is not None:
        options["object_pairs_hook"] = functools.partial(_noting_duplicates, duplicates)
    return json.loads(text, **options)


def _noting_duplicates(found: list[str], items: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in items:
        if key in seen and key not in found:
            found.append(key)
        seen.add(key)
    return dict(items)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        _out_of_range(text)
    return value


def _finite_int(text: str) -> int:
    """An integer a double can hold: past about 1.8e308 it is refused as `1e999` is (and int() itself refuses more
    than 4300 digits, with a message about Python's own settings)."""
    if len(text.lstrip("-")) > _DOUBLE_DIGITS:
        _out_of_range(text)
    value = int(text)
    if abs(value) > _LARGEST_DOUBLE:
        _out_of_range(text)
    return value


_LARGEST_DOUBLE = int(sys.float_info.max)
_DOUBLE_DIGITS = len(str(_LARGEST_DOUBLE))


def _out_of_range(text: str):
    shown = text if len(text) <= 20 else text[:17] + "..."
    raise ValueError(f"the number {shown} is out of range (larger than a double can hold)")


# json.loads' options that refuse every number a double cannot hold (ValueError naming it)
STRICT_NUMBERS: dict[str, Any] = {"parse_constant": _refuse_constant, "parse_float": _finite_float,
                                  "parse_int": _finite_int}


SURROGATE = re.compile("[\ud800-\udfff]")


# C0, DEL and C1: what a terminal may act on; and the bidirectional controls, which reorder what it shows (a
# message holding U+202E reads backwards from there on)
BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{BIDI}]")


def plain(text: object) -> str:
    """`text` another wrote (a server, a URL, a file), its control characters escaped (ESC as \\x1b, a line break as
    \\n): printed as they are, a server's message could clear the terminal, retitle it or print a line of its own."""
    return _CONTROL.sub(lambda found: repr(found.group())[1:-1], str(text))


def not_utf8(text: str) -> str | None:
    """Why a command-line argument or an environment variable is not text that can be sent or kept, or None: Python
    gives a byte that is not UTF-8 there (`$'\\xff'`) as a lone surrogate, which no request, answer or store can
    hold."""
    found = SURROGATE.search(text)
    if found is None:
        return None
    code = ord(found.group())
    if 0xDC80 <= code <= 0xDCFF:
        return f"is not UTF-8 text: it holds the byte 0x{code - 0xDC00:02x}"
    return f"holds a lone surrogate \\u{code:04x}, which no UTF-8 text can"


def lone_surrogate(value: Any) -> str | None:
    """Where the first lone surrogate in a decoded value is, in the words of a message: "Payload.TaskId holds a lone
    surrogate \\udfff (...)"; None when there is none. JSON's `\\udfff` escape can put one in a string, and a Python
    string can hold one, but no UTF-8 text can: neither the mock nor the API can keep or answer it."""
    def surrogate(where: str, item: Any) -> str | None:
        found = SURROGATE.search(item) if isinstance(item, str) else None
        return _surrogate_at(where, found) if found else None

    return _first(value, surrogate, lambda where, key: surrogate(f"a key of {where}", key), str)


_JSON_LEAVES = (str, int, float, bool, type(None))  # what json.dumps writes as it is (an int or str enum too)


def not_json(value: Any) -> str | None:
    """Where the first value that JSON has no place for is (one json.dumps refuses), in the words of a message:
    "Payload.TaskId is of type UUID, which JSON cannot hold"; None when there is none."""
    def leaf(where: str, item: Any) -> str | None:
        return None if isinstance(item, (*_JSON_LEAVES, dict, list, tuple)) else \
            f"{where} is of type {type(item).__name__}, which JSON cannot hold"

    def key(where: str, item: Any) -> str | None:
        return None if isinstance(item, _JSON_LEAVES) else \
            f"{where} has a key of type {type(item).__name__}, which JSON cannot hold"

    return _first(value, leaf, key)


def _first(value: Any, look: Callable[[str, Any], str | None], look_at_key: Callable[[str, Any], str | None],
           kind: type | tuple[type, ...] = object) -> str | None:
    """The first of what `look(where, item)` says of an item of `value` of `kind` (the value itself, each item of each
    dict, list or tuple in it) and `look_at_key(where, key)` of a dict's key (`where`: the dict's), or None when they
    say nothing.

    Walked depth first, in the value's order, holding an iterator per level and naming no item until it is looked
    into: a path string made for every item had taken 730 MB for a 2.5 MB array of numbers."""
    if not isinstance(value, (dict, list, tuple)):
        return look("the body", value)
    stack = [(_entries(value), "")]
    while stack:
        entry = next(stack[-1][0], None)
        if entry is None:
            stack.pop()
            continue
        path = stack[-1][1]
        key, child, indexed = entry
        said = None if indexed else look_at_key(f"{path or 'the body'}", key)
        if said is None and isinstance(child, kind) and not isinstance(child, (dict, list, tuple)):
            said = look(_item(path, key, indexed), child)
        if said is not None:
            return said
        if isinstance(child, (dict, list, tuple)):
            stack.append((_entries(child), _item(path, key, indexed)))
    return None


def _entries(node: dict | list | tuple) -> Iterator[tuple[Any, Any, bool]]:
    """(key or index, item, whether indexed) of each of a dict's, a list's or a tuple's items, in order."""
    if isinstance(node, dict):
        return ((key, child, False) for key, child in node.items())
    return ((index, child, True) for index, child in enumerate(node))


def _item(path: str, key: Any, indexed: bool) -> str:
    return f"{path}[{key}]" if indexed else f"{path}.{key}" if path else str(key)


def _surrogate_at(where: str, found: re.Match) -> str:
    return (f"{where} holds a lone surrogate \\u{ord(found.group()):04x} (a \\ud800-\\udfff escape not paired as "
            f"UTF-16)")


# orjson reads an integer it cannot hold in 64 bits as a float, where json keeps it whole; 19 digits is the shortest
# such integer (-9223372036854775809). A text is looked at with every digit made 0 and all else x (a translation
# costs a tenth of what a regular expression's search for 19 digits costs, which took longer than the decoding).
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x78 for byte in range(256))
_LONG_RUN = b"0" * 19


def quick_loads(text: str | bytes) -> Any:
    """`text` decoded by orjson (in about a third of json's time, a seventh for a request's body) where it reads as
    json reads it, which is everything orjson takes but an integer of 19 digits or more; raise ValueError for that and
    for what orjson refuses (NaN and Infinity, a lone surrogate), which json is then to read, or refuse with a
    message of its own."""
    data = text.encode() if isinstance(text, str) else bytes(text)  # a lone surrogate: UnicodeEncodeError
    if _LONG_RUN in data.translate(_DIGITS_AS_ZERO):
        raise ValueError("an integer orjson may read as a float")
    return orjson.loads(data)


def decoded(text: str | bytes) -> Any:
    """`text` decoded as json.loads decodes it, by orjson where that reads the same (see `quick_loads`)."""
    try:
        return quick_loads(text)
    except ValueError:
        return json.loads(text)
