"""Export: every table's rows as plain Parquet files, for engines other than DuckDB (all but
article_fingerprints, dedup's own).

The lake's own data files are Parquet too, but what a snapshot holds takes its catalog to
know (which files, and which rows of them later delete files removed). The export is the
lake's change feed (DuckLake's table_changes) written out snapshot by snapshot, one folder
per snapshot, so that a run writes what it changed and never rewrites a file:

    parquet/<snapshot>-<run_id>/<table>.parquet          rows the run inserted, with `_row`
    parquet/<snapshot>-<run_id>/<table>-deleted.parquet  `_row` of the rows it deleted

A table's current rows are the rows of parquet/*/<table>.parquet whose `_row` is in none of
parquet/*/<table>-deleted.parquet (`_row` is the row's id in the lake, never reused): see
export_query. Read with union_by_name: columns added later are NULL in earlier files.

A snapshot's folder is written in parquet/.partial/ and renamed into place whole, so the
export always holds whole snapshots, and the newest folder says which snapshot it has
reached; a run killed while exporting leaves a partial folder that the next run writes again.
Without an export (a new warehouse, a deleted folder) or when the snapshots it would follow
were expired by vacuum before it followed them, it starts afresh: a `<snapshot>-base` folder
with every table's current rows (and an empty deletions file each, so that every pattern
above matches a file).
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from tasks import lake
from tasks.load import SCHEMA as LAKE_SCHEMA

#: every table but dedup's fingerprints, which only dedup reads
SCHEMA = {table: schema for table, schema in LAKE_SCHEMA.items() if table != "article_fingerprints"}

EXPORT_DIR = "parquet"
ROW_ID = "_row"
BASE = "base"
_BATCH_ROWS = 8192
_SNAPSHOT_FOLDER = re.compile(r"(\d{8})-.+")


def export_folder(warehouse_dir: Path) -> Path:
    return warehouse_dir / EXPORT_DIR


def exported_snapshots(warehouse_dir: Path) -> dict[int, Path]:
    """snapshot -> its folder, for every snapshot the export holds."""
    folder = export_folder(warehouse_dir)
    found = {}
    for path in folder.iterdir() if folder.is_dir() else ():
        if (match := _SNAPSHOT_FOLDER.fullmatch(path.name)) and path.is_dir():
            found[int(match.group(1))] = path
    return found


def exported_snapshot(warehouse_dir: Path) -> int | None:
    """The lake snapshot the export has reached (None: no export yet)."""
    return max(exported_snapshots(warehouse_dir), default=None)


def _write(con: duckdb.DuckDBPyConnection, sql: str, params: dict, path: Path, schema: pa.Schema | None = None) -> None:
    """The query's rows as one zstd Parquet file, streamed (a run's rows of a table need not
    fit in memory); no file when there are no rows, unless `schema` asks for an empty one."""
    reader = con.execute(sql, params).to_arrow_reader(_BATCH_ROWS)
    writer = None
    try:
        for batch in reader:
            if batch.num_rows == 0:
                continue
            if writer is None:
                # no dictionaries: a long text's costs time to write and to read, and the
                # files came out no smaller with them
                writer = pq.ParquetWriter(path, reader.schema, compression="zstd", use_dictionary=False)
            writer.write_batch(batch)
    finally:
        if writer is not None:
            writer.close()
    if writer is None and schema is not None:
        pq.write_table(schema.empty_table(), path)


def _columns(table: str) -> str:
    return ", ".join(f'"{f.name}"' for f in SCHEMA[table])


def _publish(folder: Path, name: str, fill) -> None:
    """Write a snapshot's folder in parquet/.partial/ (where no reader's pattern looks), then
    rename it into place whole."""
    partial = folder / ".partial" / name
    shutil.rmtree(partial, ignore_errors=True)  # what a killed export left
    partial.mkdir(parents=True)
    fill(partial)
    os.replace(partial, folder / name)


def _export_base(con: duckdb.DuckDBPyConnection, folder: Path, snapshot: int) -> None:
    """Start the export afresh from the tables' current rows."""
    def fill(into: Path) -> None:
        for table, schema in SCHEMA.items():
            _write(con, f"SELECT {_columns(table)}, rowid AS {ROW_ID} FROM {table} AT (VERSION => {snapshot})", {},
                   into / f"{table}.parquet", schema.append(pa.field(ROW_ID, pa.int64())))
            pq.write_table(pa.table({ROW_ID: pa.array([], pa.int64())}), into / f"{table}-deleted.parquet")

    earlier = list(exported_snapshots(folder.parent).values())
    _publish(folder, f"{snapshot:08d}-{BASE}", fill)
    for path in earlier:
        shutil.rmtree(path)


def _changed_tables(con: duckdb.DuckDBPyConnection, snapshot: int) -> set[str]:
    """The tables whose rows the snapshot changed (the catalog lists them by table id)."""
    changes = con.execute(f"SELECT changes FROM {lake.LAKE}.snapshots() WHERE snapshot_id = $snapshot",
                          {"snapshot": snapshot}).fetchone()[0] or {}
    ids = set(changes.get("tables_inserted_into", [])) | set(changes.get("tables_deleted_from", []))
    return {name for name, table_id in con.execute(
        f"SELECT table_name, table_id FROM ducklake_table_info('{lake.LAKE}')").fetchall() if str(table_id) in ids}


def _export_table_changes(con: duckdb.DuckDBPyConnection, table: str, snapshot: int, into: Path) -> None:
    """The table's rows the snapshot inserted, and the ids of those it deleted: two reads of
    its changes (one read split into both files hung DuckDB 1.5.5 once, at 1 GB, with no
    thread busy)."""
    changes, params = f"FROM {lake.LAKE}.table_changes($table, {snapshot}, {snapshot})", {"table": table}
    _write(con, f"SELECT {_columns(table)}, rowid AS {ROW_ID} {changes} WHERE change_type = 'insert'", params,
           into / f"{table}.parquet")
    _write(con, f"SELECT rowid AS {ROW_ID} {changes} WHERE change_type = 'delete'", params,
           into / f"{table}-deleted.parquet")


def _export_snapshot(con: duckdb.DuckDBPyConnection, folder: Path, snapshot: int, name: str) -> None:
    changed = _changed_tables(con, snapshot)

    def fill(into: Path) -> None:
        for table in (t for t in SCHEMA if t in changed):
            _export_table_changes(con, table, snapshot, into)

    _publish(folder, f"{snapshot:08d}-{name}", fill)


def export_changes(con: duckdb.DuckDBPyConnection, warehouse_dir: Path) -> list[int]:
    """Bring parquet/ up to the lake's current snapshot; returns the snapshots exported."""
    folder = export_folder(warehouse_dir)
    folder.mkdir(parents=True, exist_ok=True)
    current = lake.current_snapshot(con)
    done = exported_snapshot(warehouse_dir)
    kept = {snapshot for (snapshot,) in con.execute(f"SELECT snapshot_id FROM {lake.LAKE}.snapshots()").fetchall()}
    pending = [] if done is None else list(range(done + 1, current + 1))
    # The change feed of a snapshot needs the one before it: rows a later snapshot deleted are
    # read from files that only the earlier snapshots still reference.
    if done is None or done > current or done not in kept or any(s not in kept for s in pending):
        _export_base(con, folder, current)
        return [current]
    names = {snapshot: run_id for run_id, _, snapshot in lake.run_snapshots(con)}
    for snapshot in pending:
        _export_snapshot(con, folder, snapshot, names.get(snapshot, "snapshot"))
    return pending


def export_query(warehouse_dir: Path, table: str) -> str:
    """DuckDB SQL for a table's current rows read from the export alone (the rule above, as
    another engine would apply it)."""
    folder = export_folder(warehouse_dir)
    return (f"SELECT * EXCLUDE ({ROW_ID}) FROM read_parquet('{folder}/*/{table}.parquet', union_by_name => true) "
            f"WHERE {ROW_ID} NOT IN (SELECT {ROW_ID} FROM read_parquet('{folder}/*/{table}-deleted.parquet'))")
