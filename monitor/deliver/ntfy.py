"""ntfy: a short push notification per digest, POSTed to the subscription's topic URL.

The message is plain text rendered at enqueue (:func:`render_ntfy`): one line per entry
(title, source, link), clipped to ntfy's message size with "and N more". The title and
priority travel as ``Title`` and ``Priority`` headers; a protected topic gets
``Authorization: Bearer <token>`` from the subscription's ``token`` (``env:VAR``). The URL
passes the same network guard as feeds and webhooks, on every attempt.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Self

import httpx

from monitor.deliver.digest import Digest
from monitor.deliver.email import header_safe
from monitor.deliver.transport import Outgoing, TransportDeps
from monitor.errors import BlockedAddressError, DeliveryError, FetchError
from monitor.net.guard import FetchPolicy
from monitor.net.http import guarded_request, parse_retry_after
from monitor.redact import redact_url

__all__ = ["MAX_MESSAGE_BYTES", "NtfyTransport", "header_text", "render_ntfy"]

MAX_MESSAGE_BYTES = 4000  # ntfy turns longer messages into attachments (its limit is 4096 bytes)
MAX_LINE = 300


def render_ntfy(digest: Digest) -> tuple[str, bytes]:
    """The title and text body of one notification for ``digest``; every entry is counted, none is cut mid-line."""
    entries = [entry for section in digest.sections for entry in section.entries]
    title = f"{len(entries)} new {'item' if len(entries) == 1 else 'items'} for {digest.subscription}"
    if digest.parts > 1:
        title += f" (part {digest.part}/{digest.parts})"
    lines: list[str] = []
    size = 0
    for shown, entry in enumerate(entries):
        line = " ".join(f"• {entry.title} ({entry.source})".split())[:MAX_LINE]
        if entry.link:
            line += f"\n{entry.link}"
        room = MAX_MESSAGE_BYTES - 40  # keep space for the "and N more" line
        if size + len(line.encode()) + 1 > room:
            lines.append(f"… and {len(entries) - shown} more")
            break
        lines.append(line)
        size += len(line.encode()) + 1
    return header_safe(title, 250), "\n".join(lines).encode("utf-8")


def header_text(value: str) -> str:
    """A header value ntfy reads back as written: ASCII as is, anything else as an RFC 2047 encoded word."""
    flat = header_safe(value, 250)
    if flat.isascii():
        return flat
    return "=?utf-8?b?" + base64.b64encode(flat.encode("utf-8")).decode("ascii") + "?="


class NtfyTransport:
    name = "ntfy"

    @classmethod
    def build(cls, deps: TransportDeps) -> Self:
        return cls(deps.client, deps.policy)

    def __init__(self, client: httpx.AsyncClient, policy: FetchPolicy) -> None:
        self.client = client
        self.policy = policy

    async def send(self, message: Outgoing, *, now: datetime) -> str:
        """POST the text to the topic URL; 4xx other than 408/425/429 is final, the rest is retried."""
        cfg = message.config.ntfy if message.config is not None else None
        url = message.target
        headers = {"content-type": "text/plain; charset=utf-8", "title": header_text(message.subject),
                   "priority": str(cfg.priority if cfg is not None else 3)}
        if cfg is not None and cfg.token is not None:
            headers["authorization"] = f"Bearer {cfg.token.get_secret_value()}"
        try:
            response = await guarded_request(self.client, "POST", url, self.policy, headers=headers,
                                             content=message.payload)
        except BlockedAddressError as exc:
            raise DeliveryError(f"ntfy {exc}", permanent=True) from exc
        except FetchError as exc:
            raise DeliveryError(f"ntfy {exc}", retry_after=exc.retry_after) from exc
        status = response.status_code
        if 200 <= status < 300:
            return f"{redact_url(url)} ({status})"
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=now)
        permanent = 400 <= status < 500 and status not in (408, 425, 429)
        raise DeliveryError(f"ntfy {url} answered HTTP {status}", permanent=permanent, retry_after=retry_after)
