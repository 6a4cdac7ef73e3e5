"""The warehouse's storage: a DuckLake, DuckDB's lakehouse format.

    WAREHOUSE/lake.sqlite    the catalog (SQLite): tables, views, and every snapshot
    WAREHOUSE/lake/          the tables' rows, as Parquet files that a run adds to

Every run commits one DuckLake snapshot, named by its run id (the snapshot's commit
extra_info), so the warehouse as it was after any run stays readable until `gleaner vacuum`
expires it. A run appends new data files (and small delete files for the rows it replaced):
its cost and the bytes it writes follow its own rows, never the warehouse's size. With the
catalog in SQLite (in WAL mode), readers query the last committed snapshot while a run
writes, a reader's open transaction keeps its snapshot, and a run's snapshot becomes
visible whole, at its COMMIT; a run killed before that leaves data files
that no snapshot references, which the next run deletes (ducklake_delete_orphaned_files).

Connections are plain in-memory DuckDB connections with the lake attached as `lake` and
selected (USE), so the contract tables and the views are visible by their plain names.
DuckDB's ducklake and sqlite extensions come from the pinned wheels (duckdb-extension-*),
since INSTALL would download them: their files are linked into an extension directory laid
out as DuckDB expects, so that ATTACH 'ducklake:sqlite:...' loads them by name, in Python and
in the DuckDB shell (`gleaner sql`) alike.
"""
from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

import duckdb

CATALOG_FILE = "lake.sqlite"
DATA_DIR = "lake"
LAKE = "lake"  # the name the lake is attached under in every connection
#: DuckDB's memory for a run's connection: beyond it, joins and sorts spill to disk (by default
#: DuckDB would take 80% of the machine's memory, and a run's memory would follow its size)
MEMORY_LIMIT = "512MB"

#: extension name DuckDB loads -> (wheel package, file in it); the sqlite wheel's file must be
#: named after its entry point, sqlite_scanner
_EXTENSIONS = {
    "ducklake": ("duckdb_extension_ducklake", "ducklake.duckdb_extension"),
    "sqlite_scanner": ("duckdb_extension_sqlite", "sqlite.duckdb_extension"),
}


class WarehouseError(RuntimeError):
    """A warehouse that cannot be opened as asked, with the reason."""


class RunNotFound(WarehouseError):
    """No snapshot of the warehouse is named by that run id (never run, or expired)."""


def _platform() -> str:
    with duckdb.connect() as con:
        return con.execute("SELECT platform FROM pragma_platform()").fetchone()[0]


def extension_directory() -> Path:
    """A DuckDB extension directory holding links to the pinned wheels' extension files,
    made on first use: in the virtual environment, or the temp folder where that is read-only."""
    for base in (Path(sys.prefix) / "share" / "gleaner", Path(tempfile.gettempdir()) / "gleaner"):
        root = base / "duckdb-extensions"
        folder = root / f"v{duckdb.__version__}" / _platform()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name, (package, filename) in _EXTENSIONS.items():
                link = folder / f"{name}.duckdb_extension"
                target = Path(str(files(package))) / "extensions" / f"v{duckdb.__version__}" / filename
                if not link.exists():
                    link.unlink(missing_ok=True)  # a dangling link of an older venv
                    link.symlink_to(target)
            return root
        except OSError:
            continue
    raise WarehouseError("no writable folder for DuckDB's extension links")


def config() -> dict:
    """DuckDB settings of every Gleaner connection: extensions from the wheels, never
    downloaded."""
    return {"extension_directory": str(extension_directory()), "autoinstall_known_extensions": False}


def exists(warehouse_dir: Path) -> bool:
    return (warehouse_dir / CATALOG_FILE).is_file()


def create_catalog(warehouse_dir: Path) -> None:
    """An empty catalog file in SQLite's write-ahead-log mode, which DuckLake then fills: in
    its default mode, a reader's open transaction would make a run's COMMIT fail with
    "database is locked"; in WAL mode readers and the writer never wait for each other."""
    warehouse_dir.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(warehouse_dir / CATALOG_FILE) as catalog:
        catalog.execute("PRAGMA journal_mode=WAL")
    catalog.close()


def quoted(text: str) -> str:
    """text as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def attach_statements(warehouse_dir: Path, read_only: bool, snapshot: int | None = None) -> list[str]:
    """The SQL that attaches the lake as `lake` and selects it (for connect() and the shell)."""
    catalog = warehouse_dir.resolve() / CATALOG_FILE
    data = warehouse_dir.resolve() / DATA_DIR
    # The catalog records where the data was when it was made; the data is always beside it,
    # so a warehouse folder that was moved or copied reads its own files.
    options = [f"DATA_PATH {quoted(str(data) + '/')}", "OVERRIDE_DATA_PATH true"]
    if snapshot is not None:
        options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
    if read_only or snapshot is not None:
        options.append("READ_ONLY")
    return [f"ATTACH {quoted('ducklake:sqlite:' + str(catalog))} AS {LAKE} ({', '.join(options)})", f"USE {LAKE}"]


def open_lake(warehouse_dir: Path, read_only: bool = True, snapshot: int | None = None,
              spill_dir: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection on the warehouse's lake (at `snapshot`, if given). A writable one
    creates the lake when there is none yet."""
    if (read_only or snapshot is not None) and not exists(warehouse_dir):
        raise WarehouseError(f"{warehouse_dir}: no warehouse here (no {CATALOG_FILE})")
    if not read_only and not exists(warehouse_dir):
        create_catalog(warehouse_dir)
    # A run's connection has bounded memory and spills to its stage; a reader's has DuckDB's
    # defaults (80% of the machine's memory): an analyst's query is not a run's.
    settings = config() | ({"memory_limit": MEMORY_LIMIT, "temp_directory": str(spill_dir)} if spill_dir else {})
    if not read_only:  # the lake's row groups are bounded in bytes, which DuckDB allows only so
        settings["preserve_insertion_order"] = False
    con = duckdb.connect(config=settings)
    try:
        for statement in attach_statements(warehouse_dir, read_only, snapshot):
            con.execute(statement)
    except duckdb.Error as exc:
        con.close()
        raise WarehouseError(f"{warehouse_dir / CATALOG_FILE}: cannot be opened as a warehouse: {exc}") from exc
    return con


# --- snapshots ---------------------------------------------------------------------------

#: every snapshot a run (or a rollback) committed, oldest first; its commit extra_info is JSON
#: {"run_id": ..., "kind": "ingest" | "rollback"}
RUN_SNAPSHOTS_SQL = f"""
    SELECT json_extract_string(commit_extra_info, '$.run_id') AS run_id,
           json_extract_string(commit_extra_info, '$.kind') AS kind,
           snapshot_id, snapshot_time
    FROM {LAKE}.snapshots()
    WHERE commit_extra_info IS NOT NULL AND json_valid(commit_extra_info)
    ORDER BY snapshot_id"""


def name_snapshot(con: duckdb.DuckDBPyConnection, run_id: str, kind: str) -> None:
    """Name the snapshot that the open transaction will commit after the run that writes it."""
    con.execute(f"CALL {LAKE}.set_commit_message('gleaner', $message, extra_info => $info)",
                {"message": f"{kind} {run_id}", "info": json.dumps({"run_id": run_id, "kind": kind})})


def run_snapshots(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, int]]:
    """(run_id, kind, snapshot_id) of every named snapshot still kept, oldest first."""
    return [(run, kind, snap) for run, kind, snap, _ in con.execute(RUN_SNAPSHOTS_SQL).fetchall()]


def snapshot_of_run(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    for run, _, snapshot in run_snapshots(con):
        if run == run_id:
            return snapshot
    raise RunNotFound(f"no snapshot of run {run_id} in this warehouse (see `SELECT * FROM run_snapshots`; "
                      "`gleaner vacuum` may have expired it)")


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute(f"SELECT id FROM {LAKE}.current_snapshot()").fetchone()[0]
