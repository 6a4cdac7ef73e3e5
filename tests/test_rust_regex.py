"""Python patterns as Rust ones (tasks/rust_regex.py): a Rust pattern matches every string
its Python pattern matches, so a column can tell which lines Python must look at."""
from __future__ import annotations

import re

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.profile import PROFILES_DIR, load_profile
from tasks.rust_regex import Untranslatable, class_body, may_match, to_rust

EVERY_CHARACTER = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]


@pytest.mark.parametrize("python_class", [r"\w", r"\W", r"\d", r"\D", r"\s", r"\S", r"[^\W_]", r"[^\S ]"])
def test_a_class_holds_exactly_the_characters_python_matches_with_it(python_class):
    expected = re.findall(python_class, "".join(EVERY_CHARACTER))
    column = pl.Series(EVERY_CHARACTER)
    assert column.filter(column.str.contains(f"^[{class_body(python_class)}]$")).to_list() == expected


@pytest.mark.parametrize("pattern", [f"(?i:{letter})" for letter in "abcdefghijklmnopqrstuvwxyzßµσı"]
                         + [r"(?i:[a-z])", r"(?i:[^k])", r"(?i:\w)"])
def test_under_ignorecase_a_letter_or_class_holds_exactly_what_python_matches(pattern):
    """Python's case folding, not Rust's: (?i:i) matches 'İ' (U+0130), (?i:k) the Kelvin sign."""
    every = "".join(EVERY_CHARACTER)
    expected = sorted(re.findall(pattern, every))
    column = pl.Series(EVERY_CHARACTER)
    assert sorted(column.filter(may_match(column, [(pattern, "fullmatch")])).to_list()) == expected


def _profile_patterns() -> list[str]:
    patterns = []
    for path in sorted(PROFILES_DIR.glob("*.toml")):
        site = load_profile(str(path))
        patterns += [p.pattern for rule in site.boilerplate for p in (*rule.patterns, *rule.fragments)]
        patterns += [p.pattern for p in (site.category_line, site.title_line, site.section_heading, site.bio_label,
                                         site.byline_prefix, *site.date_lines)]
    return patterns


# constructs Rust lacks, relaxed: look-arounds, \b, possessive and atomic, {,n}, named groups
TRICKY_PATTERNS = [r"(?<=\d)(?:st|nd|rd|th)\b", r"[0-9]|(?<![^\s,&])[a-z][^\s,&]*", r"\bby\B", r"a++b",
                   r"(?>ab|a)c", r"x{,3}y", r"(?P<v>a)|(?P<w>b)", r"[\w.]+-\d{3,}", r"[[\]&~-]+",
                   r"(?i:straße)", r"\u00e9\x41\N{BULLET}", r"(?#note)a{2}?", r"(?s:a.b)", r"[^\W\d_]+\Z"]
PIECES = st.sampled_from(["a", "b", "c", "y", "x", "1", "23", "st", "th", "by", " ", ",", "&", "-", ".", "_", "[", "]",
                          "~", "é", "A", "•", "\u00a0", "\t", "Read ", "Published in ", "Photo: ", "İ", "STRASSE",
                          "straße", "2025-11-18", "jpg", "·", "Stock Photo", "By ", "AUTHOR’S BIO: ", "BACKGROUND: "])


@pytest.mark.parametrize("pattern", _profile_patterns() + TRICKY_PATTERNS)
@pytest.mark.filterwarnings("ignore:Possible nested set:FutureWarning")  # '[[' is Python's literal '['
@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(PIECES, max_size=8).map("".join) | st.text(max_size=12), min_size=1, max_size=40))
def test_the_rust_pattern_matches_whatever_the_python_one_matches(pattern, texts):
    # lines: no newline (where Python's '$' would also match), and no surrogate (no UTF-8 holds one)
    texts = [t for t in texts if "\n" not in t and not any(0xD800 <= ord(ch) < 0xE000 for ch in t)]
    compiled = re.compile(pattern)
    column = pl.Series(texts, dtype=pl.String)
    for how in ("search", "match", "fullmatch"):
        for text, found in zip(texts, may_match(column, [(pattern, how)]).to_list()):
            assert found or not getattr(compiled, how)(text), (how, text)


def test_patterns_without_a_rust_form_are_run_by_python():
    column = pl.Series(["abab", "abba", "x"])
    assert may_match(column, [(r"(ab)\1", "fullmatch")]).to_list() == [True, False, False]
    assert may_match(column, [(r"(b)\1", "search"), (r"x", "match")]).to_list() == [False, True, True]


def test_a_pattern_rust_has_no_form_for_is_refused_by_name():
    for pattern, construct in [(r"(a)\1", "back reference"), (r"(?P<x>a)(?P=x)", "back reference"),
                               (r"(?x) a b", "flags"), (r"(?a:\w)", "flags"), (r"[a--b]", "'--'")]:
        with pytest.raises(Untranslatable, match=construct):
            to_rust(pattern)


def test_lookarounds_and_word_boundaries_are_dropped_and_the_rest_kept():
    assert to_rust(r"^Read (?P<value>[A-Z].{2,250}?)(?<![.;,])$") == "^Read (?:[A-Z].{2,250}?)$"
    assert to_rust(r"publication of\b.*") == "publication of.*"
    assert to_rust(r"a*+b{2}+") == "a*b{2}"


@pytest.mark.parametrize("pattern, texts", [
    (r"a{,}", ["a", "aaa", ""]),  # '{,}' is '{0,}'
    (r"[\1]", ["\x01", "1"]), (r"[\101]", ["A"]),  # octal escapes in a class
    (r"ab(?=c){2}", ["abc"]), (r"(?=x)*y", ["y", "xy"]),  # a dropped look-around takes its repetition along
    (r"a(?#\))b", ["ab"]), (r"((?=(?#[)a)(b]))", ["b]"]),  # comments, with what looks like syntax inside
    ("a{\u0663}", ["a{\u0663}"]),  # only ASCII digits make a repetition
    (r"\ud800|a", ["a", "b"]), (r"(?i)[^\s\S]|a", ["A", "b"]),  # parts no line can match
    (r"\w{1000}", ["x" * 1000, "y"]), (r"(?:\w\s){300}", ["a " * 300]),  # past Rust's size limit: Python runs them
])
def test_odd_but_valid_patterns_match_what_python_matches(pattern, texts):
    """A review's findings: each was a line Rust missed, or a pattern Rust refused."""
    column = pl.Series(texts, dtype=pl.String)
    for how in ("search", "match", "fullmatch"):
        expected = [bool(getattr(re.compile(pattern), how)(text)) for text in texts]
        found = may_match(column, [(pattern, how)]).to_list()
        assert all(f or not e for f, e in zip(found, expected)), (how, found, expected)
