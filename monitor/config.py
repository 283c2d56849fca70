"""Settings: loading ``monitor.yaml``, ``MONITOR_*`` environment overrides, validation.

One typed :class:`Settings` object is loaded at the entry point and passed down;
no module keeps a global settings instance. A bad file, key or value fails at
start with a :class:`~monitor.errors.ConfigError` naming the file, the key and
the reason. Secrets may be written as ``env:VAR`` and are read from the
environment when the file loads; they are held as ``SecretStr`` so they never
appear in ``repr`` or logs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from monitor.errors import ConfigError

DEFAULT_CONFIG = "monitor.yaml"

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> int:
    """``"15m"``, ``"24h"``, ``"7d"``, ``90`` (seconds) → seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 15m, 24h or 7d")
    if isinstance(value, int):
        seconds = value
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration; write e.g. 30s, 15m, 24h or 7d")
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[int, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FeedConfig(_Strict):
    url: str
    name: str | None = None
    interval: Duration | None = None
    # How far back the first poll of this feed may alert (default: the global
    # ``new_feed_alert_window``). The bundled sample feed sets a long window so
    # its fixed-date items alert on the first run.
    alert_window: Duration | None = None

    @field_validator("alert_window", "interval")
    @classmethod
    def _at_most_twenty_years(cls, value: int | None) -> int | None:
        # Stored as a 32-bit integer on PostgreSQL; 20 years is more than any feed's history needs.
        if value is not None and value > 7300 * 86400:
            raise ValueError("at most 7300d (20 years)")
        return value

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, value: str) -> str:
        if not re.match(r"^(https?|file)://", value, re.IGNORECASE):
            raise ValueError(f"{value!r}: feed URLs must start with http://, https:// or file://")
        return value


class SmtpConfig(_Strict):
    host: str
    port: int = 587
    from_: str = Field(alias="from")
    username: str | None = None
    password: SecretStr | None = None
    # tls: implicit TLS (port 465); starttls: required; none: plain.
    # Unset: tls on port 465, otherwise STARTTLS when the server offers it.
    security: Literal["starttls", "tls", "none"] | None = None
    timeout: float = 30.0

    @field_validator("from_")
    @classmethod
    def _no_newlines(cls, value: str) -> str:
        if "\r" in value or "\n" in value or "@" not in value:
            raise ValueError("must be one email address on one line")
        return value


WebhookFormat = Literal["json", "slack", "discord", "teams", "mattermost"]


class WebhookConfig(_Strict):
    url: str
    format: WebhookFormat = "json"
    secret: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if not re.match(r"^https?://", value, re.IGNORECASE):
            raise ValueError(f"{value!r}: webhook URLs must start with http:// or https://")
        return value


class RetryConfig(_Strict):
    """When failed deliveries are retried: exponential from ``first_delay`` up to ``max_delay``,
    dead after ``horizon``."""

    first_delay: Duration = 30
    max_delay: Duration = 6 * 3600
    horizon: Duration = 3 * 86400


class RetentionConfig(_Strict):
    """How long the archive keeps things; the daemon prunes once a day in small batches."""

    items: Duration = 90 * 86400  # text of items that matched nothing
    hits: Duration = 730 * 86400  # hits and their items
    deliveries: Duration = 30 * 86400  # rendered payloads of sent deliveries
    fingerprints: Duration = 730 * 86400  # pruned items' fingerprints, so a re-served old item never alerts


class SubscriptionConfig(_Strict):
    name: str
    watchlists: list[str] = Field(min_length=1)
    schedule: str = "immediate"
    email: list[str] | None = None
    webhook: WebhookConfig | None = None
    timezone: str = "UTC"
    min_score: float = Field(default=0.0, ge=0)
    max_items: int = Field(default=50, ge=1, le=500)  # per message; more hits are split over several messages
    quiet_hours: str | None = None  # "22:00-07:00" in the subscription's time zone: nothing is sent then

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: str | None) -> str | None:
        if value is not None:
            from monitor.schedules import parse_quiet_hours

            parse_quiet_hours(value)
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", value):
            raise ValueError("use letters, digits, '-', '_' or '.' (at most 64)")
        return value

    @field_validator("email")
    @classmethod
    def _addresses(cls, value: list[str] | None) -> list[str] | None:
        for address in value or []:
            if "\r" in address or "\n" in address or not re.match(r"^[^@\s,;<>]+@[^@\s,;<>]+$", address):
                raise ValueError(f"{address!r} is not an email address")
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        from monitor.schedules import parse_schedule

        parse_schedule(value)  # raises ValueError with the reason
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from monitor.schedules import load_zone

        load_zone(value)
        return value

    @model_validator(mode="after")
    def _one_target(self) -> SubscriptionConfig:
        if bool(self.email) == bool(self.webhook):
            raise ValueError("give exactly one of 'email: [addresses]' or 'webhook: {url, format, secret}'")
        return self


class Settings(BaseSettings):
    """Everything monitor reads from ``monitor.yaml`` and ``MONITOR_*`` variables."""

    model_config = SettingsConfigDict(
        env_prefix="MONITOR_", extra="forbid", frozen=True, populate_by_name=True
    )

    database_url: str = "sqlite:///var/monitor.db"
    watchlists_dir: Path = Path("watchlists")
    outbox_dir: Path = Path("outbox")
    allow_private_networks: bool = False
    # Networks exempt from the private-address guard (CIDR), e.g. ["10.20.0.0/16"] for an intranet feed host,
    # without opening every private address.
    allowed_networks: list[str] = Field(default_factory=list)
    feeds: list[FeedConfig] = Field(default_factory=list)
    subscriptions: list[SubscriptionConfig] = Field(default_factory=list)
    smtp: SmtpConfig | None = None
    poll_interval: Duration = 900
    min_poll_interval: Duration = 300
    max_poll_interval: Duration = 86400
    new_feed_alert_window: Duration = 86400
    poll_concurrency: int = Field(default=20, ge=1, le=500)
    # Worker processes that parse feeds while this one fetches and stores (0: parse in-process).
    parse_processes: int = Field(default_factory=lambda: min(4, max(0, (os.cpu_count() or 1) - 1)), ge=0, le=32)
    delivery_batch: int = Field(default=200, ge=1)
    delivery_concurrency: int = Field(default=20, ge=1, le=500)  # sends in flight at once
    delivery_retry: RetryConfig = Field(default_factory=RetryConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    db_pool_size: int = Field(default=5, ge=1, le=100)  # PostgreSQL connections per worker
    fetch_timeout: float = Field(default=20.0, gt=0)
    fetch_deadline: float = Field(default=60.0, gt=0)
    max_feed_bytes: int = Field(default=10 * 2**20, gt=0)
    user_agent: str = "monitor/0.1 (+https://github.com/monitor-alerts/monitor)"
    # Public URL of the web endpoints; with unsubscribe_secret it enables one-click List-Unsubscribe links.
    base_url: str | None = None
    unsubscribe_secret: SecretStr | None = None
    coming_up_days: int = Field(default=30, ge=0, le=366)  # digests list round anniversaries this far ahead
    source_problem_after: Duration = 6 * 3600  # a feed failing this long is listed under "sources" in digests
    # The web front door (``monitor web``): signs session cookies and preference links. Unset: a random key
    # per start (operators log in again after a restart; preference links stop working).
    web_secret: SecretStr | None = None
    web_session_lifetime: Duration = 12 * 3600  # an operator's login lasts this long

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # MONITOR_* variables override the file (init kwargs carry the file's values).
        return (env_settings, init_settings)

    @field_validator("allowed_networks")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        import ipaddress

        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not a network (write e.g. 10.20.0.0/16)") from exc
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        names = [s.name for s in self.subscriptions]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"subscription names must be unique: {', '.join(duplicates)}")
        urls = [f.url for f in self.feeds]
        repeated = sorted({u for u in urls if urls.count(u) > 1})
        if repeated:
            raise ValueError(f"feed listed twice: {', '.join(repeated)}")
        if self.min_poll_interval > self.max_poll_interval:
            raise ValueError("min_poll_interval is larger than max_poll_interval")
        return self

    def feed_interval(self, feed: FeedConfig) -> int:
        interval = feed.interval if feed.interval is not None else self.poll_interval
        return max(self.min_poll_interval, min(self.max_poll_interval, interval))

    def subscription(self, name: str) -> SubscriptionConfig:
        for sub in self.subscriptions:
            if sub.name == name:
                return sub
        raise ConfigError(f"no subscription named {name!r} in the configuration")


def _resolve_env_refs(node: Any, path: str) -> Any:
    """Replace ``env:VAR`` strings by the variable's value (missing → ConfigError)."""
    if isinstance(node, dict):
        return {k: _resolve_env_refs(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_env_refs(v, f"{path}.{i}") for i, v in enumerate(node)]
    if isinstance(node, str) and node.startswith("env:"):
        var = node[4:]
        if var not in os.environ:
            raise ConfigError(f"key '{path}': environment variable {var} is not set")
        return os.environ[var]
    return node


def _format_validation_error(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        message = message.removeprefix("Value error, ")
        lines.append(f"{source}: key '{key}': {message}")
    return "\n".join(lines)


def load_settings(path: str | Path | None = None) -> Settings:
    """Load the config file (``MONITOR_CONFIG`` or ``./monitor.yaml``) and env overrides.

    Relative paths in the file (``watchlists_dir``, ``outbox_dir``, a SQLite
    database, ``file:`` feeds) are resolved against the file's folder, so the
    daemon behaves the same whatever its working directory.
    """
    explicit = path is not None or "MONITOR_CONFIG" in os.environ
    config_path = Path(path or os.environ.get("MONITOR_CONFIG", DEFAULT_CONFIG))
    data: dict[str, Any] = {}
    if config_path.exists():
        try:
            raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{config_path}{where}: not valid YAML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{config_path}: cannot read: {exc.strerror}") from exc
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{config_path}: the top level must be a mapping of keys")
        data = _resolve_env_refs(raw, "")
    elif explicit:
        raise ConfigError(f"{config_path}: config file not found")
    base = config_path.resolve().parent
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, str(config_path))) from None
    return _anchor_paths(settings, base)


def _anchor_paths(settings: Settings, base: Path) -> Settings:
    updates: dict[str, Any] = {}
    if not settings.watchlists_dir.is_absolute():
        updates["watchlists_dir"] = base / settings.watchlists_dir
    if not settings.outbox_dir.is_absolute():
        updates["outbox_dir"] = base / settings.outbox_dir
    url = settings.database_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and ":memory:" not in url:
        updates["database_url"] = "sqlite:///" + str(base / url[len("sqlite:///"):])
    feeds = []
    for feed in settings.feeds:
        if feed.url.lower().startswith("file://"):
            rel = feed.url[len("file://"):]
            if not rel.startswith("/"):
                feed = feed.model_copy(update={"url": (base / rel).resolve().as_uri()})
        feeds.append(feed)
    updates["feeds"] = feeds
    return settings.model_copy(update=updates)
