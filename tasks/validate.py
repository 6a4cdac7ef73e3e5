"""Great Expectations gates between the steps.

Each step's output is flattened into a pandas frame (one row per thing checked, always with
a `source_file` column) and validated against the suite stored in expectations/<step>.json.
A failing row is traced back to its dump through GX's unexpected_index_list, so the caller
can quarantine exactly the dumps that broke an expectation, with the suite's human reason.
"""
from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from tasks.models import CleanedDump, ExtractedDump, SegmentedDump

if TYPE_CHECKING:
    import duckdb
    import great_expectations as gx
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
    from great_expectations.data_context import EphemeralDataContext

#: One suite per gate, named after the step it guards.
SUITES_DIR = Path(__file__).resolve().parent.parent / "expectations"

#: How many unexpected values of a failed expectation go into GateResult.details.
SAMPLE_SIZE = 5
#: Long texts (article bodies) are cut to this many characters in details.
SAMPLE_CHARS = 200
#: Keys of a COMPLETE expectation result that list every failing row; the Data Docs show
#: GX's partial lists (up to 20 values) instead, and row numbers of a gate frame mean nothing
#: to a reader, so GateResult.validation leaves these out.
ROW_LISTS = frozenset({"unexpected_list", "unexpected_index_list", "unexpected_index_query",
                       "partial_unexpected_index_list"})

EXTRACT_COLUMNS = ["source_file", "encoding", "n_lines", "n_chars", "nonblank_lines", "replacement_ratio"]
CLEAN_COLUMNS = ["source_file", "status", "line_no", "category", "kept_text"]
SEGMENT_COLUMNS = [
    "source_file", "ordinal", "kind", "n_authors", "authors", "word_count", "body_words",
    "lede", "body", "bio", "title",
]
DEDUP_SQL = f"""
SELECT source_file, ordinal, article_id, kind, title,
       CASE WHEN length(body) <= {SAMPLE_CHARS} THEN body ELSE left(body, {SAMPLE_CHARS}) || ' #' || printf('%016x', hash(body)) END AS body
FROM read_parquet($file)
"""

# The run's occurrences, checked against everything stored: a rerun's cost follows what it
# loads, not the size of the warehouse.
LOAD_SQL = """
WITH mine AS (SELECT source_file, ordinal, article_id FROM article_occurrences WHERE run_id = $run_id),
stored AS (
    SELECT article_id, count(*) AS article_rows FROM articles
    WHERE article_id IN (SELECT article_id FROM mine) GROUP BY article_id),
copies AS (
    SELECT source_file, ordinal, count(*) AS dup_count FROM article_occurrences
    WHERE source_file IN (SELECT source_file FROM mine) GROUP BY source_file, ordinal)
SELECT o.source_file,
       o.ordinal,
       o.article_id,
       s.article_rows IS NOT NULL AS article_exists,
       coalesce(s.article_rows, 0) AS article_rows,
       c.dup_count
FROM mine o
LEFT JOIN stored s USING (article_id)
JOIN copies c USING (source_file, ordinal)
ORDER BY o.source_file, o.ordinal, o.article_id
"""


# The pandas datasource runs every batch on one shared execution engine that holds "the active
# batch", so validations from concurrent threads (Prefect's default task runner) read each
# other's frames; measured: 37 of 80 results wrong without this lock.
_VALIDATION_LOCK = threading.Lock()


class GateError(RuntimeError):
    """A suite could not be evaluated: a bug in the frame or the suite, not bad data."""


@dataclass(frozen=True)
class GateResult:
    step: str  # 'extract' | 'clean' | 'segment' | 'dedup' | 'load'
    suite: str  # suite name, same as the JSON file stem
    success: bool
    evaluated: int  # expectations evaluated
    failed: int  # expectations that failed
    failures: dict[str, list[str]]  # source_file -> human reasons (meta.reason), for quarantine
    details: str  # JSON: per failed expectation its type, column, reason, counts, sample values
    rows: int = 0  # rows of the frame validated; none: the gate had nothing to check (skipped)
    # GX's ExpectationSuiteValidationResult as JSON, for the Data Docs (tasks/report.py), with
    # the row lists dropped and long values cut. None when nothing was validated (empty frame).
    validation: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def status(self) -> str:
        """'passed', 'failed', or 'skipped' when there was no row to check: a gate that checked
        nothing passed nothing."""
        return "skipped" if self.rows == 0 else "passed" if self.success else "failed"


# --- suites and validation ----------------------------------------------------------------


@cache
def load_suite(name: str) -> gx.ExpectationSuite:
    """The suite stored in expectations/<name>.json."""
    import great_expectations as gx

    stored = json.loads((SUITES_DIR / f"{name}.json").read_text(encoding="utf-8"))
    suite = gx.ExpectationSuite(**stored)
    # GX logs and drops an expectation whose configuration it cannot parse; a gate that
    # silently checks less than its file says is worse than no gate.
    if len(suite.expectations) != len(stored["expectations"]):
        raise GateError(f"expectations/{name}.json: GX refused some expectations (see log)")
    for expectation in suite.expectations:
        if not (expectation.meta or {}).get("reason"):
            raise GateError(f"expectations/{name}.json: {expectation.expectation_type} has no meta.reason")
    return suite


def quiet_gx() -> None:
    """Only GX's errors reach the run's log: some of its modules set their loggers to INFO
    themselves (a temporary docs folder for every context), which the package's level
    does not override."""
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("great_expectations")]:
        logging.getLogger(name).setLevel(logging.ERROR)


@cache
def _batch_definition() -> BatchDefinition:
    """A whole-dataframe batch definition in an ephemeral context, built once per process."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    quiet_gx()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = context.data_sources.add_pandas("gleaner").add_dataframe_asset("gate_frame")
    return asset.add_batch_definition_whole_dataframe("whole_frame")


def _gate_context() -> EphemeralDataContext:
    """The ephemeral context the gates validate in (the batch definition's)."""
    return _batch_definition().data_asset.datasource.data_context


@cache
def _validation(name: str) -> gx.ValidationDefinition:
    """The suite `name` on the whole-frame batch definition, added to the gates' context once per
    process. Running it loads the frame once; Batch.validate loads a batch a second time, and GX
    hashes every frame it loads (a fifth of the clean gate's time on a 16 MB batch)."""
    import great_expectations as gx

    context = _gate_context()
    # A copy: adding a suite binds it to the context, and load_suite's object is shared (tasks/report.py)
    suite = context.suites.add(gx.ExpectationSuite(**load_suite(name).to_json_dict()))
    return context.validation_definitions.add(gx.ValidationDefinition(name=name, data=_batch_definition(), suite=suite))


def warm_up() -> None:
    """Import Great Expectations and build the batch definition the gates use, so that the
    first gate need not: about 3 s, nearly all of it GX's own imports (scipy.stats among them)."""
    with _VALIDATION_LOCK:
        _batch_definition()


def _run(step: str, frame: pd.DataFrame, result_format: str) -> ExpectationSuiteValidationResult:
    """The suite `step` run on `frame`. A validation definition stores each result it makes in
    its context; a gate's result is the GateResult's to keep, so the store is emptied again, or
    a worker would hold every batch's results (with every failing row, when a gate failed)."""
    outcome = _validation(step).run(batch_parameters={"dataframe": frame}, result_format={"result_format": result_format})
    store = _gate_context().validation_results_store
    for key in store.list_keys():
        store.remove_key(key)
    return outcome


def validate_frame(step: str, frame: pd.DataFrame) -> GateResult:
    """Validate `frame` against the suite named `step`; blame failing rows' source files."""
    if frame.empty:  # nothing to check; and a rerun with nothing new need not import GX
        return GateResult(step, step, True, 0, 0, {}, "[]")
    suite = load_suite(step)
    # Positional index, so unexpected_index_list entries are row numbers of `frame`.
    frame = frame.reset_index(drop=True)
    with _VALIDATION_LOCK:
        outcome = _run(step, frame, "BASIC")
        if not outcome.success:
            # Only a failed validation needs every failing row, to blame their dumps; listing
            # them for every expectation made a passing gate a quarter to a third dearer.
            outcome = _run(step, frame, "COMPLETE")

    failures: dict[str, list[str]] = {}
    details: list[dict[str, Any]] = []
    for result in outcome.results:
        config = result.expectation_config
        error = _exception_message(result.exception_info)
        if error:
            raise GateError(f"suite {suite.name}: {config.type} could not run: {error}")
        if result.success:
            continue
        reason = config.meta["reason"]
        rows = result.result.get("unexpected_index_list")
        if rows is None:
            raise GateError(f"suite {suite.name}: {config.type} reports no failing rows to blame")
        blamed = list(dict.fromkeys(frame["source_file"].iloc[rows]))
        for source_file in blamed:
            reasons = failures.setdefault(source_file, [])
            if reason not in reasons:
                reasons.append(reason)
        details.append(
            {
                "type": config.type,
                "column": _column_of(config.kwargs),
                "reason": reason,
                "unexpected_count": result.result.get("unexpected_count"),
                "unexpected_values": [_sample(v) for v in result.result.get("unexpected_list", [])[:SAMPLE_SIZE]],
                "source_files": blamed,
            }
        )
    statistics = outcome.statistics
    return GateResult(
        step=step,
        suite=suite.name,
        success=bool(outcome.success),
        evaluated=int(statistics["evaluated_expectations"]),
        failed=int(statistics["unsuccessful_expectations"]),
        failures=failures,
        details=json.dumps(details, ensure_ascii=False, allow_nan=False, default=_json_scalar),
        rows=len(frame),
        validation=_for_docs(outcome.to_json_dict()),
    )


def outcome_line(result: GateResult) -> str:
    """The gate's outcome in a line of the run's log."""
    if result.status == "skipped":
        return f"validate {result.step}: skipped (no row to check)"
    return (f"validate {result.step}: {'passed' if result.success else 'FAILED'} "
            f"({result.failed} of {result.evaluated} expectations failed, {result.rows} rows checked)")


def _for_docs(validation: dict[str, Any]) -> dict[str, Any]:
    """A validation result as JSON, small enough to keep for the whole run."""
    for result in validation["results"]:
        result["result"] = {key: _sample(value) for key, value in result["result"].items() if key not in ROW_LISTS}
    return validation


def _exception_message(exception_info: dict) -> str | None:
    """The error an expectation raised, if any."""
    # One entry for the expectation, or one per metric (keyed by metric id) when a metric failed.
    infos = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    messages = [info["exception_message"] for info in infos if info.get("raised_exception")]
    return "; ".join(messages) if messages else None


def _column_of(kwargs: dict) -> str | list[str] | None:
    if "column" in kwargs:
        return kwargs["column"]
    if "column_A" in kwargs:
        return [kwargs["column_A"], kwargs["column_B"]]
    return kwargs.get("column_list")


def _sample(value: Any) -> Any:
    """An unexpected value as plain JSON: long texts cut, NaN as null."""
    if isinstance(value, (list, tuple)):
        return [_sample(item) for item in value]
    if isinstance(value, dict):
        return {key: _sample(item) for key, item in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str) and len(value) > SAMPLE_CHARS:
        return value[:SAMPLE_CHARS] + "…"
    return value


def _json_scalar(value: Any) -> Any:
    # numpy scalars in unexpected_list (np.int64, np.bool_) are not JSON by themselves.
    return value.item() if hasattr(value, "item") else str(value)


# --- frames, one builder per gate --------------------------------------------------------------


def extract_frame(dumps: list[ExtractedDump]) -> pd.DataFrame:
    """One row per decoded dump."""
    rows = []
    for dump in dumps:
        n_chars = sum(len(line) for line in dump.lines)
        rows.append(
            {
                "source_file": dump.dump.source_file,
                "encoding": dump.encoding,
                "n_lines": len(dump.lines),
                "n_chars": n_chars,
                "nonblank_lines": sum(1 for line in dump.lines if line.strip()),
                "replacement_ratio": dump.replacement_chars / max(n_chars, 1),
            }
        )
    return pd.DataFrame(rows, columns=EXTRACT_COLUMNS)


def clean_frame(dumps: list[CleanedDump]) -> pd.DataFrame:
    """One row per kept text line (status 'kept', its text in kept_text) and per removal
    (status 'removed', its category in category).

    Each column holds one status's values and nothing (null) for the other's, so that the
    text checks need no row condition (which GX applies again for every metric it computes:
    most of the gate's time). Kept lines with role 'category' or 'title' are boilerplate on
    purpose, so they are left out.
    """
    columns: dict[str, list] = {name: [] for name in CLEAN_COLUMNS}
    for dump in dumps:
        kept = [line for line in dump.lines if line.role == "text"]
        columns["source_file"] += [dump.dump.source_file] * len(kept) + [r.source_file for r in dump.removed]
        columns["status"] += ["kept"] * len(kept) + ["removed"] * len(dump.removed)
        columns["line_no"] += [line.no for line in kept] + [r.line_no for r in dump.removed]
        columns["category"] += [None] * len(kept) + [r.category for r in dump.removed]
        columns["kept_text"] += [line.text for line in kept] + [None] * len(dump.removed)
    return pd.DataFrame(columns, columns=CLEAN_COLUMNS)


def segment_frame(dumps: list[SegmentedDump]) -> pd.DataFrame:
    """One row per article occurrence."""
    rows = [
        {
            "source_file": article.source_file,
            "ordinal": article.ordinal,
            "kind": article.kind,
            "n_authors": len(article.authors),
            "authors": "; ".join(article.authors),
            "word_count": article.word_count,
            "body_words": len(article.body.split()),
            "lede": article.lede,
            "body": article.body,
            "bio": article.bio,
            "title": article.title,
        }
        for dump in dumps
        for article in dump.articles
    ]
    return pd.DataFrame(rows, columns=SEGMENT_COLUMNS)


def dedup_frame(articles_file: str | Path) -> pd.DataFrame:
    """One row per distinct article dedup kept (the stage's Parquet files, tasks/stage.py),
    with the occurrence it was taken from.

    The body is checked for uniqueness only, so a long one is held as its opening (what
    the Data Docs show) and DuckDB's 64-bit hash of the whole: md5 took twice as long (1 GB:
    1.3 s more), and among a million articles the chance that two distinct bodies share a
    hash is under 1 in 10^7 (and they would need the same opening too). DuckDB reads the
    file's columns as a stream, and a run's articles, whatever their number, fit in memory."""
    import duckdb

    with duckdb.connect() as con:
        return con.execute(DEDUP_SQL, {"file": str(articles_file)}).df()


def load_frame(con: duckdb.DuckDBPyConnection, run_id: str) -> pd.DataFrame:
    """One row per article_occurrences row the run `run_id` staged, seen through `con`'s
    open transaction."""
    return con.execute(LOAD_SQL, {"run_id": run_id}).df()
