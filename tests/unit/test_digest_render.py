from __future__ import annotations

import email
import json
from datetime import UTC, datetime
from email.policy import default
from zoneinfo import ZoneInfo

from monitor.deliver.digest import build_digest
from monitor.deliver.email import compose, header_safe
from monitor.deliver.render import render_email, render_webhook
from tests.factories import stored_hit

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def digest_of(*hits, zone: str = "UTC"):  # type: ignore[no-untyped-def]
    return build_digest("analysts", list(hits), now=NOW, zone=ZoneInfo(zone), zone_name=zone,
                        order=["delegation_visits", "anniversaries", "defense_treaties"])


def test_item_on_several_watchlists_is_one_entry_naming_all_lists() -> None:
    a = stored_hit(item_id=7, watchlist="anniversaries", score=1.0)
    b = stored_hit(item_id=7, watchlist="defense_treaties", score=3.0)
    digest = digest_of(a, b)
    assert len(digest.entries) == 1
    entry = digest.entries[0]
    assert entry.watchlists == ("defense_treaties", "anniversaries")
    assert sorted(entry.hit_ids) == sorted([a.hit_id, b.hit_id])
    assert [s.watchlist for s in digest.sections] == ["defense_treaties"]


def test_times_are_shown_in_the_subscribers_zone() -> None:
    digest = digest_of(stored_hit(published_at=datetime(2026, 11, 20, 23, 30, tzinfo=UTC)), zone="Asia/Seoul")
    text = render_email(digest).text
    assert "2026-11-21 08:30" in text


def test_email_names_every_link_once_in_text_and_html() -> None:
    hits = [stored_hit() for _ in range(3)]
    rendered = render_email(digest_of(*hits))
    for hit in hits:
        assert rendered.text.count(hit.link) == 1
        assert f'href="{hit.link}"' in rendered.html
    assert rendered.subject == "[monitor] 3 new items: delegation visits"


def test_hostile_title_is_escaped_in_html() -> None:
    hit = stored_hit(title='<script>alert(1)</script><img src=x onerror=alert(2)>',
                     link='https://x.example/"onmouseover="alert(3)')
    html = render_email(digest_of(hit)).html
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html
    assert '"onmouseover="' not in html


def test_evidence_is_shown_as_why_it_matched() -> None:
    hit = stored_hit(watchlist="anniversaries", evidence=[
        {"kind": "actor", "text": "China", "field": "title"},
        {"kind": "anniversary", "event": "dprk_prc_ties", "event_name": "DPRK–China diplomatic relations",
         "ordinal": 75, "expected_ordinal": 75, "ordinal_ok": True},
    ])
    rendered = render_email(digest_of(hit))
    assert "Why (anniversaries): China; 75th anniversary of DPRK–China diplomatic relations (matches the year)" \
        in rendered.text
    assert "75th anniversary of DPRK–China diplomatic relations" in rendered.html


def test_header_injection_through_a_title_creates_no_header() -> None:
    subject = "Talks\r\nBcc: victim@example.org\r\n\r\nbody =?utf-8?q?=0D=0ABcc:_x@example.org?="
    raw = compose(subject=subject, text="t", html="<p>t</p>", sender="monitor@example.org",
                  recipients=["a@example.org"], key="msg_1", date=NOW)
    parsed = email.message_from_bytes(raw, policy=default)
    assert parsed["Bcc"] is None
    assert "\n" not in str(parsed["Subject"]) and "\r" not in str(parsed["Subject"])
    assert parsed["Message-ID"] == "<msg_1@example.org>"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert header_safe("a\nb\x00c") == "a b c"


def test_composed_message_has_text_and_html_parts() -> None:
    raw = compose(subject="s", text="plain ü", html="<p>html ü</p>", sender="m@example.org",
                  recipients=["a@example.org", "b@example.org"], key="msg_2", date=NOW)
    parsed = email.message_from_bytes(raw, policy=default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed.get_body(("plain",)).get_content().strip() == "plain ü"  # type: ignore[union-attr]
    assert "html ü" in parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert parsed["To"] == "a@example.org, b@example.org"


def test_webhook_payload_carries_every_hit_with_evidence() -> None:
    a = stored_hit(item_id=1, watchlist="anniversaries")
    b = stored_hit(item_id=1, watchlist="defense_treaties")
    c = stored_hit(item_id=2)
    body = json.loads(render_webhook(digest_of(a, b, c), delivery_key="msg_x"))
    assert body["type"] == "monitor.digest" and body["version"] == 1 and body["id"] == "msg_x"
    assert sorted(h for item in body["items"] for h in item["hit_ids"]) == sorted([a.hit_id, b.hit_id, c.hit_id])
    assert {item["link"] for item in body["items"]} == {a.link, c.link}
    assert all(reason["evidence"] for item in body["items"] for reason in item["reasons"])


def test_items_of_one_story_are_one_entry_with_also_reported_by() -> None:
    wire = stored_hit(item_id=100, story_id=5, feed_name="Wire A", published_at=datetime(2026, 11, 20, 8, tzinfo=UTC))
    rewrite = stored_hit(item_id=101, story_id=5, feed_name="Outlet B",
                         published_at=datetime(2026, 11, 20, 9, tzinfo=UTC))
    other = stored_hit(item_id=102, story_id=6)
    digest = digest_of(rewrite, wire, other)
    assert len(digest.entries) == 2
    [lead] = [e for e in digest.entries if e.item_id == 100]
    assert [a.source for a in lead.also] == ["Outlet B"]
    assert sorted(digest.hit_ids) == sorted([wire.hit_id, rewrite.hit_id, other.hit_id])
    rendered = render_email(digest)
    assert rendered.text.count(rewrite.link) == 1 and f'href="{rewrite.link}"' in rendered.html
    assert "Also reported by Outlet B" in rendered.text


def test_follow_up_reports_are_marked() -> None:
    rendered = render_email(digest_of(stored_hit(story_id=9, follow_up=True)))
    assert "Follow-up: more reports of a story sent earlier." in rendered.text
