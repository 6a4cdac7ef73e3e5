from __future__ import annotations

import pytest

from conftest import SEEDS, seed_lines
from tasks.clean import clean_lines

CLOAK = "This email address is being protected from spambots. You need JavaScript enabled to view it."


def removed_of(lines, profile):
    kept, removed = clean_lines("dump.txt", lines, profile)
    return kept, [(r.line_no, r.category, r.text) for r in removed]


@pytest.mark.parametrize("line, category", [
    ("The Central Asia-Caucasus Analyst is a biweekly publication of the Central Asia-Caucasus Institute.",
     "newsletter_footer"),
    ("Sign up for upcoming events, latest news, and articles from the CACI Analyst.", "newsletter_footer"),
    ("Sign up for upcoming events, latest news and articles from the CACI Analyst", "newsletter_footer"),
    ("Newsletter", "newsletter_footer"),
    ("Feature Articles", "navigation"),
    ("|", "navigation"),
    ("turkeyanalyst", "navigation"),
    (CLOAK, "email_protection"),
    ("Email: " + CLOAK, "email_protection"),
    ("This e-mail address is being protected from spambots. You need JavaScript enabled to view it.",
     "email_protection"),
    ("Credit: Wikimedia Commons", "image_caption"),
    ("City of Kabul (Image Courtesy of Pexel)", "image_caption"),
    ("Screenshot 2025-11-18 at 2.07.27 PM", "image_caption"),
    ("pexels-qasimmirzaie-19127799 copy", "image_caption"),
    ("Armenia and Israel Flags against Blue Sky · Free Stock Photo", "image_caption"),
    ("kabul_market.jpg", "image_caption"),
    ("Image source: Kremlin.ru", "image_caption"),
    ("Photo by Jane Roe/Reuters", "image_caption"),
    ("PHOTO: AFP", "image_caption"),
])
def test_whole_boilerplate_lines_are_removed_with_their_category(profile, line, category):
    kept, removed = removed_of(["Some text of the article.", line], profile)
    assert [k.text for k in kept] == ["Some text of the article."]
    assert removed == [(2, category, line)]


def test_nbsp_padding_and_inner_nbsp_do_not_hide_boilerplate(profile):
    line = "\u00a0 \u00a0 Credit: Wikimedia\u00a0Commons"
    kept, removed = removed_of([line], profile)
    assert kept == [] and removed == [(1, "image_caption", "Credit: Wikimedia Commons")]


def test_cloaked_email_inside_a_sentence_is_cut_as_a_fragment(profile):
    line = f"He can be reached at  {CLOAK} ."
    kept, removed = removed_of([line], profile)
    assert removed == [(1, "email_protection", CLOAK)]
    assert [k.text for k in kept] == ["He can be reached at."]


def test_image_markdown_residue_is_cut_from_running_text(profile):
    kept, removed = removed_of(["The tensions eased by mid-2024.![]()"], profile)
    assert removed == [(1, "image_caption", "![]()")]
    assert kept[0].text == "The tensions eased by mid-2024."


@pytest.mark.parametrize("boilerplate, category", [
    ("Read more...", "navigation"),
    ("Credit: Wikimedia Commons.", "image_caption"),
    ("![](kabul.jpg)", "image_caption"),
    (CLOAK, "email_protection"),
])
def test_boilerplate_right_before_a_glued_byline_is_removed_and_the_byline_kept(profile, boilerplate, category):
    """A glued byline is cut off before cleaning: each part is cleaned as a line of its own."""
    kept, removed = removed_of(["Some text of the article.", boilerplate + "By John Doe"], profile)
    assert [(k.no, k.text) for k in kept] == [(1, "Some text of the article."), (2, "By John Doe")]
    assert removed == [(2, category, boilerplate)]


def test_published_in_and_read_lines_are_removed_but_kept_as_metadata(profile):
    kept, removed = removed_of(["Published in Analytical Articles", "Read Russia and the Taliban: A Reset"], profile)
    assert removed == [(1, "category_label", "Published in Analytical Articles"),
                       (2, "title_link", "Read Russia and the Taliban: A Reset")]
    assert [(k.role, k.text) for k in kept] == [("category", "Analytical Articles"),
                                                ("title", "Russia and the Taliban: A Reset")]


@pytest.mark.parametrize("line", [
    "By combining pragmatic engagement with rigorous oversight, Russia can advance its objective.",
    "AFPC analysts noted that the Credit: line was missing from the report.",
    "Read together, these statements show a shift in Moscow's policy.",
    "The newsletter of the ministry reported the decision on Monday.",
    "Photo by photo, the exhibition traced the city's history across two centuries of its growth and decline.",
    "Source: the ministry said that the talks would resume in Ashgabat next week, after the holidays ended.",
])
def test_content_that_resembles_boilerplate_is_kept(profile, line):
    kept, removed = removed_of([line], profile)
    assert removed == [] and [k.text for k in kept] == [line]


def test_blank_and_nbsp_only_lines_vanish_and_line_numbers_hold(profile):
    kept, removed = removed_of(["", "\u00a0", "First paragraph.", "   ", "Second paragraph."], profile)
    assert [(k.no, k.text) for k in kept] == [(3, "First paragraph."), (5, "Second paragraph.")]
    assert removed == []


@pytest.mark.parametrize("seed", sorted(p.name[:3] for p in SEEDS.glob("*.txt")))
def test_cleaning_is_idempotent_on_every_seed(profile, seed):
    name, lines = seed_lines(seed)
    kept, _ = clean_lines(name, lines, profile)
    text_lines = [k.text for k in kept if k.role == "text"]
    again, removed_again = clean_lines(name, text_lines, profile)
    assert removed_again == []
    assert [k.text for k in again] == text_lines


def test_seed_002_boilerplate_is_all_removed(profile):
    name, lines = seed_lines("002")
    _, removed = clean_lines(name, lines, profile)
    by_category = {}
    for r in removed:
        by_category.setdefault(r.category, []).append(r.line_no)
    assert by_category == {
        "title_link": [5],
        "image_caption": [7, 16, 57, 98, 146, 148],
        "category_label": [9, 50, 92, 140, 180],
        "email_protection": [88, 136],
        "navigation": [182, 184, 186, 188, 190],
        "newsletter_footer": [192, 194, 196, 198],
    }
