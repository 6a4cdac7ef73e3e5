"""Analytics: the analysts' views over the warehouse.

The views are catalog objects of the lake, created with the warehouse and replaced when
their definition here changes (each carries a digest of its definition as its comment), so
every snapshot holds the views that match its tables, and a connection on an earlier
snapshot (`gleaner sql --as-of`) reads them as they were. None needs an extension. Search is
tasks/search.py's.

- `authors`: one row per author (spellings that differ only in accents or case are one
  author), with their articles, full articles and teasers, first and last published_on,
  and words written (full articles' word counts).
- `articles_by_month`: articles per month of publication and category; undated articles
  (month NULL) and uncategorised ones (category NULL) have rows of their own.
- `quarantine`: every quarantined dump, newest first, with the step that refused it and
  the reason.
- `load_history`: every run and rollback, newest first, with its counts, how long it took,
  its Great Expectations checks passed and failed (and which steps failed), and the
  rollback that undid it, if any.
- `removed_by_category`: the boilerplate taken out, per category: lines or fragments,
  distinct texts, dumps, and the three most frequent texts.
"""
from __future__ import annotations

import hashlib

import duckdb

VIEWS: dict[str, str] = {
    "authors": """
        WITH bylines AS (
            SELECT unnest(authors) AS author, article_id, kind, published_on, word_count FROM articles)
        SELECT mode(author) AS author,  -- the spelling printed most often
               count(DISTINCT article_id) AS articles,
               count(DISTINCT article_id) FILTER (WHERE kind = 'full') AS full_articles,
               count(DISTINCT article_id) FILTER (WHERE kind = 'teaser') AS teasers,
               min(published_on) AS first_published_on,
               max(published_on) AS last_published_on,
               CAST(coalesce(sum(word_count) FILTER (WHERE kind = 'full'), 0) AS BIGINT) AS words
        FROM bylines
        GROUP BY lower(strip_accents(author))  -- as dedup's author_key: 'Ivanović' = 'Ivanovic'
        ORDER BY articles DESC, author""",
    "articles_by_month": """
        SELECT CAST(date_trunc('month', published_on) AS DATE) AS month, category,
               count(*) AS articles,
               count(*) FILTER (WHERE kind = 'full') AS full_articles,
               count(*) FILTER (WHERE kind = 'teaser') AS teasers
        FROM articles
        GROUP BY ALL
        ORDER BY month NULLS LAST, category NULLS LAST""",
    "quarantine": """
        SELECT source_file, split_part(reason, ':', 1) AS step, reason, format, bytes, source_sha256,
               processed_at, run_id
        FROM dumps
        WHERE status = 'quarantined'
        ORDER BY processed_at DESC, source_file""",
    "load_history": """
        SELECT r.run_id, r.started_at, r.finished_at, r.finished_at - r.started_at AS duration, r.raw_dir,
               r.dumps_loaded, r.dumps_quarantined, r.dumps_skipped,
               r.articles_new, r.articles_updated, r.occurrences,
               r.kind, r.rolled_back, undo.run_id AS rolled_back_by,
               count(q.step) FILTER (WHERE q.status = 'passed') AS checks_passed,
               count(q.step) FILTER (WHERE q.status = 'failed') AS checks_failed,
               count(q.step) FILTER (WHERE q.status = 'skipped') AS checks_skipped,
               coalesce(list(q.step ORDER BY q.step) FILTER (WHERE q.status = 'failed'), []) AS failed_steps
        FROM runs r
        LEFT JOIN dq_results q USING (run_id)
        LEFT JOIN (SELECT run_id, unnest(rolled_back) AS undone FROM runs WHERE kind = 'rollback') undo
               ON undo.undone = r.run_id
        GROUP BY ALL
        ORDER BY r.started_at DESC""",
    "removed_by_category": """
        WITH texts AS (
            SELECT category, text, count(*) AS times FROM removed_text GROUP BY category, text),
        dumps AS (
            SELECT category, count(DISTINCT source_file) AS dumps FROM removed_text GROUP BY category)
        SELECT category, CAST(sum(t.times) AS BIGINT) AS removed, count(*) AS distinct_texts, d.dumps,
               list(t.text ORDER BY t.times DESC, t.text)[1:3] AS most_frequent_texts
        FROM texts t JOIN dumps d USING (category)
        GROUP BY category, d.dumps
        ORDER BY removed DESC, category""",
}


def _digest(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:16]


def create_views(con: duckdb.DuckDBPyConnection, dry_run: bool = False) -> list[str]:
    """Create the views that are missing or whose definition changed, in con's current
    catalog and transaction; returns their names (with dry_run, only says which)."""
    current = dict(con.execute(
        "SELECT view_name, comment FROM duckdb_views() WHERE database_name = current_database() AND NOT internal"
    ).fetchall())
    stale = [name for name, query in VIEWS.items() if current.get(name) != _digest(query)]
    if not dry_run:
        for name in stale:
            con.execute(f"CREATE OR REPLACE VIEW {name} AS {VIEWS[name]}")
            con.execute(f"COMMENT ON VIEW {name} IS '{_digest(VIEWS[name])}'")
    return stale
