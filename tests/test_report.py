"""What the operator sees: Data Docs built from real gate results, readable offline, and the
run's artifacts as the Prefect API returns them."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import duckdb
import pytest

from tasks import report, validate
from test_validate import article, cleaned, deduped_file, extracted, segmented

SUITES = ["extract", "clean", "segment", "dedup", "load"]
RUN = "3f0e5a54-6d2b-4a8e-9c1e-2b8f1f0c7a11"


def gate_results() -> list[validate.GateResult]:
    """Two batches through the gates, the second with an authorless article, then dedup and load."""
    con = duckdb.connect()
    con.execute("CREATE TABLE articles (article_id VARCHAR)")
    con.execute("CREATE TABLE article_occurrences (article_id VARCHAR, source_file VARCHAR, ordinal INTEGER, run_id VARCHAR)")
    con.execute("INSERT INTO articles VALUES ('0123456789abcdef')")
    con.execute("INSERT INTO article_occurrences VALUES ('0123456789abcdef', 'a.txt', 1, 'run')")
    return [
        validate.validate_frame("extract", validate.extract_frame([extracted("a.txt", ["By Jane Roe", "Some text."])])),
        validate.validate_frame("clean", validate.clean_frame([cleaned("a.txt", ["Some text."])])),
        validate.validate_frame("segment", validate.segment_frame([segmented("a.txt", [article("a.txt")])])),
        validate.validate_frame("extract", validate.extract_frame([extracted("bad.txt", ["By nobody", "Text."])])),
        validate.validate_frame("clean", validate.clean_frame([cleaned("bad.txt", ["Text."])])),
        validate.validate_frame("segment", validate.segment_frame([segmented("bad.txt", [article("bad.txt", authors=[])])])),
        validate.validate_frame("dedup", validate.dedup_frame(deduped_file([article("a.txt", article_id="0123456789abcdef")]))),
        validate.validate_frame("load", validate.load_frame(con, "run")),
        validate.validate_frame("extract", validate.extract_frame([])),  # a batch that extracted nothing
    ]


@pytest.fixture(scope="module")
def results() -> list[validate.GateResult]:
    return gate_results()


@pytest.fixture(scope="module")
def docs(results, tmp_path_factory) -> Path:
    """The index of Data Docs built once for the module."""
    return report.build_data_docs(results, tmp_path_factory.mktemp("warehouse"), RUN)


class Resources(HTMLParser):
    """What a page links to: what it loads (stylesheets, scripts, images) and where it leads."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.anchors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag in ("link", "script", "img", "iframe", "embed", "source") and (attr.get("href") or attr.get("src")):
            self.loads.append(attr.get("href") or attr.get("src"))
        elif tag == "a" and attr.get("href"):
            self.anchors.append(attr["href"])


def resources(page: Path) -> Resources:
    parser = Resources()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def local_target(page: Path, url: str) -> Path:
    return (page.parent / unquote(urlsplit(url).path)).resolve()


def index_rows(index: Path) -> list[list[str]]:
    """The index's table rows as lists of cell texts."""
    text = index.read_text(encoding="utf-8")
    rows = re.findall(r"<tr>(.*?)</tr>", text, flags=re.S)
    return [[re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)] for row in rows]


# --- Data Docs -----------------------------------------------------------------------------------


def test_docs_go_to_the_warehouse_and_show_every_suite(docs: Path) -> None:
    assert docs.name == "index.html" and docs.parent.name == "data_docs" and docs.is_file()
    for suite in SUITES:
        page = docs.parent / "expectations" / f"{suite}.html"
        assert page.is_file()
        # The suite page gives each expectation's human reason.
        stored = json.loads((validate.SUITES_DIR / f"{suite}.json").read_text(encoding="utf-8"))
        text = page.read_text(encoding="utf-8")
        assert all(e["meta"]["reason"] in text for e in stored["expectations"])
    suite_links = [a for a in resources(docs).anchors if a.startswith("expectations/")]
    assert sorted(set(suite_links)) == sorted(f"expectations/{s}.html" for s in SUITES)


def test_index_lists_every_gate_of_the_run_with_its_page(docs: Path, results) -> None:
    rows = [row for row in index_rows(docs) if len(row) == 6]
    assert [row[:4] for row in rows if row[0] != "Suite"] == [
        ["extract", "extract", "batch-1", "passed"],
        ["clean", "clean", "batch-1", "passed"],
        ["segment", "segment", "batch-1", "passed"],
        ["extract", "extract", "batch-2", "passed"],
        ["clean", "clean", "batch-2", "passed"],
        ["segment", "segment", "batch-2", "failed"],
        ["dedup", "dedup", "batch-1", "passed"],
        ["load", "load", "batch-1", "passed"],
        ["extract", "extract", "batch-3", "skipped: nothing to check"],
    ]
    # The failed gate's row is followed by the dumps it blamed.
    assert ["", "bad.txt: a full article has no author"] in index_rows(docs)
    pages = [a for a in resources(docs).anchors if a.startswith("validations/")]
    assert len(pages) == 8  # one per gate that validated a frame
    assert all(f"/{RUN}/" in page for page in pages)
    assert all(local_target(docs, page).is_file() for page in pages)


def test_validation_page_shows_the_run_and_what_failed(docs: Path) -> None:
    [page] = (docs.parent / "validations" / "segment" / RUN).glob("*/batch-2.html")
    text = page.read_text(encoding="utf-8")
    assert RUN in text  # run name in the page's info
    assert "Failed" in text and "segment batch-2" in text
    assert "Unexpected Value" in text  # the sample of values GX shows for the failed expectation


def test_docs_load_nothing_from_off_machine(docs: Path) -> None:
    pages = sorted(docs.parent.rglob("*.html"))
    assert len(pages) == 1 + len(SUITES) + 8
    for page in pages:
        found = resources(page)
        for url in found.loads + found.anchors:
            if urlsplit(url).scheme in ("http", "https") or url.startswith("//"):
                # Links a reader may follow are fine; nothing the page needs to render may be remote.
                assert url not in found.loads, f"{page.name} loads {url}"
            elif not url.startswith("#"):
                assert local_target(page, url).exists(), f"{page.name} points at missing {url}"
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", text), f"{page.name} has a remote CSS url()"
        assert "Gleaner's stylesheet" in text  # the project stylesheet stands in for Bootstrap


def test_docs_keep_the_last_runs(tmp_path: Path, results, monkeypatch) -> None:
    monkeypatch.setattr(report, "KEEP_RUNS", 2)
    for run in ("run-1", "run-2", "run-1", "run-3"):  # run-1 twice: a rebuild replaces its pages
        index = report.build_data_docs(results[:3], tmp_path, run)
    docs = index.parent
    runs = json.loads((docs / report.MANIFEST).read_text(encoding="utf-8"))
    assert [r["run_id"] for r in runs] == ["run-3", "run-1"]
    assert sorted(p.name for p in (docs / "validations" / "segment").iterdir()) == ["run-1", "run-3"]
    assert len(list((docs / "validations" / "segment" / "run-1").iterdir())) == 1
    assert "run-2" not in index.read_text(encoding="utf-8")


def test_a_later_run_writes_its_own_pages_and_leaves_the_rest_of_the_site_as_it_was(tmp_path: Path,
                                                                                   results) -> None:
    docs = report.build_data_docs(results[:3], tmp_path, "run-1").parent
    before = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in docs.rglob("*") if p.is_file()}
    report.build_data_docs(results[:3], tmp_path, "run-2")
    after = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in docs.rglob("*") if p.is_file()}
    rewritten = {p.relative_to(docs).parts[0] for p in before if after.get(p) != before[p]}
    new = {p.relative_to(docs).parts[:2] for p in set(after) - set(before)}
    # GX puts a new random id in every suite page it renders: those few pages are written again
    assert rewritten <= {report.INDEX_PAGE, report.MANIFEST, "expectations"}  # static files untouched
    assert new and all(parts[0] == "validations" for parts in new)
    assert not any(tmp_path.glob(".*build"))


def test_run_id_must_be_a_plain_file_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="file name"):
        report.build_data_docs([], tmp_path, "../elsewhere")


# --- the run summary and the artifacts -------------------------------------------------------------


SUMMARY = {
    "run_id": RUN,
    "warehouse": "/data/warehouse",
    "dumps_found": 6,
    "dumps_loaded": 4,
    "dumps_skipped": 0,
    "quarantined": [("bad.txt", "segment: a full article has no author"), ("odd.bin", "extract: binary | not text")],
    "articles_new": 17,
    "articles_updated": 2,
    "occurrences": 21,
    "removed_by_category": {"navigation": 16, "newsletter_footer": 14},
    "checks_passed": 11,
    "checks_failed": 1,
    "checks_skipped": 2,
}


def test_summary_markdown_gives_the_run_at_a_glance() -> None:
    text = report.summary_markdown(SUMMARY)
    assert text.startswith(f"# Run {RUN}\n")
    for line in [
        "Warehouse: `/data/warehouse`",
        "| Dumps | 6 found, 4 loaded, 0 already loaded, 2 quarantined |",
        "| Articles | 17 new, 2 updated, 21 occurrences |",
        "| Removed lines | 30 |",
        "| Checks | 11 passed, 1 failed, 2 skipped (nothing to check) |",
        "## Quarantined dumps (2)",
        "| bad.txt | segment: a full article has no author |",
        "| odd.bin | extract: binary \\| not text |",  # a '|' in a reason stays in its cell
        "| navigation | 16 |",
        "| newsletter_footer | 14 |",
    ]:
        assert line in text.splitlines()


def test_summary_markdown_of_a_quiet_run() -> None:
    quiet = {**SUMMARY, "dumps_loaded": 0, "dumps_skipped": 6, "quarantined": [], "removed_by_category": {}}
    text = report.summary_markdown(quiet)
    assert "## Quarantined dumps (0)\n\nNone." in text
    assert "## Removed lines by category\n\nNone." in text


def test_artifacts_are_readable_from_the_prefect_api(prefect_server, docs: Path) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.runtime import flow_run

    dq_rows = [
        {"run_id": RUN, "step": "extract", "suite": "extract", "success": True, "evaluated": 5, "failed": 0,
         "details": "[]", "status": "passed", "rows_checked": 3},
        {"run_id": RUN, "step": "segment", "suite": "segment", "success": False, "evaluated": 11, "failed": 1,
         "details": "[{}]", "status": "failed", "rows_checked": 4},
    ]

    @flow
    def publish() -> str:
        report.publish_artifacts(SUMMARY, dq_rows, docs)
        return str(flow_run.id)

    run_id = publish()
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    by_key = {a.key: a for a in artifacts}
    assert sorted(by_key) == ["data-docs", "dq-results", "run-summary"]

    assert by_key["run-summary"].type == "markdown"
    assert by_key["run-summary"].data == report.summary_markdown(SUMMARY)

    assert by_key["dq-results"].type == "table"
    table = by_key["dq-results"].data
    assert (json.loads(table) if isinstance(table, str) else table) == [
        {"step": "extract", "suite": "extract", "status": "passed", "rows_checked": 3, "evaluated": 5, "failed": 0},
        {"step": "segment", "suite": "segment", "status": "failed", "rows_checked": 4, "evaluated": 11, "failed": 1},
    ]

    assert by_key["data-docs"].type == "markdown"  # Prefect stores a link as Markdown
    assert docs.resolve().as_uri() in by_key["data-docs"].data
    assert str(docs.resolve()) in by_key["data-docs"].description


def test_no_docs_no_link(prefect_server) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.runtime import flow_run

    @flow
    def publish() -> str:
        report.publish_artifacts(SUMMARY, [], None)
        return str(flow_run.id)

    run_id = publish()
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    assert sorted(a.key for a in artifacts) == ["dq-results", "run-summary"]
