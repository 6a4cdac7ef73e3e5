"""History: the warehouse as of an earlier run, rollback of bad runs, and vacuum.

Every run commits one lake snapshot named by its run id (tasks/lake.py), so:

- as of a run: a connection on that run's snapshot reads the warehouse as it was after it
  (gleaner.connect(DIR, as_of=RUN_ID), `gleaner sql DIR --as-of RUN_ID`);
- rollback of a run: the data tables are brought back to the snapshot before it, in a new
  snapshot of their own, which undoes that run and every run after it. The dumps those runs
  loaded lose their rows, so the next run finds them new again. `runs` and `dq_results` are
  the warehouse's log and keep every run: the rollback adds its own `runs` row (kind
  'rollback', rolled_back = the runs it undid). Rows are restored by their lake row id, so
  the rows that come back are those that were there, not look-alikes;
- vacuum: snapshots older than the last `keep` runs (and the one each of them could be
  rolled back to) are expired, and the data files only they used are deleted.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from tasks import lake
from tasks.followers import follow_lake
from tasks.load import SCHEMA, in_transaction, insert_rows, writer_lock

#: the tables a rollback restores; runs and dq_results are the log of what happened
RESTORED = [t for t in SCHEMA if t not in ("runs", "dq_results")]


@dataclass(frozen=True)
class Rollback:
    rollback_id: str
    rolled_back: list[str]  # the runs undone, oldest first
    restored_snapshot: int  # the snapshot whose data the warehouse now holds


@dataclass(frozen=True)
class Vacuum:
    kept_runs: int
    expired_snapshots: int
    files_deleted: int


def _undone_before(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {run for (runs,) in con.execute(
        "SELECT rolled_back FROM runs WHERE kind = 'rollback'").fetchall() for run in runs or []}


def rollback_to_before(con: duckdb.DuckDBPyConnection, run_id: str) -> Rollback:
    """Undo run_id and every ingest run after it, on the run's connection `con` (writable,
    writer lock held), in one snapshot."""
    target = lake.snapshot_of_run(con, run_id)
    kinds = {run: kind for run, kind, _ in lake.run_snapshots(con)}
    if kinds.get(run_id) != "ingest":
        raise lake.WarehouseError(f"{run_id} is a {kinds.get(run_id)}, not a run: only runs are rolled back")
    kept = {snapshot for (snapshot,) in con.execute(f"SELECT snapshot_id FROM {lake.LAKE}.snapshots()").fetchall()}
    before = target - 1
    if before not in kept:
        raise lake.WarehouseError(f"the warehouse before run {run_id} was expired by `gleaner vacuum`; "
                                  "it can be read as of that run but not rolled back to before it")
    undone_already = _undone_before(con)
    undone = [run for run, kind, snapshot in lake.run_snapshots(con)
              if kind == "ingest" and snapshot >= target and run not in undone_already]
    rollback_id = str(uuid.uuid4())
    started = datetime.now(timezone.utc)

    def restore() -> None:
        for table in RESTORED:
            then = f"{table} AT (VERSION => {before})"
            con.execute(f"DELETE FROM {table} WHERE rowid NOT IN (SELECT rowid FROM {then})")
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {then} WHERE rowid NOT IN "
                        f"(SELECT rowid FROM {table})")
        insert_rows(con, "runs", [{"run_id": rollback_id, "kind": "rollback", "rolled_back": undone,
                                   "started_at": started, "finished_at": datetime.now(timezone.utc)}])
        lake.name_snapshot(con, rollback_id, "rollback")

    in_transaction(con, restore)
    return Rollback(rollback_id, undone, before)


def vacuum_snapshots(con: duckdb.DuckDBPyConnection, keep: int) -> Vacuum:
    """Expire the snapshots older than the last `keep` runs need (each run's own snapshot and
    the one before it, which its rollback restores), then delete the files no kept snapshot
    uses. On the run's connection `con` (writable, writer lock held)."""
    if keep < 1:
        raise ValueError("vacuum keeps at least one run")
    runs = [snapshot for _, kind, snapshot in lake.run_snapshots(con) if kind in ("ingest", "rollback")]
    if len(runs) <= keep:
        return Vacuum(len(runs), 0, 0)
    oldest_kept = runs[-keep] - 1
    expired = [snapshot for (snapshot,) in con.execute(
        f"SELECT snapshot_id FROM {lake.LAKE}.snapshots() WHERE snapshot_id < $oldest",
        {"oldest": oldest_kept}).fetchall()]
    if expired:
        con.execute(f"CALL ducklake_expire_snapshots('{lake.LAKE}', versions => $versions)", {"versions": expired})
    deleted = con.execute(f"SELECT count(*) FROM ducklake_cleanup_old_files('{lake.LAKE}', cleanup_all => true)"
                          ).fetchone()[0]
    return Vacuum(keep, len(expired), deleted)


def _existing(warehouse_dir: Path) -> Path:
    if not lake.exists(warehouse_dir):
        raise lake.WarehouseError(f"{warehouse_dir}: no warehouse here (no {lake.CATALOG_FILE})")
    return warehouse_dir


def rollback(warehouse_dir: Path, run_id: str) -> Rollback:
    """Undo run_id and every run after it (see rollback_to_before); the Parquet export and the
    search index follow."""
    with writer_lock(_existing(warehouse_dir)), lake.open_lake(warehouse_dir, read_only=False) as con:
        done = rollback_to_before(con, run_id)
        follow_lake(con, warehouse_dir)
        return done


def vacuum(warehouse_dir: Path, keep: int) -> Vacuum:
    """Expire old snapshots (see vacuum_snapshots); the export and the search index first catch
    up with the lake, as they follow it through snapshots that vacuum may expire."""
    with writer_lock(_existing(warehouse_dir)), lake.open_lake(warehouse_dir, read_only=False) as con:
        follow_lake(con, warehouse_dir)
        return vacuum_snapshots(con, keep)
