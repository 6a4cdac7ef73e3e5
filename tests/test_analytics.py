"""The analysts' views, full-text search and README's example queries, on a warehouse the
ingest flow built from the seed dumps, read as analysts read it (gleaner.connect)."""
from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import duckdb
import gleaner
import pytest

from conftest import REPO, SEEDS
from tasks import lake
from tasks.analytics import VIEWS
from tasks.load import create_tables
from tasks.search import sync_search_index

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
    return warehouse


@pytest.fixture
def reader(warehouse):
    """An analyst's connection."""
    with gleaner.connect(warehouse) as con:
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


def test_authors_whose_spellings_differ_only_in_accents_are_one_author(tmp_path):
    with lake.open_lake(tmp_path / "wh", read_only=False) as con:
        create_tables(con)
        for article_id, author, day in (("a1", "Aleksandar Ivanović", date(2024, 5, 1)),
                                        ("a2", "Aleksandar Ivanovic", date(2025, 3, 1)),
                                        ("a3", "Aleksandar Ivanović", None)):
            con.execute("INSERT INTO articles (article_id, kind, authors, published_on, word_count) "
                        "VALUES (?, 'full', [?], ?, 100)", [article_id, author, day])
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
                                    checks_passed, checks_failed, checks_skipped, failed_steps,
                                    duration > INTERVAL 0 SECOND
                             FROM load_history""").fetchall()
    assert rows == [(1, 3, 4, 5, 5, 4, 1, 0, ["extract"], True),
                    (4, 0, 0, 14, 18, 5, 0, 0, [], True)]


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


def test_views_and_search_work_on_an_empty_warehouse(tmp_path):
    warehouse = tmp_path / "wh"
    with lake.open_lake(warehouse, read_only=False) as con:
        create_tables(con)
        sync_search_index(con, warehouse)
    with gleaner.connect(warehouse) as con:
        assert all(con.execute(f"SELECT count(*) FROM {view}").fetchone() == (0,) for view in VIEWS)
        assert search(con, "Taliban") == []


def test_views_changed_in_code_are_replaced_in_the_next_snapshot_and_unchanged_ones_cost_nothing(tmp_path):
    warehouse = tmp_path / "wh"
    with lake.open_lake(warehouse, read_only=False) as con:
        create_tables(con)
        created = lake.current_snapshot(con)
        create_tables(con)  # nothing to do: no new snapshot
        assert lake.current_snapshot(con) == created
        con.execute("COMMENT ON VIEW quarantine IS 'an older definition'")
        create_tables(con)
        assert lake.current_snapshot(con) > created
        assert con.execute("SELECT comment FROM duckdb_views() WHERE view_name = 'quarantine'").fetchone() \
            != ("an older definition",)


# --- full-text search ---------------------------------------------------------------------

def test_search_finds_every_article_that_uses_a_word_best_first(reader):
    results = reader.execute("SELECT article_id, authors, score FROM search_articles('Taliban')").fetchall()
    assert TURGUNBAEVA in [authors for _, authors, _ in results] and JAMAL in [authors for _, authors, _ in results]
    using_it = {a for a, in reader.execute("SELECT article_id FROM articles WHERE body ILIKE '%taliban%'").fetchall()}
    assert {article_id for article_id, _, _ in results} == using_it
    scores = [score for _, _, score in results]
    assert scores == sorted(scores, reverse=True)


def test_search_stems_folds_accents_and_searches_authors(reader):
    assert search(reader, "authors:ivanovic") == [["Aleksandar Ivanović"]]
    assert search(reader, "authors:Haider") == [["Syed Fazl-e-Haider"]] * 2
    # 'recognizing' and 'recognition' share the stem of 'recognize'.
    assert JAMAL in search(reader, "recognizing")


def test_a_quoted_phrase_finds_the_articles_that_print_it(reader):
    words = search(reader, "Middle Corridor")
    phrase = search(reader, '"Middle Corridor"')
    printed = [authors for authors, in reader.execute(
        "SELECT authors FROM articles WHERE (coalesce(title, '') || ' ' || body) ILIKE '%middle corridor%'"
    ).fetchall()]
    assert sorted(phrase) == sorted(printed) and len(phrase) == 5 and len(words) > len(phrase)
    assert ["Robert M. Cutler"] in phrase


def test_search_snippets_mark_the_words_found(reader):
    snippets = [s for s, in reader.execute("SELECT snippet FROM search_articles('Taliban')").fetchall()]
    assert snippets and all("**Taliban**" in s for s in snippets)


def test_search_on_the_warehouse_as_of_an_earlier_run_finds_only_what_it_held(warehouse):
    with gleaner.connect(warehouse) as con:
        first_run = con.execute("SELECT run_id FROM load_history ORDER BY started_at LIMIT 1").fetchone()[0]
        everything = search(con, "Kazakhstan")
    with gleaner.connect(warehouse, as_of=first_run) as con:
        then = search(con, "Kazakhstan")
    assert then and set(map(tuple, then)) <= set(map(tuple, everything))
    assert ["Bayram Balcı"] in everything and ["Bayram Balcı"] not in then  # 004 came with the second run


# --- README -------------------------------------------------------------------------------

def test_the_readme_queries_run_on_the_seed_warehouse(reader):
    queries = re.findall(r"```sql\n(.*?)```", readme_section(), re.DOTALL)
    assert len(queries) == 5
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
