"""What follows the lake: the Parquet export and the search index.

Both are derived from the lake's snapshots through its change feed, and each records the
snapshot it has reached, so bringing them up to date costs what changed since, and doing it
again is harmless. They follow every commit (a run's, a rollback's), and a run starts by
catching them up, in case the process that committed last was killed before they followed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from tasks.export import export_changes
from tasks.search import SearchSync, sync_search_index


@dataclass(frozen=True)
class Followed:
    exported: list[int]  # the snapshots exported
    search: SearchSync


def follow_lake(con: duckdb.DuckDBPyConnection, warehouse_dir: Path) -> Followed:
    """Bring the Parquet export and the search index up to the lake's current snapshot."""
    return Followed(export_changes(con, warehouse_dir), sync_search_index(con, warehouse_dir))
