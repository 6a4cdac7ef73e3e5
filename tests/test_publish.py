"""Readers never block a run, never see half a load; one run writes at a time."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import duckdb
import pytest

from conftest import run_ingest
from tasks.load import WarehouseBusy, writer_lock

ANALYST = r"""
import json, sys, time, pathlib, duckdb
mode, path, stop = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
count = "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM article_occurrences)"
seen = []
if mode == "hold":  # one session, open all along
    with duckdb.connect(path, read_only=True) as con:
        seen.append(con.execute(count).fetchone())
        print("ready", flush=True)
        while not stop.exists():
            time.sleep(0.01)
        seen.append(con.execute(count).fetchone())
else:  # sessions opened again and again (DuckDB shares one open file per process)
    print("ready", flush=True)
    while not stop.exists():
        with duckdb.connect(path, read_only=True) as con:
            counts = con.execute(count).fetchone()
        if counts not in seen:
            seen.append(counts)
        time.sleep(0.01)
print(json.dumps(seen))
"""


def start_analyst(mode: str, path, stop) -> subprocess.Popen:
    analyst = subprocess.Popen([sys.executable, "-c", ANALYST, mode, str(path), str(stop)],
                               stdout=subprocess.PIPE, text=True)
    assert analyst.stdout.readline().strip() == "ready"
    return analyst


@pytest.fixture(autouse=True)
def _server(prefect_server):
    yield


def test_a_run_succeeds_while_an_analyst_reads_and_the_analyst_never_sees_half_a_load(seeds_subset, tmp_path):
    raw = seeds_subset("000", "001")
    warehouse = tmp_path / "wh"
    state, _ = run_ingest(raw, warehouse)
    assert state.is_completed()
    stop = tmp_path / "stop"
    holder = start_analyst("hold", warehouse / "gleaner.duckdb", stop)
    poller = start_analyst("poll", warehouse / "gleaner.duckdb", stop)
    try:
        seeds_subset("002", "003")
        state, summary = run_ingest(raw, warehouse)
        assert state.is_completed() and summary.dumps_loaded == 2
        time.sleep(0.5)  # let the poller open the new version
    finally:
        stop.touch()
        held = json.loads(holder.communicate(timeout=60)[0])
        polled = json.loads(poller.communicate(timeout=60)[0])
    before, after = [9, 9], [14, 18]
    assert held == [before, before]  # an open session keeps the version it opened
    assert polled == [before, after]  # every new session saw one whole version: the old, then the new
    with duckdb.connect(str(warehouse / "gleaner.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (14,)


def test_a_second_run_on_the_same_warehouse_is_refused_with_a_clear_reason(seeds_subset, tmp_path):
    raw = seeds_subset("004")
    warehouse = tmp_path / "wh"
    with writer_lock(warehouse):  # a run in progress
        state, result = run_ingest(raw, warehouse)
    assert state.is_failed()
    assert isinstance(result, WarehouseBusy) and "another run is writing the warehouse" in str(result)
    assert not (warehouse / "gleaner.duckdb").exists()
    state, summary = run_ingest(raw, warehouse)
    assert state.is_completed() and summary.articles_new == 5


def test_a_killed_runs_leftover_version_is_discarded(seeds_subset, tmp_path):
    raw = seeds_subset("004")
    warehouse = tmp_path / "wh"
    warehouse.mkdir()
    (warehouse / ".gleaner.duckdb.next").write_bytes(b"half a database from a killed run")
    state, summary = run_ingest(raw, warehouse)
    assert state.is_completed() and summary.articles_new == 5
    assert not (warehouse / ".gleaner.duckdb.next").exists()
