from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from monitor.deliver.chat import CHAT_FORMATS, ZWSP, render_chat, safe_url
from monitor.deliver.digest import Digest, build_digest
from monitor.domain import StoredHit
from tests.factories import stored_hit

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
FORMATS = ["slack", "discord", "teams", "mattermost"]
HOSTILE_TITLE = "<!channel> <@U123> @everyone @here <script>alert(1)</script> [click](https://evil) *bold* " \
                "<https://evil|click> _it_ ~s~ `code` # head > quote"
HOSTILE_LINK = "https://news.example.org/a|b>c?q=1&r=(2)"


def digest_of(*hits: StoredHit) -> Digest:
    return build_digest("analysts", list(hits), now=NOW, zone=ZoneInfo("UTC"), zone_name="UTC",
                        order=["delegation_visits", "anniversaries", "defense_treaties"])


def bodies(digest: Digest, fmt: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in render_chat(digest, fmt, delivery_key="msg_1")]


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def big_digest(n: int = 120) -> tuple[Digest, list[StoredHit]]:
    lists = ["delegation_visits", "anniversaries", "defense_treaties"]
    hits = [stored_hit(watchlist=lists[i % 3], title=f"Delegation story {i} " + "word " * 40,
                       published_at=NOW - timedelta(minutes=i)) for i in range(n)]
    return digest_of(*hits), hits


def slack_texts(body: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in body["blocks"] if b["type"] == "section"]


def teams_texts(body: dict[str, Any]) -> list[str]:
    card = body["attachments"][0]["content"]
    texts: list[str] = []
    for element in card["body"]:
        items = element["items"] if element["type"] == "Container" else [element]
        texts.extend(item["text"] for item in items)
    return texts


def assert_within_limits(fmt: str, body: dict[str, Any], raw: bytes) -> None:
    if fmt == "slack":
        assert len(body["blocks"]) <= 50
        assert utf16(body["text"]) <= 3000
        assert all(utf16(t) <= 3000 for t in slack_texts(body))
    elif fmt == "discord":
        embeds = body["embeds"]
        assert len(embeds) <= 10 and utf16(body["content"]) <= 2000
        assert all(utf16(e["title"]) <= 256 and utf16(e["description"]) <= 4096 for e in embeds)
        assert sum(utf16(e["title"]) + utf16(e["description"]) + utf16(e["footer"]["text"]) for e in embeds) <= 6000
    elif fmt == "teams":
        assert len(raw) < 28_000
    else:
        assert utf16(body["text"]) <= 16_383


@pytest.mark.parametrize("fmt", FORMATS)
def test_body_has_the_platforms_shape_and_carries_the_entry(fmt: str) -> None:
    hit = stored_hit(title="Kim Jong Un receives Chinese delegation")
    (body,) = bodies(digest_of(hit), fmt)
    text = json.dumps(body, ensure_ascii=False)
    assert hit.link is not None and hit.link in text and "Kim Jong Un receives Chinese delegation" in text
    assert "analysts" in text and "Why" in text and "Xi Jinping" in text
    if fmt == "slack":
        assert set(body) == {"text", "blocks"}
        assert body["blocks"][0]["type"] == "header"
        assert f"<{hit.link}|Kim Jong Un receives Chinese delegation>" in slack_texts(body)[1]
    elif fmt == "discord":
        assert body["allowed_mentions"] == {"parse": []}
        assert body["embeds"][0]["url"] == hit.link
    elif fmt == "teams":
        assert body["type"] == "message"
        attachment = body["attachments"][0]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        card = attachment["content"]
        assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
        assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
        blocks = [b for e in card["body"] for b in (e["items"] if e["type"] == "Container" else [e])]
        assert all(b["type"] == "TextBlock" and b["wrap"] is True for b in blocks)
    else:
        assert body["username"] == "monitor"
        assert f"[Kim Jong Un receives Chinese delegation]({hit.link})" in body["text"]


def test_why_line_shows_phrases_and_anniversary_text() -> None:
    hit = stored_hit(watchlist="anniversaries", evidence=[
        {"kind": "actor", "text": "China", "field": "title"},
        {"kind": "anniversary", "event_name": "DPRK–China diplomatic relations", "ordinal": 75,
         "ordinal_ok": True},
    ])
    (body,) = bodies(digest_of(hit), "slack")
    assert "Why (anniversaries): China; 75th anniversary of DPRK–China diplomatic relations (matches the year)" \
        in slack_texts(body)[1]


def test_slack_feed_text_cannot_mention_or_link() -> None:
    (body,) = bodies(digest_of(stored_hit(title=HOSTILE_TITLE, link=HOSTILE_LINK)), "slack")
    entry = slack_texts(body)[1]
    for control in ("<!channel>", "<@U123>", "<script>", "<https://evil|click>"):
        assert control not in entry
    assert "&lt;!channel&gt;" in entry and "&lt;https://evil|click&gt;" in entry
    # Exactly one real link: ours, whose URL cannot end early at | or >.
    links = re.findall(r"<([^<>]*)>", entry)
    assert len(links) == 1
    url, _, label = links[0].partition("|")
    assert url == "https://news.example.org/a%7Cb%3Ec?q=1&amp;r=%282%29"
    assert label.startswith("&lt;!channel&gt;")
    assert all(block["text"].get("verbatim") is True for block in body["blocks"] if block["type"] == "section")
    assert "<" not in body["text"] and "channel" not in body["text"]


def test_discord_feed_text_cannot_mention_or_format() -> None:
    (body,) = bodies(digest_of(stored_hit(title=HOSTILE_TITLE, link=HOSTILE_LINK)), "discord")
    assert body["allowed_mentions"] == {"parse": []}
    embed = body["embeds"][0]
    title = embed["title"]
    assert "@everyone" not in title and "@here" not in title and "<@U123>" not in title
    assert f"@{ZWSP}everyone" in title and f"@{ZWSP}here" in title
    assert r"\[click\]\(https://evil\)" in title and r"\*bold\*" in title and r"\_it\_" in title
    assert r"\`code\`" in title and r"\# head \> quote" in title
    assert embed["url"] == "https://news.example.org/a%7Cb%3Ec?q=1&r=%282%29"


def test_teams_feed_text_cannot_link_or_format() -> None:
    (body,) = bodies(digest_of(stored_hit(title=HOSTILE_TITLE, link=HOSTILE_LINK)), "teams")
    link_line = next(t for t in teams_texts(body) if "news.example.org" in t)
    # One Markdown link, ours: every bracket and parenthesis from the feed is escaped.
    unescaped = re.findall(r"(?<!\\)[\[\]()]", link_line)
    assert unescaped == ["[", "]", "(", ")"]
    assert link_line.endswith("(https://news.example.org/a%7Cb%3Ec?q=1&r=%282%29)")
    assert r"\*bold\*" in link_line and r"\_it\_" in link_line


def test_mattermost_feed_text_cannot_mention_link_or_format() -> None:
    (body,) = bodies(digest_of(stored_hit(title=HOSTILE_TITLE, link=HOSTILE_LINK)), "mattermost")
    text = body["text"]
    assert "<" not in text and ">" not in text.replace("&gt;", "")
    assert "&lt;script&gt;" in text and "&lt;https://evil|click&gt;" not in text
    assert f"@{ZWSP}everyone" in text and f"@{ZWSP}here" in text and "@everyone" not in text
    assert r"\[click\]\(https://evil\)" in text and r"\*bold\*" in text
    assert "](https://news.example.org/a%7Cb%3Ec?q=1&r=%282%29)" in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_non_http_link_is_not_made_clickable(fmt: str) -> None:
    raw = render_chat(digest_of(stored_hit(link="javascript:alert(1)")), fmt, delivery_key="msg_1")[0]
    assert b"javascript:alert" not in raw.replace(b"\\", b"")  # shown escaped at most, never as a link target
    assert safe_url("javascript:alert(1)") is None and safe_url("/relative") is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_long_digest_is_split_with_every_link_exactly_once(fmt: str) -> None:
    digest, hits = big_digest(120)
    raws = render_chat(digest, fmt, delivery_key="msg_1")
    assert len(raws) > 1
    for i, raw in enumerate(raws, 1):
        body = json.loads(raw)
        assert_within_limits(fmt, body, raw)
        text = raw.decode("utf-8")
        assert "analysts" in text and f"part {i}/{len(raws)}" in text
    for hit in hits:
        assert hit.link is not None
        pattern = re.compile(re.escape(hit.link) + r"(?![0-9])")
        assert sum(len(pattern.findall(raw.decode("utf-8"))) for raw in raws) == 1, hit.link


@pytest.mark.parametrize("fmt", FORMATS)
def test_bulky_entries_split_on_size_before_the_entry_cap(fmt: str) -> None:
    evidence = [{"kind": "actor", "text": f"phrase-{i} " + "ж" * 60} for i in range(6)]
    hits = [stored_hit(item_id=1000 + n, watchlist=name, title=f"Long story {n} " + "ü" * 400, evidence=evidence,
                       link=f"https://news.example.org/{'p' * 600}/{n}")
            for n in range(30) for name in ["delegation_visits", "anniversaries"][: 1 + n % 2]]
    digest = digest_of(*hits)
    raws = render_chat(digest, fmt, delivery_key="msg_1")
    if fmt != "slack":  # Slack's limits are per block, so 30 entries still fit one message
        assert len(raws) > 1
    for raw in raws:
        assert_within_limits(fmt, json.loads(raw), raw)
    joined = b"".join(raws).decode("utf-8")
    for entry in digest.entries:
        assert entry.link is not None
        assert len(re.findall(re.escape(entry.link) + r"(?![0-9])", joined)) == 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_split_keeps_digest_order(fmt: str) -> None:
    digest, _ = big_digest(60)
    joined = "".join(raw.decode("utf-8") for raw in render_chat(digest, fmt, delivery_key="msg_1"))
    positions = [joined.index(e.link + ("|" if fmt == "slack" else "")) for e in digest.entries if e.link]
    assert positions == sorted(positions)


@pytest.mark.parametrize("fmt", FORMATS)
def test_oversized_feed_fields_are_clipped_to_fit_one_message(fmt: str) -> None:
    evidence = [{"kind": "actor", "text": f"phrase-{i} " + "é" * 80} for i in range(8)]
    hits = [stored_hit(item_id=1, watchlist=f"list_{j}", title="😀<&>" * 3000, feed_name="S&<" * 500,
                       link="https://news.example.org/" + "p" * 900, evidence=evidence) for j in range(6)]
    raws = render_chat(digest_of(*hits), fmt, delivery_key="msg_1")
    assert len(raws) == 1
    assert_within_limits(fmt, json.loads(raws[0]), raws[0])
    assert "+2 more watchlists" in raws[0].decode("utf-8")


def test_a_digest_that_fits_is_one_body_without_a_part_label() -> None:
    raws = render_chat(digest_of(*[stored_hit() for _ in range(5)]), "discord", delivery_key="msg_1")
    assert len(raws) == 1 and b"part " not in raws[0]


def test_rendering_is_deterministic() -> None:
    digest, _ = big_digest(30)
    assert all(render_chat(digest, f, delivery_key="k") == render_chat(digest, f, delivery_key="k") for f in FORMATS)


def test_unknown_format_is_rejected() -> None:
    assert set(CHAT_FORMATS) == set(FORMATS)
    with pytest.raises(ValueError, match="unknown chat webhook format 'irc'"):
        render_chat(digest_of(stored_hit()), "irc", delivery_key="msg_1")


def test_a_body_starting_mid_section_repeats_its_heading() -> None:
    digest, _ = big_digest(100)  # sections of 34/33/33 entries, bodies of 40
    texts = [json.loads(raw)["text"] for raw in render_chat(digest, "mattermost", delivery_key="msg_1")]
    assert "#### Anniversaries (continued)" in texts[1]
    assert "(continued)" not in texts[0]
