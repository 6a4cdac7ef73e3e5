"""The records that flow between the steps.

Every step takes the previous step's records and returns new ones; none of them knows
about Prefect, Great Expectations or DuckDB.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

#: removed_text categories of the warehouse contract.
REMOVED_CATEGORIES = (
    "newsletter_footer",
    "navigation",
    "image_caption",
    "email_protection",
    "category_label",
    "title_link",
    "other",
)


@dataclass(frozen=True, slots=True)
class Dump:
    """A raw dump file found below --raw."""

    source_file: str  # path relative to --raw, with '/' separators
    path: Path
    sha256: str
    bytes: int
    format: str  # 'txt', 'html', 'txt.gz' or 'html.gz'
    modified_ns: int | None = None  # the file's modification time (st_mtime_ns) when found


@dataclass(frozen=True, slots=True)
class Removal:
    """A line or fragment taken out of a dump, and why."""

    source_file: str
    line_no: int  # 1-based line of the extracted text
    category: str  # one of REMOVED_CATEGORIES
    text: str


@dataclass(slots=True)
class ExtractedDump:
    """A dump decoded to text lines: lines[i] is line i + 1 of the dump.

    removed holds what extraction itself took out (HTML navigation, captions, widgets),
    with the line of the extracted text where it stood."""

    dump: Dump
    lines: list[str]
    encoding: str
    replacement_chars: int = 0
    removed: list[Removal] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Line:
    """A non-blank line that survived cleaning.

    role is 'text' for readable text; 'category' and 'title' mark lines the cleaner removed
    as boilerplate ('Published in ...', 'Read ...') whose value the segmenter still uses.
    """

    no: int
    text: str
    role: str = "text"


@dataclass(slots=True)
class CleanedDump:
    dump: Dump
    lines: list[Line]
    removed: list[Removal]
    encoding: str


@dataclass(frozen=True, slots=True)
class Section:
    heading: str
    text: str


@dataclass(slots=True)
class Article:
    """One occurrence of an article in one dump."""

    source_file: str
    ordinal: int  # 1 = first article of its dump
    kind: str  # 'full' or 'teaser'
    authors: list[str]
    published_on: date | None
    title: str | None
    category: str | None
    lede: str
    body: str
    sections: list[Section]
    bio: str | None
    word_count: int
    # Where each line of the dump went, for the conservation check.
    content_lines: list[int] = field(default_factory=list)
    bio_lines: list[int] = field(default_factory=list)
    metadata_lines: list[int] = field(default_factory=list)
    article_id: str | None = None  # set by dedup


@dataclass(slots=True)
class SegmentedDump:
    dump: Dump
    articles: list[Article]
    removed: list[Removal]
    encoding: str


@dataclass(frozen=True, slots=True)
class Quarantine:
    """A dump refused by a step or a gate, with a reason a person understands."""

    dump: Dump
    step: str
    reason: str
