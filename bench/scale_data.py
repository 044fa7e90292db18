"""The data set of ``bench/scale.py``: a million postings and twenty thousand companies, seeded.

Built in a dedicated PostgreSQL database whose schema comes from the project's own migrations.
The postings table is loaded fast, then given back exactly what the migrations made:

1. its secondary indexes, foreign keys and search trigger are recorded (``pg_get_indexdef``,
   ``pg_get_constraintdef``, ``pg_get_triggerdef``) and dropped;
2. the text blocks descriptions are made of, the companies, titles, places and pay are made in
   Python (seeded) and loaded by ``COPY`` into small UNLOGGED tables, each block with its
   ``to_tsvector`` computed once;
3. two sessions, 100,000 ids a statement in id order, ``INSERT ... SELECT`` the postings from
   ``generate_series``: each posting's facts are drawn by SQL from seeded hashes of its id (the
   same on every build, whatever the number of sessions), joined to their blocks, and every
   column of ``postings_posting`` is written once, ``search_vector`` included (rows land in
   about id order, as on a board that appends);
4. the recorded indexes are created again from their definitions, two sessions at a time (the
   GIN index first: it takes longest), then the foreign keys and the trigger, and both tables
   are analyzed.

Where the time goes (a million postings, this 2-core machine): writing the rows, about 250 CPU
seconds, and the 25 indexes, about 190. Each row is about 4 kB (Markdown, HTML, summary,
vector), over PostgreSQL's 2 kB TOAST threshold, so PostgreSQL compresses its long columns
(pglz, the server's default, is 20 to 40 % of the writing) and moves the vector out of line, for
every row, as it would in production; ``--toast-compression lz4`` writes about a quarter faster,
but stores the columns otherwise than production would. Generating the facts in Python was
measured too (45 µs a row on this CPU, too slow), and so was ``COPY ... FREEZE`` (one session
cannot compress fast enough, and ``FREEZE`` cannot be shared by two). The table is vacuumed
once, before its indexes are built, as autovacuum would have on a production server (it is off
on this one): the list page's ids and capped counts are index-only scans of
``posting_pub_recent``, which read the rows themselves wherever the visibility map is not set.

Descriptions are Markdown shaped like ``postings/factories.py``'s (an intro, "Responsibilities",
"Qualifications", "What we offer"), 600 to 1,600 characters (mean 1,050), made of blocks from
pools:
Faker's English word list with Zipf weights, words of each practice area ("developer" and
"engineer" are common, as on a real board), and one "Bonus:" skill per posting drawn from 60,000
terms with Zipf weights, so some words match a hundred thousand postings and some a handful.

``search_vector`` is what the trigger of migration 0002 computes, built without parsing a
million descriptions: each block's ``to_tsvector`` is computed once and the vectors are
concatenated (``||`` shifts positions exactly as the parser would count them, because every
block ends on a word that is not a stop word). ``description_html``, ``summary`` and the
duplicate keys are assembled the same way. After every build a sample of rows is checked against
the real thing: the trigger's expression, ``render_description``, ``summarize`` and
``postings.duplicates``; a difference stops the benchmark.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import os
import random
import subprocess
import sys
import threading
import time
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]

# Bump when what is generated changes: an existing data set of another version is rebuilt.
DATASET_VERSION = 3
MARKER_TABLE = "bench_scale_dataset"
TS_CONFIG = "english"
DAY = 86_400

# --- What the postings say ----------------------------------------------------------------------

# Share of postings per practice area, in per cent (engineering is a board's biggest area).
AREA_WEIGHTS = {
    "engineering": 30, "data": 10, "design": 6, "product": 6, "marketing": 6, "sales": 7,
    "customer_support": 6, "operations": 5, "finance": 6, "people": 4, "corporate_law": 3,
    "litigation": 2, "intellectual_property": 2, "compliance": 3, "healthcare": 2,
    "education": 2,
}  # fmt: skip
SENIORITY_WEIGHTS = {"intern": 3, "junior": 15, "mid": 40, "senior": 28, "lead": 10, "executive": 4}
WORKPLACE_WEIGHTS = {"onsite": 45, "hybrid": 35, "remote": 20}
# Heavier weights for bigger job markets; every other place of the factories weighs 2.
PLACE_WEIGHTS = {
    "London": 10, "Berlin": 9, "New York": 9, "San Francisco": 7, "Bangalore": 6, "Paris": 6,
    "Amsterdam": 6, "Munich": 5, "Toronto": 5, "Chicago": 4, "Austin": 4, "Seattle": 4,
    "Madrid": 3, "Warsaw": 3, "Dublin": 3, "Sydney": 3, "São Paulo": 3, "Singapore": 3,
}  # fmt: skip
COMPANY_TYPE_WEIGHTS = {
    "corporation": 35, "startup": 25, "small_business": 15, "law_firm": 5, "agency": 10,
    "nonprofit": 4, "government": 3, "academic": 3,
}  # fmt: skip
# closed_reason by code: 0 for expired, the employers' reasons, the last for removed listings.
REASONS = (
    "The deadline passed.", "The role was filled.", "Hiring paused.", "The employer closed it.",
    "Filled internally.", "The position was cancelled.", "Removed by a moderator.",
)  # fmt: skip
SOURCES = ("jobs.northbridge.example", "careers.hub.example", "work.atlas.example")

# Words of each practice area, with a weight (1 unless said): they make up about a third of the
# words of a Responsibilities or Qualifications block of that area.
AREA_WORDS: dict[str, dict[str, float]] = {
    "engineering": {
        "developer": 0.25, "developers": 0.2, "engineer": 0.2, "engineers": 0.2, "engineering": 0.2,
        "code": 2, "backend": 1, "frontend": 1, "services": 2, "api": 1, "apis": 1, "python": 1,
        "deploy": 1, "deployments": 1, "testing": 1, "tests": 1, "infrastructure": 1,
        "reliability": 1, "latency": 1, "database": 1, "databases": 1, "architecture": 1,
        "cloud": 1, "microservices": 1, "debugging": 1, "software": 2, "systems": 2,
        "performance": 1, "scalability": 1, "releases": 1, "reviews": 1, "observability": 1,
        "incidents": 1, "typescript": 1, "javascript": 1, "golang": 1, "linux": 1,
        "security": 1, "automation": 1,
    },
    "data": {
        "data": 4, "engineer": 0.5, "engineers": 0.5, "analyst": 2, "analysts": 1, "sql": 2,
        "pipelines": 2, "warehouse": 1, "dashboards": 1, "models": 1, "modelling": 1,
        "statistics": 1, "experiments": 1, "metrics": 1, "etl": 1, "forecasting": 1,
        "insights": 1, "reporting": 1, "machine": 1, "learning": 1, "datasets": 1, "python": 1,
        "analytics": 1, "developers": 0.2,
    },
    "design": {
        "design": 3, "designer": 2, "designers": 1, "prototypes": 1, "research": 1,
        "usability": 1, "interfaces": 1, "figma": 1, "accessibility": 1, "visual": 1,
        "interaction": 1, "users": 1, "journeys": 1, "wireframes": 1, "typography": 1,
        "developers": 0.3, "engineers": 0.3,
    },
    "product": {
        "product": 3, "roadmap": 1, "discovery": 1, "customers": 1, "stakeholders": 1,
        "priorities": 1, "outcomes": 1, "requirements": 1, "experiments": 1, "launches": 1,
        "metrics": 1, "strategy": 1, "engineers": 0.4, "developers": 0.3, "designers": 1,
        "backlog": 1,
    },
    "marketing": {
        "marketing": 3, "campaigns": 2, "content": 2, "brand": 1, "audience": 1, "seo": 1,
        "growth": 1, "channels": 1, "funnel": 1, "social": 1, "newsletters": 1, "copy": 1,
        "positioning": 1, "conversion": 1, "events": 1,
    },
    "sales": {
        "sales": 3, "pipeline": 1, "prospects": 1, "deals": 2, "quota": 1, "accounts": 1,
        "negotiation": 1, "crm": 1, "revenue": 1, "territory": 1, "clients": 1, "demos": 1,
        "outreach": 1, "renewals": 1,
    },
    "customer_support": {
        "support": 3, "customers": 2, "tickets": 2, "escalations": 1, "troubleshooting": 1,
        "satisfaction": 1, "helpdesk": 1, "onboarding": 1, "documentation": 1, "queries": 1,
        "chat": 1, "knowledge": 1, "engineers": 0.5,
    },
    "operations": {
        "operations": 3, "processes": 2, "logistics": 1, "vendors": 1, "facilities": 1,
        "scheduling": 1, "budgets": 1, "procurement": 1, "coordination": 1, "efficiency": 1,
        "office": 1, "suppliers": 1,
    },
    "finance": {
        "finance": 3, "accounting": 2, "ledger": 1, "reconciliation": 1, "invoices": 1,
        "payroll": 1, "budgets": 1, "forecasts": 1, "audit": 1, "tax": 1, "reporting": 1,
        "closing": 1, "expenses": 1, "compliance": 1,
    },
    "people": {
        "recruiting": 2, "hiring": 2, "candidates": 2, "onboarding": 1, "benefits": 1,
        "culture": 1, "interviews": 1, "talent": 1, "engagement": 1, "policies": 1,
        "training": 1, "compensation": 1,
    },
    "corporate_law": {
        "contracts": 2, "counsel": 2, "mergers": 1, "acquisitions": 1, "governance": 1,
        "negotiations": 1, "legal": 2, "transactions": 1, "clients": 1, "drafting": 1,
        "corporate": 1, "advisory": 1,
    },
    "litigation": {
        "litigation": 3, "disputes": 2, "court": 1, "filings": 1, "discovery": 1, "briefs": 1,
        "trials": 1, "evidence": 1, "counsel": 1, "clients": 1, "hearings": 1, "arbitration": 1,
    },
    "intellectual_property": {
        "patents": 3, "trademarks": 2, "filings": 1, "prosecution": 1, "licensing": 1,
        "portfolio": 1, "inventions": 1, "infringement": 1, "counsel": 1, "copyright": 1,
        "engineers": 0.5,
    },
    "compliance": {
        "compliance": 3, "regulatory": 2, "privacy": 1, "risk": 2, "audits": 1, "policies": 1,
        "controls": 1, "regulations": 1, "reporting": 1, "investigations": 1, "gdpr": 1,
        "sanctions": 1,
    },
    "healthcare": {
        "patients": 3, "care": 2, "clinical": 2, "nursing": 1, "wards": 1, "medication": 1,
        "health": 1, "treatment": 1, "safety": 1, "hospital": 1, "shifts": 1, "records": 1,
    },
    "education": {
        "students": 3, "curriculum": 2, "teaching": 2, "lessons": 1, "learning": 1,
        "courses": 1, "assessment": 1, "classrooms": 1, "tutoring": 1, "schools": 1,
        "pedagogy": 1,
    },
}  # fmt: skip
# Words the factories' boilerplate and real listings share, sprinkled into every block.
EXTRA_GENERAL = ("senior", "team", "customers", "remote", "flexible", "growth", "ownership")
# General words left out: how often "developer" and "engineer" (stems "develop", "engin") occur
# is set by the areas' words alone.
NOT_GENERAL = ("develop", "development")

# The "Bonus:" skills: real names at the rank (1 = most common) they take in a Zipf-like list
# whose other entries are made-up words. The rank sets how many of a million postings name one:
# about 150,000 * rank**-1.1, so "kubernetes" ~100,000, "haskell" ~90, "cobol" ~25, "prolog" ~7.
RARE_NAMED = {
    "kubernetes": 1, "terraform": 2, "react": 3, "postgresql": 4, "kafka": 6, "spark": 8,
    "airflow": 12, "figma": 14, "salesforce": 16, "hubspot": 20, "tableau": 25,
    "snowflake": 30, "graphql": 40, "elixir": 120, "scala": 150, "clojure": 400,
    "haskell": 800, "erlang": 1200, "cobol": 2500, "fortran": 4000, "ocaml": 6000,
    "prolog": 9000, "smalltalk": 15000,
}  # fmt: skip
RARE_POOL = 60_000
RARE_EXPONENT = 1.1
COMPANY_EXPONENT = 0.7  # the biggest employer has ~1.6 % of the postings, the smallest a few

SYLLABLES = (
    "ka", "lo", "ve", "ri", "ta", "mo", "ne", "sa", "do", "li", "ar", "en", "or", "um", "is",
    "el", "an", "ox", "va", "ze", "ba", "co", "fi", "gu", "ha", "jo", "ku", "me", "no", "pe",
    "ro", "si", "tu", "vi", "wa", "xa", "yo", "zu", "bel", "dor", "fen", "gar", "hal", "kin",
    "lor", "mar", "nor", "pel", "ran", "sel", "tor", "val", "wen", "quin", "bra", "stel",
)  # fmt: skip
COMPANY_SUFFIXES = (
    "Analytics", "Health", "Software", "Logistics", "Legal", "Labs", "Systems", "Partners",
    "Consulting", "Foods", "Energy", "Bank", "Insurance", "Media", "Robotics", "Studios",
    "Retail", "Capital", "Clinic", "Academy", "Works", "Technologies", "Solutions", "Networks",
    "Holdings", "Ventures", "Foundation", "Agency", "Motors", "Pharma", "Games", "Security",
)  # fmt: skip

# Pool sizes: blocks per kind (duties and needs per practice area).
INTRO_BLOCKS = 8_000
AREA_BLOCKS = 1_000
OFFER_BLOCKS = 3_000
# A smoke data set (bench/scale.py --smoke) makes pools this many times smaller: a thousand
# postings need no 100,000 blocks, which take seconds to make and to index.
SMALL_POOLS = 10
CHUNK = 25_000  # postings per generated chunk (each seeded on its own: any process count agrees)


# --- Small helpers ------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, flush=True)


class Picker:
    """Weighted choice by bisection over cumulative weights (much faster than random.choices)."""

    def __init__(self, items: Sequence[Any], weights: Sequence[float]) -> None:
        self.items = list(items)
        self.cumulative = list(accumulate(weights))
        self.total = self.cumulative[-1]

    def __call__(self, rng: random.Random) -> Any:
        return self.items[bisect(self.cumulative, rng.random() * self.total)]

    def index(self, rng: random.Random) -> int:
        return bisect(self.cumulative, rng.random() * self.total)


def zipf_weights(n: int, exponent: float) -> list[float]:
    return [1.0 / (rank**exponent) for rank in range(1, n + 1)]


def table_columns(cursor: psycopg.Cursor, table: str) -> list[tuple[str, str, bool]]:
    """(name, base type, nullable) of a table's stored, non-generated columns, in order."""
    cursor.execute(
        "SELECT attname, atttypid::regtype::text, NOT attnotnull FROM pg_attribute"
        " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''"
        " ORDER BY attnum",
        [table],
    )
    return [(name, kind, nullable) for name, kind, nullable in cursor.fetchall()]


def fallback_value(column: str, kind: str, nullable: bool) -> str:
    """SQL for a column this script does not know (a newer migration added it)."""
    if nullable:
        return "NULL"
    defaults = {"text": "''", "character varying": "''", "boolean": "false"}
    if kind in defaults:
        return defaults[kind]
    if kind in ("integer", "bigint", "smallint", "double precision", "numeric", "real"):
        return "0"
    if kind == "timestamp with time zone":
        return "now()"
    raise RuntimeError(
        f"postings column {column} ({kind}, NOT NULL) is new to bench/scale_data.py: "
        "say there what it holds"
    )


# --- The vocabulary and the text blocks ---------------------------------------------------------


@dataclass
class Block:
    """A piece of a description: its Markdown, its HTML, what summarize() and the duplicate key
    read of it, and its text for ``to_tsvector`` (its Markdown)."""

    md: str
    html: str
    plain: str  # its text as summarize() reads it (headings dropped)
    words: str = ""  # the words duplicates.description_key sees in its HTML, space-separated


def words_of(html_text: str) -> str:
    """The words ``postings.duplicates.description_key`` sees in this HTML, space-separated."""
    from postings import duplicates  # needs Django set up

    text = html.unescape(duplicates._TAG.sub(" ", html_text))
    return " ".join(duplicates._WORD.findall(duplicates._plain(text)))


def _list_block(heading: str, items: list[str], *, close: bool) -> Block:
    md = f"\n\n## {heading}\n\n" + "\n".join(f"- {item}" for item in items)
    lis = "\n".join(f"<li>{item}</li>" for item in items)
    html_text = f"\n<h2>{heading}</h2>\n<ul>\n{lis}" + ("\n</ul>" if close else "")
    return Block(md, html_text, " ".join(items))


class SentenceMaker:
    """Sentences of 6 to 12 words: Faker's English words with Zipf weights, a third of them
    the practice area's own words. The last word is never a stop word."""

    def __init__(self, rng: random.Random, stop_words: frozenset[str]) -> None:
        from faker.providers.lorem.en_US import Provider

        self.rng = rng
        general = sorted(
            ({w.lower() for w in Provider.word_list} | set(EXTRA_GENERAL)) - set(NOT_GENERAL)
        )
        rng.shuffle(general)
        self.general = Picker(general, zipf_weights(len(general), 0.9))
        content = [w for w in general if w not in stop_words]
        self.content = Picker(content, zipf_weights(len(content), 0.9))
        self.areas = {
            area: Picker(list(words), list(words.values())) for area, words in AREA_WORDS.items()
        }

    def sentence(self, area: str | None) -> str:
        rng, area_pick = self.rng, self.areas.get(area or "")
        words = [
            area_pick(rng) if area_pick is not None and rng.random() < 0.3 else self.general(rng)
            for _ in range(rng.randint(5, 11))
        ]
        # A block's vector concatenates exactly only when its last word is not a stop word.
        last = area_pick(rng) if area_pick is not None and rng.random() < 0.3 else None
        words.append(last or self.content(rng))
        words[0] = words[0][:1].upper() + words[0][1:]
        return " ".join(words) + "."

    def sentences(self, low: int, high: int, area: str | None = None) -> list[str]:
        return [self.sentence(area) for _ in range(self.rng.randint(low, high))]


@dataclass
class Vocabulary:
    """Every pool of blocks the descriptions are made of, built from the seed alone."""

    intro: list[Block] = field(default_factory=list)
    duties: list[Block] = field(default_factory=list)  # AREA_BLOCKS per area, in AREA_WORDS order
    needs: list[Block] = field(default_factory=list)
    rare: list[Block] = field(default_factory=list)
    offer: list[Block] = field(default_factory=list)

    @classmethod
    def build(cls, seed: int, stop_words: frozenset[str], divisor: int = 1) -> Vocabulary:
        """The pools, ``divisor`` times smaller than the full ones (a smoke data set's)."""
        rng = random.Random(f"{seed}:vocabulary")
        maker = SentenceMaker(rng, stop_words)
        vocabulary = cls()
        for _ in range(INTRO_BLOCKS // divisor):
            text = " ".join(maker.sentences(1, 4))
            vocabulary.intro.append(Block(". " + text, ". " + text + "</p>", text))
        for area in AREA_WORDS:
            for _ in range(AREA_BLOCKS // divisor):
                duties = maker.sentences(3, 6, area)
                vocabulary.duties.append(_list_block("Responsibilities", duties, close=True))
            for _ in range(AREA_BLOCKS // divisor):
                needs = maker.sentences(3, 6, area)
                vocabulary.needs.append(_list_block("Qualifications", needs, close=False))
        rare = rare_words(rng, stop_words, set(maker.general.items), RARE_POOL // divisor)
        for word in rare:
            text = f"Bonus: {word} experience."
            vocabulary.rare.append(Block(f"\n- {text}", f"\n<li>{text}</li>\n</ul>", text))
        for _ in range(OFFER_BLOCKS // divisor):
            text = " ".join(maker.sentences(1, 3))
            vocabulary.offer.append(
                Block(
                    f"\n\n## What we offer\n\n{text}\n",
                    f"\n<h2>What we offer</h2>\n<p>{text}</p>",
                    text,
                )
            )
        for pool in vocabulary.pools().values():
            for block in pool:
                block.words = words_of(block.html)
        return vocabulary

    @property
    def area_blocks(self) -> int:
        return len(self.duties) // len(AREA_WORDS)

    def pools(self) -> dict[str, list[Block]]:
        return {
            "intro": self.intro,
            "duties": self.duties,
            "needs": self.needs,
            "rare": self.rare,
            "offer": self.offer,
        }


def rare_words(
    rng: random.Random, stop_words: frozenset[str], taken: set[str], size: int = RARE_POOL
) -> list[str]:
    """``size`` skills in Zipf rank order: made-up words, the named ones at their ranks (those
    ranked beyond ``size`` left out)."""
    made_up: list[str] = []
    seen = set(taken) | set(RARE_NAMED)
    by_rank = {rank: word for word, rank in RARE_NAMED.items() if rank <= size}
    while len(made_up) < size - len(by_rank):
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(3, 4)))
        if word not in seen and word not in stop_words:
            seen.add(word)
            made_up.append(word)
    pool = iter(made_up)
    return [by_rank.get(rank) or next(pool) for rank in range(1, size + 1)]


# --- Companies, titles, places ------------------------------------------------------------------


@dataclass
class Company:
    id: int
    name: str
    slug: str
    company_type: str
    website: str
    description: str
    is_verified: bool
    created_at: int


def make_companies(spec: DatasetSpec, vocabulary: Vocabulary) -> list[Company]:
    """Made-up names ("Velkor Analytics"), each once, with a slug, a site and a type."""
    from django.utils.text import slugify

    rng = random.Random(f"{spec.seed}:companies")
    kinds = Picker(list(COMPANY_TYPE_WEIGHTS), list(COMPANY_TYPE_WEIGHTS.values()))
    names: set[str] = set()
    companies: list[Company] = []
    while len(companies) < spec.companies:
        stem = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
        name = f"{stem.capitalize()} {rng.choice(COMPANY_SUFFIXES)}"
        if name in names:
            continue
        names.add(name)
        number = len(companies) + 1
        slug = f"{slugify(name)}-{number}"
        companies.append(
            Company(
                id=number,
                name=name,
                slug=slug,
                company_type=kinds(rng),
                website=f"https://{slug}.example",
                description=f"{name}: {rng.choice(vocabulary.offer).plain}",
                is_verified=rng.random() < 0.7,
                created_at=spec.now - rng.randint(30 * DAY, 3 * 365 * DAY),
            )
        )
    return companies


@dataclass
class Title:
    id: int
    area_i: int  # 1-based, in AREA_WEIGHTS order
    level_i: int  # 1-based, in SENIORITY_WEIGHTS order
    role_i: int  # 0-based, in the area's roles of the factories
    title: str
    seniority: str
    area: str
    slug: str


def make_titles() -> list[Title]:
    """Every title the factories make: a level's prefix and an area's role."""
    from django.utils.text import slugify

    from postings.factories import LEVEL_PREFIX, ROLES

    titles = []
    for area_i, area in enumerate(AREA_WEIGHTS, 1):
        for role_i, role in enumerate(ROLES[area]):
            for level_i, seniority in enumerate(SENIORITY_WEIGHTS, 1):
                title = f"{LEVEL_PREFIX[seniority]} {role}".strip()
                titles.append(
                    Title(
                        len(titles) + 1,
                        area_i,
                        level_i,
                        role_i,
                        title,
                        seniority,
                        area,
                        slugify(title)[:80] or "job",
                    )
                )
    return titles


@dataclass
class Place:
    id: int
    city: str
    region: str
    country: str


REMOTE_WHERE = Block(", remotely", ", remotely", "", "remotely")


def make_places() -> list[Place]:
    """The factories' places, then a city-less place (remote roles) for each of their countries."""
    from postings.factories import PLACES

    places = [Place(i + 1, *place) for i, place in enumerate(PLACES)]
    for country in sorted({country for _city, _region, country in PLACES}):
        places.append(Place(len(places) + 1, "", "", country))
    return places


def where_of(place: Place) -> Block:
    """How the first sentence says where an on-site or hybrid role is."""
    text = f" in our {place.city} office"
    return Block(text, text, "", words_of(text))


# --- The postings themselves: generated by SQL, a chunk of ids per statement --------------------

# Each posting's random draws are seeded hashes of (id, draw), so the set is the same on every
# build whatever the number of sessions and chunks; one name per draw.
DRAWS = (
    "area", "level", "workplace", "city", "posted", "role", "remote", "employment", "status",
    "closed_or_expired", "deadline_kind", "deadline", "closed_deadline", "closed_at", "reason",
    "created", "edited", "updated", "checked", "company", "intro", "duties", "needs", "rare",
    "offer", "link", "salary", "period", "low", "high", "open_ended", "views", "views_angle",
    "applicants",
)  # fmt: skip


def draw(name: str, seed: int) -> str:
    """SQL for posting g.id's draw ``name``: uniform in [0, 1), the same on every build."""
    key = seed * 1000 + DRAWS.index(name)
    return f"((hashint8extended(g.id, {key}) & 9007199254740991)::float8 / 9007199254740992.0)"


def bucket(u: str, weights: Sequence[float]) -> str:
    """SQL for a weighted choice 1..len(weights) from the uniform draw ``u``."""
    total = sum(weights)
    edges = [0.0, *accumulate(w / total for w in weights[:-1])]
    return f"width_bucket({u}, {_array(edges, 'float8')})"


def zipf(u: str, n: int, exponent: float) -> str:
    """SQL for a rank 1..n, rank r about r**-exponent as likely as rank 1 (inverse CDF)."""
    e = 1 - exponent
    return f"least({n}, greatest(1, floor(power(1 + {u} * {(n + 1) ** e - 1!r}, {1 / e!r}))::int))"


def _array(values: Sequence[Any], kind: str) -> str:
    def element(value: Any) -> str:
        return '"' + value.replace('"', '\\"') + '"' if isinstance(value, str) else repr(value)

    return "'{" + ",".join(element(v) for v in values) + "}'::" + kind + "[]"


@dataclass(frozen=True)
class DatasetSpec:
    postings: int
    companies: int
    seed: int
    now: int  # the build's clock (epoch seconds): dates are spread back from it
    small_pools: bool = False  # a smoke data set's: SMALL_POOLS times fewer text blocks

    @property
    def divisor(self) -> int:
        return SMALL_POOLS if self.small_pools else 1

    def marker(self, migrations: str) -> dict[str, Any]:
        return {
            "version": DATASET_VERSION,
            "postings": self.postings,
            "companies": self.companies,
            "seed": self.seed,
            "migrations": migrations,
            # Only when small: the full data sets built before keep matching their marker.
            **({"small_pools": True} if self.small_pools else {}),
        }


class Postings:
    """The SQL that writes postings ``first`` to ``last``: their facts drawn per id, their text
    assembled from the blocks, every column as the app would store it."""

    def __init__(self, spec: DatasetSpec, vocabulary: Vocabulary, companies: list[Company]):
        from postings.factories import ROLES

        self.spec, self.vocabulary, self.companies = spec, vocabulary, companies
        self.titles = make_titles()
        self.places = make_places()
        self.roles = [len(ROLES[area]) for area in AREA_WEIGHTS]
        # Title ids run area by area, role by role, level by level (make_titles()).
        self.title_first = [0, *accumulate(n * len(SENIORITY_WEIGHTS) for n in self.roles[:-1])]
        cities = [p for p in self.places if p.city]
        remote = {p.country: p.id for p in self.places if not p.city}
        self.city_weights = [PLACE_WEIGHTS.get(p.city, 2) for p in cities]
        self.remote_of = [remote[p.country] for p in cities]
        # Employers by Zipf rank, shuffled so the biggest are not the first ids.
        self.company_order = list(range(1, len(companies) + 1))
        random.Random(f"{spec.seed}:company-order").shuffle(self.company_order)

    def select(self, first: int, last: int, columns: list[tuple[str, str, bool]]) -> str:
        """``SELECT`` every column of postings ``first`` to ``last`` (for ``INSERT``).

        The facts are drawn in layers (each ``LATERAL ... OFFSET 0``, so every value is computed
        once per posting and can use the layers before it), then joined to the tables of their
        title, place, company, pay and text blocks by integer keys.
        """
        spec = self.spec
        u = {name: draw(name, spec.seed) for name in DRAWS}
        now, span, total = spec.now, 730 * DAY, spec.postings
        exprs = []
        for name, kind, nullable in columns:
            expression = POSTING_SQL.get(name)
            if expression is None:
                expression = fallback_value(name, kind, nullable)
                log(f"  note: postings_posting.{name} is new to the benchmark: {expression}")
            exprs.append(f"({expression})::{kind}")
        area_blocks = self.vocabulary.area_blocks
        area_first = _array([i * area_blocks for i in range(len(AREA_WORDS))], "int")
        company = zipf(u["company"], len(self.companies), COMPANY_EXPONENT)
        levels = len(SENIORITY_WEIGHTS)
        return f"""
SELECT {", ".join(exprs)}
FROM generate_series({first}::bigint, {last}::bigint) AS g(id)
CROSS JOIN LATERAL (SELECT
    {bucket(u["area"], list(AREA_WEIGHTS.values()))} AS area,
    {bucket(u["level"], list(SENIORITY_WEIGHTS.values()))} AS level,
    {bucket(u["workplace"], list(WORKPLACE_WEIGHTS.values()))} AS workplace,
    {bucket(u["city"], self.city_weights)} AS city,
    -- ids follow posting time, as on a board: the newest rows are the last ones
    least({now - 120}, {now - span} + g.id * {span} / {total}
      - floor({u["posted"]} * 21600)::bigint) AS posted
  OFFSET 0) a
CROSS JOIN LATERAL (SELECT
    ({_array(self.title_first, "int")})[a.area]
      + {levels} * floor({u["role"]} * ({_array(self.roles, "int")})[a.area])::int
      + a.level AS title_id,
    CASE WHEN a.workplace = 3 AND {u["remote"]} < 0.5
      THEN ({_array(self.remote_of, "int")})[a.city] ELSE a.city END AS place_id,
    CASE WHEN a.level = 1 THEN 'internship'
      ELSE ({_array(EMPLOYMENT_TYPES, "text")})[1 + floor({u["employment"]} * 10)::int]
    END AS employment,
    {now} - a.posted AS age
  OFFSET 0) b
CROSS JOIN LATERAL (SELECT CASE
    WHEN {u["status"]} < 0.01 THEN 'draft'
    WHEN {u["status"]} < 0.02 THEN 'pending_review'
    WHEN {u["status"]} < 0.03 THEN 'removed'
    WHEN {u["status"]} < 0.03 + 0.97 * CASE WHEN b.age < {60 * DAY} THEN 0.94 ELSE 0.77 END
      THEN 'published'
    WHEN {u["closed_or_expired"]} < 0.45 THEN 'closed'
    ELSE 'expired' END AS status
  OFFSET 0) st
CROSS JOIN LATERAL (SELECT
    CASE st.status
      WHEN 'published' THEN CASE  -- 1.5 % past and not yet expired by the worker, 40 % none
        WHEN {u["deadline_kind"]} < 0.015
          THEN {now - 3600} - floor({u["deadline"]} * {5 * DAY})::bigint
        WHEN {u["deadline_kind"]} < 0.6
          THEN {now + 3600} + floor({u["deadline"]} * {120 * DAY})::bigint
        END
      WHEN 'expired' THEN least({now - 3600},
        a.posted + {14 * DAY} + floor({u["deadline"]} * {76 * DAY})::bigint)
      WHEN 'closed' THEN CASE WHEN {u["closed_deadline"]} < 0.5
        THEN a.posted + {30 * DAY} + floor({u["deadline"]} * {90 * DAY})::bigint END
    END AS deadline,
    CASE st.status WHEN 'expired' THEN 0 WHEN 'closed' THEN 1 + floor({u["reason"]} * 5)::int
      WHEN 'removed' THEN 6 END AS reason,
    st.status NOT IN ('draft', 'pending_review') AS public
  OFFSET 0) e
CROSS JOIN LATERAL (SELECT
    CASE st.status WHEN 'expired' THEN e.deadline WHEN 'closed' THEN a.posted + 3600
      + floor({u["closed_at"]} * greatest(1, least(b.age, {60 * DAY}) - 3600))::bigint
    END AS closed_at,
    CASE WHEN e.public THEN a.posted - floor({u["created"]} * {2 * DAY})::bigint
      ELSE a.posted END AS created,
    CASE WHEN e.public THEN a.posted END AS posted_at,
    CASE WHEN e.public THEN a.posted + CASE WHEN {u["edited"]} < 0.3
      THEN floor({u["updated"]} * greatest(0, least(b.age - 60, {20 * DAY})))::bigint ELSE 0 END
    END AS updated
  OFFSET 0) f
CROSS JOIN LATERAL (SELECT
    CASE WHEN st.status = 'published' THEN {now} - floor({u["checked"]} * 3600)::bigint
      ELSE f.closed_at END AS checked,
    CASE WHEN a.workplace = 3 THEN 0 ELSE b.place_id END AS where_id,
    (b.place_id - 1) * {levels} + a.level AS pay_id,
    ({_array(self.company_order, "int")})[{company}] AS company,
    floor({u["intro"]} * {len(self.vocabulary.intro)})::int AS intro,
    ({area_first})[a.area] + floor({u["duties"]} * {area_blocks})::int AS duties,
    ({area_first})[a.area] + floor({u["needs"]} * {area_blocks})::int AS needs,
    {zipf(u["rare"], len(self.vocabulary.rare), RARE_EXPONENT)} - 1 AS rare,
    floor({u["offer"]} * {len(self.vocabulary.offer)})::int AS offer,
    -- 10 % aggregated from a source page, 20 % apply on the board, 70 % an apply link
    CASE WHEN {u["link"]} < 0.1 THEN 's' WHEN {u["link"]} < 0.3 THEN 'b' ELSE 'a' END AS link,
    {u["applicants"]} AS share,  -- of the views that applied, or clicked "Apply"
    CASE WHEN b.employment <> 'volunteer' AND {u["salary"]} < 0.6 THEN CASE
      WHEN {u["period"]} < 0.85 THEN 'year' WHEN {u["period"]} < 0.95 THEN 'month' ELSE 'hour'
    END END AS period,
    {u["low"]} AS low, {u["high"]} AS high, {u["open_ended"]} < 0.1 AS open_ended,
    CASE WHEN e.public THEN least(50000, floor(exp(3.0 + least(b.age, {60 * DAY}) / {30.0 * DAY}
      + 1.2 * sqrt(-2 * ln(greatest({u["views"]}, 1e-12))) * cos(2 * pi() * {u["views_angle"]}))))
    ELSE 0 END AS views
  OFFSET 0) k
JOIN bench_title t ON t.id = b.title_id
JOIN bench_place p ON p.id = b.place_id
JOIN bench_where w ON w.id = k.where_id
JOIN bench_pay pay ON pay.id = k.pay_id
JOIN bench_company c ON c.id = k.company
JOIN bench_intro i ON i.id = k.intro
JOIN bench_duties r ON r.id = k.duties
JOIN bench_needs q ON q.id = k.needs
JOIN bench_rare bo ON bo.id = k.rare
JOIN bench_offer o ON o.id = k.offer
CROSS JOIN LATERAL (SELECT  -- what summarize() reads of the description, up to 241 characters
    CASE WHEN char_length(c.name || t.title || w.md || i.md) < {241 - len(_FIXED_HEAD)}
      THEN left(c.name || ' is hiring: ' || t.title || ', joining a small, high-impact team'
        || w.md || i.md || ' ' || r.plain || ' ' || q.plain || ' ' || bo.plain || ' ' || o.plain,
        241)
      ELSE left(c.name || ' is hiring: ' || t.title || ', joining a small, high-impact team'
        || w.md || i.md, 241)
    END AS plain
  OFFSET 0) summary
CROSS JOIN LATERAL (SELECT
    round((pay.low * (0.85 + 0.3 * k.low))::numeric, -3) AS low,
    greatest(round((pay.low * (0.85 + 0.3 * k.low))::numeric, -3),
             round((pay.high * (0.85 + 0.3 * k.high))::numeric, -3)) AS high
  OFFSET 0) year
CROSS JOIN LATERAL (SELECT
    CASE k.period WHEN 'year' THEN year.low WHEN 'month' THEN round(year.low / 12, -2)
      WHEN 'hour' THEN greatest(1, round(year.low / 2080)) END AS salary_min,
    CASE WHEN NOT k.open_ended THEN CASE k.period WHEN 'year' THEN year.high
      WHEN 'month' THEN round(year.high / 12, -2) WHEN 'hour' THEN round(year.high / 2080)
    END END AS salary_max,
    CASE k.link
      WHEN 's' THEN 'https://' || ({_array(SOURCES, "text")})[g.id % 3 + 1] || '/listing/' || g.id
      WHEN 'a' THEN c.website || '/careers/' || g.id || '-' || t.slug ELSE '' END AS url,
    summary.plain, left(summary.plain, 239) AS cut
  OFFSET 0) y

"""


EMPLOYMENT_TYPES = ("full_time",) * 6 + ("part_time", "contract", "temporary", "volunteer")


# --- Loading ------------------------------------------------------------------------------------


@dataclass
class Recorded:
    """What the migrations made on the postings table that a bulk load is faster without."""

    indexes: list[tuple[str, str]]  # (name, CREATE INDEX ...)
    foreign_keys: list[tuple[str, str]]  # (name, FOREIGN KEY ... definition)
    triggers: list[tuple[str, str]]  # (name, CREATE TRIGGER ...)


def record_and_drop(cursor: psycopg.Cursor, table: str) -> Recorded:
    """Record the table's secondary indexes, foreign keys and triggers, then drop them."""
    cursor.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = %s::regclass AND NOT EXISTS"
        " (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
        " ORDER BY c.relname",
        [table],
    )
    indexes = cursor.fetchall()
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
        [table],
    )
    foreign_keys = cursor.fetchall()
    cursor.execute(
        "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger"
        " WHERE tgrelid = %s::regclass AND NOT tgisinternal ORDER BY tgname",
        [table],
    )
    triggers = cursor.fetchall()
    table_id = sql.Identifier(table)
    for name, _definition in indexes:
        cursor.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    for name, _definition in foreign_keys:
        cursor.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(table_id, sql.Identifier(name))
        )
    for name, _definition in triggers:
        cursor.execute(sql.SQL("DROP TRIGGER {} ON {}").format(sql.Identifier(name), table_id))
    return Recorded(indexes, foreign_keys, triggers)


def vacuum_postings(conn: psycopg.Connection) -> float:
    """VACUUM the postings; the share of their pages it marked all-visible.

    The rows were written with ``synchronous_commit`` off: until the WAL writer has flushed
    their commits (within a second), VACUUM may not set their hint bits, and so marks no page
    all-visible. So it waits for that flush first, then checks the share: without the visibility
    map the planner reads a capped count by scanning the whole table."""
    (written,) = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()  # type: ignore[misc]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        (flushed,) = conn.execute(
            "SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", [written]
        ).fetchone()  # type: ignore[misc]
        if flushed:
            break
        time.sleep(0.05)
    visible = 0.0
    for _attempt in range(3):
        # Index cleanup even for a few dead rows (an earlier run's counter flushes): VACUUM
        # skips it for under 2 % of pages, and leaves those pages not all-visible.
        conn.execute("VACUUM (INDEX_CLEANUP ON) postings_posting")
        (visible,) = conn.execute(
            "SELECT relallvisible::float / greatest(relpages, 1) FROM pg_class"
            " WHERE oid = 'postings_posting'::regclass"
        ).fetchone()  # type: ignore[misc]
        if visible >= 0.99:
            return visible
        time.sleep(1)
    log(
        f"  warning: VACUUM marked only {visible:.1%} of the postings' pages all-visible (is a"
        " transaction in this database holding back the xmin horizon?): the list's SQL reads"
        " the table for the rest"
    )
    return visible


def vacuum(dsn: str) -> float:
    """``vacuum_postings`` in a session of its own."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return vacuum_postings(conn)


def _copy_blocks(cursor: psycopg.Cursor, table: str, blocks: Sequence[Block]) -> None:
    """A pool of blocks as a table (id from 0, md, html, plain, words, tsv of the Markdown)."""
    cursor.execute(
        f"CREATE UNLOGGED TABLE {table}_raw (id int, md text, html text, plain text, words text)"
    )
    with cursor.copy(f"COPY {table}_raw FROM STDIN") as copy:
        for i, block in enumerate(blocks):
            copy.write_row((i, block.md, block.html, block.plain, block.words))
    cursor.execute(
        f"CREATE UNLOGGED TABLE {table} AS SELECT *, to_tsvector('{TS_CONFIG}', md) AS tsv"
        f" FROM {table}_raw"
    )
    cursor.execute(f"DROP TABLE {table}_raw")
    cursor.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (id)")


# Each postings column as SQL over Postings.select()'s names: g (the id), a, b, st, e, f, h, k
# (drawn facts), y (salary, link, views), x (plain text), and the tables of the posting's title
# t, place p, "where" w, company c, pay, and blocks i, r, q, bo, o (intro, duties, needs,
# bonus, offer). Columns missing here (a newer migration) get fallback_value().
_FIRST_SENTENCE = "' is hiring: **' || t.title || '**, joining a small, high-impact team'"
# The first sentence's own words; past 240 characters the summary needs nothing after the intro.
_FIXED_HEAD = " is hiring: " + ", joining a small, high-impact team"
_ON_BOARD = "k.link = 'b'"
POSTING_SQL = {
    "id": "g.id",
    "title": "t.title",
    "slug": "t.slug",
    "description": f"c.name || {_FIRST_SENTENCE} || w.md || i.md || r.md || q.md || bo.md || o.md",
    "description_html": (
        "'<p>' || c.name || ' is hiring: <strong>' || t.title"
        " || '</strong>, joining a small, high-impact team'"
        " || w.html || i.html || r.html || q.html || bo.html || o.html"
    ),
    # postings.text.summarize: at most 240 characters, cut at a space, with an ellipsis.
    # postings.text.summarize: at most 240 characters, cut at a space, with an ellipsis.
    "summary": (
        "CASE WHEN char_length(y.plain) <= 240 THEN y.plain ELSE rtrim(substr(y.cut, 1,"
        " 239 - strpos(reverse(y.cut), ' ')), ',.;:-') || '…' END"
    ),
    "city": "p.city",
    "region": "p.region",
    "country": "p.country",
    "workplace": f"({_array(list(WORKPLACE_WEIGHTS), 'text')})[a.workplace]",
    "employment_type": "b.employment",
    "seniority": "t.seniority",
    "practice_area": "t.area",
    "salary_min": "y.salary_min",
    "salary_max": "y.salary_max",
    "salary_currency": "CASE WHEN k.period IS NULL THEN '' ELSE pay.currency END",
    "salary_period": "coalesce(k.period, '')",
    "status": "st.status",
    "posted_at": "to_timestamp(f.posted_at)",
    "updated_at": "to_timestamp(f.updated)",
    "last_checked_at": "to_timestamp(k.checked)",
    "check_attempted_at": "to_timestamp(k.checked)",
    "deadline": "to_timestamp(e.deadline)",
    "closed_at": "to_timestamp(f.closed_at)",
    "closed_reason": f"coalesce(({_array(REASONS, 'text')})[e.reason + 1], '')",
    "source_url": "CASE k.link WHEN 's' THEN y.url ELSE '' END",
    "apply_url": "y.url",
    "applies_on_board": _ON_BOARD,
    "view_count": "k.views",
    "applicant_count": f"CASE WHEN {_ON_BOARD} THEN floor(k.views * 0.06 * k.share) ELSE 0 END",
    "apply_click_count": f"CASE WHEN {_ON_BOARD} THEN 0 ELSE floor(k.views * 0.12 * k.share) END",
    # The trigger of migration 0002 (title A, company B, place C, description D), from vectors
    # computed once per title, company, place and block (concatenation is associative).
    # D is the weight to_tsvector() gives, so the description's vectors need no setweight().
    "search_vector": (
        "((t.tsv_a || c.tsv_b) || (p.tsv_c || (c.tsv || t.tsv_head)))"
        " || ((w.tsv || i.tsv) || ((r.tsv || q.tsv) || (bo.tsv || o.tsv)))"
    ),
    "created_at": "to_timestamp(f.created)",
    "modified_at": "to_timestamp(greatest(f.created, f.updated, k.checked, f.closed_at))",
    "company_id": "k.company",
    "created_by_id": "NULL",
    "duplicate_of_id": "NULL",
    "check_failures": "0",
    "check_note": "''",
    "next_check_at": "NULL",
    "deadline_reminder_sent_at": "NULL",
    "source_etag": "''",
    "source_hash": "''",
    "source_last_modified": "''",
    # postings.duplicates: the links are already spelled canonically (checked on a sample).
    "apply_key": "CASE WHEN y.url = '' THEN '' ELSE encode(digest(y.url, 'sha1'), 'hex') END",
    "description_key": (
        "encode(digest(c.words || ' is hiring ' || t.words || ' joining a small high impact team '"
        " || w.words || ' ' || i.words || ' ' || r.words || ' ' || q.words || ' ' || bo.words"
        " || ' ' || o.words, 'sha1'), 'hex')"
    ),
    "title_key": "t.title_key",
}
COMPANY_FIELDS: dict[str, Callable[[Company], Any]] = {
    "id": lambda c: c.id,
    "name": lambda c: c.name,
    "slug": lambda c: c.slug,
    "company_type": lambda c: c.company_type,
    "website": lambda c: c.website,
    "description": lambda c: c.description,
    "is_verified": lambda c: c.is_verified,
    "is_suspended": lambda c: False,
    "logo": lambda c: "",
    "created_at": lambda c: _timestamp(c.created_at),
    "modified_at": lambda c: _timestamp(c.created_at),
}
LOAD_SETTINGS = {
    "synchronous_commit": "off",
    "maintenance_work_mem": "1GB",
    "work_mem": "256MB",  # the blocks' hash tables in memory
    "max_parallel_maintenance_workers": "0",  # two sessions already keep both cores busy
    "max_parallel_workers_per_gather": "0",
    # Hash joins (the blocks' tables hashed once a statement) keep generate_series' order, so
    # rows land in id order; the planner would rather probe indexes row by row.
    "enable_mergejoin": "off",
    "enable_memoize": "off",
    "enable_indexscan": "off",
    "enable_bitmapscan": "off",
}
FILL_CHUNK = 100_000


@dataclass
class Step:
    name: str
    seconds: float
    cpu: float  # CPU seconds of this process, its children and its database sessions
    others: float  # CPU seconds every other process on the machine took meanwhile


@dataclass
class BuildReport:
    seconds: float
    steps: list[Step]
    facts: dict[str, Any]
    cpu: float
    others: float

    def load(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "cpu": self.cpu, "others": self.others}


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> float:
    """CPU seconds (user and system) of a live process, 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS


class Builder:
    """Builds the data set into database ``dbname`` (dropped and created afresh)."""

    def __init__(
        self,
        spec: DatasetSpec,
        dsn: str,
        admin_dsn: str,
        dbname: str,
        env: dict[str, str],
        toast_compression: str = "",
    ) -> None:
        self.spec = spec
        self.dsn = dsn
        self.admin_dsn = admin_dsn
        self.dbname = dbname
        self.env = env
        self.toast_compression = toast_compression
        self.steps: list[Step] = []
        self.lock = threading.Lock()
        self.live: set[int] = set()  # backend pids of open sessions
        self.closed_cpu = 0.0  # CPU of the sessions closed so far
        self.started = self.mark = time.monotonic()
        self.mark_cpu = self.cpu_seconds()
        self.mark_busy = _machine_busy()

    def step(self, name: str) -> None:
        """Print how long the step took, the CPU it used, and what other processes took."""
        now, cpu, busy = time.monotonic(), self.cpu_seconds(), _machine_busy()
        wall, used, others = (
            now - self.mark,
            cpu - self.mark_cpu,
            busy - self.mark_busy - (cpu - self.mark_cpu),
        )
        self.steps.append(Step(name, wall, used, max(others, 0.0)))
        log(f"  {wall:6.1f} s  (CPU {used:5.1f} s, others {max(others, 0.0):5.1f} s)  {name}")
        self.mark, self.mark_cpu, self.mark_busy = now, cpu, busy

    def cpu_seconds(self) -> float:
        """CPU used so far by this process, its children and the sessions it opened."""
        times = os.times()
        own = times.user + times.system + times.children_user + times.children_system
        with self.lock:
            live = sum(_process_cpu(pid) for pid in self.live)
            return own + self.closed_cpu + live

    @contextlib.contextmanager
    def session(self) -> Iterator[psycopg.Connection]:
        """A database session tuned for loading, its CPU counted as the build's."""
        conn = psycopg.connect(self.dsn, autocommit=True)
        pid = conn.info.backend_pid
        with self.lock:
            self.live.add(pid)
        try:
            settings = dict(LOAD_SETTINGS)
            if self.toast_compression:
                settings["default_toast_compression"] = self.toast_compression
            for name, value in settings.items():
                conn.execute(
                    sql.SQL("SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
                )
            yield conn
        finally:
            with self.lock:
                self.closed_cpu += _process_cpu(pid)
                self.live.discard(pid)
            conn.close()

    def build(self, migrations: str) -> BuildReport:
        spec = self.spec
        log(
            f"Building the data set: {spec.postings:,} postings, {spec.companies:,} companies "
            f"(seed {spec.seed}) in database {self.dbname}"
        )
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            name = sql.Identifier(self.dbname)
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(name))
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=ROOT,
            env=self.env,
            check=True,
        )
        self.step("schema: manage.py migrate")
        with self.session() as conn:
            cur = conn.cursor()
            recorded = record_and_drop(cur, "postings_posting")
            vocabulary = Vocabulary.build(spec.seed, self._stop_words(cur), spec.divisor)
            companies = make_companies(spec, vocabulary)
            postings = Postings(spec, vocabulary, companies)
            self._load_companies(cur, companies)
            self._load_pools(cur, postings)
            cur.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")  # digest(): SHA-1 keys
            self.step(
                f"dropped {len(recorded.indexes)} indexes, {len(recorded.foreign_keys)} foreign "
                f"keys, {len(recorded.triggers)} trigger; companies and text blocks loaded"
            )
        self._fill(postings)
        self.step(f"{spec.postings:,} postings written: INSERT ... SELECT, 2 sessions")
        with self.session() as conn:
            # As autovacuum leaves a table (it is off on this server): the visibility map set,
            # so the list's ids and capped counts are read from its index alone, as in
            # production. Before the indexes: the heap only.
            visible = vacuum_postings(conn)
        self.step(f"VACUUM: the visibility map set ({visible:.1%} of pages all-visible)")
        self._two_sessions(
            sorted(
                (definition for _name, definition in recorded.indexes),
                key=lambda definition: " USING gin " not in definition,  # the longest first
            )
        )
        self.step(f"{len(recorded.indexes)} indexes created again: 2 sessions, GIN first")
        with self.session() as conn:
            cur = conn.cursor()
            for name, definition in recorded.foreign_keys:
                cur.execute(
                    sql.SQL("ALTER TABLE postings_posting ADD CONSTRAINT {} ").format(
                        sql.Identifier(name)
                    )
                    + sql.SQL(definition)  # type: ignore[arg-type]  # from pg_get_constraintdef
                )
            for _name, definition in recorded.triggers:
                cur.execute(definition)  # type: ignore[arg-type]  # from pg_get_triggerdef
            for table in ("postings_posting", "postings_company"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" (SELECT max(id) FROM {table}))"
                )
            cur.execute("ANALYZE postings_posting")
            cur.execute("ANALYZE postings_company")
            self.step("foreign keys and trigger back, sequences set, ANALYZE")
            self._check(cur)
            facts = self._describe(cur)
            cur.execute("DROP EXTENSION pgcrypto")
            for table in self._bench_tables(cur):
                cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))
            self.step("a sample checked against the trigger and the app's functions")
            report = BuildReport(
                time.monotonic() - self.started,
                self.steps,
                facts,
                cpu=sum(step.cpu for step in self.steps),
                others=sum(step.others for step in self.steps),
            )
            cur.execute(f"CREATE TABLE {MARKER_TABLE} (marker jsonb, facts jsonb, load jsonb)")
            cur.execute(
                f"INSERT INTO {MARKER_TABLE} VALUES (%s, %s, %s)",
                [json.dumps(spec.marker(migrations)), json.dumps(facts), json.dumps(report.load())],
            )
        return report

    @staticmethod
    def _bench_tables(cur: psycopg.Cursor) -> list[str]:
        cur.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename LIKE 'bench\\_%%' AND tablename <> %s",
            [MARKER_TABLE],
        )
        return [name for (name,) in cur.fetchall()]

    @staticmethod
    def _stop_words(cur: psycopg.Cursor) -> frozenset[str]:
        """The words PostgreSQL's English configuration drops, of those the sentences use."""
        from faker.providers.lorem.en_US import Provider

        words = sorted({w.lower() for w in Provider.word_list} | set(EXTRA_GENERAL))
        cur.execute(
            "SELECT w FROM unnest(%s::text[]) AS w WHERE ts_lexize('english_stem', w) = '{}'",
            [words],
        )
        return frozenset(w for (w,) in cur.fetchall())

    def _load_companies(self, cur: psycopg.Cursor, companies: list[Company]) -> None:
        """postings_company by COPY, and bench_company: each name's words and vectors."""
        columns = table_columns(cur, "postings_company")
        as_python = {"NULL": None, "''": "", "false": False, "0": 0}
        fields = []
        for name, kind, nullable in columns:
            if name in COMPANY_FIELDS:
                fields.append(COMPANY_FIELDS[name])
            else:
                value = as_python[fallback_value(name, kind, nullable)]
                log(f"  note: postings_company.{name} is new to the benchmark: {value!r}")
                fields.append(lambda _company, value=value: value)
        statement = sql.SQL("COPY postings_company ({}) FROM STDIN").format(
            sql.SQL(", ").join(sql.Identifier(name) for name, _kind, _nullable in columns)
        )
        with cur.copy(statement) as copy:
            for company in companies:
                copy.write_row([field(company) for field in fields])
        cur.execute(
            "CREATE UNLOGGED TABLE bench_company (id bigint PRIMARY KEY, name text, website text,"
            " words text, tsv tsvector, tsv_b tsvector)"
        )
        with cur.copy("COPY bench_company (id, name, website, words) FROM STDIN") as copy:
            for company in companies:
                copy.write_row((company.id, company.name, company.website, words_of(company.name)))
        cur.execute(
            f"UPDATE bench_company SET tsv = to_tsvector('{TS_CONFIG}', coalesce(name, '')),"
            f" tsv_b = setweight(to_tsvector('{TS_CONFIG}', coalesce(name, '')), 'B')"
        )

    def _load_pools(self, cur: psycopg.Cursor, postings: Postings) -> None:
        """Titles, places, pay and every pool of blocks, each with its tsvector."""
        from postings import duplicates
        from postings.factories import CURRENCY, PAY_LEVEL, PER_EURO, SALARY_BY_LEVEL

        cur.execute(
            "CREATE UNLOGGED TABLE bench_title (id int PRIMARY KEY, area_i int, level_i int,"
            " role_i int, title text, slug text, seniority text, area text, title_key text,"
            " words text, tsv_a tsvector, tsv_head tsvector)"
        )
        with cur.copy(
            "COPY bench_title (id, area_i, level_i, role_i, title, slug, seniority, area,"
            " title_key, words) FROM STDIN"
        ) as copy:
            for t in postings.titles:
                copy.write_row(
                    (
                        t.id,
                        t.area_i,
                        t.level_i,
                        t.role_i,
                        t.title,
                        t.slug,
                        t.seniority,
                        t.area,
                        duplicates.title_key(t.title),
                        words_of(t.title),
                    )
                )
        cur.execute(
            f"UPDATE bench_title SET tsv_a = setweight(to_tsvector('{TS_CONFIG}', title), 'A'),"
            f" tsv_head = to_tsvector('{TS_CONFIG}', ' is hiring: **')"
            f" || to_tsvector('{TS_CONFIG}', title || '**, joining a small, high-impact team')"
        )
        cur.execute(
            "CREATE UNLOGGED TABLE bench_place (id int PRIMARY KEY, city text, region text,"
            " country text, tsv_c tsvector)"
        )
        with cur.copy("COPY bench_place (id, city, region, country) FROM STDIN") as copy:
            for p in postings.places:
                copy.write_row((p.id, p.city, p.region, p.country))
        cur.execute(
            f"UPDATE bench_place SET tsv_c = setweight(to_tsvector('{TS_CONFIG}',"
            " coalesce(city, '') || ' ' || coalesce(region, '')), 'C')"
        )
        # Yearly pay by country and level in the country's currency (the factories' rule).
        # by place and level: id (place id - 1) * levels + level number.
        cur.execute(
            "CREATE UNLOGGED TABLE bench_pay (id int PRIMARY KEY, currency text, low float8,"
            " high float8)"
        )
        with cur.copy("COPY bench_pay FROM STDIN") as copy:
            for place in postings.places:
                currency = CURRENCY.get(place.country, "EUR")
                factor = PER_EURO[currency] * PAY_LEVEL.get(place.country, 0.9)
                for level_i, level in enumerate(SENIORITY_WEIGHTS, 1):
                    low, high = SALARY_BY_LEVEL[level]
                    pay_id = (place.id - 1) * len(SENIORITY_WEIGHTS) + level_i
                    copy.write_row((pay_id, currency, low * factor, high * factor))
        # "where" 0 is a remote role's; the others are numbered as the places.
        wheres = [REMOTE_WHERE] + [where_of(p) if p.city else REMOTE_WHERE for p in postings.places]
        _copy_blocks(cur, "bench_where", wheres)
        for kind, blocks in postings.vocabulary.pools().items():
            _copy_blocks(cur, f"bench_{kind}", blocks)

    def _fill(self, postings: Postings) -> None:
        """INSERT ... SELECT the postings, FILL_CHUNK ids a statement in id order, two sessions
        at once: compressing and TOASTing the long columns is most of the work."""
        with self.session() as conn:
            columns = table_columns(conn.cursor(), "postings_posting")
        names = ", ".join(name for name, _kind, _nullable in columns)
        self._two_sessions(
            [
                f"INSERT INTO postings_posting ({names})"
                + postings.select(first, min(first + FILL_CHUNK - 1, self.spec.postings), columns)
                for first in range(1, self.spec.postings + 1, FILL_CHUNK)
            ]
        )

    def _two_sessions(self, statements: list[str]) -> None:
        """Run statements in order, each by whichever of two sessions is free first."""
        queue = list(statements)
        lock = threading.Lock()

        def work() -> None:
            with self.session() as conn:
                while True:
                    with lock:
                        if not queue:
                            return
                        statement = queue.pop(0)
                    conn.execute(statement)  # type: ignore[arg-type]

        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(work) for _ in range(2)]
            for future in futures:
                try:
                    future.result()
                except BaseException:
                    with lock:
                        queue.clear()  # the other session stops after its statement
                    raise

    def _check(self, cur: psycopg.Cursor) -> None:
        """Check a sample of postings against the trigger and the app's own functions."""
        from postings import duplicates
        from postings.text import render_description, summarize

        rng = random.Random(f"{self.spec.seed}:sample")
        ids = sorted(rng.sample(range(1, self.spec.postings + 1), min(300, self.spec.postings)))
        cur.execute(
            "SELECT count(*) FROM postings_posting p JOIN postings_company c"
            " ON c.id = p.company_id WHERE p.id = ANY(%s) AND p.search_vector IS DISTINCT FROM ("
            f"setweight(to_tsvector('{TS_CONFIG}', coalesce(p.title, '')), 'A') ||"
            f" setweight(to_tsvector('{TS_CONFIG}', coalesce(c.name, '')), 'B') ||"
            f" setweight(to_tsvector('{TS_CONFIG}', coalesce(p.city, '') || ' ' ||"
            " coalesce(p.region, '')), 'C') ||"
            f" setweight(to_tsvector('{TS_CONFIG}', coalesce(p.description, '')), 'D'))",
            [ids],
        )
        (wrong_vectors,) = cur.fetchone()  # type: ignore[misc]
        problems = [f"{wrong_vectors} of {len(ids)} search vectors differ"] if wrong_vectors else []
        cur.execute(
            "SELECT id, title, description, description_html, summary, description_key,"
            " apply_url, apply_key, title_key FROM postings_posting WHERE id = ANY(%s)",
            [ids],
        )
        for pid, title, md, html_text, summary, dkey, url, akey, tkey in cur.fetchall():
            if render_description(md) != html_text:
                problems.append(f"{pid}: description_html is not render_description()")
            if summarize(html_text) != summary:
                problems.append(f"{pid}: summary is not summarize()")
            if duplicates.description_key(html_text) != dkey:
                problems.append(f"{pid}: description_key differs")
            if duplicates.apply_key(url) != akey:
                problems.append(f"{pid}: apply_key differs")
            if duplicates.title_key(title) != tkey:
                problems.append(f"{pid}: title_key differs")
        if problems:
            raise RuntimeError(
                "the data set is not what the app would store:\n  " + "\n  ".join(problems[:20])
            )

    def _describe(self, cur: psycopg.Cursor) -> dict[str, Any]:
        """A few facts of the data set, from a 2 % sample of its pages (counting a million rows
        would take longer than the rest of the check)."""
        sample = f"postings_posting TABLESAMPLE SYSTEM (2) REPEATABLE ({self.spec.seed})"
        cur.execute(f"SELECT count(*) FROM {sample}")
        (sampled,) = cur.fetchone()  # type: ignore[misc]
        scale = self.spec.postings / max(sampled, 1)
        facts: dict[str, Any] = {"built_at": self.spec.now, "sampled_rows": sampled}
        cur.execute(f"SELECT status, count(*) FROM {sample} GROUP BY 1 ORDER BY 2 DESC")
        facts["statuses"] = {status: round(n * scale) for status, n in cur.fetchall()}
        cur.execute(
            "SELECT count(*) FILTER (WHERE status = 'published' AND (deadline IS NULL OR"
            " deadline > now())), round(avg(length(description))), min(length(description)),"
            " max(length(description)), round(100.0 * count(salary_min) / count(*), 1)"
            f" FROM {sample}"
        )
        open_, average, shortest, longest, salaried = cur.fetchone()  # type: ignore[misc]
        facts["open"] = round(open_ * scale)
        facts["description_chars"] = [int(average), shortest, longest]
        facts["with_salary_percent"] = float(salaried)
        facts["matches"] = {}
        for words in SEARCH_FACTS:
            cur.execute(
                f"SELECT count(*) FROM {sample}"
                f" WHERE search_vector @@ websearch_to_tsquery('{TS_CONFIG}', %s)",
                [words],
            )
            facts["matches"][words] = round(cur.fetchone()[0] * scale)  # type: ignore[index]
        cur.execute(
            "SELECT pg_size_pretty(pg_total_relation_size('postings_posting')),"
            " pg_size_pretty(pg_relation_size('postings_posting')),"
            " pg_size_pretty(pg_relation_size('posting_search_gin'))"
        )
        facts["sizes"] = dict(zip(("table", "heap", "search index"), cur.fetchone(), strict=True))  # type: ignore[arg-type]
        return facts


# Searches whose number of matching postings the build reports (from a sample).
SEARCH_FACTS = ("developer", "engineer", '"data engineer" -senior', "kubernetes")


def _timestamp(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(epoch))


# --- Is the data set there? ---------------------------------------------------------------------


def record_migrations(dsn: str, migrations: str) -> None:
    """Note in the marker that the data set's schema is now that of these migrations."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            f"UPDATE {MARKER_TABLE} SET marker = jsonb_set(marker, '{{migrations}}', %s)",
            [json.dumps(migrations)],
        )


def migrations_digest() -> str:
    """A digest of the project's migration files: another digest means another schema."""
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def existing(
    dsn: str, spec: DatasetSpec, migrations: str
) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    """(None, facts, load) when the data set is there and current, else (why not, {}, {})."""
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(f"SELECT marker, facts, load FROM {MARKER_TABLE}").fetchone()
    except psycopg.errors.UndefinedTable:
        return "it has no marker (a build did not finish)", {}, {}
    except psycopg.errors.UndefinedColumn:
        return "its marker is of an older benchmark", {}, {}
    except psycopg.OperationalError as exc:
        if "does not exist" in str(exc):
            return "there is no such database yet", {}, {}
        raise
    if row is None:
        return "its marker is empty", {}, {}
    marker, facts, load = row
    for key, value in spec.marker(migrations).items():
        if key != "migrations" and marker.get(key) != value:
            return f"its {key} is {marker.get(key)!r}, wanted {value!r}", {}, {}
    facts = {**facts, "migrations": marker.get("migrations")}
    if time.time() - facts.get("built_at", 0) > MAX_AGE_DAYS * DAY:
        return f"it is over {MAX_AGE_DAYS} days old (its dates are relative to its build)", {}, {}
    return None, facts, load


MAX_AGE_DAYS = 7
