"""The Great Expectations gates: each stops what it exists to stop, blames the right dump,
and lets good input through."""
from __future__ import annotations

import dataclasses
import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks import validate
from tasks.models import (
    REMOVED_CATEGORIES,
    Article,
    CleanedDump,
    Dump,
    ExtractedDump,
    Line,
    Removal,
    SegmentedDump,
)

STEPS = ["extract", "clean", "segment", "dedup", "load"]

BODY = (
    "On March 31, 2025, the Prosecutor General's Office submitted a proposal to the Supreme Court.\n"
    "BACKGROUND: Russia's complex relationship with the Taliban dates back to the 1990s."
)


def make_dump(source_file: str) -> Dump:
    return Dump(source_file=source_file, path=Path(source_file), sha256="0" * 64, bytes=100, format="txt")


def extracted(source_file: str, lines: list[str], encoding: str = "utf-8", replacement_chars: int = 0) -> ExtractedDump:
    return ExtractedDump(make_dump(source_file), lines, encoding, replacement_chars)


def cleaned(source_file: str, texts: list[str], removed: list[Removal] | None = None) -> CleanedDump:
    lines = [Line(no, text) for no, text in enumerate(texts, start=1)]
    return CleanedDump(make_dump(source_file), lines, removed or [], "utf-8")


def article(
    source_file: str,
    ordinal: int = 1,
    *,
    kind: str = "full",
    authors: list[str] | None = None,
    lede: str = "Moscow has moved closer to the Taliban.",
    body: str = BODY,
    word_count: int | None = None,
    article_id: str | None = None,
) -> Article:
    return Article(
        source_file=source_file,
        ordinal=ordinal,
        kind=kind,
        authors=["Aigerim Turgunbaeva", "Fayazuddin Ghiasi"] if authors is None else authors,
        published_on=None,
        title="Russia and the Taliban",
        category="Analytical Articles",
        lede=lede,
        body=body,
        sections=[],
        bio="Aigerim Turgunbaeva is a journalist.",
        word_count=len(body.split()) if word_count is None else word_count,
        article_id=article_id,
    )


def segmented(source_file: str, articles: list[Article]) -> SegmentedDump:
    return SegmentedDump(make_dump(source_file), articles, [], "utf-8")

def deduped_file(articles: list[Article]) -> Path:
    """The articles as the stage's articles.parquet holds them (the columns the dedup gate reads)."""
    path = Path(tempfile.mkdtemp(prefix="gleaner-test-")) / "articles.parquet"
    rows = [{"source_file": a.source_file, "ordinal": a.ordinal, "article_id": a.article_id, "kind": a.kind,
             "title": a.title, "body": a.body} for a in articles]
    schema = pa.schema([("source_file", pa.string()), ("ordinal", pa.int32()), ("article_id", pa.string()),
                        ("kind", pa.string()), ("title", pa.string()), ("body", pa.string())])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path



# --- suites --------------------------------------------------------------------------------


@pytest.mark.parametrize("step", STEPS)
def test_stored_suite_is_exactly_what_gx_reads(step: str) -> None:
    stored = json.loads((validate.SUITES_DIR / f"{step}.json").read_text(encoding="utf-8"))
    suite = validate.load_suite(step)
    assert suite.name == step
    # Round trip: GX dropped, renamed or normalised nothing, so the file is what runs.
    assert suite.to_json_dict() == stored
    assert all(e["meta"]["reason"] for e in stored["expectations"])


def test_suite_with_an_unknown_expectation_type_is_refused(tmp_path: Path, monkeypatch) -> None:
    # GX itself only logs such an expectation and drops it from the suite.
    broken = {
        "name": "broken",
        "expectations": [
            {"type": "expect_column_values_to_not_be_nul", "kwargs": {"column": "source_file"}, "meta": {"reason": "typo"}},
        ],
    }
    (tmp_path / "broken.json").write_text(json.dumps(broken), encoding="utf-8")
    monkeypatch.setattr(validate, "SUITES_DIR", tmp_path)
    with pytest.raises(validate.GateError, match="refused"):
        validate.load_suite("broken")


def test_suite_without_reasons_is_refused(tmp_path: Path, monkeypatch) -> None:
    unexplained = {
        "name": "unexplained",
        "expectations": [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "source_file"}, "meta": {}},
        ],
    }
    (tmp_path / "unexplained.json").write_text(json.dumps(unexplained), encoding="utf-8")
    monkeypatch.setattr(validate, "SUITES_DIR", tmp_path)
    with pytest.raises(validate.GateError, match="reason"):
        validate.load_suite("unexplained")


@pytest.mark.parametrize(
    ("step", "frame"),
    [
        ("extract", validate.extract_frame([])),
        ("clean", validate.clean_frame([])),
        ("segment", validate.segment_frame([])),
        ("dedup", validate.dedup_frame(deduped_file([]))),
    ],
)
def test_empty_batch_is_skipped(step: str, frame) -> None:
    result = validate.validate_frame(step, frame)
    assert (result.success, result.evaluated, result.failed, result.failures) == (True, 0, 0, {})
    assert (result.status, result.rows) == ("skipped", 0)
    assert validate.outcome_line(result) == f"validate {step}: skipped (no row to check)"


def test_a_gate_counts_the_rows_it_checked() -> None:
    frame = validate.dedup_frame(deduped_file([article("a.txt", article_id="0123456789abcdef"),
                                               article("b.txt", article_id="fedcba9876543210", body=BODY + " And more.")]))
    result = validate.validate_frame("dedup", frame)
    assert (result.status, result.rows) == ("passed", 2)
    assert validate.outcome_line(result) == "validate dedup: passed (0 of 4 expectations failed, 2 rows checked)"


def test_frame_missing_a_column_is_a_bug_not_bad_data() -> None:
    frame = validate.dedup_frame(deduped_file([article("a.txt", article_id="0123456789abcdef")])).drop(columns="kind")
    with pytest.raises(validate.GateError, match="could not run"):
        validate.validate_frame("dedup", frame)


def test_concurrent_gates_do_not_see_each_others_frames() -> None:
    # Prefect runs tasks in threads; GX's pandas datasource shares one engine between batches.
    good = validate.segment_frame([segmented(f"good{i}.txt", [article(f"good{i}.txt")]) for i in range(20)])
    bad = validate.segment_frame([segmented(f"bad{i}.txt", [article(f"bad{i}.txt", authors=[])]) for i in range(20)])
    expected_bad = {f"bad{i}.txt": ["a full article has no author"] for i in range(20)}

    def failures(run: int) -> dict[str, list[str]]:
        return validate.validate_frame("segment", good if run % 2 else bad).failures

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(failures, range(12)))
    assert results == [{} if run % 2 else expected_bad for run in range(12)]


def test_the_gates_keep_no_validation_results_in_the_gx_context() -> None:
    # GX stores every result a validation definition makes; a worker validates batch after
    # batch, and a failed gate's result lists every failing row.
    good = validate.segment_frame([segmented("good.txt", [article("good.txt")])])
    bad = validate.segment_frame([segmented("bad.txt", [article("bad.txt", authors=[])])])
    for frame in (good, bad, good, bad):
        validate.validate_frame("segment", frame)
    assert validate._gate_context().validation_results_store.list_keys() == []


# --- extract ----------------------------------------------------------------------------------


def test_extract_frame_measures_each_dump() -> None:
    frame = validate.extract_frame([extracted("a.txt", ["Hello", "", "world"], replacement_chars=1)])
    assert frame.to_dict("records") == [
        {
            "source_file": "a.txt",
            "encoding": "utf-8",
            "n_lines": 3,
            "n_chars": 10,
            "nonblank_lines": 2,
            "replacement_ratio": 0.1,
        }
    ]


def test_extract_gate_passes_decoded_dumps() -> None:
    dumps = [
        extracted("a.txt", ["By Jane Roe", "Some text."]),
        extracted("b.html", ["Caf\u00e9 society"], encoding="cp1252"),
    ]
    result = validate.validate_frame("extract", validate.extract_frame(dumps))
    assert result.success
    assert (result.step, result.suite, result.evaluated, result.failed) == ("extract", "extract", 5, 0)
    assert result.failures == {}
    assert json.loads(result.details) == []


def test_extract_gate_blames_empty_blank_and_undecodable_dumps() -> None:
    dumps = [
        extracted("good.txt", ["Some text."] * 3),
        extracted("empty.txt", []),
        extracted("blank.txt", ["", "   ", "\t"]),
        extracted("garbled.txt", ["\ufffd\ufffd\ufffdabc" * 10], replacement_chars=30),
        extracted("sjis.txt", ["text"], encoding="shift_jis"),
    ]
    result = validate.validate_frame("extract", validate.extract_frame(dumps))
    assert not result.success
    assert result.failures == {
        "empty.txt": ["the dump is empty", "the dump holds only blank lines"],
        "blank.txt": ["the dump holds only blank lines"],
        "garbled.txt": ["more than 1% of the dump could not be decoded"],
        "sjis.txt": ["the dump was decoded with an encoding that a Western European publication does not use (a misdetection?)"],
    }
    assert result.failed == 4


def test_extract_gate_blames_a_dump_extracted_twice() -> None:
    dumps = [extracted("a.txt", ["text"]), extracted("a.txt", ["text"]), extracted("b.txt", ["text"])]
    result = validate.validate_frame("extract", validate.extract_frame(dumps))
    assert result.failures == {"a.txt": ["the same dump was extracted twice in one batch"]}


# --- clean ------------------------------------------------------------------------------------


GOOD_TEXT = [
    "On March 31, 2025, the Prosecutor General's Office submitted a proposal.",
    "The ministry's newsletter announced the change in May.",
    "Credits to small businesses rose by 12 percent: a record.",
    "Photo opportunities were staged at the border.",
]


def test_clean_gate_passes_text_and_known_removals() -> None:
    removed = [
        Removal("a.txt", 5, category, "Newsletter") for category in REMOVED_CATEGORIES
    ]
    dump = cleaned("a.txt", GOOD_TEXT, removed)
    # Category/title lines are kept for the segmenter on purpose; the gate must not flag them.
    dump.lines.append(Line(6, "Published in Analytical Articles", role="category"))
    result = validate.validate_frame("clean", validate.clean_frame([dump]))
    assert result.success, result.details
    assert result.evaluated == 9


@pytest.mark.parametrize(
    ("boilerplate", "reason"),
    [
        ("Email: This email address is being protected from spambots. You need JavaScript enabled to view it.",
         "the e-mail cloaking notice was left in the text"),
        ("Reach her at This e-mail address is being protected from spambots.",
         "the e-mail cloaking notice was left in the text"),
        ("Sign up for upcoming events, latest news, and articles from the CACI Analyst.",
         "the newsletter footer was left in the text"),
        ("The Central Asia-Caucasus Analyst is a biweekly publication of the Central Asia-Caucasus Institute & "
         "Silk Road Studies Program.", "the newsletter footer was left in the text"),
        ("Newsletter", "the newsletter footer was left in the text"),
        ("Tashkent hosted the talks. ![](images/2025/map.jpg)", "an image or its caption was left in the text"),
        ("Credit: Wikimedia Commons", "an image or its caption was left in the text"),
        ("Photo: Reuters", "an image or its caption was left in the text"),
        ("Published in Analytical Articles", "a 'Published in' category line was left in the text"),
        ("Feature Articles", "site navigation was left in the text"),
        ("   ", "a blank line was kept as text"),
        # white space beyond ASCII, as Python's \s matches it (the suite spells it out for RE2)
        ("\u00a0\u2003\u3000", "a blank line was kept as text"),
        ("\u3000Newsletter\u00a0", "the newsletter footer was left in the text"),
        ("Photo\u2009Credit:\u202fReuters", "an image or its caption was left in the text"),
        ("\u2028Published in Analytical Articles", "a 'Published in' category line was left in the text"),
    ],
)
def test_clean_gate_blames_boilerplate_left_in_kept_text(boilerplate: str, reason: str) -> None:
    dumps = [cleaned("good.txt", GOOD_TEXT), cleaned("bad.txt", [*GOOD_TEXT, boilerplate])]
    result = validate.validate_frame("clean", validate.clean_frame(dumps))
    assert not result.success
    assert result.failures == {"bad.txt": [reason]}
    [detail] = json.loads(result.details)
    assert detail["column"] == "kept_text"
    assert detail["unexpected_count"] == 1
    assert detail["unexpected_values"] == [boilerplate]


def test_clean_gate_blames_unknown_removal_category_and_bad_line_numbers() -> None:
    dumps = [
        cleaned("good.txt", GOOD_TEXT, [Removal("good.txt", 9, "navigation", "|")]),
        cleaned("ads.txt", GOOD_TEXT, [Removal("ads.txt", 9, "advertising", "Buy now")]),
        cleaned("zero.txt", GOOD_TEXT, [Removal("zero.txt", 0, "navigation", "|")]),
    ]
    result = validate.validate_frame("clean", validate.clean_frame(dumps))
    assert result.failures == {
        "ads.txt": ["a removal has a category the warehouse does not know"],
        "zero.txt": ["a line number points before the start of the dump"],
    }


# --- segment ----------------------------------------------------------------------------------


def test_segment_frame_counts_body_words_and_joins_authors() -> None:
    [row] = validate.segment_frame([segmented("a.txt", [article("a.txt", word_count=7)])]).to_dict("records")
    assert row["authors"] == "Aigerim Turgunbaeva; Fayazuddin Ghiasi"
    assert (row["n_authors"], row["word_count"], row["body_words"]) == (2, 7, len(BODY.split()))


def test_segment_gate_passes_full_articles_and_authorless_teasers() -> None:
    dumps = [
        segmented("a.txt", [article("a.txt", 1), article("a.txt", 2, kind="teaser", authors=[], body="")]),
        # Same ordinal in another dump is fine; a sentence opening 'By March, ...' is no byline.
        segmented("b.txt", [article("b.txt", 1, body="By March, the ministry had announced its plan to expand the corridor.")]),
    ]
    result = validate.validate_frame("segment", validate.segment_frame(dumps))
    assert result.success, result.details
    assert (result.evaluated, result.failed) == (11, 0)


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        (article("bad.txt", authors=[]), "a full article has no author"),
        (article("bad.txt", word_count=3), "word_count does not match the body"),
        (article("bad.txt", body="", word_count=0), "a full article has no body text"),
        (article("bad.txt", kind="listing"), "an article is neither full nor a teaser"),
        (article("bad.txt", ordinal=0), "an article ordinal is below 1"),
        (article("bad.txt", body="By Jane Roe\n" + BODY), "the body starts with a byline"),
        (article("bad.txt", lede="By Jane Roe and John Doe"), "the lede starts with a byline"),
        (article("bad.txt", body=BODY + "\nAUTHOR’S BIO: Jane Roe is a researcher."), "an author bio was left in the body"),
        (article("bad.txt", body=BODY + "\nAUTHORS' BIOS: Jane Roe and John Doe."), "an author bio was left in the body"),
        (article("bad.txt", lede="AUTHOR'S BIO: Jane Roe is a researcher."), "an author bio was left in the lede"),
        (article("bad.txt", authors=["By Jane Roe"]), "an author name holds digits or a 'By' prefix"),
        (article("bad.txt", authors=["Jane Roe", "June 15, 2023"]), "an author name holds digits or a 'By' prefix"),
        # white space beyond ASCII after the prefix, as Python's \s matches it (spelled out for RE2)
        (article("bad.txt", authors=["Jane Roe", "by\u2009John Doe"]), "an author name holds digits or a 'By' prefix"),
    ],
)
def test_segment_gate_blames_the_broken_article_dump(broken: Article, reason: str) -> None:
    dumps = [segmented("good.txt", [article("good.txt")]), segmented("bad.txt", [broken])]
    result = validate.validate_frame("segment", validate.segment_frame(dumps))
    assert not result.success
    assert result.failures == {"bad.txt": [reason]}
    assert result.failed == 1


def test_segment_gate_blames_two_articles_with_one_ordinal() -> None:
    dumps = [
        segmented("good.txt", [article("good.txt", 1), article("good.txt", 2)]),
        segmented("bad.txt", [article("bad.txt", 1), article("bad.txt", 1)]),
    ]
    result = validate.validate_frame("segment", validate.segment_frame(dumps))
    assert result.failures == {"bad.txt": ["two articles of a dump share an ordinal"]}
    [detail] = json.loads(result.details)
    assert detail["column"] == ["source_file", "ordinal"]
    assert detail["unexpected_count"] == 2


# --- dedup ------------------------------------------------------------------------------------


def test_dedup_gate_passes_distinct_ids() -> None:
    articles = [
        article("a.txt", 1, article_id="0123456789abcdef"),
        article("a.txt", 2, article_id="fedcba9876543210", body="Another text entirely."),
        # Teasers may repeat text (here: none) without being a missed duplicate.
        article("b.txt", 1, kind="teaser", authors=[], body="", article_id="00000000000000aa"),
        article("b.txt", 2, kind="teaser", authors=[], body="", article_id="00000000000000bb"),
    ]
    result = validate.validate_frame("dedup", validate.dedup_frame(deduped_file(articles)))
    assert result.success, result.details
    assert result.evaluated == 4


def test_dedup_gate_blames_both_dumps_of_a_duplicate_id() -> None:
    articles = [
        article("a.txt", 1, article_id="0123456789abcdef"),
        article("b.txt", 3, article_id="0123456789abcdef", body="A different article."),
        article("c.txt", 1, article_id="1111111111111111", body="Unrelated."),
    ]
    result = validate.validate_frame("dedup", validate.dedup_frame(deduped_file(articles)))
    assert result.failures == {
        "a.txt": ["two distinct articles share an id"],
        "b.txt": ["two distinct articles share an id"],
    }


def test_dedup_gate_blames_missing_and_malformed_ids_and_missed_duplicates() -> None:
    articles = [
        article("none.txt", article_id=None, body="Text one."),
        article("upper.txt", article_id="0123456789ABCDEF", body="Text two."),
        article("short.txt", article_id="0123", body="Text three."),
        article("twin1.txt", article_id="aaaaaaaaaaaaaaaa", body="Same full text."),
        article("twin2.txt", article_id="bbbbbbbbbbbbbbbb", body="Same full text."),
    ]
    result = validate.validate_frame("dedup", validate.dedup_frame(deduped_file(articles)))
    assert result.failures == {
        "none.txt": ["an article has no id"],
        "upper.txt": ["an article id is not 16 lower-case hex digits"],
        "short.txt": ["an article id is not 16 lower-case hex digits"],
        "twin1.txt": ["the same full text got two ids: a duplicate was missed"],
        "twin2.txt": ["the same full text got two ids: a duplicate was missed"],
    }
    # details is strict JSON (a missing id is null, not NaN) so it can go into dq_results.
    details = json.loads(result.details, parse_constant=lambda name: pytest.fail(f"non-JSON {name}"))
    assert {d["reason"]: d["unexpected_values"] for d in details}["an article has no id"] == [None]


# --- load -------------------------------------------------------------------------------------


@pytest.fixture
def staged() -> duckdb.DuckDBPyConnection:
    """A warehouse with the contract's tables (only the columns the gate reads) and a good load
    staged in an open transaction."""
    con = duckdb.connect()
    con.execute("CREATE TABLE articles (article_id VARCHAR, kind VARCHAR, word_count INTEGER)")
    con.execute(
        "CREATE TABLE article_occurrences (article_id VARCHAR, source_file VARCHAR, ordinal INTEGER, source_sha256 VARCHAR,"
        " run_id VARCHAR DEFAULT 'this run')"
    )
    con.execute("BEGIN TRANSACTION")
    con.execute("INSERT INTO articles VALUES ('0123456789abcdef', 'full', 10), ('fedcba9876543210', 'teaser', 0)")
    con.execute(
        """INSERT INTO article_occurrences (article_id, source_file, ordinal, source_sha256) VALUES
           ('0123456789abcdef', 'a.txt', 1, 'aa'),
           ('fedcba9876543210', 'a.txt', 2, 'aa'),
           ('0123456789abcdef', 'b.txt', 1, 'bb')"""
    )
    yield con
    con.close()


def test_load_frame_reads_the_staged_transaction(staged: duckdb.DuckDBPyConnection) -> None:
    frame = validate.load_frame(staged, "this run")
    assert frame.to_dict("records") == [
        {"source_file": "a.txt", "ordinal": 1, "article_id": "0123456789abcdef", "article_exists": True, "article_rows": 1, "dup_count": 1},
        {"source_file": "a.txt", "ordinal": 2, "article_id": "fedcba9876543210", "article_exists": True, "article_rows": 1, "dup_count": 1},
        {"source_file": "b.txt", "ordinal": 1, "article_id": "0123456789abcdef", "article_exists": True, "article_rows": 1, "dup_count": 1},
    ]
    result = validate.validate_frame("load", frame)
    assert result.success, result.details
    assert (result.evaluated, result.failed) == (3, 0)


def test_load_gate_blames_an_occurrence_of_a_missing_article(staged: duckdb.DuckDBPyConnection) -> None:
    staged.execute("INSERT INTO article_occurrences (article_id, source_file, ordinal, source_sha256) VALUES ('9999999999999999', 'c.txt', 1, 'cc')")
    result = validate.validate_frame("load", validate.load_frame(staged, "this run"))
    assert not result.success
    assert result.failures == {"c.txt": ["an occurrence points at an article missing from the warehouse"]}


def test_load_gate_blames_an_occurrence_stored_twice(staged: duckdb.DuckDBPyConnection) -> None:
    staged.execute("INSERT INTO article_occurrences (article_id, source_file, ordinal, source_sha256) VALUES ('fedcba9876543210', 'b.txt', 1, 'bb')")
    result = validate.validate_frame("load", validate.load_frame(staged, "this run"))
    assert result.failures == {"b.txt": ["an article occurrence is stored more than once"]}


def test_load_gate_blames_an_article_stored_twice(staged: duckdb.DuckDBPyConnection) -> None:
    staged.execute("INSERT INTO articles VALUES ('fedcba9876543210', 'teaser', 0)")
    result = validate.validate_frame("load", validate.load_frame(staged, "this run"))
    assert result.failures == {"a.txt": ["an article is stored more than once"]}


# --- what the gates keep for the Data Docs ---------------------------------------------------------


def test_gate_result_keeps_its_validation_for_the_docs() -> None:
    articles = [
        article("none.txt", article_id=None, body="Text one " * 100),
        article("twin1.txt", article_id="aaaaaaaaaaaaaaaa", body="Same full text " * 100),
        article("twin2.txt", article_id="bbbbbbbbbbbbbbbb", body="Same full text " * 100),
    ]
    result = validate.validate_frame("dedup", validate.dedup_frame(deduped_file(articles)))
    validation = result.validation
    assert validation["suite_name"] == "dedup" and validation["success"] is False
    assert validation["statistics"]["evaluated_expectations"] == result.evaluated
    assert validation["statistics"]["unsuccessful_expectations"] == result.failed
    # Strict JSON, without the per-row lists, with long values cut.
    json.dumps(validation, allow_nan=False)
    failed = [r["result"] for r in validation["results"] if not r["success"]]
    assert len(failed) == result.failed
    assert all(not validate.ROW_LISTS & r.keys() for r in failed)
    [texts] = [r["partial_unexpected_list"] for r in failed if r["unexpected_count"] == 2]
    assert all(len(text) <= validate.SAMPLE_CHARS + 1 and text.endswith("…") for text in texts)
    # It is no part of the result's identity or of its repr.
    assert result == dataclasses.replace(result, validation=None)
    assert "validation" not in repr(result)


def test_empty_batch_has_no_validation() -> None:
    assert validate.validate_frame("dedup", validate.dedup_frame(deduped_file([]))).validation is None


def test_load_frame_reads_only_the_runs_rows_but_counts_earlier_copies(staged: duckdb.DuckDBPyConnection) -> None:
    staged.execute("INSERT INTO article_occurrences VALUES ('fedcba9876543210', 'old.txt', 1, 'oo', 'earlier run')")
    assert "old.txt" not in set(validate.load_frame(staged, "this run")["source_file"])
    staged.execute("INSERT INTO article_occurrences VALUES ('fedcba9876543210', 'b.txt', 1, 'bb', 'earlier run')")
    result = validate.validate_frame("load", validate.load_frame(staged, "this run"))
    assert result.failures == {"b.txt": ["an article occurrence is stored more than once"]}
