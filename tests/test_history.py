"""Every run a snapshot: the warehouse as of an earlier run, rollback, vacuum, and the
commands that reach them (gleaner sql --as-of, rollback, vacuum, search)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import gleaner
import pytest

from conftest import REPO, SEEDS
from tasks import lake
from tasks.export import export_query
from tasks.history import rollback, vacuum
from tasks.search import search

CONTRACT_TABLES = ("articles", "article_sections", "article_occurrences", "removed_text", "dumps")
VOLATILE = {"run_id", "processed_at"}
GLEANER = REPO / ".venv" / "bin" / "gleaner"
#: the dumps each of the three runs finds new
RUNS = (("000", "001"), ("002",), ("003", "004"))


def contents(con) -> dict[str, list[tuple]]:
    """The contract tables' rows (sorted), without what differs between runs that load the same rows."""
    result = {}
    for table in CONTRACT_TABLES:
        columns = [c for (c,) in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'lake' AND table_name = ? "
            "ORDER BY ordinal_position", [table]).fetchall() if c not in VOLATILE]
        listed = ", ".join(f'"{c}"' for c in columns)
        result[table] = sorted(con.execute(f"SELECT {listed} FROM {table}").fetchall(), key=repr)
    return result


def warehouse_contents(warehouse: Path, as_of: str | None = None) -> dict[str, list[tuple]]:
    with gleaner.connect(warehouse, as_of=as_of) as con:
        return contents(con)


def add_seeds(raw: Path, prefixes: tuple[str, ...]) -> None:
    raw.mkdir(exist_ok=True)
    for seed in sorted(SEEDS.glob("*.txt")):
        if seed.name.startswith(prefixes):
            shutil.copy2(seed, raw / seed.name)


@pytest.fixture(scope="module")
def three_runs(prefect_server, tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """A warehouse after three runs (seeds 000-001, then 002, then 003-004): its raw folder,
    the warehouse and the three run ids."""
    from flows.ingest import ingest

    root = tmp_path_factory.mktemp("history")
    raw, warehouse = root / "raw", root / "wh"
    run_ids = []
    for prefixes in RUNS:
        add_seeds(raw, prefixes)
        state = ingest(str(raw), str(warehouse), return_state=True)
        assert state.is_completed()
        run_ids.append(state.result().run_id)
    return raw, warehouse, run_ids


@pytest.fixture
def copy_of_three_runs(three_runs, tmp_path) -> tuple[Path, Path, list[str]]:
    raw, warehouse, run_ids = three_runs
    shutil.copytree(raw, tmp_path / "raw", copy_function=shutil.copy2)  # modification times kept
    shutil.copytree(warehouse, tmp_path / "wh")
    return tmp_path / "raw", tmp_path / "wh", run_ids


def test_the_warehouse_as_of_run_2_equals_one_built_from_run_2s_dumps_alone(three_runs, tmp_path):
    from flows.ingest import ingest

    _, warehouse, (_, second, _) = three_runs
    raw = tmp_path / "raw"
    add_seeds(raw, RUNS[0] + RUNS[1])
    assert ingest(str(raw), str(tmp_path / "alone"), return_state=True).is_completed()
    as_of_second = warehouse_contents(warehouse, as_of=second)
    assert as_of_second == warehouse_contents(tmp_path / "alone")
    assert as_of_second != warehouse_contents(warehouse)  # the third run did change it
    assert len(as_of_second["dumps"]) == 3


def test_each_run_is_a_snapshot_named_by_its_run_id(three_runs):
    _, warehouse, run_ids = three_runs
    with gleaner.connect(warehouse) as con:
        named = con.execute("SELECT run_id, kind FROM run_snapshots WHERE kind = 'ingest' ORDER BY snapshot_id"
                            ).fetchall()
        assert named == [(run_id, "ingest") for run_id in run_ids]
        snapshot = con.execute("SELECT snapshot_id FROM run_snapshots WHERE run_id = ?", [run_ids[0]]).fetchone()[0]
        # the README's SQL form: a table as of a run's snapshot
        assert con.execute(f"SELECT count(*) FROM dumps AT (VERSION => {snapshot})").fetchone() == (2,)
    with pytest.raises(lake.RunNotFound, match="no snapshot of run nope"):
        gleaner.connect(warehouse, as_of="nope")


def test_rollback_of_run_3_then_a_rerun_gives_the_three_run_warehouse(three_runs, copy_of_three_runs):
    from flows.ingest import ingest

    _, original, _ = three_runs
    raw, warehouse, (_, second, third) = copy_of_three_runs
    three_run_contents = warehouse_contents(original)
    assert search(warehouse, 'authors:Bayram')  # 004's article

    done = rollback(warehouse, third)
    assert done.rolled_back == [third]
    assert warehouse_contents(warehouse) == warehouse_contents(warehouse, as_of=second)
    assert search(warehouse, 'authors:Bayram') == []  # the index followed
    with gleaner.connect(warehouse) as con:
        assert con.execute("SELECT kind, rolled_back FROM runs WHERE run_id = ?", [done.rollback_id]).fetchone() \
            == ("rollback", [third])
        assert con.execute("SELECT rolled_back_by FROM load_history WHERE run_id = ?", [third]).fetchone() \
            == (done.rollback_id,)
        for table in CONTRACT_TABLES:  # the export followed too
            assert sorted(con.execute(f"SELECT count(*) FROM ({export_query(warehouse, table)})").fetchall()) \
                == con.execute(f"SELECT count(*) FROM {table}").fetchall()

    state = ingest(str(raw), str(warehouse), return_state=True)
    assert state.is_completed()
    summary = state.result()
    assert (summary.dumps_loaded, summary.dumps_skipped) == (2, 3)  # run 3's dumps were new again
    assert warehouse_contents(warehouse) == three_run_contents
    assert search(warehouse, 'authors:Bayram')
    with gleaner.connect(warehouse, as_of=third) as con:  # the undone run stays readable as it was
        assert contents(con) == three_run_contents


def test_rollback_of_run_2_undoes_run_3_too(copy_of_three_runs):
    _, warehouse, (first, second, third) = copy_of_three_runs
    done = rollback(warehouse, second)
    assert done.rolled_back == [second, third]
    assert warehouse_contents(warehouse) == warehouse_contents(warehouse, as_of=first)
    with pytest.raises(lake.WarehouseError, match="only runs are rolled back"):
        rollback(warehouse, done.rollback_id)


def test_vacuum_keeps_the_last_runs_and_deletes_the_files_only_older_snapshots_used(copy_of_three_runs):
    from flows.ingest import ingest

    raw, warehouse, (first, second, third) = copy_of_three_runs
    undone = rollback(warehouse, third)  # its files are now used by older snapshots only
    state = ingest(str(raw), str(warehouse), return_state=True)
    assert state.is_completed()
    fourth = state.result().run_id
    now = warehouse_contents(warehouse)
    data_files = sorted((warehouse / lake.DATA_DIR).rglob("*.parquet"))

    done = vacuum(warehouse, keep=1)
    assert done.expired_snapshots > 0 and done.files_deleted > 0
    assert len(list((warehouse / lake.DATA_DIR).rglob("*.parquet"))) == len(data_files) - done.files_deleted
    assert warehouse_contents(warehouse) == now
    assert warehouse_contents(warehouse, as_of=fourth) == now
    assert warehouse_contents(warehouse, as_of=undone.rollback_id)  # the snapshot the kept run is rolled back to
    for expired in (first, second, third):
        with pytest.raises(lake.RunNotFound):
            gleaner.connect(warehouse, as_of=expired)
    assert rollback(warehouse, fourth).rolled_back == [fourth]  # the kept run can still be rolled back
    assert vacuum(warehouse, keep=5).expired_snapshots == 0


# --- the commands ----------------------------------------------------------------------------

def command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(GLEANER), *args], capture_output=True, text=True, timeout=120)


def test_gleaner_sql_opens_a_shell_on_the_warehouse_now_and_as_of_a_run(three_runs):
    _, warehouse, (first, _, _) = three_runs
    now = command("sql", str(warehouse), "-json", "-c", "SELECT count(*) AS n FROM dumps")
    then = command("sql", str(warehouse), "--as-of", first, "-json", "-c", "SELECT count(*) AS n FROM authors")
    assert now.returncode == 0 and json.loads(now.stdout) == [{"n": 5}], now.stderr
    with gleaner.connect(warehouse, as_of=first) as con:
        authors_then = con.execute("SELECT count(*) FROM authors").fetchone()[0]
    assert then.returncode == 0 and json.loads(then.stdout) == [{"n": authors_then}], then.stderr


@pytest.mark.parametrize("args, reason", [
    (("sql", "{missing}"), "no warehouse here"),
    (("sql", "{warehouse}", "--as-of", "nope"), "no snapshot of run nope"),
    (("rollback", "{warehouse}", "nope"), "no snapshot of run nope"),
    (("search", "{warehouse}", "Taliban AND ("), "Taliban AND ("),
    (("vacuum", "{missing}"), "no warehouse here"),
])
def test_the_commands_refuse_with_one_line_naming_the_cause(three_runs, tmp_path, args, reason):
    _, warehouse, _ = three_runs
    ran = command(*(a.format(warehouse=warehouse, missing=tmp_path / "missing") for a in args))
    assert ran.returncode == 2 and ran.stdout == ""
    assert ran.stderr.startswith("gleaner: ") and len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    assert reason in ran.stderr
    assert not (tmp_path / "missing").exists()


def test_gleaner_search_prints_the_best_articles_with_snippets(three_runs):
    _, warehouse, _ = three_runs
    ran = command("search", str(warehouse), "Taliban", "--limit", "2", "--json")
    assert ran.returncode == 0, ran.stderr
    hits = json.loads(ran.stdout)
    assert len(hits) == 2 and hits[0]["score"] >= hits[1]["score"]
    assert all("**Taliban**" in hit["snippet"] for hit in hits)
    text = command("search", str(warehouse), "Taliban", "--limit", "1")
    assert text.returncode == 0 and hits[0]["article_id"] in text.stdout and "**Taliban**" in text.stdout


def test_gleaner_rollback_and_vacuum_report_what_they_did(copy_of_three_runs):
    _, warehouse, (_, _, third) = copy_of_three_runs
    undone = command("rollback", str(warehouse), third)
    assert undone.returncode == 0 and f"rolled back 1 run(s): {third}" in undone.stdout, undone.stderr
    vacuumed = command("vacuum", str(warehouse), "--keep", "1")
    assert vacuumed.returncode == 0 and "kept the last 1 run(s)" in vacuumed.stdout, vacuumed.stderr
