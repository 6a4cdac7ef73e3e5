"""What a batch makes of every dump, as one digest per dump: the check that a rewrite of the
core (extract, clean, segment, the gates, staging) leaves the warehouse as it was.

    .venv/bin/python bench/equivalence.py digest RAW OUT.json [--workers N] [--batch-mb MB]
    .venv/bin/python bench/equivalence.py warehouse WAREHOUSE OUT.json
    .venv/bin/python bench/equivalence.py compare EXPECTED.json ACTUAL.json

A dump's digest covers everything the batch staged for it: each article occurrence (its
place, kind, authors, date, title, category, lede, body, sections, bio, word count, author
key, new id and fingerprint) and each removal (line number, category, text); or, for a dump
a step or a gate refused, the step and the reason. A warehouse's digest covers the rows of
its tables but for run ids and times: what dedup and the load made of the batches. The digests of the code a rewrite
replaces are kept beside the corpus (bench/run.py) and by tests/test_equivalence.py.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tasks.batch import process_batch  # noqa: E402
from tasks.discover import batches, discover  # noqa: E402
from tasks.profile import DEFAULT_PROFILE  # noqa: E402


def _rows_by_dump(folder: Path) -> dict[str, list[str]]:
    """Every staged row below `folder` as canonical JSON, grouped by its dump."""
    by_dump: dict[str, list[str]] = defaultdict(list)
    for path in sorted(folder.rglob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            row.pop("batch_no", None)  # batch numbers depend on how the corpus was cut
            row.pop("dump_no", None)
            by_dump[row["source_file"]].append(json.dumps(row, sort_keys=True, default=str, ensure_ascii=False))
    return by_dump


def batch_digests(dumps: list, profile: str, batch_no: int) -> dict[str, str]:
    """source_file -> digest of what the batch made of it."""
    with tempfile.TemporaryDirectory(prefix="gleaner-equivalence-") as folder:
        outcome = process_batch(dumps, profile, batch_no, Path(folder))
        rows = _rows_by_dump(Path(folder))
    digests = {}
    for dump in dumps:
        refused = [f"refused by {q.step}: {q.reason}" for q in outcome.quarantined
                   if q.dump.source_file == dump.source_file]
        digest = hashlib.sha256()
        for line in refused or sorted(rows.get(dump.source_file, [])):
            digest.update(line.encode() + b"\n")
        digests[dump.source_file] = digest.hexdigest()
    return digests


def corpus_digests(raw: Path, profile: str = DEFAULT_PROFILE, workers: int = 1, batch_mb: float = 16.0) -> dict:
    """The digest of every dump below `raw`, sorted by source_file."""
    work = list(batches(discover(raw, {}).new, int(batch_mb * 1e6)))
    digests: dict[str, str] = {}
    if workers == 1:
        for batch_no, batch in enumerate(work, start=1):
            digests |= batch_digests(batch, profile, batch_no)
    else:
        with ProcessPoolExecutor(workers) as pool:
            for part in pool.map(batch_digests, work, [profile] * len(work), range(1, len(work) + 1)):
                digests |= part
    return dict(sorted(digests.items()))


#: the tables whose content a rewrite must leave as it was; run ids and times differ by run,
#: and file times by copy
WAREHOUSE_TABLES = ("articles", "article_sections", "article_fingerprints", "article_occurrences", "removed_text",
                    "dumps")
_VOLATILE = ("run_id", "processed_at", "modified_ns")  # modified_ns: the files' times


def warehouse_digests(warehouse: Path) -> dict[str, str]:
    """table -> its row count and an order-free digest of its rows (sums of each row's md5)."""
    import gleaner

    digests = {}
    with gleaner.connect(warehouse) as con:
        for table in WAREHOUSE_TABLES:
            columns = [name for (name,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $table ORDER BY ordinal_position",
                {"table": table}).fetchall() if name not in _VOLATILE]
            row = f"CAST(row({', '.join(columns)}) AS VARCHAR)"
            count, upper, lower = con.execute(
                f"SELECT count(*), sum(md5_number_upper({row})), sum(md5_number_lower({row})) FROM {table}").fetchone()
            digests[table] = f"{count} rows {upper:x}{lower:x}" if count else "0 rows"
    return digests


def differences(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    """The dumps whose digests differ, or that only one side has."""
    return sorted(name for name in expected.keys() | actual.keys() if expected.get(name) != actual.get(name))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    digest = sub.add_parser("digest", help="write the digest of every dump below RAW to OUT")
    digest.add_argument("raw", type=Path)
    digest.add_argument("out", type=Path)
    digest.add_argument("--profile", default=DEFAULT_PROFILE)
    digest.add_argument("--workers", type=int, default=1)
    digest.add_argument("--batch-mb", type=float, default=16.0)
    tables = sub.add_parser("warehouse", help="write the digest of every table of WAREHOUSE to OUT")
    tables.add_argument("warehouse", type=Path)
    tables.add_argument("out", type=Path)
    compare = sub.add_parser("compare", help="list the dumps whose digests differ; exit 1 if any")
    compare.add_argument("expected", type=Path)
    compare.add_argument("actual", type=Path)
    args = parser.parse_args(argv)
    if args.command == "digest":
        digests = corpus_digests(args.raw, args.profile, args.workers, args.batch_mb)
        args.out.write_text(json.dumps(digests, indent=0) + "\n")
        print(f"{len(digests)} dumps digested into {args.out}")
        return 0
    if args.command == "warehouse":
        digests = warehouse_digests(args.warehouse)
        args.out.write_text(json.dumps(digests, indent=0) + "\n")
        print("\n".join(f"{table}: {digest}" for table, digest in digests.items()))
        return 0
    differ = differences(json.loads(args.expected.read_text()), json.loads(args.actual.read_text()))
    for name in differ:
        print(f"differs: {name}")
    print(f"{len(differ)} dump(s) differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
