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
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import ClassVar

from tasks.models import Article, CleanedDump, Line, Removal, SegmentedDump, Section
from tasks.profile import DEFAULT_DATE_FORMATS, Profile

_ORDINAL_SUFFIX = re.compile(r"(?<=\d)(?:st|nd|rd|th)\b")
_MIN_HEADING_LETTERS = 5  # 'NATO: ...' opens no section; 'BACKGROUND: ...' does
_MAX_AFFILIATION_WORDS = 6  # 'By Jane Roe, Tbilisi': what follows the last name's comma
_MAX_TITLE_WORDS = 20
_MAX_HEADER_LINES = 3  # date, title and 'Published in' above a listing's byline
_SENTENCE_END = tuple(".,;:”\"'’")
# what a sentence a byline is glued to ends with
_SENTENCE_STOP = frozenset(".!?”\"’)")
_ASCII_LOWER = re.compile(r"[a-z]")
# a digit, or a word starting in lower case, of a byline's names: either rules out a name
# unless the word is a particle or the separator 'and' (see _is_name)
_NOT_NAME_WORD = re.compile(r"[0-9]|(?<![^\s,&])[a-z][^\s,&]*")


@lru_cache(maxsize=1 << 14)  # strptime is slow, and dumps print the same dates again and again
def parse_date(text: str, formats: tuple[str, ...] = DEFAULT_DATE_FORMATS) -> date | None:
    """A printed date ('January 26, 2022', 'November 16th, 2015', '5 March 2013')."""
    folded = " ".join(_ORDINAL_SUFFIX.sub("", text).replace(",", " ").replace(".", " ").split())
    for fmt in formats:
        try:
            return datetime.strptime(folded, fmt).date()
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class NumericDate:
    """A date printed as digits ('12/3/2003', '08/21/13'), not yet read as month/day or day/month."""

    PRINTED: ClassVar[re.Pattern[str]] = re.compile(r"\d{1,2}/\d{1,2}/\d{2,4}")

    first: int
    second: int
    year: int

    @classmethod
    def parse(cls, text: str) -> NumericDate:
        first, second, year = (int(part) for part in text.split("/"))
        if year < 100:  # '13' is 2013; the site has no issues from before 1990
            year += 2000 if year < 90 else 1900
        return cls(first, second, year)

    def readings(self) -> dict[str, date]:
        """The valid readings by order: 'md' (month/day) and 'dm' (day/month)."""
        found = {}
        for order, (month, day) in (("md", (self.first, self.second)), ("dm", (self.second, self.first))):
            try:
                found[order] = date(self.year, month, day)
            except ValueError:
                continue
        return found


def dump_date_order(dates: list[NumericDate]) -> str | None:
    """The order the dump's unambiguous numeric dates agree on ('md' or 'dm'), if they do."""
    orders = {next(iter(r)) for r in (d.readings() for d in dates) if len(r) == 1}
    return orders.pop() if len(orders) == 1 else None


def resolve_numeric_date(value: NumericDate, issue_weekday: int | None, dump_order: str | None) -> date | None:
    """Read a numeric date by evidence, never by a silent guess: the only valid reading; else
    the one reading that falls on the publication's issue weekday; else the order the dump's
    other dates show; else None."""
    readings = value.readings()
    if len(set(readings.values())) == 1:
        return next(iter(readings.values()))
    on_issue_day = [d for d in readings.values() if d.weekday() == issue_weekday]
    if len(on_issue_day) == 1:
        return on_issue_day[0]
    return readings.get(dump_order) if dump_order else None


def _is_name(words: list[str], profile: Profile) -> bool:
    """Whether words spell a personal name: capitalised words, initials and particles."""
    if not 2 <= len(words) <= profile.max_name_words:
        return False
    capitalised = 0
    for word in words:
        letters = word.isalpha()  # most words: then no digit and no punctuation to look for
        if not letters and any(ch.isdigit() for ch in word):
            return False
        if word.lower() in profile.name_particles:
            continue
        if word in profile.not_name_words:
            return False
        if not (word[0].isupper() and (letters or all(ch.isalpha() or ch in "-'’." for ch in word))):
            return False
        capitalised += 1
    return capitalised >= 2 or (capitalised == 1 and len(words) == 2)


def parse_authors(text: str, profile: Profile) -> list[str] | None:
    """The authors of a byline's name part, or None when it is not a list of names.

    An affiliation after the last comma ('Jane Roe, Tbilisi') is no author."""
    if _rules_out_names(text, profile):
        return None
    names = [n.strip() for n in profile.author_separator.split(text) if n and n.strip()]
    if len(names) > 1 and not _is_name(names[-1].split(), profile) and "," in text:
        affiliation = text[text.rindex(",") + 1:].strip()
        if len(affiliation.split()) <= _MAX_AFFILIATION_WORDS and not affiliation.endswith("."):
            names = [n.strip() for n in profile.author_separator.split(text[:text.rindex(",")]) if n.strip()]
    if not names or not all(_is_name(n.split(), profile) for n in names):
        return None
    return names


def _rules_out_names(text: str, profile: Profile) -> bool:
    """A quick test that parse_authors would find no names: whatever precedes the last comma
    is names and separators in every reading, so a word there that no name holds decides.
    Most lines are sentences, and this spares splitting them whole."""
    end = text.rfind(",")
    end = len(text) if end < 0 else end
    m = _NOT_NAME_WORD.search(text, 0, end)
    while m is not None:
        word = m.group()
        if word != "and" and word.lower() not in profile.name_particles:
            return True
        m = _NOT_NAME_WORD.search(text, m.end(), end)
    return False


@dataclass(frozen=True)
class Byline:
    authors: list[str]
    prefixed: bool  # 'By Jane Roe' rather than a bare 'Jane Roe'
    # a date printed with the names; a numeric one is read once the whole dump is seen
    printed_date: NumericDate | date | None = None


def parse_byline(text: str, profile: Profile) -> Byline | None:
    prefix = profile.byline_prefix.match(text)
    if prefix is None:
        authors = parse_authors(text, profile)
        return Byline(authors, False) if authors else None
    names = text[prefix.end():]
    printed_date = None
    if profile.byline_date and (m := profile.byline_date.search(names)):
        printed = m.group("date")
        printed_date = (NumericDate.parse(printed) if NumericDate.PRINTED.fullmatch(printed)
                        else parse_date(printed, profile.date_formats))
        names = names[:m.start()]
    if names.strip().lower() in profile.no_author:
        return Byline([], True, printed_date)
    authors = parse_authors(names, profile)
    return Byline(authors, True, printed_date) if authors else None


@dataclass(frozen=True)
class DateLine:
    value: date | None  # None: the line prints a date without a year


def match_date_line(text: str, profile: Profile) -> DateLine | None:
    for pattern in profile.date_lines:
        if m := pattern.fullmatch(text):
            return DateLine(parse_date(m.group("date"), profile.date_formats))
    return None


def section_heading(text: str, profile: Profile) -> re.Match[str] | None:
    m = profile.section_heading.match(text)
    if m and sum(map(str.isalpha, m.group("heading"))) >= _MIN_HEADING_LETTERS:
        return m
    return None


@dataclass
class _Draft:
    """An article being read, line by line."""

    authors: list[str]
    lines: list[int]  # byline, date and title lines
    published_on: date | None = None
    has_date_line: bool = False
    title: str | None = None
    category: str | None = None
    lede: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)  # paragraphs as printed, headings included
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    bio: list[str] | None = None
    content_lines: list[int] = field(default_factory=list)
    bio_lines: list[int] = field(default_factory=list)

    @property
    def has_text(self) -> bool:
        return bool(self.content_lines or self.bio_lines)

    def open_section(self, heading: str, no: int) -> None:
        """A heading printed on a line of its own: the body shows it, the section's text
        starts with the next paragraph."""
        self.sections.append((heading, []))
        self.body.append(heading)
        self.content_lines.append(no)

    def add_text(self, no: int, text: str, printed: str | None = None) -> None:
        """A paragraph; `printed` is how the body shows it when it differs (with its heading)."""
        if self.bio is not None:
            self.bio.append(text)
            self.bio_lines.append(no)
            return
        (self.sections[-1][1] if self.sections else self.lede).append(text)
        self.body.append(printed or text)
        self.content_lines.append(no)

    def finish(self, source_file: str, ordinal: int) -> Article:
        body = "\n\n".join(self.body)
        return Article(
            source_file=source_file,
            ordinal=ordinal,
            kind="full" if self.sections or self.bio else "teaser",
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
            metadata_lines=sorted(self.lines),
        )


@dataclass(slots=True)  # not frozen: a frozen dataclass is slow to create, and one is made per line
class _Classified:
    line: Line
    kind: str  # text, byline, name, date, bio, section, heading, category, title
    byline: Byline | None = None
    date_line: DateLine | None = None


def _glue_points(text: str) -> Iterator[tuple[int, int]]:
    """Where a byline may be glued to the end of a paragraph: (the end of the paragraph, the
    start of the byline) for each 'By' or 'by' and white space after a sentence's end (and
    white space). String searches, not a regular expression: they scan paragraphs faster."""
    starts = []
    for word in ("By", "by"):
        at = text.find(word)
        while at >= 0:
            starts.append(at)
            at = text.find(word, at + 1)
    for start in sorted(starts):
        end = len(text[:start].rstrip())
        if text[start + 2:start + 3].isspace() and end and text[end - 1] in _SENTENCE_STOP:
            yield end, start


#: a glue point of _glue_points in a line whose white space is folded (single spaces), as a
#: Rust regex: lines without one need no glued_byline_cut
GLUE_POINT = "[" + "".join(re.escape(ch) for ch in sorted(_SENTENCE_STOP)) + "] ?[Bb]y "


def glued_byline_cut(text: str, profile: Profile) -> int | None:
    """Where '...the end of a paragraph.By Jane Roe' is cut into a paragraph and a byline
    (clean makes two lines of it), or None."""
    if "by" not in text and "By" not in text:  # few lines have it
        return None
    return next((end for end, start in _glue_points(text) if parse_byline(text[start:], profile) is not None), None)


def _is_upper_case(text: str) -> bool:
    if _ASCII_LOWER.search(text):  # decides most lines without a loop over their letters
        return False
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and all(ch.isupper() for ch in letters)


def _classify(line: Line, profile: Profile) -> _Classified:
    if line.role != "text":
        return _Classified(line, line.role)
    if profile.bio_label.match(line.text):
        return _Classified(line, "bio")
    if profile.heading_line and profile.heading_line.fullmatch(line.text):
        return _Classified(line, "heading")
    if _is_upper_case(line.text):  # an upper-case title ('KAZAKHSTAN: THE VOTE'), not a section
        return _Classified(line, "text")
    if (date_line := match_date_line(line.text, profile)) is not None:
        return _Classified(line, "date", date_line=date_line)
    if (byline := parse_byline(line.text, profile)) is not None:
        return _Classified(line, "byline" if byline.prefixed else "name", byline=byline)
    if section_heading(line.text, profile):
        return _Classified(line, "section")
    return _Classified(line, "text")


def _kind_at(lines: list[_Classified], i: int) -> str | None:
    return lines[i].kind if i < len(lines) else None


def _opens_article(lines: list[_Classified], j: int, after_complete: bool) -> bool:
    """Whether line j opens an article: a byline does; a bare name does when a date follows
    it, or text follows and no article is open or the open one is complete (has its bio)."""
    kind = _kind_at(lines, j)
    following = _kind_at(lines, j + 1)
    return kind == "byline" or (kind == "name" and (following == "date" or (following == "text" and after_complete)))


def _precedes_article(lines: list[_Classified], i: int, after_complete: bool) -> bool:
    """Whether an article opens right after line i, past the lines a listing prints above a
    byline: a date, a title, 'Published in ...'."""
    for j in range(i + 1, min(i + 2 + _MAX_HEADER_LINES, len(lines))):
        if _opens_article(lines, j, after_complete):
            return True
        header = lines[j].kind in ("category", "date") or (
            lines[j].kind in ("text", "name") and _looks_like_title(lines[j].line.text))
        if not header:
            return False
    return False


def _looks_like_title(text: str) -> bool:
    # the ending first, and no more words split than the limit: paragraphs are long
    return not text.endswith(_SENTENCE_END) and len(text.split(maxsplit=_MAX_TITLE_WORDS)) <= _MAX_TITLE_WORDS


def segment_lines(source_file: str, lines: list[Line], profile: Profile) -> tuple[list[Article], list[Removal]]:
    classified = [_classify(line, profile) for line in lines]
    dump_order = dump_date_order([c.byline.printed_date for c in classified
                                  if c.byline and isinstance(c.byline.printed_date, NumericDate)])
    drafts: list[_Draft] = []
    orphans: list[Removal] = []
    current: _Draft | None = None
    # Metadata printed before its article's byline: key -> (value, its own line or None)
    pending: dict[str, tuple[object, Line | None]] = {}

    def set_pending(key: str, value: object, source: Line | None) -> None:
        if key in pending and pending[key][1] is not None:  # a second one: the first was no header
            replaced = pending[key][1]
            orphans.append(Removal(source_file, replaced.no, "other", replaced.text))
        pending[key] = (value, source)

    for i, c in enumerate(classified):
        line, kind = c.line, c.kind
        complete = current is None or current.bio is not None
        if kind == "name" and not _opens_article(classified, i, complete):
            kind = "text"  # a bare name opens an article only where one can start
        if kind in ("byline", "name"):
            current = _Draft(authors=c.byline.authors, lines=[line.no])
            for key, (value, source) in pending.items():
                setattr(current, key, value)
                if source is not None:
                    current.lines.append(source.no)
            pending.clear()
            printed = c.byline.printed_date  # the byline's own date outweighs a date above it
            if isinstance(printed, NumericDate):
                printed = resolve_numeric_date(printed, profile.issue_weekday, dump_order)
            current.published_on = printed or current.published_on
            drafts.append(current)
        elif kind == "date" and current is not None and not current.has_text and not current.has_date_line:
            current.published_on, current.has_date_line = c.date_line.value, True
            current.lines.append(line.no)
        elif kind in ("date", "text") and _precedes_article(classified, i, complete) and (
                kind == "date" or _looks_like_title(line.text)):
            # a date or title printed just above the next byline belongs to that article
            set_pending("published_on" if kind == "date" else "title",
                        c.date_line.value if kind == "date" else line.text, line)
        elif kind in ("category", "title"):
            # 'Published in ...' and 'Read ...' follow the entry they belong to, unless it
            # already has one; then, and before the first entry, they wait for the next.
            if current is not None and getattr(current, kind) is None:
                setattr(current, kind, line.text)
            else:
                set_pending(kind, line.text, None)
        elif current is None:
            orphans.append(Removal(source_file, line.no, "other", line.text))
        elif kind == "bio":
            if current.bio is None:  # co-authors' bios may each carry the label
                current.bio = []
            bio_text = line.text[profile.bio_label.match(line.text).end():]
            if bio_text:
                current.add_text(line.no, bio_text)
            else:  # the label on a line of its own, above the bio: metadata, like a byline
                current.lines.append(line.no)
        elif kind == "heading" and current.bio is None:
            current.open_section(profile.heading_line.fullmatch(line.text).group("heading"), line.no)
        elif kind == "section" and current.bio is None:
            m = section_heading(line.text, profile)
            current.sections.append((m.group("heading"), []))
            current.add_text(line.no, line.text[m.end():], printed=line.text)
        else:
            current.add_text(line.no, line.text)
    orphans += [Removal(source_file, source.no, "other", source.text)  # for an article that never came
                for _, source in pending.values() if source is not None]
    articles = [d.finish(source_file, n) for n, d in enumerate(drafts, start=1)]
    return articles, orphans


def segment_dump(cleaned: CleanedDump, profile: Profile) -> SegmentedDump:
    articles, orphans = segment_lines(cleaned.dump.source_file, cleaned.lines, profile)
    return SegmentedDump(cleaned.dump, articles, cleaned.removed + orphans, cleaned.encoding)
