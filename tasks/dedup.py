"""Dedup: one article row however many dumps print it.

Two occurrences are the same article when they have the same authors and their texts
overlap: the word 4-grams of the shorter text (a teaser's lede, or a copy with a stray
caption line or markup) mostly occur in the longer one. Different articles by one author
share almost no 4-grams; bios are left out of the comparison because an author's bio
recurs under all of their articles.

An article keeps the id it was first given, in this run or an earlier one; the id is a
hash of its authors and the opening words of its text. Later occurrences only fill what
the article row lacks (date, title, category; the full text of a teaser).

An article's fingerprint is computed once, from the text it is written with, and stored
beside it (article_fingerprints): a later run compares its new occurrences with the stored
fingerprints and reads no stored text but that of the articles it rewrites.
"""
from __future__ import annotations

import copy
import hashlib
import re
import unicodedata
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tasks.models import Article, SegmentedDump

SHINGLE_WORDS = 4
FINGERPRINT_WORDS = 400  # the opening of a text identifies it; the rest adds cost, not evidence
ID_WORDS = 64
SAME_ARTICLE_OVERLAP = 0.5
_PRIME = 1_000_003
# A non-negative int32: stored for every article (article_fingerprints), 4 bytes a shingle.
# Two different shingles of one author's texts share a hash once in about 2^31 / 400^2 pairs
# of texts: too rare to move an overlap of half the shingles.
_HASH_MASK = (1 << 31) - 1
_WORD = re.compile(r"\w+")


class _CombiningMarks(dict):
    """A str.translate table that deletes every combining mark, filled in as characters are
    met: a corpus uses a few hundred of the 1.1 million code points."""

    def __missing__(self, code_point: int) -> int | None:
        kept = None if unicodedata.combining(chr(code_point)) else code_point
        self[code_point] = kept
        return kept


_COMBINING_MARKS = _CombiningMarks()


def normal_words(text: str) -> list[str]:
    """Lower-case words without accents: 'Ivanović' and 'Ivanovic' are one name."""
    if text.isascii():  # nothing to fold but case; most text is
        return _WORD.findall(text.lower())
    return _WORD.findall(unicodedata.normalize("NFKD", text.casefold()).translate(_COMBINING_MARKS))


def author_key(authors: Iterable[str]) -> str:
    return "|".join(sorted(" ".join(normal_words(a)) for a in authors))


def _fingerprint(words: list[str]) -> frozenset[int]:
    # A shingle's hash combines its words' CRCs: one C call per word, not per shingle. CRC-32
    # is the same in every process and version, so stored fingerprints stay comparable.
    crcs = [zlib.crc32(w.encode()) for w in words[:FINGERPRINT_WORDS]]
    return frozenset((((a * _PRIME + b) * _PRIME + c) * _PRIME + d) & _HASH_MASK
                     for a, b, c, d in zip(crcs, crcs[1:], crcs[2:], crcs[3:]))


def _article_id(article: Article, words: list[str]) -> str:
    if words:
        basis = " ".join(words[:ID_WORDS])
    else:  # a teaser with no text: its date and title are all that tell it apart
        basis = f"{article.published_on}|{article.title or ''}"
    return hashlib.sha256(f"{author_key(article.authors)}\x1f{basis}".encode()).hexdigest()[:16]


def fingerprint_of(text: str) -> frozenset[int]:
    """The hashes of the word 4-grams of the text's opening FINGERPRINT_WORDS words."""
    return _fingerprint(normal_words(text))


def fingerprint(article: Article) -> frozenset[int]:
    return fingerprint_of(article.body)


def article_id(article: Article) -> str:
    return _article_id(article, normal_words(article.body))


def same_article(a: Article, fa: frozenset[int], b: Article, fb: frozenset[int]) -> bool:
    if not fa or not fb:
        return not fa and not fb and a.published_on == b.published_on and a.title == b.title
    return len(fa & fb) >= SAME_ARTICLE_OVERLAP * min(len(fa), len(fb))


def absorb(canonical: Article, occurrence: Article) -> bool:
    """Fill what the canonical row lacks from another occurrence; True when it changed.

    A changed row takes the occurrence's source_file and ordinal: that dump is the one
    to blame if the new version fails a check."""
    changed = False
    for name in ("published_on", "title", "category", "bio"):
        if getattr(canonical, name) is None and getattr(occurrence, name) is not None:
            setattr(canonical, name, getattr(occurrence, name))
            changed = True
    if canonical.kind == "teaser" and occurrence.kind == "full":
        for name in ("kind", "lede", "body", "sections", "word_count"):
            setattr(canonical, name, getattr(occurrence, name))
        changed = True
    if changed:
        canonical.source_file, canonical.ordinal = occurrence.source_file, occurrence.ordinal
    return changed


@dataclass(frozen=True)
class Occurrence:
    article_id: str
    source_file: str
    ordinal: int
    source_sha256: str


@dataclass
class DedupResult:
    #: article rows to write: new ones and known ones that gained something
    articles: list[Article] = field(default_factory=list)
    occurrences: list[Occurrence] = field(default_factory=list)
    new_ids: set[str] = field(default_factory=set)
    updated_ids: set[str] = field(default_factory=set)
    #: article_id -> fingerprint of the text each row of `articles` is written with
    fingerprints: dict[str, frozenset[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    """An occurrence to place (source_file and ordinal set), with what placing it needs:
    its fingerprint and the id it gets if it is a new article. known_matches: the known
    articles (ids) the warehouse found it the same as, when the warehouse compared its
    fingerprint with theirs (None: compare here)."""

    article: Article
    source_sha256: str
    fingerprint: frozenset[int]
    new_id: str
    known_matches: frozenset[str] | None = None


def candidate(article: Article, source_sha256: str) -> Candidate:
    words = normal_words(article.body)
    return Candidate(article, source_sha256, _fingerprint(words), _article_id(article, words))


def dedup_author(known: list[tuple[Article, frozenset[int]]], candidates: Iterable[Candidate]) -> DedupResult:
    """Give an id to every occurrence of one author key, in order, among that author's
    known articles (article_id set), each with its stored fingerprint."""
    pool = list(known)
    stored = {article.article_id: fp for article, fp in known}
    result = DedupResult()
    touched: dict[str, Article] = {}
    for cand in candidates:
        occ, fp = cand.article, cand.fingerprint

        def same(c: Article, fc: frozenset[int]) -> bool:
            if cand.known_matches is not None and fp and fc and c.article_id in stored:
                return c.article_id in cand.known_matches  # compared in the warehouse
            return same_article(occ, fp, c, fc)

        match = next((c for c, fc in pool if same(c, fc)), None)
        if match is None:
            match = copy.copy(occ)
            match.article_id = cand.new_id
            pool.append((match, fp))
            result.new_ids.add(match.article_id)
            touched[match.article_id] = match
            result.fingerprints[match.article_id] = fp
        else:
            takes_text = match.kind == "teaser" and occ.kind == "full"
            if absorb(match, occ):
                touched[match.article_id] = match
                if takes_text:
                    result.fingerprints[match.article_id] = fp
                else:
                    result.fingerprints.setdefault(match.article_id, stored.get(match.article_id, fp))
                if match.article_id not in result.new_ids:
                    result.updated_ids.add(match.article_id)
        occ.article_id = match.article_id
        result.occurrences.append(Occurrence(match.article_id, occ.source_file, occ.ordinal, cand.source_sha256))
    result.articles = list(touched.values())
    return result


#: known(keys): the stored articles (article_id set) whose author_key is in keys, in memory
KnownByKeys = Callable[[set[str]], list[Article]]


def deduplicate(dumps: list[SegmentedDump], known: KnownByKeys) -> DedupResult:
    """dedup_author for every author key of `dumps`, in memory; `known` returns the
    warehouse's articles (article_id set) whose author_key is in the given set.
    Occurrences come back in the order of the dumps."""
    groups: dict[str, list[Candidate]] = defaultdict(list)
    for dump in dumps:
        for article in dump.articles:
            groups[author_key(article.authors)].append(candidate(article, dump.dump.sha256))
    known_by_key: dict[str, list[tuple[Article, frozenset[int]]]] = defaultdict(list)
    for article in known(set(groups)):
        known_by_key[author_key(article.authors)].append((article, fingerprint(article)))
    result = DedupResult()
    for key, candidates in groups.items():
        part = dedup_author(known_by_key[key], candidates)
        result.articles += part.articles
        result.occurrences += part.occurrences
        result.new_ids |= part.new_ids
        result.updated_ids |= part.updated_ids
        result.fingerprints |= part.fingerprints
    order = {(d.dump.source_file, a.ordinal): n for n, d in enumerate(dumps) for a in d.articles}
    result.occurrences.sort(key=lambda o: order[(o.source_file, o.ordinal)])
    return result
