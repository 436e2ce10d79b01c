"""Parse InputSsml as the vendor's SSML dialect, with the tag rules taken from the spec's `x-ivh-ssml`.

The text is parsed by defusedxml: no DTDs, no entity expansion, no external references, so hostile markup costs
nothing. Plain text without tags is valid SSML.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Any, Iterator

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException

from .jsontext import SURROGATE
from .validation import BASE

WRAPPER = "ivh-ssml-text"
XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace"  # the `xml:` prefix's, bound in every document
DECLARATION = re.compile(r"\s*<\?xml[\s?]")
HANZI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LATIN_PHRASE = re.compile(r"^[A-Za-z][A-Za-z' .\-]*$")
HANZI_PHRASE = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+$")


class SsmlError(ValueError):
    """InputSsml is not valid SSML; the message names the tag or position and the rule."""


@dataclass(frozen=True)
class Segment:
    """A piece of the spoken result: text to speak, or a pause (`pause` holds the break element's attributes)."""

    text: str = ""
    pause: dict[str, str] | None = None


class SsmlChecker:
    """Check and read InputSsml under one set of tag rules."""

    def __init__(self, rules: dict[str, Any]):
        self.tags: dict[str, dict[str, Any]] = rules["tags"]
        self._attribute_checks = {
            (tag, name): BASE(attribute["schema"])
            for tag, spec in self.tags.items()
            for name, attribute in spec.get("attributes", {}).items()
        }
        # a request's SSML is read three times (validation, planning, the report): parse each text once
        self._checked = functools.lru_cache(maxsize=256)(self._check)
        self._segments_of = functools.lru_cache(maxsize=256)(lambda text: tuple(self._segments(self._parse(text))))

    # -- public ------------------------------------------------------------------------------------------------
    def problems(self, text: str) -> list[str]:
        """Return every rule the markup breaks, each naming the tag; empty when the SSML is valid."""
        return list(self._checked(text)[0])

    def contents(self, text: str) -> tuple[str, ...]:
        """Every text run and attribute value of valid markup, its character references resolved (`&#10;` is a line
        break here): the rules on the field's characters hold for these too."""
        return self._checked(text)[1]

    def segments(self, text: str) -> list[Segment]:
        """Return the spoken text and pauses of valid SSML, in order (sub aliases replace their content)."""
        return list(self._segments_of(text))

    def _check(self, text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The rules the markup breaks, and (when it parses) its texts and attribute values, from one parse."""
        try:
            root = self._parse(text)
        except SsmlError as error:
            return (str(error),), ()
        problems = list(dict.fromkeys(self._check_children(root, parent=None)))
        if not problems and not any(_speakable(char) for s in self._segments(root) for char in s.text):
            problems.append("has no text to speak (a letter or a digit)")
        return tuple(problems), tuple(_contents(root))

    # -- parsing -----------------------------------------------------------------------------------------------
    def _parse(self, text: str) -> ElementTree.Element:
        source = f"<{WRAPPER}>{text}</{WRAPPER}>"
        if DECLARATION.match(text):  # the parser's words ("not at start of entity at character 1") named our wrapper's
            raise SsmlError("starts with an XML declaration (<?xml ...?>), which InputSsml does not take: begin with "
                            "the text or with <speak>")
        surrogate = SURROGATE.search(text)
        if surrogate:  # no XML parser reads one (a body's JSON escape `\udfff` can make one): say so, never raise
            raise SsmlError(f"holds a lone surrogate \\u{ord(surrogate.group()):04x}, which no UTF-8 text can")
        try:
            return SafeElementTree.fromstring(source, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        except DefusedXmlException as error:
            raise SsmlError(f"must not declare DTDs or entities ({type(error).__name__})") from None
        except ElementTree.ParseError as error:
            line, column = error.position
            if line == 1:
                column -= len(WRAPPER) + 2
            reason = str(error).split(":")[0]
            raise SsmlError(
                f"is not well-formed SSML: {reason} at character {column + 1}"
                " (escape & < > as &amp; &lt; &gt;, close every tag)"
            ) from None

    # -- rules ------------------------------------------------------------------------------------------------
    def _check_children(self, element: ElementTree.Element, parent: str | None) -> Iterator[str]:
        for child in element:
            yield from self._check_element(child, parent, top_level=element.tag == WRAPPER, container=element)

    def _check_element(self, element, parent, top_level, container) -> Iterator[str]:
        tag = element.tag
        rules = self.tags.get(tag) if isinstance(tag, str) else None
        if rules is None:
            namespace, local = _split(tag)
            shown = f'<{local} xmlns="{namespace}">: the API\'s tags are in no namespace' if namespace else f"<{tag}>"
            yield f"uses unsupported tag {shown}; supported tags are " + ", ".join(f"<{t}>" for t in self.tags)
            return
        if rules.get("root"):
            outside = (container.text or "").strip() or any((c.tail or "").strip() for c in container)
            if not top_level or len(container) != 1 or outside:
                yield f"<{tag}> may only wrap the whole text, once"
        if parent is not None and self.tags[parent].get("content") == "text":
            yield f"<{parent}> may contain only text, found <{tag}>"
        yield from self._check_attributes(tag, rules, element.attrib)
        content = rules.get("content", "mixed")
        inner = "".join(element.itertext())
        if content == "empty" and (inner or len(element)):
            yield f"<{tag}> must be empty, as <{tag}/>"
        if content == "text":
            if not inner.strip():
                yield f"<{tag}> must contain text"
            elif rules.get("script") == "uniform" and not (HANZI_PHRASE.match(inner.strip())
                                                          or LATIN_PHRASE.match(inner.strip())):
                yield f"<{tag}> must hold one word or phrase, all Chinese or all English, got {inner!r}"
        ph = element.attrib.get("ph")
        if ph is not None and rules["attributes"].get("ph", {}).get("syllablesPerHanzi"):
            hanzi = len(HANZI.findall(inner))
            syllables = len(ph.split())
            if hanzi and syllables != hanzi:
                yield (f"<{tag}> ph has {syllables} pinyin syllable(s) for {hanzi} Chinese character(s);"
                       " give one syllable per character")
        for child in element:
            yield from self._check_element(child, tag, top_level=False, container=element)

    def _check_attributes(self, tag: str, rules: dict[str, Any], given: dict[str, str]) -> Iterator[str]:
        declared = rules.get("attributes", {})
        for name in given:
            if name not in declared:
                allowed = ", ".join(declared) or "none"
                yield f"<{tag}> has unsupported attribute {_attribute(name)!r} (allowed: {allowed})"
        for name, attribute in declared.items():
            if name not in given:
                if attribute.get("required"):
                    yield f"<{tag}> needs attribute {name!r}"
                continue
            check = self._attribute_checks[(tag, name)]
            if not check.is_valid(given[name]):
                schema = attribute["schema"]
                rule = attribute.get("rule") or (
                    "must be one of " + ", ".join(schema["enum"]) if "enum" in schema
                    else next(check.iter_errors(given[name])).message
                )
                yield f"<{tag}> attribute {name}={given[name]!r} {rule}"

    # -- reading ----------------------------------------------------------------------------------------------
    def _segments(self, element: ElementTree.Element) -> Iterator[Segment]:
        if element.tag == "break":
            yield Segment(pause=dict(element.attrib))
        elif element.tag == "sub" and "alias" in element.attrib:
            yield Segment(text=element.attrib["alias"])
        else:
            if element.text:
                yield Segment(text=element.text)
            for child in element:
                yield from self._segments(child)
                if child.tail:
                    yield Segment(text=child.tail)


def _contents(root: ElementTree.Element) -> Iterator[str]:
    for element in root.iter():
        yield from (text for text in (element.text, element.tail, *element.attrib.values()) if text)


def _speakable(char: str) -> bool:
    """A letter or a digit of any script: what a voice says. Punctuation, symbols and emoji alone ("。。。。", "😀")
    had been accepted and spoken in 1 ms, where spaces alone were refused."""
    return unicodedata.category(char)[0] in "LN"


def _split(name: Any) -> tuple[str, Any]:
    """The namespace and the local name of ElementTree's `{URI}local`; ("", name) for a name in no namespace."""
    if isinstance(name, str) and name.startswith("{"):
        namespace, _, local = name[1:].partition("}")
        return namespace, local
    return "", name


def _attribute(name: str) -> str:
    """An attribute's name as written: `xml:lang`, not ElementTree's `{http://www.w3.org/XML/1998/namespace}lang`;
    one of another namespace as `local (namespace URI)`."""
    namespace, local = _split(name)
    if not namespace:
        return name
    return f"xml:{local}" if namespace == XML_NAMESPACE else f"{local} (namespace {namespace})"
