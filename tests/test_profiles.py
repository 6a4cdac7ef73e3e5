"""Site profiles as data: a second publication, The Steppe Review, read by its profile alone."""
from __future__ import annotations

import shutil
from collections import Counter
from datetime import date

import gleaner
import pytest

from conftest import REPO
from tasks.clean import clean_lines
from tasks.extract import split_lines
from tasks.profile import PROFILES_DIR, ProfileError, load_profile
from tasks.segment import segment_lines

STEPPE_DUMPS = REPO / "tests" / "fixtures" / "steppe_review"
STEPPE_PROFILE = PROFILES_DIR / "steppe_review.toml"
WEEKLY_1, WEEKLY_2, LISTING = "2024-03-15_weekly.txt", "2024-03-22_weekly.txt", "2024-03-29_more.txt"
HYDROGEN = "Kazakhstan Bets on Green Hydrogen"
MEDIA_LAW = "Kyrgyzstan Tightens Its Grip on the Press"
ROGUN = "Tajikistan's Rogun Dam Draws New Lenders"


def read_dump(name: str, profile: str):
    lines = split_lines((STEPPE_DUMPS / name).read_text(encoding="utf-8"))
    site = load_profile(profile)
    kept, removed = clean_lines(name, lines, site)
    articles, orphans = segment_lines(name, kept, site)
    return lines, articles, removed + orphans


def test_the_steppe_review_profile_reads_its_full_articles():
    _, articles, removed = read_dump(WEEKLY_1, "steppe_review")
    hydrogen, media_law = articles
    assert (hydrogen.kind, hydrogen.authors, hydrogen.published_on, hydrogen.title, hydrogen.category) == \
        ("full", ["Jane Roe"], date(2024, 3, 12), HYDROGEN, "Energy")
    assert [s.heading for s in hydrogen.sections] == ["THE CONTEXT", "WHAT IT MEANS", "OUTLOOK"]
    assert hydrogen.sections[0].text.startswith("The project plans forty gigawatts")
    assert hydrogen.lede.startswith("Kazakhstan has signed") and "Photo:" not in hydrogen.body
    assert hydrogen.bio == ("Jane Roe is the energy editor of The Steppe Review, based in Almaty. "
                            "She can be reached at.")
    assert (media_law.authors, media_law.published_on, media_law.title, media_law.category) == \
        (["Aibek Sultanov", "Mira Petrova"], date(2024, 3, 10), MEDIA_LAW, "Politics")
    assert [s.heading for s in media_law.sections] == ["THE CONTEXT", "WHAT IT MEANS"]
    assert media_law.bio.startswith("Aibek Sultanov is a journalist in Bishkek.")
    assert Counter(r.category for r in removed) == {
        "navigation": 8, "category_label": 2, "image_caption": 2, "newsletter_footer": 2, "email_protection": 1}
    assert [r.text for r in removed if r.category == "email_protection"] == ["[email protected]"]


def test_the_steppe_review_profile_reads_a_reprint_and_a_listing():
    _, (rogun, reprint), removed = read_dump(WEEKLY_2, "steppe_review")
    assert (rogun.authors, rogun.published_on, rogun.title, rogun.category) == \
        (["Mira Petrova"], date(2024, 3, 19), ROGUN, "Infrastructure")
    assert [s.heading for s in rogun.sections] == ["THE CONTEXT", "OUTLOOK"]
    assert (reprint.title, reprint.authors) == (HYDROGEN, ["Jane Roe"])
    # the caption padded with NBSPs is a caption all the same
    assert "Photo: Nozim Kalandarov / The Steppe Review" in [r.text for r in removed if r.category == "image_caption"]

    _, teasers, removed = read_dump(LISTING, "steppe_review")
    assert [(t.kind, t.authors, t.published_on, t.title, t.category) for t in teasers] == [
        ("teaser", ["Jane Roe"], date(2024, 3, 12), HYDROGEN, "Energy"),
        ("teaser", ["Aibek Sultanov", "Mira Petrova"], date(2024, 3, 10), MEDIA_LAW, "Politics"),
    ]
    assert Counter(r.category for r in removed) == {
        "category_label": 2, "title_link": 2, "newsletter_footer": 2, "navigation": 1}


@pytest.mark.parametrize("name", [WEEKLY_1, WEEKLY_2, LISTING])
def test_every_line_of_a_steppe_dump_lands_in_one_place_and_none_is_left_over(name):
    lines, articles, removed = read_dump(name, "steppe_review")
    placed = [no for a in articles for no in a.content_lines + a.bio_lines + a.metadata_lines]
    whole_lines = {r.line_no for r in removed if r.category != "email_protection"}  # fragments share a line
    assert len(placed) == len(set(placed)) and not whole_lines & set(placed)
    assert set(placed) | whole_lines == {no for no, line in enumerate(lines, start=1) if line.strip()}
    assert not [r for r in removed if r.category == "other"]


@pytest.mark.parametrize("name", [WEEKLY_1, WEEKLY_2, LISTING])
def test_the_caci_profile_does_not_read_the_steppe_review(name):
    # Same code, same dumps, the other site's profile: no byline, date, section or bio is
    # recognised, and the share widgets and footer are not taken for boilerplate.
    _, articles, removed = read_dump(name, "caci")
    assert articles == []
    other = {r.text for r in removed if r.category == "other"}
    assert {"Written by Jane Roe", "Get The Steppe Review in your inbox every Friday."} <= other
    assert not {"navigation", "newsletter_footer", "category_label", "email_protection"} & {r.category for r in removed}


def test_a_run_with_the_steppe_review_profile_fills_the_warehouse(prefect_server, tmp_path):
    from flows.ingest import ingest

    raw = tmp_path / "raw"
    shutil.copytree(STEPPE_DUMPS, raw)
    warehouse = tmp_path / "wh"
    state = ingest(str(raw), str(warehouse), profile=str(STEPPE_PROFILE), return_state=True)
    summary = state.result(raise_on_failure=False)
    assert state.is_completed(), summary
    assert (summary.dumps_loaded, summary.articles_new, summary.occurrences) == (3, 3, 6)
    with gleaner.connect(warehouse) as con:
        articles = con.execute("""SELECT title, kind, authors, published_on, category, bio IS NOT NULL
                                  FROM articles ORDER BY title""").fetchall()
        sections = con.execute("""SELECT list(s.heading ORDER BY s.ordinal) FROM article_sections s
                                  JOIN articles a USING (article_id) WHERE a.title = ?""", [HYDROGEN]).fetchone()[0]
        removed = dict(con.execute("SELECT category, count(*) FROM removed_text GROUP BY ALL").fetchall())
    assert articles == [
        (HYDROGEN, "full", ["Jane Roe"], date(2024, 3, 12), "Energy", True),
        (MEDIA_LAW, "full", ["Aibek Sultanov", "Mira Petrova"], date(2024, 3, 10), "Politics", True),
        (ROGUN, "full", ["Mira Petrova"], date(2024, 3, 19), "Infrastructure", True),
    ]  # the reprint and the two teasers are occurrences of the full articles
    assert sections == ["THE CONTEXT", "WHAT IT MEANS", "OUTLOOK"]
    assert removed == {"navigation": 17, "category_label": 6, "image_caption": 4, "newsletter_footer": 6,
                       "email_protection": 2, "title_link": 2}


def broken_profile(tmp_path, old: str, new: str):
    text = STEPPE_PROFILE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "broken.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


@pytest.mark.parametrize("old, new, message", [
    ("bio_label = '^About the author:\\s*'", "bio_label = '^About the author(:\\s*'",
     "segment.bio_label: bad regular expression"),
    ('category = "image_caption"', 'category = "photo_credit"', "boilerplate[3]: unknown category 'photo_credit'"),
    ("bio_label = '^About the author:\\s*'\n", "", "missing setting 'bio_label'"),
])
def test_a_broken_profile_is_refused_naming_the_file_and_the_setting(tmp_path, old, new, message):
    path = broken_profile(tmp_path, old, new)
    with pytest.raises(ProfileError) as refused:
        load_profile(str(path))
    assert str(refused.value).startswith(f"{path}: ") and message in str(refused.value)
