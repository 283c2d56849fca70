"""One interface for every delivery channel, and the registry that picks a channel by kind.

A transport gets one :class:`Outgoing` message (what the outbox row holds, plus its
subscription's current configuration) and either delivers it, returning where it went, or
raises :class:`~monitor.errors.DeliveryError` (``permanent=True`` when retrying cannot help).
Transports are built once per delivery cycle from :class:`TransportDeps` (settings, the guarded
HTTP client and its policy), so a channel never opens its own unguarded connections.

Adding a channel is one module with a class that has ``build(deps)`` and ``send(message, *, now)``,
and one line in :data:`monitor.deliver.channels.TRANSPORTS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from monitor.errors import DeliveryError

if TYPE_CHECKING:
    import httpx

    from monitor.config import Settings, SubscriptionConfig
    from monitor.net.guard import FetchPolicy

__all__ = ["Outgoing", "Transport", "TransportDeps", "Transports", "transport_kind"]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to send, the same for every channel.

    ``target`` is what the outbox stored as the recipients: a JSON list of addresses for
    email, the URL for webhook and ntfy. ``config`` is the subscription as configured now
    (``None`` when it was removed or renamed since the message was enqueued): transports
    that sign or authenticate read their secret from it at send time.
    """

    key: str
    subscription: str
    target: str
    payload: bytes
    created_at: datetime
    subject: str = ""
    config: SubscriptionConfig | None = None


class Transport(Protocol):
    """Delivers one message or raises ``DeliveryError(permanent=...)``; returns where it went (for logs)."""

    async def send(self, message: Outgoing, *, now: datetime) -> str: ...


@dataclass(frozen=True)
class TransportDeps:
    """What transports are built from: the settings and the one guarded HTTP client of the cycle."""

    settings: Settings
    client: httpx.AsyncClient
    policy: FetchPolicy


def transport_kind(stored: str, settings: Settings) -> str:
    """The registry key for a delivery's stored kind.

    The kinds are what the outbox stores, except that "email" is sent by "smtp" when SMTP is
    configured and by "file" (the outbox folder) otherwise.
    """
    if stored == "email":
        return "smtp" if settings.smtp is not None else "file"
    return stored


@dataclass
class Transports:
    """The transports of one delivery cycle, built on first use and shared by its senders."""

    deps: TransportDeps
    _built: dict[str, Transport] = field(default_factory=dict)

    def get(self, stored: str) -> Transport:
        from monitor.deliver.channels import TRANSPORTS

        kind = transport_kind(stored, self.deps.settings)
        transport = self._built.get(kind)
        if transport is None:
            factory = TRANSPORTS.get(kind)
            if factory is None:
                raise DeliveryError(f"no transport for deliveries of kind {stored!r}", permanent=True)
            transport = self._built[kind] = factory(self.deps)
        return transport

    async def send(self, stored: str, message: Outgoing, *, now: datetime) -> str:
        return await self.get(stored).send(message, now=now)
