"""Extract: read a dump and decode it to numbered text lines.

Text dumps are decoded as UTF-8 (a BOM says UTF-8 or UTF-16); bytes that are not UTF-8
are decoded by charset-normalizer's best guess, and the encoding used is recorded.
Gzip dumps are decompressed with a bound on the expanded size.

HTML dumps are parsed into one line per block (p, div, li, h1-h6, runs between <br>s);
inline markup (a, em, strong, span) stays inside its line. The page is read as
BeautifulSoup (lxml) reads it, the same tree from the same parser events, with the
profile's selectors matched as soupsieve matches them, but in one walk of the tree.
What the site wraps around its articles (menus, toolbars, captions, cloaked e-mails) is
named by CSS selectors in the site profile's [html] table: those elements are cut out
and logged as Removals, each at the line of the extracted text where it stood. A removed
block leaves its lines blank, so line numbers still say where things were; a fragment
cut out of a paragraph is logged with the paragraph's line. Scripts, styles and other
invisible elements are dropped unlogged: they are not text.
"""
from __future__ import annotations

import codecs
import gzip
import re
import string
import zlib
from collections.abc import Hashable, Iterator, Mapping
from functools import cache
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from bs4 import BeautifulSoup
from bs4.builder import HTMLTreeBuilder
from charset_normalizer import from_bytes
from lxml import etree
from soupsieve import compile as compile_selector
from soupsieve import css_types as ct

from tasks.models import Dump, ExtractedDump, Removal
from tasks.profile import BoilerplateRule, HtmlProfile, HtmlRule, Profile

MAX_EXPANDED_BYTES = 256 << 20  # a gzip dump expanding past this is refused (a bomb), not read
_GZIP_CHUNK = 1 << 20
_BINARY_CONTROL_SHARE = 0.01  # text has almost no NULs or C0 controls besides \t \n \r
_TEXT_BYTES = bytes(b for b in range(256) if b >= 32 or b in (9, 10, 12, 13))
_MAX_CHAOS = 0.2  # charset-normalizer's mess ratio above which a guess reads as noise
_BLOCK_TAGS = frozenset((
    "address", "article", "aside", "blockquote", "caption", "center", "dd", "details", "dialog",
    "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2",
    "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "legend", "li", "main", "menu", "nav",
    "ol", "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead",
    "tr", "ul",
))
# Not text a reader sees (a profile rule may still select them to log what they hold).
_INVISIBLE_TAGS = frozenset((
    "canvas", "head", "iframe", "noscript", "object", "script", "select", "style", "svg",
    "template",
))
# HTML white space (an NBSP is text) to fold into one space: a run of it but a lone space
_HTML_SPACE = re.compile(r"[ \t\n\r\f]{2,}|[\t\n\r\f]")
_SPACES = re.compile(" {2,}")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?)\]])")


class ExtractError(ValueError):
    """A dump that cannot be turned into text; the message is the reason."""


def read_bytes(dump: Dump) -> bytes:
    try:
        if not dump.format.endswith(".gz"):
            return dump.path.read_bytes()
        chunks, size = [], 0
        with gzip.open(dump.path, "rb") as fh:
            while chunk := fh.read(_GZIP_CHUNK):
                size += len(chunk)
                if size > MAX_EXPANDED_BYTES:
                    raise ExtractError(f"gzip archive expands past {MAX_EXPANDED_BYTES >> 20} MiB "
                                       "(a decompression bomb?); refused")
                chunks.append(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ExtractError(f"broken gzip archive: {exc}") from exc
    except OSError as exc:
        raise ExtractError(f"cannot be read: {exc.strerror or exc}") from exc
    return b"".join(chunks)


def looks_binary(data: bytes) -> bool:
    sample = data[: 1 << 16]
    controls = len(sample.translate(None, _TEXT_BYTES))  # what is left: the control bytes
    return bool(sample) and controls > _BINARY_CONTROL_SHARE * len(sample)


def decode(data: bytes) -> tuple[str, str]:
    """The text and the name of the encoding it was decoded from."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace"), "utf-16"
    if looks_binary(data):
        raise ExtractError("binary content (control bytes), not text")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    as_utf8 = data.decode("utf-8", errors="replace")
    broken = as_utf8.count("\ufffd")
    if sum(1 for ch in as_utf8 if ord(ch) > 127) - broken > broken:
        # UTF-8 with a few broken bytes: each shows as U+FFFD, and the extract gate
        # refuses a dump where too many are
        return as_utf8, "utf-8"
    guess = from_bytes(data).best()  # no valid UTF-8 beyond ASCII: a legacy code page
    if guess is None or guess.chaos > _MAX_CHAOS:
        raise ExtractError("not decodable as text: neither UTF-8 nor any single-byte encoding reads it cleanly")
    return str(guess), guess.encoding


def split_lines(text: str) -> list[str]:
    """Lines as a reader numbers them: CRLF and CR end lines too; a final newline adds none."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def fold_space(text: str) -> str:
    return " ".join(text.split())


# The page is parsed with the lxml parser events that BeautifulSoup(html, "lxml") builds its tree
# from, into the tree BeautifulSoup would build, and the profile's selectors are matched on it the
# way soupsieve matches them on BeautifulSoup's tree; what BeautifulSoup itself does to the events is
# mirrored: these attributes hold lists of space-separated values, and text inside these elements is
# a string class of its own that Tag.get_text() of the elements around them leaves out.
_LIST_ATTRIBUTES = HTMLTreeBuilder.DEFAULT_CDATA_LIST_ATTRIBUTES
_STRING_CONTAINERS = frozenset(HTMLTreeBuilder.DEFAULT_STRING_CONTAINERS)
_XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace"
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


class _Element:
    """An element of the page. Its children are elements and strings; comments, processing
    instructions and the doctype are left out, but the text on either side of one stays two strings."""

    __slots__ = ("name", "attrs", "children", "parent")

    def __init__(self, name: str, attrs: dict[str, str], parent: _Element | None) -> None:
        self.name = name
        self.attrs = attrs
        self.children: list[_Element | str] = []
        self.parent = parent  # None for the document


def _attributes(attrib: Mapping[str, str]) -> dict[str, str]:
    """Attributes named '{...}' as soupsieve finds them on BeautifulSoup's tag: bs4 reads lxml's
    '{namespace}name' as a namespaced name, and of two names alike but for case soupsieve finds
    the first."""
    attrs: dict[str, str] = {}
    found: dict[str, str] = {}  # lowercased name -> name as bs4 keys it
    for key, value in attrib.items():
        if key[:1] == "{" and "}" in key:
            namespace, local = key[1:].split("}", 1)
            prefix = "xml" if namespace == _XML_NAMESPACE else None
            key = str(prefix) if not local else f"{prefix}:{local}" if prefix else local
        lowered = _ascii_lower(key)
        if found.setdefault(lowered, key) == key:
            attrs[lowered] = value
    return attrs


class _TreeBuilder:
    """lxml parser target that builds the tree BeautifulSoup's lxml builder builds: a string ends at
    every tag, comment, processing instruction and doctype; an end tag closes the innermost open
    element of its name and everything opened inside it, or nothing if none is open."""

    def __init__(self) -> None:
        self.document = _Element("", {}, None)
        self._open = [self.document]
        self._text: list[str] = []
        self.data = self._text.append  # lxml calls it for every piece of text: no Python frame

    def _end_text(self) -> None:
        if self._text:
            self._open[-1].children.append("".join(self._text))
            self._text.clear()

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        parent = self._open[-1]
        if self._text:
            parent.children.append("".join(self._text))
            self._text.clear()
        attrs = attrib if attrib else {}  # a dict of its own for each element, or an empty mapping
        if attrs and "{" in "".join(attrs):
            attrs = _attributes(attrs)
        element = _Element(tag, attrs, parent)
        parent.children.append(element)
        self._open.append(element)

    def end(self, tag: str) -> None:
        open_elements = self._open
        if self._text:
            open_elements[-1].children.append("".join(self._text))
            self._text.clear()
        if open_elements[-1].name == tag:
            open_elements.pop()
        elif any(element.name == tag for element in open_elements[1:]):
            while open_elements.pop().name != tag:
                pass

    def comment(self, text: str) -> None:
        self._end_text()

    def pi(self, target: str, data: str) -> None:
        self._end_text()

    def doctype(self, name: str, pubid: str, system: str) -> None:
        self._end_text()

    def close(self) -> _Element:
        self._end_text()
        return self.document


def _parse(html: str) -> _Element:
    if html[:1] == "\ufeff":  # BeautifulSoup drops a leading BOM before lxml reads the text
        html = html[1:]
    parser = etree.HTMLParser(target=_TreeBuilder(), recover=True, encoding=None)
    parser.feed(html)
    return parser.close()


def _ascii_lower(text: str) -> str:
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def _get_text(element: _Element) -> str:
    """Tag.get_text() of BeautifulSoup's tree: the element's strings, less those inside a string
    container (<script>, <style>, <template>, <rt>, <rp>) other than the element itself."""
    wanted = element.name if element.name in _STRING_CONTAINERS else None
    outer: _Element | None = element
    while outer is not None and outer.name not in _STRING_CONTAINERS:
        outer = outer.parent
    parts: list[str] = []
    stack: list[tuple[_Element | str, str | None]] = [(element, outer.name if outer is not None else None)]
    while stack:
        node, container = stack.pop()
        if isinstance(node, str):
            if container == wanted:
                parts.append(node)
        else:
            inner = node.name if node.name in _STRING_CONTAINERS else container
            stack.extend((child, inner) for child in reversed(node.children))
    return "".join(parts)


def _selector_parent(element: _Element) -> _Element | None:
    """The parent soupsieve's ancestor combinators go to: none above the root or a <template>."""
    parent = element.parent
    if parent is None or parent.parent is None or parent.name == "template":
        return None
    return parent


def _attribute(element: _Element, name: str) -> str | None:
    """An attribute's value as soupsieve reads it from BeautifulSoup (whose list attributes have their
    values joined by single spaces). lxml lowercases attribute names (and _attributes() the others),
    so soupsieve's lookup by lowercased name is a dict lookup."""
    value = element.attrs.get(name)
    if value is not None and (name in _LIST_ATTRIBUTES["*"] or name in _LIST_ATTRIBUTES.get(element.name.lower(), ())):
        return " ".join(value.split())
    return value


def _native(selectors: ct.SelectorList) -> bool:
    """Whether _matches_list() matches these selectors: type, id, class, attribute, :is(), :not()
    and the descendant, child and sibling combinators, not pseudo-classes."""
    for selector in selectors.selectors:
        if selector is ct.Null:
            continue
        if selector.nth or selector.contains or selector.lang or selector.flags:
            return False
        if not all(_native(inner) for inner in selector.selectors):
            return False
        if selector.relation.selectors:
            first = selector.relation.selectors[0]
            if first is not ct.Null and (first.rel_type or "").startswith(":"):  # :has()
                return False
            if not _native(selector.relation):
                return False
    return True


def _matches_list(element: _Element, selectors: ct.SelectorList, html_ns: bool) -> bool:
    """soupsieve's match of a selector list (CSSMatch._match_selectors) on an HTML document parsed
    by lxml (no namespaces; a list soupsieve builds for a pseudo-class knows the prefix 'html')."""
    html_ns = html_ns or selectors.is_html
    match = False
    for selector in selectors.selectors:
        match = selectors.is_not
        if selector is not ct.Null and _matches(element, selector, html_ns):
            return not selectors.is_not
    return match


def _matches(element: _Element, selector: ct.Selector, html_ns: bool) -> bool:
    tag = selector.tag
    if tag is not None:
        if tag.name not in (None, "*") and _ascii_lower(tag.name) != element.name:
            return False
        if not (tag.prefix is None or tag.prefix == "*" or (html_ns and tag.prefix == "html")):
            return False
    if selector.ids:
        own_id = element.attrs.get("id", "")
        if any(own_id != i for i in selector.ids):
            return False
    if selector.classes:
        classes = element.attrs.get("class", "").split()
        if any(c not in classes for c in selector.classes):
            return False
    for attribute in selector.attributes:
        value = _attribute(element, _ascii_lower(attribute.attribute))
        if value is None:
            if attribute.inverse:
                continue
            return False
        if attribute.pattern is None:
            continue
        if attribute.ignore_case:
            value = _ascii_lower(value)
        if attribute.pattern.search(value) is None:
            return False
    if not all(_matches_list(element, inner, html_ns) for inner in selector.selectors):
        return False
    return not selector.relation.selectors or _related(element, selector.relation, html_ns)


def _related(element: _Element, relation: ct.SelectorList, html_ns: bool) -> bool:
    """The combinator before a compound selector: an ancestor, the parent, an earlier sibling or the
    sibling just before matches the selectors on its left."""
    first = relation.selectors[0]
    if first is ct.Null:
        return False
    if first.rel_type in (" ", ">"):
        parent = _selector_parent(element)
        while parent is not None:
            if _matches_list(parent, relation, html_ns):
                return True
            parent = _selector_parent(parent) if first.rel_type == " " else None
        return False
    assert element.parent is not None
    siblings = [child for child in element.parent.children if isinstance(child, _Element)]
    before = siblings[: siblings.index(element)]
    if first.rel_type == "~":
        return any(_matches_list(sibling, relation, html_ns) for sibling in before)
    return bool(before) and _matches_list(before[-1], relation, html_ns)


# How a selector that may select an element is tested on it: soupsieve decides on BeautifulSoup's
# tree of the page, or the index already knows it selects it (it asks for a tag name, id or classes
# only), or it is to be matched.
_BY_SOUP = "soup"
_SELECTED = "selected"
_Candidate = tuple[int, ct.Selector | str]  # (number of the selector list, test)
_MAX_CACHED = 1 << 16  # kinds of element, or texts, whose answers are remembered


def _simple(selector: ct.Selector) -> bool:
    return not (selector.attributes or selector.selectors or selector.relation.selectors)


class _SelectorIndex:
    """Numbered selector lists, each selector filed under what an element needs to be selected by it
    (an id, a class, an attribute, a tag name), so that an element is only tested against the few
    selectors that may select it."""

    def __init__(self, selector_lists: list[str]) -> None:
        self.by_soup: dict[int, str] = {}
        self.by_key: dict[tuple[str, str], list[_Candidate]] = {}
        self._always: list[_Candidate] = []
        for number, text in enumerate(selector_lists):
            compiled = compile_selector(text).selectors
            if compiled.is_not or compiled.is_html or not _native(compiled):
                self.by_soup[number] = text
                self._always.append((number, _BY_SOUP))
                continue
            for selector in compiled.selectors:
                if selector is not ct.Null:
                    self._file(number, selector)

    def _file(self, number: int, selector: ct.Selector) -> None:
        tag = selector.tag
        attributes = [a.attribute for a in selector.attributes if not a.inverse]
        if selector.ids:
            key = ("#", selector.ids[0])
        elif selector.classes:
            key = (".", selector.classes[0])
        elif attributes:
            key = ("[", _ascii_lower(attributes[0]))
        elif tag is not None and tag.name not in (None, "*"):
            key = ("<", _ascii_lower(tag.name))
        else:
            self._always.append((number, selector))
            return
        self.by_key.setdefault(key, []).append((number, selector))

    def candidates(self, element: _Element) -> list[_Candidate]:
        """The selectors that may select the element, by number."""
        by_key = self.by_key
        found = by_key.get(("<", element.name), []) + self._always
        for name, value in element.attrs.items():
            found += by_key.get(("[", name), ())
            if name == "id":
                found += by_key.get(("#", value), ())
            elif name == "class":
                for c in value.split():
                    found += by_key.get((".", c), ())
        found.sort(key=_number)
        return [(number, _SELECTED if isinstance(test, ct.Selector) and _simple(test) else test)
                for number, test in found
                if not (isinstance(test, ct.Selector) and _simple(test)) or _matches(element, test, False)]


def _number(candidate: _Candidate) -> int:
    return candidate[0]


class _Selectors:
    """The profile's [html] rules and blocks, compiled once per profile."""

    def __init__(self, html: HtmlProfile) -> None:
        self.rules = html.remove
        self.remove = _SelectorIndex([rule.selector for rule in html.remove])
        self.blocks = _SelectorIndex(list(html.blocks))
        keys = {kind for index in (self.remove, self.blocks) for kind, _ in index.by_key}
        self._keyed_by_id = "#" in keys
        self._keyed_by_attribute = "[" in keys
        self._cache: dict[Hashable, tuple[list[_Candidate], list[_Candidate]]] = {}

    def candidates(self, element: _Element) -> tuple[list[_Candidate], list[_Candidate]]:
        """The rules and the blocks entries that may select the element; remembered for elements
        alike in what decides them (the pages of a site share a few kinds of element)."""
        attrs = element.attrs
        signature = element.name if not attrs else (
            element.name, attrs.get("class"), attrs.get("id") if self._keyed_by_id else None,
            tuple(attrs) if self._keyed_by_attribute else None)
        found = self._cache.get(signature)
        if found is None:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            found = self._cache[signature] = (self.remove.candidates(element), self.blocks.candidates(element))
        return found


@cache
def _selectors(html: HtmlProfile) -> _Selectors:
    return _Selectors(html)


def _soup_selected(html: str, document: _Element, selectors: dict[int, str]) -> dict[int, set[int]]:
    """For selectors with pseudo-classes: the ids of the elements each selects, by soupsieve on
    BeautifulSoup's tree of the page, built from the same parser events as ours, tag for tag."""
    soup = BeautifulSoup(html, "lxml")
    ours: list[_Element] = []
    stack = [document]
    while stack:
        element = stack.pop()
        ours.append(element)
        stack.extend(child for child in reversed(element.children) if isinstance(child, _Element))
    element_of = {id(tag): id(element) for tag, element in zip(soup.find_all(True), ours[1:], strict=True)}
    return {number: {element_of[id(tag)] for tag in soup.select(text)} for number, text in selectors.items()}


class _Selection:
    """What the profile's selectors select on one page."""

    def __init__(self, selectors: _Selectors, html: str, document: _Element) -> None:
        self._selectors = selectors
        self._html = html
        self._document = document
        self._by_soup: dict[_SelectorIndex, dict[int, set[int]]] = {}

    def _selects(self, index: _SelectorIndex, element: _Element, number: int, test: ct.Selector | str) -> bool:
        if test is _SELECTED:
            return True
        if test is not _BY_SOUP:
            return _matches(element, test, False)
        if index not in self._by_soup:
            self._by_soup[index] = _soup_selected(self._html, self._document, index.by_soup)
        return id(element) in self._by_soup[index][number]

    def claim(self, element: _Element, candidates: list[_Candidate], below: int) -> int | None:
        """The first rule, of those numbered below `below`, that removes the element: its selector
        selects it, and its text matches the rule's."""
        failed = -1
        for number, test in candidates:
            if number >= below:
                break
            if number == failed or not self._selects(self._selectors.remove, element, number, test):
                continue
            text = self._selectors.rules[number].text
            if text is None or text.fullmatch(fold_space(_get_text(element))):
                return number
            failed = number
        return None

    def is_block(self, element: _Element, candidates: list[_Candidate]) -> bool:
        return any(self._selects(self._selectors.blocks, element, number, test) for number, test in candidates)


class _Claim:
    """An element the profile removes, or one piece of it (an image's alt text or file
    name): the fragments of one claim on one line are logged as one removal."""

    __slots__ = ("rule",)

    def __init__(self, rule: HtmlRule) -> None:
        self.rule = rule


def _fold_html_space(text: str) -> str:
    """HTML white space folded: each run of it one space, none at either end."""
    text = text.strip(" \t\n\r\f")
    if "\n" in text or "\t" in text or "\r" in text or "\f" in text or "  " in text:
        return _HTML_SPACE.sub(" ", text)
    return text


def _fold_spaces(text: str) -> str:
    return _SPACES.sub(" ", text).strip(" ")


class _Page:
    """Collects the page's text line by line, and what was cut from each line."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.lines: list[str] = []
        self.removed: list[tuple[int, str, str]] = []  # (line_no, category, text)
        # the line's fragments: each text, and the claim it belongs to
        self._texts: list[str] = []
        self._claims: list[_Claim | None] = []
        self._pre_line = False  # whether the line holds preformatted text
        self._line_categories = _line_categories(profile.boilerplate)

    def add(self, text: str, claim: _Claim | None, pre: bool = False) -> None:
        if not pre:
            # white space is folded when the line ends, all at once, unless the line holds
            # preformatted text, whose white space stays
            self._texts.append(_HTML_SPACE.sub(" ", text) if self._pre_line else text)
            self._claims.append(claim)
            return
        for i, part in enumerate(text.replace("\r\n", "\n").split("\n")):
            if i:
                self.end_line()
            if not self._pre_line:
                self._pre_line = True
                self._texts = [t if c else _HTML_SPACE.sub(" ", t) for t, c in zip(self._texts, self._claims)]
            self._texts.append(part)
            self._claims.append(claim)

    def add_image(self, img: _Element, claim: _Claim) -> None:
        """An image's alt text and file name, each logged on its own."""
        alt = fold_space(img.attrs.get("alt") or "")
        src = (img.attrs.get("src") or "").strip()
        name = "" if src.startswith("data:") else unquote(PurePosixPath(urlsplit(src).path).name)
        for piece in dict.fromkeys(p for p in (alt, name) if p):
            self._texts.append(piece)
            self._claims.append(_Claim(claim.rule))

    def end_line(self) -> None:
        texts, claims = self._texts, self._claims
        if not texts:
            return
        self._texts, self._claims = [], []
        # the kept text with white space folded (a run over several fragments too), unless the
        # line holds preformatted text, which keeps its own and loses only runs of spaces
        fold = _fold_spaces if self._pre_line else _fold_html_space
        self._pre_line = False
        if not any(claims):
            kept = fold("".join(texts))
            if kept.strip():
                self.lines.append(kept)
            return
        fragments = list(zip(texts, claims))
        kept = fold("".join([t for t, claim in fragments if claim is None]))
        cuts: list[tuple[_Claim, str]] = []
        for text, claim in fragments:
            if claim is None:
                continue
            if cuts and cuts[-1][0] is claim:
                cuts[-1] = (claim, cuts[-1][1] + text)
            else:
                cuts.append((claim, text))
        cuts = [(claim, fold_space(text)) for claim, text in cuts if text.strip()]
        if cuts and kept.strip():
            label = next((c for c, _ in cuts if c.rule.leftover and c.rule.leftover.fullmatch(kept.strip())), None)
            if label is not None:  # 'Email:' left alone by its cloaked address goes with it
                cuts, kept = [(label, fold_space("".join(texts)))], ""
            else:  # 'reached at <cloak> .' reads 'reached at.', as clean leaves it
                kept = _SPACE_BEFORE_PUNCT.sub(r"\1", kept)
        if not cuts and not kept.strip():
            return
        self.lines.append(kept if kept.strip() else "")
        no = len(self.lines)
        self.removed.extend((no, self._category(claim, text), text) for claim, text in cuts)

    def _category(self, claim: _Claim, text: str) -> str:
        """The rule's category, unless the profile's line rules know the text better (the
        newsletter text inside a <footer> is newsletter_footer, not navigation)."""
        known = self._line_categories
        if text in known:
            category = known[text]
        else:
            rule = next((r for r in self.profile.boilerplate if r.matches_line(text)), None)
            category = rule.category if rule is not None else None
            if len(known) < _MAX_CACHED:
                known[text] = category
        return category if category is not None else claim.rule.category


@cache
def _line_categories(rules: tuple[BoilerplateRule, ...]) -> dict[str, str | None]:
    """Remembered for the texts cut from pages (menus, toolbars, footers repeat): the category of
    the first of these line rules that matches the text, or None."""
    return {}


_ANY_RULE = 1 << 30  # an element outside every claimed one may be claimed by any rule


def html_to_lines(html: str, profile: Profile, source_file: str = "") -> tuple[list[str], list[Removal]]:
    """The page's text, one line per block, and what the profile's [html] rules removed."""
    document = _parse(html)
    selectors = _selectors(profile.html)
    selection = _Selection(selectors, html, document)
    page = _Page(profile)
    # Depth-first, without recursion, a frame per open element: (its children left, the claim they
    # belong to, inside <pre>, the rules that may still claim them (those before the rule that
    # claimed an element they are in: rules apply in order, and an element inside one already
    # removed goes with it), whether selectors reach them, whether the element is a block)
    stack: list[tuple[Iterator[_Element | str], _Claim | None, bool, int, bool, bool]] = [
        (iter(document.children), None, False, _ANY_RULE, True, False)]
    while stack:
        children, claim, pre, below, selectable, block = stack[-1]
        for node in children:
            if isinstance(node, str):
                page.add(node, claim, pre)
                continue
            own, inner_below, blocks = None, below, None
            if selectable:
                removes, blocks = selectors.candidates(node)
                number = selection.claim(node, removes, below) if removes else None
                if number is not None:
                    own, inner_below = _Claim(selectors.rules[number]), number
            name = node.name
            if own is None and name in _INVISIBLE_TAGS:
                continue
            inner_claim = own or claim
            if name == "br":
                page.end_line()
            elif name == "img":
                if inner_claim is not None:
                    page.add_image(node, inner_claim)
            else:
                inner_block = name in _BLOCK_TAGS or bool(blocks and selection.is_block(node, blocks))
                if inner_block:
                    page.end_line()
                stack.append((iter(node.children), inner_claim, pre or name in ("pre", "textarea"), inner_below,
                              selectable and name != "template",  # soupsieve does not select inside one
                              inner_block))
                break
        else:
            stack.pop()
            if block:
                page.end_line()
    page.end_line()
    return page.lines, [Removal(source_file, no, category, text) for no, category, text in page.removed]


def extract_dump(dump: Dump, profile: Profile) -> ExtractedDump:
    data = read_bytes(dump)
    text, encoding = decode(data)
    text = text.replace("\x00", "")  # a stray NUL in text is noise, and no database wants it
    if not dump.format.startswith("html"):
        return ExtractedDump(dump, split_lines(text), encoding, text.count("\ufffd"))
    lines, removed = html_to_lines(text, profile, dump.source_file)
    replacement_chars = sum(line.count("\ufffd") for line in lines)
    return ExtractedDump(dump, lines, encoding, replacement_chars, removed)
