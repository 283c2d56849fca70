"""Subscribers' own choices combined with the config: who is planned how (pure).

A configured subscription is the operator's grant: its watchlists, schedule, time zone and quiet hours
are the defaults for every address it lists. An address may narrow that on its preferences page; what it
chose is stored in the database and wins over the config for that address only. The planner asks
:func:`effective_subscriptions` what to plan: each address with its own preferences (and, when messages
carry per-address links, each address of a subscription with several) becomes a target of its own, with
its own ``subscriptions`` row, so it has its own due time and its own record of what it was sent; the
other addresses stay on the configured subscription's row.

No I/O and no clock: preferences, unsubscribes and the config are parameters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.config import SubscriptionConfig

SEPARATOR = "~"  # never in a configured subscription's name, so an address's own row cannot clash with one


@dataclass(frozen=True, slots=True)
class Preference:
    """One address's choices for one subscription; None means "as the subscription says"."""

    subscription: str
    address: str  # lower-cased
    watchlists: tuple[str, ...] | None = None
    schedule: str | None = None
    timezone: str | None = None
    quiet_hours: str | None = None  # "" = no quiet hours, whatever the subscription says

    @staticmethod
    def from_fields(subscription: str, address: str, watchlists: str | None, schedule: str | None,
                    timezone: str | None, quiet_hours: str | None) -> Preference:
        """From a stored row's fields (``watchlists`` is a JSON list; anything else there reads as no choice)."""
        chosen: tuple[str, ...] | None = None
        if watchlists:
            try:
                value = json.loads(watchlists)
            except ValueError:
                value = None
            if isinstance(value, list):
                chosen = tuple(str(v) for v in value)
        return Preference(subscription, address.lower(), chosen, schedule or None, timezone or None, quiet_hours)


@dataclass(frozen=True, slots=True)
class Target:
    """What the planner plans: a subscription's definition, and the row that keeps its delivery state.

    ``config.name`` stays the configured subscription's name (it is what messages and unsubscribe links name);
    ``row_name`` is that name for the shared row, or :func:`own_row_name` for an address planned on its own.
    """

    config: SubscriptionConfig
    row_name: str
    address: str | None = None  # the one address, when planned on its own

    @property
    def own(self) -> bool:
        return self.address is not None


def own_row_name(subscription: str, address: str) -> str:
    """The ``subscriptions`` row of one address planned on its own: at most 64 characters, stable, unique."""
    digest = hashlib.sha256(f"{subscription}\x00{address.lower()}".encode()).hexdigest()[:12]
    return f"{subscription[:51]}{SEPARATOR}{digest}"


def narrowed(granted: Sequence[str], chosen: Sequence[str] | None) -> list[str]:
    """The subscription's lists the address chose, in the subscription's order.

    A name the subscription does not grant is ignored (a preference only narrows). A choice that no longer
    names any granted list (the operator removed them) counts as no choice: the address gets the
    subscription's lists rather than being cut off silently; unsubscribing is how an address stops.
    """
    if chosen is None:
        return list(granted)
    wanted = set(chosen)
    kept = [name for name in granted if name in wanted]
    return kept or list(granted)


def apply_preference(cfg: SubscriptionConfig, pref: Preference | None, address: str) -> SubscriptionConfig:
    """The subscription as this one address receives it."""
    update: dict[str, object] = {"email": [address]}
    if pref is not None:
        update["watchlists"] = narrowed(cfg.watchlists, pref.watchlists)
        if pref.schedule:
            update["schedule"] = pref.schedule
        if pref.timezone:
            update["timezone"] = pref.timezone
        if pref.quiet_hours is not None:
            update["quiet_hours"] = pref.quiet_hours or None
    return cfg.model_copy(update=update)


def effective_subscriptions(
    config_subs: Iterable[SubscriptionConfig], preferences: Iterable[Preference],
    unsubscribed: set[tuple[str, str]], *, per_address: bool = False,
) -> list[Target]:
    """Split the configured subscriptions into what the planner plans.

    An email address with stored preferences is planned on its own with them applied. With ``per_address``
    (messages carry per-address links), every address of a subscription with several is planned on its own,
    so each message it gets names its own unsubscribe and preferences links. Preferences for a subscription
    or an address the config no longer lists are ignored; an address that unsubscribed gets no target of its
    own (the shared row's planner leaves it out as before). Webhook and ntfy subscriptions pass unchanged.
    """
    prefs = {(p.subscription, p.address.lower()): p for p in preferences}
    targets: list[Target] = []
    for cfg in config_subs:
        addresses = list(cfg.email or [])
        if not addresses:
            targets.append(Target(cfg, cfg.name))
            continue
        shared: list[str] = []
        own: list[Target] = []
        for address in addresses:
            key = (cfg.name, address.lower())
            pref = prefs.get(key)
            if pref is None and not (per_address and len(addresses) > 1):
                shared.append(address)
            elif key not in unsubscribed:
                own.append(Target(apply_preference(cfg, pref, address), own_row_name(cfg.name, address),
                                  address.lower()))
        if shared:
            targets.append(Target(cfg if shared == addresses else cfg.model_copy(update={"email": shared}),
                                  cfg.name))
        targets.extend(own)
    return targets


def schedule_key(cfg: SubscriptionConfig) -> str:
    """What an own row stores as its schedule: a change of schedule or zone gives it a new due time."""
    return f"{cfg.schedule} @{cfg.timezone}"[:128]
