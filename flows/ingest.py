"""The `ingest` flow: tasks/pipeline.py's run, each stage a Prefect task run.

    discover -> [ extract -> clean -> segment ] per batch -> dedup -> load -> Parquet, Data Docs
                    gate      gate     gate                    gate    gate

One task run per stage, and one per batch: the flow's task runner spreads the batches over
its workers (processes, threads or a Dask cluster). A stage that refused dumps (a batch, the
dedup gate, the load gate) ends Failed, with its result as the state's data, and the run goes
on with what passed: in the UI it is red beside the green ones. A run that quarantined any
dump ends Failed, with the summary as its result.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State
from prefect.task_runners import TaskRunner
from prefect.utilities.callables import get_call_parameters

from tasks import report
from tasks.batch import BatchOutcome, Ledger, Step, StepRunner
from tasks.models import Dump
from tasks.pipeline import BATCH, Result, RunSummary, Stage, run_pipeline
from tasks.profile import DEFAULT_PROFILE

__all__ = ["RunSummary", "ingest"]


def _stage_in_task(stage: Stage[Result], *args: Any) -> Result | State:
    """A stage inside its task run: its outcome logged there; Failed, with the result as the
    state's data, when it failed in part."""
    result, lines, failed = stage.outcome(*args)
    logger = get_run_logger()
    for line in lines:
        logger.info(line)
    if failed:
        logger.error("%s: %s", stage.name, failed)
        return Failed(message=failed, data=result)
    return result


@task(name="stage", cache_policy=NO_CACHE)
def stage_task(stage: Stage[Result], *args: Any) -> Result | State:
    return _stage_in_task(stage, *args)


class _Records:
    """A step's records as one opaque argument: Prefect looks for futures in a task's
    arguments, and would walk every line of every dump of the batch."""

    __slots__ = ("records",)

    def __init__(self, records: list) -> None:
        self.records = records


@task(name="step", cache_policy=NO_CACHE)
def batch_step(step: Step, records: _Records, ledger: Ledger) -> _Records | State:
    """One step of a batch, as a task run nested in the batch's: Failed (red in the UI)
    when it refused dumps, with what it passed as the state's data."""
    refused_before = len(ledger.quarantined)
    passed = _Records(step(records.records, ledger))
    refused = len(ledger.quarantined) - refused_before
    return Failed(message=f"{refused} dump(s) refused", data=passed) if refused else passed


def _steps_as_task_runs(batch_no: int) -> StepRunner:
    """A StepRunner (tasks/batch.py) that runs each step of batch `batch_no` as a task run
    named after the batch and the step ('batch-3-validate-clean')."""
    def run_step(step: Step, records: list, ledger: Ledger) -> list:
        named = batch_step.with_options(name=step.name, task_run_name=f"batch-{batch_no}-{step.name}")
        return _taken(named(step, _Records(records), ledger, return_state=True)).records

    return run_step


@task(name="batch", task_run_name="batch-{batch_no}", cache_policy=NO_CACHE)
def process_dumps(stage: Stage[BatchOutcome], dumps: list[Dump], profile: str, batch_no: int,
                  stage_folder: Path) -> BatchOutcome | State:
    """BATCH, called like stage_task: extract, clean and segment one batch, each step gated,
    each step a task run of its own; stage its articles."""
    return _stage_in_task(stage, dumps, profile, batch_no, stage_folder, _steps_as_task_runs(batch_no))


def _taken(run: State | PrefectFuture) -> Any:
    """The result of a task run (its final state, or its future), also of one that ended
    Failed because it refused dumps: its state's data; an error in the task is raised."""
    result = run.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    return result


class PrefectExecutor:
    """Each stage a task run of the flow; independent calls spread over a copy of its task
    runner (TaskRunner.duplicate), started by the first map and stopped by release_workers:
    the flow's own runner lives as long as the flow run, and with it its worker processes,
    idle but holding a gigabyte after a 1 GB corpus's batches."""

    def __init__(self) -> None:
        self._workers = ExitStack()
        self._runner: TaskRunner | None = None

    def run(self, stage: Stage[Result], *args: Any) -> Result:
        return _taken(self._task(stage, args)(stage, *args, return_state=True))

    def map(self, stage: Stage[Result], calls: list[tuple]) -> Iterator[Result]:
        """The results in call order, so the run reads like a serial one.

        Calls are submitted at once and the task runner spreads them over its workers; a
        single call runs here, as starting workers (processes importing Prefect, Great
        Expectations and pandas: seconds each) would cost more than it saves."""
        if len(calls) == 1:
            yield self.run(stage, *calls[0])
            return
        runner = self._started_runner()
        # what task.submit does, with this runner in place of the flow's
        futures = []
        for args in calls:
            task = self._task(stage, args)
            futures.append(runner.submit(task, get_call_parameters(task.fn, (stage, *args), {})))
        for future in futures:
            yield _taken(future)

    def _started_runner(self) -> TaskRunner:
        if self._runner is None:
            flow_runner = FlowRunContext.get().task_runner
            self._runner = self._workers.enter_context(flow_runner.duplicate())
        return self._runner

    def release_workers(self) -> None:
        self._runner = None
        self._workers.close()

    @staticmethod
    def _task(stage: Stage, args: tuple):
        """The task a stage runs in, called (stage, *args): a batch's own, whose steps are task
        runs nested in it, or stage_task named after the stage."""
        if stage is BATCH:
            return process_dumps
        return stage_task.with_options(name=stage.name,
                                       task_run_name=stage.run_name.format(*args) if stage.run_name else None)

    def info(self, message: str) -> None:
        get_run_logger().info(message)


@flow(name="ingest", log_prints=True)
def ingest(raw_dir: str, warehouse_dir: str, profile: str = DEFAULT_PROFILE, batch_mb: float = 16.0) -> State:
    """Load every new dump below raw_dir into the warehouse at warehouse_dir."""
    outcome = run_pipeline(Path(raw_dir), Path(warehouse_dir), profile, batch_mb, PrefectExecutor(),
                           run_id=str(flow_run.id or uuid.uuid4()))
    summary = outcome.summary
    report.publish_artifacts(summary.as_dict(), outcome.dq, outcome.docs.index)
    logger = get_run_logger()
    for source_file, reason in summary.quarantined:
        logger.error("quarantined %s: %s", source_file, reason)
    if summary.quarantined:
        return Failed(message=f"{len(summary.quarantined)} dump(s) quarantined", data=summary)
    return Completed(message=f"{summary.dumps_loaded} dump(s) loaded", data=summary)
