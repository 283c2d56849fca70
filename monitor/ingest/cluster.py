"""Near-duplicate story grouping: shingles, MinHash signatures, LSH band keys, the grouping decision.

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
* :func:`assign` finds candidates through those keys only (never a scan), then
  joins the most similar one at or above the threshold. The store fetches the
  recent stories' keys and signatures before, and records the decision after.

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
import re
import struct
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = [
    "BANDS",
    "DEFAULT_THRESHOLD",
    "MAX_VERIFIED",
    "NUM_PERM",
    "Recent",
    "StorySignature",
    "assign",
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
    # One SHAKE-128 output per shingle gives num_perm independent 64-bit hashes at
    # once: about 3x faster in CPython than num_perm affine hashes over big ints.
    width = 8 * num_perm
    rows = b"".join([hashlib.shake_128(h.to_bytes(8, "big")).digest(width) for h in shingles])
    # Big-endian values compare as their bytes do, so a position's minimum is among the rows whose
    # first byte there is lowest: usually one row, found by C-level scans of bytes (no Python int per
    # value), and only those rows' values are read in full.
    firsts = rows[::8]  # first byte of every value, row after row
    from_bytes = int.from_bytes
    signature = []
    for position in range(num_perm):
        column = firsts[position::num_perm]
        lowest = min(column)
        row = column.find(lowest)
        best = from_bytes(rows[8 * (row * num_perm + position):8 * (row * num_perm + position) + 8], "big")
        row = column.find(lowest, row + 1)
        while row >= 0:  # a tie on the first byte: compare the whole values
            start = 8 * (row * num_perm + position)
            best = min(best, from_bytes(rows[start:start + 8], "big"))
            row = column.find(lowest, row + 1)
        signature.append(best)
    return tuple(signature)


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
    # The whole signature packed once (big-endian, as each band's digest has always read it), then
    # one digest per band over its slice: the same keys as packing band by band, a fraction of the calls.
    packed = _packer(len(signature)).pack(*signature)
    step = 8 * rows
    prefix = f"{bands}x{rows}."
    return [
        f"{prefix}{band:02d}.{hashlib.blake2b(packed[band * step:(band + 1) * step], digest_size=8).hexdigest()}"
        for band in range(bands)
    ]


@functools.cache
def _packer(count: int) -> struct.Struct:
    return struct.Struct(f">{count}Q")


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
class Recent:
    """The recent stories a batch may join, as the store found them.

    ``by_key``: band key → (item id, story id, published) of stories' first items (only a story's
    first item is indexed: a story syndicated to hundreds of feeds keeps one set of keys).
    ``signatures``: the MinHash signatures of the shortlisted items, by item id.
    """

    by_key: dict[str, list[tuple[int, int, datetime]]] = field(default_factory=lambda: defaultdict(list))
    signatures: dict[int, tuple[int, ...]] = field(default_factory=dict)

    def start(self, item_id: int, sig: StorySignature, published: datetime) -> None:
        """Index an item that starts a story, so later items of the same batch can join it."""
        self.signatures[item_id] = sig.signature
        for key in sig.keys:
            self.by_key[key].append((item_id, item_id, published))


def shortlist(recent: Recent, item_id: int, sig: StorySignature, when: datetime,
              window: timedelta) -> list[tuple[int, int]]:
    """(item, story) of the recent items sharing the most band keys with this one, at most MAX_VERIFIED.

    Only these have their signatures compared, so the cost follows the batch, not the archive.
    """
    shared: Counter[tuple[int, int]] = Counter()
    for key in sig.keys:
        for other, story_id, published in recent.by_key.get(key, ()):
            if other != item_id and abs(published - when) <= window:
                shared[(other, story_id)] += 1
    return [pair for pair, _n in shared.most_common(MAX_VERIFIED)]


def assign(batch: Mapping[int, tuple[StorySignature, datetime]], recent: Recent, *, window: timedelta,
           threshold: float) -> dict[int, tuple[int, bool]]:
    """Put each new item in a story: ``{item_id: (story_id, joined_existing)}``, in the batch's order.

    An item joins the story of the most similar shortlisted item at or above ``threshold`` (ties go
    to the first in the shortlist); otherwise it starts a story named after itself, which the batch's
    later items can join. ``recent`` grows by the stories started.
    """
    result: dict[int, tuple[int, bool]] = {}
    for item_id, (sig, when) in batch.items():
        best: tuple[float, int] | None = None
        for other, story_id in shortlist(recent, item_id, sig, when, window):
            if other in recent.signatures:
                score = _agreement(sig.signature, recent.signatures[other])
                if score >= threshold and (best is None or score > best[0]):
                    best = (score, story_id)
        if best is not None:
            result[item_id] = (best[1], True)
        else:
            result[item_id] = (item_id, False)
            recent.start(item_id, sig, when)
    return result
