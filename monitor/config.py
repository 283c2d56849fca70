"""Settings: loading ``monitor.yaml``, ``MONITOR_*`` environment overrides, validation.

One typed :class:`Settings` object is loaded at the entry point and passed down;
no module keeps a global settings instance. A bad file, key or value fails at
start with a :class:`~monitor.errors.ConfigError` naming the file, the key and
the reason. Values may be written as ``env:VAR``: ordinary keys read the
variable when the file loads; secrets (passwords, signing secrets) read it only
when a delivery needs them (:meth:`Settings.check_secrets`), so read-only
commands run without them. Secrets are held as ``SecretStr`` so they never
appear in ``repr`` or logs.
"""

from __future__ import annotations

import base64
import logging
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from monitor import safe_yaml
from monitor.errors import ConfigError
from monitor.ingest.decode import codec_for
from monitor.redact import redact

log = logging.getLogger("monitor.config")
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

# Keys whose ``env:VAR`` value is read when a delivery needs it, not when the file loads.
SECRET_KEYS = frozenset({"password", "secret", "unsubscribe_secret"})


class EnvSecret(SecretStr):
    """A secret that may be an ``env:VAR`` reference, read from the environment on use.

    Commands that only read the database (``hits``, ``feeds list``, ``status``) never
    touch delivery secrets, so they run where those variables are not set.
    """

    @property
    def reference(self) -> str | None:
        """The variable named by an ``env:VAR`` value, else None."""
        raw = super().get_secret_value()
        return raw[4:] if raw.startswith("env:") else None

    def get_secret_value(self) -> str:
        var = self.reference
        if var is None:
            return super().get_secret_value()
        if var not in os.environ:
            raise ConfigError(f"environment variable {var} is not set (a secret of the configuration needs it)")
        return os.environ[var]


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
    # The feed's character encoding, when it declares a wrong one (overrides the HTTP header, the XML
    # declaration and detection), e.g. ``windows-1251`` or ``euc-kr``.
    encoding: str | None = None
    # The IANA zone the feed writes zone-less or ambiguous times in (``CST``), e.g. ``Asia/Shanghai``.
    # Unset: the zone of the feed's language (ko: Asia/Seoul, zh: Asia/Shanghai, ru: Europe/Moscow...).
    timezone: str | None = None

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is not None and codec_for(value) is None:
            raise ValueError(f"{value!r} is not a character encoding monitor knows (e.g. utf-8, windows-1251, euc-kr)")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{value!r} is not a time zone name (e.g. Asia/Shanghai, Europe/Moscow)") from None
        return value

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
    password: EnvSecret | None = None
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
    secret: EnvSecret | None = None

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if not re.match(r"^https?://", value, re.IGNORECASE):
            raise ValueError(f"{redact(value)!r}: webhook URLs must start with http:// or https://")
        return value

    @field_validator("secret")
    @classmethod
    def _whsec_is_base64(cls, value: SecretStr | None) -> SecretStr | None:
        # The value as written: an ``env:VAR`` reference is read (and checked) when a delivery needs it.
        text = SecretStr.get_secret_value(value) if value is not None else ""
        if text.startswith("whsec_"):
            try:
                if not base64.b64decode(text[len("whsec_"):], validate=True):
                    raise ValueError
            except ValueError:
                raise ValueError("a whsec_ secret must be base64 after the prefix (whsec_<base64 bytes>)") from None
        return value


class NtfyConfig(_Strict):
    """Push notifications through an ntfy topic: ``url`` is the topic URL (``https://ntfy.sh/my-topic``)."""

    url: str
    token: EnvSecret | None = None  # access token for a protected topic, sent as a bearer token
    priority: int = Field(default=3, ge=1, le=5)  # ntfy's 1 (min) .. 5 (max); 3 is ntfy's default

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if not re.match(r"^https?://[^/?#]+/[^/?#]+", value, re.IGNORECASE):
            raise ValueError(f"{redact(value)!r}: an ntfy URL is http:// or https://, a host and a topic "
                             "(https://ntfy.sh/my-topic)")
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
    ntfy: NtfyConfig | None = None
    timezone: str = "UTC"
    min_score: float = Field(default=0.0, ge=0)
    max_items: int = Field(default=50, ge=1, le=500)  # per message; more hits are split over several messages
    quiet_hours: str | None = None  # "22:00-07:00" in the subscription's time zone: nothing is sent then
    # Spelling of the words monitor writes in messages (list names, labels): en-GB "defence", en-US "defense".
    language: Literal["en-GB", "en-US"] = "en-GB"

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
        if [bool(self.email), self.webhook is not None, self.ntfy is not None].count(True) != 1:
            raise ValueError("give exactly one of 'email: [addresses]', 'webhook: {url, format, secret}' "
                             "or 'ntfy: {url, token}'")
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
    # How long a claimed feed stays this worker's without a renewal; renewed while its poll runs, so it
    # only bounds how soon another worker takes over the feeds of a worker that died.
    feed_lease_seconds: int = Field(default=300, ge=1, le=3600)
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
    unsubscribe_secret: EnvSecret | None = None
    coming_up_days: int = Field(default=30, ge=0, le=366)  # digests list round anniversaries this far ahead
    source_problem_after: Duration = 6 * 3600  # a feed failing this long is listed under "sources" in digests
    # The web front door (``monitor web``): signs session cookies and preference links. Unset: a random key
    # per start (operators log in again after a restart; preference links stop working).
    web_secret: SecretStr | None = None
    web_session_lifetime: Duration = 12 * 3600  # an operator's login lasts this long
    # Single sign-on through a reverse proxy: a request from one of web_trusted_proxies (CIDR) carrying this
    # header (e.g. X-Forwarded-User) is the operator it names (who must exist); from anywhere else the header
    # is ignored. Unset: operators log in with their password.
    web_auth_header: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,64}$")
    web_trusted_proxies: list[str] = Field(default_factory=list)

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

    @field_validator("allowed_networks", "web_trusted_proxies")
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
        if self.web_auth_header and not self.web_trusted_proxies:
            raise ValueError("web_auth_header needs web_trusted_proxies: the addresses of the proxies that set it "
                             "(e.g. [127.0.0.1/32])")
        self._webhooks_pass_the_guard()
        return self

    def _webhooks_pass_the_guard(self) -> None:
        """Refuse, when the config loads, webhook URLs the network guard would refuse on every send.

        Only what needs no network: literal addresses and ``localhost``. Host names are checked
        again when each delivery connects (their addresses can change).
        """
        if not any(sub.webhook is not None for sub in self.subscriptions):
            return  # nothing to check: spare every command the HTTP stack's import
        from monitor.errors import BlockedAddressError, FetchError
        from monitor.net.guard import FetchPolicy, check_url

        policy = FetchPolicy.for_webhooks(self)
        for sub in self.subscriptions:
            if sub.webhook is not None:
                kind, url = "webhook", sub.webhook.url
            elif sub.ntfy is not None:
                kind, url = "ntfy", sub.ntfy.url
            else:
                continue
            try:
                check_url(url, policy)
            except BlockedAddressError:
                raise ValueError(
                    f"subscription {sub.name!r}: the {kind} URL {redact(url)} points at a private, "
                    "loopback or otherwise non-public address; to deliver there, set allow_private_networks: true "
                    "or list its network in allowed_networks"
                ) from None
            except FetchError as exc:
                raise ValueError(f"subscription {sub.name!r}: {kind} {exc}") from None

    def feed_interval(self, feed: FeedConfig) -> int:
        interval = feed.interval if feed.interval is not None else self.poll_interval
        return max(self.min_poll_interval, min(self.max_poll_interval, interval))

    def check_secrets(self) -> None:
        """Read every ``env:VAR`` secret now: a delivery command fails at start, naming the key and variable."""
        found: list[tuple[str, EnvSecret | None]] = [("smtp.password", self.smtp.password if self.smtp else None),
                                                     ("unsubscribe_secret", self.unsubscribe_secret)]
        found += [(f"subscriptions.{sub.name}.webhook.secret", sub.webhook.secret)
                  for sub in self.subscriptions if sub.webhook is not None]
        found += [(f"subscriptions.{sub.name}.ntfy.token", sub.ntfy.token)
                  for sub in self.subscriptions if sub.ntfy is not None]
        for key, secret in found:
            if secret is not None and secret.reference is not None and secret.reference not in os.environ:
                raise ConfigError(f"key '{key}': environment variable {secret.reference} is not set")

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
        if path.rsplit(".", 1)[-1] in SECRET_KEYS:
            return node  # read on use (EnvSecret)
        var = node[4:]
        if var not in os.environ:
            raise ConfigError(f"key '{path}': environment variable {var} is not set")
        return os.environ[var]
    return node


def _env_override(key: str) -> str | None:
    """The ``MONITOR_<KEY>`` variable that sets this top-level key, when one is set."""
    wanted = f"MONITOR_{key}".upper()
    return next((name for name in os.environ if name.upper() == wanted), None)


def _format_validation_error(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        message = message.removeprefix("Value error, ")
        variable = _env_override(str(err["loc"][0])) if err["loc"] else None
        if variable is not None:
            # The value came from the environment, not the file: name the variable.
            if err["type"] in ("model_type", "dict_type", "list_type") and len(err["loc"]) == 1:
                message = "expected JSON (an object for a key with nested values, a list for a list)"
            lines.append(f"environment variable {variable}: {message}")
        else:
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
            # Aliases are capped while parsing: a 500-byte alias bomb would otherwise expand to
            # gigabytes before a single key is checked (see monitor/safe_yaml.py).
            raw = safe_yaml.load(config_path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            reason, line = safe_yaml.describe(exc)
            where = f":{line}" if line is not None else ""
            raise ConfigError(f"{config_path}{where}: not valid YAML: {reason}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{config_path}: not UTF-8 text") from None
        except OSError as exc:
            raise ConfigError(f"{config_path}: cannot read: {exc.strerror}") from exc
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{config_path}: the top level must be a mapping of keys")
        data = _resolve_env_refs(raw, "")
    elif explicit:
        raise ConfigError(f"{config_path}: config file not found")
    else:
        raise ConfigError(
            f"no config found: looked for {DEFAULT_CONFIG} in {Path.cwd()}; pass --config FILE or set "
            "MONITOR_CONFIG (copy deploy/monitor.example.yaml to start)"
        )
    base = config_path.resolve().parent
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, str(config_path))) from None
    except SettingsError as exc:
        # A complex key (smtp, feeds, ...) given as an environment variable that is not valid JSON.
        field_name = re.search(r'field "([^"]+)"', str(exc))
        variable = _env_override(field_name.group(1)) if field_name else None
        raise ConfigError(f"environment variable {variable or 'MONITOR_*'}: expected JSON (an object for a key "
                          "with nested values, a list for a list)") from None
    _warn_about_plain_secrets(settings, str(config_path))
    return _anchor_paths(settings, base)


def _warn_about_plain_secrets(settings: Settings, source: str) -> None:
    """A webhook secret without the ``whsec_`` prefix works, but Standard Webhooks libraries cannot verify it."""
    for sub in settings.subscriptions:
        secret = sub.webhook.secret if sub.webhook is not None else None
        if secret is None or (secret.reference is not None and secret.reference not in os.environ):
            continue  # an env: secret that is not set is reported when a delivery needs it, not on load
        if not secret.get_secret_value().startswith("whsec_"):
            log.warning(
                "%s: subscription %r: the webhook secret is not a whsec_ secret; monitor signs with its UTF-8 "
                "bytes, which the Standard Webhooks libraries cannot verify (see docs/webhook-payload.md); "
                "use whsec_ followed by base64 of 24 to 64 random bytes",
                source, sub.name, extra={"subscription": sub.name},
            )


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
