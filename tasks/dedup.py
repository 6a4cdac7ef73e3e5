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
import string
import unicodedata
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tasks.models import Article, SegmentedDump
from tasks.rust_regex import column_of

FINGERPRINT_WORDS = 400  # the opening of a text identifies it; the rest adds cost, not evidence
ID_WORDS = 64
SAME_ARTICLE_OVERLAP = 0.5
_PRIME = 1_000_003
# A non-negative int32: stored for every article (article_fingerprints), 4 bytes a shingle.
# Two different shingles of one author's texts share a hash once in about 2^31 / 400^2 pairs
# of texts: too rare to move an overlap of half the shingles.
_HASH_MASK = (1 << 31) - 1
_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
#: ASCII that is not a word character (\w), as white space: split() then gives \w+ runs
_ASCII_NON_WORD = str.maketrans({chr(c): " " for c in range(128) if not _WORD.fullmatch(chr(c))})


@cache
def _folded(ch: str) -> str:
    """What a non-ASCII character of a case-folded NFKD text is for splitting it in words:
    nothing for a combining mark (an accent of the letter before it), itself for a word
    character, a space for anything else (quotes and dashes, most of them)."""
    if unicodedata.combining(ch):
        return ""
    return ch if _WORD.fullmatch(ch) else " "


def _fold(text: str) -> str:
    """The text in lower case without accents, its non-ASCII characters that are not word
    characters as spaces: its words are then its runs of ASCII word characters and non-ASCII
    characters. The few distinct non-ASCII characters of a text are replaced one by one."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKD", text.casefold())
    for ch in set(_NON_ASCII.findall(text)):
        text = text.replace(ch, _folded(ch))
    return text


def normal_words(text: str) -> list[str]:
    """Lower-case words (runs of word characters) without accents: 'Ivanović' and 'Ivanovic'
    are one name. Splitting ASCII at its non-word characters is twice as fast as finding the
    words in it, and most folded texts are ASCII."""
    folded = _fold(text)
    return folded.translate(_ASCII_NON_WORD).split() if folded.isascii() else _WORD.findall(folded)


#: the bytes of a folded text's UTF-8 that belong to its words: ASCII word characters, and
#: every byte of a non-ASCII character (all of those a folded text keeps are word characters)
_WORD_BYTES = np.array([b >= 0x80 or bool(_WORD.fullmatch(chr(b))) for b in range(256)])
_SPACE_BYTE = np.uint8(ord(" "))


def _fold_all(texts: list[str]) -> pa.LargeStringArray:
    """_fold of every text, as one column. Folding maps each character on its own (case folding
    has no context, and NFKD reorders only combining marks, which folding drops), so _fold
    folds each distinct character of the texts once, and one pass replaces them all."""
    column = column_of(texts)
    if column is None:
        return pa.array([_fold(t) for t in texts], pa.large_string())
    distinct = column.str.extract_all("[^\\x00-\\x7f]").explode().drop_nulls().unique().to_list()
    characters = [*string.ascii_uppercase, *distinct]
    return column.str.replace_many(characters, [_fold(ch) for ch in characters]).to_arrow().cast(pa.large_string())


def _opening(text: str, limit: int) -> str:
    """The text up to the first white space from `limit` on: words never span white space,
    and folding never moves a character across it, so the opening's words are the text's."""
    space = _SPACE.search(text, limit) if limit < len(text) else None
    return text if space is None else text[:space.start()]


def _offsets(owner: np.ndarray, lists: int) -> pa.Array:
    """The offsets of a list column of `lists` lists whose values belong, in order, to the
    lists numbered in `owner`."""
    offsets = np.zeros(lists + 1, np.int32)
    np.cumsum(np.bincount(owner, minlength=lists), out=offsets[1:])
    return pa.array(offsets)


def _words(texts: list[str], count: int) -> pa.ListArray:
    """The first `count` normal_words of each text, as one list column: the texts folded, their
    words found in their UTF-8 bytes and split, all texts at once, by Arrow."""
    folded = _fold_all(texts)
    if len(folded) == 0 or folded.buffers()[2] is None:  # no text, or only empty ones
        return pa.array([[] for _ in texts], pa.list_(pa.string()))
    data = np.frombuffer(folded.buffers()[2], np.uint8)
    spaced = pa.py_buffer(np.where(_WORD_BYTES[data], data, _SPACE_BYTE))
    pieces = pc.split_pattern(pa.LargeStringArray.from_buffers(len(folded), folded.buffers()[1], spaced,
                                                               offset=folded.offset), " ")
    flat, owner = pc.list_flatten(pieces), pc.list_parent_indices(pieces).to_numpy()
    is_word = (pc.binary_length(flat).to_numpy() > 0)
    owner = owner[is_word]
    starts = _offsets(owner, len(texts)).to_numpy()
    wanted = np.arange(len(owner)) - starts[owner] < count
    words = flat.filter(pa.array(is_word)).filter(pa.array(wanted)).cast(pa.string())
    return pa.ListArray.from_arrays(_offsets(owner[wanted], len(texts)), words)


def opening_words(texts: Sequence[str], count: int) -> pa.ListArray:
    """normal_words of each text's opening: its first `count` (all, if it has fewer), as one
    list column. The opening is cut at about 8 characters a word (a word and its space are
    6 on average); the rare text whose opening holds fewer words is read whole."""
    texts = list(texts)
    openings = [_opening(t, 8 * count) for t in texts]
    words = _words(openings, count)
    short = [i for i, (t, opening, n) in enumerate(zip(texts, openings, pc.list_value_length(words).to_pylist()))
             if n < count and len(opening) < len(t)]
    if not short:
        return words
    whole = _words([texts[i] for i in short], count)
    index = np.arange(len(texts))
    index[short] = len(texts) + np.arange(len(short))
    return pa.concat_arrays([words, whole]).take(pa.array(index))


def author_key(authors: Iterable[str]) -> str:
    return "|".join(sorted(" ".join(normal_words(a)) for a in authors))


def shingle_hashes(words: pa.ListArray) -> pa.ListArray:
    """The sorted distinct hashes of each list's word 4-grams, as one list column of int32.

    A shingle's hash combines its words' CRC-32s, computed once for each distinct word of the
    column. CRC-32 is the same in every process and version, so stored fingerprints stay
    comparable. The arithmetic wraps at 64 bits, which keeps the low 31 bits of the exact
    product; a text's hashes are sorted as one array with the text's number above them."""
    flat = pc.list_flatten(words).dictionary_encode()
    owner = pc.list_parent_indices(words).to_numpy().astype(np.int64)
    crcs = np.fromiter((zlib.crc32(w.encode()) for w in flat.dictionary.to_pylist()), np.uint64,
                       len(flat.dictionary))[flat.indices.to_numpy()]
    prime = np.uint64(_PRIME)
    hashes = ((crcs[:-3] * prime + crcs[1:-2]) * prime + crcs[2:-1]) * prime + crcs[3:]
    in_one_text = owner[:-3] == owner[3:]
    keyed = np.sort((owner[:-3][in_one_text] << 31) | (hashes[in_one_text] & np.uint64(_HASH_MASK)).astype(np.int64))
    keyed = keyed[np.concatenate([[True], keyed[1:] != keyed[:-1]])] if len(keyed) else keyed
    return pa.ListArray.from_arrays(_offsets(keyed >> 31, len(words)), pa.array((keyed & _HASH_MASK).astype(np.int32)))


def _article_id(article: Article, basis: str) -> str:
    """The id of an article whose text opens with the words `basis` (joined by spaces)."""
    if not basis:  # a teaser with no text: its date and title are all that tell it apart
        basis = f"{article.published_on}|{article.title or ''}"
    return hashlib.sha256(f"{author_key(article.authors)}\x1f{basis}".encode()).hexdigest()[:16]


def fingerprints_of(texts: Sequence[str]) -> pa.ListArray:
    """The hashes of the word 4-grams of each text's opening FINGERPRINT_WORDS words."""
    return shingle_hashes(opening_words(texts, FINGERPRINT_WORDS))


def fingerprint_of(text: str) -> frozenset[int]:
    return frozenset(fingerprints_of([text])[0].as_py())


def fingerprint(article: Article) -> frozenset[int]:
    return fingerprint_of(article.body)


@dataclass(frozen=True)
class Placements:
    """What placing articles takes, computed for many at once: the id each one gets if it is a
    new article, and its fingerprint (list<int32>, a row per article)."""

    ids: list[str]
    fingerprints: pa.ListArray


def placements(articles: Sequence[Article]) -> Placements:
    words = opening_words([a.body for a in articles], FINGERPRINT_WORDS)
    bases = pc.binary_join(pc.list_slice(words, 0, ID_WORDS), " ").to_pylist()
    return Placements([_article_id(a, basis) for a, basis in zip(articles, bases)], shingle_hashes(words))


def article_id(article: Article) -> str:
    return placements([article]).ids[0]


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
    #: article_id -> text_row of the candidate whose texts a row of `articles` is written
    #: with, when that candidate has one; a stored article that took no text has none
    text_rows: dict[str, int] = field(default_factory=dict)


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
    #: where the occurrence's texts (lede, body, sections) are kept, when its article was
    #: read without them (dedup decides on everything else)
    text_row: int | None = None


def _written_with(result: DedupResult, article_id: str, cand: Candidate) -> None:
    """The article is written with the candidate's text: its fingerprint, and its texts' row."""
    result.fingerprints[article_id] = cand.fingerprint
    if cand.text_row is not None:
        result.text_rows[article_id] = cand.text_row


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
            _written_with(result, match.article_id, cand)
        else:
            takes_text = match.kind == "teaser" and occ.kind == "full"
            if absorb(match, occ):
                touched[match.article_id] = match
                if takes_text:
                    _written_with(result, match.article_id, cand)
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
    occurring = [(dump.dump.sha256, article) for dump in dumps for article in dump.articles]
    placed = placements([article for _, article in occurring])
    for (sha256, article), new_id, hashes in zip(occurring, placed.ids, placed.fingerprints.to_pylist()):
        groups[author_key(article.authors)].append(Candidate(article, sha256, frozenset(hashes), new_id))
    known_by_key: dict[str, list[tuple[Article, frozenset[int]]]] = defaultdict(list)
    stored = known(set(groups))
    for article, hashes in zip(stored, fingerprints_of([a.body for a in stored]).to_pylist()):
        known_by_key[author_key(article.authors)].append((article, frozenset(hashes)))
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
