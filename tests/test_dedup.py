from __future__ import annotations

import copy
import random
import re
import unicodedata
from datetime import date
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tasks.dedup import article_id, author_key, deduplicate
from tasks.models import Article, Dump, Section, SegmentedDump

VOCABULARY = ("Russia formally recognised the Taliban government in July after years of cautious contacts "
              "and the decision reshapes security calculus every Central Asian capital that borders "
              "Afghanistan while Moscow hopes to gain leverage over trade routes counter terrorism "
              "Kazakhstan Uzbekistan Tajikistan pipeline railway corridor summit minister president").split()


def text(seed: int, n: int = 120) -> str:
    """A different plausible text for every seed: words drawn from one shared vocabulary."""
    return " ".join(random.Random(seed).choices(VOCABULARY, k=n))


def art(body: str, authors=("Umair Jamal",), kind="full", bio="Umair Jamal is an analyst.", **kw) -> Article:
    return Article(source_file="", ordinal=0, kind=kind, authors=list(authors), published_on=kw.get("published_on"),
                   title=kw.get("title"), category=kw.get("category"), lede=body.split("\n\n")[0], body=body,
                   sections=[Section("BACKGROUND", body)] if kind == "full" else [], bio=bio if kind == "full" else None,
                   word_count=len(body.split()))


def dump(name: str, *articles: Article) -> SegmentedDump:
    d = Dump(name, Path(name), f"sha-{name}", 100, "txt")
    arts = []
    for n, a in enumerate(articles, start=1):
        a = copy.deepcopy(a)
        a.source_file, a.ordinal = name, n
        arts.append(a)
    return SegmentedDump(d, arts, [], "utf-8")


def nothing_known(keys):
    return []


def test_one_article_in_two_dumps_is_one_row_with_two_occurrences():
    a = art(text(1))
    result = deduplicate([dump("a.txt", a), dump("b.txt", a)], nothing_known)
    assert len(result.articles) == 1
    assert [(o.source_file, o.ordinal) for o in result.occurrences] == [("a.txt", 1), ("b.txt", 1)]
    assert len({o.article_id for o in result.occurrences}) == 1


def test_small_differences_do_not_split_an_article():
    body = text(2)
    words = body.split()
    words[40] = f"<b>{words[40]}</b>"
    stray = "Credit: Wikimedia Commons\n\n" + " ".join(words)
    result = deduplicate([dump("a.txt", art(body)), dump("b.txt", art(stray))], nothing_known)
    assert len(result.articles) == 1


def test_different_articles_by_one_author_sharing_a_bio_stay_apart():
    result = deduplicate([dump("a.txt", art(text(3)), art(text(4)))], nothing_known)
    assert len(result.articles) == 2
    assert len({o.article_id for o in result.occurrences}) == 2


def test_the_same_text_under_other_authors_is_another_article():
    body = text(5)
    result = deduplicate([dump("a.txt", art(body), art(body, authors=["Jane Roe"]))], nothing_known)
    assert len(result.articles) == 2


def test_a_teaser_and_its_full_article_are_one_article_and_the_full_text_wins():
    body = text(6, 300)
    teaser = art(" ".join(body.split()[:80]), kind="teaser", title="The Taliban and Moscow",
                 published_on=date(2025, 7, 10))
    result = deduplicate([dump("list.txt", teaser), dump("full.txt", art(body, category="Analytical Articles"))],
                         nothing_known)
    [row] = result.articles
    assert (row.kind, row.body, row.title, row.published_on, row.category) == (
        "full", body, "The Taliban and Moscow", date(2025, 7, 10), "Analytical Articles")


def test_teasers_without_text_are_told_apart_by_date():
    a = art("", kind="teaser", published_on=date(2022, 2, 15))
    b = art("", kind="teaser", published_on=date(2022, 3, 1))
    result = deduplicate([dump("a.txt", a, b), dump("b.txt", a)], nothing_known)
    assert len(result.articles) == 2
    assert result.occurrences[0].article_id == result.occurrences[2].article_id


def test_ids_are_stable_across_runs_through_the_warehouse():
    first = deduplicate([dump("a.txt", art(text(7)))], nothing_known)
    stored = first.articles

    def known(keys):
        return [a for a in stored if author_key(a.authors) in keys]

    second = deduplicate([dump("b.txt", art(text(7) + " one more closing sentence"))], known)
    assert second.occurrences[0].article_id == first.occurrences[0].article_id
    assert second.new_ids == set() and second.articles == []
    assert first.occurrences[0].article_id == article_id(art(text(7)))


def test_a_known_article_that_gains_a_category_is_returned_as_updated():
    first = deduplicate([dump("a.txt", art(text(8)))], nothing_known)
    second = deduplicate([dump("b.txt", art(text(8), category="Analytical Articles"))],
                         lambda keys: first.articles)
    assert second.updated_ids == {first.occurrences[0].article_id}
    assert second.articles[0].category == "Analytical Articles"


def test_author_key_ignores_case_accents_and_order():
    assert author_key(["Aleksandar Ivanović", "Jane Roe"]) == author_key(["jane roe", "Aleksandar Ivanovic"])


def test_words_are_folded_alike_whether_or_not_the_text_is_ascii():
    from tasks.dedup import normal_words

    assert normal_words("Aleksandar Ivanović, ÉCOLE-café ﬁnal") == ["aleksandar", "ivanovic", "ecole", "cafe", "final"]
    assert normal_words("Aleksandar Ivanovic, ECOLE-cafe final") == ["aleksandar", "ivanovic", "ecole", "cafe", "final"]
    assert author_key(["Aleksandar Ivanović"]) == author_key(["aleksandar IVANOVIC"])


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
@example("\u201cRussia\u2019s\u201d \u2013 \u00fcber \u0413\u0440\u0443\u0437\u0438\u044f \u10dc\u10d8\u10dc\u10dd")
@example("Stra\u00dfe \u0130stanbul \u01c5emal x\u00b2y \u00bd \u2167 \u0661\u0662 a\u0301b \x1c\x1fa\x85b_c \ufb00")
def test_words_are_the_word_character_runs_of_the_folded_text(sample):
    """normal_words splits most texts without a regex; it finds the same words as one run
    over the case-folded NFKD text with its combining marks removed."""
    from tasks.dedup import normal_words

    folded = "".join(ch for ch in unicodedata.normalize("NFKD", sample.casefold()) if not unicodedata.combining(ch))
    expected = re.findall(r"\w+", sample.lower() if sample.isascii() else folded)
    assert normal_words(sample) == expected


def _reference_fingerprint(text: str) -> list[int]:
    """The fingerprint by its definition, word by word: the CRC-32s of the first 400 normal
    words combined over each run of 4 (64-bit arithmetic), the low 31 bits, sorted, distinct."""
    import zlib

    from tasks.dedup import normal_words

    crcs = [zlib.crc32(word.encode()) for word in normal_words(text)[:400]]
    mask64, prime = (1 << 64) - 1, 1_000_003
    return sorted({((((a * prime + b) * prime + c) * prime + d) & mask64) & ((1 << 31) - 1)
                   for a, b, c, d in zip(crcs, crcs[1:], crcs[2:], crcs[3:])})


TEXT_PIECES = st.sampled_from(["Russia", "Tbilisi", "Грузия", "Ivanović", "ﬁnal", "Straße", "a\u0301", "x²", "½",
                               "’", "“", "—", " ", "  ", "\u00a0", "\t", "\n", "\x1c", ".", ",", "-", "_", "42",
                               "ℌ", "ΣΑΣ", "ς", "e\u0301\u0323", "İ", "ǅ", "\uac00",
                               "word " * 300, "z" * 3300])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
                | st.lists(TEXT_PIECES, max_size=60).map("".join), max_size=8))
@example(["", "one two three", "word " * 1000, "x" * 3201 + " a b c d e", "\u00a0 a b\u00a0c d é"])
def test_the_batch_finds_each_texts_opening_words_and_fingerprint(texts):
    """opening_words and fingerprints_of do all texts of a batch at once (each distinct
    character folded once, the words found in the UTF-8 bytes by Arrow); each text gets what
    normal_words and the fingerprint's definition give it."""
    from tasks.dedup import fingerprints_of, normal_words, opening_words

    assert opening_words(texts, 64).to_pylist() == [normal_words(t)[:64] for t in texts]
    assert fingerprints_of(texts).to_pylist() == [_reference_fingerprint(t) for t in texts]


def test_the_warehouse_finds_the_same_stored_copies_as_same_article(tmp_path):
    """StoredArticles.matches (a join of fingerprint hashes in DuckDB) decides as same_article
    does, on both sides of its threshold: copies that share from none to all of their shingles."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tasks import lake
    from tasks.dedup import fingerprint, same_article
    from tasks.load import StoredArticles, create_tables, insert_rows

    words = text(9, 400).split()
    stored = {f"s{n}": art(" ".join(words[:200] if n % 2 else words[200:]) + f" {'extra ' * n}") for n in range(4)}
    staged = [art(" ".join(words[:cut]) + " " + " ".join(text(10 + cut, 400 - cut).split())) for cut in
              (0, 60, 95, 100, 105, 140, 200, 300, 400)]
    key = author_key(["Umair Jamal"])
    with lake.open_lake(tmp_path / "wh", read_only=False) as con:
        create_tables(con)
        insert_rows(con, "articles", [{"article_id": i, "kind": "full", "authors": a.authors, "body": a.body,
                                       "author_key": key} for i, a in stored.items()])
        insert_rows(con, "article_fingerprints", [{"article_id": i, "fingerprint": sorted(fingerprint(a))}
                                                  for i, a in stored.items()])
        occurrences = tmp_path / "occurrences.parquet"
        pq.write_table(pa.table({
            "author_key": [key] * len(staged), "batch_no": [1] * len(staged), "dump_no": [0] * len(staged),
            "ordinal": list(range(len(staged))), "source_file": ["a.txt"] * len(staged),
            "fingerprint": pa.array([sorted(fingerprint(a)) for a in staged], pa.list_(pa.int32()))}), occurrences)
        found = {(ordinal, article_id) for _, _, _, ordinal, article_id in
                 StoredArticles(con).matches(str(occurrences), [], [key])}
    expected = {(n, i) for n, a in enumerate(staged) for i, s in stored.items()
                if same_article(a, fingerprint(a), s, fingerprint(s))}
    assert found == expected
    assert 0 < len(expected) < len(staged) * len(stored)  # some pairs on each side of the threshold
