"""Segment: split a cleaned dump into articles.

A dump runs several articles together. Each starts at a byline ('By Jane Roe', or a bare
'Jane Roe' where an article can start), may carry a date line, then a lede, sections
opened by upper-case headings ('BACKGROUND: ...') and a bio ('AUTHOR'S BIO: ...').
Listing pages print teasers: byline, date and a summary, with the category and the
title coming from 'Published in ...' and 'Read ...' lines.

Every line lands in exactly one place: an article's text or bio, its metadata (byline,
date), or removed_text (category 'other' for text that belongs to no article).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from tasks.models import Article, CleanedDump, Line, Removal, SegmentedDump, Section
from tasks.profile import Profile

_ORDINAL_SUFFIX = re.compile(r"(?<=\d)(?:st|nd|rd|th)\b")
_DATE_FORMATS = ("%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %Y", "%A %d %B %Y")
_MIN_HEADING_LETTERS = 5  # 'NATO: ...' opens no section; 'BACKGROUND: ...' does


def parse_date(text: str) -> date | None:
    """A printed date ('January 26, 2022', 'November 16th, 2015', '5 March 2013')."""
    folded = " ".join(_ORDINAL_SUFFIX.sub("", text).replace(",", " ").replace(".", " ").split())
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(folded, fmt).date()
        except ValueError:
            continue
    return None


def _is_name(words: list[str], profile: Profile) -> bool:
    """Whether words spell a personal name: capitalised words, initials and particles."""
    if not 2 <= len(words) <= profile.max_name_words:
        return False
    capitalised = 0
    for word in words:
        if any(ch.isdigit() for ch in word):
            return False
        if word.lower() in profile.name_particles:
            continue
        if not (word[0].isupper() and all(ch.isalpha() or ch in "-'’." for ch in word)):
            return False
        capitalised += 1
    return capitalised >= 2 or (capitalised == 1 and len(words) == 2)


def parse_authors(text: str, profile: Profile) -> list[str] | None:
    """The authors of a byline's name part, or None when it is not a list of names."""
    names = [n.strip() for n in profile.author_separator.split(text) if n and n.strip()]
    if not names or not all(_is_name(n.split(), profile) for n in names):
        return None
    return names


@dataclass(frozen=True)
class Byline:
    authors: list[str]
    prefixed: bool  # 'By Jane Roe' rather than a bare 'Jane Roe'


def parse_byline(text: str, profile: Profile) -> Byline | None:
    if m := profile.byline_prefix.match(text):
        authors = parse_authors(text[m.end():], profile)
        return Byline(authors, True) if authors else None
    authors = parse_authors(text, profile)
    return Byline(authors, False) if authors else None


def parse_date_line(text: str, profile: Profile) -> date | None:
    for pattern in profile.date_lines:
        if m := pattern.fullmatch(text):
            return parse_date(m.group("date"))
    return None


def section_heading(text: str, profile: Profile) -> re.Match[str] | None:
    m = profile.section_heading.match(text)
    if m and sum(ch.isalpha() for ch in m.group("heading")) >= _MIN_HEADING_LETTERS:
        return m
    return None


@dataclass
class _Draft:
    """An article being read, line by line."""

    authors: list[str]
    lines: list[int]
    published_on: date | None = None
    title: str | None = None
    category: str | None = None
    lede: list[str] = field(default_factory=list)
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    bio: list[str] | None = None
    content_lines: list[int] = field(default_factory=list)
    bio_lines: list[int] = field(default_factory=list)

    @property
    def has_text(self) -> bool:
        return bool(self.content_lines or self.bio_lines)

    def add_text(self, line: Line) -> None:
        if self.bio is not None:
            self.bio.append(line.text)
            self.bio_lines.append(line.no)
        elif self.sections:
            self.sections[-1][1].append(line.text)
            self.content_lines.append(line.no)
        else:
            self.lede.append(line.text)
            self.content_lines.append(line.no)

    def finish(self, source_file: str, ordinal: int) -> Article:
        paragraphs = self.lede + [p for _, paras in self.sections for p in paras]
        body = "\n\n".join(paragraphs)
        return Article(
            source_file=source_file,
            ordinal=ordinal,
            kind="full" if self.sections or self.bio is not None else "teaser",
            authors=self.authors,
            published_on=self.published_on,
            title=self.title,
            category=self.category,
            lede="\n\n".join(self.lede),
            body=body,
            sections=[Section(h, "\n\n".join(paras)) for h, paras in self.sections],
            bio="\n\n".join(self.bio) if self.bio else None,
            word_count=len(body.split()),
            content_lines=self.content_lines,
            bio_lines=self.bio_lines,
            metadata_lines=self.lines,
        )


def _starts_article(i: int, lines: list[Line], kinds: list[str], current: _Draft | None) -> bool:
    """Whether a bare-name line opens an article rather than being a line of text.

    A bare name opens one when a date follows it, or when text follows it and no
    article is open or the open one is complete (it has its bio).
    """
    nxt = kinds[i + 1] if i + 1 < len(lines) else None
    if nxt == "date":
        return True
    return nxt == "text" and (current is None or current.bio is not None)


def _kind_of(line: Line, profile: Profile) -> str:
    if line.role != "text":
        return line.role
    if parse_date_line(line.text, profile):
        return "date"
    if profile.bio_label.match(line.text):
        return "bio"
    if (byline := parse_byline(line.text, profile)) is not None:
        return "byline" if byline.prefixed else "name"
    if section_heading(line.text, profile):
        return "section"
    return "text"


def segment_lines(source_file: str, lines: list[Line], profile: Profile) -> tuple[list[Article], list[Removal]]:
    kinds = [_kind_of(line, profile) for line in lines]
    drafts: list[_Draft] = []
    orphans: list[Removal] = []
    current: _Draft | None = None
    pending: dict[str, object] = {}  # category/title/date seen before their article's byline

    def attach(key: str, value: object) -> None:
        # 'Published in ...' and 'Read ...' follow the entry they belong to; before the
        # first article they wait for the next one.
        if current is not None and getattr(current, key) is None:
            setattr(current, key, value)
        else:
            pending[key] = value

    for i, (line, kind) in enumerate(zip(lines, kinds)):
        if kind == "name" and not _starts_article(i, lines, kinds, current):
            kind = "text"
        if kind in ("byline", "name"):
            current = _Draft(authors=parse_byline(line.text, profile).authors, lines=[line.no])
            for key, value in pending.items():
                setattr(current, key, value)
            pending.clear()
            drafts.append(current)
        elif kind == "date":
            if current is not None and not current.has_text and current.published_on is None:
                current.published_on = parse_date_line(line.text, profile)
                current.lines.append(line.no)
            elif current is not None:
                current.add_text(line)
            else:
                orphans.append(Removal(source_file, line.no, "other", line.text))
        elif kind == "category":
            attach("category", line.text)
        elif kind == "title":
            attach("title", line.text)
        elif current is None:
            orphans.append(Removal(source_file, line.no, "other", line.text))
        elif kind == "bio":
            current.bio = []
            current.add_text(Line(line.no, line.text[profile.bio_label.match(line.text).end():]))
        elif kind == "section" and current.bio is None:
            m = section_heading(line.text, profile)
            current.sections.append((m.group("heading"), []))
            current.add_text(Line(line.no, line.text[m.end():]))
        else:
            current.add_text(line)
    articles = [d.finish(source_file, n) for n, d in enumerate(drafts, start=1)]
    return articles, orphans


def segment_dump(cleaned: CleanedDump, profile: Profile) -> SegmentedDump:
    articles, orphans = segment_lines(cleaned.dump.source_file, cleaned.lines, profile)
    return SegmentedDump(cleaned.dump, articles, cleaned.removed + orphans, cleaned.encoding)
