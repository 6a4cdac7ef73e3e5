"""Task runners: the batches run in worker processes, threads or on a Dask cluster, and the
warehouse comes out the same whichever ran them and in whatever order batches finished."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psutil
import gleaner
import pytest

from conftest import REPO, SEEDS, task_runs_of
from tasks.export import SCHEMA as EXPORTED
from tasks.export import export_query

# Every seed dump is above 10 kB, so each is a batch of its own: 5 batches, for 2 workers.
BATCH_MB = "0.01"
RUN_TIMEOUT = 300
# A batch's task run ('batch-3'), not one of its steps' ('batch-3-validate-clean').
BATCH_RUN = re.compile(r"batch-\d+$")
# Columns that differ from run to run whatever ran it.
PER_RUN_TYPES = ("TIMESTAMP", "INTERVAL")
PER_RUN_COLUMNS = {"run_id", "processed_at"}


@pytest.fixture(autouse=True)
def _server(prefect_server):
    yield


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """All seed dumps; one folder for every run, so runs.raw_dir is the same in all of them."""
    raw = tmp_path_factory.mktemp("runners") / "raw"
    raw.mkdir()
    for seed in sorted(SEEDS.glob("*.txt")):
        shutil.copy(seed, raw / seed.name)
    return raw


def run_cli(*args: str) -> int:
    from gleaner.cli import main

    return main(["run", *args, "--batch-mb", BATCH_MB, "--json"])  # not --quiet: it sets PREFECT_LOGGING_LEVEL


@pytest.fixture(scope="module")
def reference(prefect_server, corpus, tmp_path_factory) -> Path:
    """The warehouse built by 2 worker processes (the default runner on a 2-CPU machine)."""
    warehouse = tmp_path_factory.mktemp("runners") / "process-2"
    assert run_cli("--raw", str(corpus), "--warehouse", str(warehouse), "--task-runner", "process",
                   "--workers", "2") == 0
    return warehouse


def contents(warehouse: Path) -> dict[str, list[tuple]]:
    """Every row of every table of the database and of its Parquet export, in order, without
    the columns that differ per run."""
    found: dict[str, list[tuple]] = {}
    with gleaner.connect(warehouse) as con:
        tables = [t for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'lake' "
            "AND table_type = 'BASE TABLE' ORDER BY table_name").fetchall()]
        for table in tables:
            columns = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = 'lake' "
                "AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()
            kept = ", ".join(f'"{name}"' for name, kind in columns
                             if name not in PER_RUN_COLUMNS and not kind.startswith(PER_RUN_TYPES))
            found[table] = con.execute(f"SELECT {kept} FROM {table} ORDER BY ALL").fetchall()
            if table in EXPORTED:
                found[f"parquet/{table}"] = con.execute(
                    f"SELECT {kept} FROM ({export_query(warehouse, table)}) ORDER BY ALL").fetchall()
    return found


def assert_same_warehouse(built: Path, reference: Path) -> None:
    got, expected = contents(built), contents(reference)
    assert sorted(got) == sorted(expected)
    for table in expected:
        assert got[table] == expected[table], f"{table} differs from the reference warehouse"
    assert len(expected["articles"]) == 19 and len(expected["parquet/articles"]) == 19


def test_the_default_runner_is_a_process_pool_with_a_worker_per_cpu():
    from prefect.task_runners import ProcessPoolTaskRunner

    from gleaner.cli import build_parser
    from gleaner.runners import build_task_runner

    args = build_parser().parse_args(["run", "--raw", "r", "--warehouse", "w"])
    runner = build_task_runner(args.task_runner, args.workers, args.dask_address)
    assert isinstance(runner, ProcessPoolTaskRunner) and runner == ProcessPoolTaskRunner(max_workers=os.cpu_count())


@pytest.mark.parametrize("runner", [["--task-runner", "process", "--workers", "1"],
                                    ["--task-runner", "thread", "--workers", "2"]], ids=["process-1", "thread-2"])
def test_every_runner_builds_the_same_warehouse(runner, corpus, reference, tmp_path):
    warehouse = tmp_path / "wh"
    assert run_cli("--raw", str(corpus), "--warehouse", str(warehouse), *runner) == 0
    assert_same_warehouse(warehouse, reference)


def test_dedup_in_groups_on_worker_processes_builds_the_same_warehouse(corpus, reference, tmp_path, monkeypatch,
                                                                       capsys):
    """A large stage is deduped in groups of author parts on the pool's workers (here every
    stage counts as large): the warehouse is the one dedup makes in one process."""
    import tasks.stage

    monkeypatch.setattr(tasks.stage, "PARALLEL_DEDUP_OCCURRENCES", 0)
    warehouse = tmp_path / "wh"
    capsys.readouterr()
    assert run_cli("--raw", str(corpus), "--warehouse", str(warehouse), "--task-runner", "process",
                   "--workers", "2") == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    names = {t.name for t in task_runs_of(summary["run_id"])}
    assert {f"dedup-{group}" for group in range(tasks.stage.DEDUP_GROUPS)} <= names
    assert_same_warehouse(warehouse, reference)


def test_the_pool_workers_are_stopped_before_the_load(corpus, reference, tmp_path, monkeypatch):
    """The worker processes that ran the batches have exited by the time the load begins: the
    load and the search index then have their memory."""
    import dataclasses

    import tasks.pipeline

    alive_at_load: list[list[str]] = []

    def command_line(process: psutil.Process) -> str:
        try:
            return " ".join(process.cmdline())
        except psutil.NoSuchProcess:  # exited since it was listed: not alive at the load
            return ""

    def load_counting_workers(*args):
        children = map(command_line, psutil.Process().children(recursive=True))
        alive_at_load.append([cmd for cmd in children if "spawn_main" in cmd])
        return tasks.pipeline.load_rows(*args)

    monkeypatch.setattr(tasks.pipeline, "LOAD", dataclasses.replace(tasks.pipeline.LOAD, fn=load_counting_workers))
    warehouse = tmp_path / "wh"
    assert run_cli("--raw", str(corpus), "--warehouse", str(warehouse), "--task-runner", "process",
                   "--workers", "2") == 0
    assert alive_at_load == [[]]
    assert_same_warehouse(warehouse, reference)


def test_a_batch_that_refused_dumps_ends_failed_and_the_run_takes_its_outcome(prefect_server, tmp_path):
    """Batches in worker processes: the one whose gate refused a dump is Failed in Prefect,
    the others Completed, and the warehouse has what every batch passed."""
    from gleaner.cli import EXIT_QUARANTINED

    raw = tmp_path / "raw"
    raw.mkdir()
    for seed in sorted(SEEDS.glob("00[0-2]*.txt")):
        shutil.copy(seed, raw / seed.name)
    (raw / "zz-blank.txt").write_text("  \n\n")  # refused by the extract gate, in the last batch
    warehouse = tmp_path / "wh"
    assert run_cli("--raw", str(raw), "--warehouse", str(warehouse), "--task-runner", "process",
                   "--workers", "2") == EXIT_QUARANTINED
    with gleaner.connect(warehouse) as con:
        assert con.execute("SELECT status, count(*) FROM dumps GROUP BY ALL ORDER BY ALL").fetchall() == [
            ("loaded", 3), ("quarantined", 1)]
        [(run_id,)] = con.execute("SELECT run_id FROM runs").fetchall()
    batches = sorted((t.name, t.state_type.value) for t in task_runs_of(run_id) if BATCH_RUN.match(t.name))
    assert batches == [(f"batch-{n}", "COMPLETED") for n in range(1, len(batches))] + [
        (f"batch-{len(batches)}", "FAILED")]
    assert len(batches) > 1


def gleaner_command() -> list[str]:
    gleaner = REPO / ".venv" / "bin" / "gleaner"
    return [str(gleaner)] if gleaner.exists() else [sys.executable, "-m", "gleaner.cli"]


def prefect_servers_since(began: float, marker: str) -> list[str]:
    """Prefect servers (`prefect server start`, or the temporary ones Prefect starts itself
    with uvicorn) started since `began` by processes whose environment holds `marker`: this
    test's, not those of other test sessions on the machine."""
    import psutil  # a dependency of distributed

    found = []
    for process in psutil.process_iter(["pid", "cmdline", "create_time"]):
        command = " ".join(process.info["cmdline"] or [])
        if process.info["create_time"] < began or "prefect" not in command or "server" not in command:
            continue
        try:
            if process.environ().get("GLEANER_TEST_MARK") == marker:
                found.append(f"{process.info['pid']}: {command}")
        except (psutil.AccessDenied, psutil.NoSuchProcess):
            continue
    return found


def test_a_dask_cluster_builds_the_same_warehouse_and_reports_to_the_server(corpus, reference, tmp_path,
                                                                            monkeypatch):
    import distributed
    from prefect.settings import PREFECT_API_URL

    began, marker = time.time(), uuid.uuid4().hex
    # The Dask workers inherit this environment: the session's server, and a mark that
    # finds any Prefect server they might start.
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    monkeypatch.setenv("GLEANER_TEST_MARK", marker)
    warehouse = tmp_path / "wh"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        done = subprocess.run(
            gleaner_command() + ["run", "--raw", str(corpus), "--warehouse", str(warehouse), "--batch-mb", BATCH_MB,
                                 "--task-runner", "dask", "--dask-address", cluster.scheduler_address, "--json"],
            cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=RUN_TIMEOUT,
            stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_warehouse(warehouse, reference)

    def batches_of(task_runs: list) -> list[tuple[str, str]]:
        return sorted((t.name, t.state_name) for t in task_runs if BATCH_RUN.match(t.name))

    run_id = json.loads(done.stdout)["run_id"]  # the flow run's id
    batches = batches_of(task_runs_of(run_id, settled=lambda runs: len(batches_of(runs)) == 5))
    assert batches == [(f"batch-{n}", "Completed") for n in range(1, 6)]
    assert prefect_servers_since(began, marker) == []


def test_worker_processes_share_the_temporary_server_of_a_run_without_a_prefect_server(seeds_subset, tmp_path):
    """Without PREFECT_API_URL each pool process would start a temporary server of its own."""
    began, marker = time.time(), uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {"GLEANER_TEST_MARK": marker}
    log = tmp_path / "gleaner.log"  # a file, not a pipe: nobody reads a pipe while the loop watches
    with log.open("w") as output:
        run = subprocess.Popen(
            gleaner_command() + ["run", "--raw", str(seeds_subset("000", "001")), "--warehouse", str(tmp_path / "wh"),
                                 "--batch-mb", BATCH_MB, "--task-runner", "process", "--workers", "2", "--quiet"],
            cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    seen: set[str] = set()
    deadline = time.monotonic() + RUN_TIMEOUT
    while run.poll() is None and time.monotonic() < deadline:
        seen.update(prefect_servers_since(began, marker))
        time.sleep(0.5)
    if run.poll() is None:
        run.kill()
    run.wait()
    assert run.returncode == 0, log.read_text()[-3000:]
    assert len(seen) == 1, seen
    assert prefect_servers_since(began, marker) == []


def test_a_temporary_server_that_does_not_start_is_one_line_and_exit_2(seeds_subset, tmp_path, monkeypatch, capsys):
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from gleaner.cli import main
    from gleaner.runners import SERVER_STARTUP_SECONDS

    waited = []

    def time_out(self, timeout=None):
        waited.append(timeout)
        raise RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server. "
                           "stdout: migrating\nstderr: database is locked")

    monkeypatch.setattr(SubprocessASGIServer, "start", time_out)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        code = main(["run", "--raw", str(seeds_subset("000")), "--warehouse", str(tmp_path / "wh"),
                     "--task-runner", "thread"])
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("gleaner:")]
    assert code == 2 and waited == [SERVER_STARTUP_SECONDS]
    assert len(said) == 1 and "Timed out while attempting" in said[0] and "PREFECT_API_URL" in said[0], said
    assert not (tmp_path / "wh").exists()


def test_dask_without_a_prefect_server_is_refused(corpus, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    done = subprocess.run(
        gleaner_command() + ["run", "--raw", str(corpus), "--warehouse", str(tmp_path / "wh"),
                             "--task-runner", "dask", "--dask-address", "tcp://127.0.0.1:1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "PREFECT_API_URL" in done.stderr
    assert not (tmp_path / "wh").exists()


def test_pool_workers_die_with_a_killed_command(tmp_path):
    """A command killed by SIGKILL cannot stop its pool: die_with_parent takes the workers with it."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing, os, time
        from concurrent.futures import ProcessPoolExecutor
        from gleaner.runners import die_with_parent

        def pid_after_a_while(_):
            time.sleep(1)
            return os.getpid()

        if __name__ == "__main__":
            pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"), initializer=die_with_parent)
            print(*set(pool.map(pid_after_a_while, range(2))), flush=True)
            time.sleep(600)
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == 2 and all(psutil.pid_exists(pid) for pid in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        gone, alive = psutil.wait_procs([psutil.Process(pid) for pid in workers if psutil.pid_exists(pid)], timeout=30)
        assert alive == []
    finally:
        parent.kill()
