"""Keeping secrets that ride inside URLs out of everything monitor shows or writes.

Feed and webhook URLs often *are* credentials: ``https://user:pass@host/``, a
bare token as userinfo (``https://TOKEN@host/``), ``?api_key=…``/``?token=…``
parameters, and chat webhooks whose path is the secret
(``hooks.slack.com/services/T…/B…/XXXX``, ``discord.com/api/webhooks/ID/TOKEN``,
Mattermost ``/hooks/ID``, Teams ``/webhookb2/…``). :func:`redact` is the one
function every log line, error message, digest and CLI listing goes through;
:func:`redact_url` does the same for one URL, and :func:`display_host` names a
feed by its host where a URL is not needed at all.

Pure and linear in the input: the URL pattern has no nested repetition.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["MASK", "display_host", "redact", "redact_url"]

MASK = "***"

# Query (and fragment) parameters whose value is a credential. Matched on the lower-cased name:
# exactly one of these, or containing one of the fragments below.
_SECRET_PARAMS = frozenset({
    "key", "apikey", "api_key", "api-key", "sig", "signature", "code", "auth", "pass", "pwd",
    "session", "sid", "jwt", "hash", "hmac",
})
_SECRET_FRAGMENTS = ("token", "secret", "passw", "apikey", "api_key", "api-key", "credential", "signature",
                     "auth_", "private")
# Path prefixes after which everything is the secret (chat-platform incoming webhooks).
_SECRET_PATHS = re.compile(
    r"(/services/|/api/webhooks/|/hooks/|/webhookb2/|/webhooks?/|/triggers/[^/]+/paths/invoke/?)",
    re.IGNORECASE,
)
# A path segment that looks generated rather than written: long, and either hex or mixed-case with digits.
_HEX_TOKEN = re.compile(r"^[0-9a-fA-F-]{24,}$")
_MIXED_TOKEN = re.compile(r"^(?=[^/]*\d)(?=[^/]*[a-z])(?=[^/]*[A-Z])[A-Za-z0-9_-]{20,}$")
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]{0,20}://[^\s<>\"'`]+")


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_PARAMS or any(part in lowered for part in _SECRET_FRAGMENTS)


def _redact_params(text: str) -> str:
    """``a=1&token=x`` → ``a=1&token=***``; keeps order and separators."""
    out = []
    for pair in re.split(r"([&;])", text):
        if pair in ("&", ";"):
            out.append(pair)
            continue
        name, eq, value = pair.partition("=")
        out.append(f"{name}={MASK}" if eq and value and _secret_name(name) else pair)
    return "".join(out)


def _redact_path(path: str) -> str:
    marker = _SECRET_PATHS.search(path)
    if marker is not None and marker.end() < len(path):
        return path[: marker.end()] + MASK
    segments = path.split("/")
    return "/".join(MASK if _HEX_TOKEN.match(s) or _MIXED_TOKEN.match(s) else s for s in segments)


def redact_url(url: str) -> str:
    """``url`` with userinfo, secret parameters and secret path segments replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _URL.sub(MASK, url) if _URL.fullmatch(url) else url
    if not parts.scheme or parts.scheme == "file":
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    rebuilt = f"{parts.scheme}://{netloc}{_redact_path(parts.path)}"
    if parts.query:
        rebuilt += "?" + _redact_params(parts.query)
    if parts.fragment:
        rebuilt += "#" + _redact_params(parts.fragment)
    return rebuilt


def redact(text: str) -> str:
    """Every URL in free text (a log line, an error message) passed through :func:`redact_url`."""
    if "://" not in text:
        return text
    return _URL.sub(_redact_match, text)


def _redact_match(match: re.Match[str]) -> str:
    """Punctuation that ends a sentence (``…/feed: HTTP 500``) is not part of the URL."""
    url = match.group(0)
    core = url.rstrip(".,:;!?)]}")
    return redact_url(core) + url[len(core):]


def display_host(url: str) -> str:
    """The host a URL points at (no userinfo, port kept), or the redacted URL when it has none."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return redact_url(url)
    if not host:
        return redact_url(url)
    return f"{host}:{port}" if port else host
