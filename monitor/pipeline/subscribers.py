"""What the delivery planner plans, with subscribers' preferences applied, and each message's own links.

The combining itself is pure (``monitor.preferences``); this module reads the stored preferences and
unsubscribes, makes the rows of addresses planned on their own, and signs the links a message carries.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from monitor import store
from monitor.config import Settings
from monitor.deliver.tokens import PREFERENCES, UNSUBSCRIBE, make_token
from monitor.preferences import Preference, Target, effective_subscriptions, schedule_key


def links_configured(settings: Settings) -> bool:
    """Messages can carry signed per-address links (a public base URL and a signing secret are set)."""
    return bool(settings.base_url and settings.unsubscribe_secret is not None
                and settings.unsubscribe_secret.get_secret_value())


def plan_targets(session: Session, settings: Settings, *, now: datetime) -> list[Target]:
    """The configured subscriptions split by address where preferences (or per-address links) need it."""
    prefs = [Preference.from_fields(p.subscription, p.address, p.watchlists, p.schedule, p.timezone, p.quiet_hours)
             for p in store.all_preferences(session)]
    targets = effective_subscriptions(settings.subscriptions, prefs, store.unsubscribed_pairs(session),
                                      per_address=links_configured(settings))
    configured = {sub.name: sub for sub in settings.subscriptions}
    store.ensure_own_rows(session, [
        store.OwnRow(name=t.row_name, parent=t.config.name, address=t.address or "", schedule=t.config.schedule,
                     timezone=t.config.timezone, key=schedule_key(t.config),
                     as_parent=schedule_key(t.config) == schedule_key(configured[t.config.name]))
        for t in targets if t.own
    ], now=now)
    return targets


def subscriber_links(settings: Settings, subscription: str, recipients: list[str], *,
                     now: datetime) -> tuple[dict[str, str], str | None]:
    """RFC 8058 one-click unsubscribe headers and the preferences page's URL for a message to one address.

    A message to several addresses cannot carry a per-address link: it gets neither.
    """
    if not links_configured(settings) or len(recipients) != 1:
        return {}, None
    assert settings.base_url and settings.unsubscribe_secret is not None
    secret, base = settings.unsubscribe_secret.get_secret_value().encode(), settings.base_url.rstrip("/")
    unsubscribe = make_token(secret, subscription, recipients[0], purpose=UNSUBSCRIBE, now=now)
    preferences = make_token(secret, subscription, recipients[0], purpose=PREFERENCES, now=now)
    headers = {
        "List-Unsubscribe": f"<{base}/unsubscribe/{unsubscribe}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    return headers, f"{base}/preferences/{preferences}"
