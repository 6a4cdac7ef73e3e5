"""What the operator sees of a run: Great Expectations Data Docs in the warehouse, and
Prefect artifacts (run summary, checks, a link to the docs) in the Prefect UI.

The Data Docs are static HTML in WAREHOUSE/data_docs/: GX renders one page per expectation
suite (expectations/<suite>.html) and one per gate validated in a run
(validations/<suite>/<run_id>/<time>/batch-<n>.html); Gleaner writes index.html, which lists
the suites and the last KEEP_RUNS runs (kept in runs.json). Older runs' pages are deleted.
The GX templates load Bootstrap, jQuery, Font Awesome and the logo from CDNs; those tags are
stripped and gleaner/data_docs/ supplies a stylesheet, so the docs read the same from
file:// with no network.
"""
from __future__ import annotations

import html
import json
import os
import re
import shutil
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks import validate
from tasks.validate import GateResult, quiet_gx

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite, ExpectationSuiteValidationResult
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context import AbstractDataContext

DOCS_DIR = "data_docs"
MANIFEST = "runs.json"
INDEX_PAGE = "index.html"
#: Runs whose pages the docs keep; a gate's page is about 40 kB.
KEEP_RUNS = 30
SITE_NAME = "gleaner"
#: The gates in pipeline order, the order the index lists the suites in.
PIPELINE = ("extract", "clean", "segment", "dedup", "load")
#: GX's plugins directory: GX inlines custom_data_docs/styles/data_docs_custom_styles.css
#: into every page it renders.
PLUGINS_DIR = Path(__file__).resolve().parent.parent / "gleaner" / "data_docs"
STYLESHEET = PLUGINS_DIR / "custom_data_docs" / "styles" / "data_docs_custom_styles.css"

_REMOTE = r"(?:https?:)?//"
_REMOTE_TAG = re.compile(
    rf'<link\b[^>]*\bhref="{_REMOTE}[^"]*"[^>]*>|<script\b[^>]*\bsrc="{_REMOTE}[^"]*"[^>]*>\s*</script>'
)
# The GX logo, served from GX's asset bucket, is also among the static files GX copies.
_REMOTE_IMG = re.compile(rf'(<img\b[^>]*\bsrc="){_REMOTE}[^"?]*/([^"/?]+)(?:\?[^"]*)?"')
_REMOTE_CSS_URL = re.compile(rf"url\(\s*['\"]?{_REMOTE}[^)]*\)")
# GX counts one "../" too few for the favicon of a validation page.
_STATIC_REF = re.compile(r'((?:href|src)=")(?:\.\.?/)*static/')
_RUN_ID = re.compile(r"[A-Za-z0-9][\w.-]*")


class DocsError(RuntimeError):
    """GX did not render a page the docs need (GX logs the cause and carries on)."""


# --- Data Docs ---------------------------------------------------------------------------------


def docs_index(warehouse_dir: Path) -> Path | None:
    """The index of the warehouse's Data Docs; None before any run built them."""
    index = Path(warehouse_dir) / DOCS_DIR / INDEX_PAGE
    return index if index.is_file() else None


def build_data_docs(results: list[GateResult], warehouse_dir: Path, run_id: str) -> Path:
    """Render every suite and this run's gate results into WAREHOUSE/data_docs; the index.html.

    Gates of one step are numbered batch-1, batch-2, ... in the order of `results`."""
    if not _RUN_ID.fullmatch(run_id):  # it names a directory that may be deleted
        raise ValueError(f"run id {run_id!r} is not a plain file name")
    docs = Path(warehouse_dir) / DOCS_DIR
    # GX renders the whole site, static files and suite pages included, into a scratch folder;
    # only what differs is copied into the docs, so a run writes its own pages, not the site.
    scratch = Path(warehouse_dir) / f".{DOCS_DIR}-build"
    shutil.rmtree(scratch, ignore_errors=True)
    run_time = datetime.now(timezone.utc)
    _drop_pages(docs, run_id)  # a rebuild of the run replaces its pages
    try:
        context = _docs_context(scratch)
        checks = _add_validations(context, results, run_id, run_time)
        context.build_data_docs(site_names=[SITE_NAME], build_index=False)
        suites = sorted(context.suites.all(), key=_pipeline_order)
        pages = [f"expectations/{suite.name}.html" for suite in suites] + [c["page"] for c in checks if c["page"]]
        for page in pages:
            if not (scratch / page).is_file():
                raise DocsError(f"Great Expectations rendered no {page} (see its log)")
            _localise(scratch / page, scratch)
        _copy_changed(scratch, docs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    runs = _record_run(docs, {"run_id": run_id, "run_time": run_time.isoformat(timespec="seconds"), "checks": checks})
    index = docs / INDEX_PAGE
    _write_atomic(index, _index_html(runs, [(suite.name, len(suite.expectations)) for suite in suites]))
    return index


def _docs_context(docs: Path) -> AbstractDataContext:
    """An ephemeral context with a filesystem docs site in `docs` and every gate's suite."""
    import great_expectations as gx

    quiet_gx()
    context = gx.get_context(mode="ephemeral")
    context.variables.plugins_directory = str(PLUGINS_DIR)
    context.add_data_docs_site(
        SITE_NAME,
        {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs)},
        },
    )
    for path in sorted(validate.SUITES_DIR.glob("*.json")):
        # A copy: load_suite's object is shared by the gates, and adding it binds it to this context.
        suite = gx.ExpectationSuite(**validate.load_suite(path.stem).to_json_dict())
        for expectation in suite.expectations:
            expectation.notes = expectation.meta["reason"]  # the suite page shows why each check exists
        context.suites.add(suite)
    return context


def _add_validations(context: AbstractDataContext, results: list[GateResult], run_id: str,
                     run_time: datetime) -> list[dict[str, Any]]:
    """Store each gate's validation result for the docs; one index entry per gate."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    run = RunIdentifier(run_name=run_id, run_time=run_time)
    batches: Counter[str] = Counter()
    checks = []
    for gate in results:
        batches[gate.step] += 1
        batch = f"batch-{batches[gate.step]}"
        page = None
        if gate.validation is not None:  # None: an empty frame, nothing was checked
            key = ValidationResultIdentifier(ExpectationSuiteIdentifier(gate.suite), run, batch)
            context.validation_results_store.set(key, _docs_result(gate, run, batch))
            page = "/".join(["validations", *key.to_tuple()]) + ".html"
        checks.append({"step": gate.step, "suite": gate.suite, "batch": batch, "success": gate.success,
                       "evaluated": gate.evaluated, "failed": gate.failed, "failures": gate.failures, "page": page})
    return checks


def _docs_result(gate: GateResult, run: RunIdentifier, batch: str) -> ExpectationSuiteValidationResult:
    """The gate's validation result, with the run and batch its page shows."""
    from great_expectations.core.expectation_validation_result import expectationSuiteValidationResultSchema

    # A new meta: the gate's own dict stays as validated.
    meta = {**gate.validation["meta"], "run_id": run.to_json_dict(),
            "batch_spec": {"data_asset_name": f"{gate.step} {batch}"}}
    return expectationSuiteValidationResultSchema.load({**gate.validation, "meta": meta})


def _pipeline_order(suite: ExpectationSuite) -> tuple[int, str]:
    return (PIPELINE.index(suite.name) if suite.name in PIPELINE else len(PIPELINE), suite.name)


def _localise(page: Path, docs: Path) -> None:
    """Drop the page's CDN stylesheets and scripts; point images and icons at the site's static files."""
    root = Path(os.path.relpath(docs, page.parent)).as_posix()
    text = page.read_text(encoding="utf-8")
    text = _REMOTE_TAG.sub("", text)
    text = _REMOTE_IMG.sub(lambda m: f'{m[1]}{root}/static/images/{m[2]}"', text)
    text = _REMOTE_CSS_URL.sub("none", text)
    text = _STATIC_REF.sub(lambda m: f"{m[1]}{root}/static/", text)
    page.write_text(text, encoding="utf-8")


def _copy_changed(source: Path, target: Path) -> None:
    """Every file of source into target, where it is missing or its content differs."""
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        destination = target / path.relative_to(source)
        data = path.read_bytes()
        if destination.is_file() and destination.read_bytes() == data:
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(f".{destination.name}.partial")
        partial.write_bytes(data)
        os.replace(partial, destination)


def _drop_pages(docs: Path, run_id: str) -> None:
    for suite_dir in docs.glob("validations/*"):
        if (suite_dir / run_id).is_dir():
            shutil.rmtree(suite_dir / run_id)


def _record_run(docs: Path, run: dict[str, Any]) -> list[dict[str, Any]]:
    """Put the run first in runs.json; forget (and delete the pages of) runs beyond KEEP_RUNS."""
    manifest = docs / MANIFEST
    runs = json.loads(manifest.read_text(encoding="utf-8")) if manifest.exists() else []
    runs = [run] + [r for r in runs if r["run_id"] != run["run_id"]]
    for old in runs[KEEP_RUNS:]:
        _drop_pages(docs, old["run_id"])
    runs = runs[:KEEP_RUNS]
    _write_atomic(manifest, json.dumps(runs, indent=1))
    return runs


def _index_html(runs: list[dict[str, Any]], suites: list[tuple[str, int]]) -> str:
    esc = html.escape
    suite_rows = "".join(
        f'<tr><td><a href="expectations/{esc(name)}.html">{esc(name)}</a></td><td>{count}</td></tr>'
        for name, count in suites
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Gleaner Data Docs</title>',
        f"<style>{STYLESHEET.read_text(encoding='utf-8')}</style></head>",
        '<body><div class="gleaner-index">',
        "<h1>Gleaner data quality</h1>",
        f'<p class="lead">The Great Expectations gates of the last {len(runs)} run(s), newest first '
        f"(at most {KEEP_RUNS} are kept). Open a status for the validation, a suite for its expectations.</p>",
        "<h2>Expectation suites</h2>",
        '<table class="table table-bordered table-sm"><thead><tr><th>Suite</th><th>Expectations</th></tr>'
        f"</thead><tbody>{suite_rows}</tbody></table>",
        "<h2>Runs</h2>",
    ]
    for run in runs:
        checks = run["checks"]
        failed = sum(not c["success"] for c in checks)
        parts.append(
            f"<h3>Run {esc(run['run_id'])}</h3><p>{esc(run['run_time'])} · {len(checks)} gate(s), "
            + (f'<span class="failed">{failed} failed</span>' if failed else '<span class="passed">all passed</span>')
            + "</p>"
        )
        rows = "".join(_check_row(check) for check in checks) or '<tr><td colspan="6">no gate ran</td></tr>'
        parts.append(
            '<table class="table table-bordered table-sm"><thead><tr><th>Step</th><th>Suite</th><th>Batch</th>'
            "<th>Status</th><th>Expectations evaluated</th><th>Failed</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    parts.append("</div></body></html>")
    return "\n".join(parts)


def _check_row(check: dict[str, Any]) -> str:
    esc = html.escape
    if check["page"] is None:
        status = "skipped: nothing to check"
    else:
        label = '<span class="passed">passed</span>' if check["success"] else '<span class="failed">failed</span>'
        status = f'<a href="{esc(check["page"])}">{label}</a>'
    row = (
        f"<tr><td>{esc(check['step'])}</td><td><a href=\"expectations/{esc(check['suite'])}.html\">"
        f"{esc(check['suite'])}</a></td><td>{esc(check['batch'])}</td><td>{status}</td>"
        f"<td>{check['evaluated']}</td><td>{check['failed']}</td></tr>"
    )
    if check["failures"]:  # which dumps the gate blamed, and why
        blamed = "<br>".join(f"{esc(dump)}: {esc('; '.join(reasons))}" for dump, reasons in check["failures"].items())
        row += f'<tr><td></td><td colspan="5" class="failed">{blamed}</td></tr>'
    return row


def _write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file, so a reader never sees half a page."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# --- Prefect artifacts ---------------------------------------------------------------------------


def summary_markdown(summary: dict[str, Any]) -> str:
    """The run summary (tasks.pipeline.RunSummary.as_dict()) as Markdown for the Prefect UI."""
    quarantined = summary["quarantined"]
    removed = summary["removed_by_category"]
    lines = [
        f"# Run {summary['run_id']}",
        "",
        f"Warehouse: `{summary['warehouse']}`",
        "",
        "| | |",
        "|---|---|",
        f"| Dumps | {summary['dumps_found']} found, {summary['dumps_loaded']} loaded, "
        f"{summary['dumps_skipped']} already loaded, {len(quarantined)} quarantined |",
        f"| Articles | {summary['articles_new']} new, {summary['articles_updated']} updated, "
        f"{summary['occurrences']} occurrences |",
        f"| Removed lines | {sum(removed.values())} |",
        f"| Checks | {summary['checks_passed']} passed, {summary['checks_failed']} failed, "
        f"{summary['checks_skipped']} skipped (nothing to check) |",
        "",
        f"## Quarantined dumps ({len(quarantined)})",
        "",
    ]
    if quarantined:
        lines += ["| Dump | Reason |", "|---|---|"]
        lines += [f"| {_cell(source_file)} | {_cell(reason)} |" for source_file, reason in quarantined]
    else:
        lines.append("None.")
    lines += ["", "## Removed lines by category", ""]
    if removed:
        lines += ["| Category | Lines |", "|---|---:|"]
        lines += [f"| {_cell(category)} | {count} |" for category, count in removed.items()]
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def publish_artifacts(summary: dict[str, Any], dq_rows: list[dict[str, Any]], docs_index: Path | None) -> None:
    """The run's artifacts for the Prefect UI: run-summary (Markdown), dq-results (one row per
    suite validated) and, when the docs were built, data-docs (a link to their index)."""
    # Imported here: the docs and the summary text need no Prefect.
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

    create_markdown_artifact(key="run-summary", markdown=summary_markdown(summary),
                             description=f"Gleaner run {summary['run_id']}")
    create_table_artifact(
        key="dq-results",
        table=[{name: row[name] for name in ("step", "suite", "status", "rows_checked", "evaluated", "failed")} for row in dq_rows],
        description="Great Expectations suites validated in the run",
    )
    if docs_index is not None:
        # Browsers do not follow file:// links from a web page, so the path is spelled out too.
        create_link_artifact(key="data-docs", link=docs_index.resolve().as_uri(), link_text="Data Docs",
                             description=f"Great Expectations Data Docs: open {docs_index.resolve()} in a browser")
