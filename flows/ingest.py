"""The `ingest` flow: raw dumps in, a validated warehouse out.

    discover -> extract -> clean -> segment -> dedup -> load
                  gate      gate     gate      gate    gate

Dumps travel in batches of about `batch_mb` megabytes, one task run per step and batch.
After each step its Great Expectations suite validates the batch; a dump that fails is
quarantined with the reason and the rest go on. The load writes everything in one DuckDB
transaction that the load gate checks before it commits. A run that quarantined any dump
ends Failed, with the summary as its result.
"""
from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

import duckdb
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State

from tasks import report, validate
from tasks.analytics import build_search_index
from tasks.clean import clean_dump
from tasks.dedup import DedupResult, deduplicate
from tasks.discover import Discovery, batches, discover
from tasks.extract import ExtractError, extract_dump
from tasks.load import (DqRow, DumpRow, RunRows, export_parquet, in_transaction, known_articles, loaded_dumps,
                        next_version, open_published, record_run, stage_run, writer_lock)
from tasks.models import CleanedDump, Dump, ExtractedDump, Quarantine, SegmentedDump
from tasks.profile import DEFAULT_PROFILE, load_profile
from tasks.segment import segment_dump

Record = TypeVar("Record", ExtractedDump, CleanedDump, SegmentedDump)


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

    def as_dict(self) -> dict:
        return asdict(self)


# --- thin task wrappers: the logic lives in tasks/ --------------------------------------

@task(name="discover", cache_policy=NO_CACHE)
def discover_dumps(raw_dir: Path, con: duckdb.DuckDBPyConnection) -> Discovery:
    found = discover(raw_dir, loaded_dumps(con))
    get_run_logger().info("discover: %d new, %d already loaded, %d refused",
                          len(found.new), len(found.already_loaded), len(found.refused))
    return found


@task(name="extract", task_run_name="extract-batch-{batch_no}", cache_policy=NO_CACHE)
def extract_batch(dumps: list[Dump], profile: str, batch_no: int) -> tuple[list[ExtractedDump], list[Quarantine]]:
    site = load_profile(profile)
    extracted, refused = [], []
    for dump in dumps:
        try:
            extracted.append(extract_dump(dump, site))
        except ExtractError as exc:
            refused.append(Quarantine(dump, "extract", str(exc)))
    get_run_logger().info("extract: %d dumps decoded, %d refused, %d lines",
                          len(extracted), len(refused), sum(len(e.lines) for e in extracted))
    return extracted, refused


@task(name="clean", task_run_name="clean-batch-{batch_no}", cache_policy=NO_CACHE)
def clean_batch(extracted: list[ExtractedDump], profile: str, batch_no: int) -> list[CleanedDump]:
    site = load_profile(profile)
    cleaned = [clean_dump(e, site) for e in extracted]
    get_run_logger().info("clean: %d lines kept, %d removed", sum(len(c.lines) for c in cleaned),
                          sum(len(c.removed) for c in cleaned))
    return cleaned


@task(name="segment", task_run_name="segment-batch-{batch_no}", cache_policy=NO_CACHE)
def segment_batch(cleaned: list[CleanedDump], profile: str, batch_no: int) -> list[SegmentedDump]:
    site = load_profile(profile)
    segmented = [segment_dump(c, site) for c in cleaned]
    get_run_logger().info("segment: %d articles in %d dumps", sum(len(s.articles) for s in segmented),
                          len(segmented))
    return segmented


@task(name="validate", task_run_name="validate-{step}-batch-{batch_no}", cache_policy=NO_CACHE)
def validate_batch(step: str, records: Sequence[object], batch_no: int) -> validate.GateResult:
    frame = getattr(validate, f"{step}_frame")(list(records))
    result = validate.validate_frame(step, frame)
    get_run_logger().info("validate %s: %s (%d of %d expectations failed)", step,
                          "passed" if result.success else "FAILED", result.failed, result.evaluated)
    return result


@task(name="dedup", cache_policy=NO_CACHE)
def dedup_articles(segmented: list[SegmentedDump], con: duckdb.DuckDBPyConnection) -> DedupResult:
    result = deduplicate(segmented, lambda keys: known_articles(con, keys))
    get_run_logger().info("dedup: %d occurrences, %d new articles, %d updated", len(result.occurrences),
                          len(result.new_ids), len(result.updated_ids))
    return result


@task(name="load", cache_policy=NO_CACHE)
def load_rows(rows: RunRows, con: duckdb.DuckDBPyConnection) -> validate.GateResult:
    def stage_and_check() -> validate.GateResult:
        stage_run(con, rows)
        if rows.articles:  # the search index follows the articles, in the same transaction
            build_search_index(con)
        result = validate.validate_frame("load", validate.load_frame(con))
        if result.success:
            rows.dq.append(dq_row(result))
            record_run(con, rows)
        return result

    result = in_transaction(con, stage_and_check, commit_if=lambda r: r.success)
    get_run_logger().info("load: %s", "committed" if result.success else "refused by the load gate")
    return result


# --- helpers of the flow ---------------------------------------------------------------

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


def dq_row(result: validate.GateResult) -> DqRow:
    return DqRow(result.step, result.suite, result.success, result.evaluated, result.failed, result.details)


def split_by_gate(records: list[Record], result: validate.GateResult) -> tuple[list[Record], list[Quarantine]]:
    """The records whose dump passed the gate, and a quarantine for each that failed."""
    passed, refused = [], []
    for record in records:
        reasons = result.failures.get(record.dump.source_file)
        if reasons:
            refused.append(Quarantine(record.dump, result.step, "; ".join(sorted(set(reasons)))))
        else:
            passed.append(record)
    return passed, refused


def dump_row(dump: Dump, status: str, reason: str | None = None, encoding: str | None = None,
             articles: int = 0) -> DumpRow:
    return DumpRow(dump.source_file, dump.sha256, dump.bytes, dump.format, status, reason, encoding, articles)


def quarantine_row(q: Quarantine) -> DumpRow:
    return dump_row(q.dump, "quarantined", f"{q.step}: {q.reason}")


def refuse_load(con: duckdb.DuckDBPyConnection, rows: RunRows, segmented: list[SegmentedDump],
                load_gate: validate.GateResult, quarantined: list[Quarantine]) -> list[Quarantine]:
    """After the load gate refused the run: keep none of its rows, quarantine every dump it
    read with the gate's reasons, and record that (dumps, dq_results, runs)."""
    reasons = "; ".join(sorted({r for rs in load_gate.failures.values() for r in rs})) or "load gate failed"
    refused = [Quarantine(s.dump, "load", reasons) for s in segmented]
    rows.dq.append(dq_row(load_gate))
    rows.articles, rows.occurrences, rows.removed = [], [], []
    rows.articles_new = rows.articles_updated = 0
    rows.dumps = [quarantine_row(q) for q in quarantined + refused]

    def write_refusal() -> None:
        stage_run(con, rows)
        record_run(con, rows)

    in_transaction(con, write_refusal)
    return refused


def summarise(rows: RunRows, warehouse: Path, found: Discovery, quarantined: list[Quarantine]) -> RunSummary:
    return RunSummary(
        run_id=rows.run_id,
        warehouse=str(warehouse.resolve()),
        dumps_found=len(found.new) + len(found.already_loaded) + len(found.refused),
        dumps_loaded=sum(d.status == "loaded" for d in rows.dumps),
        dumps_skipped=rows.dumps_skipped,
        quarantined=[(q.dump.source_file, f"{q.step}: {q.reason}") for q in quarantined],
        articles_new=rows.articles_new,
        articles_updated=rows.articles_updated,
        occurrences=len(rows.occurrences),
        removed_by_category=dict(sorted(Counter(r.category for r in rows.removed).items())),
        checks_passed=sum(q.success for q in rows.dq),
        checks_failed=sum(not q.success for q in rows.dq),
    )


@task(name="report", cache_policy=NO_CACHE)
def report_run(summary: RunSummary, rows: RunRows, gates: list[validate.GateResult], warehouse: Path) -> None:
    """Data Docs into the warehouse, and the run's summary, checks and docs link as Prefect
    artifacts. Docs that fail to build are logged, not fatal: the data is published."""
    try:
        docs = report.build_data_docs(gates, warehouse, rows.run_id)
    except Exception as exc:  # noqa: BLE001 - the data is published; missing docs must not fail the run
        get_run_logger().error("Data Docs not built: %s: %s", type(exc).__name__, exc)
        docs = None
    report.publish_artifacts(summary.as_dict(), [asdict(d) for d in rows.dq], docs)
    get_run_logger().info("report: Data Docs at %s", docs)


# --- the flow --------------------------------------------------------------------------

@flow(name="ingest", log_prints=True)
def ingest(raw_dir: str, warehouse_dir: str, profile: str = DEFAULT_PROFILE, batch_mb: float = 32.0) -> State:
    """Load every new dump below raw_dir into the warehouse at warehouse_dir."""
    raw, warehouse = Path(raw_dir).resolve(), Path(warehouse_dir).resolve()
    load_profile(profile)  # a broken profile stops the run before any work
    rows = RunRows(run_id=str(flow_run.id or uuid.uuid4()), started_at=datetime.now(timezone.utc),
                   raw_dir=str(raw.resolve()))
    quarantined: list[Quarantine] = []
    gates: list[validate.GateResult] = []  # every suite validated, in order, for dq_results and Data Docs

    def gate(step: str, records: list[Record], batch_no: int) -> list[Record]:
        """Validate a step's output; pass on the records of the dumps that passed it."""
        result = validate_batch(step, records, batch_no)
        gates.append(result)
        passed, refused = split_by_gate(records, result)
        quarantined.extend(refused)
        return passed

    with writer_lock(warehouse):
        with open_published(warehouse) as published:
            found = discover_dumps(raw, published)
            quarantined += found.refused
            segmented: list[SegmentedDump] = []
            progress = Progress(total_dumps=len(found.new), total_bytes=sum(d.bytes for d in found.new))
            for batch_no, batch in enumerate(batches(found.new, int(batch_mb * 1e6)), start=1):
                extracted, refused = extract_batch(batch, profile, batch_no)
                quarantined += refused
                extracted = gate("extract", extracted, batch_no)
                cleaned = gate("clean", clean_batch(extracted, profile, batch_no), batch_no)
                segmented += gate("segment", segment_batch(cleaned, profile, batch_no), batch_no)
                get_run_logger().info(progress.advance(batch))

            deduped = dedup_articles(segmented, published)
            dedup_gate = validate_batch("dedup", deduped.articles, 0)
            gates.append(dedup_gate)
            if not dedup_gate.success:
                segmented, refused = split_by_gate(segmented, dedup_gate)
                quarantined += refused
                deduped = dedup_articles(segmented, published)

        rows.dumps_skipped = len(found.already_loaded)
        rows.articles_new, rows.articles_updated = len(deduped.new_ids), len(deduped.updated_ids)
        rows.articles, rows.occurrences = deduped.articles, deduped.occurrences
        rows.removed = [r for s in segmented for r in s.removed]
        rows.dumps = [dump_row(s.dump, "loaded", encoding=s.encoding, articles=len(s.articles))
                      for s in segmented] + [quarantine_row(q) for q in quarantined]
        rows.dq = [dq_row(g) for g in gates]
        with next_version(warehouse) as con:  # published when the block ends
            load_gate = load_rows(rows, con)
            if not load_gate.success:
                quarantined += refuse_load(con, rows, segmented, load_gate, quarantined)
        gates.append(load_gate)
        export_parquet(warehouse)
        summary = summarise(rows, warehouse, found, quarantined)
        report_run(summary, rows, gates, warehouse)

    for source_file, reason in summary.quarantined:
        get_run_logger().error("quarantined %s: %s", source_file, reason)
    if quarantined:
        return Failed(message=f"{len(quarantined)} dump(s) quarantined", data=summary)
    return Completed(message=f"{summary.dumps_loaded} dump(s) loaded", data=summary)
