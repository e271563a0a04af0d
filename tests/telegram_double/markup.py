"""Telegram's ``parse_mode=HTML``: markup -> (plain text, entities), or Telegram's error text.

The rules mirror TDLib's HTML parser (which the Bot API server runs), as pinned down by the
cases in TDLib's ``test/message_entities.cpp``:

* only the tags of :data:`TAG_TYPES`; tag and attribute names are case-insensitive; unknown
  attributes are ignored; ``</>`` closes the innermost open tag; an empty element yields no
  entity; a ``<code class="language-x">`` spanning a whole ``<pre>`` becomes ``pre`` + language;
* only ``&lt; &gt; &amp; &quot;`` and numeric references are decoded (the ``;`` is optional).
  Any other ``&...`` - ``&nbsp;``, a bare ``&`` - is kept *literally*: Telegram does not reject
  it, so neither do we (rejecting would make the double stricter than production);
* a ``<`` that does not open a supported tag is an error - the classic unescaped-user-text bug;
* entity offsets/lengths are UTF-16 code units, error offsets are UTF-8 byte offsets.

Error strings are what follows ``"Bad Request: can't parse entities: "`` in Telegram's reply.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .text import Entity, utf16_len

TAG_TYPES: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}

_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SPACES = " \t\r\n"
_SPECIAL = re.compile(r"[<&]")
_ENTITY_REF = re.compile(r"&(?:#([xX][0-9a-fA-F]+|[0-9]+)|([A-Za-z][A-Za-z0-9]*));?")
_UNQUOTED_VALUE = re.compile(r"[A-Za-z0-9.\-]*")
_TG_USER = re.compile(r"tg://user\?id=(\d+)$")

# Turns a ``tg://user?id=N`` link into a User dict for a text_mention (None: unknown user).
UserResolver = Callable[[int], dict[str, Any] | None]


class EntityParseError(ValueError):
    """The markup is malformed; ``str(exc)`` is Telegram's wording."""


@dataclass
class _OpenTag:
    name: str
    offset: int  # UTF-16 offset in the output text where the element starts
    out_index: int  # index into the output chunk list, to recover an <a>'s inner text
    entity: Entity | None  # entity fields other than offset/length; None = decide on close
    language: str | None = None  # from <code class="language-x">


@dataclass
class _Parser:
    markup: str
    resolve_user: UserResolver | None
    pos: int = 0
    out: list[str] = field(default_factory=list)
    out16: int = 0
    stack: list[_OpenTag] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)

    def run(self) -> tuple[str, list[Entity]]:
        markup = self.markup
        while (match := _SPECIAL.search(markup, self.pos)) is not None:
            start = match.start()
            self._emit(markup[self.pos : start])
            if markup[start] == "&":
                self._entity_ref(start)
            elif markup.startswith("</", start):
                self._end_tag(start)
            else:
                self._start_tag(start)
        self._emit(markup[self.pos :])
        if self.stack:
            raise EntityParseError(
                f'Can\'t find end tag corresponding to start tag "{self.stack[-1].name}"'
            )
        # Outer entities first, then by position: the order Telegram returns them in.
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.out), self.entities

    # -- text ------------------------------------------------------------------------------
    def _emit(self, chunk: str) -> None:
        if chunk:
            self.out.append(chunk)
            self.out16 += utf16_len(chunk)

    def _entity_ref(self, start: int) -> None:
        char, end = decode_entity(self.markup, start)
        self._emit(char)
        self.pos = end

    def _byte_offset(self, index: int) -> int:
        return len(self.markup[:index].encode("utf-8"))

    def _skip_spaces(self, index: int) -> int:
        markup = self.markup
        while index < len(markup) and markup[index] in _SPACES:
            index += 1
        return index

    def _name_end(self, index: int, stops: str) -> int:
        markup = self.markup
        while index < len(markup) and markup[index] not in stops:
            index += 1
        return index

    # -- tags ------------------------------------------------------------------------------
    def _start_tag(self, start: int) -> None:
        at = self._byte_offset(start)
        end = self._name_end(start + 1, _SPACES + ">")
        if end == len(self.markup):
            raise EntityParseError(f"Unclosed start tag at byte offset {at}")
        raw_name = self.markup[start + 1 : end]
        name = raw_name.lower()
        if name not in TAG_TYPES:
            raise EntityParseError(f'Unsupported start tag "{raw_name}" at byte offset {at}')
        attributes, self.pos = self._attributes(end, name, at)
        self.stack.append(self._open(name, attributes, at))

    def _attributes(self, index: int, tag: str, at: int) -> tuple[dict[str, str], int]:
        markup = self.markup
        attributes: dict[str, str] = {}
        while True:
            index = self._skip_spaces(index)
            if index == len(markup):
                raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {at}')
            if markup[index] == ">":
                return attributes, index + 1
            name_end = self._name_end(index, _SPACES + "=>")
            name = markup[index:name_end].lower()
            if not name:
                raise EntityParseError(
                    f'Empty attribute name in the tag "{tag}" at byte offset {at}'
                )
            index = self._skip_spaces(name_end)
            if index == len(markup):
                raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {at}')
            if markup[index] != "=":
                attributes[name] = ""  # a bare attribute, e.g. <blockquote expandable>
                continue
            index = self._skip_spaces(index + 1)
            if index == len(markup):
                raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {at}')
            attributes[name], index = self._attribute_value(index, at)

    def _attribute_value(self, index: int, at: int) -> tuple[str, int]:
        markup = self.markup
        quote = markup[index]
        if quote in "\"'":
            close = markup.find(quote, index + 1)
            if close < 0:
                raise EntityParseError(f"Unclosed start tag at byte offset {at}")
            return decode_entities(markup[index + 1 : close]), close + 1
        match = _UNQUOTED_VALUE.match(markup, index)
        assert match is not None  # the pattern matches the empty string
        end = match.end()
        if end == len(markup) or markup[end] not in _SPACES + ">":
            raise EntityParseError(
                f"Unexpected end of name token at byte offset {self._byte_offset(index)}"
            )
        return match.group(), end

    def _open(self, name: str, attributes: dict[str, str], at: int) -> _OpenTag:
        entity: Entity | None = {"type": TAG_TYPES[name]}
        language: str | None = None
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {at}')
        if name == "a":
            href = attributes.get("href")
            entity = self._link(href) if href else None  # no href: the text itself may be a URL
        elif name == "tg-emoji":
            emoji_id = attributes.get("emoji-id")
            if not emoji_id:
                raise EntityParseError(
                    f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {at}'
                )
            entity = {"type": "custom_emoji", "custom_emoji_id": emoji_id}
        elif name == "blockquote" and "expandable" in attributes:
            entity = {"type": "expandable_blockquote"}
        elif name == "code":
            css = attributes.get("class", "")
            language = css.removeprefix("language-") if css.startswith("language-") else None
        return _OpenTag(name, self.out16, len(self.out), entity, language or None)

    def _end_tag(self, start: int) -> None:
        at = self._byte_offset(start)
        if not self.stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {at}")
        name_end = self._name_end(start + 2, _SPACES + ">")
        name = self.markup[start + 2 : name_end].lower()
        close = self._skip_spaces(name_end)
        if close == len(self.markup) or self.markup[close] != ">":
            raise EntityParseError(f"Unclosed end tag at byte offset {at}")
        tag = self.stack.pop()
        if name and name != tag.name:
            raise EntityParseError(
                f'Unmatched end tag at byte offset {at}, expected "</{tag.name}>", '
                f'found "</{name}>"'
            )
        self.pos = close + 1
        self._close(tag)

    def _close(self, tag: _OpenTag) -> None:
        length = self.out16 - tag.offset
        if length == 0:
            return  # Telegram drops empty elements
        entity = tag.entity
        if tag.name == "a" and entity is None:
            entity = self._link_from_text("".join(self.out[tag.out_index :]))
        if entity is None:
            return
        if self._merge_pre_code(tag, length):
            return
        entity = {**entity, "offset": tag.offset, "length": length}
        if tag.language:
            entity["_language"] = tag.language  # consumed by an enclosing <pre>
        self.entities.append(entity)

    def _merge_pre_code(self, tag: _OpenTag, length: int) -> bool:
        """<pre><code class="language-x"> (either order) spanning the same text -> one pre."""
        if tag.name not in ("pre", "code") or not self.entities:
            return False
        inner = self.entities[-1]
        same_span = inner["offset"] == tag.offset and inner["length"] == length
        pair = {tag.name, inner["type"]}
        if not same_span or pair != {"pre", "code"}:
            return False
        language = tag.language or inner.get("_language")
        if not language:
            return False
        self.entities[-1] = {
            "type": "pre",
            "offset": tag.offset,
            "length": length,
            "language": language,
        }
        return True

    # -- links -----------------------------------------------------------------------------
    def _link(self, url: str) -> Entity | None:
        mention = _TG_USER.match(url)
        if mention and self.resolve_user is not None:
            user = self.resolve_user(int(mention.group(1)))
            if user is not None:
                return {"type": "text_mention", "user": user}
        normalized = _normalize_url(url)
        return {"type": "text_link", "url": normalized} if normalized else None

    def _link_from_text(self, text: str) -> Entity | None:
        if not text or any(c in _SPACES for c in text) or "." not in text:
            return None
        return self._link(text)


def _normalize_url(url: str) -> str | None:
    """Roughly TDLib's check_url: default to http:// and give a bare host a '/' path."""
    url = url.strip()
    if not url:
        return None
    if url.startswith(("tg:", "mailto:", "ton:")):
        return url
    if "://" not in url:
        url = "http://" + url
    scheme, _, rest = url.partition("://")
    if not rest:
        return None
    if "/" not in rest and "?" not in rest and "#" not in rest:
        rest += "/"
    return f"{scheme.lower()}://{rest}"


def decode_entity(markup: str, start: int) -> tuple[str, int]:
    """Decode the character reference at ``markup[start] == '&'``: (text, index after it)."""
    match = _ENTITY_REF.match(markup, start)
    if match is None:
        return "&", start + 1
    number, name = match.groups()
    if name is not None:
        char = _NAMED_ENTITIES.get(name)
        return (char, match.end()) if char else ("&", start + 1)
    code = int(number[1:], 16) if number[0] in "xX" else int(number)
    if code == 0 or code > 0x10FFFF:
        return "&", start + 1
    if 0xD800 <= code <= 0xDFFF:
        raise EntityParseError(
            "Text contains invalid Unicode characters after decoding HTML entities, "
            "check for unmatched surrogate code units"
        )
    return chr(code), match.end()


def decode_entities(text: str) -> str:
    """Decode every character reference in an attribute value."""
    if "&" not in text:
        return text
    parts: list[str] = []
    pos = 0
    while (amp := text.find("&", pos)) >= 0:
        parts.append(text[pos:amp])
        char, pos = decode_entity(text, amp)
        parts.append(char)
    parts.append(text[pos:])
    return "".join(parts)


def parse_html(markup: str, resolve_user: UserResolver | None = None) -> tuple[str, list[Entity]]:
    """Parse ``markup`` like Telegram; raise :class:`EntityParseError` with Telegram's message."""
    if "<" not in markup and "&" not in markup:
        return markup, []  # the common case in bulk sends: nothing to parse
    text, entities = _Parser(markup, resolve_user).run()
    for entity in entities:
        entity.pop("_language", None)
    return text, entities
