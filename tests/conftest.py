"""Shared fixtures. Prefect runs against one temporary test server per test session."""
from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

# A fresh Prefect home per test session, before anything imports Prefect.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="gleaner-prefect-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "data" / "raw"


@pytest.fixture(scope="session")
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def profile():
    from tasks.profile import load_profile

    return load_profile("caci")


@pytest.fixture
def seeds_subset(tmp_path):
    """A --raw folder holding copies of some of the seed dumps."""

    def make(*prefixes: str) -> Path:
        raw = tmp_path / "raw"
        raw.mkdir(exist_ok=True)
        for seed in sorted(SEEDS.glob("*.txt")):
            if seed.name.startswith(prefixes):
                shutil.copy(seed, raw / seed.name)
        return raw

    return make


def seed_lines(name_prefix: str) -> tuple[str, list[str]]:
    path = next(SEEDS.glob(f"{name_prefix}*.txt"))
    from tasks.extract import split_lines

    return path.name, split_lines(path.read_text(encoding="utf-8"))


def run_ingest(raw, warehouse):
    """The ingest flow, in process, on the session's Prefect server: its state and result."""
    from flows.ingest import ingest

    state = ingest(str(raw), str(warehouse), return_state=True)
    return state, state.result(raise_on_failure=False)


def all_ended(task_runs: list) -> bool:
    """Whether the flow's last task run (report) is recorded and every task run has ended."""
    return any(t.name.startswith("report") for t in task_runs) and all(
        t.state is not None and t.state.is_final() for t in task_runs)


def task_runs_of(flow_run_id, settled: Callable[[list], bool] = all_ended, timeout: float = 30) -> list:
    """The flow run's task runs on the Prefect server, read again until settled(them) or
    `timeout` seconds: the server records task runs from events, a moment after they end."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            task_runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[uuid.UUID(str(flow_run_id))])))
        if settled(task_runs) or time.monotonic() > deadline:
            return task_runs
        time.sleep(0.5)
