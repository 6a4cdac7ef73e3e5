"""Faults: a run killed at any point, two runs at once, a full disk.

Each case runs the real command, `gleaner run`, in a subprocess (through tests/fault_runner.py
when it must die or wait at a precise point) against the session's Prefect test server, and
compares the warehouse with that of uninterrupted runs: the rows of every contract table
(without run ids and timestamps), the Parquet export with the lake snapshot it was exported
from, and the search index with the lake.

The kill and full-disk cases are many command runs: they run in parallel in one module
fixture (GLEANER_FAULT_WORKERS at a time, default 2), and each case's test asserts on its own
outcome.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import tantivy

from conftest import REPO, SEEDS
from gleaner import connect as open_warehouse
from tasks import lake
from tasks.export import SCHEMA, export_query, exported_snapshot
from tasks.search import STATE_FILE, index_dir

CONTRACT_TABLES = ("articles", "article_sections", "article_occurrences", "removed_text", "dumps")
VOLATILE = {"run_id", "processed_at"}  # differ between two runs that load the same rows
RUNNER = Path(__file__).with_name("fault_runner.py")
WORKERS = int(os.environ.get("GLEANER_FAULT_WORKERS", "2"))
RUN_TIMEOUT = 300
BUSY = "another run is writing the warehouse"


# --- running the command ---------------------------------------------------------------------

@dataclass
class Ran:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def __str__(self) -> str:
        return f"{' '.join(self.args[-6:])} -> {self.returncode}\n--- stderr (end) ---\n{self.stderr[-3000:]}"


@pytest.fixture(scope="module")
def api_url(prefect_server) -> str:
    """The session's Prefect test server, for the command's subprocesses (no temporary server each)."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def gleaner(api_url: str, raw: Path, warehouse: Path, kill: str | None = None, pause: str | None = None,
            fsize: int | None = None, background: bool = False):
    """`gleaner run --raw RAW --warehouse WAREHOUSE --json`, killed at point `kill`, held at `pause`,
    or with files limited to `fsize` bytes (see fault_runner.py). In its own process group,
    ended when it is done or on timeout."""
    command = [sys.executable, str(RUNNER)]
    if kill:
        command += ["--kill", kill]
    if pause:
        command += ["--pause", pause]
    if fsize is not None:
        command += ["--fsize", str(fsize)]
    # Threads: the kill and pause points must be reached in this process, not in pool workers.
    command += ["--", "run", "--raw", str(raw), "--warehouse", str(warehouse), "--json", "--task-runner", "thread"]
    env = dict(os.environ, PREFECT_API_URL=api_url, PREFECT_LOGGING_LEVEL="WARNING")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               cwd=REPO, start_new_session=True)
    process.started = time.monotonic()
    if background:
        return process
    return finish(process)


def finish(process: subprocess.Popen, timeout: float = RUN_TIMEOUT) -> Ran:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        err += f"\n[test: killed after {timeout} s]"
    try:  # anything the command left behind in its process group
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return Ran(process.args, process.returncode, out, err, time.monotonic() - process.started)


# --- what a warehouse holds ------------------------------------------------------------------

def _rows(con: duckdb.DuckDBPyConnection, relation: str, columns: list[str]) -> list[tuple]:
    listed = ", ".join(f'"{c}"' for c in columns)
    return sorted(con.execute(f"SELECT {listed} FROM {relation}").fetchall(), key=repr)


def contents(warehouse: Path) -> dict[str, list[tuple]] | None:
    """The contract tables' rows (sorted, duplicates kept), without run ids and timestamps;
    None when there is no warehouse yet."""
    if not lake.exists(warehouse):
        return None
    with open_warehouse(warehouse) as con:
        result = {}
        for table in CONTRACT_TABLES:
            columns = [c for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                [table]).fetchall() if c not in VOLATILE]
            result[table] = _rows(con, table, columns)
        return result


def is_empty(snapshot: dict[str, list[tuple]] | None) -> bool:
    return snapshot is None or not any(snapshot.values())


def parquet_problems(warehouse: Path) -> list[str]:
    """What is wrong with WAREHOUSE/parquet: a file unreadable, or a table's export (its files
    less its deletions) not holding the table as it was at the snapshot the export records
    (a run killed after its commit leaves the export one snapshot behind, until the next)."""
    if not lake.exists(warehouse):
        return []
    problems = []
    snapshot = exported_snapshot(warehouse)
    if snapshot is None:
        return ["no export"]
    with open_warehouse(warehouse) as con:
        for table, schema in SCHEMA.items():
            unreadable = []
            for path in sorted((warehouse / "parquet").glob(f"*/{table}*.parquet")):
                try:
                    pq.read_table(path)
                except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
                    unreadable.append(f"{path.name}: unreadable: {exc!r}")
            problems += [f"{table}: {u}" for u in unreadable]
            if unreadable:
                continue
            stored = _rows(con, f"{table} AT (VERSION => {snapshot})", schema.names)
            exported = _rows(con, f"({export_query(warehouse, table)})", schema.names)
            if exported != stored:
                problems.append(f"{table}: {len(exported)} rows in Parquet, {len(stored)} in snapshot {snapshot}")
    return problems


def search_problems(warehouse: Path) -> list[str]:
    """What is wrong with the search index: not at the lake's last snapshot, or not holding
    every article once."""
    state = json.loads((index_dir(warehouse) / STATE_FILE).read_text())
    index = tantivy.Index.open(str(index_dir(warehouse)))
    with open_warehouse(warehouse) as con:
        snapshot = lake.current_snapshot(con)
        articles = con.execute("SELECT count(*) FROM articles").fetchone()[0]
    problems = [] if state["snapshot"] == snapshot else [f"index at snapshot {state['snapshot']}, lake at {snapshot}"]
    if index.searcher().num_docs != articles:
        problems.append(f"{index.searcher().num_docs} documents for {articles} articles")
    return problems


def leftovers(warehouse: Path) -> list[str]:
    """Files of a run that should not outlive it."""
    found = list((warehouse / "parquet" / ".partial").glob("*"))
    found += list(warehouse.glob(".gleaner-stage/*"))  # a run's stage outlives it only when it is killed
    return sorted(str(p.relative_to(warehouse)) for p in found)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def published_files(warehouse: Path) -> dict[str, str]:
    """What readers see: the lake's last snapshot, and the sha256 of every Parquet file of the
    export and of the search index."""
    if not lake.exists(warehouse):
        return {}
    with open_warehouse(warehouse) as con:
        published = {"snapshot": str(lake.current_snapshot(con))}
    files = [*sorted((warehouse / "parquet").glob("*/*.parquet")), *sorted((warehouse / "search").glob("*"))]
    return published | {str(p.relative_to(warehouse)): digest(p) for p in files if p.is_file()}


def describe(snapshot: dict[str, list[tuple]] | None) -> str:
    if snapshot is None:
        return "no published warehouse"
    return ", ".join(f"{t} {len(rows)}" for t, rows in snapshot.items())


# --- uninterrupted runs: the references ------------------------------------------------------

@dataclass
class Reference:
    warehouse: Path
    contents: dict[str, list[tuple]]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def raw_all(work) -> Path:
    raw = work / "raw_all"
    raw.mkdir()
    for seed in sorted(SEEDS.glob("*.txt")):
        shutil.copy(seed, raw / seed.name)
    return raw


@pytest.fixture(scope="module")
def raw_first(work) -> Path:
    raw = work / "raw_first"
    raw.mkdir()
    for seed in sorted(SEEDS.glob("*.txt")):
        if seed.name.startswith(("000", "001")):
            shutil.copy(seed, raw / seed.name)
    return raw


def reference_run(api_url: str, raw: Path, warehouse: Path, start_from: Path | None = None) -> Reference:
    if start_from is not None:
        shutil.copytree(start_from, warehouse)
    ran = gleaner(api_url, raw, warehouse)
    assert ran.returncode == 0, str(ran)
    snapshot = contents(warehouse)
    assert not parquet_problems(warehouse)
    return Reference(warehouse, snapshot)


@pytest.fixture(scope="module")
def references(api_url, work, raw_all, raw_first) -> dict[str, Reference]:
    """`all`: the five seeds loaded by one run into an empty warehouse; `first`: seeds 000-001;
    `second`: `first`, then a run that adds 002-004."""
    with ThreadPoolExecutor(2) as pool:
        all_ = pool.submit(reference_run, api_url, raw_all, work / "ref_all")
        first = pool.submit(reference_run, api_url, raw_first, work / "ref_first")
        first = first.result()
        second = pool.submit(reference_run, api_url, raw_all, work / "ref_second", first.warehouse)
        refs = {"all": all_.result(), "first": first, "second": second.result()}
    for ref in refs.values():  # no duplicate in a reference: rows that have a key are unique
        with open_warehouse(ref.warehouse) as con:
            for table, key in [("articles", "article_id"), ("article_sections", "article_id, ordinal"),
                               ("article_occurrences", "source_file, ordinal"), ("dumps", "source_file, source_sha256")]:
                assert con.execute(f"SELECT count(*) - count(DISTINCT ({key})) FROM {table}").fetchone() == (0,)
    return refs


def test_the_references_hold_every_seed(references):
    assert len(references["all"].contents["dumps"]) == 5
    assert len(references["all"].contents["articles"]) == 19
    assert len(references["first"].contents["dumps"]) == 2
    assert len(references["second"].contents["dumps"]) == 5


# --- faults: a run killed, a disk full ---------------------------------------------------------

@dataclass(frozen=True)
class KillPoint:
    name: str
    point: str  # see fault_runner.py
    published: bool  # whether the run has published its version when it dies
    bug: str | None = None  # a known failure: the case is an expected (strict) failure


# A run commits its snapshot in the load's transaction (in_transaction), then the export and
# the search index follow it (follow_lake; a run also calls it first, to catch up).
FIRST_RUN_KILLS = [
    KillPoint("extract", "call:tasks.extract.extract_dump#3", published=False),
    KillPoint("clean-gate", "call:tasks.validate.validate_frame#2", published=False),
    KillPoint("batch-staged", "return:tasks.stage.write_batch#2", published=False),  # the batch's Parquet written
    KillPoint("dedup", "return:tasks.stage.finish_dedup#1", published=False),
    KillPoint("loaded", "call:tasks.load.record_run#1", published=False),  # rows written, not committed
    KillPoint("committed", "return:tasks.load.in_transaction#1", published=True),  # export, search not followed
    KillPoint("exporting", "call:tasks.export._export_table_changes#3", published=True),  # 2 of 8 tables exported
    KillPoint("indexing", "call:tasks.search.sync_search_index#2", published=True),  # exported, not indexed
]
SECOND_RUN_KILLS = [
    KillPoint("segment-gate", "call:tasks.validate.validate_frame#3", published=False),
    KillPoint("loaded", "call:tasks.load.record_run#1", published=False),
    KillPoint("committed", "return:tasks.load.in_transaction#1", published=True),
    KillPoint("exporting", "return:tasks.export._export_table_changes#2", published=True),
    KillPoint("indexing", "call:tasks.search.sync_search_index#2", published=True),
]
# The second run fills the disk (RLIMIT_FSIZE: a write past the limit fails with EFBIG) when it
# opens the catalog (SQLite's 32 KB shared-memory file fails first), or while the load writes
# the lake's data files (the fingerprints' file of seeds 002-004 is about 45 KB).
DISK_FULL = {"opening": (4096, "lake.sqlite: cannot be opened as a warehouse"), "loading": (40_000, "File too large")}

@dataclass
class Outcome:
    failed: Ran  # the run killed, or failing on the full disk
    after_failure: dict[str, list[tuple]] | None
    files_after_failure: dict[str, str]
    parquet_after_failure: list[str]
    leftovers_after_failure: list[str]
    rerun: Ran
    after_rerun: dict[str, list[tuple]] | None
    parquet_after_rerun: list[str]
    leftovers_after_rerun: list[str]
    search_after_rerun: list[str]


def fail_and_rerun(api_url: str, raw: Path, warehouse: Path, kill: str | None = None,
                   fsize: int | None = None) -> Outcome:
    """Run the command killed at a point (or with a limit), look at the warehouse, run it
    again normally, look again."""
    failed = gleaner(api_url, raw, warehouse, kill=kill, fsize=fsize)
    after_failure = contents(warehouse)
    files = published_files(warehouse)
    parquet = parquet_problems(warehouse)
    left = leftovers(warehouse)
    rerun = gleaner(api_url, raw, warehouse)
    return Outcome(failed, after_failure, files, parquet, left, rerun, contents(warehouse),
                   parquet_problems(warehouse), leftovers(warehouse), search_problems(warehouse))


@pytest.fixture(scope="module")
def faults(api_url, work, raw_all, references) -> dict[tuple[str, str], Outcome]:
    """Every kill and full-disk case, run in parallel: ("first" | "second" | "disk", name) -> Outcome."""
    first = references["first"].warehouse

    def first_run(k: KillPoint) -> Outcome:
        return fail_and_rerun(api_url, raw_all, work / f"kill1_{k.name}", kill=k.point)

    def second_run(k: KillPoint) -> Outcome:
        warehouse = work / f"kill2_{k.name}"
        shutil.copytree(first, warehouse)
        return fail_and_rerun(api_url, raw_all, warehouse, kill=k.point)

    def disk_full(where: str) -> Outcome:
        warehouse = work / f"full_{where}"
        shutil.copytree(first, warehouse)
        return fail_and_rerun(api_url, raw_all, warehouse, fsize=DISK_FULL[where][0])

    cases = {("first", k.name): lambda k=k: first_run(k) for k in FIRST_RUN_KILLS}
    cases |= {("second", k.name): lambda k=k: second_run(k) for k in SECOND_RUN_KILLS}
    cases |= {("disk", where): lambda where=where: disk_full(where) for where in DISK_FULL}
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {key: pool.submit(case) for key, case in cases.items()}
    return {key: future.result() for key, future in futures.items()}


def _params(kills: list[KillPoint]):
    return [pytest.param(k, id=k.name, marks=[pytest.mark.xfail(strict=True, reason=k.bug)] if k.bug else [])
            for k in kills]


def assert_rerun_is_uninterrupted(outcome: Outcome, reference: Reference) -> None:
    assert outcome.rerun.returncode == 0, str(outcome.rerun)
    assert outcome.after_rerun == reference.contents, (
        f"after the rerun: {describe(outcome.after_rerun)}; uninterrupted: {describe(reference.contents)}")
    assert outcome.parquet_after_rerun == []
    assert outcome.leftovers_after_rerun == []
    assert outcome.search_after_rerun == []


def timings(outcome: Outcome) -> str:
    return f"failed run {outcome.failed.seconds:.0f} s, rerun {outcome.rerun.seconds:.0f} s"


@pytest.mark.parametrize("kill", _params(FIRST_RUN_KILLS))
def test_a_first_run_killed_anywhere_then_run_again_gives_the_uninterrupted_warehouse(kill, faults, references):
    outcome = faults["first", kill.name]
    print(timings(outcome))
    assert outcome.failed.returncode == -signal.SIGKILL, f"the run did not die at {kill.point}: {outcome.failed}"
    if kill.published:
        assert outcome.after_failure == references["all"].contents
    else:  # nothing of the killed run is visible: no warehouse yet, or an empty one
        assert is_empty(outcome.after_failure), describe(outcome.after_failure)
    assert outcome.parquet_after_failure == [], "every Parquet file is whole: the old or the new table"
    assert_rerun_is_uninterrupted(outcome, references["all"])


@pytest.mark.parametrize("kill", _params(SECOND_RUN_KILLS))
def test_a_second_run_killed_anywhere_leaves_the_first_and_a_rerun_completes_it(kill, faults, references):
    outcome = faults["second", kill.name]
    print(timings(outcome))
    first = references["first"]
    assert outcome.failed.returncode == -signal.SIGKILL, f"the run did not die at {kill.point}: {outcome.failed}"
    if kill.published:
        assert outcome.after_failure == references["second"].contents
    else:  # readers see the first run's warehouse: its snapshot, its export and index byte for byte
        assert outcome.after_failure == first.contents, describe(outcome.after_failure)
        assert outcome.files_after_failure == published_files(first.warehouse)
    assert outcome.parquet_after_failure == [], "every Parquet file is whole: the old or the new table"
    assert_rerun_is_uninterrupted(outcome, references["second"])


@pytest.mark.parametrize("where", DISK_FULL)
def test_a_run_that_fills_the_disk_fails_cleanly_and_the_published_warehouse_survives(where, faults, references):
    outcome = faults["disk", where]
    print(timings(outcome))
    first = references["first"]
    failed = outcome.failed
    assert failed.returncode == 1, str(failed)
    last_line = failed.stderr.strip().splitlines()[-1]
    assert last_line.startswith("gleaner: the run failed: ") and DISK_FULL[where][1] in last_line, str(failed)
    assert outcome.after_failure == first.contents
    assert outcome.files_after_failure == published_files(first.warehouse)  # byte for byte, Parquet too
    assert_rerun_is_uninterrupted(outcome, references["second"])


@pytest.mark.parametrize("where", DISK_FULL)
def test_a_run_that_fills_the_disk_leaves_no_partial_copy_behind(where, faults):
    assert faults["disk", where].leftovers_after_failure == []


# --- two runs at once ------------------------------------------------------------------------

def test_two_runs_started_at_once_one_writes_the_other_is_refused_or_waits(api_url, work, raw_all, references):
    warehouse = work / "twice"
    started = [gleaner(api_url, raw_all, warehouse, background=True) for _ in range(2)]
    ran = sorted((finish(p) for p in started), key=lambda r: r.returncode)
    codes = [r.returncode for r in ran]
    print(f"exit statuses {codes}, {[round(r.seconds) for r in ran]} s")
    assert codes in ([0, 0], [0, 2]), "\n".join(map(str, ran))
    if codes == [0, 2]:
        assert BUSY in ran[1].stderr, str(ran[1])
        assert ran[1].stdout == ""
    assert contents(warehouse) == references["all"].contents
    assert parquet_problems(warehouse) == [] and leftovers(warehouse) == [] and search_problems(warehouse) == []


def test_a_run_started_while_another_is_loading_is_refused_and_changes_nothing(api_url, work, raw_all,
                                                                               references):
    first = references["first"]
    warehouse = work / "held"
    shutil.copytree(first.warehouse, warehouse)
    release = work / "held.release"
    loading = gleaner(api_url, raw_all, warehouse, pause=f"call:tasks.load.stage_run#1:{release}", background=True)
    try:
        assert _wait_for(release.with_name(release.name + ".paused"), loading), \
            f"the first run never reached its load: {finish(loading)}"
        second = gleaner(api_url, raw_all, warehouse)
        files_meanwhile = published_files(warehouse)
    finally:
        release.touch()
    loading = finish(loading)
    assert second.returncode == 2, str(second)
    assert BUSY in second.stderr.strip().splitlines()[-1], str(second)
    assert files_meanwhile == published_files(first.warehouse)
    assert loading.returncode == 0, str(loading)
    assert contents(warehouse) == references["second"].contents
    assert parquet_problems(warehouse) == [] and leftovers(warehouse) == [] and search_problems(warehouse) == []


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = RUN_TIMEOUT) -> bool:
    """Whether `path` appears while the process runs, within the timeout."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.1)
    return path.exists()
