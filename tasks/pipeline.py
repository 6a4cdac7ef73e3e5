"""The pipeline: raw dumps in, a validated warehouse out, with no orchestrator in it.

    discover -> [ extract -> clean -> segment -> stage ] per batch -> dedup -> load -> follow, report
                   gate      gate     gate                            gate    gate

run_pipeline runs each stage through an Executor, which decides how it runs: the Prefect
flow (flows/ingest.py) makes every stage a task run and spreads the batches over its task
runner; the benchmark (bench/run.py) times them in a process pool; SerialExecutor runs all
of them here, in order. Whatever runs it, a run does the same work in the same order.

Dumps travel in batches of about `batch_mb` megabytes (tasks/batch.py). A dump that a step
or a gate refuses is quarantined with the reason and the rest go on. A batch's articles are
staged as Parquet under the warehouse, so memory holds a batch per worker, never the
corpus. Dedup reads the stage one author part at a time; the load writes everything in one
transaction of the warehouse's lake that the load gate checks before it commits: the run's
snapshot. The Parquet export and the search index then follow the lake.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import duckdb

from tasks import report, validate
from tasks.batch import BatchOutcome, LoadedDump, process_batch, split_by_gate
from tasks.discover import Discovery, batches, discover
from tasks.followers import Followed, follow_lake
from tasks.load import (RunRows, StoredArticles, dq_row, dump_row, in_transaction, loaded_dumps, open_for_run,
                        quarantine_row, record_run, refuse_load, stage_run, writer_lock)
from tasks.memory import release_memory
from tasks.models import Dump, Quarantine
from tasks.profile import load_profile
from tasks.stage import (DedupPlan, DedupTotals, clear_stages, dedup_group, deduped_articles, finish_dedup,
                         prepare_dedup, removed_by_category, start_stage)

Result = TypeVar("Result")


@dataclass(frozen=True)
class Stage(Generic[Result]):
    """One stage of a run: what it calls, the log lines of its outcome, and what went wrong in
    part (dumps refused by a gate, docs not built): an executor shows such a stage failed,
    while the run goes on with what passed."""

    name: str
    fn: Callable[..., Result]
    describe: Callable[[Result], list[str]]
    failed: Callable[[Result], str | None] = lambda _: None
    #: a Prefect task run name, when not the name and a number; {0}, {1}, ... are the arguments
    run_name: str | None = None

    def outcome(self, *args: Any) -> tuple[Result, list[str], str | None]:
        """Run it: its result, the lines to log, and what failed (None when nothing did)."""
        result = self.fn(*args)
        release_memory()
        return result, self.describe(result), self.failed(result)


class Executor(Protocol):
    """How a run's stages run."""

    def run(self, stage: Stage[Result], *args: Any) -> Result:
        """stage.fn(*args), in this process, with its outcome logged."""

    def map(self, stage: Stage[Result], calls: list[tuple]) -> Iterator[Result]:
        """stage.fn(*args) for every args of `calls`, anywhere (they are independent): the
        results in the order of `calls`, each outcome logged."""

    def info(self, message: str) -> None: ...

    def release_workers(self) -> None:
        """Stop the workers that map started (a later map starts them again): once the run
        spreads no more work, their memory goes back to the system before the load and the
        search index, which need the most of the command's."""


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


# --- the stages: the plain functions they call, and what they report -------------------------------

def _refused_dumps(count: int, of: int | None = None) -> str | None:
    if not count:
        return None
    return f"{count} of {of} dump(s) refused" if of is not None else f"{count} dump(s) refused"


def _gate_refusal(result: validate.GateResult) -> str | None:
    return None if result.success else _refused_dumps(len(result.failures))


def _discover_lines(found: Discovery) -> list[str]:
    return [f"discover: {len(found.new)} new, {len(found.already_loaded)} already loaded, "
            f"{len(found.refused)} refused"]


def _batch_lines(outcome: BatchOutcome) -> list[str]:
    dumps = len(outcome.loaded) + len(outcome.quarantined)
    counts = outcome.counts
    flow = ", ".join(f"{name} {counts.get(f'{name} in', 0)} -> {counts.get(f'{name} out', 0)}"
                     for name in outcome.steps)
    return [f"batch {outcome.batch_no}: {dumps} dumps, {counts.get('lines', 0)} lines, "
            f"{counts.get('removed', 0)} removed, {counts.get('articles', 0)} articles staged, "
            f"{len(outcome.quarantined)} dumps refused",
            f"batch {outcome.batch_no} steps (dumps in -> out): {flow}",
            *(validate.outcome_line(gate) for gate in outcome.gates)]


def _dedup_lines(totals: DedupTotals) -> list[str]:
    return [f"dedup: {totals.occurrences} occurrences, {totals.new} new articles, {totals.updated} updated"]


def _plan_lines(plan: DedupPlan) -> list[str]:
    return [f"dedup: {sum(map(len, plan.groups))} author part(s) in {len(plan.groups)} group(s)"]


def dedup_known(stage_folder: Path, con: duckdb.DuckDBPyConnection, excluded: set[str]) -> DedupPlan:
    return prepare_dedup(stage_folder, StoredArticles(con), excluded)


def dedup_texts(stage_folder: Path, con: duckdb.DuckDBPyConnection) -> None:
    finish_dedup(stage_folder, StoredArticles(con))


def dedup(executor: Executor, stage_folder: Path, con: duckdb.DuckDBPyConnection, excluded: set[str]) -> DedupTotals:
    """Dedup in three stages: the warehouse's side here, the author parts in groups anywhere,
    the stored texts of rewritten articles here."""
    plan = executor.run(DEDUP_PREPARE, stage_folder, con, excluded)
    totals = DedupTotals()
    for group in executor.map(DEDUP_GROUP, [(stage_folder, parts, excluded, n) for n, parts in enumerate(plan.groups)]):
        totals.add(group)
    executor.run(DEDUP_FINISH, stage_folder, con)
    return totals


def _follow_lines(followed: Followed) -> list[str]:
    return [f"follow: {len(followed.exported)} snapshot(s) exported; search index {followed.search.added} "
            f"added, {followed.search.removed} removed"]


def validate_dedup(stage_folder: Path) -> validate.GateResult:
    return validate.validate_frame("dedup", validate.dedup_frame(deduped_articles(stage_folder)))


def load_rows(rows: RunRows, con: duckdb.DuckDBPyConnection) -> validate.GateResult:
    """Write the run's rows in one transaction that the load gate checks before it commits."""
    def stage_and_check() -> validate.GateResult:
        stage_run(con, rows)
        result = validate.validate_frame("load", validate.load_frame(con, rows.run_id))
        if result.success:
            rows.dq.append(dq_row(result))
            record_run(con, rows)
        return result

    return in_transaction(con, stage_and_check, commit_if=lambda r: r.success)


@dataclass(frozen=True)
class DataDocs:
    """Where the run's Data Docs are, or why they were not built."""

    index: Path | None
    error: str | None = None


def build_docs(rows: RunRows, gates: list[validate.GateResult], warehouse: Path) -> DataDocs:
    """Data Docs into the warehouse. Docs that fail to build are reported, not fatal: the data
    is published. A run that validated nothing (nothing new) leaves the docs as they were:
    rendering them costs seconds of Great Expectations, and they would show nothing new."""
    try:
        if any(g.validation for g in gates):
            return DataDocs(report.build_data_docs(gates, warehouse, rows.run_id))
        return DataDocs(report.docs_index(warehouse))
    except Exception as exc:  # noqa: BLE001 - the data is published; missing docs must not fail the run
        return DataDocs(None, f"{type(exc).__name__}: {exc}")


DISCOVER = Stage("discover", lambda raw, con: discover(raw, loaded_dumps(con)), _discover_lines)
BATCH = Stage("batch", process_batch, _batch_lines,
              lambda o: _refused_dumps(len(o.quarantined), len(o.loaded) + len(o.quarantined)))
DEDUP_PREPARE = Stage("dedup-prepare", dedup_known, _plan_lines)
DEDUP_GROUP = Stage("dedup", dedup_group, _dedup_lines, run_name="dedup-{3}")
DEDUP_FINISH = Stage("dedup-finish", dedup_texts, lambda _: [])
DEDUP_GATE = Stage("validate", validate_dedup, lambda r: [validate.outcome_line(r)], _gate_refusal,
                   run_name="validate-dedup")
LOAD = Stage("load", load_rows,
             lambda r: [validate.outcome_line(r), f"load: {'committed' if r.success else 'refused by the load gate'}"],
             _gate_refusal)
FOLLOW = Stage("follow", lambda con, warehouse: follow_lake(con, warehouse), _follow_lines)
REPORT = Stage("report", build_docs, lambda docs: [f"report: Data Docs at {docs.index}"] if docs.index else [],
               lambda docs: docs.error and f"Data Docs not built: {docs.error}")


class SerialExecutor:
    """Every stage in this process, in order, logging to a callable (print by default)."""

    def __init__(self, log: Callable[[str], None] = print) -> None:
        self.log = log

    def run(self, stage: Stage[Result], *args: Any) -> Result:
        result, lines, failed = stage.outcome(*args)
        for line in lines + ([f"{stage.name}: {failed}"] if failed else []):
            self.log(line)
        return result

    def map(self, stage: Stage[Result], calls: list[tuple]) -> Iterator[Result]:
        for args in calls:
            yield self.run(stage, *args)

    def info(self, message: str) -> None:
        self.log(message)

    def release_workers(self) -> None:
        pass  # there are none


# --- the run ------------------------------------------------------------------------------------

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


@dataclass
class RunOutcome:
    summary: RunSummary
    dq: list[dict]  # dq_results rows of the run
    docs: DataDocs


def run_pipeline(raw: Path, warehouse: Path, profile: str, batch_mb: float, executor: Executor,
                 run_id: str) -> RunOutcome:
    """Load every new dump below `raw` into the warehouse at `warehouse`."""
    raw, warehouse = raw.resolve(), warehouse.resolve()
    load_profile(profile)  # a broken profile stops the run before any work
    rows = RunRows(run_id=run_id, started_at=datetime.now(timezone.utc), raw_dir=str(raw))
    quarantined: list[Quarantine] = []
    gates: list[validate.GateResult] = []  # every suite validated, in order, for dq_results and Data Docs
    loaded: list[LoadedDump] = []

    with writer_lock(warehouse):
        clear_stages(warehouse)  # what a killed run left
        rows.stage = start_stage(warehouse, rows.run_id)
        try:
            with open_for_run(warehouse, rows.stage / "spill") as con:
                executor.run(FOLLOW, con, warehouse)  # in case the last run was killed before it followed
                found = executor.run(DISCOVER, raw, con)
                quarantined += found.refused
                progress = Progress(total_dumps=len(found.new), total_bytes=sum(d.bytes for d in found.new))
                work = list(batches(found.new, int(batch_mb * 1e6)))
                calls = [(batch, profile, batch_no, rows.stage) for batch_no, batch in enumerate(work, start=1)]
                for batch, outcome in zip(work, executor.map(BATCH, calls)):
                    gates += outcome.gates
                    quarantined += outcome.quarantined
                    loaded += outcome.loaded
                    executor.info(progress.advance(batch))
                # dedup's groups start workers of their own: a batch worker holds Great
                # Expectations and polars besides what dedup needs (1 GB corpus: peak 2.88 -> 2.42 GB)
                executor.release_workers()

                deduped = dedup(executor, rows.stage, con, rows.excluded)
                dedup_gate = executor.run(DEDUP_GATE, rows.stage)
                gates.append(dedup_gate)
                if not dedup_gate.success:
                    loaded, refused = split_by_gate(loaded, dedup_gate)
                    quarantined += refused
                    rows.excluded = {q.dump.source_file for q in refused}
                    deduped = dedup(executor, rows.stage, con, rows.excluded)
                executor.release_workers()

                rows.dumps_skipped = len(found.already_loaded)
                rows.restamped = [(d.source_file, d.sha256, d.bytes, d.modified_ns) for d in found.restamped]
                rows.articles_new, rows.articles_updated = deduped.new, deduped.updated
                rows.occurrences = deduped.occurrences
                rows.dumps = [dump_row(d.dump, "loaded", encoding=d.encoding, articles=d.articles) for d in loaded] \
                    + [quarantine_row(q) for q in quarantined]
                rows.dq = [dq_row(g) for g in gates]
                removed = removed_by_category(rows.stage, rows.excluded)
                load_gate = executor.run(LOAD, rows, con)
                if not load_gate.success:
                    quarantined += refuse_load(con, rows, loaded, load_gate, quarantined)
                    removed = {}
                gates.append(load_gate)
                executor.run(FOLLOW, con, warehouse)
        finally:
            executor.release_workers()
            clear_stages(warehouse)
        summary = summarise(rows, warehouse, found, quarantined, removed)
        docs = executor.run(REPORT, rows, gates, warehouse)
    return RunOutcome(summary, [asdict(d) for d in rows.dq], docs)
