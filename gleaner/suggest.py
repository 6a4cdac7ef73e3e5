"""Suggest boilerplate: recurring lines of a folder of dumps that no recurring article explains.

A site prints the same menus, captions, labels and footers around every article, so its
boilerplate recurs across dumps. But an article printed in several dumps recurs too, every
paragraph of it. The rule that tells them apart:

- Lines are compared as the clean step sees them: white space folded (NBSPs count as
  spaces), and the profile's fragments (a cloaked e-mail, image residue) cut from a line
  that stays text, so that two prints of a paragraph that differ only there compare
  equal. Blank lines are skipped: a line's neighbours are the previous and next
  non-blank lines.
- Two lines are *bound* when one always directly follows the other: every occurrence of
  the first is followed by the second, and every occurrence of the second is preceded by
  the first. Bound lines form *blocks*.
- A recurring article reprints its paragraphs in the same order, so they bind into a block
  holding paragraph-length lines (PARAGRAPH_WORDS words or more). Every line of such a
  block recurs because the article does, and is not a candidate, however short (its
  byline, its picture's caption).
- Every other line that occurs at least twice, in at least `min_dumps` dumps, is a
  candidate: it recurs between lines that vary (a photo credit under different ledes, a
  footer sentence after different articles, a label printed twice on one page), or only
  in blocks of short lines (a menu printed the same way on every page). A recurring
  article's title or byline can still show when the lines next to it also recur
  elsewhere (the same byline and date above a teaser): the list is for a person to review.

Dumps are read one at a time, as the pipeline reads them (tasks.discover, tasks.extract;
HTML elements the profile's [html] rules remove are gone already), and only counters are
kept: lines are counted by a 16-byte digest, and a line's text is
kept only once it recurs. Each candidate says what the profile already makes of it (its
boilerplate category, or 'byline', 'date', 'bio'), or None when the line is new to it.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tasks.clean import clean_lines, fold_space
from tasks.discover import discover
from tasks.extract import ExtractError, extract_dump
from tasks.profile import Profile
from tasks.segment import parse_byline

#: A line of this many words or more reads as a paragraph of running text.
PARAGRAPH_WORDS = 20

LineKey = bytes


def comparable_lines(source_file: str, lines: list[str], profile: Profile) -> list[str]:
    """A dump's non-blank lines as the clean step compares them (see the module docstring)."""
    kept, _ = clean_lines(source_file, lines, profile)
    cut = {line.no: line.text for line in kept if line.role == "text"}
    return [cut.get(no, fold_space(raw)) for no, raw in enumerate(lines, start=1) if fold_space(raw)]


def line_key(text: str) -> LineKey:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


@dataclass
class LineCounts:
    """What the dumps read so far print, as counters."""

    dumps_read: int = 0
    occurrences: Counter[LineKey] = field(default_factory=Counter)
    dumps: Counter[LineKey] = field(default_factory=Counter)  # in how many dumps
    follows: Counter[tuple[LineKey, LineKey]] = field(default_factory=Counter)  # (line, next line)
    texts: dict[LineKey, str] = field(default_factory=dict)  # of lines seen more than once

    def add_dump(self, lines: Iterable[str]) -> None:
        """Count one dump's lines, given as comparable_lines() returns them."""
        seen: set[LineKey] = set()
        previous: LineKey | None = None
        for text in lines:
            key = line_key(text)
            self.occurrences[key] += 1
            if self.occurrences[key] == 2:
                self.texts[key] = text
            if key not in seen:
                seen.add(key)
                self.dumps[key] += 1
            if previous is not None:
                self.follows[previous, key] += 1
            previous = key
        self.dumps_read += 1

    def is_paragraph(self, key: LineKey) -> bool:
        return len(self.texts[key].split()) >= PARAGRAPH_WORDS


def article_lines(counts: LineCounts) -> set[LineKey]:
    """Lines bound into a block that holds a paragraph: they recur because an article does."""
    successor = {first: second for (first, second), n in counts.follows.items()
                 if n >= 2 and n == counts.occurrences[first] == counts.occurrences[second]}
    explained: set[LineKey] = set()
    # A line has at most one bound successor and one bound predecessor: blocks are chains.
    for start in successor.keys() - set(successor.values()):
        block = [start]
        while block[-1] in successor:
            block.append(successor[block[-1]])
        if any(counts.is_paragraph(key) for key in block):
            explained.update(block)
    return explained


def profile_reading(text: str, profile: Profile) -> str | None:
    """What the profile makes of a whole line: its boilerplate or metadata category
    ('navigation', 'category_label', ...), 'bio', 'date' or 'byline'; None if nothing."""
    kept, removed = clean_lines("", [text], profile)
    if removed and all(line.role != "text" for line in kept):
        return removed[0].category
    if profile.bio_label.match(text):
        return "bio"
    if any(pattern.fullmatch(text) for pattern in profile.date_lines):
        return "date"
    # a bare name is a byline only where an article can start; a prefixed one anywhere
    if (byline := parse_byline(text, profile)) is not None and byline.prefixed:
        return "byline"
    return None


@dataclass(frozen=True)
class Candidate:
    text: str
    dumps: int  # in how many dumps it occurs
    occurrences: int  # how many times in all
    covered_by: str | None  # what the profile already makes of it; None: new


def candidates(counts: LineCounts, profile: Profile, min_dumps: int = 2) -> list[Candidate]:
    """Recurring lines no recurring article explains, most frequent first."""
    explained = article_lines(counts)
    found = [
        Candidate(counts.texts[key], counts.dumps[key], n, profile_reading(counts.texts[key], profile))
        for key, n in counts.occurrences.items()
        if n >= 2 and counts.dumps[key] >= min_dumps and key not in explained
    ]
    return sorted(found, key=lambda c: (-c.dumps, -c.occurrences, c.text))


@dataclass
class Suggestions:
    dumps_read: int
    skipped: list[tuple[str, str]]  # (source_file, reason) of files that could not be read
    candidates: list[Candidate]


def suggest(raw_dir: Path, profile: Profile, min_dumps: int = 2) -> Suggestions:
    """Read every dump below raw_dir, one at a time, and list the boilerplate candidates."""
    found = discover(raw_dir, loaded={})
    skipped = [(q.dump.source_file, f"{q.step}: {q.reason}") for q in found.refused]
    counts = LineCounts()
    for dump in found.new:
        try:
            lines = extract_dump(dump, profile).lines
        except ExtractError as exc:
            skipped.append((dump.source_file, f"extract: {exc}"))
            continue
        counts.add_dump(comparable_lines(dump.source_file, lines, profile))
    return Suggestions(counts.dumps_read, skipped, candidates(counts, profile, min_dumps))
