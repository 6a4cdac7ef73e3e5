"""Extract: read a dump and decode it to numbered text lines.

Text dumps are decoded as UTF-8 (a BOM says UTF-8 or UTF-16); bytes that are not UTF-8
are decoded by charset-normalizer's best guess, and the encoding used is recorded.
HTML dumps are parsed with BeautifulSoup (lxml) into one line per text block. Gzip
dumps are decompressed with a bound on the expanded size.
"""
from __future__ import annotations

import codecs
import gzip
import zlib

from bs4 import BeautifulSoup
from charset_normalizer import from_bytes

from tasks.models import Dump, ExtractedDump

MAX_EXPANDED_BYTES = 1 << 30  # a gzip dump expanding past 1 GiB is refused, not read
_BINARY_CONTROL_SHARE = 0.01  # text has almost no NULs or C0 controls besides \t \n \r
_BLOCK_TAGS = (
    "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
    "main", "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
)
_INVISIBLE_TAGS = ("script", "style", "noscript", "template", "head")


class ExtractError(ValueError):
    """A dump that cannot be turned into text; the message is the reason."""


def read_bytes(dump: Dump) -> bytes:
    try:
        if not dump.format.endswith(".gz"):
            return dump.path.read_bytes()
        with gzip.open(dump.path, "rb") as fh:
            data = fh.read(MAX_EXPANDED_BYTES + 1)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ExtractError(f"broken gzip archive: {exc}") from exc
    except OSError as exc:
        raise ExtractError(f"cannot be read: {exc.strerror or exc}") from exc
    if len(data) > MAX_EXPANDED_BYTES:
        raise ExtractError(f"gzip archive expands past {MAX_EXPANDED_BYTES >> 20} MiB; refused")
    return data


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
    guess = from_bytes(data).best()
    if guess is None:
        return data.decode("utf-8", errors="replace"), "utf-8"
    return str(guess), guess.encoding


def split_lines(text: str) -> list[str]:
    """Lines as a reader numbers them: CRLF and CR end lines too; a final newline adds none."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def html_to_text(html: str) -> str:
    """The page's visible text, one line per block element."""
    soup = BeautifulSoup(html, "lxml")
    for tag in soup(_INVISIBLE_TAGS):
        tag.decompose()
    for tag in soup.find_all("br"):
        tag.replace_with("\n")
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    return soup.get_text()


def extract_dump(dump: Dump) -> ExtractedDump:
    data = read_bytes(dump)
    text, encoding = decode(data)
    if dump.format.startswith("html"):
        text = html_to_text(text)
    return ExtractedDump(dump, split_lines(text), encoding, text.count("\ufffd"))
