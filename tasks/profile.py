"""Site profiles: the data that says how one publication prints its pages.

A profile is a TOML file (gleaner/profiles/<name>.toml); this module only reads and
compiles it, so that describing a new site needs a file, not code.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import soupsieve

from tasks.models import REMOVED_CATEGORIES

PROFILES_DIR = Path(__file__).resolve().parents[1] / "gleaner" / "profiles"
DEFAULT_PROFILE = "caci"
# strptime formats of printed dates, read with commas and full stops as spaces and
# ordinal suffixes cut ('November 16th, 2015' -> 'November 16 2015')
DEFAULT_DATE_FORMATS = ("%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %Y", "%A %d %B %Y", "%Y-%m-%d")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class ProfileError(ValueError):
    """A profile file that cannot be used, with the file and the reason."""


@dataclass(frozen=True)
class BoilerplateRule:
    category: str
    lines: frozenset[str]
    patterns: tuple[re.Pattern[str], ...]
    fragments: tuple[re.Pattern[str], ...]

    def matches_line(self, line: str) -> bool:
        return line in self.lines or any(p.fullmatch(line) for p in self.patterns)


def _join_patterns(tagged: list[tuple[re.Pattern[str], int]]) -> tuple[tuple[re.Pattern[str], tuple[int, ...]], ...]:
    """Patterns, each with a tag, joined in their order into as few alternations as keep
    their meaning, for fullmatch: one call tries them all. Each comes with the tags of its
    alternatives; the alternative that matched is m.lastindex - 1, unless the pattern stands
    alone (one tag), for a pattern's own groups or global flags would mean something else
    inside an alternation."""
    runs: list[tuple[list[re.Pattern[str]], list[int]]] = []
    joinable = False  # whether the last run takes the next pattern
    for pattern, tag in tagged:
        alone = bool(pattern.groups) or pattern.flags != re.UNICODE
        if alone or not joinable:
            runs.append(([], []))
        runs[-1][0].append(pattern)
        runs[-1][1].append(tag)
        joinable = not alone
    return tuple(
        (patterns[0] if len(patterns) == 1 else re.compile("|".join(f"({p.pattern})" for p in patterns)),
         tuple(tags))
        for patterns, tags in runs)


@dataclass(frozen=True)
class Boilerplate:
    """The boilerplate rules compiled for speed, for they are asked of every line of every
    dump: the exact lines in one dict, the patterns joined, the fragments in one list."""

    categories: tuple[str, ...]  # of the rules, in order
    listed: dict[str, int]  # line -> the first rule that lists it
    patterns: tuple[tuple[re.Pattern[str], tuple[int, ...]], ...]  # joined, tagged with their rules
    fragments: tuple[tuple[str, re.Pattern[str]], ...]  # (category, pattern), in the order they are cut

    @classmethod
    def of(cls, rules: tuple[BoilerplateRule, ...]) -> Boilerplate:
        listed: dict[str, int] = {}
        for i, rule in enumerate(rules):
            for line in rule.lines:
                listed.setdefault(line, i)
        return cls(
            categories=tuple(rule.category for rule in rules),
            listed=listed,
            patterns=_join_patterns([(p, i) for i, rule in enumerate(rules) for p in rule.patterns]),
            fragments=tuple((rule.category, p) for rule in rules for p in rule.fragments),
        )

    def line_category(self, line: str) -> str | None:
        """The category of the first rule that removes the line whole, or None."""
        first = self.listed.get(line)
        for pattern, rules in self.patterns:
            if first is not None and rules[0] > first:
                break
            if m := pattern.fullmatch(line):
                found = rules[0] if len(rules) == 1 else rules[m.lastindex - 1]
                first = found if first is None else min(first, found)
                break
        return None if first is None else self.categories[first]

    def has_fragment(self, text: str) -> bool:
        # not joined: an alternation would lose the quick scan for each one's literal start
        return any(p.search(text) for _, p in self.fragments)


@dataclass(frozen=True)
class HtmlRule:
    """Elements of an HTML page removed before its text is read, logged with category.

    text, when set, must match the element's whole text (white space folded); leftover
    is what the removal may leave alone on its line (a label such as 'Email:'), which
    then goes with it."""

    selector: str
    category: str
    text: re.Pattern[str] | None = None
    leftover: re.Pattern[str] | None = None


@dataclass(frozen=True)
class HtmlProfile:
    remove: tuple[HtmlRule, ...] = ()
    blocks: tuple[str, ...] = ()  # inline elements the site shows on a line of their own


@dataclass(frozen=True)
class Profile:
    name: str
    publication: str
    boilerplate: tuple[BoilerplateRule, ...]
    category_line: re.Pattern[str]
    title_line: re.Pattern[str]
    byline_prefix: re.Pattern[str]
    byline_date: re.Pattern[str] | None
    no_author: frozenset[str]
    author_separator: re.Pattern[str]
    name_particles: frozenset[str]
    not_name_words: frozenset[str]
    max_name_words: int
    section_heading: re.Pattern[str]
    heading_line: re.Pattern[str] | None
    bio_label: re.Pattern[str]
    date_lines: tuple[re.Pattern[str], ...]
    date_formats: tuple[str, ...]
    issue_weekday: int | None  # 0 = Monday
    html: HtmlProfile = HtmlProfile()  # last: profiles without [html] still load

    @cached_property
    def compiled_boilerplate(self) -> Boilerplate:
        return Boilerplate.of(self.boilerplate)


def _compile(source: Path, where: str, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ProfileError(f"{source}: {where}: bad regular expression {pattern!r}: {exc}") from exc


def _weekday(source: Path, name: str | None) -> int | None:
    if name is None:
        return None
    if name not in WEEKDAYS:
        raise ProfileError(f"{source}: dates.issue_weekday: {name!r} is not a weekday")
    return WEEKDAYS.index(name)


def _selector(source: Path, where: str, selector: str) -> str:
    try:
        soupsieve.compile(selector)
    except soupsieve.SelectorSyntaxError as exc:
        raise ProfileError(f"{source}: {where}: bad CSS selector {selector!r}: {exc}") from exc
    return selector


def _category(source: Path, where: str, category: str) -> str:
    if category not in REMOVED_CATEGORIES:
        raise ProfileError(f"{source}: {where}: unknown category {category!r}")
    return category


def parse_html(source: Path, data: dict) -> HtmlProfile:
    """The [html] table: [[html.remove]] rules and the blocks list."""
    rules = []
    for i, rule in enumerate(data.get("remove", [])):
        where = f"html.remove[{i}]"
        rules.append(HtmlRule(
            selector=_selector(source, where, rule["selector"]),
            category=_category(source, where, rule["category"]),
            text=_compile(source, where, rule["text"]) if "text" in rule else None,
            leftover=_compile(source, where, rule["leftover"]) if "leftover" in rule else None,
        ))
    blocks = tuple(_selector(source, "html.blocks", s) for s in data.get("blocks", []))
    return HtmlProfile(tuple(rules), blocks)


def parse_profile(source: Path, data: dict) -> Profile:
    """Compile the profile's rules; every mistake names the file and the rule."""
    try:
        rules = []
        for i, rule in enumerate(data.get("boilerplate", [])):
            where = f"boilerplate[{i}]"
            rules.append(BoilerplateRule(
                category=_category(source, where, rule["category"]),
                lines=frozenset(rule.get("lines", [])),
                patterns=tuple(_compile(source, where, p) for p in rule.get("patterns", [])),
                fragments=tuple(_compile(source, where, p) for p in rule.get("fragments", [])),
            ))
        meta, seg, dates = data["metadata"], data["segment"], data["dates"]
        return Profile(
            name=data["name"],
            publication=data["publication"],
            boilerplate=tuple(rules),
            category_line=_compile(source, "metadata.category_line", meta["category_line"]),
            title_line=_compile(source, "metadata.title_line", meta["title_line"]),
            byline_prefix=_compile(source, "segment.byline_prefix", seg["byline_prefix"]),
            byline_date=(_compile(source, "segment.byline_date", seg["byline_date"])
                         if "byline_date" in seg else None),
            no_author=frozenset(seg.get("no_author", [])),
            author_separator=_compile(source, "segment.author_separators",
                                      "|".join(f"(?:{s})" for s in seg["author_separators"])),
            name_particles=frozenset(seg.get("name_particles", [])),
            not_name_words=frozenset(seg.get("not_name_words", [])),
            max_name_words=int(seg.get("max_name_words", 5)),
            section_heading=_compile(source, "segment.section_heading", seg["section_heading"]),
            heading_line=(_compile(source, "segment.heading_line", seg["heading_line"])
                          if "heading_line" in seg else None),
            bio_label=_compile(source, "segment.bio_label", seg["bio_label"]),
            date_lines=tuple(_compile(source, "dates.line_patterns", p) for p in dates["line_patterns"]),
            date_formats=tuple(dates.get("formats", DEFAULT_DATE_FORMATS)),
            issue_weekday=_weekday(source, dates.get("issue_weekday")),
            html=parse_html(source, data.get("html", {})),
        )
    except KeyError as exc:
        raise ProfileError(f"{source}: missing setting {exc.args[0]!r}") from exc


@cache
def load_profile(name_or_path: str = DEFAULT_PROFILE) -> Profile:
    """A bundled profile by name ('caci') or any profile file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILES_DIR / f"{name_or_path}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read the profile: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from exc
    return parse_profile(path, data)
