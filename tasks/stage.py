"""Stage: a run's segmented dumps, spilled to Parquet batch by batch.

A run never holds the whole corpus in memory: each batch's articles and removals are
written to the run's stage folder (WAREHOUSE/.gleaner-stage/<run_id>/) by whoever
segmented the batch, a worker process or a Dask worker included, and the batch's records
are dropped. Dedup and load then read the stage with DuckDB, which streams and spills.

Each article occurrence is staged with what dedup needs from it, computed where the
batch was processed so it runs in parallel too: its author key, the id it gets if it is
new, and the fingerprint of its text. Files are named by batch number, so the stage reads
back in the order of a single-process run whatever order workers finished in.
"""
from __future__ import annotations

import os
import shutil
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Protocol

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tasks.dedup import Candidate, author_key, dedup_author, placements
from tasks.lake import MEMORY_LIMIT
from tasks.memory import release_memory
from tasks.models import Article, Section, SegmentedDump



class KnownArticles(Protocol):
    """What dedup reads of the warehouse (tasks/load.py: StoredArticles)."""

    def matches(self, occurrences: str, excluded: list[str], keys: list[str]) -> list[tuple]:
        """(author_key, batch_no, dump_no, ordinal, article_id) of each staged occurrence and
        stored article that same_article would find the same."""

    def stubs(self, keys: list[str], ids: list[str]) -> Iterator[pa.RecordBatch]:
        """The stored articles `ids` and those of `keys` without text, with their stored
        fingerprints and without their texts."""

    def texts(self, ids: list[str]) -> dict[str, dict]:
        """article_id -> {body, sections} of these stored articles."""

STAGE_DIR = ".gleaner-stage"
FINGERPRINT = pa.list_(pa.int32())
#: parts the staged occurrences are split in by author (dedup reads one part at a time):
#: each batch writes a file per part, and 64 files cost a 16 MB batch 0.2 s more than 16
AUTHOR_PARTS = 16

SECTION = pa.struct([("heading", pa.string()), ("text", pa.string())])
OCCURRENCE_SCHEMA = pa.schema([
    ("batch_no", pa.int32()), ("dump_no", pa.int32()), ("ordinal", pa.int32()),
    ("source_file", pa.string()), ("source_sha256", pa.string()),
    ("kind", pa.string()), ("authors", pa.list_(pa.string())), ("published_on", pa.date32()),
    ("title", pa.string()), ("category", pa.string()), ("lede", pa.string()), ("body", pa.string()),
    ("sections", pa.list_(SECTION)), ("bio", pa.string()), ("word_count", pa.int32()),
    ("author_key", pa.string()), ("new_id", pa.string()), ("fingerprint", FINGERPRINT),
])
REMOVED_SCHEMA = pa.schema([
    ("source_file", pa.string()), ("line_no", pa.int32()), ("category", pa.string()), ("text", pa.string()),
    ("source_sha256", pa.string()),
])


def stage_dir(warehouse_dir: Path, run_id: str) -> Path:
    return warehouse_dir / STAGE_DIR / run_id


def scratch_connection(stage: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection for reading the stage, with bounded memory: what does
    not fit spills to the stage's folder (an in-memory database has none of its own)."""
    return duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "temp_directory": str(stage / "spill"),
                                  "preserve_insertion_order": False})


def start_stage(warehouse_dir: Path, run_id: str) -> Path:
    """The run's empty stage: batch 0 holds no rows, so that a run with nothing new reads
    an empty stage rather than no files."""
    stage = stage_dir(warehouse_dir, run_id)
    write_batch(stage, 0, [])
    return stage


def clear_stages(warehouse_dir: Path) -> None:
    """Remove every run's stage (a killed run leaves its own behind)."""
    shutil.rmtree(warehouse_dir / STAGE_DIR, ignore_errors=True)


def author_part(key: str) -> int:
    """The part of the stage an author's occurrences go to (stable across processes)."""
    return zlib.crc32(key.encode()) % AUTHOR_PARTS


def removed_files(stage: Path) -> str:
    return str(stage / "removed" / "*.parquet")


#: How stage files are written: dictionary encoding long texts costs time both ways (a
#: 35,704-article file wrote in 1.49 s and read in 0.93 s with it, 1.08 s and 0.22 s without,
#: for 6% more bytes).
PARQUET_OPTIONS = {"compression": "zstd", "use_dictionary": False}


def _write(table: pa.Table, folder: Path, batch_no: int) -> None:
    """One file per batch, renamed into place whole: a reader never sees half a file."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".batch-{batch_no:06d}.partial"
    pq.write_table(table, partial, **PARQUET_OPTIONS)
    os.replace(partial, folder / f"batch-{batch_no:06d}.parquet")


def occurrence_table(batch_no: int, segmented: list[SegmentedDump]) -> pa.Table:
    """The batch's article occurrences, a row each, with what dedup needs of them."""
    rows = [(dump_no, s.dump, a) for dump_no, s in enumerate(segmented) for a in s.articles]
    articles = [a for _, _, a in rows]
    placed = placements(articles)
    columns = {
        "batch_no": [batch_no] * len(rows), "dump_no": [n for n, _, _ in rows],
        "ordinal": [a.ordinal for a in articles], "source_file": [d.source_file for _, d, _ in rows],
        "source_sha256": [d.sha256 for _, d, _ in rows], "kind": [a.kind for a in articles],
        "authors": [a.authors for a in articles], "published_on": [a.published_on for a in articles],
        "title": [a.title for a in articles], "category": [a.category for a in articles],
        "lede": [a.lede for a in articles], "body": [a.body for a in articles],
        "sections": [[{"heading": x.heading, "text": x.text} for x in a.sections] for a in articles],
        "bio": [a.bio for a in articles], "word_count": [a.word_count for a in articles],
        "author_key": [author_key(a.authors) for a in articles], "new_id": placed.ids,
    }
    arrays = [pa.array(columns[f.name], f.type) for f in OCCURRENCE_SCHEMA if f.name != "fingerprint"]
    arrays.append(placed.fingerprints)
    return pa.Table.from_arrays(arrays, schema=OCCURRENCE_SCHEMA)


def removed_table(segmented: list[SegmentedDump]) -> pa.Table:
    removals = [(r, s.dump.sha256) for s in segmented for r in s.removed]
    return pa.Table.from_arrays([
        pa.array([r.source_file for r, _ in removals], pa.string()),
        pa.array([r.line_no for r, _ in removals], pa.int32()),
        pa.array([r.category for r, _ in removals], pa.string()),
        pa.array([r.text for r, _ in removals], pa.string()),
        pa.array([sha for _, sha in removals], pa.string()),
    ], schema=REMOVED_SCHEMA)


def write_batch(stage: Path, batch_no: int, segmented: list[SegmentedDump]) -> None:
    """Stage the articles and removals of one batch's dumps that passed their gates."""
    occurrences = occurrence_table(batch_no, segmented)
    parts = np.array([author_part(key) for key in occurrences.column("author_key").to_pylist()], np.int32)
    for part in np.unique(parts).tolist():
        _write(occurrences.filter(pa.array(parts == part)), stage / "occurrences" / f"part-{part:03d}", batch_no)
    _write(removed_table(segmented), stage / "removed", batch_no)


# --- dedup over the stage -------------------------------------------------------------

ARTICLE_SCHEMA = pa.schema([
    ("article_id", pa.string()), ("kind", pa.string()), ("authors", pa.list_(pa.string())),
    ("published_on", pa.date32()), ("title", pa.string()), ("category", pa.string()), ("lede", pa.string()),
    ("body", pa.string()), ("sections", pa.list_(SECTION)), ("bio", pa.string()), ("word_count", pa.int32()),
    ("author_key", pa.string()), ("source_file", pa.string()), ("ordinal", pa.int32()),
    ("fingerprint", FINGERPRINT),
])
DEDUPED_OCCURRENCE_SCHEMA = pa.schema([
    ("article_id", pa.string()), ("source_file", pa.string()), ("ordinal", pa.int32()),
    ("source_sha256", pa.string()),
])
_ROWS_PER_WRITE = 4096

STAGED_SQL = "SELECT * FROM read_parquet($files) WHERE NOT list_contains($excluded, source_file)"
#: the order of a single-process run, by author (Arrow orders text by its UTF-8 bytes,
#: which is the order of its code points, as Python's)
RUN_ORDER = [(name, "ascending") for name in ("author_key", "batch_no", "dump_no", "ordinal")]
_occurrence_key = itemgetter("author_key", "batch_no", "dump_no", "ordinal")  # as known.matches names it


@dataclass
class DedupTotals:
    articles: int = 0  # rows written: new articles and known ones that gained something
    new: int = 0
    updated: int = 0
    occurrences: int = 0

    def add(self, other: DedupTotals) -> None:
        self.articles += other.articles
        self.new += other.new
        self.updated += other.updated
        self.occurrences += other.occurrences


def deduped_articles(stage: Path) -> str:
    """The article rows dedup wrote (a glob of Parquet files)."""
    return str(stage / "articles" / "*.parquet")


def deduped_occurrences(stage: Path) -> str:
    return str(stage / "article_occurrences" / "*.parquet")


def stream_rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> Iterator[dict]:
    """A query's rows as dicts, fetched a few thousand at a time."""
    for batch in con.execute(sql, params).to_arrow_reader(_ROWS_PER_WRITE):
        yield from batch.to_pylist()


def _sections(rows: list[dict] | None) -> list[Section]:
    return [Section(s["heading"], s["text"]) for s in rows or []]


def _article(row: dict) -> Article:
    """An Article of a staged or stored row, read without its texts: body None, no sections,
    and a staged one without its lede. Dedup decides on the rest; a staged row's texts are
    taken from the stage for the articles written with them, a stored one's are read when
    dedup rewrites it."""
    return Article(source_file=row.get("source_file", ""), ordinal=row.get("ordinal", 0), kind=row["kind"],
                   authors=row["authors"], published_on=row["published_on"], title=row["title"],
                   category=row["category"], lede=row.get("lede"), body=row.get("body"),
                   sections=_sections(row.get("sections")), bio=row["bio"],
                   word_count=row["word_count"], article_id=row.get("article_id"))


class _Writer:
    """Rows appended to one Parquet file, a few thousand at a time."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.schema, self.rows = schema, []
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = pq.ParquetWriter(path, schema, **PARQUET_OPTIONS)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, row: dict) -> None:
        self.rows.append(row)
        if len(self.rows) >= _ROWS_PER_WRITE:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.file.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def write(self, table: pa.Table) -> None:
        """A table of rows, after the rows added before it."""
        self.flush()
        self.file.write_table(table)

    def close(self) -> None:
        """Write what is left and close the file; once (a second call does nothing)."""
        if self.file is not None:
            self.flush()
            self.file.close()
            self.file = None


def _stage_known(stage: Path, rows: Iterator[pa.RecordBatch]) -> None:
    """The known articles dedup compares with, split in author parts like the occurrences:
    one query for the run, however many parts it touches."""
    folder = stage / "known"
    folder.mkdir(parents=True, exist_ok=True)
    writers: dict[int, pq.ParquetWriter] = {}
    try:
        for batch in rows:
            parts = pa.array([author_part(key) for key in batch.column("author_key").to_pylist()], pa.int32())
            for part in set(parts.to_pylist()):
                if part not in writers:
                    writers[part] = pq.ParquetWriter(folder / f"part-{part:03d}.parquet", batch.schema)
                writers[part].write_batch(batch.filter(pc.equal(parts, part)))
    finally:
        for writer in writers.values():
            writer.close()


def _part_files(stage: Path, part: int) -> list[Path]:
    """An author part's files, one per batch, in the order dedup reads them."""
    return sorted((stage / "occurrences" / f"part-{part:03d}").glob("*.parquet"))


def _staged_part(files: list[Path], excluded: set[str]) -> pa.Table:
    """The staged occurrences in an author part's files, less those of the `excluded` dumps,
    without their texts (_write_told reads them file by file): each row with its file's
    number in `files` and its row in that file."""
    tables = [pq.read_table(f, schema=OCCURRENCE_SCHEMA, columns=_DECIDED_COLUMNS) for f in files]
    staged = pa.concat_tables([t.append_column(_FILE_NO, pa.array(np.full(t.num_rows, n), pa.int32()))
                               .append_column(_FILE_ROW, pa.array(np.arange(t.num_rows), pa.int64()))
                               for n, t in enumerate(tables)]) if tables else _NO_OCCURRENCES
    if not excluded:  # as a rule: filtering copies every column
        return staged
    return staged.filter(pc.invert(pc.is_in(staged.column("source_file"), pa.array(sorted(excluded), pa.string()))))


def _known_of_part(stage: Path, part: int) -> dict[str, list[tuple[Article, frozenset[int]]]]:
    path = stage / "known" / f"part-{part:03d}.parquet"
    if not path.exists():
        return {}
    by_key: dict[str, list[tuple[Article, frozenset[int]]]] = defaultdict(list)
    for row in sorted(pq.read_table(path).to_pylist(), key=itemgetter("author_key", "article_id")):
        by_key[row["author_key"]].append((_article(row), frozenset(row["fingerprint"])))
    return by_key


#: a staged occurrence's texts, which dedup does not read: an article row written with them
#: takes them from the stage by row, and the fingerprint computed from them
TEXT_COLUMNS = ["lede", "body", "sections"]
#: what dedup reads of every staged row as Python values (the fingerprints are read one
#: author at a time: as Python ints, a part's took hundreds of MB)
DECIDING_COLUMNS = [name for name in OCCURRENCE_SCHEMA.names if name not in (*TEXT_COLUMNS, "fingerprint")]
_DECIDED_COLUMNS = [*DECIDING_COLUMNS, "fingerprint"]  # what dedup reads of a part at once
_TAKEN_COLUMNS = [*TEXT_COLUMNS, "fingerprint"]
_FILE_NO, _FILE_ROW = "file_no", "file_row"
_NO_OCCURRENCES = pa.schema([*(OCCURRENCE_SCHEMA.field(name) for name in _DECIDED_COLUMNS),
                             (_FILE_NO, pa.int32()), (_FILE_ROW, pa.int64())]).empty_table()


def _article_fields(key: str, a: Article) -> dict:
    """An article row's columns but its texts and fingerprint."""
    return {"article_id": a.article_id, "kind": a.kind, "authors": a.authors, "published_on": a.published_on,
            "title": a.title, "category": a.category, "bio": a.bio, "word_count": a.word_count,
            "author_key": key, "source_file": a.source_file, "ordinal": a.ordinal}


_FIELDS_SCHEMA = pa.schema([f for f in ARTICLE_SCHEMA if f.name not in _TAKEN_COLUMNS])


def _write_told(articles: _Writer, told: list[tuple[str, Article, int]], staged: pa.Table, files: list[Path]) -> None:
    """Write the rows of articles, each (author key, article, row of `staged`): the article's
    own columns, and the texts and fingerprint of the staged row it is written with. The
    texts are read one file at a time, for the articles they belong to: with a part's texts
    held whole, and a copy of those written, a worker's peak was 748 MB; 544 MB so (1 GB
    corpus, a group of 2 of the 16 parts)."""
    if not told:
        return
    rows = pa.array([row for _, _, row in told], pa.int64())
    file_nos = staged.column(_FILE_NO).take(rows).to_numpy()
    file_rows = staged.column(_FILE_ROW).take(rows).to_numpy()
    fingerprints = staged.column("fingerprint").take(rows)
    pending: list[pa.Table] = []  # written a few thousand rows at a time, not a file's few hundred
    for n, path in enumerate(files):
        mine = np.flatnonzero(file_nos == n)
        if mine.size:
            texts = pq.read_table(path, schema=OCCURRENCE_SCHEMA, columns=TEXT_COLUMNS).take(file_rows[mine])
            taken = {name: texts.column(name) for name in TEXT_COLUMNS} | {"fingerprint": fingerprints.take(mine)}
            fields = pa.Table.from_pylist([_article_fields(key, a) for key, a, _ in (told[i] for i in mine)],
                                          schema=_FIELDS_SCHEMA)
            pending.append(pa.Table.from_arrays(
                [taken[f.name].cast(f.type) if f.name in taken else fields.column(f.name) for f in ARTICLE_SCHEMA],
                schema=ARTICLE_SCHEMA))
        if pending and (n == len(files) - 1 or sum(t.num_rows for t in pending) >= _ROWS_PER_WRITE):
            articles.write(pa.concat_tables(pending))
            pending = []


def _article_row(key: str, a: Article, fingerprint: frozenset[int]) -> dict:
    return _article_fields(key, a) | {
        "lede": a.lede, "body": a.body, "sections": [{"heading": s.heading, "text": s.text} for s in a.sections],
        "fingerprint": sorted(fingerprint)}


#: author parts are deduped in this many groups, each a unit of parallel work: enough to
#: keep a few workers busy to the end, few enough that each costs little to start
DEDUP_GROUPS = 8
#: below this many staged occurrences dedup runs as one group in the run's own process:
#: starting workers would cost more than it saves. A run staging this many has had about 6
#: batches of 16 MB, which started the workers already.
PARALLEL_DEDUP_OCCURRENCES = 20_000

MATCHED_SCHEMA = pa.schema([("author_key", pa.string()), ("batch_no", pa.int32()), ("dump_no", pa.int32()),
                            ("ordinal", pa.int32()), ("article_id", pa.string()), ("part", pa.int32())])


@dataclass(frozen=True)
class DedupPlan:
    """The author parts to dedup, in groups that can run anywhere (each group's parts are
    read and written by it alone)."""

    groups: list[list[int]]


def prepare_dedup(stage: Path, known: KnownArticles, excluded: set[str]) -> DedupPlan:
    """The warehouse's side of dedup, once for the run, in the process that holds the lake:
    which stored articles the staged occurrences (less the `excluded` dumps') are copies of,
    found in the warehouse by their fingerprints; those articles, and the ones of these
    authors without text, read without their texts and staged by author part like the
    occurrences (stage/known/), with the matches (stage/matched.parquet)."""
    for output in ("articles", "untold", "article_occurrences", "known"):  # of a dedup before the gate refused
        shutil.rmtree(stage / output, ignore_errors=True)
    params = {"files": str(stage / "occurrences" / "*" / "*.parquet"), "excluded": sorted(excluded)}
    parts = sorted(int(p.name.removeprefix("part-")) for p in (stage / "occurrences").glob("part-*"))
    with scratch_connection(stage) as scratch:
        keys, staged = [], 0
        if parts:
            keys = [key for (key,) in scratch.execute(
                f"SELECT DISTINCT author_key FROM ({STAGED_SQL}) ORDER BY author_key", params).fetchall()]
            staged = scratch.execute(f"SELECT count(*) FROM ({STAGED_SQL})", params).fetchone()[0]
    matches = known.matches(params["files"], params["excluded"], keys) if keys else []
    pq.write_table(pa.Table.from_pylist([dict(zip(MATCHED_SCHEMA.names, (*m, author_part(m[0])))) for m in matches],
                                        schema=MATCHED_SCHEMA), stage / "matched.parquet")
    ids = sorted({m[-1] for m in matches})
    _stage_known(stage, known.stubs(keys, ids) if keys else iter(()))
    groups = DEDUP_GROUPS if staged >= PARALLEL_DEDUP_OCCURRENCES else 1
    return DedupPlan([group for group in (parts[g::groups] for g in range(groups)) if group])


def dedup_group(stage: Path, parts: list[int], excluded: set[str], group: int) -> DedupTotals:
    """Dedup the staged occurrences of these author parts, except those of the `excluded`
    dumps, one author key at a time, in the order of a single-process run; write the article
    rows to write and every occurrence's id to the stage (articles/, article_occurrences/).
    A stored article rewritten with its own text is written without it (untold/): finish_dedup
    reads the stored texts once for the run. Memory holds a part's occurrences, without their
    texts, and known articles."""
    articles = _Writer(stage / "articles" / f"group-{group:03d}.parquet", ARTICLE_SCHEMA)
    untold = _Writer(stage / "untold" / f"group-{group:03d}.parquet", ARTICLE_SCHEMA)
    occurrences = _Writer(stage / "article_occurrences" / f"group-{group:03d}.parquet", DEDUPED_OCCURRENCE_SCHEMA)
    totals = DedupTotals()
    try:
        matched: dict[tuple, set[str]] = defaultdict(set)
        for key, batch_no, dump_no, ordinal, article_id, _ in (tuple(m.values()) for m in pq.read_table(
                stage / "matched.parquet", filters=[("part", "in", parts)]).to_pylist()):
            matched[key, batch_no, dump_no, ordinal].add(article_id)
        for part in parts:
            files = _part_files(stage, part)
            staged = _staged_part(files, excluded)
            known_by_key = _known_of_part(stage, part)
            told: list[tuple[str, Article, int]] = []
            order = pc.sort_indices(staged, sort_keys=RUN_ORDER)
            # the texts stay where they are: an article written with them takes them by row
            rows = zip(order.to_pylist(), staged.select(DECIDING_COLUMNS).take(order).to_pylist())
            fingerprints = staged.column("fingerprint").combine_chunks()
            starts, hashes = fingerprints.offsets.to_numpy(), fingerprints.values.to_numpy()
            for key, keyed in groupby(rows, key=lambda numbered: numbered[1]["author_key"]):
                candidates = [Candidate(_article(r), r["source_sha256"],
                                        frozenset(hashes[starts[n]:starts[n + 1]].tolist()), r["new_id"],
                                        frozenset(matched.get(_occurrence_key(r), ())), text_row=n)
                              for n, r in keyed]
                result = dedup_author(known_by_key.get(key, []), candidates)
                for a in result.articles:
                    text_row = result.text_rows.get(a.article_id)
                    if text_row is None:  # a stored article rewritten with its own text (read without it)
                        untold.add(_article_row(key, a, result.fingerprints[a.article_id]))
                    else:
                        told.append((key, a, text_row))
                for o in result.occurrences:
                    occurrences.add({"article_id": o.article_id, "source_file": o.source_file,
                                     "ordinal": o.ordinal, "source_sha256": o.source_sha256})
                totals.add(DedupTotals(len(result.articles), len(result.new_ids), len(result.updated_ids),
                                       len(result.occurrences)))
            _write_told(articles, told, staged, files)
            del staged, told
            release_memory()  # a part's texts, before the next part's are read
    finally:
        articles.close()
        untold.close()
        occurrences.close()
    return totals


def finish_dedup(stage: Path, known: KnownArticles) -> None:
    """The untold articles of every group with their stored texts, read in one query for the
    run (each read scans the articles table); and files enough that the stage's articles and
    occurrences read as tables, however few the groups."""
    rows = [row for path in sorted((stage / "untold").glob("*.parquet")) for row in pq.read_table(path).to_pylist()]
    stored = known.texts([row["article_id"] for row in rows]) if rows else {}
    with _Writer(stage / "articles" / "untold.parquet", ARTICLE_SCHEMA) as articles:
        for row in rows:
            articles.add(row | {"body": stored[row["article_id"]]["body"],
                                "sections": stored[row["article_id"]]["sections"] or []})
    _Writer(stage / "article_occurrences" / "none.parquet", DEDUPED_OCCURRENCE_SCHEMA).close()


def removed_by_category(stage: Path, excluded: set[str]) -> dict[str, int]:
    """Staged removals per category, except those of the `excluded` dumps."""
    with scratch_connection(stage) as scratch:
        return dict(scratch.execute(
            """SELECT category, count(*) FROM read_parquet($files)
               WHERE NOT list_contains($excluded, source_file) GROUP BY category ORDER BY category""",
            {"files": removed_files(stage), "excluded": sorted(excluded)}).fetchall())
