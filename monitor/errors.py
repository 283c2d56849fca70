"""The one exception tree of monitor.

Every error a user or operator can see is a :class:`MonitorError`. Catch at the
per-feed / per-delivery boundary, log once, record it on the row, keep going.
Messages name the culprit (file and line, feed URL, subscription) and what to do.
Every message passes through :func:`monitor.redact.redact` when the error is
made, so a URL that carries a credential never reaches a log, a database row
or the screen in full.

    MonitorError
    ├── ConfigError            bad monitor.yaml, bad env override (names file and key)
    ├── WatchlistError         bad watchlist file (names path and line)
    ├── DatabaseError          database unreachable or not migrated
    ├── FetchError             a feed or webhook URL could not be fetched (names the URL)
    │   ├── BlockedAddressError    resolved to a private/loopback/link-local address
    │   ├── TooLargeError          body over the size cap
    │   └── HTTPStatusError        non-success HTTP status
    ├── ParseError             the bytes are not a feed (names the URL)
    └── DeliveryError          a send failed; ``permanent`` says whether a retry can help
"""

from __future__ import annotations

from monitor.redact import redact


class MonitorError(Exception):
    """Base of every error monitor raises on purpose."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class ConfigError(MonitorError):
    """The configuration is invalid. The message names the file and the key."""


class DatabaseError(MonitorError):
    """The database cannot be used (unreachable, not migrated)."""


class WatchlistError(MonitorError):
    """A watchlist file is invalid."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.reason = message
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")


class FetchError(MonitorError):
    """A URL could not be fetched."""

    def __init__(self, message: str, *, url: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        self.url = url
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class BlockedAddressError(FetchError):
    """The URL resolves to an address the network guard forbids."""


class TooLargeError(FetchError):
    """The response body is larger than the configured cap."""


class HTTPStatusError(FetchError):
    """The server answered with a status that is not a success."""


class ParseError(MonitorError):
    """The fetched bytes are not a feed monitor can read."""

    def __init__(self, message: str, *, url: str) -> None:
        self.url = url
        super().__init__(message)


class DeliveryError(MonitorError):
    """A send failed. ``permanent=True`` means retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False,
                 retry_after: float | None = None) -> None:
        self.permanent = permanent
        self.retry_after = retry_after
        super().__init__(message)
