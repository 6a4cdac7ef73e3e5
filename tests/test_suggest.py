"""`gleaner profile suggest`: recurring lines that no recurring article explains."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from conftest import REPO, SEEDS
from gleaner.cli import main
from gleaner.suggest import PARAGRAPH_WORDS, LineCounts, comparable_lines, suggest
from tasks.profile import load_profile

FOOTER = "The Central Asia-Caucasus Analyst is a biweekly publication of the Central Asia-Caucasus Institute"
# Paragraphs of articles that recur in the seeds (001 and 003, 001 and 002, 002 and 003).
RECURRING_ARTICLE_LINES = (
    "By Eduard Abrahamyan",
    "By Umair Jamal",
    "By Aleksandar Ivanović",
    "City of Kabul (Image Courtesy of Pexel)",
    "In recent months, Armenia and Russia have strengthened their relations.",
    "BACKGROUND: Over the past two months, Azerbaijan",
    "AUTHOR’S BIO: Aleksandar Ivanović is a researcher",
)


def paragraph(topic: str) -> str:
    return f"The {topic} has changed the region in ways that few observers expected, and the " \
           f"consequences of that change will be felt by governments and citizens alike for years to come."


def write_dumps(folder, dumps: dict[str, list[str]]):
    folder.mkdir(exist_ok=True)
    for name, lines in dumps.items():
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def found(raw, profile="caci", min_dumps=2) -> dict[str, tuple[int, int, str | None]]:
    result = suggest(raw, load_profile(profile), min_dumps)
    return {c.text: (c.dumps, c.occurrences, c.covered_by) for c in result.candidates}


@pytest.fixture(scope="module")
def seed_candidates():
    return suggest(SEEDS, load_profile("caci")).candidates


def test_seeds_surface_footer_newsletter_navigation_and_captions(seed_candidates):
    by_text = {c.text: c for c in seed_candidates}
    assert by_text["Credit: Wikimedia Commons"].dumps == 3 and by_text["Credit: Wikimedia Commons"].occurrences == 9
    assert by_text["Newsletter"].dumps == 2 and by_text["Newsletter"].occurrences == 4
    assert {"Feature Articles", "Earlier Articles", "Visit also", "silkroad", "AFPC", "isdp", "turkeyanalyst",
            "Sign up for upcoming events, latest news, and articles from the CACI Analyst."} <= by_text.keys()
    [footer] = [c for c in seed_candidates if c.text.startswith(FOOTER)]
    assert (footer.dumps, footer.occurrences) == (5, 5)
    assert seed_candidates[0] is footer  # most frequent first


def test_seeds_do_not_surface_the_recurring_articles(seed_candidates):
    for candidate in seed_candidates:
        assert not candidate.text.startswith(RECURRING_ARTICLE_LINES)
        assert len(candidate.text.split()) < PARAGRAPH_WORDS or candidate.text.startswith(FOOTER)


def test_candidates_say_what_the_profile_already_makes_of_them(seed_candidates, tmp_path):
    covered = {c.text: c.covered_by for c in seed_candidates}
    assert covered["Credit: Wikimedia Commons"] == "image_caption"
    assert covered["silkroad"] == "navigation"
    assert covered["Newsletter"] == "newsletter_footer"
    assert covered["By Vali Kaleji"] == "byline"  # two articles by one author, not boilerplate
    # Under another site's profile the same lines are all new.
    assert {covered for _, _, covered in found(SEEDS, "steppe_review").values()} == {None}


def test_a_short_line_between_varying_lines_is_listed_and_a_recurring_article_is_not(tmp_path):
    article = ["By Ann Lee", paragraph("pipeline"), "Photo: AP", paragraph("railway")]
    raw = write_dumps(tmp_path / "raw", {
        "a.txt": article + ["Newsletter"],
        "b.txt": article + ["By Bo Chan", paragraph("election"), "Credit: Reuters", paragraph("drought"), "Newsletter"],
        "c.txt": ["By Cy Diaz", paragraph("summit"), "Credit: Reuters", paragraph("treaty"), "Newsletter"],
    })
    assert found(raw) == {
        "Newsletter": (3, 3, "newsletter_footer"),
        "Credit: Reuters": (2, 2, "image_caption"),
    }  # the article in a and b, its byline and its photo credit included, recurs as a block


def test_a_menu_printed_the_same_way_everywhere_is_listed(tmp_path):
    menu = ["Visit also", "Partner site", "Our newsletter"]
    raw = write_dumps(tmp_path / "raw", {
        "a.txt": ["By Ann Lee", paragraph("pipeline")] + menu,
        "b.txt": ["By Bo Chan", paragraph("election")] + menu,
    })
    assert set(found(raw)) == set(menu)


def test_a_long_footer_after_different_articles_is_listed(tmp_path):
    footer = paragraph("Steppe Institute, publisher of this review since 2009,")
    raw = write_dumps(tmp_path / "raw", {
        "a.txt": ["By Ann Lee", paragraph("pipeline"), footer],
        "b.txt": ["By Bo Chan", paragraph("election"), footer],
    })
    assert found(raw) == {footer: (2, 2, None)}


def test_nbsp_and_runs_of_spaces_do_not_make_lines_differ(tmp_path):
    raw = write_dumps(tmp_path / "raw", {
        "a.txt": ["By Ann Lee", paragraph("pipeline"), "Share\u00a0this:"],
        "b.txt": ["By Bo Chan", paragraph("election"), "  Share   this:\u00a0"],
    })
    assert found(raw) == {"Share this:": (2, 2, None)}


def test_prints_of_an_article_that_differ_only_in_a_profile_fragment_are_one_article(tmp_path):
    raw = write_dumps(tmp_path / "raw", {
        "a.txt": ["By Ann Lee", paragraph("pipeline") + "![]()", paragraph("railway")],
        "b.txt": ["By Ann Lee", paragraph("pipeline"), paragraph("railway")],
    })
    assert found(raw) == {}
    assert comparable_lines("a.txt", ["  By Ann Lee ", "", "Write to [email protected]."], load_profile("steppe_review")) \
        == ["By Ann Lee", "Write to."]


def test_a_label_recurring_in_one_dump_only_needs_min_dumps_1(tmp_path):
    raw = write_dumps(tmp_path / "raw", {
        "listing.txt": ["By Ann Lee", paragraph("pipeline"), "Published in Analytical Articles",
                        "By Bo Chan", paragraph("election"), "Published in Analytical Articles"],
        "other.txt": ["By Cy Diaz", paragraph("summit")],
    })
    assert found(raw) == {}
    assert found(raw, min_dumps=1) == {"Published in Analytical Articles": (1, 2, "category_label")}


def test_html_and_gzip_dumps_are_read_and_other_files_are_skipped(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.html").write_text(f"<html><body><p>By Ann Lee</p><p>{paragraph('pipeline')}</p>"
                                "<div>Newsletter</div></body></html>", encoding="utf-8")
    with gzip.open(raw / "b.txt.gz", "wt", encoding="utf-8") as fh:
        fh.write(f"By Bo Chan\n{paragraph('election')}\nNewsletter\n")
    (raw / "c.txt").write_bytes(bytes(range(256)) * 4)
    (raw / "notes.pdf").write_bytes(b"%PDF-1.4")
    result = suggest(raw, load_profile("caci"))
    assert result.dumps_read == 2
    assert [(c.text, c.dumps) for c in result.candidates] == [("Newsletter", 2)]
    assert {source for source, _ in result.skipped} == {"c.txt", "notes.pdf"}
    assert any("binary" in reason for _, reason in result.skipped)


def test_only_counters_are_kept_and_text_only_of_recurring_lines():
    counts = LineCounts()
    counts.add_dump(["By Ann Lee", paragraph("pipeline"), "Newsletter"])
    counts.add_dump(["By Bo Chan", paragraph("election"), "Newsletter", "Newsletter"])
    assert sorted(counts.texts.values()) == ["Newsletter"]
    assert counts.dumps_read == 2 and sum(counts.occurrences.values()) == 7


def test_the_command_prints_the_seed_candidates_as_json(capsys):
    assert main(["profile", "suggest", "--raw", str(SEEDS), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["profile"] == "caci" and report["dumps_read"] == 5 and report["skipped"] == []
    assert report["total_candidates"] == len(report["candidates"])
    first = report["candidates"][0]
    assert first["text"].startswith(FOOTER) and (first["dumps"], first["occurrences"]) == (5, 5)
    assert first["covered_by"] == "newsletter_footer"
    texts = [c["text"] for c in report["candidates"]]
    assert "Credit: Wikimedia Commons" in texts and "silkroad" in texts
    assert not any(t.startswith(RECURRING_ARTICLE_LINES) for t in texts)


def test_the_command_prints_a_table_marks_new_lines_and_honours_top(capsys):
    raw = REPO / "tests" / "fixtures" / "steppe_review"
    assert main(["profile", "suggest", "--raw", str(raw), "--top", "3", "--min-dumps", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("5 candidate lines in 3 dumps, 3 shown, 3 of them new to profile caci")
    assert out[2].split() == ["3", "3", "NEW", "Filed", "under:", "Energy"]
    assert len(out) == 2 + 3


def test_the_command_refuses_a_missing_folder_and_a_broken_profile(tmp_path, capsys):
    assert main(["profile", "suggest", "--raw", str(tmp_path / "nope")]) == 2
    broken = tmp_path / "site.toml"
    broken.write_text("name = 'x'\n[[boilerplate]]\ncategory = 'adverts'\n")
    assert main(["profile", "suggest", "--raw", str(tmp_path), "--profile", str(broken)]) == 2
    assert f"{broken}: boilerplate[0]: unknown category 'adverts'" in capsys.readouterr().err


def test_suggest_needs_no_prefect():
    code = ("import sys; from gleaner.cli import main; "
            f"main(['profile', 'suggest', '--raw', {str(SEEDS)!r}]); "
            "assert 'prefect' not in sys.modules, 'prefect was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
