"""prefect.yaml, deployed as README's "Run on a schedule" says, on a real Prefect server with a
process worker: the daily schedule is there and fires into scheduled runs, and a run triggered
through the API is executed by the worker into the warehouse."""
from __future__ import annotations

from datetime import timedelta

import gleaner

# The shared server's fixtures. (Names from conftest_server are imported inside the tests:
# imported here, before pytest loads it as a plugin, it would escape assertion rewriting.)
pytest_plugins = ["conftest_server"]

SEED_ARTICLES = 9  # distinct articles of the seeds 000 and 001


def test_prefect_yaml_deploys_a_daily_cron_schedule_on_the_process_pool(live_server, deployment):
    from conftest_server import DEPLOYMENT, POOL, REPO

    assert f"Deployment '{DEPLOYMENT}' successfully created" in deployment.output
    with live_server.client() as client:
        found = client.read_deployment(deployment.id)
        pool = client.read_work_pool(POOL)
    assert found.work_pool_name == POOL and pool.type == "process"
    assert found.entrypoint == "flows/ingest.py:ingest"
    [schedule] = found.schedules
    assert schedule.active
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 3 * * *", "UTC")
    assert not found.paused
    # The worker's flow-run process changes into the repo root, where the code is:
    # the path `prefect deploy` recorded from its build step, not one written into the file.
    assert found.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}]
    assert found.parameters == {"raw_dir": str(deployment.raw_dir), "warehouse_dir": str(deployment.warehouse_dir),
                                "profile": "caci"}


def test_the_scheduler_creates_the_daily_runs(live_server, deployment):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter
    from prefect.client.schemas.sorting import FlowRunSort

    from conftest_server import POOL, wait_for

    def scheduled_runs():
        with live_server.client() as client:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
                flow_run_filter=FlowRunFilter(state={"type": {"any_": ["SCHEDULED"]}}),
                sort=FlowRunSort.EXPECTED_START_TIME_ASC)
        runs = [r for r in runs if r.auto_scheduled]
        return runs if len(runs) >= 2 else None

    runs = wait_for("the scheduler to create scheduled runs", scheduled_runs, 45, interval=1)
    starts = [r.expected_start_time for r in runs]
    assert all((s.hour, s.minute, s.second) == (3, 0, 0) and s.utcoffset() == timedelta(0) for s in starts)
    assert all(later - earlier == timedelta(days=1) for earlier, later in zip(starts, starts[1:]))
    assert all(r.work_pool_name == POOL for r in runs)
    assert all(r.parameters["warehouse_dir"] == str(deployment.warehouse_dir) for r in runs)


def test_a_run_triggered_through_the_api_is_executed_by_the_worker(live_server, deployment, ingest_run):
    from conftest_server import POOL, SEED_PREFIXES

    assert ingest_run.state.is_completed(), f"{ingest_run.state!r}\n{(live_server.logs / 'worker.log').read_text()[-4000:]}"
    assert ingest_run.deployment_id == deployment.id and ingest_run.work_pool_name == POOL
    with gleaner.connect(deployment.warehouse_dir) as con:
        dumps = con.execute("SELECT source_file, status FROM dumps ORDER BY source_file").fetchall()
        articles = con.execute("SELECT count(*) FROM articles").fetchone()[0]
        runs = con.execute("SELECT run_id FROM runs").fetchall()
    assert [(f[:3], s) for f, s in dumps] == [(p, "loaded") for p in SEED_PREFIXES]
    assert articles == SEED_ARTICLES
    assert (str(ingest_run.id),) in runs  # the warehouse's run is the Prefect flow run
