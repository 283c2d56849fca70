"""Signed subscriber links: one-click unsubscribe (RFC 2369 / RFC 8058) and the preferences page.

Pure: the secret and the time are parameters. A token names its purpose, the
subscription, the recipient and when it expires, and carries an HMAC-SHA256 tag
over all of them, so the web endpoint can act on it without a database lookup
of the token itself, nobody can forge one for another address, and a token
made for one purpose is refused for any other (an unsubscribe link never opens
the preferences page, and a preferences link never unsubscribes).

Two shapes are read:

* ``v2.<payload>.<tag>`` — purpose, expiry (Unix seconds), subscription, address.
  Every link monitor writes now has this shape.
* ``<payload>.<tag>`` — the first unsubscribe links, without purpose or expiry.
  They are still accepted, for unsubscribing only, so a one-click link in an old
  message keeps working (a mail client may send it years later).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_TAG_BYTES = 16
_V2 = "v2"

UNSUBSCRIBE = "unsubscribe"
PREFERENCES = "preferences"
PURPOSES = (UNSUBSCRIBE, PREFERENCES)

# How long a link in a message stays valid. An unsubscribe link lives long: a reader may click it in a message
# months old, and a mail client may send the RFC 8058 POST long after delivery; every newer message carries a
# fresh one. A preferences link opens a page that changes what is sent, so it lives shorter.
LIFETIMES = {UNSUBSCRIBE: timedelta(days=365), PREFERENCES: timedelta(days=60)}


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """What a valid token names (the name is kept from when unsubscribing was its only purpose)."""

    subscription: str
    address: str
    purpose: str = UNSUBSCRIBE
    expires_at: datetime | None = None  # None: a first-shape unsubscribe token, which never expires


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _legacy_tag(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, b"unsubscribe\x00" + payload, hashlib.sha256).digest()[:_TAG_BYTES]


def _tag(secret: bytes, payload: bytes) -> bytes:
    # A label of its own: no first-shape tag can be replayed as a second-shape one.
    return hmac.new(secret, b"monitor-link-v2\x00" + payload, hashlib.sha256).digest()[:_TAG_BYTES]


def make_token(secret: bytes, subscription: str, address: str, *, purpose: str = UNSUBSCRIBE,
               now: datetime | None = None, lifetime: timedelta | None = None) -> str:
    """A signed link token for ``purpose``, valid until ``now + lifetime`` (the purpose's default lifetime).

    Without ``now`` the first-shape unsubscribe token is made (no expiry); other purposes need ``now``.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    if now is None:
        if purpose != UNSUBSCRIBE:
            raise ValueError("a preferences token needs the time it is made (it expires)")
        payload = f"{subscription}\x00{address.lower()}".encode()
        return f"{_b64(payload)}.{_b64(_legacy_tag(secret, payload))}"
    expires = int((now + (lifetime or LIFETIMES[purpose])).timestamp())
    payload = f"{purpose}\x00{expires}\x00{subscription}\x00{address.lower()}".encode()
    return f"{_V2}.{_b64(payload)}.{_b64(_tag(secret, payload))}"


def verify_token(secret: bytes, token: str, *, purpose: str = UNSUBSCRIBE,
                 now: datetime | None = None) -> Unsubscribe | None:
    """The subscription and address a valid, unexpired token for ``purpose`` names; None otherwise.

    Forged, malformed, expired and other-purpose tokens are all None (tags compared in constant time).
    An expiring token is refused when ``now`` is not given: expiry is never skipped by accident.
    """
    parts = token.split(".")
    try:
        if len(parts) == 2:
            payload, tag = _unb64(parts[0]), _unb64(parts[1])
            if purpose != UNSUBSCRIBE or not hmac.compare_digest(tag, _legacy_tag(secret, payload)):
                return None
            subscription, _, address = payload.decode("utf-8", "replace").partition("\x00")
            return Unsubscribe(subscription, address) if subscription and address else None
        if len(parts) != 3 or parts[0] != _V2:
            return None
        payload, tag = _unb64(parts[1]), _unb64(parts[2])
    except (ValueError, TypeError):
        return None
    if not hmac.compare_digest(tag, _tag(secret, payload)):
        return None
    fields = payload.decode("utf-8", "replace").split("\x00")
    if len(fields) != 4 or fields[0] != purpose or not fields[1].isdigit() or now is None:
        return None
    expires_at = datetime.fromtimestamp(int(fields[1]), UTC)
    if now >= expires_at or not fields[2] or not fields[3]:
        return None
    return Unsubscribe(fields[2], fields[3], purpose=purpose, expires_at=expires_at)


def form_token(secret: bytes, token: str) -> str:
    """The anti-forgery value a page's form carries, bound to the link's token (no cookie needed)."""
    return _b64(hmac.new(secret, b"monitor-form\x00" + token.encode(), hashlib.sha256).digest()[:_TAG_BYTES])


def check_form_token(secret: bytes, token: str, given: str) -> bool:
    return hmac.compare_digest(form_token(secret, token).encode(), given.encode("utf-8", "replace"))
