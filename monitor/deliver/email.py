"""Email: composing the MIME message once (at enqueue), sending its bytes later.

Transports are dumb: ``await send(message, now=...)`` or raise ``DeliveryError(permanent=...)``.
Header values are flattened to one line of printable characters before they
reach the email package, so a hostile feed title can never add a header
(CPython's own guard against CR/LF in encoded words was incomplete before
3.11.10 / CVE-2024-6923).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from typing import Self

import aiosmtplib

from monitor.config import SmtpConfig
from monitor.deliver.transport import Outgoing, TransportDeps
from monitor.errors import DeliveryError

_CONTROL = dict.fromkeys([*range(0, 32), 127], " ")


def header_safe(value: str, limit: int = 900) -> str:
    """One line, no control characters, no RFC 2047 encoded words; what every header value goes through.

    An encoded word written in the text (``=?utf-8?q?=0D=0ABcc:...?=``) would be
    decoded by the email package and written back raw, CR/LF included: a header
    injection. Breaking the ``=?`` opener keeps the text readable and inert.
    """
    flat = " ".join(value.translate(_CONTROL).split()).replace("=?", "= ?")
    return flat[:limit]


def message_id(key: str, sender: str) -> str:
    domain = header_safe(sender.rpartition("@")[2]) or "monitor.invalid"
    return f"<{key}@{domain}>"


def fold_at_whitespace(name: str, value: str, width: int = 78) -> bytes:
    """``Name: value`` folded only where the value has whitespace, never into RFC 2047 encoded words.

    Headers that carry URLs (``List-Unsubscribe: <https://…>``) must reach mail clients as written:
    the email package would turn a long URL into ``=?utf-8?q?…?=`` words, which no client reads as a
    URL. A URL longer than a line stays whole on its own line (RFC 5322 allows up to 998 characters).
    """
    flat = header_safe(value, 990)
    if not flat.isascii() or not re.fullmatch(r"[A-Za-z0-9-]+", name):
        raise ValueError(f"header {name!r} must be ASCII (it carries URLs, not text)")
    lines, line = [], f"{name}:"
    for word in flat.split(" "):
        if len(line) + 1 + len(word) > width and line != f"{name}:":
            lines.append(line)
            line = ""
        line += f" {word}"
    lines.append(line)
    if any(len(one) > 998 for one in lines):
        raise ValueError(f"header {name!r} is longer than a mail line may be")
    return "\r\n".join(lines).encode("ascii")


def compose(
    *, subject: str, text: str, html: str, sender: str, recipients: list[str], key: str, date: datetime,
    extra_headers: dict[str, str] | None = None,
) -> bytes:
    """The full RFC 5322 message (multipart/alternative, text first).

    ``extra_headers`` carry URLs (List-Unsubscribe and its kin): they are written as they are, folded at
    whitespace only (:func:`fold_at_whitespace`).
    """
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = header_safe(subject, 250)
    msg["From"] = header_safe(sender)
    msg["To"] = ", ".join(header_safe(r) for r in recipients)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id(key, sender)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    raw = msg.as_bytes()
    extra = [fold_at_whitespace(name, value) for name, value in (extra_headers or {}).items()]
    head, body = raw.split(b"\r\n\r\n", 1)
    head = b"\r\n".join([head, *extra])
    raw = head + b"\r\n\r\n" + body
    # Defence in depth: the header block must hold exactly the headers set above.
    names = {
        line.split(b":", 1)[0].decode("ascii", "replace").lower()
        for line in head.split(b"\r\n") if line[:1] not in (b" ", b"\t")
    }
    expected = {k.lower() for k in msg.keys()} | {k.lower() for k in (extra_headers or {})}
    if names != expected:
        raise ValueError(f"refusing to send a message whose headers changed in composition: {sorted(names - expected)}")
    return raw


class FileTransport:
    """Writes each message as an ``.eml`` file in the outbox folder (no SMTP configured).

    The file name derives from the delivery key, so a resend after a crash
    rewrites the same file instead of adding a second one.
    """

    name = "file"

    @classmethod
    def build(cls, deps: TransportDeps) -> Self:
        return cls(deps.settings.outbox_dir)

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, message: Outgoing) -> Path:
        stamp = message.created_at.strftime("%Y%m%dT%H%M%SZ")
        return self.folder / f"{stamp}-{message.subscription}-{message.key[-12:]}.eml"

    async def send(self, message: Outgoing, *, now: datetime) -> str:
        return await asyncio.to_thread(self._write, message)

    def _write(self, message: Outgoing) -> str:
        path = self.path_for(message)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".eml.tmp")
            tmp.write_bytes(message.payload)
            os.replace(tmp, path)
        except OSError as exc:
            raise DeliveryError(f"cannot write {path}: {exc.strerror}") from exc
        return str(path)


class SmtpTransport:
    """Sends over SMTP (aiosmtplib, on the event loop): implicit TLS, STARTTLS (required or opportunistic) or plain.

    The envelope sender is the configured ``from``; the recipients are the message's stored list.
    """

    name = "smtp"

    @classmethod
    def build(cls, deps: TransportDeps) -> Self:
        assert deps.settings.smtp is not None, "the smtp transport is only built when SMTP is configured"
        return cls(deps.settings.smtp)

    def __init__(self, config: SmtpConfig, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self._ssl_context = ssl_context

    @property
    def ssl_context(self) -> ssl.SSLContext:
        # Loading the CA store costs tens of milliseconds: only when TLS is actually used, and once.
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    async def send(self, message: Outgoing, *, now: datetime) -> str:
        cfg = self.config
        where = f"SMTP {cfg.host}:{cfg.port}"
        recipients = recipients_of(message)
        try:
            refused = await self._deliver(message.payload, recipients)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            # 4xx is "try later" (greylisting, full mailbox); only 5xx for every recipient is final.
            codes = {one.recipient: one.code for one in exc.recipients}
            permanent = all(code >= 500 for code in codes.values())
            raise DeliveryError(f"{where} refused every recipient: {json.dumps(codes)}",
                                permanent=permanent) from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"{where} rejected the login: {exc.code}", permanent=False) from exc
        except (aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected) as exc:
            raise DeliveryError(f"{where} unreachable: {exc}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.code < 600
            raise DeliveryError(f"{where} answered {exc.code} {exc.message}".strip(), permanent=permanent) from exc
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{where} unreachable: {exc}") from exc
        if refused:
            # Some recipients took it; the refused ones cannot be retried without
            # repeating the message to the others. Record, do not resend.
            return f"{where} (refused: {json.dumps(refused)})"
        return where

    async def _deliver(self, payload: bytes, recipients: list[str]) -> dict[str, int]:
        """One SMTP session; returns the recipients refused (when others took the message)."""
        cfg = self.config
        security = cfg.security or ("tls" if cfg.port == 465 else None)
        client = aiosmtplib.SMTP(
            hostname=cfg.host, port=cfg.port, timeout=cfg.timeout, use_tls=security == "tls",
            start_tls=False, tls_context=self.ssl_context if security == "tls" else None,
        )
        await client.connect()
        try:
            await client.ehlo()
            offers_starttls = client.supports_extension("starttls")
            if security == "starttls" or (security is None and offers_starttls):
                if not offers_starttls:
                    raise DeliveryError(f"SMTP {cfg.host}:{cfg.port} does not offer STARTTLS (security: starttls)",
                                        permanent=False)
                await client.starttls(tls_context=self.ssl_context)
                await client.ehlo()
            if cfg.username:
                password = cfg.password.get_secret_value() if cfg.password else ""
                await client.login(cfg.username, password)
            refused, _reply = await client.sendmail(cfg.from_, recipients, payload)
        finally:
            client.close()
        return {address: answer.code for address, answer in refused.items()}


def recipients_of(message: Outgoing) -> list[str]:
    """The addresses an email message goes to, as the outbox stored them (a JSON list)."""
    return [str(address) for address in json.loads(message.target)]
