"""The registry of delivery channels: kind → how to build its transport for one delivery cycle."""

from __future__ import annotations

from collections.abc import Callable

from monitor.deliver.email import FileTransport, SmtpTransport
from monitor.deliver.ntfy import NtfyTransport
from monitor.deliver.transport import Transport, TransportDeps
from monitor.deliver.webhook import WebhookTransport

__all__ = ["TRANSPORTS"]

TRANSPORTS: dict[str, Callable[[TransportDeps], Transport]] = {
    "file": FileTransport.build,
    "smtp": SmtpTransport.build,
    "webhook": WebhookTransport.build,
    "ntfy": NtfyTransport.build,
}
