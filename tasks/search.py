"""Full-text search over the warehouse's articles: a tantivy index that follows the lake.

    WAREHOUSE/search/                      the tantivy index (title, lede, body, authors)
    WAREHOUSE/search/gleaner-search.json   the lake snapshot the index was last synced to

sync_search_index(con, warehouse_dir) brings the index to the lake's current snapshot from
DuckLake's change feed (table_changes): its cost follows the articles a run changed, never
the warehouse's size, and it commits once, so a searcher sees the index as it was before
the sync or after it, never between. tantivy's Python API does not expose a commit's
payload, hence the state file beside the segments; it is written (atomically) after the
commit, and a sync replayed over changes already in the index gives the same index, so a
process killed between the two is caught up by the next sync. The index is rebuilt from
`articles` when it is missing or unreadable, its state is missing or of another lake, table
or format, or the changes since its snapshot are no longer kept (snapshots expired by vacuum).

search(warehouse_dir, terms) takes tantivy's query language over title, lede, body and
authors: words in any order (an article matching more of them ranks higher; +word or AND
requires one), "quoted phrases", OR, -word, field:word. Words are lower-cased,
accent-folded ('Ivanović' finds 'Ivanovic') and stemmed in English ('sanctions' finds
'sanction'). A warehouse that was never synced has no index: search raises SearchError.

register_search(con, warehouse_dir) makes it callable from SQL in that connection:
`SELECT * FROM search_articles('Taliban')` gives every column of `articles` plus `score`
and `snippet`, best first; search_hits(terms, max_hits) is the raw list of hits. The join
reads `articles` once a query (DuckDB pushes no filter on hundreds of ids into the lake's
files), search_hits and search() read the index only.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import tantivy

from tasks.lake import LAKE, current_snapshot

INDEX_DIR = "search"
# Inside the index folder (tantivy's garbage collection only deletes files it made), so
# deleting the folder deletes the state with it.
STATE_FILE = "gleaner-search.json"
# Bumped whenever the schema or the analyzer changes: an index of another format is rebuilt.
INDEX_FORMAT = 1

ANALYZER = "gleaner_english"
SEARCHED_FIELDS = ["title", "lede", "body", "authors"]
AUTHOR_SEPARATOR = "; "

# 64 MB shared by a rebuild's two writer threads (the machines have two cores): tantivy
# writes a segment whenever a thread's share fills, so memory stays bounded whatever the batch
# size. It holds 5-6 times its heap besides, while it writes and merges segments: indexing
# the 180,307 articles of the 1 GB corpus took a process to 1.31-1.37 GB with 128 MB, to 0.92
# GB with 64 MB (40 MB: 0.82-0.91 GB), in the same 36-41 s.
WRITER_HEAP_BYTES = 64_000_000
WRITER_THREADS = 2
# A change of this many rows or more (a first run's is the whole corpus) is written by
# WRITER_THREADS threads, as a rebuild is: one thread took 1.7x as long (35,704 articles).
# A smaller one is written by one thread, which adds one segment.
LARGE_CHANGE_ROWS = 10_000
# Rows per Arrow batch read from DuckDB: about 5 MB of article text at ~800 words each.
BATCH_ROWS = 1_000
SNIPPET_CHARS = 200
SQL_MAX_HITS = 1_000

INDEXED_COLUMNS = "article_id, title, lede, body, authors"

# at the snapshot the state will name, though another run may commit meanwhile
ALL_ARTICLES_SQL = f"SELECT {INDEXED_COLUMNS}, true AS present FROM {LAKE}.articles AT (VERSION => $snapshot)"

# Each article's last change in the range decides whether the index holds it and with which
# text: a rewritten article is deleted and inserted in one snapshot (the insert wins), one
# rewritten twice in the range is indexed once, with its last text. The last changes are
# found on the keys alone, and the texts stream past them: a window over the texts holds
# them all (a first run's 1 GB of articles did not fit the run's 512 MB beside the export).
CHANGED_ARTICLES_SQL = f"""
    WITH last_change AS (
        SELECT snapshot_id, rowid, change_type FROM {LAKE}.table_changes('articles', $first, $last)
        QUALIFY row_number() OVER (PARTITION BY article_id ORDER BY snapshot_id DESC,
                                   change_type IN ('insert', 'update_postimage') DESC) = 1)
    SELECT {INDEXED_COLUMNS}, change_type IN ('insert', 'update_postimage') AS present
    FROM {LAKE}.table_changes('articles', $first, $last)
    SEMI JOIN last_change USING (snapshot_id, rowid, change_type)"""
CHANGE_ROWS_SQL = f"SELECT count(*) FROM {LAKE}.table_changes('articles', $first, $last)"
#: what DuckLake says of a range of table_changes that starts at an expired snapshot
MISSING_SNAPSHOT = "No snapshot found at version"

# in microseconds since the epoch: a time as text would follow the session's time zone
SNAPSHOT_TIME_SQL = f"SELECT epoch_us(snapshot_time) FROM {LAKE}.snapshots() WHERE snapshot_id = $id"
ARTICLES_UUID_SQL = \
    f"SELECT CAST(table_uuid AS VARCHAR) FROM ducklake_table_info('{LAKE}') WHERE table_name = 'articles'"

SEARCH_HIT_TYPE = duckdb.list_type(
    duckdb.struct_type({"article_id": "VARCHAR", "score": "DOUBLE", "snippet": "VARCHAR"}))

SEARCH_MACRO_SQL = f"""
    CREATE OR REPLACE TEMP MACRO search_articles(terms, max_hits := {SQL_MAX_HITS}) AS TABLE
    SELECT a.*, h.score, h.snippet
    FROM (SELECT unnest(search_hits(terms, max_hits), recursive := true)) AS h
    JOIN {LAKE}.articles AS a USING (article_id)
    ORDER BY h.score DESC, a.article_id"""


class SearchError(ValueError):
    """A search that cannot be run: a query tantivy's parser refuses, or no index."""


@dataclass(frozen=True)
class SearchSync:
    """What a sync did: articles written into the index (new or rewritten), articles taken
    out of it, the lake snapshot it is now at, and whether it was rebuilt from scratch."""
    added: int
    removed: int
    snapshot: int
    rebuilt: bool = False


@dataclass(frozen=True)
class SearchHit:
    article_id: str
    score: float
    snippet: str


@dataclass(frozen=True)
class IndexState:
    """The lake snapshot an index holds, with what tells that lake's `articles` from another's:
    the snapshot's time (a warehouse made anew numbers its snapshots from 0 again) and the
    table's uuid (table_changes on a table dropped and created again misses the rows it lost)."""
    snapshot: int
    snapshot_time_us: int
    articles_uuid: str


def index_dir(warehouse_dir: Path) -> Path:
    return warehouse_dir / INDEX_DIR


def _analyzer() -> tantivy.TextAnalyzer:
    # remove_long as tantivy's default analyzer: tokens over 40 bytes are URLs or junk.
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.remove_long(40))
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.ascii_fold())
            .filter(tantivy.Filter.stemmer("english"))
            .build())


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    # raw: the id is one exact term, which delete_documents_by_term matches
    builder.add_text_field("article_id", stored=True, tokenizer_name="raw", index_option="basic")
    for name in SEARCHED_FIELDS:
        # body and lede are stored for the snippets, which are cut from the stored text
        builder.add_text_field(name, stored=name in ("body", "lede"), tokenizer_name=ANALYZER)
    return builder.build()


def _with_analyzer(index: tantivy.Index) -> tantivy.Index:
    # Analyzers are not saved with the index: each opening registers it again, before any
    # writing or query parsing.
    index.register_tokenizer(ANALYZER, _analyzer())
    return index


def _open_index(folder: Path) -> tantivy.Index | None:
    """The index in `folder`, or None when there is none that this code can use."""
    try:
        if not tantivy.Index.exists(str(folder)) or not tantivy.Index.is_compatible(str(folder)):
            return None
        index = tantivy.Index.open(str(folder))
    except (OSError, ValueError):
        return None
    return _with_analyzer(index) if index.schema == _schema() else None


def _new_index(folder: Path) -> tantivy.Index:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return _with_analyzer(tantivy.Index(_schema(), path=str(folder), reuse=False))


def _read_state(folder: Path) -> IndexState | None:
    try:
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        if state["format"] != INDEX_FORMAT:
            return None
        return IndexState(int(state["snapshot"]), int(state["snapshot_time_us"]), str(state["articles_uuid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_state(folder: Path, state: IndexState) -> None:
    path = folder / STATE_FILE
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as out:
        json.dump({"format": INDEX_FORMAT, "snapshot": state.snapshot, "snapshot_time_us": state.snapshot_time_us,
                   "articles_uuid": state.articles_uuid}, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


def _snapshot_time_us(con: duckdb.DuckDBPyConnection, snapshot: int) -> int | None:
    row = con.execute(SNAPSHOT_TIME_SQL, {"id": snapshot}).fetchone()
    return row[0] if row else None


def _kept(con: duckdb.DuckDBPyConnection, state: IndexState) -> bool:
    """Whether the lake still has the snapshot the state names (same lake, not expired)."""
    return _snapshot_time_us(con, state.snapshot) == state.snapshot_time_us


def _document(article_id: str, title: str | None, lede: str | None, body: str | None,
              authors: list[str] | None) -> tantivy.Document:
    document = tantivy.Document()
    document.add_text("article_id", article_id)
    for name, text in (("title", title), ("lede", lede), ("body", body),
                       ("authors", AUTHOR_SEPARATOR.join(a for a in authors or [] if a))):
        if text:
            document.add_text(name, text)
    return document


def _rows(reader: pa.RecordBatchReader) -> Iterator[dict[str, list]]:
    for batch in reader:
        yield batch.to_pydict()


def _commit(index: tantivy.Index, batches: Iterable[dict[str, list]], replace_all: bool,
            threads: int = WRITER_THREADS) -> tuple[int, int]:
    """Write batches of rows into the index in one commit, with `threads` writer threads:
    (articles added, articles removed). A row with `present` false takes its article out,
    any other adds or replaces it; replace_all: the rows are all the articles, replacing
    every document."""
    writer = index.writer(WRITER_HEAP_BYTES, threads)
    added = removed = 0
    try:
        if replace_all:
            writer.delete_all_documents()
        for batch in batches:
            for article_id, title, lede, body, authors, present in zip(
                    batch["article_id"], batch["title"], batch["lede"], batch["body"], batch["authors"],
                    batch["present"]):
                if not replace_all:
                    # Deleting by id first makes a change idempotent: applied again, it
                    # leaves one document per article, as applied once. (A delete applies to
                    # the documents added before it, not to the one added next.)
                    writer.delete_documents_by_term("article_id", article_id)
                if present:
                    writer.add_document(_document(article_id, title, lede, body, authors))
                    added += 1
                else:
                    removed += 1
        writer.commit()
    except BaseException:
        writer.rollback()
        raise
    finally:
        writer.wait_merging_threads()  # merges done and the writer's lock released
    return added, removed


def _changes_since(con: duckdb.DuckDBPyConnection, state: IndexState,
                   target: IndexState) -> tuple[pa.RecordBatchReader, int] | None:
    """The articles changed after the index's snapshot up to the target's, with the number of
    change rows, or None when the lake no longer tells them all. The index's own snapshot
    must still be kept: once it has been expired, vacuum may have deleted the files of rows
    deleted since, and table_changes then leaves their deletes out without a word (measured
    on DuckLake 1.5.5)."""
    if not _kept(con, state) or state.articles_uuid != target.articles_uuid:
        return None
    snapshots = {"first": state.snapshot + 1, "last": target.snapshot}
    try:
        rows = con.execute(CHANGE_ROWS_SQL, snapshots).fetchone()[0]
        return con.execute(CHANGED_ARTICLES_SQL, snapshots).to_arrow_reader(BATCH_ROWS), rows
    except duckdb.InvalidInputException as exc:
        # a range starting at an expired snapshot is refused; any other error (out of
        # memory, say) is one to see, not a reason to rebuild the index from everything
        if MISSING_SNAPSHOT not in str(exc):
            raise
        return None


def sync_search_index(con: duckdb.DuckDBPyConnection, warehouse_dir: Path) -> SearchSync:
    """Bring WAREHOUSE/search/ to the snapshot `con` is on (a connection on the lake's latest
    snapshot), incrementally when it can, else by rebuilding it from `articles`.
    One writer at a time: tantivy's writer lock refuses a second sync (ValueError)."""
    folder = index_dir(warehouse_dir)
    snapshot = current_snapshot(con)
    target = IndexState(snapshot, _snapshot_time_us(con, snapshot), con.execute(ARTICLES_UUID_SQL).fetchone()[0])
    index, state = _open_index(folder), _read_state(folder)
    if index is not None and state is not None:
        if state == target:
            return SearchSync(0, 0, snapshot)
        if state.snapshot > snapshot and _kept(con, state):
            raise SearchError(f"{folder}: the index is at snapshot {state.snapshot}, after the "
                              f"connection's {snapshot}: sync with a connection on the latest snapshot")
        changes = _changes_since(con, state, target) if state.snapshot < snapshot else None
        if changes is not None:
            reader, rows = changes
            added, removed = _commit(index, _rows(reader), replace_all=False,
                                     threads=WRITER_THREADS if rows >= LARGE_CHANGE_ROWS else 1)
            _write_state(folder, target)
            return SearchSync(added, removed, snapshot)
    # An index that opens is rebuilt in place, its old documents searchable until the
    # rebuild's commit replaces them all.
    replaced = index.searcher().num_docs if index is not None else 0
    index = index or _new_index(folder)
    articles = con.execute(ALL_ARTICLES_SQL, {"snapshot": snapshot}).to_arrow_reader(BATCH_ROWS)
    added, _ = _commit(index, _rows(articles), replace_all=True)
    _write_state(folder, target)
    return SearchSync(added, replaced, snapshot, rebuilt=True)


def _marked(snippet: tantivy.Snippet) -> str:
    """The snippet's text with its matched words as **word**, on one line."""
    # highlighted() gives UTF-8 byte offsets into the fragment
    fragment = snippet.fragment().encode("utf-8")
    parts, end = [], 0
    for matched in sorted(snippet.highlighted(), key=lambda r: r.start):
        parts += [fragment[end:matched.start], b"**", fragment[matched.start:matched.end], b"**"]
        end = matched.end
    parts.append(fragment[end:])
    return " ".join(b"".join(parts).decode("utf-8").split())


def _opening(text: str) -> str:
    """The start of a text, cut at a word, for a hit whose body and lede match no word."""
    words = " ".join(text.split())
    return words if len(words) <= SNIPPET_CHARS else words[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"


def _snippet(document: tantivy.Document, generators: dict[str, tantivy.SnippetGenerator]) -> str:
    """From the first of body and lede where a query word matched; else the opening of the
    text (a hit on its title or authors)."""
    for generator in generators.values():
        snippet = generator.snippet_from_doc(document)
        if snippet.highlighted():
            return _marked(snippet)
    return _opening(document.get_first("body") or document.get_first("lede") or "")


def _open_for_search(warehouse_dir: Path) -> tantivy.Index:
    folder = index_dir(warehouse_dir)
    index = _open_index(folder)
    if index is None:
        raise SearchError(f"{folder}: no search index here (sync_search_index builds it)")
    return index


def search(warehouse_dir: Path, terms: str, limit: int = 10) -> list[SearchHit]:
    """The best `limit` articles for `terms` (tantivy's query language), best first, each
    with a snippet of its body (or lede) marking the matched words as **word**."""
    index = _open_for_search(warehouse_dir)
    try:
        query = index.parse_query(terms, SEARCHED_FIELDS)
    except ValueError as exc:
        raise SearchError(f"search query {terms!r} cannot be parsed: {exc}") from None
    if limit < 1:  # tantivy panics on a limit of 0
        return []
    searcher = index.searcher()
    # the body first, as it holds the most text (the lede is its start); the lede for a
    # teaser, which has no body
    snippets = {name: tantivy.SnippetGenerator.create(searcher, query, index.schema, name) for name in ("body", "lede")}
    for generator in snippets.values():
        generator.set_max_num_chars(SNIPPET_CHARS)
    hits = []
    for score, address in searcher.search(query, limit).hits:
        document = searcher.doc(address)
        hits.append(SearchHit(document.get_first("article_id"), float(score), _snippet(document, snippets)))
    return hits


def register_search(con: duckdb.DuckDBPyConnection, warehouse_dir: Path) -> None:
    """Make search callable from SQL in `con` (a connection from tasks.lake.open_lake, on any
    snapshot): search_hits(terms, max_hits) and the temp table macro search_articles(terms
    [, max_hits := 1000]). The index is the latest one: hits of articles that `con`'s
    snapshot does not hold drop out of search_articles' join. Registering again (another
    warehouse) replaces the function."""
    def search_hits(terms: str, max_hits: int) -> list[dict[str, Any]]:
        return [{"article_id": h.article_id, "score": h.score, "snippet": h.snippet}
                for h in search(warehouse_dir, terms, max_hits)]

    try:
        con.remove_function("search_hits")
    except duckdb.InvalidInputException:  # not registered yet
        pass
    con.create_function("search_hits", search_hits, ["VARCHAR", "INTEGER"], SEARCH_HIT_TYPE)
    con.execute(SEARCH_MACRO_SQL)


def format_hits(hits: list[SearchHit], articles_by_id: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """Hits as text, one block a hit: rank, score, article id (and the title and date when
    `articles_by_id` has the article's row), then the snippet."""
    if not hits:
        return "no matching articles"
    blocks = []
    for rank, hit in enumerate(hits, start=1):
        heading = f"{rank}. {hit.score:.2f}  {hit.article_id}"
        article = (articles_by_id or {}).get(hit.article_id)
        if article:
            heading += "  " + "  ".join(str(article[k]) for k in ("title", "published_on") if article.get(k))
        blocks.append(f"{heading}\n   {hit.snippet}")
    return "\n\n".join(blocks)
