"""The core makes of every dump what the code it replaced made: the same articles, ids,
fingerprints, removals and line numbers, and the same refusals; and the same warehouse
(bench/equivalence.py).

The expected digests were computed with the core before its columnar rewrite (the
fixture names the commit), on a generated corpus (text and HTML, gzipped, cp1252, CRLF,
BOMs; reprints), the seed dumps and the HTML fixtures. The benchmark checks the same at
1 GB (bench/run.py).
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO, run_ingest

sys.path.insert(0, str(REPO / "bench"))
import equivalence  # noqa: E402

FIXTURE = json.loads((REPO / "tests" / "fixtures" / "equivalence" / "digests-f18ccae.json").read_text())
CORPORA = FIXTURE["corpora"]


def _generated(tmp_path):
    args = CORPORA["generated"]["generator"]
    out = tmp_path / "generated"
    subprocess.run([sys.executable, str(REPO / "bench" / "generate.py"), "--mb", str(args["mb"]), "--seed",
                    str(args["seed"]), "--legacy-share", str(args["legacy_share"]), "--out", str(out)],
                   check=True, capture_output=True)
    return out


@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_every_dump_comes_out_as_before(corpus, tmp_path):
    raw = _generated(tmp_path) if corpus == "generated" else REPO / CORPORA[corpus]["raw"]
    expected = CORPORA[corpus]["digests"]
    actual = equivalence.corpus_digests(raw, batch_mb=1.0)
    assert len(actual) == len(expected)
    assert equivalence.differences(expected, actual) == []


@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_the_warehouse_comes_out_as_before(corpus, tmp_path, prefect_server):
    """Dedup and the load make the same tables of the same batches: every row but run ids
    and times."""
    raw = _generated(tmp_path) if corpus == "generated" else REPO / CORPORA[corpus]["raw"]
    run_ingest(raw, tmp_path / "wh")
    expected = CORPORA[corpus]["warehouse"]
    assert equivalence.differences(expected, equivalence.warehouse_digests(tmp_path / "wh")) == []


def test_a_changed_article_is_a_difference(tmp_path):
    """The digest sees one word changed in one dump, and names that dump."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for seed in sorted((REPO / "data" / "raw").glob("*.txt"))[:2]:
        (raw / seed.name).write_bytes(seed.read_bytes())
    before = equivalence.corpus_digests(raw)
    changed = sorted(raw.iterdir())[1]
    text = changed.read_text(encoding="utf-8")
    word = next(w for w in text.split() if w.isalpha() and len(w) > 6)
    changed.write_text(text.replace(word, word.upper(), 1), encoding="utf-8")
    assert equivalence.differences(before, equivalence.corpus_digests(raw)) == [changed.name]
