"""OPML import, shared by ``monitor feeds import`` and the feeds page: one policy for every entry.

Imported URLs are user input: only http(s), each checked by the polling policy's network guard
(``FetchPolicy.from_settings(settings, allow_file_urls=False)``), so a private address is refused here as it
would be when polled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session, col

from monitor import store
from monitor.models import Feed

if TYPE_CHECKING:
    from monitor.net.guard import FetchPolicy

MAX_OPML_BYTES = 1024 * 1024  # an OPML file of a few thousand feeds is well under this


@dataclass(slots=True)
class ImportOutcome:
    added: list[str] = field(default_factory=list)  # URLs
    present: list[str] = field(default_factory=list)  # URLs already watched (or twice in the file)
    refused: list[str] = field(default_factory=list)  # "URL: reason", secrets masked


def import_opml(session: Session, data: bytes, *, source: str, policy: FetchPolicy, now: datetime, interval: int,
                alert_window: int) -> ImportOutcome:
    """Add the feeds of an OPML document (titles and categories kept); known URLs are skipped.

    Raises :class:`~monitor.errors.ConfigError` for a document that cannot be read (with the line).
    """
    from monitor.errors import MonitorError
    from monitor.ingest.fetch import check_url
    from monitor.opml import read_opml

    document = read_opml(data, source=source)
    outcome = ImportOutcome(refused=[f"{url}: {reason}" for url, reason in document.refused])
    accepted: list[tuple[str, str | None, str | None]] = []
    for feed in document.feeds:
        try:
            check_url(feed.url, policy)
        except MonitorError as exc:
            outcome.refused.append(str(exc))  # names the URL, redacted
            continue
        accepted.append((feed.url, feed.title, feed.category))
    urls = [url for url, _title, _category in accepted]
    known: set[str] = set()
    for start in range(0, len(urls), 500):
        known.update(session.scalars(sa.select(col(Feed.url)).where(col(Feed.url).in_(urls[start:start + 500]))))
    store.add_imported_feeds(session, accepted, now=now, interval=interval, alert_window=alert_window)
    seen: set[str] = set()
    for url in urls:
        (outcome.present if url in known or url in seen else outcome.added).append(url)
        seen.add(url)
    return outcome
