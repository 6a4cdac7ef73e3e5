"""A deterministic corpus of scraped dumps for the benchmark, recombined from the seed dumps.

    python bench/generate.py --mb 100 --seed 1 --out DIR [--prefix ID] [--authors N] [--manifest FILE]

Reads the five seed dumps (data/raw/*.txt) once, and from their sentences, vocabulary,
names and boilerplate writes dumps of about --mb megabytes (on disk) below DIR:

- Articles are new: each is made from its own random stream (numbered k), with authors
  drawn from a pool of made-up names (first names and surnames of the region's authors,
  some with an initial), a lede and BACKGROUND / IMPLICATIONS / CONCLUSIONS sections of
  seed sentences shuffled across articles with about one word in eight swapped for
  another word of the seeds' vocabulary, a title, a date and a bio. About 10% of the
  articles a dump prints are reprints of an article of an earlier dump (same authors,
  same text; printed in full or as a teaser), as listings and feature pages do.
- Dump layouts are the seeds': full articles run together (with or without blank lines
  between paragraphs, NBSP-padded photo credits, 'Published in ...', cloaked e-mails),
  teaser listings (bare names or 'By ...', date lines, 'Read <title>'), mixed pages, an
  occasional page with no article, and old bylines with the issue date
  ('By Jane Roe (12/3/2003 issue of the CACI Analyst)'). The real boilerplate
  (navigation, footers, newsletter, captions, image file names, cloaked e-mails) wraps
  them. A few text dumps are CRLF or UTF-8 with a BOM; --legacy-share of them cp1252.
- About 15% of the bytes are HTML pages in the site's Joomla/K2 markup, like
  tests/fixtures/html (a category page with full items, an item page, a teaser listing),
  about a third of them gzipped.

Same arguments -> byte-identical files (every random stream is seeded from a string, gzip
headers carry no time or name). Dumps are written one at a time: memory stays flat
whatever --mb. Prints a one-line JSON summary (and writes it to --manifest); no other
file is written below DIR, since every file there is a dump to the pipeline.
"""
from __future__ import annotations

import argparse
import gzip
import html
import io
import json
import random
import re
import sys
import time
import tomllib
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "data" / "raw"
PROFILE = ROOT / "gleaner" / "profiles" / "caci.toml"

GENERATOR_VERSION = 1  # bump when the output for given arguments changes
NBSP = "\u00a0"
REPEAT_SHARE = 0.10  # share of a dump's articles that reprint an article of an earlier dump
SWAP_SHARE = 0.12  # share of a sentence's lower-case words swapped for another seed word
FILES_PER_FOLDER = 500

# --- names ---------------------------------------------------------------------------------
# The seeds' authors plus names of the region and of Western analysts; combined freely.
FIRST_NAMES = """
Aigerim Fayazuddin Chimguundari Tuvshinzaya Robert Syed Eduard Emil Umair Charlotte Nargis Stephen
Aleksandar Nargiza Vali Bayram Richard Halil Fuad Dana Ilyas Nodira Mark Giorgi Svante Frederick
Mamuka Farid Kamran Zaur Rustam Dilnoza Saule Aliya Timur Bakhtiyar Gulnara Erlan Askar Madina
Aziz Farrukh Jasur Nilufar Shahlo Parviz Firuz Zarina Bakyt Aibek Cholpon Nurlan Aidana Kanat
Ruslan Elnur Leyla Gunel Togrul Ramil Sevinj Anar Vusal Nino Tamar Levan Irakli Ana Davit Ketevan
Tigran Armen Anahit Gayane Hovhannes Lilit Narek Sona Temur Ulugbek Shavkat Kamila Murat Selin
Emre Zeynep Kerem Ayse Mehmet Elif Johan Niklas Ingrid Magnus Sarah James Anna Thomas Michael Laura
Daniel Paul Catherine Peter Helen Andrew Olivia Marcus Natalia Sergei Ivan Olga Dmitri Yulia Pavel
Irina Boris Marina Oleg Tatiana Alexei Viktor Elena Ahmad Farhad Nasrin Omid Reza Hamid Shirin
Bahrom Dilshod Gulshan Ravshan Sabina Akmal Khurshid Lola Azamat Dinara Yerlan Assel Daniyar
""".split()
SURNAMES = """
Turgunbaeva Ghiasi Navaan-Yunden Gantulga Cutler Fazl-e-Haider Abrahamyan Avdaliani Jamal Krausz
Kassenova Blank Ivanović Umarova Kaleji Balcı Outzen Karaveli Shahbazov Abenova Mammadov Rashidova
Olsen Beridze Cornell Starr Tsereteli Ismayilov Guliyev Aliyev Huseynov Hasanova Karimov Yusupov
Tashkentova Nurmatov Sultanov Bekov Omarov Abdullaev Rahimov Saidov Nazarov Kadyrov Toktogulov
Abdrakhmanova Zhunusov Seitkali Baimukhamedov Ismailova Akhmetov Kuanyshev Dzhaksybekov Zhakupov
Gogoladze Kapanadze Chkheidze Lomidze Javakhishvili Tsiklauri Japaridze Grigoryan Petrosyan
Hakobyan Sargsyan Harutyunyan Avetisyan Mkrtchyan Ghazaryan Yilmaz Demir Kaya Ozturk Arslan Celik
Aydin Erdem Sahin Koc Lindqvist Eriksson Nilsson Bergstrom Holm Andersson Johansson Weitz Hartley
Brennan Whitaker Lawson Mercer Fairbanks Dunmore Harrington Caldwell Pemberton Ashford Kowalski
Novak Horvath Petrov Smirnova Volkov Sokolova Morozov Lebedeva Kuznetsov Orlova Zaitsev Pavlova
Rahmani Hosseini Karimi Tehrani Sadeghi Mohammadi Ahmadzai Popal Wardak Durrani Qureshi Siddiqui
Rasulov Mirzaev Khodjaev Ergashev Tursunov Mamatkulov Ibragimova Safarov Sharipova Davlatov
Mahmudov Zoirov Rakhimova Tokayeva Sadykova Asanov Mambetov Kulov Osmonova Jeenbekov Bakirov
""".split()

# --- boilerplate, as the seeds print it -----------------------------------------------------
ANALYST_BLURB = (
    "The Central Asia-Caucasus Analyst is a biweekly publication of the Central Asia-Caucasus "
    "Institute & Silk Road Studies Program, a Joint Transatlantic Research and Policy Center "
    "affiliated with the American Foreign Policy Council, Washington DC., and the Institute for "
    "Security and Development Policy, Stockholm. For 15 years, the Analyst has brought cutting edge "
    "analysis of the region geared toward a practitioner audience."
)
NBSP_BLURB = ANALYST_BLURB.replace("is a", f"is{NBSP} a").replace("Central Asia-Caucasus Institute",
                                                                  f"Central{NBSP} Asia-Caucasus Institute")
SIGN_UP = ["Sign up for upcoming events, latest news, and articles from the CACI Analyst.",
           "Sign up for upcoming events, latest news and articles from the CACI Analyst"]
EMAIL_NOTICE = "This email address is being protected from spambots. You need JavaScript enabled to view it."
CATEGORIES = ["Analytical Articles"] * 7 + ["Field Reports"] * 2 + ["Feature Articles", "Book Reviews"]
CREDITS = ["Credit: Wikimedia Commons", "Credit: Pexels", "Photo: Reuters", "Credit: Wikimedia",
           "Image source: Wikimedia Commons", "Photo by Unsplash", "Credit: Flickr", "Photo: AFP"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])(?:[”\"’)]*)\s+(?=[A-Z“\"(])")
_SECTION = re.compile(r"^(BACKGROUND|IMPLICATIONS|CONCLUSIONS?)\s*:\s*(.*)$")
_BIO = re.compile(r"^AUTHORS?[’'`]?S?[’'`]?\s+BIOS?\s*:\s*(.*)$")
_WORD = re.compile(r"\b[a-z]{4,}\b")
_PROPER = re.compile(r"(?<=[a-z,] )[A-Z][a-z]{3,}\b")  # capitalised inside a sentence: a name
# capitalised words inside sentences that name no place or institution
_NOT_PLACES = frozenset("""
    Analyst Article Articles Background Caucasus Central Council Court Foreign Minister Ministry
    President Prime Program Republic State States Strategic Summit Supreme Western Eastern Northern
    Southern Institute Special Security Defence Defense Global Federal Office United National
    January February March April May June July August September October November December
    Great Economic Independent International Support Union World Peace Network Cooperation
    Organization Movement Prosperity Transport Greater Ocean
""".split())


def fold(text: str) -> str:
    return " ".join(text.split())


# --- the seeds, read once ------------------------------------------------------------------

@dataclass
class Seeds:
    sentences: dict[str, list[str]]  # role -> sentences ('lede', 'background', 'implications', 'conclusions')
    bios: list[str]  # what follows '<name> ' in a bio: 'is a researcher at ...'
    vocabulary: list[str]  # lower-case words, sorted
    places: list[str]  # capitalised words that recur (Russia, Kazakhstan, ...)
    nouns: list[str]  # capitalised title words


def read_seeds(folder: Path = SEEDS) -> Seeds:
    roles: dict[str, list[str]] = {"lede": [], "background": [], "implications": [], "conclusions": []}
    section_roles = {"BACKGROUND": "background", "IMPLICATIONS": "implications", "CONCLUSIONS": "conclusions",
                     "CONCLUSION": "conclusions"}
    bios: list[str] = []
    words: set[str] = set()
    proper: dict[str, int] = {}
    for path in sorted(folder.glob("*.txt")):
        role = "lede"
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = fold(raw)
            if len(line) < 120:  # bylines, dates, captions, boilerplate
                continue
            if m := _BIO.match(line):
                first = m.group(1).split(". ")[0]
                if " is " in first:
                    bio = m.group(1)[m.group(1).index(" is ") + 1:]
                    bios.append(bio[:400].rsplit(". ", 1)[0].rstrip(".") + ".")
                role = "lede"  # the next paragraph opens the next article
                continue
            if line.startswith(("The Central Asia-Caucasus Analyst is", "Sign up")):
                continue
            if m := _SECTION.match(line):
                role, line = section_roles[m.group(1)], m.group(2)
            for sentence in _SENTENCE_SPLIT.split(line):
                if len(sentence) >= 40 and not sentence.startswith("By "):
                    roles[role].append(sentence)
            words.update(_WORD.findall(line))
            for p in _PROPER.findall(line):
                proper[p] = proper.get(p, 0) + 1
    places = sorted(p for p, n in proper.items() if n >= 4 and p not in _NOT_PLACES)
    nouns = sorted({w.capitalize() for w in words if 6 <= len(w) <= 11})
    return Seeds(roles, sorted(set(bios)), sorted(words), places, nouns)


def name_pool(size: int, not_name_words: frozenset[str]) -> list[str]:
    """`size` distinct author names, the same for every --seed (so that an added part of a
    corpus shares its authors), most frequent first."""
    rng = random.Random("gleaner-bench:authors")
    firsts = [w for w in FIRST_NAMES if w not in not_name_words]
    lasts = [w for w in SURNAMES if w not in not_name_words]
    seen: set[str] = set()
    names: list[str] = []
    while len(names) < size:
        first, last = rng.choice(firsts), rng.choice(lasts)
        if rng.random() < 0.12:
            first = f"{first} {rng.choice('ABCDEFGHIJKLMNOPRSTVW')}."
        name = f"{first} {last}"
        key = "".join(ch for ch in unicodedata.normalize("NFKD", name.casefold()) if not unicodedata.combining(ch))
        if key not in seen:
            seen.add(key)
            names.append(name)
        if len(seen) > 200_000:
            raise SystemExit(f"cannot make {size} distinct author names")
    return names


# --- articles ------------------------------------------------------------------------------

@dataclass
class Article:
    k: int
    authors: list[str]
    published: date
    title: str
    category: str
    lede: str
    sections: list[tuple[str, list[str]]]  # heading, paragraphs
    bios: list[str]  # one per author, '<name> is ...'
    credit: str | None  # a photo credit line under the lede
    image_name: str | None  # an image file name line pasted into the text
    email_in_bio: bool
    markdown_image: bool


class Generator:
    def __init__(self, seed: int, authors: int, prefix: str) -> None:
        self.seed, self.prefix = seed, prefix
        profile = tomllib.loads(PROFILE.read_text(encoding="utf-8"))
        self.seeds = read_seeds()
        self.names = name_pool(authors, frozenset(profile["segment"]["not_name_words"]))
        # author of rank r is picked with weight 1/sqrt(r): a few prolific authors, a long tail
        self.name_weights = []
        total = 0.0
        for r in range(1, len(self.names) + 1):
            total += r ** -0.5
            self.name_weights.append(total)
        self.vocabulary = self.seeds.vocabulary

    def rng(self, *parts: object) -> random.Random:
        return random.Random(":".join(str(p) for p in ("gleaner-bench", self.seed, self.prefix, *parts)))

    # sentences and paragraphs
    def sentence(self, rng: random.Random, role: str) -> str:
        pool = self.seeds.sentences[role] if rng.random() < 0.8 else self.seeds.sentences[rng.choice(
            ("lede", "background", "implications", "conclusions"))]
        words = rng.choice(pool).split(" ")
        for _ in range(max(1, int(len(words) * SWAP_SHARE))):
            i = rng.randrange(len(words))
            if words[i].isalpha() and words[i].islower() and len(words[i]) >= 4:
                words[i] = rng.choice(self.vocabulary)
        return " ".join(words)

    def paragraph(self, rng: random.Random, role: str, lo: int = 2, hi: int = 5) -> str:
        return " ".join(self.sentence(rng, role) for _ in range(rng.randint(lo, hi)))

    def title(self, rng: random.Random) -> str:
        p, q = rng.sample(self.seeds.places, 2)
        n, m = rng.sample(self.seeds.nouns, 2)
        forms = (f"{p} and the {n} of {m}", f"{p}’s {n} {m}", f"{p} Bets on {n} to Unlock the {m}",
                 f"Why {p} Courts {q}", f"{p}, {q} and the {n} Question", f"The {n} {m} in {p}",
                 f"{p}–{q} Relations After the {n}", f"{p} Turns to {n}: {m} Ahead")
        return rng.choice(forms)

    def article(self, k: int) -> Article:
        rng = self.rng("article", k)
        n_authors = 1 if rng.random() < 0.84 else (2 if rng.random() < 0.9 else 3)
        authors: list[str] = []
        while len(authors) < n_authors:
            name = rng.choices(self.names, cum_weights=self.name_weights)[0]
            if name not in authors:
                authors.append(name)
        published = date(2001, 1, 3) + timedelta(days=rng.randrange(25 * 365))
        sections = []
        for heading, role, lo, hi in (("BACKGROUND", "background", 3, 6), ("IMPLICATIONS", "implications", 3, 6),
                                      ("CONCLUSIONS", "conclusions", 1, 3)):
            if heading == "CONCLUSIONS" and rng.random() < 0.1:
                heading = "CONCLUSION"
            sections.append((heading, [self.paragraph(rng, role) for _ in range(rng.randint(lo, hi))]))
        bios = [f"{a} {rng.choice(self.seeds.bios)}" for a in authors]
        credit = rng.choice(CREDITS) if rng.random() < 0.45 else None
        image_name = None
        if rng.random() < 0.12:
            image_name = rng.choice((
                f"Screenshot {published.isoformat()} at {rng.randint(1, 12)}.{rng.randint(10, 59)}.{rng.randint(10, 59)} PM",
                f"pexels-{rng.choice(self.seeds.vocabulary)}-{rng.randint(1000000, 99999999)} copy",
                f"{rng.choice(self.seeds.vocabulary)}_{rng.choice(self.seeds.vocabulary)}.jpg",
                f"{rng.choice(self.seeds.places)} and {rng.choice(self.seeds.places)} Flags against Blue Sky · Free Stock Photo",
                f"City of {rng.choice(self.seeds.places)} (Image Courtesy of Pexels)",
            ))
        return Article(k, authors, published, self.title(rng), rng.choice(CATEGORIES),
                       self.paragraph(rng, "lede", 2, 4), sections, bios, credit, image_name,
                       rng.random() < 0.08, rng.random() < 0.02)


# --- rendering as text ---------------------------------------------------------------------

def join_names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def date_line(rng: random.Random, d: date) -> str:
    day = d.day
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return rng.choice((
        f"{MONTHS[d.month - 1]} {day}, {d.year}",
        f"{MONTHS[d.month - 1]} {day}, {d.year}",
        f"{MONTHS[d.month - 1]} {day}, {d.year}, the CACI Analyst",
        f"{MONTHS[d.month - 1]} {day}{suffix}, {d.year}",
        f"{d:%A}, {day:02d} {MONTHS[d.month - 1]} {d.year} {rng.randint(8, 18):02d}:{rng.choice((0, 15, 30, 45)):02d}",
        d.isoformat(),
    ))


def byline(rng: random.Random, a: Article, bare_ok: bool) -> str:
    names = join_names(a.authors)
    if bare_ok and rng.random() < 0.3:
        return names
    if a.published.year < 2014 and rng.random() < 0.5:  # old pages print the issue
        issue = a.published + timedelta(days=(2 - a.published.weekday()) % 7)  # a Wednesday
        printed = rng.choice((f"{issue.month}/{issue.day}/{issue.year}",
                              f"the {issue.month:02d}/{issue.day:02d}/{issue.year % 100:02d}"))
        return f"{rng.choice(('By', 'By', 'by'))} {names} ({printed} issue of the CACI Analyst)"
    pad = NBSP if rng.random() < 0.1 else ""
    return f"By {names}{pad}"


def padded(rng: random.Random, text: str, style: str) -> str:
    if style == "spaced":
        return ("\u00a0 " * rng.randint(20, 40)) + text
    if style == "indented":
        return " " * rng.randint(60, 75) + text
    return text


def full_text_lines(rng: random.Random, a: Article, style: str, bare_ok: bool, with_category: bool) -> list[str]:
    lines = [byline(rng, a, bare_ok)]
    if rng.random() < 0.25:
        lines.append(date_line(rng, a.published))
    lede = a.lede
    if a.markdown_image:
        lede = f"![{a.title}](/images/{a.published.year}/{a.k}.jpg) {lede}"
    lines.append(lede)
    if a.image_name:
        lines.append(a.image_name)
    if a.credit:
        lines.append(padded(rng, a.credit, style))
    for heading, paragraphs in a.sections:
        lines.append(f"{heading}: {paragraphs[0]}")
        lines.extend(paragraphs[1:])
    label = "AUTHOR’S BIO:" if len(a.authors) == 1 else "AUTHORS’ BIOS:"
    if rng.random() < 0.15:
        label = label.replace("’", "'")
    bio = " ".join(a.bios)
    if a.email_in_bio:
        bio += f" {a.authors[0].split()[0]} can be reached at {EMAIL_NOTICE}"
    lines.append(f"{label} {bio}")
    if rng.random() < 0.07:
        lines.append(rng.choice((EMAIL_NOTICE, f"Email: {EMAIL_NOTICE}")))
    if style == "spaced" and rng.random() < 0.5:
        lines.append(NBSP)
    if with_category:
        lines.append(f"Published in {a.category}")
    return lines


def teaser_lines(rng: random.Random, a: Article, form: str) -> list[str]:
    if form == "listing":  # 004: name (bare or By), date, summary
        return [byline(rng, a, True), date_line(rng, a.published), a.lede]
    if form == "headed":  # date and title above the byline, category below
        return [date_line(rng, a.published), a.title, f"By {join_names(a.authors)}", a.lede,
                f"Published in {a.category}"]
    lines = [f"By {join_names(a.authors)}", a.lede, f"Read {a.title}"]  # 002: feature teaser
    if a.image_name:
        lines.append(a.image_name)
    lines.append(f"Published in {a.category}")
    return lines


def text_footer(rng: random.Random, style: str) -> list[str]:
    if style == "feature":
        return ["Feature Articles", "|", "Earlier Articles", "|", ANALYST_BLURB, SIGN_UP[0]]
    if style == "listing":
        return [ANALYST_BLURB, SIGN_UP[1]]
    out = (["Feature Articles", "Earlier Articles"] if rng.random() < 0.5 else [])
    return out + ["Visit also", "silkroad", "AFPC", "isdp", "turkeyanalyst",
                  NBSP_BLURB if style == "spaced" else ANALYST_BLURB, "Newsletter", SIGN_UP[0], "Newsletter"]


EDITORIAL = [
    "Editorial Principles",
    "The Central Asia-Caucasus Analyst welcomes submissions of analytical articles of around 1,100 words.",
    "Articles should follow the format of the Analyst: a summary, a background section, an implications "
    "section and conclusions, followed by a short biography of the author.",
    "Submissions are reviewed by the editors within two weeks of receipt; the editors may ask for revisions.",
    "The views expressed in the Analyst are those of the authors and do not represent the views of the editors.",
]


# --- rendering as HTML (Joomla 3 + K2, as tests/fixtures/html) -----------------------------

def esc(text: str, entities: bool) -> str:
    out = html.escape(text, quote=False)
    if entities:
        out = out.replace("’", "&rsquo;").replace("“", "&ldquo;").replace("”", "&rdquo;").replace("–", "&ndash;")
    return out


def html_head(title: str, base: str, body_class: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en-gb" dir="ltr">
<head>
	<meta name="viewport" content="width=device-width, initial-scale=1.0" />
	<meta charset="utf-8" />
	<base href="https://www.cacianalyst.org{base}" />
	<meta name="generator" content="Joomla! - Open Source Content Management" />
	<title>{title}</title>
	<link href="/templates/caci/favicon.ico" rel="shortcut icon" type="image/vnd.microsoft.icon" />
	<link href="/components/com_k2/css/k2.css?v=2.10.3&amp;b=20200429" rel="stylesheet" />
	<link href="/templates/caci/css/template.css?5d4c1b" rel="stylesheet" />
	<style>
		.itemFullText p {{ margin-bottom: 1em; }}
		span.itemImageCaption, span.itemImageCredits {{ display: block; font-size: 11px; }}
	</style>
	<script src="/media/jui/js/jquery.min.js?5d4c1b"></script>
	<script src="/media/k2/assets/js/k2.frontend.js?v=2.10.3&amp;b=20200429&amp;sitepath=/"></script>
</head>
<body class="site com_k2 {body_class}">
	<div class="body" id="top">
		<div class="container">
			<header class="header" role="banner">
				<div class="header-inner clearfix">
					<a class="brand pull-left" href="/">
						<img src="https://www.cacianalyst.org/images/caci-analyst-logo.png" alt="Central Asia-Caucasus Analyst" />
					</a>
					<div class="header-search pull-right">
						<div class="search">
							<form action="/index.php" method="post" class="form-inline" role="search">
								<label for="mod-search-searchword" class="element-invisible">Search ...</label>
								<input name="searchword" id="mod-search-searchword" maxlength="200" class="inputbox search-query input-medium" type="search" placeholder="Search ..." />
								<input type="hidden" name="task" value="search" />
							</form>
						</div>
					</div>
				</div>
			</header>
			<nav class="navigation" role="navigation">
				<div class="nav-collapse">
					<ul class="nav menu nav-pills mod-list">
						<li class="item-101 default"><a href="/" >Home</a></li>
						<li class="item-133 active deeper parent"><a href="/publications/analytical-articles.html" >Analytical Articles</a>
							<ul class="nav-child unstyled small">
								<li class="item-141"><a href="/publications/analytical-articles/archive.html" >Archive</a></li>
							</ul>
						</li>
						<li class="item-134"><a href="/publications/field-reports.html" >Field Reports</a></li>
						<li class="item-135"><a href="/publications/silk-road-papers.html" >Silk Road Papers</a></li>
						<li class="item-136"><a href="/about-us.html" >About</a></li>
						<li class="item-137"><a href="/submission-guidelines.html" >Submission Guidelines</a></li>
					</ul>
				</div>
			</nav>
			<div class="moduletable">
				<ul itemscope itemtype="https://schema.org/BreadcrumbList" class="breadcrumb">
					<li>You are here: &#160;</li>
					<li itemprop="itemListElement" itemscope itemtype="https://schema.org/ListItem"><a itemprop="item" href="/" class="pathway"><span itemprop="name">Home</span></a><span class="divider"> / </span><meta itemprop="position" content="1"></li>
					<li itemprop="itemListElement" itemscope itemtype="https://schema.org/ListItem" class="active"><span itemprop="name">{title}</span><meta itemprop="position" content="2"></li>
				</ul>
			</div>
			<div class="row-fluid">
				<main id="content" role="main" class="span9">
					<div id="system-message-container"></div>
"""


HTML_TAIL = """				</main>
				<div id="aside" class="span3">
					<div class="moduletable">
						<h3>Visit also</h3>
						<div class="custom">
							<p><a href="https://www.silkroadstudies.org"><img src="/images/banners/silkroad.png" alt="silkroad" /></a></p>
							<p><a href="https://www.afpc.org"><img src="/images/banners/AFPC.png" alt="AFPC" /></a></p>
							<p><a href="https://www.isdp.eu"><img src="/images/banners/isdp.png" alt="isdp" /></a></p>
							<p><a href="https://www.turkeyanalyst.org"><img src="/images/banners/turkeyanalyst.png" alt="turkeyanalyst" /></a></p>
						</div>
					</div>
				</div>
			</div>
		</div>
	</div>
	<footer class="footer" role="contentinfo">
		<div class="container">
			<hr />
			<div class="moduletable">
				<div class="custom">
					<p>The Central Asia-Caucasus Analyst is&nbsp;a biweekly publication of the Central&nbsp;Asia-Caucasus Institute &amp; Silk Road Studies Program, a Joint Transatlantic Research and Policy Center affiliated with the American Foreign Policy Council, Washington DC., and the Institute for Security and Development Policy, Stockholm. For 15 years, the Analyst has brought cutting edge analysis of the region geared toward a practitioner audience.</p>
				</div>
			</div>
			<div class="moduletable newsletter">
				<h3>Newsletter</h3>
				<div class="acymailing_module">
					<div class="acymailing_introtext">Sign up for upcoming events, latest news, and articles from the CACI Analyst.</div>
					<form action="/index.php?option=com_acymailing&amp;ctrl=sub" method="post">
						<input type="text" name="user[email]" placeholder="E-mail" />
						<input type="submit" class="button subbutton btn btn-primary" value="Subscribe" />
					</form>
				</div>
			</div>
			<p class="pull-right"><a href="#top" id="back-top">Back to Top</a></p>
			<p>&copy; 2025 Central Asia-Caucasus Institute &amp; Silk Road Studies Program</p>
		</div>
	</footer>
	<script type="text/javascript">
		(function(i,s,o,g,r,a,m){i['GoogleAnalyticsObject']=r;i[r]=i[r]||function(){(i[r].q=i[r].q||[]).push(arguments)}})(window,document,'script','//www.google-analytics.com/analytics.js','ga');
		ga('create', 'UA-0000000-1', 'auto'); ga('send', 'pageview');
	</script>
	<noscript><img src="https://www.cacianalyst.org/stats/pixel.gif" alt="" /></noscript>
</body>
</html>
"""


def cloak(rng: random.Random, a: Article) -> str:
    cid = "%032x" % rng.getrandbits(128)
    user = a.authors[0].split()[-1].lower()
    return (f'<span id="cloak{cid}">{EMAIL_NOTICE}</span><script type=\'text/javascript\'>\n'
            f"\t\t\t\tdocument.getElementById('cloak{cid}').innerHTML = '';\n"
            f"\t\t\t\tvar prefix = '&#109;a' + 'i&#108;' + '&#116;o';\n"
            f"\t\t\t\tvar addy{cid} = '{user}' + '&#64;' + 'example' + '&#46;' + 'org';\n"
            f"\t\t\t\tdocument.getElementById('cloak{cid}').innerHTML += '<a ' + 'href=\\'' + prefix + ':' + addy{cid} + '\\'>' + addy{cid} + '<\\/a>';\n"
            "\t\t</script>")


def html_byline(a: Article, cls: str, linked: bool) -> str:
    if not linked:
        return f'<span class="{cls}">By {html.escape(join_names(a.authors))}</span>'
    links = [f'<a rel="author" href="/itemlist/user/{abs(hash_name(n)) % 9000 + 1000}-{slug(n)}.html">{html.escape(n)}</a>'
             for n in a.authors]
    joined = links[0] if len(links) == 1 else ", ".join(links[:-1]) + " and " + links[-1]
    return f'<span class="{cls}">By {joined}</span>'


def hash_name(name: str) -> int:
    return int.from_bytes(name.encode("utf-8")[:8].ljust(8, b"_"), "big") % 100003


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()).strip("-")


def html_body_paragraphs(rng: random.Random, a: Article, ent: bool) -> list[str]:
    out = []
    for heading, paragraphs in a.sections:
        out.append(f"<p><strong>{heading}:</strong> {esc(paragraphs[0], ent)}</p>")
        out.extend(f"<p>{esc(p, ent)}</p>" for p in paragraphs[1:])
    label = "AUTHOR&rsquo;S BIO:" if len(a.authors) == 1 else "AUTHORS&rsquo; BIOS:"
    bio = esc(" ".join(a.bios), ent)
    if a.email_in_bio:
        bio += f" {html.escape(a.authors[0].split()[0])} can be reached at {cloak(rng, a)}."
    out.append(f"<p><strong>{label}</strong> {bio}</p>")
    if rng.random() < 0.7:
        out.append(f'<p><a href="/images/pdf/{a.k}.pdf" target="_blank">Click here to download PDF</a></p>')
    return out


def html_image(rng: random.Random, a: Article, cls: str) -> str:
    alt = html.escape(a.title) if rng.random() < 0.5 else ""
    credit = html.escape(a.credit or "Credit: Wikimedia Commons")
    if cls == "figure":
        return (f'<figure class="image"><img src="/images/{a.published.year}/{a.k}-{slug(a.title)[:30]}.jpg" '
                f'alt="{alt}" width="700" /><figcaption>{credit}</figcaption></figure>')
    return (f'<div class="{cls}ImageBlock"><span class="{cls}Image"><a href="/item/{a.k}">'
            f'<img src="/media/k2/items/cache/{a.k:08x}_L.jpg" alt="{alt}" style="width:600px; height:auto;" /></a></span>\n'
            f'<span class="{cls}ImageCaption">{html.escape(a.title)}</span>\n'
            f'<span class="{cls}ImageCredits">{credit}</span><div class="clr"></div></div>')


TOOLBAR = """<div class="itemToolbar"><ul>
<li><span class="itemTextResizerTitle">font size</span> <a href="#" id="fontDecrease"><span>decrease font size</span></a> <a href="#" id="fontIncrease"><span>increase font size</span></a></li>
<li><a class="itemPrintLink" rel="nofollow" href="/item/{k}?tmpl=component&amp;print=1"><span>Print</span></a></li>
<li><a class="itemEmailLink" rel="nofollow" href="/component/mailto/?tmpl=component&amp;link={k:x}"><span>Email</span></a></li>
</ul></div>"""
SHARING = """<div class="itemSocialSharing">
<div class="itemTwitterButton"><a href="https://twitter.com/share" class="twitter-share-button" data-via="CACIAnalyst">Tweet</a></div>
<div class="itemFacebookButton"><div class="fb-like" data-layout="button_count"></div></div>
</div>"""


def html_category_full(rng: random.Random, arts: list[Article], category: str) -> str:
    ent = rng.random() < 0.5
    parts = [html_head(category, f"/publications/{slug(category)}", "view-itemlist task-category itemid-143"),
             '<div id="k2Container" class="itemListView"><div class="itemList"><div id="itemListLeading">\n']
    for a in arts:
        parts.append('<div class="itemContainer itemContainerLast"><!-- Start K2 Item Layout -->\n'
                     '<div class="catItemView groupLeading"><div class="catItemHeader">\n')
        parts.append(html_byline(a, "catItemAuthor", rng.random() < 0.5) + "\n")
        if rng.random() < 0.4:
            parts.append(f'<span class="catItemDateCreated">{date_line(rng, a.published)}</span>\n')
        parts.append('</div><div class="catItemBody"><div class="catItemIntroText">\n')
        parts.append(f"<p>{esc(a.lede, ent)}</p>\n")
        if a.credit or rng.random() < 0.3:
            parts.append(html_image(rng, a, "figure" if rng.random() < 0.5 else "catItem") + "\n")
        parts.append("</div>\n" + TOOLBAR.format(k=a.k) + '\n<div class="catItemFullText">\n')
        parts.append("\n".join(html_body_paragraphs(rng, a, ent)))
        parts.append('\n</div><div class="clr"></div></div>\n')
        if rng.random() < 0.5:
            parts.append('<div class="catItemLinks"><div class="catItemCategory"><span>Published in</span> '
                         f'<a href="/publications/{slug(a.category)}.html">{html.escape(a.category)}</a></div></div>\n')
        parts.append(SHARING + '\n<div class="clr"></div></div><!-- End K2 Item Layout --></div>\n')
    parts.append('</div></div><div class="k2Pagination"><ul class="pagenav">'
                 f'<li><a href="/publications/{slug(category)}">{html.escape(category)}</a></li><li class="divider">|</li>'
                 '<li><a href="/publications/analytical-articles?start=20">Earlier Articles</a></li></ul></div></div>\n')
    parts.append(HTML_TAIL)
    return "".join(parts)


def html_item(rng: random.Random, a: Article, places: frozenset[str]) -> str:
    ent = rng.random() < 0.7
    title = html.escape(a.title)
    parts = [html_head(title, f"/publications/{slug(a.category)}/item/{a.k}-{slug(a.title)[:40]}.html",
                       "view-item no-layout no-task itemid-133"),
             f'<span id="startOfPageId{a.k}"></span>\n<div id="k2Container" class="itemView"><div class="itemHeader">\n',
             f'<span class="itemDateCreated">\n\t\t\t{a.published:%A}, {a.published.day:02d} {MONTHS[a.published.month - 1]} '
             f'{a.published.year} {rng.randint(8, 18):02d}:{rng.choice((0, 15, 30, 45)):02d}\t\t</span>\n',
             f'<h2 class="itemTitle">\n\t\t\t{title}\n\t\t</h2>\n', html_byline(a, "itemAuthor", True) + "\n</div>\n",
             TOOLBAR.format(k=a.k), '\n<div class="itemBody">\n', html_image(rng, a, "item"),
             '\n<div class="itemFullText">\n', f"<p>{esc(a.lede, ent)}</p>\n",
             "\n".join(html_body_paragraphs(rng, a, ent)),
             '\n</div><div class="clr"></div>\n<div class="itemLinks"><div class="itemCategory"><span>Published in</span> '
             f'<a href="/publications/{slug(a.category)}.html">{html.escape(a.category)}</a></div>\n'
             '<div class="itemTagsBlock"><span>Tagged under</span><ul class="itemTags">',
             "".join(f'<li><a href="/itemlist/tag/{p}.html">{p}</a></li>' for p in sorted(set(
                 w for w in a.title.replace("’s", "").split() if w in places))),
             '</ul></div></div></div>\n', SHARING,
             f'\n<div class="itemNavigation"><span class="itemNavigationTitle">More in this category:</span>'
             f'<a class="itemPrevious" href="/item/{a.k - 1}">&laquo; Previous</a></div>\n'
             f'<div class="itemBackToTop"><a class="k2Anchor" href="#startOfPageId{a.k}">back to top</a></div>\n</div>\n',
             HTML_TAIL]
    return "".join(parts)


def html_teasers(rng: random.Random, arts: list[Article], category: str) -> str:
    ent = rng.random() < 0.5
    parts = [html_head(category, f"/publications/{slug(category)}.html", "view-itemlist task-category itemid-133"),
             '<div id="k2Container" class="itemListView">\n<div class="itemListCategoriesBlock"><div class="itemListCategory">'
             f'<h2>{html.escape(category)}</h2><p>{html.escape(category)} discuss a current development in the region.</p>'
             '</div></div>\n<div class="itemList"><div id="itemListLeading">\n']
    for a in arts:
        parts.append('<div class="itemContainer itemContainerLast"><div class="catItemView groupLeading"><div class="catItemHeader">\n'
                     f'<h3 class="catItemTitle"><a href="/item/{a.k}">{esc(a.title, ent)}</a></h3>\n')
        parts.append(html_byline(a, "catItemAuthor", True) + "\n")
        parts.append(f'<span class="catItemDateCreated">{MONTHS[a.published.month - 1]} {a.published.day}, {a.published.year}</span>\n')
        parts.append('</div><div class="catItemBody">\n')
        if rng.random() < 0.5:
            parts.append(html_image(rng, a, "catItem") + "\n")
        parts.append(f'<div class="catItemIntroText"><p>{esc(a.lede, ent)}</p></div></div>\n'
                     '<div class="catItemLinks"><div class="catItemCategory"><span>Published in</span> '
                     f'<a href="/publications/{slug(a.category)}.html">{html.escape(a.category)}</a></div></div>\n'
                     f'<div class="catItemReadMore"><a class="k2ReadMore" href="/item/{a.k}">Read more...</a></div>\n'
                     '</div></div>\n')
    parts.append('</div></div>\n<div class="k2Pagination"><ul class="pagination-list"><li class="disabled"><a>Start</a></li>'
                 '<li class="active"><a>1</a></li><li><a href="?start=10">2</a></li><li><a href="?start=10">Next</a></li>'
                 '</ul><div class="clr"></div>Page 1 of 146</div></div>\n')
    parts.append(HTML_TAIL)
    return "".join(parts)


# --- dumps ---------------------------------------------------------------------------------

@dataclass
class Written:
    dumps: int = 0
    bytes: int = 0
    bytes_html: int = 0
    html_files: int = 0
    gz_files: int = 0
    articles_printed: int = 0
    articles_new: int = 0
    reprints: int = 0


class Corpus:
    def __init__(self, gen: Generator, out: Path, legacy_share: float = 0.0) -> None:
        self.gen, self.out, self.legacy_share = gen, out, legacy_share
        self.next_article = 0
        self.stats = Written()
        self.places = frozenset(gen.seeds.places)

    def pick(self, rng: random.Random, first_of_dump: int) -> Article:
        """A new article, or (REPEAT_SHARE) a reprint of one an earlier dump printed."""
        self.stats.articles_printed += 1
        if first_of_dump > 0 and rng.random() < REPEAT_SHARE:
            self.stats.reprints += 1
            return self.gen.article(rng.randrange(first_of_dump))
        k = self.next_article
        self.next_article += 1
        self.stats.articles_new += 1
        return self.gen.article(k)

    def dump(self, i: int) -> tuple[str, bytes]:
        """Dump i: its file name (with suffix) and its bytes."""
        rng = self.gen.rng("dump", i)
        first = self.next_article
        kind = rng.choices(("feature", "analytical", "spaced", "listing", "mixed", "editorial",
                            "html_category", "html_item", "html_teasers"),
                           weights=(20, 24, 12, 18, 8, 1, 5, 10, 6))[0]
        if kind.startswith("html"):
            if kind == "html_category":
                text = html_category_full(rng, [self.pick(rng, first) for _ in range(rng.randint(2, 5))],
                                          rng.choice(("Feature Articles", "Analytical Articles")))
            elif kind == "html_item":
                text = html_item(rng, self.pick(rng, first), self.places)
            else:
                text = html_teasers(rng, [self.pick(rng, first) for _ in range(rng.randint(3, 10))],
                                    rng.choice(("Analytical Articles", "Field Reports")))
            suffix = rng.choice((".html", ".html", ".htm"))
            data = text.encode("utf-8")
            if rng.random() < 0.35:
                buf = io.BytesIO()
                with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
                    gz.write(data)
                data, suffix = buf.getvalue(), suffix + ".gz"
                self.stats.gz_files += 1
            self.stats.html_files += 1
            self.stats.bytes_html += len(data)
            return suffix, data

        lines: list[str] = []
        if kind in ("feature", "analytical", "spaced"):
            arts = [self.pick(rng, first) for _ in range(rng.randint(2, 7))]
            for n, a in enumerate(arts):
                lines += full_text_lines(rng, a, kind if kind == "spaced" else ("indented" if rng.random() < 0.2 else ""),
                                         bare_ok=(n == 0 or kind == "feature"), with_category=kind == "analytical")
            lines += text_footer(rng, kind)
        elif kind == "listing":
            form = rng.choice(("listing", "listing", "headed"))
            for _ in range(rng.randint(4, 16)):
                lines += teaser_lines(rng, self.pick(rng, first), form)
            lines += text_footer(rng, "listing")
        elif kind == "mixed":  # 002: a feature teaser, then full articles with 'Published in'
            lines += teaser_lines(rng, self.pick(rng, first), "feature")
            for _ in range(rng.randint(2, 5)):
                lines += full_text_lines(rng, self.pick(rng, first), "indented", bare_ok=False, with_category=True)
            lines += text_footer(rng, "analytical")
        else:
            lines += EDITORIAL + text_footer(rng, "analytical")
        sep = "\n\n" if kind == "spaced" else "\n"
        newline = "\r\n" if rng.random() < 0.03 else "\n"
        text = sep.join(lines).replace("\n", newline) + newline
        roll = rng.random()
        if roll < self.legacy_share:  # a legacy page in Windows-1252 (what it cannot spell becomes '?')
            data = text.encode("cp1252", errors="replace")
        elif roll < self.legacy_share + 0.01:
            data = b"\xef\xbb\xbf" + text.encode("utf-8")
        else:
            data = text.encode("utf-8")
        return ".txt", data

    def write(self, target_bytes: int) -> Written:
        i = 0
        while self.stats.bytes < target_bytes:
            suffix, data = self.dump(i)
            name = f"{self.gen.prefix}{i:06d}_{self.gen.rng('name', i).getrandbits(64):016x}{suffix}"
            folder = self.out / f"{self.gen.prefix}p{i // FILES_PER_FOLDER:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
            self.stats.dumps += 1
            self.stats.bytes += len(data)
            i += 1
        return self.stats


def default_authors(mb: float) -> int:
    """About eight articles per author on average (~7 KB an article)."""
    return max(50, int(mb * 1e6 / 7000 / 8))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=100.0, help="megabytes (1e6 bytes) on disk to write (default 100)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="folder to write the dumps into (created)")
    parser.add_argument("--prefix", default="", help="file and folder name prefix (an added part of a corpus)")
    parser.add_argument("--authors", type=int, default=None,
                        help="size of the author pool (default: about one per 8 articles of --mb)")
    parser.add_argument("--legacy-share", type=float, default=0.0,
                        help="share of text dumps written in cp1252 (default 0: charset-normalizer reads most of "
                             "them as cp850/cp852 and the extract gate quarantines them, see bench/README.md)")
    parser.add_argument("--manifest", type=Path, help="also write the summary JSON here (not below --out)")
    args = parser.parse_args(argv)
    if args.manifest and args.out.resolve() in args.manifest.resolve().parents:
        parser.error("--manifest must not be below --out: every file there is read as a dump")
    authors = args.authors or default_authors(args.mb)
    started = time.perf_counter()
    corpus = Corpus(Generator(args.seed, authors, args.prefix), args.out, args.legacy_share)
    stats = corpus.write(int(args.mb * 1e6))
    summary = {"generator_version": GENERATOR_VERSION, "mb": args.mb, "seed": args.seed, "prefix": args.prefix,
               "authors": authors, "legacy_share": args.legacy_share, "out": str(args.out), **stats.__dict__,
               "html_share_of_bytes": round(stats.bytes_html / max(stats.bytes, 1), 3),
               "seconds": round(time.perf_counter() - started, 1)}
    line = json.dumps(summary)
    print(line)
    if args.manifest:
        args.manifest.parent.mkdir(parents=True, exist_ok=True)
        args.manifest.write_text(line + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
