"""Extract: read a dump and decode it to numbered text lines.

Text dumps are decoded as UTF-8 (a BOM says UTF-8 or UTF-16); bytes that are not UTF-8
are decoded by charset-normalizer's best guess, and the encoding used is recorded.
Gzip dumps are decompressed with a bound on the expanded size.

HTML dumps are parsed with BeautifulSoup (lxml) into one line per block (p, div, li,
h1-h6, runs between <br>s); inline markup (a, em, strong, span) stays inside its line.
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
import zlib
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PreformattedString
from charset_normalizer import from_bytes

from tasks.models import Dump, ExtractedDump, Removal
from tasks.profile import HtmlRule, Profile

MAX_EXPANDED_BYTES = 256 << 20  # a gzip dump expanding past this is refused (a bomb), not read
_GZIP_CHUNK = 1 << 20
_BINARY_CONTROL_SHARE = 0.01  # text has almost no NULs or C0 controls besides \t \n \r
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
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")  # HTML white space; an NBSP is text
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
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
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


class _Claim:
    """An element the profile removes, or one piece of it (an image's alt text or file
    name): the fragments of one claim on one line are logged as one removal."""

    __slots__ = ("rule",)

    def __init__(self, rule: HtmlRule) -> None:
        self.rule = rule


class _Page:
    """Collects the page's text line by line, and what was cut from each line."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.lines: list[str] = []
        self.removed: list[tuple[int, str, str]] = []  # (line_no, category, text)
        self._fragments: list[tuple[str, _Claim | None]] = []

    def add(self, text: str, claim: _Claim | None, pre: bool = False) -> None:
        if not pre:
            self._fragments.append((_HTML_SPACE.sub(" ", text), claim))
            return
        for i, part in enumerate(text.replace("\r\n", "\n").split("\n")):
            if i:
                self.end_line()
            self._fragments.append((part, claim))

    def add_image(self, img: Tag, claim: _Claim) -> None:
        """An image's alt text and file name, each logged on its own."""
        alt = fold_space(img.get("alt") or "")
        src = (img.get("src") or "").strip()
        name = "" if src.startswith("data:") else unquote(PurePosixPath(urlsplit(src).path).name)
        for piece in dict.fromkeys(p for p in (alt, name) if p):
            self._fragments.append((piece, _Claim(claim.rule)))

    def end_line(self) -> None:
        fragments, self._fragments = self._fragments, []
        kept = _SPACES.sub(" ", "".join(t for t, claim in fragments if claim is None)).strip(" ")
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
                cuts, kept = [(label, fold_space("".join(t for t, _ in fragments)))], ""
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
        rule = next((r for r in self.profile.boilerplate if r.matches_line(text)), None)
        return rule.category if rule is not None else claim.rule.category


def _claims(soup: BeautifulSoup, rules: tuple[HtmlRule, ...]) -> dict[int, _Claim]:
    """The elements each rule removes, by id: rules apply in order, and an element inside
    one already removed is not selected again (it goes with it)."""
    claims: dict[int, _Claim] = {}
    for rule in rules:
        for el in soup.select(rule.selector):
            if id(el) in claims or any(id(parent) in claims for parent in el.parents):
                continue
            if rule.text is not None and not rule.text.fullmatch(fold_space(el.get_text())):
                continue
            claims[id(el)] = _Claim(rule)
    return claims


_END_BLOCK = object()


def html_to_lines(html: str, profile: Profile, source_file: str = "") -> tuple[list[str], list[Removal]]:
    """The page's text, one line per block, and what the profile's [html] rules removed."""
    soup = BeautifulSoup(html, "lxml")
    claims = _claims(soup, profile.html.remove)
    blocks = {id(el) for selector in profile.html.blocks for el in soup.select(selector)}
    page = _Page(profile)
    # Depth-first, without recursion: (node, claim it belongs to, inside <pre>)
    stack: list[tuple[object, _Claim | None, bool]] = [(soup, None, False)]
    while stack:
        node, claim, pre = stack.pop()
        if node is _END_BLOCK:
            page.end_line()
        elif isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):  # comments, CDATA, doctype
                page.add(str(node), claim, pre)
        elif isinstance(node, Tag):
            own = claims.get(id(node))
            if own is None and node.name in _INVISIBLE_TAGS:
                continue
            claim = own or claim
            if node.name == "br":
                page.end_line()
            elif node.name == "img":
                if claim is not None:
                    page.add_image(node, claim)
            else:
                pre = pre or node.name in ("pre", "textarea")
                if node.name in _BLOCK_TAGS or id(node) in blocks:
                    page.end_line()
                    stack.append((_END_BLOCK, None, False))
                stack.extend((child, claim, pre) for child in reversed(node.contents))
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
