"""Check a JSON document against a schema of the spec and say, for each broken rule, which field and which rule.

The checks are plain JSON Schema 2020-12 plus one keyword of the spec's own, `x-ivh-ssml`, so that SSML markup is
judged in the same pass and reported in the same form as a range or a length.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

import jsonschema
import referencing
import referencing.jsonschema
from jsonschema.exceptions import ValidationError


DOCUMENT_URI = "urn:ivh:openapi"
PLAIN = jsonschema.Draft202012Validator
RECEIVED_MAX_CHARS = 40
MAX_REPORTED = 5


@dataclass(frozen=True)
class Violation:
    """One broken rule: the field (as `Payload.SpeechParam.Speed`), the rule in words, and what was received."""

    field: str
    rule: str
    code: int
    keyword: str
    received: str | None = None

    @property
    def message(self) -> str:
        text = f"{self.field} {self.rule}"
        return f"{text}, got {self.received}" if self.received is not None else text


def summarize(violations: list[Violation]) -> str:
    """Join the most important violations into one Header.Message."""
    shown = "; ".join(v.message for v in violations[:MAX_REPORTED])
    hidden = len(violations) - MAX_REPORTED
    return f"{shown}; and {hidden} more" if hidden > 0 else shown


class Contract(Protocol):
    """What a validator reads of the spec (an `ivh_mock.spec.Spec`)."""

    document: dict[str, Any]
    ssml_checker: Any  # ssml.SsmlChecker
    errors: Any  # the error catalogue: code_for_keyword()


class RequestValidator:
    """A compiled validator for one schema of the spec (compiled once; thread-safe to use)."""

    def __init__(self, spec: Contract, schema: dict[str, Any], root: str = "body"):
        self.spec = spec
        ssml = spec.ssml_checker
        resource = referencing.jsonschema.DRAFT202012.create_resource(spec.document)
        registry = referencing.Registry().with_resource(DOCUMENT_URI, resource)
        validator_class = jsonschema.validators.extend(
            BASE, {"x-ivh-ssml": _ssml_keyword(ssml), "if": _if_with_condition}
        )
        self._validator = validator_class(_inline(schema, spec.document), registry=registry)
        self._fast = fast_validator(self._validator)
        self.root = root

    def surely_valid(self, instance: Any) -> bool:
        """True when the compiled validator accepts `instance`: cheap, and never an explanation. False says only that
        `violations` must be asked (it refused, or the schema has no compiled validator)."""
        return self._fast is not None and self._fast(instance)

    def violations(self, instance: Any) -> list[Violation]:
        """Return every rule `instance` breaks, most important (shallowest) first."""
        if self.surely_valid(instance):
            return []
        errors = sorted(self._validator.iter_errors(instance), key=_importance)
        return [violation for error in errors
                for violation in _described(error, self.root, self.spec.errors.code_for_keyword)]


def _inline(node: Any, document: dict[str, Any], trail: tuple[str, ...] = ()) -> Any:
    """Return `node` with the spec's own `$ref`s replaced by what they point to (a recursive one stays a `$ref`).

    The verdicts are the same; the validator no longer resolves a reference on every call, which was a third of
    the time of a request."""
    if isinstance(node, list):
        return [_inline(item, document, trail) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    pointer = ref.removeprefix(DOCUMENT_URI) if isinstance(ref, str) else None
    if pointer is None or not pointer.startswith("#/") or pointer in trail:
        return {key: _inline(value, document, trail) for key, value in node.items()}

    target = _inline(resolve(document, pointer), document, (*trail, pointer))
    siblings = {key: _inline(value, document, trail) for key, value in node.items() if key != "$ref"}
    return {"allOf": [target], **siblings} if siblings else target


# What a client relies on in an answer: that each field it reads is there and of its JSON type. Not the rules on the
# values (an enum, a range, a length), which the live API may widen: a new Status or timbre type must stay readable.
SHAPE_KEYWORDS = frozenset({"type", "required", "properties", "items", "prefixItems", "allOf", "anyOf", "oneOf"})


def shape_of(schema: Any) -> Any:
    """`schema` (with no `$ref` left: `_inline`) with only the rules on each field's presence and JSON type; a field
    that is not required may also be null, which a reader takes as absent."""
    if isinstance(schema, list):
        return [shape_of(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    kept = {key: shape_of(value) for key, value in schema.items() if key in SHAPE_KEYWORDS and key != "properties"}
    required = schema.get("required", [])
    if "properties" in schema:
        kept["properties"] = {name: shape_of(value) if name in required else _or_null(shape_of(value))
                              for name, value in schema["properties"].items()}
    return kept


def _or_null(schema: dict[str, Any]) -> dict[str, Any]:
    kinds = schema.get("type")
    if kinds is None:
        return {"anyOf": [schema, {"type": "null"}]} if schema else schema
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return {**schema, "type": kinds if "null" in kinds else [*kinds, "null"]}


def reference(pointer: str) -> dict[str, str]:
    """Return a schema that stands for the spec's node at `pointer` (`#/components/...`)."""
    return {"$ref": f"{DOCUMENT_URI}{pointer}"}


# -- keywords ---------------------------------------------------------------------------------------------------
# ECMA-262's \s: its WhiteSpace and LineTerminator characters. Python's \s differs: it also takes U+001C..U+001F and
# U+0085, and not U+FEFF. Its \d and \w take every script's digits and letters; ECMA's only ASCII ones.
_ECMA_ESCAPES = {
    "s": "\\t\\n\\x0b\\x0c\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff",
    "d": "0-9",
    "w": "A-Za-z0-9_",
}


@functools.lru_cache(maxsize=256)
def ecma_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a JSON Schema (ECMA-262) pattern so that Python's `re` reads it as ECMA does: `\\s`, `\\d`, `\\w` and
    their negations as ECMA's character sets, and an unescaped `$` as the very end of the string (Python's `$` also
    matches before a final newline, which would let "text\\n" through "^[^\\r\\n]*$")."""
    out, index, in_class = [], 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            chars = _ECMA_ESCAPES.get(escaped.lower())
            if chars is None:
                out.append(char + escaped)
            elif escaped.islower():
                out.append(chars if in_class else f"[{chars}]")
            elif not in_class:
                out.append(f"[^{chars}]")
            else:
                raise ValueError(f"pattern {pattern!r}: \\{escaped} inside a character class is not supported")
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        elif char == "$" and not in_class:
            char = "\\Z"
        out.append(char)
        index += 1
    return re.compile("".join(out))


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not ecma_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _is_integer(checker, instance) -> bool:
    # JSON Schema counts 1.0 as an integer; the API's integer fields take only JSON integers (DECISIONS.md D42).
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_number(checker, instance) -> bool:
    # JSON has no NaN or Infinity; a YAML file or a Python caller can still hand one over, and NaN passes every
    # `minimum` and `maximum` (each comparison with it is false).
    return PLAIN.TYPE_CHECKER.is_type(instance, "number") and not (isinstance(instance, float)
                                                                    and not math.isfinite(instance))


# JSON Schema 2020-12 with ECMA-262 pattern semantics, strict integers and finite numbers; every validator of the
# project is built on it.
BASE = jsonschema.validators.extend(
    PLAIN, {"pattern": _pattern},
    type_checker=PLAIN.TYPE_CHECKER.redefine_many({"integer": _is_integer, "number": _is_number}))


# -- the spec's own keywords ----------------------------------------------------------------------------------
def _ssml_keyword(checker):
    def check(validator, enabled, instance, schema):
        if enabled and isinstance(instance, str):
            problems = checker.problems(instance)
            for problem in problems:
                yield ValidationError(problem)
            # the field's pattern holds for what the markup says, too: `&#10;` had put a line break into the spoken
            # text and the subtitles of a field that "must not contain line breaks" (and a cue of its own in the SRT)
            pattern = schema.get("pattern")
            if pattern and not problems and ecma_pattern(pattern).search(instance) and not all(
                    ecma_pattern(pattern).search(piece) for piece in checker.contents(instance)):
                rule = schema.get("x-ivh-rule") or f"must match the pattern {pattern}"
                yield ValidationError(f"{rule}, character references (&#10; and the like) included")

    return check


_plain_if = PLAIN.VALIDATORS["if"]


def _if_with_condition(validator, if_schema, instance, schema):
    """Run `if`/`then` as usual, but remember the condition so a message can say when a rule applies."""
    for error in _plain_if(validator, if_schema, instance, schema):
        error.condition = _condition_text(if_schema)
        yield error


def _condition_text(if_schema: dict[str, Any]) -> str:
    parts = [
        f"{name} is {sub['const']}"
        for name, sub in if_schema.get("properties", {}).items()
        if isinstance(sub, dict) and "const" in sub
    ]
    return " and ".join(parts)


# -- turning a jsonschema error into field + rule ---------------------------------------------------------------
def _importance(error: ValidationError):
    """Shallowest first; of one value's, a wrong type first: its code (100003, D05) is the answer's, where `enum` or
    `maximum`, sorted before it by name, had answered `"DriverType": 1` and `"Volume": 1e2` with 100002."""
    return (len(error.absolute_path), [str(part) for part in error.absolute_path], error.validator != "type",
            error.validator)


def _field(root: str, path) -> str:
    """The field's name as `Payload.SpeechParam.Speed`; a name the caller chose (an undocumented one) is cut as a
    received value is, so that no huge input is echoed."""
    text = root if not path or root != "body" else ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{cut(part)}" if text else cut(part))
    return text


def cut(text: str, limit: int = RECEIVED_MAX_CHARS) -> str:
    """`text`, or its start and "..." when it is longer than `limit` characters: how a message quotes what a caller
    chose, so that a huge input is never echoed (D04)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def past(value: float, bound: float, decimals: int = 1) -> str:
    """`value`, past `bound`, with `decimals` decimals or as many more as it takes not to read as the bound itself: a
    refusal had said a photo's width/height of 2.0005 was "2", and a speech of 60.0002 s past its limit of 60 s
    "60.0"."""
    for places in range(decimals, 16):
        text = f"{value:.{places}f}"
        if float(text) != bound:
            return text
    return repr(value)


def shown(value: Any) -> str:
    """A received value as a message quotes it: a text as Python writes it ('abc'), anything else as JSON (or as Python
    writes it, when JSON cannot hold it: a client's caller may pass a UUID or bytes), cut."""
    if isinstance(value, str):
        return cut(repr(value))
    try:
        return cut(json.dumps(value, ensure_ascii=False))
    except (TypeError, ValueError):
        return cut(repr(value))


def json_type(value: Any) -> str:
    """JSON Schema's name for the type of a decoded value (`integer`, `array`, ...)."""
    for name, kind in (("null", type(None)), ("boolean", bool), ("integer", int), ("number", float),
                       ("string", str), ("array", list), ("object", dict)):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _described(error: ValidationError, root: str, code_for) -> list[Violation]:
    """The violations one jsonschema error stands for: one per undocumented field of an object (jsonschema reports
    them together), else one."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return [_describe(error, root, code_for)]
    known = set(error.schema.get("properties", {}))
    path = list(error.absolute_path)
    return [Violation(_field(root, [*path, name]), "is not a documented field", code_for(error.validator),
                      error.validator) for name in sorted(name for name in error.instance if name not in known)]


def _describe(error: ValidationError, root: str, code_for) -> Violation:
    keyword, expected, instance = error.validator, error.validator_value, error.instance
    path = list(error.absolute_path)
    received: str | None = None
    condition = getattr(error, "condition", "")

    if keyword == "required":  # one error per missing name, each naming it in its message ("'X' is a required ...")
        missing = next((name for name in expected if name not in instance and error.message.startswith(repr(name))),
                       next(name for name in expected if name not in instance))
        path.append(missing)
        rule = f"is required when {condition}" if condition else "is required"
    elif keyword == "type" and "number" in expected and isinstance(instance, float):  # NaN or an infinity
        rule = "must be a finite number"  # ("must be of type number, got number NaN" said nothing)
        received = shown(instance)
    elif keyword == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        rule = f"must be of type {' or '.join(kinds)}"
        received = "null" if instance is None else f"{json_type(instance)} {shown(instance)}"
    elif keyword == "enum":
        rule = "must be one of " + ", ".join(json.dumps(v, ensure_ascii=False) for v in expected)
        received = shown(instance)
    elif keyword == "const":
        rule = f"must be {json.dumps(expected, ensure_ascii=False)}"
        received = shown(instance)
    elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {"minimum": "at least", "maximum": "at most",
                 "exclusiveMinimum": "greater than", "exclusiveMaximum": "less than"}[keyword]
        rule = f"must be {words} {expected}"
        received = shown(instance)
    elif keyword in ("minLength", "maxLength"):
        words = "at least" if keyword == "minLength" else "at most"
        rule = f"must be {words} {expected} characters long (Unicode code points)"
        received = f"{len(instance)} characters"
    elif keyword == "pattern":
        rule = error.schema.get("x-ivh-rule") or f"must match the pattern {expected}"
        received = shown(instance)
    elif keyword in ("minItems", "maxItems"):
        words = "at least" if keyword == "minItems" else "at most"
        rule = f"must have {words} {expected} items"
        received = f"{len(instance)} items"
    elif keyword == "maxProperties" and expected == 0:
        rule = "must be empty"
    elif keyword == "x-ivh-ssml":
        rule = error.message
    else:
        rule = error.message
    return Violation(_field(root, path), rule, code_for(keyword), keyword, received)


def resolve(document: dict[str, Any], pointer: str) -> Any:
    """Return the node a local JSON pointer (`#/a/b`) names in `document`."""
    node: Any = document
    for part in pointer.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


# -- the fast path ----------------------------------------------------------------------------------------------
# Most requests break no rule, and `jsonschema` takes 0.3 ms to say so for a submission. jsonschema-rs (the same
# JSON Schema 2020-12, compiled) says "valid" in a few microseconds; only a refusal goes through `jsonschema`, which
# explains it. The fast path must never accept what the slow one refuses, so where the two could differ it hands the
# decision back: the keywords whose semantics are the project's own (`pattern` with ECMA-262 regexes, strict
# integers, `x-ivh-ssml`) run the slow validator's own code, a schema with any keyword not listed below gets no fast
# path, and an instance that is not plain JSON (a tuple, an int subclass, an integer beyond 2**53) is never judged by it.
FAST_KEYWORDS = {"type", "enum", "const", "required", "properties", "additionalProperties", "items", "minItems",
                 "maxItems", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                 "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "maxProperties", "minProperties"}
ANNOTATIONS = {"title", "description", "default", "example", "examples", "deprecated", "readOnly", "writeOnly",
               "format", "$comment"}  # format is an annotation to both validators (no format checker)
SLOW_KEYWORDS = {"pattern": "x-ivh-slow-pattern", "x-ivh-ssml": "x-ivh-slow-ssml"}
_SLOW_NAMES = {name: keyword for keyword, name in SLOW_KEYWORDS.items()}
STRICT_INTEGER = "x-ivh-slow-integer"
_SUBSCHEMA = {"not", "if", "then", "else", "items", "additionalProperties"}
_SUBSCHEMA_LISTS = {"allOf", "anyOf", "oneOf"}
_SUBSCHEMA_MAPS = {"properties"}
_JSON_LEAVES = (str, float, bool, type(None))
_EXACT_INT = 2**53  # beyond this jsonschema-rs compares numbers as doubles


class _Unsupported(Exception):
    """The schema uses a keyword the fast path does not vouch for."""


def fast_validator(slow: Any) -> Any:
    """Return `is_valid(instance)` that answers True only when the slow validator `slow` would find no violation
    (False means "ask the slow validator"), or None when the schema cannot have a fast path."""
    try:
        import jsonschema_rs
    except ImportError:  # an optional speed-up: without it every request takes the slow path
        return None
    try:
        schema = _fast_schema(slow.schema)
    except _Unsupported:
        return None

    def delegate(keyword: str):
        check = slow.VALIDATORS[keyword]

        class Keyword:  # runs the slow validator's own keyword on the one value, in the schema as the slow one reads it
            def __init__(self, parent: Any, value: Any, path: Any):
                self.value, self.parent = value, {_SLOW_NAMES.get(key, key): item for key, item in parent.items()}

            def validate(self, instance: Any) -> None:
                if next(iter(check(slow, self.value, instance, self.parent) or ()), None) is not None:
                    raise ValueError(keyword)

        return Keyword

    class StrictInteger:
        def __init__(self, parent: Any, value: Any, path: Any):
            pass

        def validate(self, instance: Any) -> None:
            if isinstance(instance, float):  # 1.0: an integer to jsonschema-rs, not to the API (D42)
                raise ValueError("integer")

    keywords = {name: delegate(keyword) for keyword, name in SLOW_KEYWORDS.items() if keyword in slow.VALIDATORS}
    keywords[STRICT_INTEGER] = StrictInteger
    compiled = jsonschema_rs.Draft202012Validator(schema, validate_formats=False, keywords=keywords)

    def is_valid(instance: Any) -> bool:
        if not _plain_json(instance):
            return False
        try:
            return compiled.is_valid(instance)
        except Exception:  # a value jsonschema-rs cannot take (a lone surrogate, ...): the slow path decides
            return False

    return is_valid


def _fast_schema(node: Any) -> Any:
    """Return the schema jsonschema-rs runs: the same, with the project's own keywords renamed to ones that call back
    into the slow validator's code."""
    if isinstance(node, bool):
        return node
    if not isinstance(node, dict):
        raise _Unsupported(repr(node))
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SUBSCHEMA:
            out[key] = _fast_schema(value)
        elif key in _SUBSCHEMA_LISTS:
            out[key] = [_fast_schema(item) for item in value]
        elif key in _SUBSCHEMA_MAPS:
            out[key] = {name: _fast_schema(item) for name, item in value.items()}
        elif key in SLOW_KEYWORDS:
            out[SLOW_KEYWORDS[key]] = value
        elif key in FAST_KEYWORDS or key in ANNOTATIONS or key.startswith("x-"):
            out[key] = value
        else:
            raise _Unsupported(key)
    types = node.get("type")
    types = types if isinstance(types, list) else [types]
    if "integer" in types and "number" not in types:
        out[STRICT_INTEGER] = True
    return out


def _plain_json(value: Any) -> bool:
    """Whether `value` is what `json.loads` makes (exact types; integers doubles hold exactly)."""
    kind = type(value)
    if kind is dict:
        return all(type(key) is str and _plain_json(item) for key, item in value.items())
    if kind is list:
        return all(_plain_json(item) for item in value)
    if kind is int:
        return -_EXACT_INT <= value <= _EXACT_INT
    return kind in _JSON_LEAVES
