"""Hostile input: every file is loaded with the right articles or quarantined with a reason."""
from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys

import gleaner
import pytest

from conftest import REPO, SEEDS

SEED_004 = (SEEDS / "004_b658330cd825a186.txt").read_text(encoding="utf-8")
ARTICLE = "By Jane Roe\n" + "The minister’s visit to Tashkent was “historic”, said the café owner in Samarqand. " * 20


@pytest.fixture(autouse=True)
def _server(prefect_server):
    yield


def write_hostile_raw(raw, outside):
    raw.mkdir()
    files = {
        "bom8.txt": SEED_004.encode("utf-8-sig"),
        "bom16.txt": SEED_004.encode("utf-16"),
        "cp1252.txt": ARTICLE.encode("cp1252"),
        "crlf.txt": SEED_004.replace("\n", "\r\n").encode(),
        "cr.txt": SEED_004.replace("\n", "\r").encode(),
        "a few nuls.txt": SEED_004.replace("Kazakhstan has", "Kazakh\x00stan has").encode(),
        "little broken.txt": SEED_004.encode().replace(b"a key partner", b"a key p\xffrtner"),
        "mostly broken.txt": bytes(random.Random(1).randrange(128, 256) for _ in range(20_000)),
        "binary.txt": bytes(range(256)) * 40,
        "empty.txt": b"",
        "blank.txt": " \n\t\n\u00a0\n".encode(),
        "no article.txt": "Editorial Principles\nThe Analyst is a global Web journal.\n".encode(),
        "truncated.txt.gz": gzip.compress(SEED_004.encode())[:60],
        "bomb.txt.gz": gzip.compress(b"\0" * (3 << 20)),
        "long line.txt": ("By Jane Roe\n" + "word " * 400_000 + "\n").encode(),
        "broken.html": b"<html><body><div><p>By Jane Roe<p>The talks resumed in Osh.<div><b>unclosed",
        "script only.html": b"<html><head><script>var a = 1;</script></head><body><script>x()</script></body>",
        "deep.html": (b"<div>" * 5000) + b"<p>By Jane Roe</p><p>Deep in the page.</p>" + (b"</div>" * 5000),
        "it's; \"odd\" ünïcode.txt": SEED_004.encode(),
        "folder.txt/inside.txt": SEED_004.encode(),
    }
    for name, data in files.items():
        (raw / name).parent.mkdir(parents=True, exist_ok=True)
        (raw / name).write_bytes(data)
    secret = outside / "secret.txt"
    secret.write_text(SEED_004)
    os.symlink(secret, raw / "escape.txt")
    return files


def test_every_hostile_input_is_loaded_or_quarantined_with_its_reason(tmp_path, monkeypatch):
    import tasks.extract
    from flows.ingest import ingest

    monkeypatch.setattr(tasks.extract, "MAX_EXPANDED_BYTES", 2 << 20)  # a small bound for a small bomb
    raw = tmp_path / "raw"
    write_hostile_raw(raw, tmp_path)
    warehouse = tmp_path / "wh"
    state = ingest(str(raw), str(warehouse), return_state=True)
    assert state.is_failed()  # some inputs were refused
    with gleaner.connect(warehouse) as con:
        dumps = {f: (s, r, e, n) for f, s, r, e, n in con.execute(
            "SELECT source_file, status, reason, encoding, articles FROM dumps").fetchall()}
        authors = dict(con.execute("""
            SELECT o.source_file, list(a.authors[1] ORDER BY o.ordinal) FROM article_occurrences o
            JOIN articles a USING (article_id) GROUP BY ALL""").fetchall())
    loaded = {f: (e, n) for f, (s, _, e, n) in dumps.items() if s == "loaded"}
    refused = {f: r for f, (s, r, _, _) in dumps.items() if s == "quarantined"}
    seed_authors = ["Bayram Balcı", "Richard Outzen", "Vali Kaleji", "Halil Karaveli", "Fuad Shahbazov"]
    for name in ("bom8.txt", "bom16.txt", "crlf.txt", "cr.txt", "a few nuls.txt", "it's; \"odd\" ünïcode.txt",
                 "folder.txt/inside.txt"):
        assert loaded[name][1] == 5 and authors[name] == seed_authors, name
    assert loaded["bom8.txt"][0] == "utf-8-sig" and loaded["bom16.txt"][0] == "utf-16"
    assert loaded["little broken.txt"] == ("utf-8", 5) and authors["little broken.txt"] == seed_authors
    assert loaded["cp1252.txt"][0].startswith("cp125") and loaded["cp1252.txt"][1] == 1
    assert loaded["no article.txt"] == ("utf-8", 0)
    assert loaded["long line.txt"][1] == 1 and loaded["broken.html"][1] == 1 and loaded["deep.html"][1] == 1
    assert set(refused) == {"mostly broken.txt", "binary.txt", "empty.txt", "blank.txt", "truncated.txt.gz",
                            "bomb.txt.gz", "script only.html", "escape.txt"}
    # noise is refused by the decoder, or by the extract gate when a code page 'reads' it
    assert refused["mostly broken.txt"].startswith("extract: ") and "decod" in refused["mostly broken.txt"]
    assert refused["binary.txt"] == "extract: binary content (control bytes), not text"
    assert refused["truncated.txt.gz"].startswith("extract: broken gzip archive")
    assert "decompression bomb" in refused["bomb.txt.gz"]
    assert refused["escape.txt"] == "discover: a link that leads outside --raw; not followed"
    assert refused["empty.txt"].startswith("extract: ") and "the dump is empty" in refused["empty.txt"]
    assert refused["blank.txt"] == "extract: the dump holds only blank lines"
    assert "the dump is empty" in refused["script only.html"]  # a page with no visible text


def test_unreadable_files_and_folders_are_quarantined_with_the_reason(tmp_path):
    """A file and a folder nobody may read: each gets a dumps row saying so, the readable dump
    is loaded, and the command exits 1 naming them. Root reads whatever the modes say, so as
    root the command runs without the capabilities that let it (setpriv)."""
    from prefect.settings import PREFECT_API_URL

    raw, warehouse = tmp_path / "raw", tmp_path / "wh"
    (raw / "locked").mkdir(parents=True)
    (raw / "readable.txt").write_text(SEED_004, encoding="utf-8")
    (raw / "secret.txt").write_text(SEED_004, encoding="utf-8")
    (raw / "locked" / "inside.txt").write_text(SEED_004, encoding="utf-8")
    (raw / "secret.txt").chmod(0o000)
    (raw / "locked").chmod(0o000)
    command = [sys.executable, "-m", "gleaner.cli", "run", "--raw", str(raw), "--warehouse", str(warehouse), "--json"]
    if os.geteuid() == 0:
        without = "-dac_override,-dac_read_search"
        command = ["setpriv", "--bounding-set", without, "--inh-caps", without, *command]
    env = dict(os.environ, PREFECT_API_URL=PREFECT_API_URL.value(), PREFECT_LOGGING_LEVEL="WARNING")
    try:
        ran = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    finally:
        (raw / "locked").chmod(0o755)  # so that pytest can clean up
    assert ran.returncode == 1, ran.stderr[-3000:]
    summary = json.loads(ran.stdout)
    assert summary["dumps_loaded"] == 1 and summary["articles_new"] == 5
    assert dict(summary["quarantined"]) == {
        "locked": "discover: a folder that cannot be read: Permission denied; its files were not seen",
        "secret.txt": "discover: cannot be read: Permission denied",
    }
    assert "Traceback" not in ran.stderr
    with gleaner.connect(warehouse) as con:
        rows = con.execute("SELECT source_file, status FROM dumps ORDER BY source_file").fetchall()
    assert rows == [("locked", "quarantined"), ("readable.txt", "loaded"), ("secret.txt", "quarantined")]
