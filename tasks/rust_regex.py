"""Python `re` patterns as Rust regex patterns, for deciding on a whole column of lines at once
(polars runs Rust's regex crate).

The steps keep Python's patterns as the rules (a profile's patterns are Python `re` syntax);
a column decides only which lines Python must look at. So a translated pattern needs to
match every line (a string without a newline, where Python's '$' means the end, as Rust's)
the Python one matches, and may match more (Python then decides). What Rust's engine
cannot do is relaxed rather than refused:

- a look-ahead or look-behind is dropped (a condition fewer), and so are `\\b` and `\\B`;
- possessive quantifiers and atomic groups become ordinary ones (they match more);
- `\\d \\w \\s` and their negations are spelled out as the characters Python's own classes
  match: Rust's differ (its `\\w` holds combining marks, its `\\s` lacks U+001C-U+001F);
- `(?i)` is spelled out too: each letter as the class of what Python's `(?i:letter)` matches,
  each class as the characters Python's `(?i:[...])` matches (Rust's folding differs: Python's
  `(?i:i)` also matches U+0130 'İ').

Patterns with no such translation (a back reference, a conditional group, verbose or ASCII
mode) raise Untranslatable; may_match runs Python's own pattern over the column for them.
"""
from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from functools import cache

import numpy as np
import polars as pl


class Untranslatable(ValueError):
    """A pattern construct that has no Rust regex form (the message says which)."""


def _code(ch: int) -> str:
    if ch in _SURROGATES:  # no line holds one (and Rust's patterns cannot name one)
        raise Untranslatable("a surrogate")
    return f"\\x{{{ch:x}}}"


_SURROGATES = range(0xD800, 0xE000)  # no character of a Rust (UTF-8) string


@cache
def _every_character() -> str:
    """All of Unicode but the surrogates, in order."""
    codes = np.concatenate([np.arange(_SURROGATES.start), np.arange(_SURROGATES.stop, sys.maxunicode + 1)])
    return codes.astype("<u4").tobytes().decode("utf-32-le")


@cache
def _ranges(python_class: str) -> tuple[tuple[int, int], ...]:
    """The code point ranges of the characters Python's `re` matches with `python_class`
    (r'\\w', r'[^\\W_]', ...), found by that class itself over all of Unicode."""
    ranges = []
    for m in re.finditer(f"{python_class}+", _every_character()):
        lo, hi = ord(m.group()[0]), ord(m.group()[-1])
        if lo < _SURROGATES.start <= hi:  # a run across the gap of the surrogates
            ranges += [(lo, _SURROGATES.start - 1), (_SURROGATES.stop, hi)]
        else:
            ranges.append((lo, hi))
    return tuple(ranges)


def class_body(python_class: str) -> str:
    """The inside of a Rust character class of the characters Python's `re` matches with
    `python_class`."""
    return "".join(_code(lo) if lo == hi else f"{_code(lo)}-{_code(hi)}" for lo, hi in _ranges(python_class))


_CLASS_ESCAPES = "dwsDWS"
_NOTHING = r"[^\x{0}-\x{10ffff}]"  # a class that matches no character


def _literal(code: int, ignorecase: bool) -> str:
    """A character as Rust pattern text: with its case variants as a class, under (?i)."""
    if ignorecase and (variants := _case_variants(chr(code))) != chr(code):
        return "[" + "".join(_code(ord(v)) for v in variants) + "]"
    ch = chr(code)
    return "\\" + ch if ch in _RUST_META else ch if ch.isprintable() else _code(code)


_RUST_META = frozenset("\\.+*?()|[]{}^$#")


@cache
def _cased() -> str:
    """The characters that have another case: the only ones a character may match under (?i)
    besides itself."""
    every = _every_character()
    blocks = (every[at:at + 256] for at in range(0, len(every), 256))
    # most blocks of Unicode have no case at all: each is passed over in two comparisons
    return "".join(ch for block in blocks if block.lower() != block or block.upper() != block
                   for ch in block if ch.lower() != ch or ch.upper() != ch)


@cache
def _case_variants(ch: str) -> str:
    """The characters Python's `(?i:ch)` matches, in order."""
    return "".join(sorted(set(re.findall(f"(?i:{re.escape(ch)})", _cased() + ch))))


def _escape(pattern: str, i: int, ignorecase: bool) -> tuple[str, int]:
    """The escape at pattern[i] ('\\') outside a class, in Rust syntax, and the index after it."""
    if i + 1 >= len(pattern):
        raise Untranslatable("a pattern that ends in a backslash")
    ch = pattern[i + 1]
    if ch in _CLASS_ESCAPES:
        return "[" + class_body("\\" + ch) + "]", i + 2
    if ch in "bB":
        return "", i + 2  # relaxed: a condition fewer
    if ch == "Z":
        return "\\z", i + 2
    if ch == "A":
        return "\\A", i + 2
    code, end = _escaped_code(pattern, i)
    return _literal(code, ignorecase), end


def _escaped_code(pattern: str, i: int) -> tuple[int, int]:
    """The character an escape of one character at pattern[i] stands for, and the index after it."""
    ch = pattern[i + 1]
    if ch in "xuU":
        width = {"x": 2, "u": 4, "U": 8}[ch]
        digits = pattern[i + 2:i + 2 + width]
        if len(digits) != width:
            raise Untranslatable(f"a short \\{ch} escape")
        return int(digits, 16), i + 2 + width
    if ch == "N" and pattern.startswith("\\N{", i):
        import unicodedata

        end = pattern.index("}", i)
        return ord(unicodedata.lookup(pattern[i + 3:end])), end + 1
    controls = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
    if ch in controls:
        return controls[ch], i + 2
    if ch.isascii() and ch.isdigit():
        raise Untranslatable("a back reference or an octal escape")
    if ch.isascii() and ch.isalpha():
        raise Untranslatable(f"the escape \\{ch}")
    return ord(ch), i + 2


def _class_end(pattern: str, i: int) -> int:
    """The index after the character class that opens at pattern[i] ('[')."""
    i += 1
    if pattern.startswith("^", i):
        i += 1
    first = True
    while i < len(pattern):
        if pattern[i] == "]" and not first:
            return i + 1
        i += 2 if pattern[i] == "\\" else 1
        first = False
    raise Untranslatable("an unclosed character class")


def _class(pattern: str, i: int, ignorecase: bool) -> tuple[str, int]:
    """The character class at pattern[i] ('['), and the index after it. Under (?i) its members
    are those Python finds among all characters. Else it is rewritten: Rust reads '[' inside a
    class as a nested class and '&&', '~~' and '--' as set operations, so they are escaped."""
    end = _class_end(pattern, i)
    if ignorecase:
        body = class_body("(?i:" + pattern[i:end] + ")")
        return (f"[{body}]" if body else _NOTHING), end
    out = ["["]
    i += 1
    if pattern.startswith("^", i):
        out.append("^")
        i += 1
    while i < end - 1:
        ch = pattern[i]
        if ch == "\\" and pattern[i + 1] in _CLASS_ESCAPES:
            out.append(class_body("\\" + pattern[i + 1]))
            i += 2
        elif ch == "\\":
            code, i = _escaped_code(pattern, i)
            out.append(_code(code))
        else:
            if pattern.startswith("--", i):
                raise Untranslatable("'--' inside a character class")
            out.append("\\" + ch if ch in "[]&~" else ch)
            i += 1
    return "".join(out) + "]", end


def _comment_end(pattern: str, i: int) -> int:
    """The index after the comment '(?#...)' that opens at pattern[i] (an escaped ')' in it
    does not end it)."""
    i += 3
    while i < len(pattern) and pattern[i] != ")":
        i += 2 if pattern[i] == "\\" else 1
    if i >= len(pattern):
        raise Untranslatable("an unclosed comment")
    return i + 1


def _group_end(pattern: str, i: int) -> int:
    """The index after the group that opens at pattern[i] ('(')."""
    depth = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            i = _class_end(pattern, i)
            continue
        if pattern.startswith("(?#", i):
            i = _comment_end(pattern, i)
            continue
        depth += {"(": 1, ")": -1}.get(ch, 0)
        i += 1
        if depth == 0:
            return i
    raise Untranslatable("an unclosed group")


_LOOKAROUNDS = ("(?=", "(?!", "(?<=", "(?<!")
_FLAGS_OK = frozenset("imsu-")


def _group_open(pattern: str, i: int, ignorecase: bool) -> tuple[str, int, bool | None]:
    """What a '(?...' opener at pattern[i] becomes, the index after it, and whether (?i) holds
    inside the group (None: no group opens, a global flag holds from here on)."""
    if pattern.startswith(("(?P=", "(?("), i):
        raise Untranslatable("a back reference or a conditional group")
    if pattern.startswith("(?>", i):
        return "(?:", i + 3, ignorecase  # atomic: matches a subset of the plain group's strings
    if pattern.startswith("(?:", i):
        return "(?:", i + 3, ignorecase
    if pattern.startswith(("(?P<", "(?<"), i):  # a named group: its name is never read (and
        return "(?:", pattern.index(">", i) + 1, ignorecase  # patterns joined in one may share names)
    end = i + 2
    while end < len(pattern) and pattern[end] not in ":)":
        end += 1
    flags = pattern[i + 2:end]
    if not flags or set(flags) - _FLAGS_OK:
        raise Untranslatable(f"the flags {flags!r}")
    on, _, off = flags.partition("-")
    inside = True if "i" in on else False if "i" in off else ignorecase
    # (?i) is done here, by case variants: Rust's own folding differs from Python's
    rust_flags = "".join(f for f in on if f in "ms") + ("-" + "".join(f for f in off if f in "ms")).rstrip("-")
    if pattern.startswith(":", end):
        return (f"(?{rust_flags}:" if rust_flags else "(?:"), end + 1, inside
    return (f"(?{rust_flags})" if rust_flags else ""), end + 1, None if inside == ignorecase else inside


def _quantifier(pattern: str, i: int) -> tuple[str, int] | None:
    """A '{m,n}' repetition at pattern[i], or None when Python reads the brace as a literal."""
    end = pattern.find("}", i)
    if end < 0:
        return None
    low, comma, high = pattern[i + 1:end].partition(",")
    if not all(part.isascii() and part.isdigit() for part in (low, high) if part) or not (low or comma):
        return None  # Python reads only ASCII digits as a repetition, and '{,}' as '{0,}'
    return "{" + (low or "0") + comma + high + "}", end + 1


def _after_quantifier(pattern: str, i: int) -> int:
    """The index after a repetition at pattern[i] (with its '?' or '+'), if one is there."""
    if pattern.startswith("{", i) and (quantified := _quantifier(pattern, i)) is not None:
        i = quantified[1]
    elif pattern.startswith(("*", "+", "?"), i):
        i += 1
    else:
        return i
    return i + 1 if pattern.startswith(("?", "+"), i) else i


@cache
def to_rust(pattern: str) -> str:
    """`pattern` (Python `re`) as a Rust regex that matches every line it matches; raises
    Untranslatable for what has no such form."""
    out: list[str] = []
    ignorecase = [False]  # whether (?i) holds, for each group open here
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            text, i = _escape(pattern, i, ignorecase[-1])
        elif ch == "[":
            text, i = _class(pattern, i, ignorecase[-1])
        elif pattern.startswith(_LOOKAROUNDS, i):
            text, i = "", _after_quantifier(pattern, _group_end(pattern, i))  # a condition fewer, however repeated
        elif pattern.startswith("(?#", i):
            text, i = "", _comment_end(pattern, i)
        elif pattern.startswith("(?", i):
            text, i, inside = _group_open(pattern, i, ignorecase[-1])
            if text.endswith(":"):
                ignorecase.append(bool(inside))
            elif inside is not None:  # a global flag
                ignorecase[0] = ignorecase[-1] = inside
        elif ch == "(":
            text, i = ch, i + 1
            ignorecase.append(ignorecase[-1])
        elif ch == ")":
            text, i = ch, i + 1
            if len(ignorecase) > 1:
                ignorecase.pop()
        elif ch == "{" and (quantified := _quantifier(pattern, i)) is not None:
            text, i = quantified
        elif ch in "{}":
            text, i = "\\" + ch, i + 1
        elif ch in ".^$|*+?":
            text, i = ch, i + 1
        else:
            text, i = _literal(ord(ch), ignorecase[-1]), i + 1
        if text and text[-1] in "*+?}" and not text.startswith("\\") and pattern.startswith("+", i):
            i += 1  # possessive: the plain quantifier matches more
        out.append(text)
    return "".join(out)


def column_of(texts: list[str]) -> pl.Series | None:
    """The texts as one column, or None when one holds a lone surrogate (no UTF-8 string
    does): the caller then decides every text in Python."""
    try:
        return pl.Series(texts, dtype=pl.String)
    except UnicodeEncodeError:
        return None


#: how a Python pattern is asked of a line (its method), and the Rust anchors that make it so
_ANCHORS = {"search": ("", ""), "match": ("^(?:", ")"), "fullmatch": ("^(?:", ")$")}


def _compiles(rust: str) -> bool:
    """Whether Rust's regex crate takes the pattern (a spelled-out class repeated many times
    can pass its size limit)."""
    try:
        pl.Series([""], dtype=pl.String).str.contains(rust)
    except pl.exceptions.ComputeError:
        return False
    return True


@cache
def _alternation(patterns: tuple[tuple[str, str], ...]) -> tuple[tuple[str, ...], tuple[tuple[re.Pattern[str], str], ...]]:
    """The patterns that have a Rust form, anchored as asked and joined in one alternation (one
    pass over a column; in as many as Rust's size limit needs), and those that have none,
    compiled for Python."""
    rust, python = [], []
    for pattern, how in patterns:
        opening, closing = _ANCHORS[how]
        try:
            translated = "(?:" + opening + to_rust(pattern) + closing + ")"
        except Untranslatable:
            translated = None
        if translated is not None and _compiles(translated):
            rust.append(translated)
        else:
            python.append((re.compile(pattern), how))
    joined = "|".join(rust)
    return (() if not rust else (joined,) if _compiles(joined) else tuple(rust)), tuple(python)


def may_match(lines: pl.Series, patterns: Sequence[tuple[str, str]]) -> pl.Series:
    """For each line, whether any of the Python patterns, each asked as its `how` says
    ('search', 'match' or 'fullmatch'), may match it: true wherever one does (and maybe where
    none does). Those with a Rust form are one pass of Rust; Python runs the others."""
    rust, python = _alternation(tuple(patterns))
    found = pl.repeat(False, len(lines), eager=True)
    for alternation in rust:
        found = found | lines.str.contains(alternation)
    if python:
        found = found | pl.Series([any(getattr(p, how)(text) for p, how in python) for text in lines.to_list()],
                                  dtype=pl.Boolean)
    return found.fill_null(False)
