"""Load: write a run's results into the warehouse's lake as one snapshot, all or nothing.

A run writes everything (its dumps rows, the deduped articles and occurrences and the
removals in its stage, its checks and its line in `runs`) in one DuckLake transaction that
the load gate checks before COMMIT. The commit is the run's snapshot, named by its run id
(tasks/lake.py): readers see the warehouse without the run until then, and with all of it
after; a refused or killed load leaves the last snapshot as it was. An article that gained
something is deleted and inserted again under the run's id (never UPDATEd: the Parquet
export and the search index follow inserts and deletes, tasks/export.py, tasks/search.py).
One run writes at a time: a lock file (DIR/.gleaner.lock) refuses a second.
"""
from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import duckdb
import pyarrow as pa

from tasks import lake
from tasks.analytics import create_views
from tasks.dedup import SAME_ARTICLE_OVERLAP, fingerprints_of
from tasks.models import Dump, Quarantine
from tasks.stage import FINGERPRINT, deduped_articles, deduped_occurrences, removed_files, stream_rows

if TYPE_CHECKING:
    from tasks.batch import LoadedDump
    from tasks.validate import GateResult

LOCK_FILE = ".gleaner.lock"
#: DuckLake's options for a new lake: every row in its Parquet files, none in its catalog (no
#: data inlining); row groups small enough that a writer holds one within the run's memory
#: (by default one row group of fingerprints at 1 GB took 390 MB); files of at most 128 MB
LAKE_OPTIONS = {"data_inlining_row_limit": 0, "parquet_row_group_size": 16384,
                "parquet_row_group_size_bytes": "32MB", "target_file_size": "128MB"}
_KNOWN_BATCH_ROWS = 4096
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
        # the file's modification time when it was loaded: a file whose size and time still
        # match is not hashed again (tasks/discover.py)
        ("modified_ns", pa.int64()),
    ]),
    "dq_results": pa.schema([
        ("run_id", pa.string()), ("step", pa.string()), ("suite", pa.string()), ("success", pa.bool_()),
        ("evaluated", pa.int32()), ("failed", pa.int32()), ("details", pa.string()),
        # 'passed' | 'failed' | 'skipped' (no row to check), and the rows the suite checked
        ("status", pa.string()), ("rows_checked", pa.int64()),
    ]),
    "runs": pa.schema([
        ("run_id", pa.string()), ("started_at", pa.timestamp("us", tz="UTC")),
        ("finished_at", pa.timestamp("us", tz="UTC")), ("raw_dir", pa.string()),
        ("dumps_loaded", pa.int32()), ("dumps_quarantined", pa.int32()), ("dumps_skipped", pa.int32()),
        ("articles_new", pa.int32()), ("articles_updated", pa.int32()), ("occurrences", pa.int32()),
        # 'ingest', or 'rollback' (the runs it undid in rolled_back; tasks/history.py)
        ("kind", pa.string()), ("rolled_back", pa.list_(pa.string())),
    ]),
    # Gleaner's own: each article's dedup fingerprint, computed once when the article is
    # written and compared with the articles of later runs (tasks/dedup.py)
    "article_fingerprints": pa.schema([
        ("article_id", pa.string()), ("fingerprint", FINGERPRINT), ("run_id", pa.string()),
    ]),
}

_DUCKDB_TYPES = {
    pa.string(): "VARCHAR", pa.list_(pa.string()): "VARCHAR[]", pa.date32(): "DATE", pa.int32(): "INTEGER",
    pa.int64(): "BIGINT", pa.bool_(): "BOOLEAN", pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
    FINGERPRINT: "INTEGER[]",
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
    modified_ns: int | None = None


@dataclass(frozen=True)
class DqRow:
    step: str
    suite: str
    success: bool
    evaluated: int
    failed: int
    details: str
    status: str
    rows_checked: int


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
    #: loaded dumps found with another size or time (source_file, sha256, bytes, modified_ns):
    #: their rows take the new ones
    restamped: list[tuple[str, str, int, int | None]] = field(default_factory=list)
    dumps_skipped: int = 0
    articles_new: int = 0
    articles_updated: int = 0
    occurrences: int = 0


#: what a column added to a lake that has rows says of those rows, where it can be told
BACKFILLS = {
    # a suite always has expectations: none evaluated means an empty frame, nothing checked
    ("dq_results", "status"):
        "UPDATE dq_results SET status = CASE WHEN evaluated = 0 THEN 'skipped' WHEN success THEN 'passed' "
        "ELSE 'failed' END",
}


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The tables (and views) a warehouse has, created in their own snapshot where missing.

    A lake created before a column was added gets it (ALTER TABLE ... ADD COLUMN: a catalog
    change, no data file rewritten), filled in for the rows it has where BACKFILLS says how."""
    present = {(t, c) for t, c in con.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_catalog = $lake",
        {"lake": lake.LAKE}).fetchall()}
    tables = {t for t, _ in present}
    statements = []
    for table, schema in SCHEMA.items():
        if table not in tables:
            columns = ", ".join(f'"{f.name}" {_DUCKDB_TYPES[f.type]}' for f in schema)
            statements.append(f"CREATE TABLE {table} ({columns})")
            continue
        added = [f for f in schema if (table, f.name) not in present]
        statements += [f'ALTER TABLE {table} ADD COLUMN "{f.name}" {_DUCKDB_TYPES[f.type]}' for f in added]
        statements += [BACKFILLS[table, f.name] for f in added if (table, f.name) in BACKFILLS]
    if "articles" not in tables:
        for option, value in LAKE_OPTIONS.items():
            con.execute(f"CALL {lake.LAKE}.set_option('{option}', {lake.quoted(str(value))})")
    if statements or create_views(con, dry_run=True):
        con.execute("BEGIN TRANSACTION")
        for statement in statements:
            con.execute(statement)
        create_views(con)
        lake.name_snapshot(con, "schema", "schema")
        con.execute("COMMIT")


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


@contextmanager
def open_for_run(warehouse_dir: Path, spill_dir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The run's connection on the lake (created with its tables if missing), with the writer
    lock held. Data files that a killed run wrote and no snapshot references are deleted."""
    con = lake.open_lake(warehouse_dir, read_only=False, spill_dir=spill_dir)
    try:
        create_tables(con)
        con.execute(f"CALL ducklake_delete_orphaned_files('{lake.LAKE}', cleanup_all => true)")
        if (warehouse_dir / LEGACY_DB_FILE).is_file():
            migrate_legacy(con, warehouse_dir)
        yield con
    finally:
        con.close()


#: the single DuckDB file of Gleaner's earlier warehouses
LEGACY_DB_FILE = "gleaner.duckdb"
_FINGERPRINT_BATCH_ROWS = 2048


def migrate_legacy(con: duckdb.DuckDBPyConnection, warehouse_dir: Path) -> None:
    """Move a warehouse of the earlier layout (one DuckDB file, DIR/gleaner.duckdb) into the
    lake, as one snapshot of kind 'migration', before the lake holds anything: every table's
    rows (the columns both have, and those BACKFILLS can fill in), and a fingerprint computed
    for each article. The file is then renamed gleaner.duckdb.migrated (kept: delete it once
    the lake has been checked).
    A migration killed midway leaves the lake empty and is done again by the next run."""
    legacy = warehouse_dir / LEGACY_DB_FILE
    if con.execute("SELECT count(*) FROM dumps").fetchone()[0]:
        raise lake.WarehouseError(f"{legacy}: a warehouse of the earlier layout beside a lake that already "
                                  "holds dumps; move one of them away")
    con.execute(f"ATTACH {lake.quoted(str(legacy))} AS legacy (READ_ONLY)")
    try:
        columns = {(t, c) for t, c in con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_catalog = 'legacy'"
        ).fetchall()}

        def copy() -> None:
            for table, schema in SCHEMA.items():
                shared = [f'"{f.name}"' for f in schema if (table, f.name) in columns]
                if shared:
                    con.execute(f"INSERT INTO {lake.LAKE}.{table} ({', '.join(shared)}) "
                                f"SELECT {', '.join(shared)} FROM legacy.{table}")
            for (table, column), backfill in BACKFILLS.items():
                if (table, column) not in columns:
                    con.execute(backfill)
            reader = con.execute("SELECT article_id, body, run_id FROM legacy.articles").to_arrow_reader(
                _FINGERPRINT_BATCH_ROWS)
            for batch in reader:
                rows = batch.to_pylist()
                insert_rows(con, "article_fingerprints", [
                    {"article_id": row["article_id"], "fingerprint": hashes, "run_id": row["run_id"]}
                    for row, hashes in zip(rows, fingerprints_of([row["body"] or "" for row in rows]).to_pylist())])
            lake.name_snapshot(con, "migration", "migration")

        in_transaction(con, copy)
    finally:
        con.execute("DETACH legacy")
    legacy.rename(legacy.with_name(legacy.name + ".migrated"))


def loaded_dumps(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, int, int | None]]:
    """source_file -> (sha256, bytes, modified_ns) of every loaded dump."""
    return {source: (sha, size, modified) for source, sha, size, modified in con.execute(
        "SELECT source_file, source_sha256, bytes, modified_ns FROM dumps WHERE status = 'loaded'").fetchall()}


def published_dumps(warehouse_dir: Path) -> dict[str, tuple[str, int, int | None]]:
    """loaded_dumps() of the warehouse's last snapshot, read as a reader would; none for a
    warehouse that does not exist yet or cannot be read as a lake (the run will say why)."""
    try:
        with lake.open_lake(warehouse_dir) as con:
            return loaded_dumps(con)
    except (lake.WarehouseError, duckdb.Error):
        return {}


#: the stored articles each staged occurrence of the same authors overlaps enough to be
#: (tasks/dedup.py: same_article), found by joining their fingerprints' hashes: a run reads
#: the stored fingerprints of its authors in DuckDB, and only the articles it matches in Python
KNOWN_MATCHES_SQL = """
WITH staged AS (
    SELECT author_key, batch_no, dump_no, ordinal, len(fingerprint) AS size, unnest(fingerprint) AS hash
    FROM read_parquet($files) WHERE NOT list_contains($excluded, source_file) AND len(fingerprint) > 0),
stored AS (
    SELECT a.author_key, f.article_id, len(f.fingerprint) AS size, unnest(f.fingerprint) AS hash
    FROM article_fingerprints f JOIN articles a USING (article_id)
    WHERE a.author_key IN (SELECT unnest($keys)) AND len(f.fingerprint) > 0)
SELECT s.author_key, s.batch_no, s.dump_no, s.ordinal, k.article_id
FROM staged s JOIN stored k USING (author_key, hash)
GROUP BY s.author_key, s.batch_no, s.dump_no, s.ordinal, k.article_id, s.size, k.size
HAVING count(*) >= $overlap * least(s.size, k.size)"""

#: what dedup needs of those articles, and of the stored articles without text (whose
#: fingerprint is empty: compared by date and title): everything but the texts
KNOWN_SQL = """
SELECT a.article_id, a.kind, a.authors, a.published_on, a.title, a.category, a.lede, a.bio, a.word_count,
       a.author_key, f.fingerprint
FROM articles a JOIN article_fingerprints f USING (article_id)
WHERE a.article_id IN (SELECT unnest($ids)) OR (a.author_key IN (SELECT unnest($keys)) AND len(f.fingerprint) = 0)"""

TEXTS_SQL = """
WITH chosen AS (SELECT article_id, body FROM articles WHERE article_id IN (SELECT unnest($ids))),
sections AS (
    SELECT article_id, list(struct_pack(heading := heading, text := text) ORDER BY ordinal) AS sections
    FROM article_sections WHERE article_id IN (SELECT unnest($ids)) GROUP BY article_id)
SELECT c.article_id, c.body, s.sections FROM chosen c LEFT JOIN sections s USING (article_id)"""


class StoredArticles:
    """The warehouse's articles as dedup asks for them (tasks/stage.py: KnownArticles), read
    through the run's connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def matches(self, occurrences: str, excluded: list[str], keys: list[str]) -> list[tuple]:
        """(author_key, batch_no, dump_no, ordinal, article_id): each staged occurrence (files
        `occurrences`, less the excluded dumps') and a stored article it is a copy of."""
        return self.con.execute(KNOWN_MATCHES_SQL, {"files": occurrences, "excluded": excluded, "keys": keys,
                                                    "overlap": SAME_ARTICLE_OVERLAP}).fetchall()

    def stubs(self, keys: list[str], ids: list[str]) -> Iterator[pa.RecordBatch]:
        """The articles `ids`, and those of these authors without text, without their texts."""
        return self.con.execute(KNOWN_SQL, {"keys": keys, "ids": ids}).to_arrow_reader(_KNOWN_BATCH_ROWS)

    def texts(self, ids: list[str]) -> dict[str, dict]:
        """article_id -> {body, sections} of these articles (dedup rewrites them)."""
        return {row["article_id"]: row for row in stream_rows(self.con, TEXTS_SQL, {"ids": ids})}


def _arrow(table: str, rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA[table])


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
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
        for table in ("article_sections", "article_fingerprints", "articles"):
            _execute(con, f"DELETE FROM {table} WHERE article_id IN "
                          "(SELECT article_id FROM read_parquet($articles))", params)
        _execute(con, """INSERT INTO articles BY NAME
                       SELECT * EXCLUDE (sections, source_file, ordinal, fingerprint), $run_id AS run_id
                       FROM read_parquet($articles)""", params)
        _execute(con, """INSERT INTO article_sections BY NAME
                       SELECT article_id, unnest(range(1, len(sections) + 1)) AS ordinal,
                              unnest(sections, recursive := true)
                       FROM read_parquet($articles)""", params)
        _execute(con, """INSERT INTO article_fingerprints BY NAME
                       SELECT article_id, fingerprint, $run_id AS run_id FROM read_parquet($articles)""", params)
        _execute(con, """INSERT INTO article_occurrences BY NAME
                       SELECT *, $run_id AS run_id FROM read_parquet($occurrences)""", params)
        _execute(con, """INSERT INTO removed_text BY NAME
                       SELECT *, $run_id AS run_id FROM read_parquet($removed)
                       WHERE NOT list_contains($excluded, source_file)""", params)
    if rows.restamped:
        restamped = pa.table({name: pa.array(values, kind) for name, values, kind in zip(  # noqa: F841 - by name
            ("source_file", "source_sha256", "bytes", "modified_ns"), zip(*rows.restamped),
            (pa.string(), pa.string(), pa.int64(), pa.int64()))})
        con.execute("""CREATE OR REPLACE TEMP TABLE restamp AS
                       SELECT d.* REPLACE (r.bytes AS bytes, r.modified_ns AS modified_ns)
                       FROM dumps d JOIN restamped r USING (source_file, source_sha256) WHERE d.status = 'loaded'""")
        con.execute("""DELETE FROM dumps WHERE status = 'loaded' AND EXISTS (
                           SELECT 1 FROM restamped r
                           WHERE r.source_file = dumps.source_file AND r.source_sha256 = dumps.source_sha256)""")
        con.execute("INSERT INTO dumps BY NAME SELECT * FROM temp.restamp")
        con.execute("DROP TABLE temp.restamp")
    redone = pa.table({"source_file": pa.array([d.source_file for d in rows.dumps], pa.string()),
                       "source_sha256": pa.array([d.source_sha256 for d in rows.dumps], pa.string())})
    # A dump refused by an earlier run and tried again keeps one row: the latest outcome.
    con.execute("""DELETE FROM dumps WHERE status = 'quarantined' AND EXISTS (
                       SELECT 1 FROM redone r
                       WHERE r.source_file = dumps.source_file AND r.source_sha256 = dumps.source_sha256)""")
    del redone
    insert_rows(con, "dumps", [
        {"source_file": d.source_file, "source_sha256": d.source_sha256, "bytes": d.bytes, "format": d.format,
         "status": d.status, "reason": d.reason, "encoding": d.encoding, "articles": d.articles,
         "modified_ns": d.modified_ns, "run_id": rows.run_id, "processed_at": now} for d in rows.dumps])


def dq_row(result: GateResult) -> DqRow:
    return DqRow(result.step, result.suite, result.success, result.evaluated, result.failed, result.details,
                 result.status, result.rows)


def dump_row(dump: Dump, status: str, reason: str | None = None, encoding: str | None = None,
             articles: int = 0) -> DumpRow:
    return DumpRow(dump.source_file, dump.sha256, dump.bytes, dump.format, status, reason, encoding, articles,
                   dump.modified_ns)


def quarantine_row(q: Quarantine) -> DumpRow:
    return dump_row(q.dump, "quarantined", f"{q.step}: {q.reason}")


def refuse_load(con: duckdb.DuckDBPyConnection, rows: RunRows, loaded: list[LoadedDump],
                load_gate: GateResult, quarantined: list[Quarantine]) -> list[Quarantine]:
    """After the load gate refused the run: keep none of its rows, quarantine every dump it
    read with the gate's reasons, and record that (dumps, dq_results, runs)."""
    reasons = "; ".join(sorted({r for rs in load_gate.failures.values() for r in rs})) or "load gate failed"
    refused = [Quarantine(d.dump, "load", reasons) for d in loaded]
    rows.dq.append(dq_row(load_gate))
    rows.stage = None
    rows.articles_new = rows.articles_updated = rows.occurrences = 0
    rows.dumps = [quarantine_row(q) for q in quarantined + refused]

    def write_refusal() -> None:
        stage_run(con, rows)
        record_run(con, rows)

    in_transaction(con, write_refusal)
    return refused


def record_run(con: duckdb.DuckDBPyConnection, rows: RunRows) -> None:
    """The run's dq_results and its line in `runs` (written even when the load is refused),
    and the name of the snapshot the transaction commits."""
    insert_rows(con, "dq_results", [
        {"run_id": rows.run_id, **asdict(q)} for q in rows.dq])
    insert_rows(con, "runs", [{
        "run_id": rows.run_id, "kind": "ingest", "started_at": rows.started_at,
        "finished_at": datetime.now(timezone.utc), "raw_dir": rows.raw_dir,
        "dumps_loaded": sum(d.status == "loaded" for d in rows.dumps),
        "dumps_quarantined": sum(d.status == "quarantined" for d in rows.dumps),
        "dumps_skipped": rows.dumps_skipped, "articles_new": rows.articles_new,
        "articles_updated": rows.articles_updated, "occurrences": rows.occurrences,
    }])
    lake.name_snapshot(con, rows.run_id, "ingest")


def in_transaction(con: duckdb.DuckDBPyConnection, work: Callable[[], Outcome],
                   commit_if: Callable[[Outcome], bool] = lambda _: True) -> Outcome:
    """Run work() in one transaction, committed when commit_if(its outcome), else rolled back.

    The commit is one DuckLake snapshot: a process killed before it leaves the warehouse as
    it was (and data files no snapshot references, which the next run deletes)."""
    con.execute("BEGIN TRANSACTION")
    try:
        outcome = work()
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT" if commit_if(outcome) else "ROLLBACK")
    return outcome
