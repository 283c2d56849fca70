"""Near-duplicate story grouping: shingles, MinHash signatures, LSH band keys, a windowed index.

Owns the answer to "is this item the same story as one already seen?" — the
same wire copy lightly rewritten by another outlet (new headline, new lead
sentence), so a subscriber is alerted once and told who else reported it.

Pure: values in, values out. It must not do I/O, touch the database, read the
clock or settings, or import httpx; times are parameters. Everything that ends
up stored (signatures, band keys) is stable across runs and machines: hashes
come from :mod:`hashlib` (``blake2b``, ``shake_128``), never from :func:`hash`, whose string
hashing is salted per process.

How it decides:

* :func:`shingles` turns text into word 3-grams (casefolded, NFKC, punctuation
  dropped). Chinese and Japanese runs, which have no spaces, become one token
  per character, so the same 3-gram window gives character 3-grams there.
* :func:`minhash` estimates Jaccard similarity of two shingle sets from
  :data:`NUM_PERM` min-hashes; :func:`lsh_keys` cuts the signature into bands
  so that similar items share at least one key with high probability.
* :class:`StoryIndex` finds candidates through those keys only (never a scan),
  then keeps the most similar one at or above the threshold.

Thresholds (measured on the pairs in ``tests/unit/test_cluster.py``): rewrites
of one wire story with a new headline and lead score 0.25–0.52 exact Jaccard;
different stories about the same actors 0.0–0.06, up to 0.16 when they share
long official titles ("chairman of the Standing Committee of ..."). With 128
MinHash values the estimate's standard error near 0.2 is ~0.035, so
:data:`DEFAULT_THRESHOLD` = 0.2 still misjudges a pair whose true similarity is
within ~0.05 of it now and then. When in doubt it keeps stories apart: a
missed grouping costs one extra alert, a wrong one files a different event
under "also reported by".
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import re
import struct
import unicodedata
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = [
    "BANDS",
    "DEFAULT_THRESHOLD",
    "MAX_VERIFIED",
    "NUM_PERM",
    "StoryIndex",
    "StorySignature",
    "lsh_keys",
    "minhash",
    "shingles",
    "signature_for",
    "similarity",
]

# 128 values: the estimate's standard error near the threshold is ~0.035. With
# 64 (~0.05) the borderline test pairs were misjudged up to a third of the time
# over 200 seedings.
NUM_PERM = 128
# 64 bands of 2 rows: a pair at the threshold shares a key with probability ~0.93,
# at 0.25 ~0.98; an unrelated pair (Jaccard ~0.03) only ~0.06.
BANDS = 64
DEFAULT_THRESHOLD = 0.2
# Candidates verified per lookup, most shared band keys first. Boilerplate common to
# many items (a site's standard sentence) fills some buckets with unrelated items;
# the number of shared bands tracks similarity, so the true match ranks near the top.
MAX_VERIFIED = 64
# Long items cost time and add nothing: the title and lead identify the story.
MAX_TOKENS = 300
SHINGLE_SIZE = 3

# Scripts written without spaces between words: Han (incl. extensions and
# compatibility ideographs), Hiragana, Katakana. Hangul uses spaces, so Korean
# keeps word shingles.
_UNSPACED = re.compile(
    "([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f])"
)
_APOSTROPHES = re.compile("['’ʼ`]")
_WORD = re.compile(r"[^\W_]+")


def _hash64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _tokens(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).casefold()
    # "Korea's" and "Koreas" should agree; a dropped apostrophe is a common edit.
    text = _APOSTROPHES.sub("", text)
    text = _UNSPACED.sub(r" \1 ", text)
    return _WORD.findall(text)


def shingles(text: str) -> set[int]:
    """Word 3-grams of ``text`` (character 3-grams in Chinese/Japanese runs), hashed to 64 bits.

    Text shorter than three tokens gives one shingle of all its tokens, so a
    one-word headline still has an identity; empty text gives an empty set.
    """
    tokens = _tokens(text)[:MAX_TOKENS]
    if not tokens:
        return set()
    if len(tokens) < SHINGLE_SIZE:
        return {_hash64(" ".join(tokens).encode())}
    return {
        _hash64(" ".join(tokens[i:i + SHINGLE_SIZE]).encode())
        for i in range(len(tokens) - SHINGLE_SIZE + 1)
    }


def minhash(shingles: set[int], *, num_perm: int = NUM_PERM) -> tuple[int, ...]:
    """MinHash signature of a shingle set: ``num_perm`` values, each the minimum of one hash function.

    The fraction of positions where two signatures agree estimates the Jaccard
    similarity of the sets. An empty set has an empty signature (similar to nothing).
    """
    if not shingles:
        return ()
    if num_perm <= 0:
        raise ValueError("num_perm must be positive")
    unpack = _unpacker(num_perm)
    # One SHAKE-128 output per shingle gives num_perm independent 64-bit hashes at
    # once: about 3x faster in CPython than num_perm affine hashes over big ints.
    rows = [unpack(hashlib.shake_128(h.to_bytes(8, "big")).digest(8 * num_perm)) for h in shingles]
    return tuple(map(min, zip(*rows, strict=True)))


@functools.cache
def _unpacker(num_perm: int) -> Callable[[bytes], tuple[int, ...]]:
    return struct.Struct(f">{num_perm}Q").unpack


def lsh_keys(signature: tuple[int, ...], *, bands: int = BANDS) -> list[str]:
    """Band keys for bucket lookup: items sharing any key are candidates for comparison.

    Each key names the band layout (``"64x2.07.<hex>"``: bands × rows, band
    number, digest of the band's values), so keys from another layout never
    collide with these. ``len(signature)`` must be a multiple of ``bands``.
    """
    if not signature:
        return []
    if bands <= 0 or len(signature) % bands:
        raise ValueError(f"a signature of {len(signature)} values cannot be cut into {bands} equal bands")
    rows = len(signature) // bands
    keys = []
    for band in range(bands):
        chunk = signature[band * rows:(band + 1) * rows]
        data = b"".join(v.to_bytes(8, "big") for v in chunk)
        keys.append(f"{bands}x{rows}.{band:02d}.{hashlib.blake2b(data, digest_size=8).hexdigest()}")
    return keys


@dataclass(frozen=True, slots=True)
class StorySignature:
    """What is kept per item to find its story later: the MinHash signature and its band keys."""

    signature: tuple[int, ...]
    keys: tuple[str, ...]


def signature_for(title: str, summary: str) -> StorySignature:
    """The story signature of an item's title and summary (plain text, as normalisation leaves them)."""
    # Shingled apart so no 3-gram straddles the title/summary boundary, which
    # would differ between outlets that rewrite only the headline.
    sig = minhash(shingles(title) | shingles(summary))
    return StorySignature(signature=sig, keys=tuple(lsh_keys(sig)))


def similarity(a: StorySignature, b: StorySignature) -> float:
    """Estimated Jaccard similarity (0.0–1.0) of the two items' shingle sets."""
    return _agreement(a.signature, b.signature)


def _agreement(a: Sequence[int], b: Sequence[int]) -> float:
    # Signatures of different lengths come from different settings: not comparable.
    if not a or len(a) != len(b):
        return 0.0
    return sum(1 for x, y in zip(a, b, strict=True) if x == y) / len(a)


@dataclass(slots=True)
class _Entry:
    story_key: str
    # 8 bytes a value instead of ~40 for a tuple of ints: the index may hold days of items.
    signature: array[int]
    keys: tuple[str, ...]
    published: datetime


class StoryIndex:
    """Items of the last ``window``, findable by story similarity through LSH buckets.

    Used per poll cycle (seeded from recent stored signatures) and in tests.
    Lookups touch only the buckets of the query's keys and verify at most
    :data:`MAX_VERIFIED` candidates (those sharing the most keys), so their cost
    does not grow with the number of items held; :meth:`prune` keeps memory bounded.
    Not thread-safe.
    """

    def __init__(self, *, threshold: float = DEFAULT_THRESHOLD, window: timedelta = timedelta(hours=48)) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        self.threshold = threshold
        self.window = window
        self._entries: dict[int, _Entry] = {}
        self._buckets: dict[str, set[int]] = {}
        self._by_time: list[tuple[datetime, int]] = []  # heap: oldest first, for prune
        self._next_id = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, story_key: str, sig: StorySignature, published: datetime) -> None:
        """Remember an item as a member of ``story_key`` (``published`` timezone-aware)."""
        _require_aware(published)
        if not sig.keys:
            return  # no text: it can never be found, so holding it only costs memory
        entry_id = self._next_id
        self._next_id += 1
        self._entries[entry_id] = _Entry(story_key, array("Q", sig.signature), sig.keys, published)
        for key in sig.keys:
            self._buckets.setdefault(key, set()).add(entry_id)
        heapq.heappush(self._by_time, (published, entry_id))

    def find(self, sig: StorySignature, published: datetime) -> str | None:
        """The story most similar to ``sig`` among items within ``window`` of ``published``.

        ``None`` when no candidate reaches the threshold. Ties go to the
        earlier-published item, then the smaller story key, so the answer does
        not depend on insertion order.
        """
        _require_aware(published)
        best: tuple[float, datetime, str] | None = None
        shared = self._candidates(sig.keys)
        ranked = heapq.nlargest(MAX_VERIFIED, shared, key=shared.__getitem__) if len(shared) > MAX_VERIFIED \
            else list(shared)
        for entry_id in ranked:
            entry = self._entries[entry_id]
            if abs(entry.published - published) > self.window:
                continue
            score = _agreement(sig.signature, entry.signature)
            if score < self.threshold:
                continue
            if best is None or (-score, entry.published, entry.story_key) < (-best[0], best[1], best[2]):
                best = (score, entry.published, entry.story_key)
        return best[2] if best is not None else None

    def prune(self, now: datetime) -> None:
        """Forget items published more than ``window`` before ``now``."""
        _require_aware(now)
        cutoff = now - self.window
        while self._by_time and self._by_time[0][0] < cutoff:
            _, entry_id = heapq.heappop(self._by_time)
            entry = self._entries.pop(entry_id)
            for key in entry.keys:
                bucket = self._buckets.get(key)
                if bucket is not None:
                    bucket.discard(entry_id)
                    if not bucket:
                        del self._buckets[key]

    def _candidates(self, keys: Iterable[str]) -> Counter[int]:
        """Entries sharing at least one key, with how many keys each shares."""
        found: Counter[int] = Counter()
        for key in keys:
            bucket = self._buckets.get(key)
            if bucket:
                found.update(bucket)
        return found


def _require_aware(when: datetime) -> None:
    if when.tzinfo is None:
        raise ValueError("StoryIndex needs timezone-aware datetimes")
