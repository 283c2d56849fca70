"""Webhooks: signed HTTP POST of a rendered payload (Standard Webhooks scheme).

Headers: ``webhook-id`` (the delivery's idempotency key, the same on every
retry), ``webhook-timestamp`` (the time of this attempt) and
``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``. A
``whsec_`` secret is base64 after its prefix; any other secret is used as its
UTF-8 bytes. The URL passes the same network guard as feeds, on every attempt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Self

import httpx

from monitor.deliver.transport import Outgoing, TransportDeps
from monitor.errors import BlockedAddressError, DeliveryError, FetchError
from monitor.net.guard import FetchPolicy
from monitor.net.http import guarded_request, parse_retry_after
from monitor.redact import redact_url


def secret_bytes(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_"):])
    return secret.encode("utf-8")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def webhook_secret(message: Outgoing) -> str | None:
    """The secret to sign with: the subscription's current one.

    A message whose subscription is no longer a configured webhook subscription (removed or
    renamed) has no secret to sign with: it is refused for good rather than sent unsigned.
    """
    cfg = message.config
    if cfg is None or cfg.webhook is None:
        raise DeliveryError(
            f"subscription {message.subscription!r} is no longer a webhook subscription in the configuration "
            "(removed or renamed), so this delivery cannot be signed and is not sent; restore the subscription "
            "and run 'monitor deliveries retry' to send it",
            permanent=True,
        )
    return cfg.webhook.secret.get_secret_value() if cfg.webhook.secret is not None else None


class WebhookTransport:
    name = "webhook"

    @classmethod
    def build(cls, deps: TransportDeps) -> Self:
        return cls(deps.client, deps.policy)

    def __init__(self, client: httpx.AsyncClient, policy: FetchPolicy) -> None:
        self.client = client
        self.policy = policy

    async def send(self, message: Outgoing, *, now: datetime) -> str:
        """POST one webhook, signed at ``now`` (the time of this attempt, never the cycle's start)."""
        secret = webhook_secret(message)
        url, body = message.target, message.payload
        timestamp = int(now.astimezone(UTC).timestamp())
        headers = {
            "content-type": "application/json",
            "webhook-id": message.key,
            "webhook-timestamp": str(timestamp),
        }
        if secret:
            headers["webhook-signature"] = sign(secret, message.key, timestamp, body)
        try:
            response = await guarded_request(
                self.client, "POST", url, self.policy, headers=headers, content=body
            )
        except BlockedAddressError as exc:  # its message names the URL
            raise DeliveryError(f"webhook {exc}", permanent=True) from exc
        except FetchError as exc:
            raise DeliveryError(f"webhook {exc}", retry_after=exc.retry_after) from exc
        status = response.status_code
        if 200 <= status < 300:
            return f"{redact_url(url)} ({status})"
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=now)
        permanent = 400 <= status < 500 and status not in (408, 425, 429)
        raise DeliveryError(f"webhook {url} answered HTTP {status}", permanent=permanent,
                            retry_after=retry_after)
