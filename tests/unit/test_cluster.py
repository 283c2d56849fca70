"""Near-duplicate story grouping: rewrites of one wire story group, different stories do not."""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from monitor.ingest.cluster import (
    DEFAULT_THRESHOLD,
    MAX_VERIFIED,
    Recent,
    StorySignature,
    assign,
    lsh_keys,
    minhash,
    shingles,
    shortlist,
    signature_for,
    similarity,
)

T0 = datetime(2025, 4, 11, 6, 0, tzinfo=UTC)

ZHAO_ARRIVES = (
    "Chinese delegation led by Zhao Leji arrives in Pyongyang",
    "A Chinese party and government delegation led by Zhao Leji, chairman of the Standing Committee of the "
    "National People's Congress, arrived in Pyongyang on Thursday for a three-day official goodwill visit. "
    "The delegation was greeted at the airport by Choe Ryong-hae, chairman of the Standing Committee of the "
    "Supreme People's Assembly. Zhao is the highest-ranking Chinese official to visit the North since 2019. "
    "The visit opens the China-DPRK Friendship Year, the Korean Central News Agency said.",
)
ZHAO_ARRIVES_REWRITE = (
    "China's No. 3 official Zhao Leji lands in North Korea to open friendship year",
    "China's third-ranking leader Zhao Leji arrived in the North Korean capital on Thursday at the head of a "
    "party and government delegation, according to Yonhap. The delegation was greeted at the airport by "
    "Choe Ryong-hae, chairman of the Standing Committee of the Supreme People's Assembly. Zhao is the "
    "highest-ranking Chinese official to visit the North since 2019. The visit opens the China-DPRK "
    "Friendship Year, the Korean Central News Agency said.",
)
ZHAO_TALKS = (
    "Zhao Leji holds talks with Choe Ryong-hae in Pyongyang",
    "Zhao Leji, chairman of the Standing Committee of the National People's Congress of China, held talks "
    "with Choe Ryong-hae, chairman of the Standing Committee of the Supreme People's Assembly, on Friday. "
    "The two sides discussed expanding exchanges in trade, tourism and culture during the Friendship Year "
    "and agreed to keep close strategic communication, the Korean Central News Agency reported.",
)

TREATY_RATIFIED = (
    "Putin signs law ratifying strategic partnership treaty with North Korea",
    "Russian President Vladimir Putin on Saturday signed a law ratifying the comprehensive strategic "
    "partnership treaty with North Korea, the Kremlin said. The treaty, signed in Pyongyang in June, obliges "
    "each side to provide immediate military assistance if the other comes under armed attack. The State "
    "Duma and the Federation Council approved the ratification earlier this month.",
)
TREATY_RATIFIED_REWRITE = (
    "Kremlin: Putin ratifies mutual defence pact with Pyongyang",
    "Vladimir Putin has ratified a landmark treaty with North Korea, completing Russia's approval of the "
    "pact, according to a document posted by the Kremlin on Saturday. The treaty, signed in Pyongyang in "
    "June, obliges each side to provide immediate military assistance if the other comes under armed "
    "attack. The State Duma and the Federation Council approved the ratification earlier this month.",
)
TREATY_IN_FORCE = (
    "Russia-North Korea strategic partnership treaty enters into force",
    "The comprehensive strategic partnership treaty between Russia and North Korea entered into force on "
    "Wednesday after the two sides exchanged instruments of ratification in Moscow, the Russian Foreign "
    "Ministry said. Deputy Foreign Minister Andrei Rudenko and North Korean Vice Foreign Minister Kim "
    "Jong-gyu took part in the ceremony.",
)
PUTIN_VISIT = (
    "Putin arrives in Pyongyang for first visit in 24 years",
    "Russian President Vladimir Putin arrived in Pyongyang early on Wednesday for a two-day state visit, "
    "his first trip to North Korea since 2000. Kim Jong Un greeted him at the airport before a motorcade "
    "took the two leaders to the Kumsusan state guest house. The Kremlin has said the leaders are expected "
    "to sign a partnership agreement.",
)
PUTIN_VISIT_REWRITE = (
    "Kim Jong Un welcomes Putin at Pyongyang airport",
    "Kim Jong Un personally met Vladimir Putin on the tarmac as the Russian leader touched down in the "
    "North Korean capital for a two-day state visit, his first trip to North Korea since 2000. Kim Jong Un "
    "greeted him at the airport before a motorcade took the two leaders to the Kumsusan state guest house. "
    "The Kremlin has said the leaders are expected to sign a partnership agreement.",
)

ARMISTICE_CHINA = (
    "Chinese envoy attends Pyongyang ceremony for armistice anniversary",
    "A Chinese delegation led by Vice Premier Li Hongzhong joined North Korean leader Kim Jong Un at a "
    "military parade in Pyongyang on Thursday marking the 70th anniversary of the end of the Korean War. "
    "Kim walked with Li and Russian Defence Minister Sergei Shoigu through an exhibition of weapons before "
    "the parade, state media reported.",
)
ARMISTICE_CHINA_REWRITE = (
    "Li Hongzhong stands with Kim Jong Un at 70th Victory Day parade",
    "China's Vice Premier Li Hongzhong watched North Korea's Victory Day parade alongside Kim Jong Un on "
    "Thursday, in the most senior Chinese presence at the event in years. Kim walked with Li and Russian "
    "Defence Minister Sergei Shoigu through an exhibition of weapons before the parade, state media "
    "reported.",
)
CPV_ANNIVERSARY = (
    "Kim Jong Un visits cemetery of Chinese People's Volunteers on entry anniversary",
    "North Korean leader Kim Jong Un laid a wreath at the cemetery of the Chinese People's Volunteers in "
    "Hoechang County to mark the 73rd anniversary of their entry into the Korean War, the Korean Central "
    "News Agency said on Wednesday. Kim paid tribute to the soldiers who fought alongside the Korean "
    "People's Army.",
)
CPV_ANNIVERSARY_REWRITE = (
    "Kim lays wreath for Chinese war dead on volunteers' anniversary",
    "Kim Jong Un paid respects on Tuesday at a cemetery in South Phyongan Province where Chinese soldiers "
    "killed in the 1950-53 war are buried, state media said. Kim laid a wreath at the cemetery of the "
    "Chinese People's Volunteers in Hoechang County to mark the 73rd anniversary of their entry into the "
    "Korean War. Kim paid tribute to the soldiers who fought alongside the Korean People's Army.",
)
TREATY_ANNIVERSARY_CHINA = (
    "North Korea and China mark 63rd anniversary of friendship treaty",
    "North Korea and China exchanged messages on Thursday marking the 63rd anniversary of the Treaty of "
    "Friendship, Cooperation and Mutual Assistance signed in 1961. Kim Jong Un and Xi Jinping pledged to "
    "carry the alliance forward, and a reception was held at the Chinese embassy in Pyongyang.",
)
TREATY_ANNIVERSARY_CHINA_REWRITE = (
    "Kim, Xi exchange messages on treaty anniversary",
    "The leaders of North Korea and China traded greetings on the anniversary of their 1961 alliance "
    "treaty, state media reported on Friday. Kim Jong Un and Xi Jinping pledged to carry the alliance "
    "forward, and a reception was held at the Chinese embassy in Pyongyang to mark the 63rd anniversary of "
    "the Treaty of Friendship, Cooperation and Mutual Assistance.",
)
FOUNDING_DAY_CHINA = (
    "Xi Jinping sends congratulations to Kim Jong Un on DPRK founding anniversary",
    "Chinese President Xi Jinping sent a message of congratulations to Kim Jong Un on the 75th anniversary "
    "of the founding of the Democratic People's Republic of Korea, Xinhua said on Saturday. Xi said China "
    "and the DPRK are friendly socialist neighbours and that he stands ready to work with Kim to deepen "
    "strategic communication.",
)
FOUNDING_DAY_CHINA_REWRITE = (
    "Xi congratulates Kim on North Korea's 75th founding day, vows closer ties",
    "Chinese leader Xi Jinping congratulated Kim Jong Un as North Korea celebrated the 75th anniversary of "
    "its founding, Chinese state media reported. Xi said China and the DPRK are friendly socialist "
    "neighbours and that he stands ready to work with Kim to deepen strategic communication.",
)
LAVROV_VISIT = (
    "Lavrov arrives in Wonsan for talks with North Korean foreign minister",
    "Russian Foreign Minister Sergei Lavrov arrived in the east coast city of Wonsan on Friday for a "
    "three-day visit and talks with his North Korean counterpart Choe Son Hui. It is Lavrov's second trip "
    "to North Korea in under a year. The ministers are expected to discuss the implementation of the "
    "partnership treaty signed by their leaders.",
)
LAVROV_VISIT_REWRITE = (
    "Russia's top diplomat in North Korea for second visit in a year",
    "Sergei Lavrov landed in North Korea on Friday, the Russian Foreign Ministry said, beginning a three-day "
    "visit to the resort city of Wonsan for talks with Choe Son Hui. It is Lavrov's second trip to North "
    "Korea in under a year. The ministers are expected to discuss the implementation of the partnership "
    "treaty signed by their leaders.",
)
CHOE_IN_MOSCOW = (
    "North Korean foreign minister Choe Son Hui holds talks with Lavrov in Moscow",
    "North Korean Foreign Minister Choe Son Hui met Russian Foreign Minister Sergei Lavrov in Moscow on "
    "Monday, the Russian Foreign Ministry said. The two discussed the situation on the Korean Peninsula and "
    "cooperation at the United Nations, and Choe is expected to travel on to meet other officials.",
)
ARMY_DAY_RUSSIA = (
    "Russian defence minister congratulates North Korean army on founding anniversary",
    "Russian Defence Minister Andrei Belousov sent greetings to his North Korean counterpart No Kwang Chol "
    "on the 93rd anniversary of the founding of the Korean People's Revolutionary Army, the Korean Central "
    "News Agency reported. Belousov praised the combat brotherhood of the two armies.",
)
VICTORY_DAY_RUSSIA = (
    "Kim Jong Un visits Russian embassy on 80th anniversary of Victory in Great Patriotic War",
    "Kim Jong Un visited the Russian embassy in Pyongyang on Friday to congratulate Russia on the 80th "
    "anniversary of victory in the Great Patriotic War, the Korean Central News Agency reported. He was "
    "received by Ambassador Alexander Matsegora and praised the heroism of the Soviet people.",
)
MILITARY_DELEGATION_CHINA = (
    "North Korean military delegation arrives in Beijing",
    "A delegation of the Korean People's Army led by Defence Minister No Kwang Chol arrived in Beijing on "
    "Tuesday for talks with the People's Liberation Army, the Korean Central News Agency said. It is the "
    "first visit to China by a North Korean defence minister in several years.",
)
CHINA_TRADE = (
    "China-North Korea trade rises in first quarter, customs data show",
    "Trade between China and North Korea rose in the first quarter compared with a year earlier, according "
    "to Chinese customs figures released on Thursday. Exports of wigs and false eyelashes from North Korea "
    "accounted for a large share of shipments to China.",
)

CJK_A = (
    "中国全国人大常委会委员长赵乐际抵达平壤",
    "赵乐际率领中国党政代表团于周四抵达平壤，开始为期三天的正式友好访问。"
    "朝鲜最高人民会议常任委员会委员长崔龙海到机场迎接。",
)
CJK_A_REWRITE = (
    "赵乐际率团访问朝鲜",
    "据朝中社报道，中国党政代表团周四抵达朝鲜首都。朝鲜最高人民会议常任委员会委员长崔龙海到机场迎接。",
)
CJK_B = ("赵乐际与崔龙海在平壤举行会谈", "双方就扩大贸易、旅游和文化交流交换了意见，并同意保持密切战略沟通。")

SAME_STORY = [
    ("zhao arrives: Yonhap vs Korea Herald rewrite", ZHAO_ARRIVES, ZHAO_ARRIVES_REWRITE),
    ("treaty ratified: new headline and lead", TREATY_RATIFIED, TREATY_RATIFIED_REWRITE),
    ("Putin arrives: new headline and lead", PUTIN_VISIT, PUTIN_VISIT_REWRITE),
    ("armistice parade: rewritten lead", ARMISTICE_CHINA, ARMISTICE_CHINA_REWRITE),
    ("CPV cemetery: extra lead sentence", CPV_ANNIVERSARY, CPV_ANNIVERSARY_REWRITE),
    ("treaty anniversary: reordered sentences", TREATY_ANNIVERSARY_CHINA, TREATY_ANNIVERSARY_CHINA_REWRITE),
    ("founding day: shortened rewrite", FOUNDING_DAY_CHINA, FOUNDING_DAY_CHINA_REWRITE),
    ("Lavrov in Wonsan: new headline and lead", LAVROV_VISIT, LAVROV_VISIT_REWRITE),
    ("identical copy, other outlet", TREATY_IN_FORCE, TREATY_IN_FORCE),
    ("headline case and punctuation changed", MILITARY_DELEGATION_CHINA,
     (MILITARY_DELEGATION_CHINA[0].upper() + "!", MILITARY_DELEGATION_CHINA[1].replace(",", ""))),
    ("Chinese text: rewritten headline and lead", CJK_A, CJK_A_REWRITE),
]

DIFFERENT_STORIES = [
    ("visit vs talks the next day (same actors)", ZHAO_ARRIVES, ZHAO_TALKS),
    ("treaty ratified vs treaty in force", TREATY_RATIFIED, TREATY_IN_FORCE),
    ("Putin visit vs treaty ratification", PUTIN_VISIT, TREATY_RATIFIED),
    ("two anniversaries: armistice parade vs CPV entry", ARMISTICE_CHINA, CPV_ANNIVERSARY),
    ("two anniversaries: treaty vs founding day", TREATY_ANNIVERSARY_CHINA, FOUNDING_DAY_CHINA),
    ("two anniversaries with Russia: army day vs victory day", ARMY_DAY_RUSSIA, VICTORY_DAY_RUSSIA),
    ("Lavrov in Wonsan vs Choe in Moscow", LAVROV_VISIT, CHOE_IN_MOSCOW),
    ("military delegation vs trade figures", MILITARY_DELEGATION_CHINA, CHINA_TRADE),
    ("Zhao arrival vs Putin arrival", ZHAO_ARRIVES, PUTIN_VISIT),
    ("Chinese text: arrival vs talks", CJK_A, CJK_B),
]


def sig(story: tuple[str, str]) -> StorySignature:
    return signature_for(*story)


def jaccard(a: tuple[str, str], b: tuple[str, str]) -> float:
    sa = shingles(a[0]) | shingles(a[1])
    sb = shingles(b[0]) | shingles(b[1])
    return len(sa & sb) / len(sa | sb)


WINDOW = timedelta(hours=48)


def recent_with(*earlier: tuple[tuple[str, str], datetime]) -> Recent:
    """Earlier items, each the first of its own story (item and story id: its position, from 1)."""
    recent = Recent()
    for n, (story, published) in enumerate(earlier, start=1):
        recent.start(n, sig(story), published)
    return recent


def joined(recent: Recent, story: tuple[str, str], when: datetime) -> int | None:
    """The story an item joins, or None when it starts its own."""
    [(story_id, was_joined)] = assign({0: (sig(story), when)}, recent, window=WINDOW,
                                      threshold=DEFAULT_THRESHOLD).values()
    return story_id if was_joined else None


@pytest.mark.parametrize(("name", "first", "second"), SAME_STORY, ids=[c[0] for c in SAME_STORY])
def test_rewrite_of_the_same_wire_story_joins_its_story(name: str, first: tuple[str, str],
                                                        second: tuple[str, str]) -> None:
    assert joined(recent_with((first, T0)), second, T0 + timedelta(hours=3)) == 1, (
        f"{name}: estimated {similarity(sig(first), sig(second)):.3f}, exact {jaccard(first, second):.3f}")


@pytest.mark.parametrize(("name", "first", "second"), DIFFERENT_STORIES, ids=[c[0] for c in DIFFERENT_STORIES])
def test_different_story_about_the_same_actors_stays_apart(name: str, first: tuple[str, str],
                                                           second: tuple[str, str]) -> None:
    assert joined(recent_with((first, T0)), second, T0 + timedelta(hours=3)) is None, (
        f"{name}: estimated {similarity(sig(first), sig(second)):.3f}, exact {jaccard(first, second):.3f}")


@pytest.mark.parametrize(("name", "first", "second"), SAME_STORY + DIFFERENT_STORIES,
                         ids=[c[0] for c in SAME_STORY + DIFFERENT_STORIES])
def test_estimate_is_close_to_exact_jaccard(name: str, first: tuple[str, str], second: tuple[str, str]) -> None:
    # 128 values: standard error <= 0.045; 0.12 is well beyond 2.5 of them.
    assert abs(similarity(sig(first), sig(second)) - jaccard(first, second)) < 0.12


def test_several_outlets_group_into_the_first_story_and_others_stay_apart() -> None:
    arrivals = [ZHAO_ARRIVES, ZHAO_ARRIVES_REWRITE, (ZHAO_ARRIVES[0].lower(), ZHAO_ARRIVES[1])]
    batch = {n: (sig(story), T0 + timedelta(hours=n))
             for n, story in enumerate([*arrivals, ZHAO_TALKS, TREATY_RATIFIED, TREATY_RATIFIED_REWRITE])}
    decided = assign(batch, Recent(), window=WINDOW, threshold=DEFAULT_THRESHOLD)
    assert [story for story, _joined in decided.values()] == [0, 0, 0, 3, 4, 4]
    assert [was_joined for _story, was_joined in decided.values()] == [False, True, True, False, False, True]


def test_an_item_joins_the_most_similar_story() -> None:
    recent = recent_with((ZHAO_ARRIVES_REWRITE, T0), (ZHAO_ARRIVES, T0 + timedelta(hours=1)))
    assert joined(recent, ZHAO_ARRIVES, T0 + timedelta(hours=2)) == 2


def test_story_outside_the_window_is_not_found_either_side() -> None:
    recent = recent_with((PUTIN_VISIT, T0))
    assert joined(recent, PUTIN_VISIT, T0 + timedelta(hours=47)) == 1
    assert joined(recent, PUTIN_VISIT, T0 + timedelta(hours=49)) is None
    assert joined(recent_with((PUTIN_VISIT, T0)), PUTIN_VISIT, T0 - timedelta(hours=49)) is None  # out of order


def candidates(recent: Recent, keys: tuple[str, ...]) -> set[int]:
    return {item for key in keys for item, _story, _published in recent.by_key.get(key, ())}


def test_lookup_examines_only_lsh_candidates_not_the_archive() -> None:
    recent = recent_with(*[(_filler(n), T0) for n in range(3000)], (TREATY_RATIFIED, T0))
    query = sig(TREATY_RATIFIED_REWRITE)
    assert len(candidates(recent, query.keys)) < 60  # of 3,001 items held
    assert joined(recent, TREATY_RATIFIED_REWRITE, T0) == 3001


BOILERPLATE = " Follow our live coverage of the Korean Peninsula on the website and in the app."


def test_boilerplate_shared_by_every_item_does_not_hide_the_match_or_cost_a_scan() -> None:
    fillers = [(title, summary + BOILERPLATE) for title, summary in map(_filler, range(3000))]
    recent = recent_with(*[(story, T0) for story in fillers],
                         ((TREATY_RATIFIED[0], TREATY_RATIFIED[1] + BOILERPLATE), T0))
    assert joined(recent, (TREATY_RATIFIED_REWRITE[0], TREATY_RATIFIED_REWRITE[1] + BOILERPLATE), T0) == 3001
    # A short item is dominated by the boilerplate: it shares keys with most of the recent items ...
    rewrite = ("New headline for report seven", fillers[7][1])
    assert len(candidates(recent, sig(rewrite).keys)) > 1000
    # ... yet only the best-ranked candidates are verified, and the right one is among them.
    assert len(shortlist(recent, 0, sig(rewrite), T0, WINDOW)) == MAX_VERIFIED
    assert joined(recent, rewrite, T0) == 8


_WORDS = ("ministry officials delegation border trade talks port bridge railway grain fertiliser exports "
          "customs envoy summit festival exhibition students athletes orchestra ferry cargo fishing "
          "reporters provincial governor factory harbour airline flights tourists visa pipeline coal "
          "electricity hospital school satellite rice typhoon flood harvest market bank currency museum "
          "embassy consulate parliament committee army navy cooperation agreement memorandum forum").split()


def _filler(n: int) -> tuple[str, str]:
    # Distinct news-like texts sharing vocabulary (and an opening phrase) with each other.
    words = random.Random(n).choices(_WORDS, k=40)
    return (f"Report {n}: " + " ".join(words[:8]),
            "North Korean and Chinese officials discussed " + " ".join(words[8:]))


def test_shingles_ignore_case_punctuation_apostrophes_and_width() -> None:
    assert shingles("North Korea's leader, Kim Jong-un: arrives!") == shingles(
        "north koreas LEADER kim jong un arrives")
    assert shingles("ＡＢＣ ｄｅｆ ｇｈｉ") == shingles("abc def ghi")
    assert len(shingles("one two three four five")) == 3


def test_chinese_text_uses_character_trigrams() -> None:
    assert len(shingles("赵乐际抵达平壤")) == 5  # 7 characters → 5 trigrams
    assert shingles("赵乐际，抵达平壤。") == shingles("赵乐际抵达平壤")
    # Korean is written with spaces: word trigrams.
    assert len(shingles("자오러지 위원장 평양 도착")) == 2


def test_short_and_empty_text() -> None:
    assert len(shingles("Pyongyang")) == 1
    assert shingles("") == set() and shingles(" -- ") == set()
    empty = signature_for("", "")
    assert empty == StorySignature(signature=(), keys=())
    assert similarity(empty, empty) == 0.0
    blank = Recent()
    blank.start(1, empty, T0)
    assert not blank.by_key  # no text: it can never be found, so it is not indexed
    assert assign({2: (empty, T0)}, blank, window=WINDOW, threshold=DEFAULT_THRESHOLD) == {2: (2, False)}


def test_signature_shape_and_determinism() -> None:
    s = signature_for(*PUTIN_VISIT)
    assert len(s.signature) == 128 and len(s.keys) == 64
    assert all(isinstance(k, str) and k.startswith("64x2.") for k in s.keys)
    assert signature_for(*PUTIN_VISIT) == s
    assert minhash({1, 2, 3}, num_perm=16) == minhash({3, 2, 1}, num_perm=16)
    assert len(lsh_keys(minhash({1, 2, 3}, num_perm=16), bands=4)) == 4
    with pytest.raises(ValueError, match="equal bands"):
        lsh_keys(minhash({1, 2, 3}, num_perm=16), bands=5)


def test_signatures_are_stable_across_processes() -> None:
    # Stored keys must match in the next run: no per-process salted hash().
    code = ("from monitor.ingest.cluster import signature_for; "
            "s = signature_for('Putin arrives in Pyongyang', 'Kim Jong Un greeted him at the airport.'); "
            "print(s.signature[:4], s.keys[:2])")
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": str(seed), "PATH": ""}).stdout
        for seed in (1, 2)
    }
    here = signature_for("Putin arrives in Pyongyang", "Kim Jong Un greeted him at the airport.")
    assert outputs == {f"{here.signature[:4]} {here.keys[:2]}\n"}


def _reference_minhash(values: set[int], num_perm: int) -> tuple[int, ...]:
    """The definition of the stored signature, written plainly: per shingle, SHAKE-128 of its 8 big-endian
    bytes read as ``num_perm`` big-endian 64-bit values; per position, the minimum over the shingles."""
    rows = []
    for h in values:
        digest = hashlib.shake_128(h.to_bytes(8, "big")).digest(8 * num_perm)
        rows.append([int.from_bytes(digest[8 * i:8 * i + 8], "big") for i in range(num_perm)])
    return tuple(min(row[i] for row in rows) for i in range(num_perm))


def _reference_keys(signature: tuple[int, ...], bands: int) -> list[str]:
    rows = len(signature) // bands
    keys = []
    for band in range(bands):
        data = b"".join(v.to_bytes(8, "big") for v in signature[band * rows:(band + 1) * rows])
        keys.append(f"{bands}x{rows}.{band:02d}.{hashlib.blake2b(data, digest_size=8).hexdigest()}")
    return keys


@pytest.mark.parametrize("num_perm,bands", [(128, 64), (16, 4), (12, 3), (1, 1)])
def test_signatures_and_keys_are_the_stored_definition(num_perm: int, bands: int) -> None:
    # Signatures and band keys are stored and compared with those of earlier runs: however they are
    # computed, they must stay exactly the values of the definition (extreme shingles included).
    rng = random.Random(num_perm)
    sets = [{0}, {2**64 - 1}, {0, 2**64 - 1}, shingles(PUTIN_VISIT[0]) | shingles(PUTIN_VISIT[1])]
    sets += [{rng.getrandbits(64) for _ in range(rng.randint(1, 300))} for _ in range(40)]
    for values in sets:
        signature = minhash(values, num_perm=num_perm)
        assert signature == _reference_minhash(values, num_perm)
        assert lsh_keys(signature, bands=bands) == _reference_keys(signature, bands)
    assert signature_for(*PUTIN_VISIT).keys == tuple(_reference_keys(signature_for(*PUTIN_VISIT).signature, 64))
