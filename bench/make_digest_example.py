"""Render the example digest in docs/: HTML and text bodies, and a PNG of the HTML.

The digest is built by the real pure steps (``build_digest``, ``render_email``) from
hand-written stored hits over the three seeded watchlists: nine stories, one of them on
two lists, anniversaries with and without an ordinal. Sources and links are fictitious
(``example.org`` hosts); evidence has the documented shape (docs/watchlists.md), with
offsets computed from the text it points into.

The PNG is taken with headless Chromium (Debian package ``chromium``); ``--narrow PATH``
also writes a 320 px wide screenshot for checking the layout on a phone.

Usage: python bench/make_digest_example.py [--no-screenshot] [--narrow /tmp/digest-320.png]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from monitor.deliver.digest import build_digest
from monitor.deliver.render import render_email
from monitor.domain import StoredHit
from monitor.match import load_watchlists

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NOW = datetime(2025, 10, 6, 7, 30, tzinfo=UTC)
ZONE = "Asia/Seoul"
ORDER = ["delegation_visits", "anniversaries", "defense_treaties"]

FEEDS = {
    "pyongyang": ("Pyongyang Press Digest", "https://pyongyang-digest.example.org/rss"),
    "moscow": ("Moscow Diplomatic Bulletin", "https://moscow-bulletin.example.org/feed.xml"),
    "beijing": ("Beijing Daily Brief", "https://beijing-brief.example.org/atom.xml"),
    "fareast": ("Far East Business Review", "https://fareast-review.example.org/rss"),
}


def ev(kind: str, rule: str, field: str, text: str, story: dict[str, str], **extra: Any) -> dict[str, Any]:
    """One evidence record; ``start``/``end`` point at ``text`` inside the story's field."""
    start = story[field].find(text)
    if start < 0:
        raise ValueError(f"{text!r} is not in the {field} of {story['title']!r}")
    return {"rule": rule, "field": field, "start": start, "end": start + len(text), "text": text, "kind": kind,
            **extra}


def anniversary(rule: str, field: str, text: str, story: dict[str, str], *, event: str, name: str,
                ordinal: int | None, expected: int | None) -> dict[str, Any]:
    ok = None if ordinal is None or expected is None else ordinal == expected
    return ev("anniversary", rule, field, text, story, event=event, event_name=name, ordinal=ordinal,
              expected_ordinal=expected, ordinal_ok=ok)


def stories() -> list[tuple[dict[str, str], list[tuple[str, float, list[dict[str, Any]]]]]]:
    """(story, [(watchlist, score, evidence)]) for every item in the digest."""
    out: list[tuple[dict[str, str], list[tuple[str, float, list[dict[str, Any]]]]]] = []

    s = {"feed": "pyongyang", "hours": "3.2", "slug": "cpc-delegation-arrives",
         "title": "Chinese party delegation arrives in Pyongyang to mark 76 years of diplomatic ties",
         "summary": "The delegation of the Communist Party of China was met at the airport by a member of the "
                    "WPK Political Bureau. Talks with the DPRK side on trade, tourism and cultural exchange are "
                    "expected before Monday's reception."}
    out.append((s, [
        ("delegation_visits", 2.8, [
            ev("actor", "visit_pair", "title", "Chinese party delegation", s, actor="cpc", alias="chinese party"),
            ev("cue", "visit_pair", "title", "arrives in", s, cue="travel", alias="arrive*"),
            ev("actor", "visit_pair", "title", "Pyongyang", s, actor="pyongyang", alias="pyongyang"),
        ]),
        ("anniversaries", 2.2, [
            anniversary("calendar_event", "title", "76 years of diplomatic ties", s, event="dprk_prc_ties",
                        name="DPRK–PRC diplomatic relations", ordinal=76, expected=76),
        ]),
    ]))

    s = {"feed": "moscow", "hours": "5.5", "slug": "deputy-fm-talks",
         "title": "Russian deputy foreign minister holds talks in Pyongyang on regional security",
         "summary": "The two sides reviewed the implementation of agreements reached at last year's summit and "
                    "discussed the situation on the Korean Peninsula, the ministry said."}
    out.append((s, [("delegation_visits", 2.4, [
        ev("actor", "visit_pair", "title", "Russian deputy foreign minister", s, actor="russia_mfa",
           alias="russian deputy foreign minister"),
        ev("cue", "visit_pair", "title", "holds talks", s, cue="meeting", alias="{hold|holds|held} talks"),
        ev("actor", "visit_pair", "title", "Pyongyang", s, actor="pyongyang", alias="pyongyang"),
    ])]))

    s = {"feed": "fareast", "hours": "9", "slug": "trade-delegation-vladivostok",
         "title": "DPRK trade delegation lands in Vladivostok ahead of intergovernmental commission",
         "summary": "Officials from the ministry of external economic relations will meet regional authorities "
                    "in Primorye to discuss the Tumen River road bridge and seasonal labour quotas."}
    out.append((s, [("delegation_visits", 2.1, [
        ev("actor", "visit_pair", "title", "DPRK", s, actor="dprk", alias="dprk"),
        ev("cue", "visit_pair", "title", "delegation", s, cue="travel", alias="delegation*"),
        ev("cue", "visit_pair", "title", "lands in", s, cue="travel", alias="lands in"),
        ev("actor", "visit_pair", "title", "Vladivostok", s, actor="vladivostok", alias="vladivostok"),
    ])]))

    s = {"feed": "beijing", "hours": "20", "slug": "art-troupe-received",
         "title": "North Korean culture minister receives visiting Chinese art troupe",
         "summary": "The troupe will perform in Pyongyang and Kaesong during a ten-day goodwill tour organised "
                    "under the bilateral cultural exchange plan for 2025."}
    out.append((s, [("delegation_visits", 1.6, [
        ev("actor", "meeting", "title", "North Korean culture minister", s, actor="dprk_culture_minister",
           alias="north korean culture minister"),
        ev("cue", "meeting", "title", "receives", s, cue="meeting", alias="receive*"),
        ev("actor", "meeting", "title", "Chinese", s, actor="china", alias="chinese"),
    ])]))

    s = {"feed": "pyongyang", "hours": "1.5", "slug": "reception-76th",
         "title": "Reception in Pyongyang marks 76th anniversary of DPRK–China diplomatic relations",
         "summary": "Senior officials and the Chinese ambassador spoke of friendship \"sealed in blood\" at the "
                    "reception, held on the anniversary of the establishment of ties on 6 October 1949."}
    out.append((s, [("anniversaries", 2.6, [
        anniversary("calendar_event", "title", "76th anniversary of DPRK–China diplomatic relations", s,
                    event="dprk_prc_ties", name="DPRK–PRC diplomatic relations", ordinal=76, expected=76),
        ev("actor", "calendar_event", "title", "DPRK", s, actor="dprk", alias="dprk"),
        ev("actor", "calendar_event", "title", "China", s, actor="china", alias="china"),
    ])]))

    s = {"feed": "moscow", "hours": "14", "slug": "treaty-evening",
         "title": "Embassy evening in Moscow recalls the 1961 friendship treaty",
         "summary": "Veterans, diplomats and students attended a film screening and photo exhibition on the "
                    "treaty between the Soviet Union and the DPRK."}
    out.append((s, [("anniversaries", 1.4, [
        anniversary("calendar_event", "title", "1961 friendship treaty", s, event="soviet_dprk_treaty_1961",
                    name="the Soviet–DPRK friendship treaty of 1961", ordinal=None, expected=64),
        ev("actor", "calendar_event", "summary", "Soviet Union", s, actor="ussr", alias="soviet union"),
        ev("actor", "calendar_event", "summary", "DPRK", s, actor="dprk", alias="dprk"),
    ])]))

    s = {"feed": "moscow", "hours": "4", "slug": "treaty-consultations",
         "title": "Russia and the DPRK hold first consultations under the strategic partnership treaty",
         "summary": "Defence and foreign ministry officials met in Moscow to review the mutual assistance "
                    "provisions of the treaty, which entered into force in December 2024."}
    out.append((s, [("defense_treaties", 2.5, [
        ev("actor", "treaty_pair", "title", "Russia", s, actor="russia", alias="russia"),
        ev("actor", "treaty_pair", "title", "DPRK", s, actor="dprk", alias="dprk"),
        ev("cue", "treaty_pair", "title", "strategic partnership treaty", s, cue="treaty",
           alias="strategic partnership treaty"),
        ev("cue", "treaty_pair", "summary", "mutual assistance", s, cue="defence", alias="mutual assistance"),
    ])]))

    s = {"feed": "fareast", "hours": "11", "slug": "military-technical-protocol",
         "title": "Pyongyang and Moscow sign protocol on military-technical cooperation",
         "summary": "The protocol sets up a joint working group and an annual schedule of expert meetings, "
                    "according to a statement from the Russian side."}
    out.append((s, [("defense_treaties", 1.9, [
        ev("actor", "treaty_pair", "title", "Pyongyang", s, actor="pyongyang", alias="pyongyang"),
        ev("actor", "treaty_pair", "title", "Moscow", s, actor="moscow", alias="moscow"),
        ev("cue", "treaty_pair", "title", "military-technical cooperation", s, cue="defence",
           alias="military{-| }technical cooperation"),
    ])]))

    s = {"feed": "beijing", "hours": "22", "slug": "defence-officials-1961-treaty",
         "title": "Chinese and North Korean defence officials discuss the 1961 treaty's obligations",
         "summary": "A spokesman said the meeting in Beijing reaffirmed the treaty of friendship, cooperation and "
                    "mutual assistance as the basis of relations between the two armed forces."}
    out.append((s, [("defense_treaties", 1.7, [
        ev("actor", "treaty_pair", "title", "Chinese", s, actor="china", alias="chinese"),
        ev("actor", "treaty_pair", "title", "North Korean", s, actor="dprk", alias="north korean"),
        ev("cue", "treaty_pair", "title", "1961 treaty", s, cue="treaty", alias="1961 treaty"),
    ])]))
    return out


def stored_hits() -> list[StoredHit]:
    hits: list[StoredHit] = []
    for item_id, (story, matches) in enumerate(stories(), start=101):
        feed_name, feed_url = FEEDS[story["feed"]]
        host = feed_url.split("/")[2]
        published = NOW - timedelta(hours=float(story["hours"]))
        for watchlist, score, evidence in matches:
            hits.append(StoredHit(
                hit_id=1000 + len(hits), item_id=item_id, watchlist=watchlist, score=score, evidence=evidence,
                title=story["title"], link=f"https://{host}/2025/10/{story['slug']}", summary=story["summary"],
                published_at=published, feed_name=feed_name, feed_url=feed_url,
                created_at=published + timedelta(minutes=7),
            ))
    return hits


def screenshot(chromium: str, html: Path, png: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={width},{height}",
             f"--screenshot={png}", html.resolve().as_uri()],
            check=True, capture_output=True, timeout=120,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DOCS, help="folder for digest-example.{html,txt,png}")
    parser.add_argument("--no-screenshot", action="store_true", help="write the HTML and text only")
    parser.add_argument("--narrow", type=Path, help="also write a 320 px wide screenshot here")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args(argv)

    loaded = load_watchlists(ROOT / "watchlists")
    titles = {w.name: w.title for w in loaded.watchlists}
    digest = build_digest("korea-desk", stored_hits(), now=NOW, zone=ZoneInfo(ZONE), zone_name=ZONE,
                          titles=titles, order=ORDER)
    rendered = render_email(digest)
    args.out.mkdir(parents=True, exist_ok=True)
    html = args.out / "digest-example.html"
    html.write_text(rendered.html, encoding="utf-8")
    (args.out / "digest-example.txt").write_text(rendered.text, encoding="utf-8")
    print(f"subject: {rendered.subject}")
    print(f"wrote {html} and {args.out / 'digest-example.txt'}: {len(digest.entries)} entries, "
          f"{len(digest.hit_ids)} hits")
    if args.no_screenshot:
        return 0
    png = args.out / "digest-example.png"
    screenshot(args.chromium, html, png, 700, 1600)
    print(f"wrote {png} ({png.stat().st_size // 1024} KB)")
    if args.narrow:
        screenshot(args.chromium, html, args.narrow, 320, 2400)
        print(f"wrote {args.narrow} ({args.narrow.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
