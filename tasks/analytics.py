"""Analytics: the analysts' views and full-text search over the warehouse.

Every version of the warehouse is created with the views and the search index
(create_views, ensure_search_index), and the load calls update_search_index(con, run_id) on
the writer's connection after a run's rows are staged, inside the load's transaction, so
every published version carries views and a search index that match its rows (and a refused
load rolls them back with everything else).

Views (read-only conveniences over the contract tables; none needs an extension):

- `authors`: one row per author (spellings that differ only in accents or case are one
  author), with their articles, full articles and teasers, first and last published_on,
  and words written (full articles' word counts).
- `articles_by_month`: articles per month of publication and category; undated articles
  (month NULL) and uncategorised ones (category NULL) have rows of their own.
- `quarantine`: every quarantined dump, newest first, with the step that refused it and
  the reason.
- `load_history`: every run, newest first, with its counts, how long it took, and its
  Great Expectations checks passed and failed (and which steps failed).
- `removed_by_category`: the boilerplate taken out, per category: lines or fragments,
  distinct texts, dumps, and the three most frequent texts.

Full-text search: DuckDB's fts extension indexes articles' title, lede, body and authors
(Porter stemming, English stop words, accents and case folded). The table macro
`search_articles('terms')` returns the matching articles with their BM25 `score`, best
first; fts_main_articles.match_bm25(article_id, 'terms') is the raw form. Both need the
extension loaded into the connection first: load_fts(con), or in the DuckDB CLI
`LOAD '<FTS_EXTENSION>'`.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import duckdb

# `INSTALL fts` downloads the extension, which a machine without internet cannot; the
# duckdb-extension-fts wheel (pinned to the same version as duckdb) ships it instead.
FTS_EXTENSION = Path(str(files("duckdb_extension_fts"))) / "extensions" / f"v{duckdb.__version__}" \
    / "fts.duckdb_extension"

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
               count(q.step) FILTER (WHERE q.success) AS checks_passed,
               count(q.step) FILTER (WHERE NOT q.success) AS checks_failed,
               coalesce(list(q.step ORDER BY q.step) FILTER (WHERE NOT q.success), []) AS failed_steps
        FROM runs r
        LEFT JOIN dq_results q USING (run_id)
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

# Title, lede, body and authors (the list is indexed as its text). The lede is also the
# start of the body, so its words count twice: a summary's words say most about an article.
SEARCH_SCHEMA = "fts_main_articles"
CREATE_SEARCH_INDEX = \
    "PRAGMA create_fts_index('articles', 'article_id', 'title', 'lede', 'body', 'authors', overwrite=1)"

SEARCH_MACRO = """
    CREATE OR REPLACE MACRO search_articles(search_terms) AS TABLE
    SELECT *
    FROM (SELECT *, fts_main_articles.match_bm25(article_id, search_terms) AS score FROM articles)
    WHERE score IS NOT NULL
    ORDER BY score DESC, article_id"""

# The fts extension builds its index (tables docs, terms, dict, stats of schema
# fts_main_articles) over the whole table, which costs minutes at a million articles. These
# statements bring it up to date with the articles one run wrote (articles.run_id), with the
# extension's own tokenizer, stop words and stemmer, so that match_bm25 scores as on a fresh
# index: the run's rewritten articles leave it, its articles enter it.
UPDATE_SEARCH_INDEX = [
    """CREATE OR REPLACE TEMP TABLE search_changed AS
       SELECT article_id, title, lede, body, authors FROM articles WHERE run_id = $run_id""",
    """CREATE OR REPLACE TEMP TABLE search_gone AS
       SELECT docid FROM fts_main_articles.docs WHERE name IN (SELECT article_id FROM search_changed)""",
    """UPDATE fts_main_articles.dict AS d SET df = d.df - gone.docs
       FROM (SELECT termid, count(DISTINCT docid) AS docs FROM fts_main_articles.terms
             WHERE docid IN (SELECT docid FROM search_gone) GROUP BY termid) AS gone
       WHERE d.termid = gone.termid""",
    "DELETE FROM fts_main_articles.terms WHERE docid IN (SELECT docid FROM search_gone)",
    "DELETE FROM fts_main_articles.docs WHERE docid IN (SELECT docid FROM search_gone)",
    """CREATE OR REPLACE TEMP TABLE search_docs AS
       SELECT (SELECT coalesce(max(docid) + 1, 0) FROM fts_main_articles.docs)
                  + row_number() OVER (ORDER BY article_id) - 1 AS docid,
              article_id AS name
       FROM search_changed""",
    """CREATE OR REPLACE TEMP TABLE search_terms AS
       WITH words AS (
           SELECT d.docid, f.fieldid,
                  unnest(fts_main_articles.tokenize(CASE f.field WHEN 'title' THEN c.title WHEN 'lede' THEN c.lede
                                                    WHEN 'body' THEN c.body ELSE CAST(c.authors AS VARCHAR) END)) AS w
           FROM search_changed c JOIN search_docs d ON d.name = c.article_id CROSS JOIN fts_main_articles.fields f)
       SELECT docid, fieldid, stem(w, 'porter') AS term FROM words
       WHERE w IS NOT NULL AND len(w) > 0 AND w NOT IN (SELECT sw FROM fts_main_articles.stopwords)""",
    """INSERT INTO fts_main_articles.dict (termid, term, df)
       SELECT (SELECT coalesce(max(termid) + 1, 0) FROM fts_main_articles.dict)
                  + row_number() OVER (ORDER BY term) - 1, term, 0
       FROM (SELECT DISTINCT term FROM search_terms
             WHERE term NOT IN (SELECT term FROM fts_main_articles.dict))""",
    """UPDATE fts_main_articles.dict AS d SET df = d.df + new.docs
       FROM (SELECT term, count(DISTINCT docid) AS docs FROM search_terms GROUP BY term) AS new
       WHERE d.term = new.term""",
    """INSERT INTO fts_main_articles.terms (docid, fieldid, termid)
       SELECT t.docid, t.fieldid, d.termid FROM search_terms t JOIN fts_main_articles.dict d USING (term)""",
    """INSERT INTO fts_main_articles.docs (docid, name, len)
       SELECT d.docid, d.name, coalesce(t.words, 0)
       FROM search_docs d LEFT JOIN (SELECT docid, count(*) AS words FROM search_terms GROUP BY docid) t USING (docid)""",
    "DELETE FROM fts_main_articles.stats",
    """INSERT INTO fts_main_articles.stats
       SELECT count(docid), sum(len) / count(len) FROM fts_main_articles.docs""",
    "DROP TABLE search_changed", "DROP TABLE search_gone", "DROP TABLE search_docs", "DROP TABLE search_terms",
]


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    """Create or replace the analysts' views (a changed definition reaches the warehouse
    with the next run)."""
    for name, query in VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {query}")


def load_fts(con: duckdb.DuckDBPyConnection) -> None:
    """Load DuckDB's fts extension into con (read-only connections too) from the installed
    wheel. Searching needs it; without it DuckDB tries to download it, and fails offline."""
    # LOAD takes no parameters; the path is the installed wheel's, quoted as a SQL string.
    con.execute("LOAD '{}'".format(str(FTS_EXTENSION).replace("'", "''")))


def ensure_search_index(con: duckdb.DuckDBPyConnection) -> None:
    """Give a warehouse without one the search index (over its articles, if any) and the
    search_articles macro."""
    load_fts(con)
    if not con.execute("SELECT 1 FROM duckdb_schemas() WHERE schema_name = $schema",
                       {"schema": SEARCH_SCHEMA}).fetchall():
        con.execute(CREATE_SEARCH_INDEX)
    con.execute(SEARCH_MACRO)


def update_search_index(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Bring the search index up to date with the articles written by the run `run_id`,
    inside the caller's transaction. Its cost follows the run's articles, not the warehouse."""
    load_fts(con)
    for statement in UPDATE_SEARCH_INDEX:
        con.execute(statement, {"run_id": run_id} if "$run_id" in statement else None)
