"""Readers never block a run, never see half a load; one run writes at a time."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import gleaner
import pytest

from conftest import run_ingest
from tasks import lake
from tasks.load import WarehouseBusy, writer_lock

ANALYST = r"""
import json, sys, time, pathlib, gleaner
mode, path, stop = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
count = "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM article_occurrences)"
seen = []
if mode in ("hold", "transaction"):  # one session, open all along (in one transaction, or not)
    with gleaner.connect(path) as con:
        if mode == "transaction":
            con.execute("BEGIN TRANSACTION")
        seen.append(con.execute(count).fetchone())
        print("ready", flush=True)
        while not stop.exists():
            counts = con.execute(count).fetchone()
            if counts not in seen:
                seen.append(counts)
            time.sleep(0.01)
else:  # sessions opened again and again
    print("ready", flush=True)
    while not stop.exists():
        with gleaner.connect(path) as con:
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


def test_a_run_succeeds_while_analysts_read_and_they_never_see_half_a_load(seeds_subset, tmp_path):
    raw = seeds_subset("000", "001")
    warehouse = tmp_path / "wh"
    state, _ = run_ingest(raw, warehouse)
    assert state.is_completed()
    stop = tmp_path / "stop"
    analysts = {mode: start_analyst(mode, warehouse, stop) for mode in ("hold", "transaction", "poll")}
    try:
        seeds_subset("002", "003")
        state, summary = run_ingest(raw, warehouse)
        assert state.is_completed() and summary.dumps_loaded == 2
        time.sleep(0.5)  # let the readers look again
    finally:
        stop.touch()
        seen = {mode: json.loads(analyst.communicate(timeout=60)[0]) for mode, analyst in analysts.items()}
    before, after = [9, 9], [14, 18]
    assert seen["hold"] == [before, after]  # an open session saw one whole version, then the next
    assert seen["transaction"] == [before]  # an open transaction keeps the snapshot it started on
    assert seen["poll"] == [before, after]  # every new session saw one whole version: the old, then the new
    with gleaner.connect(warehouse) as con:
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (14,)


def test_a_second_run_on_the_same_warehouse_is_refused_with_a_clear_reason(seeds_subset, tmp_path):
    raw = seeds_subset("004")
    warehouse = tmp_path / "wh"
    with writer_lock(warehouse):  # a run in progress
        state, result = run_ingest(raw, warehouse)
    assert state.is_failed()
    assert isinstance(result, WarehouseBusy) and "another run is writing the warehouse" in str(result)
    assert not lake.exists(warehouse)
    state, summary = run_ingest(raw, warehouse)
    assert state.is_completed() and summary.articles_new == 5


def test_data_files_a_killed_run_left_are_deleted_by_the_next(seeds_subset, tmp_path):
    raw = seeds_subset("004")
    warehouse = tmp_path / "wh"
    state, _ = run_ingest(raw, warehouse)
    assert state.is_completed()
    articles = warehouse / lake.DATA_DIR / "main" / "articles"
    orphan = articles / "ducklake-00000000-0000-0000-0000-000000000000.parquet"
    orphan.write_bytes((next(articles.glob("*.parquet"))).read_bytes())  # a file no snapshot references
    seeds_subset("000")
    state, summary = run_ingest(raw, warehouse)
    assert state.is_completed() and summary.dumps_loaded == 1
    assert not orphan.exists()
    with gleaner.connect(warehouse) as con:
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (5 + 4,)
