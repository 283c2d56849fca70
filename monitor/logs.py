"""Logging set-up: one line per event, a fixed vocabulary of context keys, no secrets."""

from __future__ import annotations

import logging
import sys

from monitor.redact import redact

CONTEXT_KEYS = ("feed_url", "feed_id", "item_id", "watchlist", "subscription", "delivery_id", "attempt",
                "status", "new_items", "hits", "duration_ms")


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = [f"{key}={getattr(record, key)}" for key in CONTEXT_KEYS
                 if getattr(record, key, None) is not None]
        if pairs:
            line = f"{line} [{' '.join(pairs)}]"
        return redact(line)


def setup_logging(level: str = "WARNING") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                           datefmt="%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # APScheduler logs every job run at INFO; keep its warnings only.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
