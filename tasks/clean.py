"""Clean: take the site's boilerplate out of a dump's text, logging every removal.

Each non-blank line either stays (white space folded), or is removed whole with its
category, or loses fragments (a cloaked e-mail inside a sentence, image markdown) that
are logged one by one. 'Published in ...' and 'Read ...' lines are removed too, but kept
as marked lines because their value is the article's category and title. A byline glued
to the paragraph before it is cut off first, into a line of its own with the same number.

A batch's lines are decided as one column first (clean_many, in polars): they are folded,
and only those a rule may change reach _clean_line in Python; the others are kept as they
are. The column's tests match at least what the profile's Python patterns match
(tasks/rust_regex.py), so Python still makes every decision it made line by line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import polars as pl

from tasks.models import CleanedDump, ExtractedDump, Line, Removal
from tasks.profile import Profile
from tasks.rust_regex import column_of, may_match, to_rust
from tasks.segment import GLUE_POINT, glued_byline_cut

_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?)\]])")


def fold_space(text: str) -> str:
    """One space between words: dumps pad with NBSPs and runs of spaces."""
    # Most lines are folded already, and testing that is cheaper than splitting them: when
    # the text is printable, ' ' is its only white space (NBSP and the like are not printable).
    if text.isprintable() and "  " not in text and not text.startswith(" ") and not text.endswith(" "):
        return text
    return " ".join(text.split())


def _cut_fragments(text: str, profile: Profile) -> tuple[str, list[tuple[str, str]]]:
    """The text without the profile's fragments, and the (category, fragment) cut."""
    boilerplate = profile.compiled_boilerplate
    if not boilerplate.has_fragment(text):  # one search spares the loop on most lines
        return text, []
    cut: list[tuple[str, str]] = []
    for category, pattern in boilerplate.fragments:
        found = [m.group(0) for m in pattern.finditer(text)]
        if found:
            cut.extend((category, f) for f in found)
            text = pattern.sub(" ", text)
    if cut:
        # 'reached at <cloak> .' leaves 'reached at .': close the gap.
        text = _SPACE_BEFORE_PUNCT.sub(r"\1", fold_space(text))
    return text, cut


def _has_word(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _whole_line(source_file: str, no: int, text: str, profile: Profile) -> tuple[Removal, Line | None] | None:
    """The removal of a line that is boilerplate as a whole (and, for 'Published in ...' and
    'Read ...', the marked line that carries its value), or None."""
    if m := profile.category_line.fullmatch(text):
        return Removal(source_file, no, "category_label", text), Line(no, m.group("value"), "category")
    if m := profile.title_line.fullmatch(text):
        return Removal(source_file, no, "title_link", text), Line(no, m.group("value"), "title")
    category = profile.compiled_boilerplate.line_category(text)
    return (Removal(source_file, no, category, text), None) if category is not None else None


def _clean_text(source_file: str, no: int, text: str, profile: Profile) -> tuple[list[Line], list[Removal]]:
    """What is kept of one folded line (or part of one), and what is removed."""
    whole = _whole_line(source_file, no, text, profile)
    removed: list[Removal] = []
    if whole is None:
        text, cut = _cut_fragments(text, profile)
        removed = [Removal(source_file, no, category, fragment) for category, fragment in cut]
        # what a cut leaves may be boilerplate as a whole ('![](a.jpg) Credit: Reuters')
        whole = _whole_line(source_file, no, text, profile) if cut else None
    if whole is not None:
        return ([] if whole[1] is None else [whole[1]]), removed + [whole[0]]
    if _has_word(text):
        return [Line(no, text)], removed
    if text:  # a rule of dashes or asterisks, or what a cut left: no text, but logged
        removed.append(Removal(source_file, no, "other", text))
    return [], removed


def _clean_line(source_file: str, no: int, text: str, profile: Profile,
                unglue: bool = True) -> tuple[list[Line], list[Removal]]:
    """What is kept of one folded line, and what is removed. A byline glued to the end of the
    paragraph before it ('...the end.By Jane Roe') makes two lines of one, each cleaned on
    its own, so that neither part's boilerplate hides in the other. The byline is looked for
    in the line as printed, before a cut can take the sentence end it is glued to, and else
    in what cleaning left, where a cut may have brought the two together."""
    cut = glued_byline_cut(text, profile) if unglue else None
    removed: list[Removal] = []
    if cut is None:
        kept, removed = _clean_text(source_file, no, text, profile)
        if not (unglue and kept and kept[0].role == "text" and kept[0].text != text):
            return kept, removed
        text = kept[0].text
        cut = glued_byline_cut(text, profile)
        if cut is None:
            return kept, removed
    parts = [_clean_line(source_file, no, part, profile, unglue=False) for part in (text[:cut], text[cut:].strip())]
    return ([line for part_kept, _ in parts for line in part_kept],
            removed + [r for _, part_removed in parts for r in part_removed])


@dataclass(frozen=True)
class ColumnRules:
    """What decides, for a whole column of folded lines at once, which lines Python must clean:
    those a rule may remove whole or cut a fragment of, those a byline may be glued in, and
    those without a word. Every other line is kept as it is."""

    listed: tuple[str, ...]  # lines removed whole as they are
    patterns: tuple[tuple[str, str], ...]  # (Python pattern, how it is asked): one that may match sends a line to Python

    @classmethod
    def of(cls, profile: Profile) -> ColumnRules:
        whole = [p for rule in profile.boilerplate for p in rule.patterns] + [profile.category_line, profile.title_line]
        fragments = [p for _, p in profile.compiled_boilerplate.fragments]
        return cls(tuple(profile.compiled_boilerplate.listed),
                   tuple([(p.pattern, "fullmatch") for p in whole] + [(p.pattern, "search") for p in fragments]
                         + [(GLUE_POINT, "search")]))

    def needs_python(self, folded: pl.Series) -> pl.Series:
        """Whether each folded line needs Python's clean_line."""
        # exactly the lines with a word character: a class alone is spelled out as Python's own
        has_word = folded.str.contains(to_rust(_WORD_CHARACTER))
        return folded.is_in(self.listed) | may_match(folded, self.patterns) | ~has_word


#: what _has_word looks for (str.isalnum)
_WORD_CHARACTER = r"[^\W_]"
#: what fold_space folds: runs of Python's white space (str.split), in a line that holds any
#: but the space, two spaces in a row, or one at an end
_SPACE_RUN = r"\s+"
_UNFOLDED = r"[^\S ]|  |^ | $"


@cache
def column_rules(profile: Profile) -> ColumnRules:
    return ColumnRules.of(profile)


def fold_column(lines: pl.Series) -> pl.Series:
    """fold_space of every line: runs of Python's white space as one space, none at the ends.
    As in fold_space, most lines are folded already, and finding those is cheaper than
    rewriting them all."""
    unfolded = may_match(lines, [(_UNFOLDED, "search")])
    places = unfolded.arg_true()
    if places.is_empty():
        return lines
    rewritten = lines.filter(unfolded).str.replace_all(to_rust(_SPACE_RUN), " ").str.strip_chars(" ")
    return lines.clone().scatter(places, rewritten)


def clean_many(dumps: list[tuple[str, list[str]]], profile: Profile) -> list[tuple[list[Line], list[Removal]]]:
    """clean_lines of each (source_file, lines), with the lines of all of them decided as one
    column: Python sees only the lines a rule may change."""
    lines = [line for _, dump_lines in dumps for line in dump_lines]
    column = column_of(lines)
    if column is None:
        folded, flagged = [fold_space(line) for line in lines], [True] * len(lines)
    else:
        folded_column = fold_column(column)
        folded, flagged = folded_column.to_list(), column_rules(profile).needs_python(folded_column).to_list()
    cleaned = []
    at = 0
    for source_file, dump_lines in dumps:
        kept: list[Line] = []
        removed: list[Removal] = []
        for no in range(1, len(dump_lines) + 1):
            text = folded[at]
            if text and flagged[at]:
                line_kept, line_removed = _clean_line(source_file, no, text, profile)
                kept += line_kept
                removed += line_removed
            elif text:
                kept.append(Line(no, text))
            at += 1
        cleaned.append((kept, removed))
    return cleaned


def clean_lines(source_file: str, lines: list[str], profile: Profile) -> tuple[list[Line], list[Removal]]:
    return clean_many([(source_file, lines)], profile)[0]


def clean_batch(extracted: list[ExtractedDump], profile: Profile) -> list[CleanedDump]:
    cleaned = clean_many([(e.dump.source_file, e.lines) for e in extracted], profile)
    return [CleanedDump(e.dump, kept, e.removed + removed, e.encoding) for e, (kept, removed) in zip(extracted, cleaned)]


def clean_dump(extracted: ExtractedDump, profile: Profile) -> CleanedDump:
    return clean_batch([extracted], profile)[0]
