"""Gleaner: scraped article dumps in, a validated DuckDB warehouse out.

    import gleaner
    con = gleaner.connect("warehouse")                   # the warehouse now
    con = gleaner.connect("warehouse", as_of=RUN_ID)     # as it was after that run
    con.sql("SELECT * FROM authors LIMIT 10")
    con.sql("SELECT * FROM search_articles('Taliban')")  # full-text search, best first
"""
from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

__all__ = ["connect"]


def connect(warehouse: str | PathLike[str], read_only: bool = True, as_of: str | None = None
            ) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection on the warehouse in which every contract table and view is
    visible by its plain name, with `run_snapshots` (run id -> snapshot) and the search
    macro `search_articles('terms')`. With as_of, the warehouse as it was after that run.

    Read-only: the warehouse is written by `gleaner run`, `rollback` and `vacuum` alone, which
    hold its writer lock. Readers never block a run and never see half of one."""
    if not read_only:
        raise ValueError("gleaner.connect opens the warehouse read-only; it is written by `gleaner run`")
    from tasks import lake
    from tasks.search import register_search

    path = Path(warehouse)
    snapshot = None
    if as_of is not None:
        with lake.open_lake(path) as probe:
            snapshot = lake.snapshot_of_run(probe, as_of)
    con = lake.open_lake(path, snapshot=snapshot)
    con.execute(f"CREATE TEMP VIEW run_snapshots AS {lake.RUN_SNAPSHOTS_SQL}")
    register_search(con, path)
    return con
