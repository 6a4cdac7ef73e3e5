"""The ingest flow end to end, on a real Prefect test server and real DuckDB files."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import gleaner
import pytest

from conftest import REPO, SEEDS, run_ingest, task_runs_of
from tasks.export import export_query

TABLES = ("articles", "article_sections", "article_occurrences", "removed_text", "dumps", "dq_results")


@pytest.fixture(autouse=True)
def _server(prefect_server):
    yield


def counts(warehouse) -> dict[str, int]:
    with gleaner.connect(warehouse) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def task_states(flow_state) -> dict[str, str]:
    """Each task run of the flow run (by name, the three hex digits Prefect adds left out; a
    batch and its steps are named with the batch's number) and its state type."""
    return {re.sub(r"-[0-9a-f]{3}$", "", t.name): t.state_type.value
            for t in task_runs_of(flow_state.state_details.flow_run_id)}


def query(warehouse, sql):
    with gleaner.connect(warehouse) as con:
        return con.execute(sql).fetchall()


def test_seeds_load_incrementally_and_a_rerun_adds_nothing(seeds_subset, tmp_path):
    warehouse = tmp_path / "wh"
    raw = seeds_subset("000", "001", "002")
    state, summary = run_ingest(raw, warehouse)
    assert state.is_completed()
    assert (summary.dumps_loaded, summary.articles_new, summary.occurrences) == (3, 13, 14)
    assert counts(warehouse)["articles"] == 13 and counts(warehouse)["article_occurrences"] == 14

    seeds_subset("003")
    state, summary = run_ingest(raw, warehouse)
    assert state.is_completed()
    assert (summary.dumps_loaded, summary.dumps_skipped, summary.articles_new) == (1, 3, 1)
    after_003 = counts(warehouse)
    assert (after_003["articles"], after_003["article_occurrences"]) == (14, 18)

    state, summary = run_ingest(raw, warehouse)
    assert state.is_completed() and summary.dumps_loaded == 0 and summary.dumps_skipped == 4
    # with nothing new the dedup and load gates had no row to check: skipped, not passed
    assert (summary.checks_passed, summary.checks_failed, summary.checks_skipped) == (0, 0, 2)
    assert query(warehouse, f"SELECT step, status, rows_checked, success FROM dq_results "
                            f"WHERE run_id = '{summary.run_id}' ORDER BY step") == [
        ("dedup", "skipped", 0, True), ("load", "skipped", 0, True)]
    again = counts(warehouse)
    assert {t: again[t] for t in TABLES if t != "dq_results"} == {t: after_003[t] for t in TABLES if t != "dq_results"}

    # The article printed in 002 and 003 is one row, with 002's category.
    rows = query(warehouse, """
        SELECT a.category, list(o.source_file ORDER BY o.source_file)
        FROM articles a JOIN article_occurrences o USING (article_id)
        WHERE list_contains(a.authors, 'Aleksandar Ivanović') GROUP BY ALL""")
    assert rows == [("Analytical Articles", ["002_6e42fd3a90233009.txt", "003_35064c43d4260e56.txt"])]
    # Data Docs show every suite, offline
    docs = (warehouse / "data_docs" / "index.html").read_text(encoding="utf-8")
    assert all(suite in docs for suite in ("extract", "clean", "segment", "dedup", "load"))
    # Every table is in Parquet too, with the lake's rows: a file per run that inserted rows
    # (and one per run that deleted some: none here, no run rewrote an article).
    for table in TABLES:
        assert query(warehouse, f"SELECT count(*) FROM ({export_query(warehouse, table)})") == [(again[table],)]
    export = warehouse / "parquet"
    assert len(list(export.glob("*/articles.parquet"))) == 1 + 2  # the empty base, runs 1 and 2
    assert len(list(export.glob("*/articles-deleted.parquet"))) == 1
    assert len(list(export.glob("*/runs.parquet"))) == 1 + 3


def gates_prepared(raw, warehouse) -> bool:
    """Whether `gleaner run`'s preparation, run while Prefect's server starts, imported Great
    Expectations (in a process of its own: this one has it imported)."""
    code = ("import sys; from pathlib import Path; from gleaner.cli import prepare_gates; "
            f"prepare_gates(Path({str(raw)!r}), Path({str(warehouse)!r})); print('great_expectations' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          check=True)
    return {"True": True, "False": False}[done.stdout.strip()]


def test_great_expectations_is_imported_ahead_only_for_a_run_with_new_dumps(seeds_subset, tmp_path):
    warehouse, raw = tmp_path / "wh", seeds_subset("000")
    assert gates_prepared(raw, warehouse)  # no warehouse yet: everything is new
    run_ingest(raw, warehouse)
    assert not gates_prepared(raw, warehouse)  # a rerun validates nothing
    seeds_subset("001")
    assert gates_prepared(raw, warehouse)


def test_article_ids_do_not_depend_on_which_dumps_came_first(seeds_subset, tmp_path):
    all_at_once = tmp_path / "one"
    run_ingest(seeds_subset("000", "001", "002", "003", "004"), all_at_once)
    raw2 = tmp_path / "raw2"
    raw2.mkdir()
    one_by_one = tmp_path / "many"
    for seed in sorted(SEEDS.glob("*.txt"), reverse=True):
        shutil.copy(seed, raw2 / seed.name)
        run_ingest(raw2, one_by_one)
    ids = "SELECT source_file, ordinal, article_id FROM article_occurrences ORDER BY ALL"
    assert query(all_at_once, ids) == query(one_by_one, ids)
    fields = "SELECT article_id, kind, authors, published_on, title, category FROM articles ORDER BY ALL"
    assert query(all_at_once, fields) == query(one_by_one, fields)


def test_a_bad_dump_is_quarantined_and_the_rest_is_loaded(seeds_subset, tmp_path):
    raw = seeds_subset("004")
    (raw / "broken.txt").write_bytes(bytes(range(256)) * 16)
    (raw / "empty.txt").write_text("  \n\n")
    (raw / "notes.pdf").write_bytes(b"%PDF-1.4")
    warehouse = tmp_path / "wh"
    state, summary = run_ingest(raw, warehouse)
    assert state.is_failed()
    assert summary.dumps_loaded == 1 and summary.articles_new == 5
    status = dict((f, (s, r)) for f, s, r in query(warehouse, "SELECT source_file, status, reason FROM dumps"))
    assert status["004_b658330cd825a186.txt"] == ("loaded", None)
    assert status["broken.txt"][0] == "quarantined" and "binary" in status["broken.txt"][1]
    assert status["empty.txt"][0] == "quarantined" and status["empty.txt"][1].startswith("extract:")
    assert status["notes.pdf"][0] == "quarantined" and "unsupported file type" in status["notes.pdf"][1]
    assert sorted(f for f, _ in summary.quarantined) == ["broken.txt", "empty.txt", "notes.pdf"]
    # the batch that refused dumps is not green in the Prefect UI, nor are the steps that refused
    # them (each step of a batch is a task run nested in the batch's)
    assert task_states(state) == {"follow": "COMPLETED", "discover": "COMPLETED", "batch-1": "FAILED",
                                  "batch-1-extract": "FAILED", "batch-1-validate-extract": "FAILED",
                                  "batch-1-clean": "COMPLETED", "batch-1-validate-clean": "COMPLETED",
                                  "batch-1-segment": "COMPLETED", "batch-1-validate-segment": "COMPLETED",
                                  "batch-1-stage": "COMPLETED",
                                  "dedup-prepare": "COMPLETED", "dedup-0": "COMPLETED", "dedup-finish": "COMPLETED",
                                  "validate-dedup": "COMPLETED", "load": "COMPLETED",
                                  "report": "COMPLETED"}
    failed_suites = query(warehouse, "SELECT step FROM dq_results WHERE NOT success")
    assert failed_suites == [("extract",)]


def test_a_run_that_fails_while_loading_leaves_the_warehouse_as_it_was(seeds_subset, tmp_path, monkeypatch):
    import tasks.load

    raw = seeds_subset("000")
    warehouse = tmp_path / "wh"
    run_ingest(raw, warehouse)
    before = counts(warehouse)
    seeds_subset("001", "002")
    real_insert = tasks.load.insert_rows

    def insert_then_die(con, table, rows):
        real_insert(con, table, rows)
        if table == "dumps":  # written after the articles, occurrences and removals
            raise OSError("disk gone")

    monkeypatch.setattr(tasks.load, "insert_rows", insert_then_die)
    state, _ = run_ingest(raw, warehouse)
    assert state.is_failed()
    assert counts(warehouse) == before
    monkeypatch.setattr(tasks.load, "insert_rows", real_insert)
    state, summary = run_ingest(raw, warehouse)
    assert state.is_completed() and summary.dumps_loaded == 2
    assert counts(warehouse)["article_occurrences"] == 14


def test_the_command_line_reports_and_exits_non_zero_on_quarantine(seeds_subset, tmp_path):
    raw = seeds_subset("004")
    (raw / "broken.txt").write_bytes(b"\x00\x01\x02" * 100)
    gleaner = REPO / ".venv" / "bin" / "gleaner"
    command = [str(gleaner)] if gleaner.exists() else [sys.executable, "-m", "gleaner.cli"]
    done = subprocess.run(command + ["run", "--raw", str(raw), "--warehouse", str(tmp_path / "wh"), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and done.stdout.startswith("{"), done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["dumps_loaded"] == 1 and report["articles_new"] == 5
    assert [f for f, _ in report["quarantined"]] == ["broken.txt"]
    assert "quarantined broken.txt" in done.stderr


def test_the_command_line_refuses_a_missing_raw_folder(tmp_path):
    from gleaner.cli import main

    assert main(["run", "--raw", str(tmp_path / "nope"), "--warehouse", str(tmp_path / "wh")]) == 2


def test_a_load_refused_by_its_gate_keeps_nothing_and_quarantines_the_run(seeds_subset, tmp_path, monkeypatch):
    import tasks.validate

    raw = seeds_subset("000")
    warehouse = tmp_path / "wh"
    run_ingest(raw, warehouse)
    before = counts(warehouse)
    seeds_subset("004")
    real_frame = tasks.validate.load_frame

    def one_dangling_occurrence(con, run_id):
        frame = real_frame(con, run_id)
        frame.loc[frame["source_file"] == "004_b658330cd825a186.txt", "article_exists"] = False
        return frame

    monkeypatch.setattr(tasks.validate, "load_frame", one_dangling_occurrence)
    state, summary = run_ingest(raw, warehouse)
    assert state.is_failed()
    assert summary.dumps_loaded == 0 and summary.articles_new == 0
    after = counts(warehouse)
    assert {t: after[t] for t in ("articles", "article_occurrences", "removed_text")} == \
        {t: before[t] for t in ("articles", "article_occurrences", "removed_text")}
    [(status, reason)] = query(warehouse, "SELECT status, reason FROM dumps WHERE source_file LIKE '004%'")
    assert status == "quarantined" and reason.startswith("load: ")
    assert query(warehouse, "SELECT success FROM dq_results WHERE step = 'load' ORDER BY success") == [(False,), (True,)]
    assert task_states(state)["load"] == "FAILED"  # red in the UI, like a batch that refused dumps


def test_dumps_refused_by_the_dedup_gate_are_quarantined_and_the_rest_is_loaded(seeds_subset, tmp_path,
                                                                               monkeypatch):
    import tasks.validate

    raw = seeds_subset("000", "004")
    real_frame = tasks.validate.dedup_frame

    def an_id_out_of_shape(articles):
        frame = real_frame(articles)
        frame.loc[frame["source_file"].str.startswith("004"), "article_id"] = "not-an-id"
        return frame

    monkeypatch.setattr(tasks.validate, "dedup_frame", an_id_out_of_shape)
    state, summary = run_ingest(raw, tmp_path / "wh")
    assert state.is_failed()
    [(refused, reason)] = summary.quarantined
    assert refused.startswith("004") and reason.startswith("dedup: ")
    assert "an article id is not 16 lower-case hex digits" in reason
    assert summary.dumps_loaded == 1
    assert query(tmp_path / "wh", "SELECT DISTINCT source_file LIKE '004%' FROM article_occurrences") == [(False,)]
    assert task_states(state)["validate-dedup"] == "FAILED"


def test_the_command_line_refuses_a_broken_profile_before_starting(tmp_path):
    from gleaner.cli import main

    profile = tmp_path / "site.toml"
    profile.write_text("name = 'x'\n[[boilerplate]]\ncategory = 'adverts'\n")
    assert main(["run", "--raw", str(tmp_path), "--warehouse", str(tmp_path / "wh"), "--profile", str(profile)]) == 2
    assert not (tmp_path / "wh").exists()


def test_progress_lines_count_dumps_and_megabytes():
    from tasks.pipeline import Progress
    from tasks.models import Dump

    progress = Progress(total_dumps=3, total_bytes=3_000_000)
    line = progress.advance([Dump("a.txt", None, "", 1_000_000, "txt"), Dump("b.txt", None, "", 1_000_000, "txt")])
    assert line.startswith("progress: 2/3 dumps, 2.0/3.0 MB, ") and line.endswith(" MB/s")


def test_a_published_warehouse_has_the_analysts_views_and_search(seeds_subset, tmp_path):
    warehouse = tmp_path / "wh"
    state, _ = run_ingest(seeds_subset("000", "001"), warehouse)
    assert state.is_completed()
    with gleaner.connect(warehouse) as con:
        assert con.execute("SELECT articles FROM authors WHERE author = 'Syed Fazl-e-Haider'").fetchone() == (2,)
        found = con.execute("SELECT authors FROM search_articles('Caspian naval') LIMIT 1").fetchone()
        assert found == (["Syed Fazl-e-Haider"],)
        assert con.execute("SELECT count(*) FROM load_history").fetchone() == (1,)


def test_a_relative_warehouse_path_works_like_an_absolute_one(seeds_subset, tmp_path, monkeypatch):
    raw = seeds_subset("004")
    monkeypatch.chdir(tmp_path)
    state, summary = run_ingest(raw.relative_to(tmp_path), "wh")
    assert state.is_completed() and summary.articles_new == 5
    assert (tmp_path / "wh" / "data_docs" / "index.html").exists()


def test_a_warehouse_of_the_single_file_layout_is_migrated_into_the_lake(seeds_subset, tmp_path):
    """A warehouse made by the earlier Gleaner (one DuckDB file, gleaner.duckdb, without the
    columns and tables added since) becomes the lake's first snapshot; nothing is loaded twice."""
    from tasks import lake
    from tasks.load import LEGACY_DB_FILE, SCHEMA

    raw = seeds_subset("000", "001", "002")
    built = tmp_path / "built"
    state, _ = run_ingest(raw, built)
    assert state.is_completed()
    expected = counts(built)
    legacy_dir = tmp_path / "legacy"
    legacy_dir.mkdir()
    added_since = {"dumps": ["modified_ns"], "runs": ["kind", "rolled_back"], "dq_results": ["status", "rows_checked"]}
    with gleaner.connect(built) as con:
        con.execute(f"ATTACH '{legacy_dir / LEGACY_DB_FILE}' AS old")
        for table in SCHEMA:
            if table != "article_fingerprints":
                dropped = ", ".join(added_since.get(table, [])) or "_none_"
                con.execute(f"CREATE TABLE old.{table} AS SELECT * EXCLUDE ({dropped}) FROM "
                            f"(SELECT *, NULL AS _none_ FROM {table})")
        con.execute("DETACH old")

    seeds_subset("003")  # a new dump, and a reprint of 002's article
    state, summary = run_ingest(raw, legacy_dir)
    assert state.is_completed()
    assert (summary.dumps_loaded, summary.dumps_skipped, summary.articles_new) == (1, 3, 1)
    assert not (legacy_dir / LEGACY_DB_FILE).exists() and (legacy_dir / f"{LEGACY_DB_FILE}.migrated").exists()
    with gleaner.connect(legacy_dir) as con:
        kinds = [kind for _, kind, _ in lake.run_snapshots(con)]
        assert kinds == ["schema", "migration", "ingest"]
        assert con.execute("SELECT count(*) FROM article_fingerprints").fetchone()[0] == expected["articles"] + 1
        # the loaded dumps were hashed once and their rows took the files' times
        assert con.execute("SELECT count(*) FROM dumps WHERE modified_ns IS NULL").fetchone() == (0,)
        # the earlier warehouse's gates have a status too (told by BACKFILLS), like the new run's
        assert con.execute("SELECT status, count(*) FROM dq_results GROUP BY ALL ORDER BY ALL").fetchall() == \
            [("passed", 10)]
    migrated = counts(legacy_dir)
    assert migrated["articles"] == expected["articles"] + 1
    assert migrated["article_occurrences"] == expected["article_occurrences"] + 4
