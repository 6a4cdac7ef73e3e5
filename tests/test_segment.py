from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from conftest import SEEDS, seed_lines
from tasks.clean import clean_lines
from tasks.segment import parse_authors, parse_date, segment_lines

LEDE = "On March 31, 2025, the Prosecutor General's Office submitted a proposal to the Supreme Court."


def segment(lines, profile):
    kept, removed = clean_lines("dump.txt", lines, profile)
    articles, orphans = segment_lines("dump.txt", kept, profile)
    return articles, removed + orphans


@pytest.mark.parametrize("text, authors", [
    ("Jane Roe", ["Jane Roe"]),
    ("Aigerim Turgunbaeva and Fayazuddin Ghiasi", ["Aigerim Turgunbaeva", "Fayazuddin Ghiasi"]),
    ("Robert M. Cutler", ["Robert M. Cutler"]),
    ("Syed Fazl-e-Haider", ["Syed Fazl-e-Haider"]),
    ("Ana Roe, Bo Doe and Cy Poe", ["Ana Roe", "Bo Doe", "Cy Poe"]),
    ("Aleksandar Ivanović", ["Aleksandar Ivanović"]),
    ("Ludwig van Beethoven & Jane Roe", ["Ludwig van Beethoven", "Jane Roe"]),
])
def test_names_are_split_into_authors(profile, text, authors):
    assert parse_authors(text, profile) == authors


@pytest.mark.parametrize("text", [
    "2022, the foundations for a deepening partnership had been firmly established.",
    "selling the JF-17 Thunder to Azerbaijan, Pakistan has effectively supported China.",
    "Contrast",
    "the way",
])
def test_text_is_not_taken_for_names(profile, text):
    assert parse_authors(text, profile) is None


@pytest.mark.parametrize("text, expected", [
    ("February 21, 2024", date(2024, 2, 21)),
    ("December 8, 2023", date(2023, 12, 8)),
    ("November 16th, 2015", date(2015, 11, 16)),
    ("5 March 2013", date(2013, 3, 5)),
    ("Sept. 31, 2020", None),
])
def test_dates_are_parsed(text, expected):
    assert parse_date(text) == expected


def test_a_full_article_has_lede_sections_and_bio(profile):
    articles, removed = segment([
        "By Jane Roe and John Doe",
        LEDE,
        "Credit: Wikimedia Commons",
        "BACKGROUND: The background begins here.",
        "A second background paragraph.",
        "IMPLICATIONS: What follows from it.",
        "CONCLUSIONS: The end of it.",
        "AUTHORS’ BIOS: Jane Roe is a researcher. John Doe is an analyst.",
    ], profile)
    [a] = articles
    assert (a.kind, a.authors, a.ordinal) == ("full", ["Jane Roe", "John Doe"], 1)
    assert a.lede == LEDE
    assert [(s.heading, s.text) for s in a.sections] == [
        ("BACKGROUND", "The background begins here.\n\nA second background paragraph."),
        ("IMPLICATIONS", "What follows from it."),
        ("CONCLUSIONS", "The end of it."),
    ]
    assert a.body == "\n\n".join([LEDE, "The background begins here.", "A second background paragraph.",
                                  "What follows from it.", "The end of it."])
    assert a.bio == "Jane Roe is a researcher. John Doe is an analyst."
    assert a.word_count == len(a.body.split())
    assert [r.category for r in removed] == ["image_caption"]


def test_lines_that_start_with_by_inside_an_article_are_text(profile):
    articles, _ = segment([
        "By Jane Roe",
        LEDE,
        "BACKGROUND: Something happened.",
        "By 2022, the foundations for a deepening partnership had been firmly established.",
        "By combining pragmatic engagement with rigorous oversight, Russia can advance.",
        "AUTHOR’S BIO: Jane Roe is a researcher.",
    ], profile)
    assert len(articles) == 1
    assert articles[0].sections[0].text.endswith("Russia can advance.")


def test_a_bare_name_after_a_bio_starts_the_next_article(profile):
    articles, _ = segment([
        "By Jane Roe", LEDE, "AUTHOR'S BIO: Jane Roe is a researcher.",
        "Robert M. Cutler", "Azerbaijan's president visited China.", "CONCLUSION: It matters.",
    ], profile)
    assert [a.authors for a in articles] == [["Jane Roe"], ["Robert M. Cutler"]]
    assert articles[1].sections[0].heading == "CONCLUSION"


def test_a_bare_name_inside_running_text_is_text(profile):
    articles, _ = segment(["By Jane Roe", LEDE, "Vladimir Putin", "BACKGROUND: More."], profile)
    assert len(articles) == 1 and "Vladimir Putin" in articles[0].lede


def test_teasers_of_a_listing_with_dates(profile):
    articles, _ = segment([
        "Bayram Balcı", "February 21, 2024", "Kazakhstan has been a key partner for Turkey.",
        "By Halil Karaveli", "February 15, 2022",
        "By Fuad Shahbazov", "January 26, 2022, the CACI Analyst", "On October 6, 2021, Lavrov met his counterpart.",
    ], profile)
    assert [(a.kind, a.authors, a.published_on) for a in articles] == [
        ("teaser", ["Bayram Balcı"], date(2024, 2, 21)),
        ("teaser", ["Halil Karaveli"], date(2022, 2, 15)),
        ("teaser", ["Fuad Shahbazov"], date(2022, 1, 26)),
    ]
    assert articles[1].lede == "" and articles[1].word_count == 0
    assert articles[2].lede.startswith("On October 6, 2021")


def test_title_and_category_lines_follow_their_entry(profile):
    articles, removed = segment([
        "By Nargis Kassenova", "The dramatic events of 2022 upended the relationship.",
        "Read Kazakhstan-Russia Relations After 2022", "Published in Feature Articles",
        "By Stephen Blank", LEDE, "BACKGROUND: Text.", "AUTHOR’S BIO: Bio.", "Published in Analytical Articles",
    ], profile)
    assert [(a.kind, a.title, a.category) for a in articles] == [
        ("teaser", "Kazakhstan-Russia Relations After 2022", "Feature Articles"),
        ("full", None, "Analytical Articles"),
    ]
    assert [r.category for r in removed] == ["title_link", "category_label", "category_label"]


def test_text_before_any_byline_is_kept_as_removed_other(profile):
    articles, removed = segment(["Some stray introduction.", "By Jane Roe", LEDE], profile)
    assert len(articles) == 1
    assert [(r.line_no, r.category, r.text) for r in removed] == [(1, "other", "Some stray introduction.")]


@pytest.mark.parametrize("seed", sorted(p.name[:3] for p in SEEDS.glob("*.txt")))
def test_every_non_blank_line_lands_in_exactly_one_place(profile, seed):
    """Conservation: each non-blank line is in one article (text, bio or metadata: a line
    that lost a fragment still counts as text), or else in removed_text; blank lines nowhere."""
    name, lines = seed_lines(seed)
    kept, removed = clean_lines(name, lines, profile)
    articles, orphans = segment_lines(name, kept, profile)
    in_articles = Counter(no for a in articles for no in a.content_lines + a.bio_lines + a.metadata_lines)
    removed_lines = {r.line_no for r in removed + orphans}
    for no, line in enumerate(lines, start=1):
        if line.strip():
            assert in_articles[no] == 1 or (in_articles[no] == 0 and no in removed_lines), \
                f"{name}:{no} is in {in_articles[no]} article places: {line[:60]!r}"
        else:
            assert in_articles[no] == 0 and no not in removed_lines, f"blank line {name}:{no} was used"


def test_seed_000_articles(profile):
    name, lines = seed_lines("000")
    articles, _ = segment_lines(name, clean_lines(name, lines, profile)[0], profile)
    assert [a.authors for a in articles] == [
        ["Aigerim Turgunbaeva", "Fayazuddin Ghiasi"], ["Chimguundari Navaan-Yunden", "Tuvshinzaya Gantulga"],
        ["Robert M. Cutler"], ["Syed Fazl-e-Haider"]]
    assert all(a.kind == "full" for a in articles)
    assert [s.heading for s in articles[3].sections] == ["BACKGROUND", "IMPLICATIONS", "CONCLUSION"]
    assert articles[3].bio.endswith("He is reachable by email at.")
    assert "spambots" not in articles[3].bio
