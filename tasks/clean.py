"""Clean: take the site's boilerplate out of a dump's text, logging every removal.

Each non-blank line either stays (white space folded), or is removed whole with its
category, or loses fragments (a cloaked e-mail inside a sentence, image markdown) that
are logged one by one. 'Published in ...' and 'Read ...' lines are removed too, but kept
as marked lines because their value is the article's category and title. A byline glued
to the paragraph before it is cut off first, into a line of its own with the same number.
"""
from __future__ import annotations

import re

from tasks.models import CleanedDump, ExtractedDump, Line, Removal
from tasks.profile import Profile
from tasks.segment import glued_byline_cut

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


def clean_lines(source_file: str, lines: list[str], profile: Profile) -> tuple[list[Line], list[Removal]]:
    kept: list[Line] = []
    removed: list[Removal] = []
    for no, raw in enumerate(lines, start=1):
        # Rules see the line with its white space folded: the CMS scatters NBSPs.
        text = fold_space(raw)
        if text:
            line_kept, line_removed = _clean_line(source_file, no, text, profile)
            kept += line_kept
            removed += line_removed
    return kept, removed


def clean_dump(extracted: ExtractedDump, profile: Profile) -> CleanedDump:
    kept, removed = clean_lines(extracted.dump.source_file, extracted.lines, profile)
    return CleanedDump(extracted.dump, kept, extracted.removed + removed, extracted.encoding)
