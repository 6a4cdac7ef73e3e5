"""Export: every table's rows as plain Parquet files, for engines other than DuckDB.

The lake's own data files are Parquet too, but what a snapshot holds takes its catalog to
know (which files, and which rows of them later delete files removed). The export is the
lake's change feed (DuckLake's table_changes) written out snapshot by snapshot, so that a
run writes what it changed and never rewrites a file:

    parquet/<table>/<snapshot>-<run_id>.parquet          rows the run inserted, with `_row`
    parquet/<table>/deleted/<snapshot>-<run_id>.parquet  `_row` of the rows it deleted

A table's current rows are the rows of parquet/<table>/*.parquet whose `_row` is in none
of parquet/<table>/deleted/*.parquet (`_row` is the row's id in the lake, never reused).
Read the folders with union_by_name: columns added later are NULL in earlier files.
parquet/exported.json records the snapshot exported last; each snapshot's files are written
whole (renamed into place) before it is recorded, so an export killed midway is redone by
the next run. Without that record (a new warehouse, a deleted folder, snapshots expired
before they were exported), the current rows are written first as `<snapshot>-base` files.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from tasks import lake
from tasks.load import SCHEMA

EXPORT_DIR = "parquet"
STATE_FILE = "exported.json"
ROW_ID = "_row"
_BATCH_ROWS = 8192


def export_folder(warehouse_dir: Path) -> Path:
    return warehouse_dir / EXPORT_DIR


def _exported(folder: Path) -> int | None:
    try:
        return int(json.loads((folder / STATE_FILE).read_text())["snapshot"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _record(folder: Path, snapshot: int) -> None:
    partial = folder / f".{STATE_FILE}.partial"
    partial.write_text(json.dumps({"snapshot": snapshot}))
    os.replace(partial, folder / STATE_FILE)


def _write(con: duckdb.DuckDBPyConnection, sql: str, params: dict, path: Path) -> bool:
    """The query's rows as one zstd Parquet file at path, renamed into place whole; no file
    when there are no rows. Streamed: a run's rows of a table need not fit in memory."""
    reader = con.execute(sql, params).to_arrow_reader(_BATCH_ROWS)
    partial = path.with_name(f".{path.name}.partial")
    written = 0
    writer = None
    try:
        for batch in reader:
            if batch.num_rows == 0:
                continue
            if writer is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(partial, reader.schema, compression="zstd")
            writer.write_batch(batch)
            written += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    if written:
        os.replace(partial, path)
    return bool(written)


def _columns(table: str) -> str:
    return ", ".join(f'"{f.name}"' for f in SCHEMA[table])


def _export_base(con: duckdb.DuckDBPyConnection, folder: Path, snapshot: int) -> None:
    """Start the export afresh from the tables' current rows (and an empty deletions file
    each, so that every folder an engine reads has a file)."""
    for table in SCHEMA:
        shutil.rmtree(folder / table, ignore_errors=True)
        (folder / table / "deleted").mkdir(parents=True)
        _write(con, f"SELECT {_columns(table)}, rowid AS {ROW_ID} FROM {table} AT (VERSION => {snapshot})", {},
               folder / table / f"{snapshot:08d}-base.parquet")
        pq.write_table(pa.table({ROW_ID: pa.array([], pa.int64())}),
                       folder / table / "deleted" / f"{snapshot:08d}-base.parquet")
    _record(folder, snapshot)


def _export_snapshot(con: duckdb.DuckDBPyConnection, folder: Path, snapshot: int, name: str) -> None:
    changes = f"FROM {lake.LAKE}.table_changes($table, {snapshot}, {snapshot})"
    for table in SCHEMA:
        params = {"table": table}
        _write(con, f"SELECT {_columns(table)}, rowid AS {ROW_ID} {changes} WHERE change_type = 'insert'", params,
               folder / table / f"{snapshot:08d}-{name}.parquet")
        _write(con, f"SELECT rowid AS {ROW_ID} {changes} WHERE change_type = 'delete'", params,
               folder / table / "deleted" / f"{snapshot:08d}-{name}.parquet")
    _record(folder, snapshot)


def export_changes(con: duckdb.DuckDBPyConnection, warehouse_dir: Path) -> list[int]:
    """Bring parquet/ up to the lake's current snapshot; returns the snapshots exported."""
    folder = export_folder(warehouse_dir)
    folder.mkdir(parents=True, exist_ok=True)
    current = lake.current_snapshot(con)
    done = _exported(folder)
    kept = {snapshot for (snapshot,) in con.execute(f"SELECT snapshot_id FROM {lake.LAKE}.snapshots()").fetchall()}
    pending = [] if done is None else list(range(done + 1, current + 1))
    if done is None or done > current or any(s not in kept for s in pending):
        _export_base(con, folder, current)
        return [current]
    names = {snapshot: run_id for run_id, _, snapshot in lake.run_snapshots(con)}
    for snapshot in pending:
        _export_snapshot(con, folder, snapshot, names.get(snapshot, "snapshot"))
    return pending
