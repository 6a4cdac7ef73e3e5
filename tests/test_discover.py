from __future__ import annotations

import os

from tasks.discover import batches, discover, dump_format, likely_new


def test_formats_of_the_contract():
    from pathlib import Path
    assert [dump_format(Path(n)) for n in ("a.txt", "b.HTML", "c.htm.gz", "d.txt.gz", "e.pdf", "f")] == [
        "txt", "html", "html.gz", "txt.gz", None, None]


def test_dumps_are_found_recursively_in_order_and_loaded_ones_skipped(tmp_path):
    (tmp_path / "2025" / "b").mkdir(parents=True)
    (tmp_path / "z.txt").write_text("z")
    (tmp_path / "2025" / "b" / "a.html").write_text("<p>a</p>")
    (tmp_path / "2025" / "a.txt").write_text("a")
    first = discover(tmp_path, {})
    assert [d.source_file for d in first.new] == ["2025/a.txt", "2025/b/a.html", "z.txt"]
    loaded = as_loaded(first.new[:2])
    again = discover(tmp_path, loaded)
    assert [d.source_file for d in again.new] == ["z.txt"]
    assert len(again.already_loaded) == 2


def as_loaded(dumps) -> dict:
    """What the warehouse's dumps table says of these dumps once they are loaded."""
    return {d.source_file: (d.sha256, d.bytes, d.modified_ns) for d in dumps}


def test_a_changed_file_is_new_again(tmp_path):
    (tmp_path / "a.txt").write_text("one")
    loaded = as_loaded(discover(tmp_path, {}).new)
    (tmp_path / "a.txt").write_text("two")
    assert [d.source_file for d in discover(tmp_path, loaded).new] == ["a.txt"]


def test_a_changed_file_of_the_same_size_and_time_is_new_when_its_time_differs(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("one")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    loaded = as_loaded(discover(tmp_path, {}).new)
    path.write_text("two")  # same size
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    assert [d.source_file for d in discover(tmp_path, loaded).new] == ["a.txt"]


def test_a_file_whose_size_and_time_match_its_loaded_row_is_not_read(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("one")
    loaded = as_loaded(discover(tmp_path, {}).new)
    loaded["a.txt"] = ("stored-digest", *loaded["a.txt"][1:])  # a file that was hashed would not get it
    again = discover(tmp_path, loaded)
    assert again.new == [] and [d.sha256 for d in again.already_loaded] == ["stored-digest"]


def test_a_file_touched_but_unchanged_is_hashed_and_still_loaded(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("one")
    loaded = as_loaded(discover(tmp_path, {}).new)
    os.utime(path, ns=(5_000_000_000, 5_000_000_000))
    again = discover(tmp_path, loaded)
    assert again.new == [] and [d.sha256 for d in again.already_loaded] == [loaded["a.txt"][0]]


def test_unsupported_files_and_links_out_of_raw_are_refused_with_reasons(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "notes.pdf").write_bytes(b"%PDF")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    os.symlink(secret, raw / "link.txt")
    os.symlink(raw / "missing.txt", raw / "dangling.txt")
    found = discover(raw, {})
    assert found.new == []
    reasons = {q.dump.source_file: q.reason for q in found.refused}
    assert "outside --raw" in reasons["link.txt"]
    assert "unsupported file type '.pdf'" in reasons["notes.pdf"]
    assert "does not exist" in reasons["dangling.txt"]


def test_batches_are_bounded_by_bytes(tmp_path):
    for i in range(5):
        (tmp_path / f"{i}.txt").write_text("x" * 40)
    sizes = [len(b) for b in batches(discover(tmp_path, {}).new, 100)]
    assert sizes == [2, 2, 1]


def test_loaded_dumps_found_with_another_time_are_restamped_and_the_others_not(tmp_path):
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "b.txt").write_text("two")
    loaded = as_loaded(discover(tmp_path, {}).new)
    os.utime(tmp_path / "b.txt", ns=(7_000_000_000, 7_000_000_000))
    again = discover(tmp_path, loaded)
    assert [d.source_file for d in again.restamped] == ["b.txt"]
    assert again.restamped[0].modified_ns == 7_000_000_000


def test_likely_new_tells_whether_discover_would_read_a_dump_without_reading_any(tmp_path):
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")  # refused by discover, never read
    assert likely_new(tmp_path, {})
    loaded = as_loaded(discover(tmp_path, {}).new)
    assert not likely_new(tmp_path, loaded)
    os.utime(tmp_path / "a.txt", ns=(5_000_000_000, 5_000_000_000))  # discover would hash it again
    assert likely_new(tmp_path, loaded)
    (tmp_path / "a.txt").unlink()
    assert not likely_new(tmp_path, loaded)
