"""Load: write a run's results into the warehouse, all or nothing, without blocking readers.

The DuckDB file DIR/gleaner.duckdb is the warehouse's source of truth, and analysts may
hold it open read-only at any time. DuckDB lets a file have one writer or many readers,
never both, so a run never writes the published file: it copies it to a private next
version, writes its rows there inside one transaction that the load gate checks before
COMMIT, and publishes the new version by an atomic rename. Readers that had the old file
open keep reading the old version; new readers see the new one; nobody sees half a load.
A run killed midway leaves the published file as it was. One run writes at a time: a lock
file (DIR/.gleaner.lock) refuses a second.

After publishing, each table is exported to DIR/parquet/<table>/<table>.parquet (zstd),
each file replaced atomically.
"""
from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from tasks.analytics import create_views, ensure_search_index
from tasks.stage import DUCKDB_CONFIG, deduped_articles, deduped_occurrences, removed_files, stream_rows

DB_FILE = "gleaner.duckdb"
NEXT_DB_FILE = ".gleaner.duckdb.next"  # the version a run writes, until it is published
LOCK_FILE = ".gleaner.lock"
Outcome = TypeVar("Outcome")

# Contract columns first, in contract order; Gleaner's own columns after them.
SCHEMA: dict[str, pa.Schema] = {
    "articles": pa.schema([
        ("article_id", pa.string()), ("kind", pa.string()), ("authors", pa.list_(pa.string())),
        ("published_on", pa.date32()), ("title", pa.string()), ("category", pa.string()),
        ("lede", pa.string()), ("body", pa.string()), ("bio", pa.string()), ("word_count", pa.int32()),
        ("author_key", pa.string()), ("run_id", pa.string()),
    ]),
    "article_sections": pa.schema([
        ("article_id", pa.string()), ("ordinal", pa.int32()), ("heading", pa.string()), ("text", pa.string()),
    ]),
    "article_occurrences": pa.schema([
        ("article_id", pa.string()), ("source_file", pa.string()), ("ordinal", pa.int32()),
        ("source_sha256", pa.string()), ("run_id", pa.string()),
    ]),
    "removed_text": pa.schema([
        ("source_file", pa.string()), ("line_no", pa.int32()), ("category", pa.string()), ("text", pa.string()),
        ("source_sha256", pa.string()), ("run_id", pa.string()),
    ]),
    "dumps": pa.schema([
        ("source_file", pa.string()), ("source_sha256", pa.string()), ("bytes", pa.int64()),
        ("format", pa.string()), ("status", pa.string()), ("reason", pa.string()),
        ("encoding", pa.string()), ("articles", pa.int32()), ("run_id", pa.string()),
        ("processed_at", pa.timestamp("us", tz="UTC")),
    ]),
    "dq_results": pa.schema([
        ("run_id", pa.string()), ("step", pa.string()), ("suite", pa.string()), ("success", pa.bool_()),
        ("evaluated", pa.int32()), ("failed", pa.int32()), ("details", pa.string()),
    ]),
    "runs": pa.schema([
        ("run_id", pa.string()), ("started_at", pa.timestamp("us", tz="UTC")),
        ("finished_at", pa.timestamp("us", tz="UTC")), ("raw_dir", pa.string()),
        ("dumps_loaded", pa.int32()), ("dumps_quarantined", pa.int32()), ("dumps_skipped", pa.int32()),
        ("articles_new", pa.int32()), ("articles_updated", pa.int32()), ("occurrences", pa.int32()),
    ]),
}

_DUCKDB_TYPES = {
    pa.string(): "VARCHAR", pa.list_(pa.string()): "VARCHAR[]", pa.date32(): "DATE", pa.int32(): "INTEGER",
    pa.int64(): "BIGINT", pa.bool_(): "BOOLEAN", pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}


class WarehouseBusy(RuntimeError):
    """Another run (or process) is writing the warehouse."""


@dataclass(frozen=True)
class DumpRow:
    source_file: str
    source_sha256: str
    bytes: int
    format: str
    status: str  # 'loaded' or 'quarantined'
    reason: str | None
    encoding: str | None
    articles: int


@dataclass(frozen=True)
class DqRow:
    step: str
    suite: str
    success: bool
    evaluated: int
    failed: int
    details: str


@dataclass
class RunRows:
    """Everything one run writes."""

    run_id: str
    started_at: datetime
    raw_dir: str
    dumps: list[DumpRow] = field(default_factory=list)
    dq: list[DqRow] = field(default_factory=list)
    #: the run's stage folder, whose deduped articles and occurrences and removals the load
    #: writes; None when the run writes nothing but its dumps rows (a refused load)
    stage: Path | None = None
    #: dumps whose staged removals must not be loaded (refused after staging, by dedup's gate)
    excluded: set[str] = field(default_factory=set)
    dumps_skipped: int = 0
    articles_new: int = 0
    articles_updated: int = 0
    occurrences: int = 0


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    for table, schema in SCHEMA.items():
        columns = ", ".join(f'"{f.name}" {_DUCKDB_TYPES[f.type]}' for f in schema)
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")


@contextmanager
def writer_lock(warehouse_dir: Path) -> Iterator[None]:
    """Hold the warehouse's writer lock; another run holding it is refused with a reason."""
    warehouse_dir.mkdir(parents=True, exist_ok=True)
    path = warehouse_dir / LOCK_FILE
    with path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise WarehouseBusy(f"another run is writing the warehouse {warehouse_dir} (it holds {path}); "
                                "try again when it has finished") from exc
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def open_published(warehouse_dir: Path) -> duckdb.DuckDBPyConnection:
    """The published warehouse, read-only (created empty, with its tables, if missing)."""
    path = warehouse_dir / DB_FILE
    if not path.exists():
        with next_version(warehouse_dir):
            pass
    try:
        return duckdb.connect(str(path), read_only=True, config=DUCKDB_CONFIG)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseBusy(f"{path} is held open for writing by another process; "
                                "analysts should open it with read_only=True") from exc
        raise


@contextmanager
def next_version(warehouse_dir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writable copy of the published warehouse, published by an atomic rename when the
    block ends normally and discarded when it raises. Call with the writer lock held and
    no connection of this process open on the published file."""
    published, draft = warehouse_dir / DB_FILE, warehouse_dir / NEXT_DB_FILE
    drafts = (draft, draft.with_name(draft.name + ".wal"))

    def discard() -> None:
        for path in drafts:
            path.unlink(missing_ok=True)

    discard()  # what a killed run left
    con = None
    try:
        if published.exists():
            shutil.copyfile(published, draft)
        con = duckdb.connect(str(draft), config=DUCKDB_CONFIG)
        create_tables(con)
        create_views(con)
        ensure_search_index(con)
        yield con
        con.execute("CHECKPOINT")  # everything in the file itself: no write-ahead log to carry
    except BaseException:
        if con is not None:
            con.close()
        discard()
        raise
    con.close()
    os.replace(draft, published)


def loaded_dumps(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
    return set(con.execute(
        "SELECT source_file, source_sha256 FROM dumps WHERE status = 'loaded'").fetchall())


KNOWN_SQL = """
WITH chosen AS (SELECT * FROM articles WHERE author_key IN (SELECT unnest($keys))),
sections AS (
    SELECT article_id, list(struct_pack(heading := heading, text := text) ORDER BY ordinal) AS sections
    FROM article_sections WHERE article_id IN (SELECT article_id FROM chosen) GROUP BY article_id)
SELECT a.article_id, a.kind, a.authors, a.published_on, a.title, a.category, a.lede, a.body, a.bio,
       a.word_count, a.author_key, s.sections
FROM chosen a LEFT JOIN sections s USING (article_id)
ORDER BY a.author_key, a.article_id"""


def known_articles(con: duckdb.DuckDBPyConnection, author_keys: list[str]) -> Iterator[dict]:
    """The warehouse's articles by these authors, as rows ordered by author_key then
    article_id (for dedup)."""
    return stream_rows(con, KNOWN_SQL, {"keys": author_keys})


def _arrow(table: str, rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA[table])


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    if rows:
        staged = _arrow(table, rows)  # noqa: F841 - read by name by DuckDB's replacement scan
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM staged")


def _execute(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> None:
    """con.execute with the named parameters the statement uses (DuckDB refuses others)."""
    con.execute(sql, {name: value for name, value in params.items() if f"${name}" in sql})


def stage_run(con: duckdb.DuckDBPyConnection, rows: RunRows) -> None:
    """Write the run's rows inside the caller's open transaction: its dumps rows, and the
    deduped articles and occurrences and the removals in its stage (tasks/stage.py)."""
    now = datetime.now(timezone.utc)
    params = {"run_id": rows.run_id}
    if rows.stage is not None:
        params |= {"articles": str(deduped_articles(rows.stage)), "occurrences": str(deduped_occurrences(rows.stage)),
                   "removed": removed_files(rows.stage), "excluded": sorted(rows.excluded)}
        # An article that gained something is rewritten whole, under this run's id.
        _execute(con, "DELETE FROM article_sections WHERE article_id IN "
                    "(SELECT article_id FROM read_parquet($articles))", params)
        _execute(con, "DELETE FROM articles WHERE article_id IN (SELECT article_id FROM read_parquet($articles))",
                    params)
        _execute(con, """INSERT INTO articles BY NAME
                       SELECT * EXCLUDE (sections, source_file, ordinal), $run_id AS run_id
                       FROM read_parquet($articles)""", params)
        _execute(con, """INSERT INTO article_sections BY NAME
                       SELECT article_id, unnest(range(1, len(sections) + 1)) AS ordinal,
                              unnest(sections, recursive := true)
                       FROM read_parquet($articles)""", params)
        _execute(con, """INSERT INTO article_occurrences BY NAME
                       SELECT *, $run_id AS run_id FROM read_parquet($occurrences)""", params)
        _execute(con, """INSERT INTO removed_text BY NAME
                       SELECT *, $run_id AS run_id FROM read_parquet($removed)
                       WHERE NOT list_contains($excluded, source_file)""", params)
    redone = pa.table({"source_file": pa.array([d.source_file for d in rows.dumps], pa.string()),
                       "source_sha256": pa.array([d.source_sha256 for d in rows.dumps], pa.string())})
    # A dump refused by an earlier run and tried again keeps one row: the latest outcome.
    con.execute("""DELETE FROM dumps WHERE status = 'quarantined' AND EXISTS (
                       SELECT 1 FROM redone r
                       WHERE r.source_file = dumps.source_file AND r.source_sha256 = dumps.source_sha256)""")
    del redone
    _insert(con, "dumps", [
        {"source_file": d.source_file, "source_sha256": d.source_sha256, "bytes": d.bytes, "format": d.format,
         "status": d.status, "reason": d.reason, "encoding": d.encoding, "articles": d.articles,
         "run_id": rows.run_id, "processed_at": now} for d in rows.dumps])


def record_run(con: duckdb.DuckDBPyConnection, rows: RunRows) -> None:
    """The run's dq_results and its line in `runs` (written even when the load is refused)."""
    _insert(con, "dq_results", [
        {"run_id": rows.run_id, "step": q.step, "suite": q.suite, "success": q.success,
         "evaluated": q.evaluated, "failed": q.failed, "details": q.details} for q in rows.dq])
    _insert(con, "runs", [{
        "run_id": rows.run_id, "started_at": rows.started_at, "finished_at": datetime.now(timezone.utc),
        "raw_dir": rows.raw_dir,
        "dumps_loaded": sum(d.status == "loaded" for d in rows.dumps),
        "dumps_quarantined": sum(d.status == "quarantined" for d in rows.dumps),
        "dumps_skipped": rows.dumps_skipped, "articles_new": rows.articles_new,
        "articles_updated": rows.articles_updated, "occurrences": rows.occurrences,
    }])


def in_transaction(con: duckdb.DuckDBPyConnection, work: Callable[[], Outcome],
                   commit_if: Callable[[Outcome], bool] = lambda _: True) -> Outcome:
    """Run work() in one transaction, committed when commit_if(its outcome), else rolled back.

    DuckDB's write-ahead log makes the commit atomic: a process killed before it leaves
    the warehouse as it was."""
    con.execute("BEGIN TRANSACTION")
    try:
        outcome = work()
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT" if commit_if(outcome) else "ROLLBACK")
    return outcome


#: how to read each table's rows of one run: article_sections has no run_id of its own
RUN_ROWS = {table: f"SELECT * FROM {table} WHERE run_id = $run_id" for table in SCHEMA} | {
    "article_sections": "SELECT s.* FROM article_sections s JOIN articles a USING (article_id) "
                        "WHERE a.run_id = $run_id"}
_ROWS_BY_RUN = {table: f"SELECT run_id, count(*) FROM {table} GROUP BY run_id" for table in SCHEMA} | {
    "article_sections": "SELECT a.run_id, count(*) FROM article_sections JOIN articles a USING (article_id) "
                        "GROUP BY a.run_id"}


_EXPORT_BATCH_ROWS = 8192
EMPTY_RUN = "none"  # the file name of a table that has no rows yet: run-none.parquet


def parquet_file(warehouse_dir: Path, table: str, run_id: str) -> Path:
    return warehouse_dir / "parquet" / table / f"run-{run_id}.parquet"


def export_parquet(warehouse_dir: Path) -> list[Path]:
    """Bring WAREHOUSE/parquet/<table>/ in line with the published warehouse: one zstd file
    per table and run holding that run's rows (a table is all files of its folder).

    A run only adds rows under its own id, and takes rows away from earlier runs (an article
    rewritten, a quarantined dump loaded at last), so a run's file is written when it is
    missing or its row count differs from the database's; files of runs that no longer have
    rows are deleted. A run therefore writes its own files and the few it changed, never the
    whole warehouse; and a run killed while exporting is caught up by the next. Each file is
    replaced atomically. Returns the files written."""
    written = []
    published = warehouse_dir / DB_FILE
    with duckdb.connect(str(published), read_only=True, config=DUCKDB_CONFIG) as con:
        for table in SCHEMA:
            folder = warehouse_dir / "parquet" / table
            folder.mkdir(parents=True, exist_ok=True)
            # A table without rows still has a file, so that read_parquet of the folder works.
            stored = dict(con.execute(_ROWS_BY_RUN[table]).fetchall()) or {EMPTY_RUN: 0}
            exported = {path: pq.read_metadata(path).num_rows for path in folder.glob("*.parquet")}
            for path in set(exported) - {parquet_file(warehouse_dir, table, run) for run in stored}:
                path.unlink()  # a run with no rows left, or the one-file layout of earlier versions
            for run_id, count in sorted(stored.items()):
                path = parquet_file(warehouse_dir, table, run_id)
                if exported.get(path) == count:
                    continue
                partial = folder / f".run-{run_id}.parquet.partial"
                # Streamed a few thousand rows at a time: a run's table may not fit in memory.
                rows = con.execute(RUN_ROWS[table], {"run_id": run_id}).fetch_record_batch(_EXPORT_BATCH_ROWS)
                with pq.ParquetWriter(partial, rows.schema, compression="zstd") as parquet:
                    for batch in rows:
                        parquet.write_batch(batch)
                os.replace(partial, path)
                written.append(path)
    return written
