from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tasks.discover import inspect_file
from tasks.extract import ExtractError, extract_dump, html_to_lines, split_lines

TEXT = "By Jane Roe\nThe café’s owner said “no” — twice.\n"


def dump_of(path: Path):
    return inspect_file(path, path.parent)


def test_utf8_is_decoded_and_lines_numbered(tmp_path, profile):
    path = tmp_path / "a.txt"
    path.write_text(TEXT, encoding="utf-8")
    e = extract_dump(dump_of(path), profile)
    assert e.encoding == "utf-8" and e.lines == ["By Jane Roe", "The café’s owner said “no” — twice."]
    assert e.replacement_chars == 0


@pytest.mark.parametrize("encoding, recorded", [("utf-8-sig", "utf-8-sig"), ("utf-16", "utf-16")])
def test_a_byte_order_mark_says_the_encoding(tmp_path, profile, encoding, recorded):
    path = tmp_path / "a.txt"
    path.write_bytes(TEXT.encode(encoding))
    e = extract_dump(dump_of(path), profile)
    assert (e.encoding, e.lines[1]) == (recorded, "The café’s owner said “no” — twice.")


def test_cp1252_is_detected_and_recorded(tmp_path, profile):
    path = tmp_path / "a.txt"
    body = ("The president’s visit to Tashkent was “historic”, said the minister. " * 20 + "\n") * 5
    path.write_bytes(body.encode("cp1252"))
    e = extract_dump(dump_of(path), profile)
    # cp1250 and cp1252 print these quotes alike; the text is what must come out right
    assert e.encoding.startswith("cp125")
    assert e.lines[0].startswith("The president’s visit to Tashkent was “historic”")


def test_crlf_and_cr_line_endings_keep_line_numbers():
    assert split_lines("a\r\nb\rc\n\nd\n") == ["a", "b", "c", "", "d"]


def test_gzip_dumps_are_decompressed(tmp_path, profile):
    path = tmp_path / "a.txt.gz"
    path.write_bytes(gzip.compress(TEXT.encode()))
    d = dump_of(path)
    assert d.format == "txt.gz"
    assert extract_dump(d, profile).lines[0] == "By Jane Roe"


def test_a_truncated_gzip_is_refused_with_the_reason(tmp_path, profile):
    path = tmp_path / "a.txt.gz"
    path.write_bytes(gzip.compress(TEXT.encode() * 100)[:40])
    with pytest.raises(ExtractError, match="broken gzip archive"):
        extract_dump(dump_of(path), profile)


def test_binary_content_is_refused(tmp_path, profile):
    path = tmp_path / "photo.txt"
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(ExtractError, match="binary"):
        extract_dump(dump_of(path), profile)


def test_html_keeps_paragraph_boundaries_and_drops_scripts(profile):
    html = ("<html><head><title>T</title><style>p{}</style></head><body><div class='item'>"
            "<p>By <a href='/a'>Jane Roe</a></p><p>First <b>bold</b> paragraph.<br>Second line.</p>"
            "<script>var x = 1;</script><ul><li>One</li><li>Two</li></ul></div></body></html>")
    lines, removed = html_to_lines(html, profile)
    assert removed == []
    assert lines == ["By Jane Roe", "First bold paragraph.", "Second line.", "One", "Two"]
