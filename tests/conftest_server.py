"""A real Prefect server on loopback, the deployment of prefect.yaml and a process worker:
session fixtures shared by test_schedule.py and test_ui.py (`pytest_plugins = ["conftest_server"]`).

What README's "Run on a schedule" tells an operator to do, done by subprocesses:

    prefect server start --host 127.0.0.1 --port PORT   (fresh PREFECT_HOME in a temp dir)
    prefect work-pool create gleaner-process --type process
    prefect deploy --all --no-prompt --param raw_dir=... --param warehouse_dir=...   (from the repo root)
    prefect worker start --pool gleaner-process

The deployment's parameters are overridden to temp dirs holding two seed dumps, so the repo's
warehouse/ is never touched. Every subprocess runs in its own process group, which is ended
when the session ends; every wait is bounded.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "data" / "raw"
PREFECT = REPO / ".venv" / "bin" / "prefect"
POOL = "gleaner-process"
DEPLOYMENT = "ingest/ingest-daily"
SEED_PREFIXES = ("000", "001")  # 2 dumps, 9 articles
SERVER_START_TIMEOUT = 90
RUN_TIMEOUT = 120

T = TypeVar("T")


def prefect_command() -> list[str]:
    return [str(PREFECT)] if PREFECT.exists() else [sys.executable, "-m", "prefect"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.5,
              alive: subprocess.Popen | None = None, log: Path | None = None) -> T:
    """Call probe until it returns something truthy; fail after timeout (or if `alive` exited)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if alive is not None and alive.poll() is not None:
            pytest.fail(f"{what}: the process exited with {alive.returncode}\n{tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s\n{tail(log)}")
        time.sleep(interval)


def tail(log: Path | None, chars: int = 4000) -> str:
    if log is None or not log.exists():
        return ""
    return f"--- {log.name} (end) ---\n" + log.read_text(errors="replace")[-chars:]


@dataclass
class LiveServer:
    url: str  # the UI
    api_url: str
    home: Path  # PREFECT_HOME of the server, the CLI and the worker
    logs: Path
    processes: list[subprocess.Popen]

    def env(self) -> dict[str, str]:
        """The environment of a CLI or worker subprocess pointed at this server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(PREFECT_HOME=str(self.home), PREFECT_API_URL=self.api_url,
                   PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_CLI_PROMPT="false",
                   PYTHONDONTWRITEBYTECODE="1")
        return env

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        """A long-running subprocess in its own process group, logging to logs/<name>.log."""
        log = open(self.logs / f"{name}.log", "wb")
        process = subprocess.Popen(args, cwd=REPO, env=env or self.env(), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.processes.append(process)
        return process

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run `prefect ARGS` from the repo root against this server; fail with its output if it fails."""
        done = subprocess.run(prefect_command() + list(args), cwd=REPO, env=self.env(), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"prefect {' '.join(args)} exited {done.returncode}:\n" \
                                     f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    @contextmanager
    def client(self) -> Iterator[Any]:
        """A synchronous Prefect client of this server (whatever server the test process uses)."""
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: self.api_url}):
            with get_client(sync_client=True) as client:
                yield client


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    """End a process we started, with its process group (uvicorn, flow-run subprocesses)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:  # children may outlive the leader
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        pass


def healthy(api_url: str) -> bool:
    try:
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
        with no_proxy.open(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    """`prefect server start` on a free loopback port with a fresh PREFECT_HOME."""
    tmp = Path(tempfile.mkdtemp(prefix="gleaner-live-"))
    port = free_port()
    server = LiveServer(url=f"http://127.0.0.1:{port}", api_url=f"http://127.0.0.1:{port}/api",
                        home=tmp / "home", logs=tmp / "logs", processes=[])
    server.home.mkdir()
    server.logs.mkdir()
    env = server.env()
    del env["PREFECT_API_URL"]
    # The UI calls the API at PREFECT_UI_API_URL, which otherwise says port 4200 whatever --port is.
    env["PREFECT_UI_API_URL"] = server.api_url
    # The scheduler's loops wake up every few seconds, so runs of a new deployment appear quickly.
    env.update(PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5",
               PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS="2")
    process = server.start("server", prefect_command() + ["server", "start", "--host", "127.0.0.1",
                                                          "--port", str(port)], env=env)
    try:
        wait_for("the Prefect server's /api/health", lambda: healthy(server.api_url), SERVER_START_TIMEOUT,
                 alive=process, log=server.logs / "server.log")
        yield server
    finally:
        for started in reversed(server.processes):
            stop(started)
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class Deployed:
    id: Any  # UUID
    raw_dir: Path
    warehouse_dir: Path
    output: str  # what `prefect deploy` printed


@pytest.fixture(scope="session")
def pool(live_server: LiveServer) -> str:
    live_server.cli("work-pool", "create", POOL, "--type", "process")
    return POOL


@pytest.fixture(scope="session")
def worker(live_server: LiveServer, pool: str) -> subprocess.Popen:
    """`prefect worker start --pool gleaner-process`, polling every second; started, not yet polling."""
    env = live_server.env()
    env.update(PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_WORKER_HEARTBEAT_SECONDS="5")
    return live_server.start("worker", prefect_command() + ["worker", "start", "--pool", pool], env=env)


@pytest.fixture(scope="session")
def deployment(live_server: LiveServer, worker: subprocess.Popen, tmp_path_factory) -> Deployed:
    """prefect.yaml deployed as README says, with raw/warehouse in temp dirs (while the worker starts)."""
    raw = tmp_path_factory.mktemp("live-raw")
    for seed in sorted(SEEDS.glob("*.txt")):
        if seed.name.startswith(SEED_PREFIXES):
            shutil.copy(seed, raw / seed.name)
    warehouse = tmp_path_factory.mktemp("live-wh") / "warehouse"
    done = live_server.cli("deploy", "--all", "--no-prompt", "--param", f"raw_dir={raw}",
                           "--param", f"warehouse_dir={warehouse}", timeout=120)
    with live_server.client() as client:
        found = client.read_deployment_by_name(DEPLOYMENT)
    return Deployed(found.id, raw, warehouse, done.stdout)


@pytest.fixture(scope="session")
def ingest_run(live_server: LiveServer, deployment: Deployed, worker: subprocess.Popen) -> Any:
    """A run of the deployment triggered now through the API and executed by the worker, once final."""
    def polling() -> bool:
        with live_server.client() as client:
            return bool(client.read_workers_for_work_pool(POOL))

    wait_for("the worker to poll its pool", polling, 60, alive=worker, log=live_server.logs / "worker.log")
    with live_server.client() as client:
        created = client.create_flow_run_from_deployment(deployment.id)

    def final() -> Any:
        with live_server.client() as client:
            run = client.read_flow_run(created.id)
        return run if run.state is not None and run.state.is_final() else None

    return wait_for(f"flow run {created.id} to end", final, RUN_TIMEOUT, interval=1, alive=worker,
                    log=live_server.logs / "worker.log")
