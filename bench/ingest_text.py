"""Generated feed items for ``bench/ingest.py``: distinct text with a controlled share of watchlist hits.

Two shapes of text:

- ``realistic``: English news sentences. Hit items are DPRK–China/Russia delegation visits,
  anniversaries and treaty stories (what the seeded watchlists look for); non-hit items are
  ordinary news, a fifth of them near misses that name North Korea, China or Russia without
  the pair a watchlist needs, so the matcher does candidate work on them as it does on real feeds.
- ``pseudo``: the earlier shape: titles and summaries of pseudo-words around a few real
  phrases, hit items from four templates with a pseudo-word tail.

Which items are hit candidates is decided per item from a seeded generator, so the share is
controlled (``hit_share``) and the same for every run; the share that actually hits is read
from the database afterwards, since a template can miss a watchlist's threshold.
"""

from __future__ import annotations

import random

SYLLABLES = ["ka", "ro", "mi", "ten", "vus", "lo", "pre", "dan", "sko", "yel", "ur", "fin", "gol", "bra", "ne", "tu"]
PHRASES = ["officials said on", "according to a statement", "the ministry said", "in a report published",
           "the city council", "critics argued that", "a spokesperson said", "in the coming weeks"]
PSEUDO_HITS = [
    ("Chinese delegation led by {official} arrives in Pyongyang",
     "A Chinese party and government delegation led by {official} arrived in Pyongyang on {day} for an "
     "official goodwill visit, the Korean Central News Agency said."),
    ("Kim Jong Un hosts banquet for visiting Russian delegation",
     "North Korean leader Kim Jong Un hosted a banquet on {day} for a Russian government delegation led by "
     "{official}, state media reported."),
    ("North Korea and China mark anniversary of friendship treaty",
     "North Korea and China exchanged messages on {day} marking the anniversary of the 1961 Treaty of "
     "Friendship, Cooperation and Mutual Assistance, and a reception was held at the Chinese embassy."),
    ("Russia ratifies military cooperation agreement with DPRK",
     "Russia's parliament on {day} ratified a military cooperation agreement with North Korea, with "
     "{official} saying the pact obliges mutual assistance in the event of an armed attack."),
]
OFFICIALS = ["Zhao Leji", "Wang Yi", "Sergei Shoigu", "Li Hongzhong", "Sergei Lavrov", "Andrei Belousov"]
DPRK_OFFICIALS = ["Choe Son Hui", "Pak Thae Song", "Kim Tok Hun", "Ri Il Hwan", "No Kwang Chol"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
REAL_HITS = [
    ("{official} arrives in Pyongyang for talks with {dprk_official}",
     "{official} arrived in Pyongyang on {day} at the head of a {side} government delegation, the Korean "
     "Central News Agency reported, and was met at the airport by {dprk_official}. The visit is expected "
     "to cover {topic}."),
    ("Kim Jong Un receives visiting {side} delegation",
     "North Korean leader Kim Jong Un on {day} received a {side} delegation led by {official} in "
     "Pyongyang, state media said, and the two sides discussed {topic}."),
    ("North Korea and {country} mark {ordinal} anniversary of diplomatic ties",
     "North Korea and {country} exchanged congratulatory messages on {day} marking the {ordinal} "
     "anniversary of diplomatic relations, and a reception was held at the {side} embassy in Pyongyang."),
    ("{dprk_official} leads DPRK delegation to {capital}",
     "A delegation of the Democratic People's Republic of Korea led by {dprk_official} left Pyongyang on "
     "{day} for {capital}, where it will hold talks on {topic} with {official}."),
    ("{country} and North Korea sign agreement on {topic}",
     "{country} and North Korea signed an agreement on {topic} on {day} during a visit to Pyongyang by "
     "{official}, the foreign ministry in {capital} said."),
]
SIDES = {"China": ("Chinese", "Beijing", ["Wang Yi", "Zhao Leji", "Li Hongzhong", "Liu Jianchao"]),
         "Russia": ("Russian", "Moscow", ["Sergei Lavrov", "Sergei Shoigu", "Andrei Belousov", "Alexander Kozlov"])}
TOPICS = ["trade and economic cooperation", "tourism and air links", "agriculture", "education and culture",
          "health care", "fisheries", "energy supplies", "the construction of a road bridge"]
ORDINALS = ["70th", "75th", "76th", "77th", "80th"]

# Ordinary news: subject, verb phrase, object, detail. Combined with numbers and places,
# every item's text is distinct and story grouping sees realistic overlap, not copies.
SUBJECTS = ["The city council", "The central bank", "A regional court", "The transport ministry", "Local farmers",
            "The health authority", "Researchers at the university", "The football club", "Energy regulators",
            "The port authority", "Teachers' unions", "A consortium of insurers", "The weather service",
            "Airline executives", "The national statistics office", "Police in the capital"]
VERBS = ["approved a plan to expand", "warned of delays to", "announced new rules for", "cut its forecast for",
         "opened an inquiry into", "reported record demand for", "postponed a decision on", "raised concerns about",
         "signed a contract to modernise", "published a review of"]
OBJECTS = ["the northern rail line", "household electricity prices", "wheat exports", "the harbour terminal",
           "youth unemployment", "hospital waiting lists", "the city's water network", "regional bus services",
           "coastal flood defences", "small business lending", "the grain harvest", "public broadband"]
PLACES = ["Lyon", "Porto", "Gdansk", "Valencia", "Leeds", "Graz", "Tampere", "Brno", "Bari", "Utrecht", "Cork",
          "Aarhus", "Ghent", "Malmo", "Kaunas", "Ljubljana"]
DETAILS = ["Officials said the work would start in {month} and cost about {n} million euros.",
           "The decision follows {n} complaints received since {month}, a spokesperson said.",
           "Critics argued the plan would affect {n} thousand residents in {place}.",
           "A report published on {day} put the shortfall at {n} percent.",
           "The measure is due to be reviewed in {month} after a consultation in {place}."]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October"]
NEAR_MISSES = [
    ("North Korea fires ballistic missile into sea, Seoul says",
     "North Korea fired a ballistic missile into the sea off its east coast on {day}, South Korea's military "
     "said, the {ordinal} launch this year."),
    ("China and {third} sign {topic} deal",
     "China and {third} signed an agreement on {topic} on {day} in Beijing, the foreign ministry said."),
    ("Russia's central bank holds key rate at {n} percent",
     "Russia's central bank kept its key interest rate at {n} percent on {day}, citing inflation."),
    ("Typhoon brings heavy rain to the Korean peninsula",
     "A typhoon brought heavy rain to the Korean peninsula on {day}, with {n} millimetres recorded near Seoul."),
]
THIRDS = ["Pakistan", "Brazil", "Kenya", "Vietnam", "Chile", "Egypt"]


def _words(rng: random.Random, n: int) -> str:
    return " ".join("".join(rng.choices(SYLLABLES, k=rng.randint(2, 4))) for _ in range(n))


def _pseudo(rng: random.Random, hit: bool) -> tuple[str, str]:
    detail = f"{_words(rng, 12)}, {rng.choice(PHRASES)} {_words(rng, 14)}."
    if hit:
        title, lead = rng.choice(PSEUDO_HITS)
        values = {"official": rng.choice(OFFICIALS), "day": rng.choice(DAYS)}
        return title.format(**values), f"{lead.format(**values)} {detail}"
    return _words(rng, 7).capitalize(), f"{_words(rng, 10).capitalize()} {rng.choice(PHRASES)} {detail}"


def _values(rng: random.Random) -> dict[str, str]:
    country = rng.choice(list(SIDES))
    side, capital, officials = SIDES[country]
    return {"country": country, "side": side, "capital": capital, "official": rng.choice(officials),
            "dprk_official": rng.choice(DPRK_OFFICIALS), "day": rng.choice(DAYS), "topic": rng.choice(TOPICS),
            "ordinal": rng.choice(ORDINALS), "third": rng.choice(THIRDS), "n": str(rng.randint(2, 950)),
            "month": rng.choice(MONTHS), "place": rng.choice(PLACES)}


def _ordinary(rng: random.Random, values: dict[str, str]) -> tuple[str, str]:
    subject, verb, obj = rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)
    place = values["place"]
    title = f"{place}: {subject.lower().removeprefix('the ')} {verb.split(' ', 1)[0]} {obj} plan"
    details = " ".join(d.format(**values) for d in rng.sample(DETAILS, 2))
    return title[0].upper() + title[1:], f"{subject} in {place} {verb} {obj} on {values['day']}. {details}"


def _realistic(rng: random.Random, hit: bool) -> tuple[str, str]:
    values = _values(rng)
    if hit:
        title, lead = rng.choice(REAL_HITS)
        details = " ".join(d.format(**values) for d in rng.sample(DETAILS, 1))
        return title.format(**values), f"{lead.format(**values)} {details}"
    if rng.random() < 0.2:
        title, lead = rng.choice(NEAR_MISSES)
        details = " ".join(d.format(**values) for d in rng.sample(DETAILS, 1))
        return title.format(**values), f"{lead.format(**values)} {details}"
    return _ordinary(rng, values)


def item_text(feed: int, round_: int, k: int, hit_share: float, shape: str) -> tuple[str, str, bool]:
    """Title, summary and whether the item was generated as a hit candidate."""
    rng = random.Random(feed * 1_000_003 + round_ * 7919 + k)
    hit = rng.random() < hit_share
    title, summary = (_realistic if shape == "realistic" else _pseudo)(rng, hit)
    # A serial keeps every item's text distinct, as real items are, even where templates coincide.
    return title, f"{summary} (ref {feed}-{round_}-{k})", hit
