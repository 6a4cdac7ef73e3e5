"""Clean: take the site's boilerplate out of a dump's text, logging every removal.

Each non-blank line either stays (white space folded), or is removed whole with its
category, or loses fragments (a cloaked e-mail inside a sentence, image markdown) that
are logged one by one. 'Published in ...' and 'Read ...' lines are removed too, but kept
as marked lines because their value is the article's category and title.
"""
from __future__ import annotations

import re

from tasks.models import CleanedDump, ExtractedDump, Line, Removal
from tasks.profile import Profile

_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?)\]])")


def fold_space(text: str) -> str:
    """One space between words: dumps pad with NBSPs and runs of spaces."""
    return " ".join(text.split())


def _cut_fragments(text: str, profile: Profile) -> tuple[str, list[tuple[str, str]]]:
    """The text without the profile's fragments, and the (category, fragment) cut."""
    cut: list[tuple[str, str]] = []
    for rule in profile.boilerplate:
        for pattern in rule.fragments:
            found = [m.group(0) for m in pattern.finditer(text)]
            if found:
                cut.extend((rule.category, f) for f in found)
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
    rule = next((r for r in profile.boilerplate if r.matches_line(text)), None)
    return (Removal(source_file, no, rule.category, text), None) if rule is not None else None


def clean_lines(source_file: str, lines: list[str], profile: Profile) -> tuple[list[Line], list[Removal]]:
    kept: list[Line] = []
    removed: list[Removal] = []
    for no, raw in enumerate(lines, start=1):
        # Rules see the line with its white space folded: the CMS scatters NBSPs.
        text = fold_space(raw)
        if not text:
            continue
        whole = _whole_line(source_file, no, text, profile)
        if whole is None:
            text, cut = _cut_fragments(text, profile)
            removed.extend(Removal(source_file, no, category, fragment) for category, fragment in cut)
            # what a cut leaves may be boilerplate as a whole ('![](a.jpg) Credit: Reuters')
            whole = _whole_line(source_file, no, text, profile) if cut else None
        if whole is not None:
            removed.append(whole[0])
            if whole[1] is not None:
                kept.append(whole[1])
        elif _has_word(text):
            kept.append(Line(no, text))
        elif text:  # a rule of dashes or asterisks, or what a cut left: no text, but logged
            removed.append(Removal(source_file, no, "other", text))
    return kept, removed


def clean_dump(extracted: ExtractedDump, profile: Profile) -> CleanedDump:
    kept, removed = clean_lines(extracted.dump.source_file, extracted.lines, profile)
    return CleanedDump(extracted.dump, kept, extracted.removed + removed, extracted.encoding)
