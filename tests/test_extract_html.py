"""HTML dumps: one line per block, and the page's boilerplate cut out and logged.

The fixtures under tests/fixtures/html/ are pages of the site (Joomla 3 + K2): an article
page, a category listing, and two seed dumps of data/raw/ rendered as the site's pages.
"""
from __future__ import annotations

import dataclasses
import re
import tomllib
from collections import Counter
from datetime import date
from pathlib import Path

import gleaner
import pytest

from conftest import SEEDS
from tasks.clean import clean_dump
from tasks.discover import inspect_file
from tasks.extract import extract_dump, html_to_lines
from tasks.profile import PROFILES_DIR, HtmlProfile, HtmlRule, ProfileError, parse_profile
from tasks.segment import segment_dump

FIXTURES = Path(__file__).parent / "fixtures" / "html"
NOTICE = "This email address is being protected from spambots. You need JavaScript enabled to view it."
# The seed dumps and their HTML renderings (002 gzip-compressed).
SEED_PAGES = [
    ("000_ec62e7c771cbac5e.txt", "seed_000_ec62e7c771cbac5e.html"),
    ("002_6e42fd3a90233009.txt", "seed_002_6e42fd3a90233009.html.gz"),
]
ARTICLE_FIELDS = ("authors", "published_on", "title", "category", "kind", "lede", "body", "sections", "bio")
# Markers of boilerplate that must reach no article's text.
BOILERPLATE_MARKERS = (
    "protected from spambots", "JavaScript enabled", "biweekly publication", "Sign up for upcoming events",
    "Click here to download", "Credit: Wikimedia", "Image Courtesy", "Screenshot 2025", "pexels-", ".jpg",
    ".png", "font size", "Tweet", "Earlier Articles", "Visit also", "Read more", "Tagged under",
    "More in this category", "Back to Top", "document.getElementById", "GoogleAnalyticsObject",
)


def run(path: Path, profile):
    """extract -> clean -> segment, as the flow runs them."""
    dump = inspect_file(path, path.parent)
    extracted = extract_dump(dump, profile)
    return extracted, segment_dump(clean_dump(extracted, profile), profile)


def article_texts(segmented) -> list[str]:
    return [t for a in segmented.articles for t in (a.lede, a.body, a.bio or "")]


def page(body: str) -> str:
    return f"<!DOCTYPE html><html><head><title>Page</title></head><body>{body}</body></html>"


def cut(html: str, profile):
    lines, removed = html_to_lines(page(html), profile, "page.html")
    return lines, [(r.line_no, r.category, r.text) for r in removed]


# --- the seed dumps as pages: the same articles as their text dumps -------------------------


@pytest.mark.parametrize("seed, html", SEED_PAGES)
def test_a_seed_page_gives_the_articles_of_its_text_dump(profile, seed, html):
    _, from_text = run(SEEDS / seed, profile)
    extracted, from_html = run(FIXTURES / html, profile)
    assert extracted.dump.format == ("html.gz" if html.endswith(".gz") else "html")
    assert len(from_html.articles) == len(from_text.articles) >= 4
    for t, h in zip(from_text.articles, from_html.articles):
        for name in ARTICLE_FIELDS:
            assert getattr(h, name) == getattr(t, name), f"article {t.ordinal}: {name} differs"


@pytest.mark.parametrize("seed, html", SEED_PAGES)
def test_a_seed_page_logs_the_boilerplate_its_text_dump_logs(profile, seed, html):
    """Whatever the text dump's boilerplate is, the page's is logged with the same category
    and text (the page holds more: menus, toolbars, file names)."""
    _, from_text = run(SEEDS / seed, profile)
    _, from_html = run(FIXTURES / html, profile)
    text_removed = Counter((r.category, r.text) for r in from_text.removed)
    html_removed = Counter((r.category, r.text) for r in from_html.removed)
    assert not text_removed - html_removed
    assert {"navigation", "image_caption", "email_protection", "newsletter_footer"} <= {c for c, _ in html_removed}


@pytest.mark.parametrize("seed, html", SEED_PAGES)
def test_no_boilerplate_of_a_seed_page_reaches_an_article(profile, seed, html):
    extracted, segmented = run(FIXTURES / html, profile)
    texts = article_texts(segmented)
    for marker in BOILERPLATE_MARKERS:
        assert not any(marker in t for t in texts), marker
    for r in extracted.removed:
        if len(r.text) >= 15:
            assert not any(r.text in t for t in texts), r
        assert not any(r.text == p for t in texts for p in t.split("\n\n")), r


@pytest.mark.parametrize("html", [h for _, h in SEED_PAGES] + ["article_item.html", "category_listing.htm"])
def test_every_line_of_a_page_is_accounted_for(profile, html):
    extracted, segmented = run(FIXTURES / html, profile)
    placed = {n for a in segmented.articles for n in a.content_lines + a.bio_lines + a.metadata_lines}
    removed = {r.line_no for r in segmented.removed}
    nonblank = {n for n, line in enumerate(extracted.lines, start=1) if line.strip()}
    assert nonblank <= placed | removed
    assert all(1 <= r.line_no <= len(extracted.lines) for r in segmented.removed)
    # a removed block leaves a blank line where it stood, never an empty page
    assert removed - nonblank and nonblank


# --- an article page (K2 item view) ------------------------------------------------------------


@pytest.fixture(scope="module")
def article_page(profile):
    return run(FIXTURES / "article_item.html", profile)


def test_an_article_page_gives_its_article(article_page):
    _, segmented = article_page
    [a] = segmented.articles
    assert (a.kind, a.authors, a.published_on) == ("full", ["Dana Abenova"], date(2025, 5, 14))
    assert (a.title, a.category) == ("Kazakhstan Bets on Caspian Ferries to Unclog the Middle Corridor",
                                     "Analytical Articles")
    assert [s.heading for s in a.sections] == ["BACKGROUND", "IMPLICATIONS", "CONCLUSIONS"]
    assert a.lede.startswith("In April 2025, Kazakhstan’s national railway company ordered four new rail ferries")
    # inline markup (<em>, <a>, <strong>) does not split a paragraph
    assert "the Middle Corridor from absorbing the cargo" in a.lede
    assert "according to the route’s international association. Most of that cargo" in a.sections[0].text
    assert len(a.body.split("\n\n")) == 6  # one line per <p>: lede, and two in each section but the last
    # the cloaked address is cut out of the bio; the sentence around it stays
    assert a.bio == ("Dana Abenova is a researcher on transport and logistics in Central Asia. "
                     "She can be reached at.")
    for marker in BOILERPLATE_MARKERS:
        assert not any(marker in t for t in article_texts(segmented)), marker


def test_an_article_page_logs_each_kind_of_boilerplate_with_its_category(article_page):
    extracted, _ = article_page
    logged = {(r.category, r.text) for r in extracted.removed}
    assert {
        # header, menu, breadcrumbs, sidebar
        ("navigation", "Home"), ("navigation", "Field Reports"), ("navigation", "Home /"),
        ("navigation", "Visit also"), ("navigation", "silkroad"),
        # K2 toolbar: font size, print, e-mail; tags; social sharing; item navigation
        ("navigation", "font size decrease font size increase font size"), ("navigation", "Print"),
        ("navigation", "Email"), ("navigation", "Tagged under"), ("navigation", "Tweet"),
        ("navigation", "back to top"), ("navigation", "Click here to download PDF"),
        # image block: alt text, file name, caption, credits
        ("image_caption", "Ferry terminal at the port of Kuryk"),
        ("image_caption", "8b1d0c3e58a7f1a2c9e0d2b4f6a81c3d_L.jpg"),
        ("image_caption", "The ferry terminal at Kuryk, south of Aktau."),
        ("image_caption", "Photo: Wikimedia Commons"),
        # footer
        ("newsletter_footer", "Newsletter"),
        ("newsletter_footer", "Sign up for upcoming events, latest news, and articles from the CACI Analyst."),
        ("email_protection", NOTICE),
    } <= logged
    assert any(c == "newsletter_footer" and t.startswith("The Central Asia-Caucasus Analyst is a biweekly")
               for c, t in logged)
    assert {r.category for r in extracted.removed} <= {"navigation", "image_caption", "email_protection",
                                                       "newsletter_footer"}


def test_removals_point_at_the_line_where_they_stood(article_page):
    extracted, _ = article_page
    lines = extracted.lines
    no = {text: n for n, text in enumerate(lines, start=1) if text}
    bio = next(n for n, text in enumerate(lines, start=1) if text.startswith("AUTHOR’S BIO:"))
    where = {r.text: r.line_no for r in extracted.removed}
    # the cloaking notice: logged once, on the bio line it was cut out of
    assert [r.line_no for r in extracted.removed if r.category == "email_protection"] == [bio]
    # the PDF link stood alone in its paragraph, between the bio and 'Published in ...'
    assert bio < where["Click here to download PDF"] < no["Published in Analytical Articles"]
    assert lines[where["Click here to download PDF"] - 1] == ""
    # the menu before the byline, the image block after it, the footer after everything
    assert where["Field Reports"] < no["By Dana Abenova"] < where["Photo: Wikimedia Commons"] < no[lines[bio - 1]]
    assert where["Newsletter"] > no["Published in Analytical Articles"]


def test_scripts_and_styles_never_reach_the_text(article_page):
    extracted, _ = article_page
    everything = extracted.lines + [r.text for r in extracted.removed]
    for code in ("getElementById", "innerHTML", "GoogleAnalyticsObject", "@context", "margin-bottom", "{"):
        assert not any(code in text for text in everything), code


# --- a listing page (K2 category view) ---------------------------------------------------------


def test_a_listing_page_gives_its_teasers(profile):
    extracted, segmented = run(FIXTURES / "category_listing.htm", profile)
    got = [(a.kind, a.authors, a.published_on, a.title, a.category) for a in segmented.articles]
    assert got == [
        ("teaser", ["Ilyas Mammadov"], date(2025, 5, 28), "Turkmen Gas and the Trans-Caspian Pipeline, Again",
         "Analytical Articles"),
        ("teaser", ["Nodira Rashidova", "Mark Olsen"], date(2025, 5, 14), "Uzbekistan’s Water Diplomacy Turns South",
         "Analytical Articles"),
        ("teaser", ["Giorgi Beridze"], date(2025, 4, 30), "Georgia Revives the Anaklia Port Project",
         "Analytical Articles"),
    ]
    # a <br> inside the intro text ends a line; the link and emphasis in it do not
    assert segmented.articles[1].lede.split("\n\n") == [
        "The Qosh Tepa canal that the Taliban are digging in northern Afghanistan will divert up to a fifth "
        "of the Amu Darya’s flow.",
        "Tashkent has chosen engagement over protest, and is now negotiating technical cooperation on the "
        "canal’s design.",
    ]
    assert "European buyers are listening" in segmented.articles[0].lede
    assert "the Trans-Caspian Pipeline have not gone away." in segmented.articles[0].lede
    logged = Counter((r.category, r.text) for r in extracted.removed)
    assert logged[("navigation", "Read more...")] == 3
    assert logged[("navigation", "Page 1 of 146")] == logged[("navigation", "Next")] == 1
    assert logged[("image_caption", "Gas field in Turkmenistan")] == logged[("image_caption", "f3a91b0c2d_M.jpg")] == 1
    for marker in BOILERPLATE_MARKERS:
        assert not any(marker in t for t in article_texts(segmented)), marker


# --- each rule on its own ----------------------------------------------------------------


@pytest.mark.parametrize("snippet, category, text", [
    ('<figure><img src="/i/a.jpg" alt=""><figcaption>Pipeline near Baku</figcaption></figure>',
     "image_caption", "Pipeline near Baku"),
    ('<p class="caption">Credit: Reuters</p>', "image_caption", "Credit: Reuters"),
    ('<div class="itemImageBlock"><span class="itemImageCredits">Photo: AP</span></div>', "image_caption", "Photo: AP"),
    ('<p><img src="/images/2025/Kabul%20street.jpg?w=600" alt="A street in Kabul"></p>',
     "image_caption", "A street in Kabul"),
    ('<p><img src="/images/2025/Kabul%20street.jpg?w=600" alt="A street in Kabul"></p>',
     "image_caption", "Kabul street.jpg"),
    ('<nav><ul><li><a href="/">Home</a></li></ul></nav>', "navigation", "Home"),
    ('<header class="header"><a href="/">The Analyst</a></header>', "navigation", "The Analyst"),
    ('<aside><h3>Latest</h3></aside>', "navigation", "Latest"),
    ('<ul class="menu"><li><a href="/events">Events</a></li></ul>', "navigation", "Events"),
    ('<ul class="breadcrumb"><li><a href="/">Home</a> / </li><li>Articles</li></ul>', "navigation", "Articles"),
    ('<div class="pagination"><a href="?start=10">Next</a></div>', "navigation", "Next"),
    ('<div class="itemToolbar"><a class="itemPrintLink" href="?print=1">Print</a></div>', "navigation", "Print"),
    ('<div class="itemSocialSharing"><a class="twitter-share-button">Tweet</a></div>', "navigation", "Tweet"),
    ('<div class="icons"><ul><li class="email-icon"><a href="/mailto">Email</a></li></ul></div>',
     "navigation", "Email"),
    ('<p><a href="/pdf/1.pdf">Click here to download PDF</a></p>', "navigation", "Click here to download PDF"),
    ('<div class="catItemReadMore"><a class="k2ReadMore" href="/item/1">Read more...</a></div>',
     "navigation", "Read more..."),
    ('<footer><p>Sign up for upcoming events, latest news, and articles from the CACI Analyst.</p></footer>',
     "newsletter_footer", "Sign up for upcoming events, latest news, and articles from the CACI Analyst."),
])
def test_each_kind_of_boilerplate_is_cut_and_logged_with_its_category(profile, snippet, category, text):
    lines, removed = cut(f"<p>Before it.</p>{snippet}<p>After it.</p>", profile)
    assert [line for line in lines if line] == ["Before it.", "After it."]
    [line_no] = [n for n, c, t in removed if (c, t) == (category, text)]
    assert lines[line_no - 1] == ""  # it stood between the two paragraphs, on a line of its own
    assert 1 < line_no < lines.index("After it.") + 1


def test_the_cloaking_notice_is_cut_from_its_sentence_and_logged_once(profile):
    lines, removed = cut(
        '<p>Before it.</p><p>She can be reached at <span id="cloak5f2a">' + NOTICE + '</span>'
        "<script type='text/javascript'>document.getElementById('cloak5f2a').innerHTML = '';"
        "var addy5f2a = 'jane' + '&#64;' + 'example.org';</script> .</p>", profile)
    assert lines == ["Before it.", "She can be reached at."]
    assert removed == [(2, "email_protection", NOTICE)]


def test_a_label_the_cloaking_leaves_alone_goes_with_it(profile):
    lines, removed = cut(f'<p>AUTHOR’S BIO: Jane Roe is a researcher.<br>Email: <span id="cloak9">{NOTICE}</span>'
                         "<script>document.write('x');</script></p>", profile)
    assert lines == ["AUTHOR’S BIO: Jane Roe is a researcher.", ""]
    assert removed == [(2, "email_protection", f"Email: {NOTICE}")]


def test_blocks_and_breaks_make_lines_and_inline_markup_does_not(profile):
    lines, removed = cut(
        "<h1>A <em>title</em></h1><div>By <a href='/a'>Jane <strong>Roe</strong></a></div>"
        "<p>First <b>bold</b>, <i>italic</i>   and\n  <a href='#'>linked</a> words.</p>"
        "<p>One run<br>another run<br/><br/>a third</p><ul><li>Item one</li><li>Item <span>two</span></li></ul>"
        "<h3>Heading</h3><blockquote>Quoted</blockquote><table><tr><td>Cell</td></tr></table>", profile)
    assert lines == ["A title", "By Jane Roe", "First bold, italic and linked words.", "One run", "another run",
                     "a third", "Item one", "Item two", "Heading", "Quoted", "Cell"]
    assert removed == []


def test_the_profile_says_which_inline_elements_are_lines(profile):
    html = ('<div class="itemHeader"><span class="itemAuthor">By Jane Roe</span>'
            '<span class="itemDateCreated">May 14, 2025</span></div>')
    assert cut(html, profile)[0] == ["By Jane Roe", "May 14, 2025"]
    bare = dataclasses.replace(profile, html=dataclasses.replace(profile.html, blocks=()))
    assert cut(html, bare)[0] == ["By Jane RoeMay 14, 2025"]


def test_broken_html_still_extracts(profile):
    broken = ("<html><body><div class='itemFullText'><p>First paragraph<p>Second <b>bold <i>and italic</p>"
              "<li>An item<li>Another</ul></span></div></div><nav><a href='/'>Home</nav>"
              "<p>Last paragraph &amp; &rsquo;entities&#8217; &nbsp;here<div>unclosed")
    lines, removed = html_to_lines(broken, profile, "broken.html")
    assert [line for line in lines if line] == ["First paragraph", "Second bold and italic", "An item", "Another",
                                                "Last paragraph & ’entities’ \xa0here", "unclosed"]
    assert [(r.category, r.text) for r in removed] == [("navigation", "Home")]


def test_scripts_styles_and_comments_are_dropped_unlogged(profile):
    lines, removed = cut(
        "<style>p { color: red; }</style><p>Kept <script>var a = '</p><p>not text';</script>text.</p>"
        "<!-- a comment --><noscript>Enable JavaScript</noscript><template><p>Template</p></template>"
        "<script type='application/ld+json'>{\"@type\": \"Article\"}</script><p>More text.</p>", profile)
    assert lines == ["Kept text.", "More text."]
    assert removed == []


def with_rules(profile, *rules: tuple[str, str], blocks: tuple[str, ...] = ()):
    """The profile with [html] rules (selector, category) of its own."""
    return dataclasses.replace(profile, html=HtmlProfile(tuple(HtmlRule(s, c) for s, c in rules), blocks))


# The page is read as BeautifulSoup (lxml) reads it and the selectors match as soupsieve matches
# them on BeautifulSoup's tree, though neither is run on the page (that was 10 times slower).


def test_text_after_the_end_of_the_page_is_read_where_it_stands(profile):
    lines, removed = html_to_lines("<html><body><p>One</p><span>a</span></body></html> <span>b</span>", profile)
    assert (lines, removed) == (["One", "a b"], [])


def test_a_rule_text_is_matched_without_the_script_inside_the_element(profile):
    lines, removed = cut('<p>Before.</p><p><a class="readmore" href="/1">Read more<script>document.write(1)'
                         "</script></a></p>", profile)
    assert (lines, removed) == (["Before.", ""], [(2, "navigation", "Read more")])


def test_classes_are_separated_by_any_white_space(profile):
    assert cut('<p class="lead\xa0caption">Credit: AP</p><p>Text.</p>', profile) == (
        ["", "Text."], [(1, "image_caption", "Credit: AP")])


def test_combinators_and_pseudo_classes_select_as_in_soupsieve(profile):
    rules = with_rules(profile, ("h2 + p", "other"), ("h2 ~ p", "category_label"), ("aside > p:not(.x)", "navigation"),
                       ("li:nth-child(2)", "navigation"))
    lines, removed = cut("<h2>Title</h2><p>First.</p><p>Second.</p><aside><p>Side</p></aside>"
                         "<ul><li>One</li><li>Two</li></ul>", rules)
    assert lines == ["Title", "", "", "", "One", ""]
    assert removed == [(2, "other", "First."), (3, "category_label", "Second."), (4, "navigation", "Side"),
                       (6, "navigation", "Two")]


def test_nothing_inside_a_template_is_selected(profile):
    rules = with_rules(profile, ("nav", "navigation"), ("template", "other"))
    assert cut("<template><nav>Menu</nav></template><p>Text.</p>", rules) == (["", "Text."], [(1, "other", "Menu")])


def test_text_dumps_are_read_as_before(tmp_path, profile):
    path = tmp_path / "a.txt"
    path.write_text("<p>By Jane Roe</p>\n\nText.\n", encoding="utf-8")
    e = extract_dump(inspect_file(path, tmp_path), profile)
    assert (e.lines, e.removed) == (["<p>By Jane Roe</p>", "", "Text."], [])


# --- the [html] table of a profile ---------------------------------------------------------


def caci_data() -> dict:
    return tomllib.loads((PROFILES_DIR / "caci.toml").read_text(encoding="utf-8"))


def test_a_profile_without_an_html_table_loads_and_cuts_nothing(tmp_path):
    data = caci_data()
    del data["html"]
    bare = parse_profile(tmp_path / "bare.toml", data)
    assert bare.html.remove == () and bare.html.blocks == ()
    lines, removed = cut("<nav><a href='/'>Home</a></nav><p>Text.</p>", bare)
    assert (lines, removed) == (["Home", "Text."], [])


@pytest.mark.parametrize("rule, message", [
    ({"selector": "div[", "category": "navigation"}, "bad CSS selector"),
    ({"selector": "nav", "category": "menus"}, "unknown category 'menus'"),
    ({"selector": "a", "category": "navigation", "text": "(unclosed"}, "bad regular expression"),
    ({"category": "navigation"}, "missing setting 'selector'"),
])
def test_a_broken_html_rule_is_refused_with_its_place(tmp_path, rule, message):
    data = caci_data()
    data["html"]["remove"] = data["html"]["remove"] + [rule]
    with pytest.raises(ProfileError, match=re.escape(message)) as exc:
        parse_profile(tmp_path / "site.toml", data)
    assert "site.toml" in str(exc.value)


# --- the flow loads HTML dumps -------------------------------------------------------------


def test_the_flow_loads_html_dumps(prefect_server, tmp_path):
    from flows.ingest import ingest

    raw = tmp_path / "raw"
    raw.mkdir()
    for fixture in FIXTURES.iterdir():
        (raw / fixture.name).write_bytes(fixture.read_bytes())
    state = ingest(str(raw), str(tmp_path / "wh"), return_state=True)
    summary = state.result(raise_on_failure=False)
    assert state.is_completed(), summary.quarantined
    assert summary.dumps_loaded == len(list(FIXTURES.iterdir())) == 4
    assert summary.articles_new == 4 + 5 + 1 + 3
    with gleaner.connect(tmp_path / "wh") as con:
        rows = con.execute("SELECT source_file, line_no, category, text FROM removed_text "
                           "WHERE category = 'email_protection' ORDER BY source_file, line_no").fetchall()
        formats = dict(con.execute("SELECT source_file, format FROM dumps").fetchall())
    assert formats["seed_002_6e42fd3a90233009.html.gz"] == "html.gz"
    assert {(f, t) for f, _, _, t in rows} >= {("article_item.html", NOTICE),
                                               ("seed_002_6e42fd3a90233009.html.gz", f"Email: {NOTICE}")}
