from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.deliver.tokens import (
    LIFETIMES,
    PREFERENCES,
    UNSUBSCRIBE,
    Unsubscribe,
    _b64,
    check_form_token,
    form_token,
    make_token,
    verify_token,
)

SECRET = b"k" * 32


def test_token_round_trips_to_subscription_and_address() -> None:
    token = make_token(SECRET, "analysts", "Desk@Example.org")
    assert verify_token(SECRET, token) == Unsubscribe("analysts", "desk@example.org")


def test_tampered_or_foreign_tokens_are_refused() -> None:
    token = make_token(SECRET, "analysts", "desk@example.org")
    other = make_token(SECRET, "analysts", "boss@example.org")
    forged = other.split(".")[0] + "." + token.split(".")[1]
    assert verify_token(SECRET, forged) is None
    assert verify_token(b"other-secret", token) is None
    assert verify_token(SECRET, "garbage") is None
    assert verify_token(SECRET, "a.b.c") is None


# --- purpose-bound, expiring links ------------------------------------------------------------------

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_a_link_token_names_its_purpose_and_expires() -> None:
    token = make_token(SECRET, "analysts", "Desk@Example.org", purpose=PREFERENCES, now=NOW)
    found = verify_token(SECRET, token, purpose=PREFERENCES, now=NOW + timedelta(days=59))
    assert found is not None and (found.subscription, found.address) == ("analysts", "desk@example.org")
    assert found.expires_at == NOW + LIFETIMES[PREFERENCES]
    assert verify_token(SECRET, token, purpose=PREFERENCES, now=NOW + LIFETIMES[PREFERENCES]) is None
    assert verify_token(SECRET, token, purpose=PREFERENCES) is None  # expiry is never skipped


def test_a_token_for_one_purpose_is_refused_for_the_other() -> None:
    prefs = make_token(SECRET, "analysts", "desk@example.org", purpose=PREFERENCES, now=NOW)
    unsub = make_token(SECRET, "analysts", "desk@example.org", purpose=UNSUBSCRIBE, now=NOW)
    assert verify_token(SECRET, prefs, purpose=UNSUBSCRIBE, now=NOW) is None
    assert verify_token(SECRET, unsub, purpose=PREFERENCES, now=NOW) is None
    assert verify_token(SECRET, unsub, purpose=UNSUBSCRIBE, now=NOW) is not None
    # The first unsubscribe links (no purpose, no expiry) still unsubscribe, and never open the preferences page.
    legacy = make_token(SECRET, "analysts", "desk@example.org")
    assert verify_token(SECRET, legacy, now=NOW + timedelta(days=3650)) == Unsubscribe("analysts", "desk@example.org")
    assert verify_token(SECRET, legacy, purpose=PREFERENCES, now=NOW) is None


def test_forged_expiring_tokens_are_refused() -> None:
    token = make_token(SECRET, "analysts", "desk@example.org", purpose=PREFERENCES, now=NOW)
    other = make_token(SECRET, "analysts", "boss@example.org", purpose=PREFERENCES, now=NOW)
    version, payload, tag = token.split(".")
    assert verify_token(SECRET, f"{version}.{other.split('.')[1]}.{tag}", purpose=PREFERENCES, now=NOW) is None
    later = _b64(f"preferences\x00{int((NOW + timedelta(days=9999)).timestamp())}\x00analysts\x00desk@example.org"
                 .encode())
    assert verify_token(SECRET, f"v2.{later}.{tag}", purpose=PREFERENCES, now=NOW) is None  # expiry pushed out
    assert verify_token(b"other-secret", token, purpose=PREFERENCES, now=NOW) is None
    assert verify_token(SECRET, f"{payload}.{tag}", now=NOW) is None  # replayed in the first shape
    assert verify_token(SECRET, "v2.###.###", purpose=PREFERENCES, now=NOW) is None


def test_the_form_value_is_bound_to_its_link() -> None:
    token = make_token(SECRET, "analysts", "desk@example.org", purpose=PREFERENCES, now=NOW)
    other = make_token(SECRET, "analysts", "boss@example.org", purpose=PREFERENCES, now=NOW)
    assert check_form_token(SECRET, token, form_token(SECRET, token))
    assert not check_form_token(SECRET, token, form_token(SECRET, other))
    assert not check_form_token(SECRET, token, "")
    assert not check_form_token(b"other-secret", token, form_token(SECRET, token))
