"""The `ingest` flow: raw dumps in, a validated warehouse out.

    discover -> [ extract -> clean -> segment ] per batch -> dedup -> load -> Parquet, Data Docs
                    gate      gate     gate                    gate    gate

Dumps travel in batches of about `batch_mb` megabytes, one task run per batch; the task
runner spreads batches over its workers (processes, threads or a Dask cluster). After each
step its Great Expectations suite validates the batch; a dump that fails is quarantined with
the reason and the rest go on. A batch's articles are staged as Parquet under the warehouse,
so memory holds a batch per worker, never the corpus. Dedup reads the stage one author at a
time; the load writes everything in one transaction of the warehouse's lake that the load
gate checks before it commits: the run's snapshot. The Parquet export and the search index
then follow the lake. A run that quarantined any dump ends Failed, with the summary as its
result.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State

from tasks import report, validate
from tasks.batch import BatchOutcome, LoadedDump, process_batch, split_by_gate
from tasks.discover import Discovery, batches, discover
from tasks.followers import Followed, follow_lake
from tasks.load import (RunRows, StoredArticles, dq_row, dump_row, in_transaction, loaded_dumps, open_for_run,
                        quarantine_row, record_run, refuse_load, stage_run, writer_lock)
from tasks.models import Dump, Quarantine
from tasks.profile import DEFAULT_PROFILE, load_profile
from tasks.stage import DedupTotals, clear_stages, dedup_stage, deduped_articles, removed_by_category, start_stage


@dataclass
class RunSummary:
    run_id: str
    warehouse: str
    dumps_found: int = 0
    dumps_loaded: int = 0
    dumps_skipped: int = 0
    quarantined: list[tuple[str, str]] = field(default_factory=list)  # (source_file, reason)
    articles_new: int = 0
    articles_updated: int = 0
    occurrences: int = 0
    removed_by_category: dict[str, int] = field(default_factory=dict)
    checks_passed: int = 0
    checks_failed: int = 0
    checks_skipped: int = 0  # gates with no row to check

    def as_dict(self) -> dict:
        return asdict(self)


# --- thin task wrappers: the logic lives in tasks/ --------------------------------------

@task(name="discover", cache_policy=NO_CACHE)
def discover_dumps(raw_dir: Path, con: duckdb.DuckDBPyConnection) -> Discovery:
    found = discover(raw_dir, loaded_dumps(con))
    get_run_logger().info("discover: %d new, %d already loaded, %d refused",
                          len(found.new), len(found.already_loaded), len(found.refused))
    return found


@task(name="batch", task_run_name="batch-{batch_no}", cache_policy=NO_CACHE)
def process_dumps(dumps: list[Dump], profile: str, batch_no: int, stage_folder: Path) -> BatchOutcome | State:
    """Extract, clean and segment one batch, each step gated; stage its articles.

    A batch that refused dumps ends Failed, with its outcome as the state's data (the flow
    goes on with the rest): in the Prefect UI it is not green like the batches that took all."""
    outcome = process_batch(dumps, profile, batch_no, stage_folder)
    logger = get_run_logger()
    logger.info("batch %d: %d dumps, %d lines, %d removed, %d articles staged, %d dumps refused", batch_no,
                len(dumps), outcome.lines, outcome.removed, outcome.articles, len(outcome.quarantined))
    for gate in outcome.gates:
        logger.info(validate.outcome_line(gate))
    if outcome.quarantined:
        return Failed(message=f"{len(outcome.quarantined)} of {len(dumps)} dump(s) refused", data=outcome)
    return outcome


@task(name="dedup", cache_policy=NO_CACHE)
def dedup_articles(stage_folder: Path, con: duckdb.DuckDBPyConnection, excluded: set[str]) -> DedupTotals:
    totals = dedup_stage(stage_folder, StoredArticles(con), excluded)
    get_run_logger().info("dedup: %d occurrences, %d new articles, %d updated", totals.occurrences,
                          totals.new, totals.updated)
    return totals


@task(name="validate", task_run_name="validate-dedup", cache_policy=NO_CACHE)
def validate_dedup(stage_folder: Path) -> validate.GateResult | State:
    result = validate.validate_frame("dedup", validate.dedup_frame(deduped_articles(stage_folder)))
    get_run_logger().info(validate.outcome_line(result))
    return _gate_state(result)


@task(name="load", cache_policy=NO_CACHE)
def load_rows(rows: RunRows, con: duckdb.DuckDBPyConnection) -> validate.GateResult | State:
    def stage_and_check() -> validate.GateResult:
        stage_run(con, rows)
        result = validate.validate_frame("load", validate.load_frame(con, rows.run_id))
        if result.success:
            rows.dq.append(dq_row(result))
            record_run(con, rows)
        return result

    result = in_transaction(con, stage_and_check, commit_if=lambda r: r.success)
    get_run_logger().info(validate.outcome_line(result))
    get_run_logger().info("load: %s", "committed" if result.success else "refused by the load gate")
    return _gate_state(result)


def _gate_state(result: validate.GateResult) -> validate.GateResult | State:
    """A gate task's end: Failed when its gate refused dumps (red in the UI), with the result
    as the state's data for the flow, which goes on with the rest."""
    return result if result.success else Failed(message=f"{len(result.failures)} dump(s) refused", data=result)


@task(name="follow", cache_policy=NO_CACHE)
def follow(con: duckdb.DuckDBPyConnection, warehouse: Path) -> Followed:
    """The Parquet export and the search index, up to the lake's last snapshot."""
    followed = follow_lake(con, warehouse)
    get_run_logger().info("follow: %d snapshot(s) exported; search index %d added, %d removed",
                          len(followed.exported), followed.search.added, followed.search.removed)
    return followed


# --- helpers of the flow ---------------------------------------------------------------

def process_batches(work: list[list[Dump]], profile: str, stage_folder: Path) -> Iterator[BatchOutcome]:
    """Every batch's outcome, in batch order, so the run reads like a serial one.

    Batches are submitted at once and the task runner spreads them over its workers; a
    single batch runs here, as starting workers (processes importing Prefect, Great
    Expectations and pandas: seconds each) would cost more than it saves."""
    if len(work) == 1:
        yield _taken(process_dumps(work[0], profile, 1, stage_folder, return_state=True))
        return
    futures = [process_dumps.submit(batch, profile, batch_no, stage_folder)
               for batch_no, batch in enumerate(work, start=1)]
    for future in futures:
        yield _taken(future)


def _taken(run: State | PrefectFuture) -> Any:
    """The result of a task run (its final state, or its future), also of one that ended
    Failed because it refused dumps: its state's data; an error in the task is raised."""
    result = run.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    return result


@dataclass
class Progress:
    """Dumps and bytes read so far, for a progress line after every batch."""

    total_dumps: int
    total_bytes: int
    dumps: int = 0
    bytes: int = 0
    started: float = field(default_factory=time.monotonic)

    def advance(self, batch: list[Dump]) -> str:
        self.dumps += len(batch)
        self.bytes += sum(d.bytes for d in batch)
        rate = self.bytes / 1e6 / max(time.monotonic() - self.started, 1e-9)
        return (f"progress: {self.dumps}/{self.total_dumps} dumps, "
                f"{self.bytes / 1e6:.1f}/{self.total_bytes / 1e6:.1f} MB, {rate:.1f} MB/s")


def summarise(rows: RunRows, warehouse: Path, found: Discovery, quarantined: list[Quarantine],
              removed_by_category: dict[str, int]) -> RunSummary:
    return RunSummary(
        run_id=rows.run_id,
        warehouse=str(warehouse.resolve()),
        dumps_found=len(found.new) + len(found.already_loaded) + len(found.refused),
        dumps_loaded=sum(d.status == "loaded" for d in rows.dumps),
        dumps_skipped=rows.dumps_skipped,
        quarantined=[(q.dump.source_file, f"{q.step}: {q.reason}") for q in quarantined],
        articles_new=rows.articles_new,
        articles_updated=rows.articles_updated,
        occurrences=rows.occurrences,
        removed_by_category=removed_by_category,
        checks_passed=sum(q.status == "passed" for q in rows.dq),
        checks_failed=sum(q.status == "failed" for q in rows.dq),
        checks_skipped=sum(q.status == "skipped" for q in rows.dq),
    )


@task(name="report", cache_policy=NO_CACHE)
def report_run(summary: RunSummary, rows: RunRows, gates: list[validate.GateResult], warehouse: Path) -> None:
    """Data Docs into the warehouse, and the run's summary, checks and docs link as Prefect
    artifacts. Docs that fail to build are logged, not fatal: the data is published. A run
    that validated nothing (nothing new) leaves the docs as they were: rendering them costs
    seconds of Great Expectations, and they would show nothing new."""
    try:
        if any(g.validation for g in gates):
            docs = report.build_data_docs(gates, warehouse, rows.run_id)
        else:
            docs = report.docs_index(warehouse)
    except Exception as exc:  # noqa: BLE001 - the data is published; missing docs must not fail the run
        get_run_logger().error("Data Docs not built: %s: %s", type(exc).__name__, exc)
        docs = None
    report.publish_artifacts(summary.as_dict(), [asdict(d) for d in rows.dq], docs)
    get_run_logger().info("report: Data Docs at %s", docs)


# --- the flow --------------------------------------------------------------------------

@flow(name="ingest", log_prints=True)
def ingest(raw_dir: str, warehouse_dir: str, profile: str = DEFAULT_PROFILE, batch_mb: float = 16.0) -> State:
    """Load every new dump below raw_dir into the warehouse at warehouse_dir."""
    raw, warehouse = Path(raw_dir).resolve(), Path(warehouse_dir).resolve()
    load_profile(profile)  # a broken profile stops the run before any work
    rows = RunRows(run_id=str(flow_run.id or uuid.uuid4()), started_at=datetime.now(timezone.utc),
                   raw_dir=str(raw.resolve()))
    quarantined: list[Quarantine] = []
    gates: list[validate.GateResult] = []  # every suite validated, in order, for dq_results and Data Docs
    loaded: list[LoadedDump] = []

    with writer_lock(warehouse):
        clear_stages(warehouse)  # what a killed run left
        rows.stage = start_stage(warehouse, rows.run_id)
        try:
            with open_for_run(warehouse, rows.stage / "spill") as con:
                follow(con, warehouse)  # in case the last run was killed before it followed
                found = discover_dumps(raw, con)
                quarantined += found.refused
                progress = Progress(total_dumps=len(found.new), total_bytes=sum(d.bytes for d in found.new))
                work = list(batches(found.new, int(batch_mb * 1e6)))
                for batch, outcome in zip(work, process_batches(work, profile, rows.stage)):
                    gates += outcome.gates
                    quarantined += outcome.quarantined
                    loaded += outcome.loaded
                    get_run_logger().info(progress.advance(batch))

                deduped = dedup_articles(rows.stage, con, rows.excluded)
                dedup_gate = _taken(validate_dedup(rows.stage, return_state=True))
                gates.append(dedup_gate)
                if not dedup_gate.success:
                    loaded, refused = split_by_gate(loaded, dedup_gate)
                    quarantined += refused
                    rows.excluded = {q.dump.source_file for q in refused}
                    deduped = dedup_articles(rows.stage, con, rows.excluded)

                rows.dumps_skipped = len(found.already_loaded)
                rows.restamped = [(d.source_file, d.sha256, d.bytes, d.modified_ns) for d in found.restamped]
                rows.articles_new, rows.articles_updated = deduped.new, deduped.updated
                rows.occurrences = deduped.occurrences
                rows.dumps = [dump_row(d.dump, "loaded", encoding=d.encoding, articles=d.articles) for d in loaded] \
                    + [quarantine_row(q) for q in quarantined]
                rows.dq = [dq_row(g) for g in gates]
                removed = removed_by_category(rows.stage, rows.excluded)
                load_gate = _taken(load_rows(rows, con, return_state=True))
                if not load_gate.success:
                    quarantined += refuse_load(con, rows, loaded, load_gate, quarantined)
                    removed = {}
                gates.append(load_gate)
                follow(con, warehouse)
        finally:
            clear_stages(warehouse)
        summary = summarise(rows, warehouse, found, quarantined, removed)
        report_run(summary, rows, gates, warehouse)

    for source_file, reason in summary.quarantined:
        get_run_logger().error("quarantined %s: %s", source_file, reason)
    if quarantined:
        return Failed(message=f"{len(quarantined)} dump(s) quarantined", data=summary)
    return Completed(message=f"{summary.dumps_loaded} dump(s) loaded", data=summary)
