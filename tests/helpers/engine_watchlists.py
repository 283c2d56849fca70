"""Small, fixed watchlists for the engine tests, written into a temporary folder.

They hold just enough actors, cues, rules and calendar events to exercise the matcher, so the
engine tests do not move when the seeded lists in ``watchlists/`` are tuned.
"""

from __future__ import annotations

from pathlib import Path

ACTORS = """\
kind: actors
sides: [dprk, china, russia, rok]
actors:
  dprk: {name: North Korea, side: dprk, type: country, aliases: [North Korea, DPRK, 朝鲜]}
  pyongyang: {name: Pyongyang, side: dprk, type: capital, aliases: [Pyongyang]}
  kim_jong_un: {name: Kim Jong Un, side: dprk, type: person, aliases: ["Kim Jong {Un|Eun}", 김정은, 金正恩]}
  kim_bare: {name: Kim, side: dprk, type: person, aliases: [Kim]}
  choe_son_hui: {name: Choe Son Hui, side: dprk, type: person, aliases: ["{Choe|Choi} {Son|Sun} {Hui|Hee}"]}
  ri_yong_ho: {name: Ri Yong Ho, side: dprk, type: person, aliases: ["{Ri|Lee|Rhee} Yong Ho"]}
  kpa: {name: Korean People's Army, side: dprk, type: body, aliases: ["Korean People{'|}s Army"]}
  china: {name: China, side: china, type: country, aliases: [China, Chinese, 中国, 중국]}
  beijing: {name: Beijing, side: china, type: capital, aliases: [Beijing]}
  xi_jinping: {name: Xi Jinping, side: china, type: person, aliases: [Xi Jinping, Xi, 习近平]}
  wang_yi: {name: Wang Yi, side: china, type: person, aliases: [Wang Yi]}
  russia: {name: Russia, side: russia, type: country, aliases: [Russia, Russian]}
  moscow: {name: Moscow, side: russia, type: capital, aliases: [Moscow, Vladivostok]}
  putin: {name: Putin, side: russia, type: person, aliases: [Putin]}
  lavrov: {name: Lavrov, side: russia, type: person, aliases: [Lavrov]}
  shoigu: {name: Shoigu, side: russia, type: person, aliases: [Shoigu]}
  rok: {name: South Korea, side: rok, type: country, aliases: [South Korea, "South Korea{'|}s", Seoul]}
  rok_people: {name: South Korean people, side: rok, type: person, aliases: [Kim Dae-jung, Kim Hong-kyun]}
  dprk_as_topic:
    name: The DPRK as a subject
    type: topic
    aliases: ["{on|about|cover sanctions on} North Korea"]
"""

CALENDAR = """\
kind: calendar
events:
  dprk_ussr_ties:
    name: Establishment of DPRK–USSR diplomatic relations
    date: 1948-10-12
    source: test calendar
    parties: [dprk, russia]
    aliases: ["diplomatic {ties|relations}"]
  dprk_prc_ties:
    name: Establishment of DPRK–PRC diplomatic relations
    date: 1949-10-06
    source: test calendar
    parties: [dprk, china]
    aliases: ["diplomatic {ties|relations}"]
  pla_day:
    name: Founding of the PLA
    date: 1927-08-01
    source: test calendar
    parties: [china]
    aliases: ["anniversary of the PLA", "PLA Day"]
  korean_war_armistice:
    name: Korean War Armistice (Victory Day in the DPRK)
    date: 1953-07-27
    source: test calendar
    parties: [dprk]
    aliases: ["Victory Day"]
  victory_day_1945:
    name: Soviet victory (Victory Day)
    date: 1945-05-09
    source: test calendar
    parties: [russia]
    aliases: ["Victory Day"]
"""

VISITS = """\
kind: watchlist
name: delegation_visits
title: Visits
version: "1"
severity: high
threshold: 0.75
fields: {title: 1.0, summary: 0.9, content: 0.8}
cues:
  travel: ["visit*", "arriv*", "talks", "summit*", "{land|lands} in", 방문, 会谈]
  meeting: ["meet", "meets", "{host|hosts|hosted}"]
  remote: ["message*", "congratulat*"]
  leisure: ["tourist*"]
rules:
  - id: travel
    within: sentence
    all:
      - side: dprk
      - side: [china, russia]
      - cue: travel
    none:
      - side: rok
      - cue: remote
      - cue: leisure
  - id: meeting
    within: sentence
    all:
      - side: dprk
      - side: [china, russia]
      - cue: meeting
    none:
      - side: rok
      - cue: remote
"""

ANNIVERSARIES = """\
kind: watchlist
name: anniversaries
title: Anniversaries
version: "1"
severity: medium
threshold: 0.75
fields: {title: 1.0, summary: 0.9, content: 0.8}
cues:
  anniversary: ["anniversar*", "years of", "{mark|marks|marked}"]
rules:
  - id: calendar_event
    anniversary: true
    within: sentence
    all:
      - event: any
      - cue: anniversary
      - side: dprk
        scope: document
      - side: [china, russia]
        scope: document
    none:
      - side: rok
"""


def write_engine_watchlists(folder: Path) -> Path:
    """Write the actors, calendar and two watchlists into ``folder``; return it."""
    for name, text in [("actors.yaml", ACTORS), ("calendar.yaml", CALENDAR), ("delegation_visits.yaml", VISITS),
                       ("anniversaries.yaml", ANNIVERSARIES)]:
        (folder / name).write_text(text, encoding="utf-8")
    return folder
