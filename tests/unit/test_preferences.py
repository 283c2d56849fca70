"""How subscribers' stored preferences combine with the config (the pure planner input)."""

from __future__ import annotations

from monitor.config import SubscriptionConfig
from monitor.preferences import Preference, Target, effective_subscriptions, own_row_name

LISTS = ["delegation_visits", "anniversaries", "defense_treaties"]


def desk(**values: object) -> SubscriptionConfig:
    base: dict[str, object] = dict(name="desk", watchlists=LISTS, schedule="daily 08:00", timezone="Asia/Seoul",
                                   email=["a@example.org", "B@example.org"], quiet_hours="22:00-07:00")
    base.update(values)
    return SubscriptionConfig.model_validate(base)


def by_row(targets: list[Target]) -> dict[str, Target]:
    return {t.row_name: t for t in targets}


def test_an_address_with_preferences_is_planned_on_its_own_and_the_others_stay() -> None:
    pref = Preference("desk", "b@example.org", ("anniversaries",), "immediate", "Europe/Berlin", "")
    targets = by_row(effective_subscriptions([desk()], [pref], set()))
    shared, own = targets["desk"].config, targets[own_row_name("desk", "B@example.org")]
    assert shared.email == ["a@example.org"]
    assert (shared.watchlists, shared.schedule, shared.timezone, shared.quiet_hours) == (
        LISTS, "daily 08:00", "Asia/Seoul", "22:00-07:00")
    assert own.address == "b@example.org" and own.config.name == "desk"  # messages still name the subscription
    assert own.config.email == ["B@example.org"]
    assert (own.config.watchlists, own.config.schedule, own.config.timezone, own.config.quiet_hours) == (
        ["anniversaries"], "immediate", "Europe/Berlin", None)


def test_unset_fields_follow_the_subscription() -> None:
    pref = Preference("desk", "a@example.org", None, None, None, None)
    own = by_row(effective_subscriptions([desk()], [pref], set()))[own_row_name("desk", "a@example.org")]
    assert (own.config.watchlists, own.config.schedule, own.config.timezone, own.config.quiet_hours) == (
        LISTS, "daily 08:00", "Asia/Seoul", "22:00-07:00")


def test_a_preference_only_narrows_the_granted_lists() -> None:
    pref = Preference("desk", "a@example.org", ("secret_list", "defense_treaties", "anniversaries"))
    own = by_row(effective_subscriptions([desk()], [pref], set()))[own_row_name("desk", "a@example.org")]
    assert own.config.watchlists == ["anniversaries", "defense_treaties"]  # unknown list ignored, config's order


def test_a_config_change_removing_a_list_removes_it_for_the_address_too() -> None:
    pref = Preference("desk", "a@example.org", ("anniversaries", "defense_treaties"))
    config = desk(watchlists=["delegation_visits", "defense_treaties"])
    own = by_row(effective_subscriptions([config], [pref], set()))[own_row_name("desk", "a@example.org")]
    assert own.config.watchlists == ["defense_treaties"]
    # When none of its chosen lists is left, the address gets the subscription's lists, not silence.
    gone = by_row(effective_subscriptions([desk(watchlists=["delegation_visits"])], [pref], set()))
    assert gone[own_row_name("desk", "a@example.org")].config.watchlists == ["delegation_visits"]


def test_preferences_the_config_no_longer_grants_are_ignored() -> None:
    prefs = [Preference("desk", "gone@example.org", ("anniversaries",)), Preference("old", "a@example.org", None)]
    targets = effective_subscriptions([desk()], prefs, set())
    assert [(t.row_name, t.config.email) for t in targets] == [("desk", ["a@example.org", "B@example.org"])]


def test_with_per_address_links_every_address_of_a_shared_subscription_is_its_own_target() -> None:
    targets = effective_subscriptions([desk(), desk(name="solo", email=["s@example.org"])], [], set(),
                                      per_address=True)
    assert sorted((t.row_name, tuple(t.config.email or ())) for t in targets) == sorted([
        (own_row_name("desk", "a@example.org"), ("a@example.org",)),
        (own_row_name("desk", "b@example.org"), ("B@example.org",)),
        ("solo", ("s@example.org",)),  # one address: its messages already carry its own links
    ])


def test_an_unsubscribed_address_gets_no_target_of_its_own() -> None:
    pref = Preference("desk", "a@example.org", ("anniversaries",))
    targets = effective_subscriptions([desk()], [pref], {("desk", "a@example.org")}, per_address=True)
    assert [t.config.email for t in targets] == [["B@example.org"]]


def test_webhook_subscriptions_pass_unchanged_and_row_names_never_clash() -> None:
    hook = SubscriptionConfig.model_validate({"name": "hook", "watchlists": LISTS,
                                              "webhook": {"url": "https://hooks.example.org/x"}})
    [target] = effective_subscriptions([hook], [Preference("hook", "a@example.org", None)], set())
    assert target == Target(hook, "hook")
    long_name = "n" * 64
    name = own_row_name(long_name, "a@example.org")
    assert len(name) <= 64 and "~" in name and name != own_row_name(long_name, "b@example.org")
