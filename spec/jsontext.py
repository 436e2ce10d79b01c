"""JSON text measured before it is decoded: the decoder recurses once per level of nesting, so a text of a few
hundred kilobytes of brackets takes a thread's stack to Python's recursion limit, where whatever else runs (a finalizer
the garbage collector calls) fails too. Both the mock and the recording proxy read bodies they did not write."""

from __future__ import annotations

import re

# a bracket, or a JSON string (escapes and all) to skip; an unterminated string runs to the end, so a match never
# fails and backtracks: the scan stays linear in the body's length
_BRACKET_OR_STRING = re.compile(r'[\[\]{}]|"(?:[^"\\]+|\\.)*"?', re.DOTALL)


def nests_deeper(text: str, limit: int) -> bool:
    """Whether `text` opens more than `limit` arrays or objects one inside another (brackets in strings do not
    count). One pass, made only when the text holds more than `limit` opening brackets."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for token in _BRACKET_OR_STRING.finditer(text):
        first = token.group()[0]
        if first in "[{":
            depth += 1
            if depth > limit:
                return True
        elif first != '"':
            depth -= 1
    return False
