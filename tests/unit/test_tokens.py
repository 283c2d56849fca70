from __future__ import annotations

from monitor.deliver.tokens import Unsubscribe, make_token, verify_token

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
