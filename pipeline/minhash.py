"""MinHash signatures of word shingles, vectorised over a batch of texts, and LSH near-duplicate pairs.

Near-duplicates are copies of one story cut to different lengths, extended or lightly edited, so
pairs are judged by containment over the shorter copy, |A ∩ B| / min(|A|, |B|), which does not
punish a length gap as Jaccard similarity does (a lead-only copy of a 400-word story has a Jaccard
similarity near 0.1 with it and a containment near 1). Each signature carries its text's count of
distinct shingles beside the bins, and the bins' estimate of Jaccard similarity J gives the
overlap: |A ∩ B| = J (|A| + |B|) / (1 + J). Quoted speech is left out of the shingles: independent
reports of one event quote the same statement word for word, while copies of one agency story
share the reporter's own sentences.

A pair is also linked on a shared passage: at least ``PASSAGE_SHINGLES`` shingles in common (a run
of ~44 of the reporter's own words) with a containment of at least ``PASSAGE_FLOOR``. Two sites
can carry different windows of one story (one site's intro and the lead, the lead and more), or
two write-throughs of it, and then share a few whole paragraphs but less than half of the shorter
copy; independent reports of one event share phrases, names and the agency's one-sentence
background, not passages of that length. The floor keeps the estimate well-conditioned: the
overlap of two long texts is read from few agreeing bins, one bin being worth (|A| + |B|) / 128
shingles.

A signature is one-permutation MinHash (Li, Owen and Zhang 2012) with optimal densification
(Shrivastava 2017): every shingle is hashed once to 64 bits; the top 7 bits pick one of 128 bins and
each bin keeps its smallest hash, so a text costs O(shingles) rather than O(shingles x permutations).
Empty bins borrow the value of the first non-empty bin on a fixed pseudo-random probe sequence, which
keeps Pr[bins agree] equal to the Jaccard similarity of the two shingle sets. Each bin stores the low
16 bits of its minimum (b-bit MinHash, Li and Koenig 2010), with a 2**-16 chance that two different
minima agree; the count of distinct shingles (by their 64-bit hash) follows as a little-endian
uint32: 260 bytes per story. A signature of 256 bytes (bins only) is one committed before the
count was kept: it still matches, by Jaccard similarity, which never exceeds containment.

Words are maximal runs of letters and digits after lower-casing; shingles are runs of ``SHINGLE``
words (a text with fewer words is one shingle). Quoted speech (`_QUOTED`: in the quotation marks
of the languages the pipeline sees) is left out first; a text that is all quotation is signed
whole. Hashes are fixed arithmetic (no seeds from the process), so
the same text gives the same signature on every worker, run and machine.

`signatures` runs compiled code (``minhash_native/``, ~10x faster) when it is built; the NumPy
`spec_signatures` is its specification and its fallback, and tests hold the two to the same bytes.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

try:
    from pipeline._minhash_native import Signer as _NativeSigner
    from pipeline._minhash_native import band_pairs as _native_band_pairs
except ImportError:  # installed without a Rust toolchain: the NumPy specification signs
    _NativeSigner = _native_band_pairs = None

log = logging.getLogger(__name__)

__all__ = [
    "BINS",
    "SHINGLE",
    "SIGNATURE_BYTES",
    "LEGACY_SIGNATURE_BYTES",
    "COLUMNS",
    "BAND_ROWS",
    "BANDS",
    "MIN_SHINGLES",
    "signatures",
    "spec_signatures",
    "signature",
    "unquoted",
    "is_signature",
    "shingle_counts",
    "similarity",
    "containment",
    "shared_shingles",
    "PASSAGE_SHINGLES",
    "PASSAGE_FLOOR",
    "near_duplicate",
    "band_pairs",
    "spec_band_pairs",
    "candidate_pairs",
    "near_duplicate_pairs",
    "signature_matrix",
    "connected_components",
]

SHINGLE = 5
BINS = 128
SIGNATURE_BYTES = 2 * BINS + 4  # the bins (uint16 each), then the count of distinct shingles (uint32)
LEGACY_SIGNATURE_BYTES = 2 * BINS  # a signature committed before the count was kept
COLUMNS = SIGNATURE_BYTES // 2  # uint16 columns of a `signature_matrix`: the bins, then the count
# LSH bands of two bins each, over three fixed orders of the bins (`BANDS`, 192): a pair is a
# candidate with probability 1 - (1 - J**2)**192, so a lead-only copy of a long story is found
# (J ~ 0.15: 0.99; J ~ 0.1: 0.85), and so are most pairs of two long copies sharing one passage
# (J ~ 0.08: 0.71). Two 16-bit bins make a 32-bit key: unrelated texts rarely share one, where a
# one-bin band would put every text in a bucket with a few strangers.
BAND_ROWS = 2
# Containment over fewer distinct shingles than this says little (a three-word line that a long
# story happens to contain): such pairs, and pairs with a signature without its count, are judged
# by Jaccard similarity, a lower bound of containment.
MIN_SHINGLES = 20
# A shared passage (see the module's docstring): pairs with at least this many shingles in common,
# estimated, and a containment of at least `PASSAGE_FLOOR` are near-duplicates whatever the
# threshold. On the real-copy set (`python -m benchmarks.quality.containment`, exact) no two texts
# outside one group share more than 32 shingles; the estimate from 128 bins errs by a quarter at
# these overlaps (at 35, two such pairs are linked on the estimate), hence 40.
PASSAGE_SHINGLES = 40
PASSAGE_FLOOR = 0.15

_U64 = np.uint64
_BIN_SHIFT = _U64(64 - 7)  # 2**7 == BINS
_MAX_CHARS = 1 << 20  # a longer text is signed on its first million characters
_TABLE = 0x3000  # code points at or above this count as letters (CJK and other large scripts)
_WORD = np.zeros(_TABLE + 1, np.int8)
_WORD[[c for c in range(_TABLE) if chr(c).isalnum()]] = 1
_WORD[_TABLE] = 1
_P = 0x100000001B3
_MULT = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD],
    _U64,
)
_BAND_BLOCK = 16  # bands the specification keys at once (~25 MB of keys at 200k texts)
_PROBES = np.random.default_rng(20220729).integers(0, BINS, size=(BINS, 32))
# The LSH bands: pairs of bins, from three fixed orders of the bins (192 bands of `BAND_ROWS`). A
# fourth order (256 bands: a pair at J ~ 0.08 a candidate in 0.81 of cases, not 0.71) costs a third
# more band search for little on the real-copy set: over 30 random sets of orders, its recall there
# is 0.824 on average against 0.819 with three.
BANDS = np.concatenate(
    [np.arange(BINS), *(np.random.default_rng(20261207 + k).permutation(BINS) for k in range(2))]
).reshape(-1, BAND_ROWS)
# A quotation: straight quotes, “…”, «…», „…“ and ‘…’ (20 characters or more, so that ‘ as an
# apostrophe does not open one). Across paragraphs: a statement quoted over several paragraphs
# opens on the first and closes on the last, and its middle paragraphs are quotation too.
_QUOTED = re.compile(
    '"[^"]*"|\u201c[^\u201d]*\u201d|\u00ab[^\u00bb]*\u00bb|\u201e[^\u201c\u201d]*[\u201c\u201d]|\u2018[^\u2019\\n]{20,}\u2019'
)
_QUOTE_MARKS = ('"', "“", "«", "„", "‘")
_NO_HASH = np.iinfo(np.uint64).max


def _powers(base: int, n: int) -> npt.NDArray[np.uint64]:
    out = np.empty(n, _U64)
    out[0] = 1
    with np.errstate(over="ignore"):
        np.cumprod(np.full(n - 1, base, _U64), out=out[1:])
    return out


# Word hashes are polynomial hashes mod 2**64 read off one prefix sum per batch:
# sum_{j in word} c_j P^(end-j) = P^end * (S[end] - S[start]) with S the prefix sum of c_j P^-j.
_POW = _powers(_P, _MAX_CHARS + 1)
_QPOW = _powers(pow(_P, -1, 1 << 64), _MAX_CHARS + 1)


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """The MurmurHash3 64-bit finaliser, in place."""
    x ^= x >> _U64(33)
    x *= _U64(0xFF51AFD7ED558CCD)
    x ^= x >> _U64(33)
    x *= _U64(0xC4CEB9FE1A85EC53)
    x ^= x >> _U64(33)
    return x


def _word_hashes(texts: Sequence[str]) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.intp]]:
    """Hashes of every word of every text, and the index of the text each word belongs to."""
    joined = "\x00".join(t[:_MAX_CHARS].replace("\x00", " ").lower() for t in texts)
    # utf-32 gives one array element per code point, so all the work below is vectorised.
    cp = np.frombuffer(joined.encode("utf-32-le"), np.uint32)
    n = len(cp)
    letters = np.zeros(n + 2, np.int8)
    np.take(_WORD, cp, out=letters[1:-1], mode="clip")
    edges = np.flatnonzero(letters[1:] != letters[:-1])
    starts, ends = edges[0::2], edges[1::2]
    prefix = np.zeros(n + 1, _U64)
    if n >= len(_QPOW):  # a batch longer than the table: extend it for this call only
        qpow, pow_ = _powers(pow(_P, -1, 1 << 64), n + 1), _powers(_P, n + 1)
    else:
        qpow, pow_ = _QPOW, _POW
    np.cumsum(cp * qpow[:n], out=prefix[1:])
    words = (prefix[ends] - prefix[starts]) * pow_[ends]
    separators = np.flatnonzero(cp == 0)
    return words, np.searchsorted(separators, starts)


@functools.cache
def _native() -> Any:
    if _NativeSigner is None:
        log.warning("MinHash's compiled core is not built (install needs a Rust toolchain): NumPy signs")
        return None
    return _NativeSigner(_WORD.astype(np.uint8).tobytes(), _PROBES.astype(np.uint8).tobytes())


def unquoted(text: str) -> str:
    """The text without its quoted speech (`_QUOTED`, each quotation replaced by a space): what is
    signed. The compiled signer does the same itself."""
    if not any(mark in text for mark in _QUOTE_MARKS):  # substring searches: ~1 us for 4 KB
        return text
    return _QUOTED.sub(" ", text)


def signatures(texts: Sequence[str]) -> list[bytes | None]:
    """The signature of each text (``SIGNATURE_BYTES`` bytes), or None for a text without words."""
    native = _native()
    if native is None:
        return spec_signatures(texts)
    # The signer folds ASCII text itself: only other text is copied lower-cased first. It leaves
    # quoted speech out itself too (~1 us a 4 KB story, where the regular expression takes ~16).
    return native.sign_all([t[:_MAX_CHARS] if t.isascii() else t[:_MAX_CHARS].lower() for t in texts])  # type: ignore[no-any-return]


def spec_signatures(texts: Sequence[str]) -> list[bytes | None]:
    """`signatures` in NumPy, vectorised over the batch: the specification. Quoted speech is left
    out of the lower-cased text; a text that is all quotation is signed whole."""
    lowered = [t[:_MAX_CHARS].lower() for t in texts]
    plain = [unquoted(t) for t in lowered]
    signed = _spec_signatures(plain)
    whole = [i for i, s in enumerate(signed) if s is None and plain[i] != lowered[i]]
    for i, s in zip(whole, _spec_signatures([lowered[i] for i in whole]), strict=True):
        signed[i] = s
    return signed


def _spec_signatures(texts: Sequence[str]) -> list[bytes | None]:
    if not texts:
        return []
    if len(texts) > 1 and sum(min(len(t), _MAX_CHARS) + 1 for t in texts) > _MAX_CHARS:
        # Keep each batch within the precomputed power tables (a 256-story batch of 4 KB stories
        # passes them, and recomputing them cost more than the hashing).
        half = len(texts) // 2
        return _spec_signatures(texts[:half]) + _spec_signatures(texts[half:])
    with np.errstate(over="ignore"):
        words, owner = _word_hashes(texts)
        count = np.bincount(owner, minlength=len(texts))
        m = len(words) - SHINGLE + 1
        shingles: npt.NDArray[np.uint64] = np.zeros(0, _U64)
        shingle_owner: npt.NDArray[np.intp] = np.zeros(0, np.intp)
        if m > 0:
            shingles = words[:m] * _MULT[0]
            for t in range(1, SHINGLE):
                shingles += words[t : t + m] * _MULT[t]
            inside = owner[:m] == owner[SHINGLE - 1 :]
            shingles, shingle_owner = shingles[inside], owner[:m][inside]
        short = np.flatnonzero((count > 0) & (count < SHINGLE))
        if len(short):
            # A text shorter than one shingle is one shingle of all its words.
            first = np.searchsorted(owner, short)
            extra = np.zeros(len(short), _U64)
            for t in range(SHINGLE - 1):
                take = t < count[short]
                extra[take] += words[first[take] + t] * _MULT[t]
            shingles = np.concatenate([shingles, extra])
            shingle_owner = np.concatenate([shingle_owner, short])
        hashes = _mix(shingles)
        minima = np.full((len(texts), BINS), _NO_HASH, _U64)
        np.minimum.at(minima, (shingle_owner, (hashes >> _BIN_SHIFT).astype(np.intp)), hashes)
        order = np.lexsort((hashes, shingle_owner))
        first = np.ones(len(order), bool)
        first[1:] = (hashes[order][1:] != hashes[order][:-1]) | (
            shingle_owner[order][1:] != shingle_owner[order][:-1]
        )
        distinct = np.bincount(shingle_owner[order][first], minlength=len(texts)).astype("<u4")
    filled = minima != _NO_HASH
    values = (minima & _U64(0xFFFF)).astype("<u2")
    rows, bins = np.nonzero(~filled & (count > 0)[:, None])
    if len(rows):
        probes = _PROBES[bins]
        hit = filled[rows[:, None], probes]
        pick = hit.argmax(axis=1)
        found = hit[np.arange(len(rows)), pick]
        values[rows[found], bins[found]] = values[rows[found], probes[found, pick[found]]]
        for row, b in zip(rows[~found], bins[~found], strict=True):
            # Rare (texts of a few shingles): the next non-empty bin, cyclically.
            ahead = np.flatnonzero(np.roll(filled[row], -int(b)))
            values[row, b] = values[row, (int(b) + int(ahead[0])) % BINS]
    return [values[i].tobytes() + distinct[i].tobytes() if count[i] else None for i in range(len(texts))]


def signature(text: str) -> bytes | None:
    return signatures([text])[0]


def is_signature(value: bytes | None) -> bool:
    """Whether ``value`` is a signature: ``SIGNATURE_BYTES`` long, or ``LEGACY_SIGNATURE_BYTES``."""
    return value is not None and len(value) in (SIGNATURE_BYTES, LEGACY_SIGNATURE_BYTES)


def signature_matrix(sigs: Sequence[bytes] | npt.NDArray[np.uint16]) -> npt.NDArray[np.uint16]:
    """Signatures as one (texts x `COLUMNS`) matrix, a legacy signature with a count of 0 (a matrix
    is returned as it is)."""
    if isinstance(sigs, np.ndarray):
        return sigs
    if all(len(s) == SIGNATURE_BYTES for s in sigs):
        return np.frombuffer(b"".join(sigs), "<u2").reshape(len(sigs), COLUMNS)
    pad = bytes(SIGNATURE_BYTES - LEGACY_SIGNATURE_BYTES)
    return np.frombuffer(b"".join(s if len(s) == SIGNATURE_BYTES else s + pad for s in sigs), "<u2").reshape(
        len(sigs), COLUMNS
    )


def shingle_counts(matrix: npt.NDArray[np.uint16]) -> npt.NDArray[np.float64]:
    """Each signature's count of distinct shingles (0 for a legacy signature)."""
    return matrix[:, BINS].astype(np.float64) + matrix[:, BINS + 1].astype(np.float64) * 65536


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of the two texts' shingle sets."""
    matrix = signature_matrix([a, b])
    agree = float(np.count_nonzero(matrix[0, :BINS] == matrix[1, :BINS])) / BINS
    return max(0.0, _jaccard(agree))


def _pair(a: bytes, b: bytes) -> tuple[Any, Any, Any]:
    """One pair's share of agreeing bins and its two shingle counts, as one-element arrays: the
    arguments of the vectorised estimates below."""
    matrix = signature_matrix([a, b])
    agree = np.count_nonzero(matrix[0, :BINS] == matrix[1, :BINS], keepdims=True) / BINS
    counts = shingle_counts(matrix)
    return agree, counts[:1], counts[1:]


def containment(a: bytes, b: bytes) -> float:
    """Estimated containment over the shorter copy of the two texts' shingle sets: what
    `near_duplicate_pairs` compares with its threshold."""
    return float(_measure(*_pair(a, b))[0])


def shared_shingles(a: bytes, b: bytes) -> float:
    """Estimated count of shingles the two texts share, |A ∩ B| (0 when a signature has no count)."""
    agree, size_a, size_b = _pair(a, b)
    return float(_overlap(agree, size_a, size_b)[0]) if min(size_a[0], size_b[0]) else 0.0


def near_duplicate(a: bytes, b: bytes, threshold: float) -> bool:
    """Whether `near_duplicate_pairs` links the two texts when the LSH bands make them a
    candidate: containment at least ``threshold``, or a shared passage (`PASSAGE_SHINGLES`)."""
    return bool(_linked(*_pair(a, b), threshold)[0])


def _overlap(agree: Any, size_a: Any, size_b: Any) -> Any:
    """Estimated |A ∩ B| from the share of agreeing bins and the two shingle counts (arrays)."""
    j = np.maximum(0.0, _jaccard(agree))
    return j * (size_a + size_b) / (1 + j)


def _linked(agree: Any, size_a: Any, size_b: Any, threshold: float) -> Any:
    """Whether each pair is a near-duplicate: its `_measure` reaches ``threshold``, or it shares a
    passage of `PASSAGE_SHINGLES` shingles with a `_measure` of at least `PASSAGE_FLOOR`."""
    overlap = _overlap(agree, size_a, size_b)
    measure = _measure(agree, size_a, size_b, overlap)
    counted = np.minimum(size_a, size_b) >= MIN_SHINGLES  # a legacy signature has no count
    passage = counted & (overlap >= PASSAGE_SHINGLES) & (measure >= PASSAGE_FLOOR - 1e-9)
    return (measure >= threshold - 1e-9) | passage


def _measure(agree: Any, size_a: Any, size_b: Any, overlap: Any = None) -> Any:
    """Estimated containment over the shorter copy from the share of agreeing bins and the two
    shingle counts (arrays); Jaccard similarity where the shorter has fewer than `MIN_SHINGLES`
    (a count of 0: a legacy signature). ``overlap``: `_overlap` of the same, where known."""
    j = np.maximum(0.0, _jaccard(agree))
    shorter = np.minimum(size_a, size_b)
    if overlap is None:
        overlap = _overlap(agree, size_a, size_b)
    return np.where(shorter >= MIN_SHINGLES, np.minimum(1.0, overlap / np.maximum(shorter, 1)), j)


def _jaccard(agree: Any) -> Any:
    """The Jaccard similarity the share of agreeing bins estimates (scalar or array): two 16-bit
    minima also agree by chance, once in 2**16."""
    return (agree - 2.0**-16) / (1 - 2.0**-16)


def band_pairs(matrix: npt.NDArray[np.uint16]) -> npt.NDArray[np.intp]:
    """(i, j) index pairs, i < j, of texts agreeing on both bins of one of `BANDS`: in each band,
    each text of a bucket joined to the bucket's first member and to its predecessor there, so a
    bucket of m texts gives at most 2m pairs. Sorted, distinct. ``matrix``: (texts x `COLUMNS`).

    Compiled when built: the texts chained by the value of each band's first bin, with no hashing
    and no sort, ~10x faster than the specification's key and sort per band (a 100k batch's 192
    bands: ~0.4 s, not ~4.7)."""
    if _native_band_pairs is None:
        return spec_band_pairs(matrix)
    found = _native_band_pairs(
        np.ascontiguousarray(matrix), len(matrix), [(int(a), int(b)) for a, b in BANDS]
    )
    return np.frombuffer(found, np.int64).reshape(-1, 2).astype(np.intp)


def spec_band_pairs(matrix: npt.NDArray[np.uint16]) -> npt.NDArray[np.intp]:
    """`band_pairs` in NumPy, each band's two bins one key for `candidate_pairs`: the
    specification."""
    found: list[npt.NDArray[np.intp]] = [np.zeros((0, 2), np.intp)]
    for start in range(0, len(BANDS), _BAND_BLOCK):
        block = BANDS[start : start + _BAND_BLOCK]
        keys = (matrix[:, block[:, 0]].astype(_U64) << _U64(16)) | matrix[:, block[:, 1]].astype(_U64)
        found.append(candidate_pairs(keys))
    return np.unique(np.concatenate(found), axis=0)


def candidate_pairs(keys: npt.NDArray[np.uint64]) -> npt.NDArray[np.intp]:
    """(i, j) index pairs, i < j, of texts sharing a key in one column of ``keys`` (texts x bands),
    each joined to its bucket's first member and to its predecessor there: a stable sort per band.
    Sorted, distinct."""
    found = []
    for band in range(keys.shape[1]):
        order = np.argsort(keys[:, band], kind="stable")
        sorted_keys = keys[order, band]
        same = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1]) + 1
        if not len(same):
            continue
        run_start = np.ones(len(order), bool)
        run_start[same] = False
        head = np.maximum.accumulate(np.where(run_start, np.arange(len(order)), 0))
        found.append(np.stack([order[head[same]], order[same]], axis=1))
        found.append(np.stack([order[same - 1], order[same]], axis=1))
    if not found:
        return np.zeros((0, 2), np.intp)
    pairs = np.sort(np.concatenate(found), axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(pairs, axis=0)


_PAIR_BLOCK = 16384  # candidate pairs verified at once (~8 MB of gathered signatures)


def near_duplicate_pairs(
    sigs: Sequence[bytes] | npt.NDArray[np.uint16],
    threshold: float,
    times: npt.NDArray[np.int64] | None = None,
    window: int = 0,
) -> npt.NDArray[np.intp]:
    """Index pairs (i < j) of LSH candidates whose estimated containment over the shorter copy
    reaches ``threshold`` (Jaccard similarity where the shorter is under `MIN_SHINGLES` or a
    signature has no count) or that share a passage (`near_duplicate`); with ``times``, only pairs
    at most ``window`` apart. ``sigs``: signatures, or their (texts x `COLUMNS`) matrix."""
    if not len(sigs):
        return np.zeros((0, 2), np.intp)
    matrix = signature_matrix(sigs)
    pairs = band_pairs(matrix)
    if times is not None:
        pairs = pairs[np.abs(times[pairs[:, 0]] - times[pairs[:, 1]]) <= window]
    if not len(pairs):
        return pairs
    # Verified a block of pairs at a time: both sides' signatures are gathered for the comparison,
    # and a burst of copies gives up to two pairs per text and band (100k copies: ~8M pairs, GBs).
    agree = np.empty(len(pairs), np.intp)
    bins = matrix[:, :BINS]
    for start in range(0, len(pairs), _PAIR_BLOCK):
        block = pairs[start : start + _PAIR_BLOCK]
        agree[start : start + len(block)] = np.count_nonzero(bins[block[:, 0]] == bins[block[:, 1]], axis=1)
    counts = shingle_counts(matrix)
    keep = _linked(agree / BINS, counts[pairs[:, 0]], counts[pairs[:, 1]], threshold)
    return pairs[keep]


def connected_components(n: int, pairs: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """For each of ``n`` nodes, the smallest node index in its component."""
    label = np.arange(n)
    if not len(pairs):
        return label
    a, b = pairs[:, 0], pairs[:, 1]
    while True:
        before = label.copy()
        low = np.minimum(label[a], label[b])
        np.minimum.at(label, a, low)
        np.minimum.at(label, b, low)
        label = label[label]  # pointer jumping
        if np.array_equal(label, before):
            return label
