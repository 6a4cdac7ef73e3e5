from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from conftest import SEEDS, seed_lines
from tasks.clean import clean_lines
from tasks.segment import (NumericDate, dump_date_order, parse_authors, parse_date, resolve_numeric_date,
                           segment_lines)

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
    # the body reads as printed: headings stay at the start of their sections' paragraphs
    assert a.body == "\n\n".join([LEDE, "BACKGROUND: The background begins here.", "A second background paragraph.",
                                  "IMPLICATIONS: What follows from it.", "CONCLUSIONS: The end of it."])
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
    assert_conserved(name, lines, profile)


def assert_conserved(name, lines, profile):
    kept, removed = clean_lines(name, lines, profile)
    articles, orphans = segment_lines(name, kept, profile)
    pieces = Counter(line.no for line in kept if line.role == "text")  # a glued byline makes 2
    in_articles = Counter(no for a in articles for no in a.content_lines + a.bio_lines + a.metadata_lines)
    removed_lines = {r.line_no for r in removed + orphans}
    for no, line in enumerate(lines, start=1):
        if line.strip():
            assert in_articles[no] == pieces[no] or (in_articles[no] == 0 and no in removed_lines), \
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


# --- the site's other formats, as seen on its real pages ---------------------------------

WEDNESDAY = 2


def test_bylines_carry_the_issue_date_in_either_order(profile):
    articles, _ = segment([
        "By Hooman Peimani (11/19/2003 issue of the CACI Analyst)", "BACKGROUND: Unlike Tajikistan, it did not.",
        "by Tavus Rejepova (the 08/21/13 issue of the CACI Analyst)", "On August 15, the Prime Minister visited.",
        "by Tavus Rejepova (the 16/10/2013 issue of the CACI Analyst)", "Energy officials signed agreements.",
    ], profile)
    assert [(a.authors, a.published_on) for a in articles] == [
        (["Hooman Peimani"], date(2003, 11, 19)),
        (["Tavus Rejepova"], date(2013, 8, 21)),
        (["Tavus Rejepova"], date(2013, 10, 16)),
    ]
    assert articles[0].lede == "" and articles[0].body.startswith("BACKGROUND: Unlike")


@pytest.mark.parametrize("printed, weekday, dump_order, expected", [
    ("11/19/2003", WEDNESDAY, None, date(2003, 11, 19)),  # only one reading is a date
    ("08/07/2013", WEDNESDAY, None, date(2013, 8, 7)),    # 7 August 2013 was a Wednesday, 8 July a Monday
    ("07/10/2013", WEDNESDAY, "dm", date(2013, 7, 10)),   # the issue weekday outweighs the dump's order
    ("12/3/2003", WEDNESDAY, "md", date(2003, 12, 3)),    # both readings are Wednesdays: the dump decides
    ("12/3/2003", WEDNESDAY, None, None),                 # no evidence: no date rather than a guess
    ("6/6/2001", WEDNESDAY, None, date(2001, 6, 6)),      # both readings are the same day
])
def test_ambiguous_numeric_dates_are_resolved_by_evidence_or_left_null(printed, weekday, dump_order, expected):
    assert resolve_numeric_date(NumericDate.parse(printed), weekday, dump_order) == expected


def test_the_dump_tells_the_order_when_its_unambiguous_dates_agree():
    assert dump_date_order([NumericDate.parse(d) for d in ("11/19/2003", "12/3/2003")]) == "md"
    assert dump_date_order([NumericDate.parse(d) for d in ("19/11/2003", "3/12/2003")]) == "dm"
    assert dump_date_order([NumericDate.parse(d) for d in ("19/11/2003", "11/20/2003")]) is None
    assert NumericDate.parse("08/21/13").year == 2013 and NumericDate.parse("5/1/98").year == 1998


def test_an_ambiguous_issue_date_is_read_in_the_order_of_the_dump(profile):
    articles, _ = segment([
        "By Jane Roe (12/3/2003 issue of the CACI Analyst)", "Text one.",
        "By John Doe (11/19/2003 issue of the CACI Analyst)", "Text two.",
    ], profile)
    assert [a.published_on for a in articles] == [date(2003, 12, 3), date(2003, 11, 19)]


@pytest.mark.parametrize("line, expected", [
    ("November 16th, 2015, The CACI Analyst", date(2015, 11, 16)),
    ("January 28, 2021, the CACI Analyst", date(2021, 1, 28)),
    ("Tuesday, 05 March 2013 09:15", date(2013, 3, 5)),
    ("2013-03-05", date(2013, 3, 5)),
    ("November 19th, the CACI Analyst", None),
])
def test_date_lines_in_every_form_are_metadata(profile, line, expected):
    articles, _ = segment(["By Eka Janashia", line, "In mid-October, the prosecutor visited Georgia."], profile)
    [a] = articles
    assert a.published_on == expected
    assert a.lede == "In mid-October, the prosecutor visited Georgia."
    assert a.metadata_lines == [1, 2]


def test_by_empty_means_no_author(profile):
    articles, _ = segment(["Published in News Digest", "By empty (4/18/2002 issue of the CACI Analyst)",
                           "At least 21 members of the police were killed."], profile)
    [a] = articles
    assert (a.authors, a.published_on, a.category) == ([], date(2002, 4, 18), "News Digest")


def test_an_affiliation_after_a_comma_is_no_second_author(profile):
    articles, _ = segment(["By Jane Roe, Tbilisi", "The parliament voted on Tuesday.",
                           "By Ana Roe, Bo Doe and Cy Poe", "The summit ended."], profile)
    assert [a.authors for a in articles] == [["Jane Roe"], ["Ana Roe", "Bo Doe", "Cy Poe"]]


def test_a_feature_listing_with_titles_categories_before_entries_and_pdf_links(profile):
    lines = [
        "Friday, 12 July 2024", "Afghanistan Is Still There", "Published in Feature Articles",
        "S. Frederick Starr", "July 12, 2024", "Since the U.S.'s abrupt departure, the Taliban opened contacts.",
        "Click Here to download PDF", "Published in Feature Articles",
        "Ilya Roubanis", "June 6, 2024", "Iran's engagement in the South Caucasus needs a new taxonomy.",
        "Click Here to download PDF",
    ]
    articles, removed = segment(lines, profile)
    assert [(a.authors, a.published_on, a.title, a.category) for a in articles] == [
        (["S. Frederick Starr"], date(2024, 7, 12), "Afghanistan Is Still There", "Feature Articles"),
        (["Ilya Roubanis"], date(2024, 6, 6), None, "Feature Articles"),
    ]
    assert articles[0].lede == "Since the U.S.'s abrupt departure, the Taliban opened contacts."
    assert articles[0].metadata_lines == [1, 2, 4, 5]  # date, title, name and own date of the first entry
    assert sorted((r.line_no, r.category) for r in removed) == [
        (3, "category_label"), (7, "navigation"), (8, "category_label"), (12, "navigation")]
    assert_conserved("listing.txt", lines, profile)


def test_tag_pages_separate_teasers_with_dots(profile):
    articles, removed = segment([
        "By Tomáš Baranec and Beskid Juraj", "May 10th, 2016, The CACI Analyst", "A new wave of escalation hit.",
        ".", "By Emil Souleimanov", "May 12th, 2016, The CACI Analyst", "Due to its unprecedented scale.",
    ], profile)
    assert [(a.authors, a.lede) for a in articles] == [
        (["Tomáš Baranec", "Beskid Juraj"], "A new wave of escalation hit."),
        (["Emil Souleimanov"], "Due to its unprecedented scale.")]
    assert [(r.line_no, r.category) for r in removed] == [(4, "navigation")]


def test_a_news_digest_is_one_article_of_dated_items(profile):
    articles, removed = segment([
        "Wednesday, 25 May 2011", "25 May 2011 News Digest", "Published in News Digest",
        "By Alima Bissenova (5/25/2011 issue of the CACI Analyst)",
        "Two police officers killed in Dagestan", "12 May", "A man shot dead two police officers (Interfax).",
        "OSCE session in Belgrade", "13 May", "Reports of the co-chairs will be heard (Trend).",
    ], profile)
    [a] = articles
    assert (a.authors, a.published_on, a.category, a.title) == (
        ["Alima Bissenova"], date(2011, 5, 25), "News Digest", "25 May 2011 News Digest")
    assert a.lede.startswith("Two police officers killed in Dagestan\n\n12 May")
    assert a.metadata_lines == [1, 2, 4]  # the date and the title above the byline are the digest's
    assert [(r.line_no, r.category) for r in removed] == [(3, "category_label")]


def test_a_byline_glued_to_the_previous_paragraph_opens_the_next_article(profile):
    lines = ["By Jane Roe", "The first article ends here.By John Doe (6/20/2001 issue of the CACI Analyst)",
             "BACKROUND: The second article begins.", "IMPLICATIONS: It goes on."]
    articles, _ = segment(lines, profile)
    assert [(a.authors, a.lede) for a in articles] == [
        (["Jane Roe"], "The first article ends here."), (["John Doe"], "")]
    assert [s.heading for s in articles[1].sections] == ["BACKROUND", "IMPLICATIONS"]
    assert articles[1].published_on == date(2001, 6, 20)
    assert_conserved("glued.txt", lines, profile)


def test_a_byline_glued_to_a_cloaked_email_the_cut_takes_opens_the_next_article(profile):
    """The cloak ends the sentence the byline is glued to: cutting it must not unglue them."""
    cloak = "This email address is being protected from spambots. You need JavaScript enabled to view it."
    lines = ["By Jane Roe", "AUTHOR’S BIO: Jane Roe is a researcher. She can be reached at " + cloak + "By John Doe",
             "His text."]
    articles, removed = segment(lines, profile)
    assert [(a.authors, a.bio, a.lede) for a in articles] == [
        (["Jane Roe"], "Jane Roe is a researcher. She can be reached at", ""), (["John Doe"], None, "His text.")]
    assert [(r.line_no, r.category, r.text) for r in removed] == [(2, "email_protection", cloak)]
    assert_conserved("glued.txt", lines, profile)


def test_an_upper_case_title_is_the_next_articles_title_not_a_section(profile):
    articles, _ = segment(["By Jane Roe", "A teaser that ends.", "KAZAKHSTAN: THE SNAP ELECTION",
                           "By John Doe", "The vote was called early."], profile)
    assert [(a.authors, a.title, [s.heading for s in a.sections]) for a in articles] == [
        (["Jane Roe"], None, []), (["John Doe"], "KAZAKHSTAN: THE SNAP ELECTION", [])]


def test_a_page_without_articles_yields_none_and_keeps_every_line(profile):
    lines = ["Editorial Principles", "The Analyst is a global Web journal devoted to analysis of the region.",
             "The Editor of the Analyst solicits most articles."]
    articles, removed = segment(lines, profile)
    assert articles == []
    assert [(r.line_no, r.category) for r in removed] == [(1, "other"), (2, "other"), (3, "other")]


def test_text_cut_off_mid_sentence_at_the_end_stays_in_the_article(profile):
    articles, _ = segment(["By Eduard Abrahamyan", "April 27th, 2016, The CACI Analyst",
                           "The recent unprecedented escalation around Nagorno-Karabakh highlighted deep i"], profile)
    assert articles[0].lede.endswith("highlighted deep i")


def test_a_listing_prints_date_title_and_category_above_each_byline(profile):
    lines = [
        "Wednesday, 25 May 2011", "Kazakhstan Votes Early", "Published in Field Reports",
        "By Jane Roe", "The president called a snap election.", "Read more...",
        "Wednesday, 11 May 2011", "Kyrgyz Border Talks Resume", "Published in Field Reports",
        "By John Doe", "Talks on the border resumed in Osh.",
    ]
    articles, removed = segment(lines, profile)
    assert [(a.authors, a.published_on, a.title, a.category, a.lede) for a in articles] == [
        (["Jane Roe"], date(2011, 5, 25), "Kazakhstan Votes Early", "Field Reports",
         "The president called a snap election."),
        (["John Doe"], date(2011, 5, 11), "Kyrgyz Border Talks Resume", "Field Reports",
         "Talks on the border resumed in Osh."),
    ]
    assert [(r.line_no, r.category) for r in removed if r.category != "category_label"] == [(6, "navigation")]
    assert_conserved("listing.txt", lines, profile)


def test_a_profile_can_print_written_dates_in_bylines_and_its_own_date_formats(tmp_path):
    from tasks.profile import PROFILES_DIR, load_profile

    text = (PROFILES_DIR / "caci.toml").read_text(encoding="utf-8")
    text = text.replace("byline_date = ", "byline_date = '\\s*\\|\\s*(?P<date>.+)$'\nold_byline_date = ")
    text = text.replace("issue_weekday = ", "formats = ['%d %m %Y', '%B %d %Y']\nissue_weekday = ")
    text = text.replace("line_patterns = [", "line_patterns = [\n    '^(?P<date>\\d{2}\\.\\d{2}\\.\\d{4})$',")
    site = tmp_path / "site.toml"
    site.write_text(text, encoding="utf-8")
    profile = load_profile(str(site))
    articles, _ = segment(["By Jane Roe | March 12, 2024", "The first text.",
                           "By John Doe", "14.03.2024", "The second text."], profile)
    assert [(a.authors, a.published_on) for a in articles] == [
        (["Jane Roe"], date(2024, 3, 12)), (["John Doe"], date(2024, 3, 14))]


def test_a_profile_can_print_section_headings_on_lines_of_their_own(tmp_path):
    from tasks.profile import PROFILES_DIR, load_profile

    text = (PROFILES_DIR / "caci.toml").read_text(encoding="utf-8")
    text = text.replace("bio_label = ", "heading_line = '(?P<heading>THE [A-Z ]+)'\nbio_label = ")
    site = tmp_path / "site.toml"
    site.write_text(text, encoding="utf-8")
    profile = load_profile(str(site))
    lines = ["By Jane Roe", "The lede.", "THE CONTEXT", "First context paragraph.", "Second one.",
             "THE OUTLOOK", "Outlook paragraph.", "AUTHOR'S BIO: Jane Roe writes."]
    [a] = segment(lines, profile)[0]
    assert [(s.heading, s.text) for s in a.sections] == [
        ("THE CONTEXT", "First context paragraph.\n\nSecond one."), ("THE OUTLOOK", "Outlook paragraph.")]
    assert a.body.split("\n\n") == ["The lede.", "THE CONTEXT", "First context paragraph.", "Second one.",
                                    "THE OUTLOOK", "Outlook paragraph."]
    assert a.content_lines == [2, 3, 4, 5, 6, 7]
