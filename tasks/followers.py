"""What follows the lake: the Parquet export and the search index.

Both are derived from the lake's snapshots through its change feed, and each records the
snapshot it has reached, so bringing them up to date costs what changed since, and doing it
again is harmless. They follow every commit (a run's, a rollback's), and a run starts by
catching them up, in case the process that committed last was killed before they followed.

The two are independent, and run side by side: the export writes its files on one core
(DuckDB reads the change feed, pyarrow writes zstd), while the index takes two writer
threads, which leave a core idle while the export runs alone (1 GB corpus, median of 3:
47.9 s one after the other, 41.5 s side by side).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb

from tasks.export import export_changes
from tasks.lake import LAKE
from tasks.search import SearchSync, sync_search_index


@dataclass(frozen=True)
class Followed:
    exported: list[int]  # the snapshots exported
    search: SearchSync


def _export(con: duckdb.DuckDBPyConnection, warehouse_dir: Path) -> list[int]:
    # A cursor is a connection of its own to the same database, lake attached: one
    # connection must not run two queries at once. It starts with no schema selected.
    with con.cursor() as cursor:
        cursor.execute(f"USE {LAKE}")
        return export_changes(cursor, warehouse_dir)


def follow_lake(con: duckdb.DuckDBPyConnection, warehouse_dir: Path) -> Followed:
    """Bring the Parquet export and the search index up to the lake's current snapshot."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export") as pool:
        exported = pool.submit(_export, con, warehouse_dir)
        search = sync_search_index(con, warehouse_dir)
        return Followed(exported.result(), search)
