"""The tantivy search index (tasks/search.py) over real, small DuckLake warehouses."""
from __future__ import annotations

import duckdb
import pytest

from tasks import search as search_module
from tasks.lake import current_snapshot, open_lake
from tasks.search import (STATE_FILE, SearchError, SearchHit, format_hits, index_dir, register_search, search,
                          sync_search_index)

ARTICLES_DDL = """
    CREATE TABLE articles (
        article_id VARCHAR, kind VARCHAR, authors VARCHAR[], published_on DATE, title VARCHAR,
        category VARCHAR, lede VARCHAR, body VARCHAR, bio VARCHAR, word_count INTEGER,
        author_key VARCHAR, run_id VARCHAR)"""
ARTICLE_COLUMNS = ["article_id", "kind", "authors", "published_on", "title", "category", "lede", "body", "bio",
                   "word_count", "author_key", "run_id"]


def article(article_id: str, body: str | None, title: str = "News", lede: str | None = None,
            authors: tuple[str, ...] = ("Jane Doe",), run_id: str = "r1") -> dict:
    return {"article_id": article_id, "kind": "full" if body else "teaser", "authors": list(authors),
            "published_on": "2024-03-01", "title": title, "category": "world", "lede": lede, "body": body,
            "bio": None, "word_count": len((body or "").split()), "author_key": "jane doe", "run_id": run_id}


def commit_run(con: duckdb.DuckDBPyConnection, *articles: dict, deleted: tuple[str, ...] = ()) -> int:
    """One run's snapshot: the articles (new, or rewritten: deleted and inserted again) and the
    deletions, in one transaction."""
    con.execute("BEGIN")
    con.execute("DELETE FROM articles WHERE list_contains($ids, article_id)",
                {"ids": [a["article_id"] for a in articles] + list(deleted)})
    if articles:
        con.executemany(f"INSERT INTO articles VALUES ({', '.join('?' * len(ARTICLE_COLUMNS))})",
                        [[a[c] for c in ARTICLE_COLUMNS] for a in articles])
    con.execute("COMMIT")
    return current_snapshot(con)


@pytest.fixture
def warehouse(tmp_path):
    return tmp_path / "wh"


@pytest.fixture
def lake(warehouse):
    con = open_lake(warehouse, read_only=False)
    con.execute(ARTICLES_DDL)
    yield con
    con.close()


def ids(hits: list[SearchHit]) -> list[str]:
    return [hit.article_id for hit in hits]


def test_sync_builds_the_index_then_adds_only_what_changed(lake, warehouse):
    first = commit_run(lake, article("a1", "Kabul talks resumed"), article("a2", "Floods in Dhaka"))
    built = sync_search_index(lake, warehouse)
    assert (built.added, built.removed, built.snapshot, built.rebuilt) == (2, 0, first, True)

    second = commit_run(lake, article("a3", "Kabul airport reopened", run_id="r2"))
    synced = sync_search_index(lake, warehouse)
    assert (synced.added, synced.removed, synced.snapshot, synced.rebuilt) == (1, 0, second, False)
    assert sorted(ids(search(warehouse, "kabul"))) == ["a1", "a3"]

    again = sync_search_index(lake, warehouse)
    assert (again.added, again.removed, again.snapshot, again.rebuilt) == (0, 0, second, False)


def test_rewritten_article_is_found_once_by_its_new_text_only(lake, warehouse):
    commit_run(lake, article("a1", "The minister resigned over the budget"), article("a2", "Budget approved"))
    sync_search_index(lake, warehouse)

    commit_run(lake, article("a1", "The minister withdrew the budget", run_id="r2"))
    synced = sync_search_index(lake, warehouse)
    assert (synced.added, synced.removed) == (1, 0)
    assert ids(search(warehouse, "withdrew")) == ["a1"]
    assert search(warehouse, "resigned") == []
    assert sorted(ids(search(warehouse, "budget"))) == ["a1", "a2"]


def test_article_rewritten_twice_between_syncs_keeps_its_last_text(lake, warehouse):
    commit_run(lake, article("a1", "first draft"))
    sync_search_index(lake, warehouse)
    commit_run(lake, article("a1", "second draft", run_id="r2"))
    commit_run(lake, article("a1", "third draft", run_id="r3"))

    assert sync_search_index(lake, warehouse).added == 1
    assert ids(search(warehouse, "draft")) == ["a1"]
    assert search(warehouse, "first OR second") == []
    assert ids(search(warehouse, "third")) == ["a1"]


def test_a_large_change_is_synced_incrementally_in_a_small_memory_budget(lake, warehouse):
    """The last change of each article is found on the keys, and the texts stream: a window
    over the texts held all 100 MB of them, failed in 160 MB and fell back to a rebuild."""
    commit_run(lake, article("a0", "Kabul talks"))
    sync_search_index(lake, warehouse)
    lake.execute("BEGIN")
    lake.execute("""
        INSERT INTO articles
        SELECT 'b' || i, 'full', ['Jane Doe'], DATE '2024-03-01', 'News', 'world', NULL,
               repeat('Caspian ferries resumed in the spring ', 550) || i, NULL, 3300, 'jane doe', 'r2'
        FROM range(5000) t(i)""")
    lake.execute("COMMIT")
    assert lake.execute("SELECT sum(length(body)) FROM articles").fetchone()[0] > 100e6
    lake.execute("SET memory_limit = '160MB'")
    synced = sync_search_index(lake, warehouse)
    assert (synced.added, synced.removed, synced.rebuilt) == (5000, 0, False)
    assert len(search(warehouse, "caspian", limit=10)) == 10


def test_deleted_articles_leave_the_index(lake, warehouse):
    commit_run(lake, article("a1", "Harvest festival"), article("a2", "Harvest failed"))
    sync_search_index(lake, warehouse)

    commit_run(lake, deleted=("a2",))
    synced = sync_search_index(lake, warehouse)
    assert (synced.added, synced.removed) == (0, 1)
    assert ids(search(warehouse, "harvest")) == ["a1"]


def lake_history(con) -> None:
    """Several runs: new articles, a rewrite, a deletion."""
    commit_run(con, article("a1", "Sanctions on the regime were extended"), article("a2", "Rain in the capital"))
    commit_run(con, article("a3", "The regime answered the sanctions", run_id="r2"))
    commit_run(con, article("a1", "Sanctions on the regime were lifted", run_id="r3"), deleted=("a2",))


QUERIES = ["sanctions", "regime", "rain", "lifted", "extended", '"the regime"']


def results(warehouse) -> dict[str, list[tuple[str, str]]]:
    # Scores are left out: tantivy's BM25 statistics count deleted documents until their
    # segment is merged, so an index with a history and a fresh one score slightly apart.
    return {q: sorted((h.article_id, h.snippet) for h in search(warehouse, q)) for q in QUERIES}


def test_rebuild_without_state_gives_the_incremental_results(lake, warehouse):
    commit_run(lake, article("a0", "Before the index"))
    sync_search_index(lake, warehouse)
    lake_history(lake)
    assert not sync_search_index(lake, warehouse).rebuilt
    incremental = results(warehouse)

    (index_dir(warehouse) / STATE_FILE).unlink()
    rebuilt = sync_search_index(lake, warehouse)
    assert rebuilt.rebuilt and rebuilt.added == 3  # a0, a1, a3
    assert results(warehouse) == incremental
    assert incremental["lifted"] == [("a1", "Sanctions on the regime were **lifted**")]
    assert incremental["rain"] == [] and incremental["extended"] == []


def test_sync_replayed_after_a_kill_before_the_state_gives_the_same_index(lake, warehouse):
    commit_run(lake, article("a0", "Before the index"), article("a2", "Rain in the capital"))
    sync_search_index(lake, warehouse)
    state_file = index_dir(warehouse) / STATE_FILE
    state_before = state_file.read_bytes()
    lake_history(lake)
    sync_search_index(lake, warehouse)
    synced = results(warehouse)

    state_file.write_bytes(state_before)  # as if killed after tantivy's commit, before the state
    replayed = sync_search_index(lake, warehouse)
    assert not replayed.rebuilt and replayed.added == 2  # a1 (its last text) and a3, again
    assert results(warehouse) == synced
    assert ids(search(warehouse, "sanctions")).count("a1") == 1


def test_index_older_than_the_kept_snapshots_is_rebuilt(lake, warehouse):
    # Rows in Parquet files, as a run writes them (small inserts are otherwise inlined in the
    # catalog): once vacuum has deleted a2's file, table_changes would leave its delete out.
    lake.execute("CALL lake.set_option('data_inlining_row_limit', 0)")
    indexed = commit_run(lake, article("a1", "Harvest festival"), article("a2", "Harvest failed"))
    sync_search_index(lake, warehouse)
    commit_run(lake, article("a3", "Harvest moon", run_id="r2"), deleted=("a2",))
    commit_run(lake, article("a4", "Election day", run_id="r3"))
    # vacuum: expire every snapshot up to the index's, and the files only they referenced
    lake.execute(f"CALL ducklake_expire_snapshots('lake', versions => {list(range(indexed + 1))})")
    lake.execute("CALL ducklake_cleanup_old_files('lake', cleanup_all => true)")

    synced = sync_search_index(lake, warehouse)
    assert sorted(ids(search(warehouse, "harvest"))) == ["a1", "a3"]
    assert synced.rebuilt and synced.added == 3


def test_changes_from_an_expired_snapshot_rebuild_the_index(lake, warehouse):
    lake.execute("CALL lake.set_option('data_inlining_row_limit', 0)")
    indexed = commit_run(lake, article("a1", "Harvest festival"))
    sync_search_index(lake, warehouse)
    expired = commit_run(lake, article("a2", "Harvest failed", run_id="r2"))
    commit_run(lake, article("a3", "Harvest moon", run_id="r3"))
    # the index's own snapshot is kept, the one after it is not: table_changes refuses the range
    lake.execute(f"CALL ducklake_expire_snapshots('lake', versions => [{expired}])")
    assert indexed + 1 == expired

    synced = sync_search_index(lake, warehouse)
    assert synced.rebuilt and synced.added == 3
    assert sorted(ids(search(warehouse, "harvest"))) == ["a1", "a2", "a3"]


def test_an_error_reading_the_changes_is_raised_not_turned_into_a_rebuild(lake, warehouse, monkeypatch):
    commit_run(lake, article("a1", "Harvest festival"))
    sync_search_index(lake, warehouse)
    commit_run(lake, article("a2", "Harvest failed", run_id="r2"))
    monkeypatch.setattr(search_module, "CHANGED_ARTICLES_SQL", "SELECT * FROM no_such_table WHERE $first < $last")
    with pytest.raises(duckdb.CatalogException):
        sync_search_index(lake, warehouse)


def test_index_of_a_recreated_lake_is_rebuilt(lake, warehouse):
    commit_run(lake, article("a1", "Old lake"), article("a2", "Old lake too"))
    commit_run(lake, article("a3", "Old lake again"))
    sync_search_index(lake, warehouse)
    lake.close()
    (warehouse / "lake.sqlite").unlink()  # the warehouse made anew: its snapshot ids start again
    with open_lake(warehouse, read_only=False) as new_lake:
        new_lake.execute(ARTICLES_DDL)
        commit_run(new_lake, article("b1", "New lake"))
        commit_run(new_lake, article("b2", "New lake again"))
        synced = sync_search_index(new_lake, warehouse)
    assert synced.rebuilt and (synced.added, synced.removed) == (2, 3)
    assert sorted(ids(search(warehouse, "lake"))) == ["b1", "b2"]


def test_index_of_a_table_created_again_is_rebuilt(lake, warehouse):
    commit_run(lake, article("a1", "Kept"), article("a2", "Dropped"))
    sync_search_index(lake, warehouse)
    lake.execute("BEGIN")
    lake.execute("DROP TABLE articles")
    lake.execute(ARTICLES_DDL)
    lake.execute("COMMIT")
    commit_run(lake, article("a1", "Kept"))

    synced = sync_search_index(lake, warehouse)
    assert synced.rebuilt and synced.added == 1
    assert search(warehouse, "dropped") == []


def test_sync_refuses_a_connection_behind_the_index(lake, warehouse):
    earlier = commit_run(lake, article("a1", "One"))
    commit_run(lake, article("a2", "Two"))
    sync_search_index(lake, warehouse)
    with open_lake(warehouse, snapshot=earlier) as then, pytest.raises(SearchError, match="latest snapshot"):
        sync_search_index(then, warehouse)
    assert sorted(ids(search(warehouse, "one OR two"))) == ["a1", "a2"]


def test_words_match_across_case_accents_and_endings(lake, warehouse):
    commit_run(lake, article("a1", "Ivanović said the Council imposed new sanctions.", authors=("Petar Ivanović",)),
               article("a2", "A quiet day."))
    sync_search_index(lake, warehouse)
    for query in ("ivanovic", "IVANOVIĆ", "Ivanovic", "sanction", "SANCTIONED", "council"):
        assert ids(search(warehouse, query)) == ["a1"], query
    assert ids(search(warehouse, "authors:petar")) == ["a1"]


def test_phrase_query_needs_the_words_in_order(lake, warehouse):
    commit_run(lake, article("a1", "The state of emergency was extended."),
               article("a2", "An emergency in the state capital."))
    sync_search_index(lake, warehouse)
    assert ids(search(warehouse, '"state of emergency"')) == ["a1"]
    assert sorted(ids(search(warehouse, "state emergency"))) == ["a1", "a2"]
    assert ids(search(warehouse, "+state +extended")) == ["a1"]


def test_snippets_mark_the_matched_words(lake, warehouse):
    commit_run(lake, article("a1", "Officials said the sanctions would stay.\n\nTalks go on.", title="Sanctions"),
               article("t1", None, lede="Teaser: sanctions widened", title="Teaser"),
               article("a2", "Nothing relevant here at all.", title="Sanctions explained"))
    sync_search_index(lake, warehouse)
    snippets = {h.article_id: h.snippet for h in search(warehouse, "sanction")}
    # on one line; tantivy ends a fragment at its last word
    assert snippets["a1"] == "Officials said the **sanctions** would stay. Talks go on"
    assert snippets["t1"] == "Teaser: **sanctions** widened"  # no body: from the lede
    assert snippets["a2"] == "Nothing relevant here at all."  # matched by its title only


def test_sql_macro_returns_articles_best_first(lake, warehouse):
    commit_run(lake, article("a1", "Taliban Taliban Taliban talks", title="Taliban"),
               article("a2", "A long report on many things, the Taliban among them, and more besides."),
               article("a3", "Unrelated"))
    sync_search_index(lake, warehouse)
    register_search(lake, warehouse)

    found = lake.execute("SELECT * FROM search_articles('Taliban')")
    assert [c[0] for c in found.description] == ARTICLE_COLUMNS + ["score", "snippet"]
    rows = found.fetchall()
    assert [r[0] for r in rows] == ["a1", "a2"]
    assert rows[0][-2] > rows[1][-2]
    assert rows[0][4] == "Taliban" and "**Taliban**" in rows[0][-1]
    assert lake.execute("SELECT count(*) FROM search_articles('Taliban', max_hits := 1)").fetchone()[0] == 1
    hits = lake.execute("SELECT search_hits('talks', 5)").fetchone()[0]
    assert [h["article_id"] for h in hits] == ["a1"] and hits[0]["snippet"].startswith("Taliban")


def test_sql_macro_on_an_earlier_snapshot_drops_later_articles(lake, warehouse):
    earlier = commit_run(lake, article("a1", "Drought in the south"))
    commit_run(lake, article("a2", "Drought spreads north", run_id="r2"))
    sync_search_index(lake, warehouse)

    with open_lake(warehouse, snapshot=earlier) as then:
        register_search(then, warehouse)
        assert then.execute("SELECT article_id FROM search_articles('drought')").fetchall() == [("a1",)]
    register_search(lake, warehouse)
    register_search(lake, warehouse)  # again: replaces it
    assert sorted(lake.execute("SELECT article_id FROM search_articles('drought')").fetchall()) == [("a1",), ("a2",)]


def test_a_query_the_parser_refuses_raises_search_error(lake, warehouse):
    commit_run(lake, article("a1", "Anything"))
    sync_search_index(lake, warehouse)
    with pytest.raises(SearchError, match=r"'title:\('") as refused:
        search(warehouse, "title:(")
    assert isinstance(refused.value, ValueError) and "\n" not in str(refused.value)
    with pytest.raises(SearchError, match="nosuchfield"):
        search(warehouse, "nosuchfield:anything")
    register_search(lake, warehouse)
    with pytest.raises(duckdb.Error, match="cannot be parsed"):
        lake.execute("SELECT * FROM search_articles('\"unclosed')")


def test_a_warehouse_never_synced_has_no_index_to_search(lake, warehouse):
    with pytest.raises(SearchError, match="no search index"):
        search(warehouse, "anything")


def test_empty_lake_gives_an_empty_index(lake, warehouse):
    assert sync_search_index(lake, warehouse).added == 0
    assert search(warehouse, "anything") == []


def test_format_hits_shows_rank_score_id_title_and_snippet():
    hits = [SearchHit("a1", 3.14159, "the **word** here"), SearchHit("a2", 1.0, "other")]
    text = format_hits(hits, {"a1": {"title": "A title", "published_on": "2024-03-01"}})
    assert text == "1. 3.14  a1  A title  2024-03-01\n   the **word** here\n\n2. 1.00  a2\n   other"
    assert format_hits([]) == "no matching articles"
