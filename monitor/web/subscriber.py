"""The subscriber preferences page: ``/preferences/{token}``, the signed, expiring link in every digest.

Subscribers have no login: the link's token (purpose ``preferences``, signed with ``unsubscribe_secret``)
names the subscription and the address, and is the only authority. The form also carries a value bound to
that token (``form_token``), so a POST needs the link itself, and the page shows nothing but that address's
own choices and the lists its subscription grants. What is saved goes to ``subscriber_preferences`` and wins
over the config for that address (``monitor.preferences``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from monitor import store
from monitor.config import SubscriptionConfig
from monitor.db import session_scope
from monitor.deliver.tokens import PREFERENCES, check_form_token, form_token, verify_token
from monitor.preferences import Preference, apply_preference
from monitor.schedules import parse_quiet_hours
from monitor.web.app import WebState, client_key, utcnow

log = logging.getLogger("monitor.web")

CADENCES = ("immediate", "hourly", "daily", "weekly")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_SCHEDULE = re.compile(r"^(?:(immediate|hourly)|daily (\d{1,2}:\d{2})|weekly ([a-z]{3}) (\d{1,2}:\d{2}))$", re.I)


@lru_cache(maxsize=1)
def zones() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z or z == "UTC")


@dataclass(frozen=True)
class _Link:
    subscription: SubscriptionConfig
    address: str
    token: str


def _split_schedule(text: str) -> tuple[str, str, str]:
    """A schedule as the form's (cadence, time, day); a cron expression or zoned schedule reads as custom."""
    match = _SCHEDULE.match(" ".join(text.split()))
    if not match:
        return "", "08:00", "mon"
    if match.group(1):
        return match.group(1).lower(), "08:00", "mon"
    if match.group(2):
        return "daily", match.group(2), "mon"
    return "weekly", match.group(4), match.group(3).lower()


def _choices(link: _Link, pref: Preference | None) -> dict[str, Any]:
    cfg = link.subscription
    effective = apply_preference(cfg, pref, link.address)
    cadence, at, day = _split_schedule(effective.schedule)
    quiet_from, _, quiet_to = (effective.quiet_hours or "").partition("-")
    return {
        "granted": cfg.watchlists, "chosen": set(effective.watchlists),
        "cadence": cadence if pref is not None and pref.schedule else "", "at": at, "day": day,
        "timezone": pref.timezone if pref is not None and pref.timezone else "",
        "quiet_from": quiet_from, "quiet_to": quiet_to,
    }


def _parse(cfg: SubscriptionConfig, form: Any) -> tuple[dict[str, Any], str | None]:
    """The form's values as stored fields, or the one thing wrong with them."""
    granted = list(cfg.watchlists)
    chosen = [name for name in form.getlist("watchlist") if name in granted]
    if not chosen:
        return {}, "Choose at least one list (to receive nothing, use the unsubscribe link instead)."
    cadence, at, day = form.get("cadence", ""), form.get("at", "").strip(), form.get("day", "")
    schedule: str | None = None
    if cadence:
        if cadence not in CADENCES:
            return {}, "Choose how often from the list."
        if cadence in ("daily", "weekly") and not _CLOCK.match(at):
            return {}, f"{at!r} is not a time of day; write HH:MM, e.g. 08:00."
        if cadence == "weekly" and day not in DAYS:
            return {}, "Choose a day of the week."
        schedule = {"daily": f"daily {at}", "weekly": f"weekly {day} {at}"}.get(cadence, cadence)
    timezone = form.get("timezone", "") or None
    if timezone is not None and timezone not in zones():
        return {}, "Choose a time zone from the list."
    quiet_from, quiet_to = form.get("quiet_from", "").strip(), form.get("quiet_to", "").strip()
    quiet: str | None = ""
    if quiet_from or quiet_to:
        try:
            start, end = parse_quiet_hours(f"{quiet_from}-{quiet_to}")
        except ValueError as exc:
            return {}, f"Quiet hours: {exc}"
        quiet = f"{start:%H:%M}-{end:%H:%M}"
    if quiet == (cfg.quiet_hours or ""):
        quiet = None  # as the subscription says, so a later change in the config reaches this address too
    return {"watchlists": None if chosen == granted else chosen, "schedule": schedule, "timezone": timezone,
            "quiet_hours": quiet}, None


def register(app: FastAPI, state: WebState) -> None:
    """Add the preferences routes (GET shows the form, POST saves it)."""

    def refuse(request: Request, code: int, title: str, message: str) -> HTMLResponse:
        return _private(state.render("message.html", request, code, title=title, message=message))

    def check(request: Request, token: str) -> tuple[_Link | None, HTMLResponse | None]:
        if not state.unsubscribe_limit.allow(client_key(request)):
            return None, refuse(request, 429, "Too many requests",
                                "Too many requests from your address; try again in a minute.")
        found = (verify_token(state.unsubscribe_key, token, purpose=PREFERENCES, now=utcnow())
                 if state.unsubscribe_key and len(token) < 2048 else None)
        cfg = next((s for s in state.settings.subscriptions if found and s.name == found.subscription), None)
        if found is None or cfg is None or found.address not in {a.lower() for a in cfg.email or []}:
            return None, refuse(request, 404, "Link not valid",
                                "This preferences link is not valid or has expired. Use the link in a recent "
                                "message, or write to the sender.")
        return _Link(cfg, found.address, token), None

    def page(request: Request, link: _Link, code: int = 200, **values: Any) -> HTMLResponse:
        with session_scope(state.reads) as session:
            row = store.get_preference(session, link.subscription.name, link.address)
            gone = link.address in store.unsubscribed_addresses(session, link.subscription.name)
        pref = (Preference.from_fields(row.subscription, row.address, row.watchlists, row.schedule, row.timezone,
                                       row.quiet_hours) if row is not None else None)
        assert state.unsubscribe_key is not None
        return _private(state.render(
            "preferences.html", request, code, subscription=link.subscription, address=link.address,
            unsubscribed=gone, form=form_token(state.unsubscribe_key, link.token), zones=zones(), days=DAYS,
            default_schedule=link.subscription.schedule, default_zone=link.subscription.timezone,
            default_quiet=link.subscription.quiet_hours, **_choices(link, pref), **values))

    @app.get("/preferences/{token}", include_in_schema=False, response_class=HTMLResponse)
    def preferences_page(request: Request, token: str) -> HTMLResponse:
        link, refused = check(request, token)
        if link is None:
            return refused or refuse(request, 404, "Link not valid", "This preferences link is not valid.")
        return page(request, link)

    @app.post("/preferences/{token}", include_in_schema=False, response_class=HTMLResponse)
    async def preferences_save(request: Request, token: str) -> HTMLResponse:
        form = await request.form(max_files=0, max_fields=200)
        link, refused = await run_in_threadpool(check, request, token)
        if link is None:
            return refused or refuse(request, 404, "Link not valid", "This preferences link is not valid.")
        assert state.unsubscribe_key is not None
        if not check_form_token(state.unsubscribe_key, token, str(form.get("form", ""))):
            return refuse(request, 403, "Refused", "The form was not sent from this page; open the link again.")
        values, problem = _parse(link.subscription, form)
        if problem is not None:
            return await run_in_threadpool(page, request, link, 400, error=problem)
        await run_in_threadpool(_save, state, link, values)
        log.info("preferences saved for an address of %s", link.subscription.name)
        return await run_in_threadpool(page, request, link, saved=True)


def _save(state: WebState, link: _Link, values: dict[str, Any]) -> None:
    with session_scope(state.engine) as session:
        store.save_preference(session, link.subscription.name, link.address, now=utcnow(), **values)


def _private(response: HTMLResponse) -> HTMLResponse:
    response.headers["Cache-Control"] = "no-store"
    return response
