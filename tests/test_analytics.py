"""The analysts' views, full-text search and README's example queries, on a warehouse the
ingest flow built from the seed dumps."""
from __future__ import annotations

import re
import shutil
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from conftest import REPO, SEEDS
from tasks.analytics import (CREATE_SEARCH_INDEX, FTS_EXTENSION, VIEWS, create_views, ensure_search_index, load_fts,
                             update_search_index)
from tasks.load import create_tables

JAMAL = ["Umair Jamal"]
TURGUNBAEVA = ["Aigerim Turgunbaeva", "Fayazuddin Ghiasi"]


@pytest.fixture(scope="module")
def warehouse(prefect_server, tmp_path_factory) -> Path:
    """Seeds 000-003 in one run; then 004 with three files that are quarantined (one fails the
    extract gate)."""
    from flows.ingest import ingest

    root = tmp_path_factory.mktemp("analytics")
    raw, warehouse = root / "raw", root / "wh"
    raw.mkdir()
    for seed in sorted(SEEDS.glob("00[0-3]*.txt")):
        shutil.copy(seed, raw / seed.name)
    assert ingest(str(raw), str(warehouse), return_state=True).is_completed()
    shutil.copy(next(SEEDS.glob("004*.txt")), raw)
    (raw / "broken.txt").write_bytes(bytes(range(256)) * 16)
    (raw / "empty.txt").write_text("  \n\n")
    (raw / "notes.pdf").write_bytes(b"%PDF-1.4")
    assert ingest(str(raw), str(warehouse), return_state=True).is_failed()
    return warehouse / "gleaner.duckdb"


@pytest.fixture
def reader(warehouse):
    """An analyst's connection: read-only, no extension loaded (the views need none)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        yield con


def search(con: duckdb.DuckDBPyConnection, terms: str) -> list[list[str]]:
    return [authors for authors, in con.execute("SELECT authors FROM search_articles(?)", [terms]).fetchall()]


def readme_section() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return readme.split("## Query the warehouse\n", 1)[1].split("\n## ", 1)[0]


# --- views --------------------------------------------------------------------------------

def test_authors_has_one_row_per_author_with_their_articles_and_dates(reader):
    rows = reader.execute("""SELECT author, articles, full_articles, teasers, first_published_on,
                                    last_published_on, words FROM authors""").fetchall()
    by_author = {author: rest for author, *rest in rows}
    [haider_words] = reader.execute("""SELECT sum(word_count) FROM articles
                                       WHERE list_contains(authors, 'Syed Fazl-e-Haider')""").fetchone()
    assert by_author["Syed Fazl-e-Haider"] == [2, 2, 0, None, None, haider_words]
    assert by_author["Vali Kaleji"][:5] == [2, 1, 1, date(2023, 6, 15), date(2023, 6, 15)]
    assert by_author["Bayram Balcı"] == [1, 0, 1, date(2024, 2, 21), date(2024, 2, 21), 0]
    assert [r[0] for r in rows[:2]] == ["Syed Fazl-e-Haider", "Vali Kaleji"]
    [distinct] = reader.execute("SELECT count(DISTINCT author) FROM (SELECT unnest(authors) AS author FROM articles)"
                                ).fetchone()
    assert len(rows) == distinct == 19


def test_authors_whose_spellings_differ_only_in_accents_are_one_author():
    with duckdb.connect() as con:
        create_tables(con)
        for article_id, author, day in (("a1", "Aleksandar Ivanović", date(2024, 5, 1)),
                                        ("a2", "Aleksandar Ivanovic", date(2025, 3, 1)),
                                        ("a3", "Aleksandar Ivanović", None)):
            con.execute("INSERT INTO articles (article_id, kind, authors, published_on, word_count) "
                        "VALUES (?, 'full', [?], ?, 100)", [article_id, author, day])
        create_views(con)
        assert con.execute("SELECT * FROM authors").fetchall() == [
            ("Aleksandar Ivanović", 3, 3, 0, date(2024, 5, 1), date(2025, 3, 1), 300)]


def test_articles_by_month_counts_every_article_once_by_month_and_category(reader):
    assert reader.execute("SELECT * FROM articles_by_month").fetchall() == [
        (date(2022, 1, 1), None, 1, 0, 1),
        (date(2022, 2, 1), None, 1, 0, 1),
        (date(2023, 6, 1), None, 1, 0, 1),
        (date(2023, 12, 1), None, 1, 0, 1),
        (date(2024, 2, 1), None, 1, 0, 1),
        (None, "Analytical Articles", 4, 4, 0),
        (None, "Feature Articles", 1, 0, 1),
        (None, None, 9, 9, 0),
    ]


def test_quarantine_lists_refused_dumps_newest_first_with_step_and_reason(reader):
    rows = reader.execute("SELECT source_file, step, reason FROM quarantine").fetchall()
    assert [(f, step) for f, step, _ in rows] == [
        ("broken.txt", "extract"), ("empty.txt", "extract"), ("notes.pdf", "discover")]
    reasons = {f: reason for f, _, reason in rows}
    assert reasons["broken.txt"] == "extract: binary content (control bytes), not text"
    assert reasons["notes.pdf"].startswith("discover: not a dump: unsupported file type '.pdf'")


def test_load_history_shows_each_run_newest_first_with_its_checks(reader):
    rows = reader.execute("""SELECT dumps_loaded, dumps_quarantined, dumps_skipped, articles_new, occurrences,
                                    checks_passed, checks_failed, failed_steps, duration > INTERVAL 0 SECOND
                             FROM load_history""").fetchall()
    assert rows == [(1, 3, 4, 5, 5, 4, 1, ["extract"], True),
                    (4, 0, 0, 14, 18, 5, 0, [], True)]


def test_removed_by_category_adds_up_the_removed_text(reader):
    rows = reader.execute("SELECT category, removed, distinct_texts, dumps, most_frequent_texts "
                          "FROM removed_by_category").fetchall()
    assert {category: removed for category, removed, *_ in rows} == dict(reader.execute(
        "SELECT category, count(*) FROM removed_text GROUP BY category").fetchall())
    by_category = {category: rest for category, *rest in rows}
    assert by_category["navigation"][0] == 16
    assert by_category["email_protection"] == [6, 2, 4, [
        "This email address is being protected from spambots. You need JavaScript enabled to view it.",
        "Email: This email address is being protected from spambots. You need JavaScript enabled to view it."]]
    assert by_category["image_caption"][3][0] == "Credit: Wikimedia Commons"


def test_views_and_search_work_on_an_empty_warehouse():
    with duckdb.connect() as con:
        create_tables(con)
        create_views(con)
        ensure_search_index(con)
        assert all(con.execute(f"SELECT count(*) FROM {view}").fetchone() == (0,) for view in VIEWS)
        assert search(con, "Taliban") == []


# --- full-text search ---------------------------------------------------------------------

def test_search_finds_every_article_that_uses_a_word_best_first(reader):
    load_fts(reader)
    results = reader.execute("SELECT article_id, authors, score FROM search_articles('Taliban')").fetchall()
    assert TURGUNBAEVA in [authors for _, authors, _ in results] and JAMAL in [authors for _, authors, _ in results]
    using_it = {a for a, in reader.execute("SELECT article_id FROM articles WHERE body ILIKE '%taliban%'").fetchall()}
    assert {article_id for article_id, _, _ in results} == using_it
    scores = [score for _, _, score in results]
    assert scores == sorted(scores, reverse=True)


def test_search_stems_folds_accents_and_searches_authors(reader):
    load_fts(reader)
    authors_field = ("SELECT authors FROM articles "
                     "WHERE fts_main_articles.match_bm25(article_id, ?, fields := 'authors') IS NOT NULL")
    assert reader.execute(authors_field, ["ivanovic"]).fetchall() == [(["Aleksandar Ivanović"],)]
    assert reader.execute(authors_field, ["Haider"]).fetchall() == [(["Syed Fazl-e-Haider"],)] * 2
    # 'recognizing' and 'recognition' share the stem of 'recognize'.
    assert JAMAL in search(reader, "recognizing")


def test_search_with_a_phrase_filter_keeps_the_articles_that_print_the_phrase(reader):
    load_fts(reader)
    words = search(reader, "Middle Corridor")
    phrase = [authors for authors, in reader.execute(
        "SELECT authors FROM search_articles(?) WHERE body ILIKE ?", ["Middle Corridor", "%middle corridor%"]
    ).fetchall()]
    assert len(phrase) == 5 and len(words) > len(phrase)
    assert all(authors in words for authors in phrase) and ["Robert M. Cutler"] in phrase


def scores(con: duckdb.DuckDBPyConnection, terms: str) -> list[tuple[str, float]]:
    return [(aid, round(score, 9)) for aid, score in
            con.execute("SELECT article_id, score FROM search_articles(?)", [terms]).fetchall()]


QUERIES = ("Taliban", "Middle Corridor", "recognizing", "Jamal", "pipeline railway summit")


def test_the_index_kept_up_to_date_run_by_run_scores_as_one_built_from_scratch(warehouse, tmp_path):
    copy = tmp_path / "copy.duckdb"
    shutil.copy(warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        load_fts(con)
        kept_up = {terms: scores(con, terms) for terms in QUERIES}
        con.execute(CREATE_SEARCH_INDEX)
        assert {terms: scores(con, terms) for terms in QUERIES} == kept_up
        assert all(kept_up.values())


def test_a_rewritten_article_is_searched_by_its_new_text(warehouse, tmp_path):
    copy = tmp_path / "copy.duckdb"
    shutil.copy(warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        load_fts(con)
        jamal_before = search(con, "Taliban").count(JAMAL)
        con.execute("UPDATE articles SET body = body || ?, run_id = 'later run' WHERE authors = ?",
                    [" Zyzzyva.", JAMAL])
        assert search(con, "zyzzyva") == []  # the index still has the old text
        create_views(con)  # as every version calls them: again on a warehouse that has them
        ensure_search_index(con)
        con.execute("BEGIN TRANSACTION")
        update_search_index(con, "later run")
        con.execute("COMMIT")
        assert search(con, "zyzzyva") == [JAMAL]
        assert search(con, "Taliban").count(JAMAL) == jamal_before  # the old document left the index
        docs = con.execute("SELECT count(*), count(DISTINCT name) FROM fts_main_articles.docs").fetchone()
        assert docs[0] == docs[1] == con.execute("SELECT count(*) FROM articles").fetchone()[0]
        kept_up = scores(con, "Taliban zyzzyva")
        con.execute(CREATE_SEARCH_INDEX)
        assert scores(con, "Taliban zyzzyva") == kept_up

        # Updated inside a transaction that is rolled back, the index stays as it was.
        con.execute("UPDATE articles SET run_id = 'refused run' WHERE authors = ?", [JAMAL])
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM articles WHERE authors = ?", [JAMAL])
        update_search_index(con, "refused run")
        con.execute("ROLLBACK")
        assert JAMAL in search(con, "Taliban")


# --- README -------------------------------------------------------------------------------

def test_the_readme_queries_run_on_the_seed_warehouse(reader):
    queries = re.findall(r"```sql\n(.*?)```", readme_section(), re.DOTALL)
    assert len(queries) == 5
    load_fts(reader)
    top_authors, by_month, found, quarantined, sections = (reader.execute(q).fetchall() for q in queries)

    assert len(top_authors) == 10 and top_authors[0][:4] == ("Syed Fazl-e-Haider", 2, 2, 0)
    assert top_authors[1][:4] == ("Vali Kaleji", 2, 1, 1)
    assert by_month[0] == (date(2022, 1, 1), None, 1, 0, 1) and by_month[-1] == (None, None, 9, 9, 0)
    assert TURGUNBAEVA in [r[0] for r in found] and JAMAL in [r[0] for r in found]
    assert [r[3] for r in found] == sorted((r[3] for r in found), reverse=True)
    assert [(f, step) for f, step, *_ in quarantined] == [
        ("broken.txt", "extract"), ("empty.txt", "extract"), ("notes.pdf", "discover")]
    assert [(n, heading) for n, heading, _ in sections] == [
        (1, "BACKGROUND"), (2, "IMPLICATIONS"), (3, "CONCLUSIONS")]
    assert sections[0][2].startswith("Russia")


def test_the_readme_loads_the_fts_extension_that_is_installed():
    [path] = re.findall(r"LOAD '([^']+)'", readme_section())
    assert path.startswith(".venv/")
    assert Path(sys.prefix, path.removeprefix(".venv/")) == FTS_EXTENSION
    assert FTS_EXTENSION.is_file()
