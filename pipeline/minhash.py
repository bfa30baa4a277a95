"""MinHash signatures of word shingles, vectorised over a batch of texts, and LSH near-duplicate pairs.

A signature is one-permutation MinHash (Li, Owen and Zhang 2012) with optimal densification
(Shrivastava 2017): every shingle is hashed once to 64 bits; the top 7 bits pick one of 128 bins and
each bin keeps its smallest hash, so a text costs O(shingles) rather than O(shingles x permutations).
Empty bins borrow the value of the first non-empty bin on a fixed pseudo-random probe sequence, which
keeps Pr[bins agree] equal to the Jaccard similarity of the two shingle sets. Each bin stores the low
16 bits of its minimum (b-bit MinHash, Li and Koenig 2010): 256 bytes per story, with a 2**-16 chance
that two different minima agree.

Words are maximal runs of letters and digits after lower-casing; shingles are runs of ``SHINGLE``
words (a text with fewer words is one shingle). Hashes are fixed arithmetic (no seeds from the
process), so the same text gives the same signature on every worker, run and machine.

`signatures` runs compiled code (``minhash_native/``, ~10x faster) when it is built; the NumPy
`spec_signatures` is its specification and its fallback, and tests hold the two to the same bytes.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

try:
    from pipeline._minhash_native import Signer as _NativeSigner
    from pipeline._minhash_native import candidate_pairs as _native_candidate_pairs
except ImportError:  # installed without a Rust toolchain: the NumPy specification signs
    _NativeSigner = _native_candidate_pairs = None

log = logging.getLogger(__name__)

__all__ = [
    "BINS",
    "SHINGLE",
    "SIGNATURE_BYTES",
    "signatures",
    "spec_signatures",
    "signature",
    "similarity",
    "lsh_bands",
    "band_keys",
    "candidate_pairs",
    "near_duplicate_pairs",
    "signature_matrix",
    "connected_components",
]

SHINGLE = 5
BINS = 128
SIGNATURE_BYTES = 2 * BINS

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
_PROBES = np.random.default_rng(20220729).integers(0, BINS, size=(BINS, 32))
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


def signatures(texts: Sequence[str]) -> list[bytes | None]:
    """The signature of each text (``SIGNATURE_BYTES`` bytes), or None for a text without words."""
    native = _native()
    if native is not None:
        # The signer folds ASCII text itself: only other text is copied lower-cased first.
        return native.sign_all([t[:_MAX_CHARS] if t.isascii() else t[:_MAX_CHARS].lower() for t in texts])  # type: ignore[no-any-return]
    return spec_signatures(texts)


def spec_signatures(texts: Sequence[str]) -> list[bytes | None]:
    """`signatures` in NumPy, vectorised over the batch: the specification."""
    if not texts:
        return []
    if len(texts) > 1 and sum(min(len(t), _MAX_CHARS) + 1 for t in texts) > _MAX_CHARS:
        # Keep each batch within the precomputed power tables (a 256-story batch of 4 KB stories
        # passes them, and recomputing them cost more than the hashing).
        half = len(texts) // 2
        return spec_signatures(texts[:half]) + spec_signatures(texts[half:])
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
    return [values[i].tobytes() if count[i] else None for i in range(len(texts))]


def signature(text: str) -> bytes | None:
    return signatures([text])[0]


def signature_matrix(sigs: Sequence[bytes] | npt.NDArray[np.uint16]) -> npt.NDArray[np.uint16]:
    """Signatures as one (texts x `BINS`) matrix (a matrix is returned as it is)."""
    if isinstance(sigs, np.ndarray):
        return sigs
    return np.frombuffer(b"".join(sigs), "<u2").reshape(len(sigs), BINS)


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of the two texts' shingle sets."""
    agree = float(np.count_nonzero(signature_matrix([a]) == signature_matrix([b]))) / BINS
    return max(0.0, _jaccard(agree))


def _jaccard(agree: Any) -> Any:
    """The Jaccard similarity the share of agreeing bins estimates (scalar or array): two 16-bit
    minima also agree by chance, once in 2**16."""
    return (agree - 2.0**-16) / (1 - 2.0**-16)


@functools.cache
def lsh_bands(threshold: float) -> tuple[int, int]:
    """(bands, rows) whose S-curve rises around ``threshold``, missing few pairs above it.

    Pairs found by the bands are verified against the threshold, so a false candidate only costs a
    comparison while a missed pair is lost: misses weigh four times as much as false candidates.
    """
    if not 0 < threshold <= 1:
        raise ValueError("threshold must be in (0, 1]")
    step = 0.005
    grid = np.arange(step / 2, 1, step)
    below = grid < threshold
    best: tuple[float, int, int] | None = None
    for rows in range(1, BINS + 1):
        bands = BINS // rows
        hit = 1 - (1 - grid**rows) ** bands
        cost = step * (0.2 * float(hit[below].sum()) + 0.8 * float((1 - hit[~below]).sum()))
        if best is None or cost < best[0]:
            best = (cost, bands, rows)
    assert best is not None
    return best[1], best[2]


def band_keys(matrix: npt.NDArray[np.uint16], bands: int, rows: int) -> npt.NDArray[np.uint64]:
    """One 64-bit key per (text, band): texts that agree on every bin of a band share its key."""
    keys = np.zeros((len(matrix), bands), _U64)
    with np.errstate(over="ignore"):
        for r in range(rows):
            keys += matrix[:, r : bands * rows : rows].astype(_U64) * _MULT[r % len(_MULT)] + _U64(r)
        return _mix(keys)


def candidate_pairs(keys: npt.NDArray[np.uint64]) -> npt.NDArray[np.intp]:
    """(i, j) index pairs, i < j, of texts sharing a band key: each joined to its bucket's first
    member and to its predecessor there, so a bucket of m texts gives at most 2m pairs. Sorted.

    Compiled when built: a hash map per band, ~6x faster than the sorts of `spec_candidate_pairs`
    (a 50k batch's 42 bands: ~60 ms, not ~380)."""
    if _native_candidate_pairs is None:
        return spec_candidate_pairs(keys)
    keys = np.ascontiguousarray(keys, dtype=_U64)
    found = _native_candidate_pairs(keys.tobytes(), keys.shape[0], keys.shape[1])
    return np.frombuffer(found, np.int64).reshape(-1, 2).astype(np.intp)


def spec_candidate_pairs(keys: npt.NDArray[np.uint64]) -> npt.NDArray[np.intp]:
    """`candidate_pairs` in NumPy, a stable sort per band: the specification."""
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
    """Index pairs (i < j) whose estimated Jaccard similarity reaches ``threshold``; with ``times``,
    only pairs at most ``window`` apart. ``sigs``: signatures, or their (texts x `BINS`) matrix."""
    if not len(sigs):
        return np.zeros((0, 2), np.intp)
    matrix = signature_matrix(sigs)
    bands, rows = lsh_bands(threshold)
    # A band at a time: every band's keys at once, and their copy for the compiled search, took
    # ~140 MB at 200k texts (a batch and the committed stories in its look-back).
    found = [candidate_pairs(band_keys(matrix[:, b * rows : (b + 1) * rows], 1, rows)) for b in range(bands)]
    # Distinct pairs, sorted: one int64 per pair sorts far faster than rows of two.
    codes = np.unique(np.concatenate([p[:, 0] * len(matrix) + p[:, 1] for p in found]))
    pairs = np.stack([codes // len(matrix), codes % len(matrix)], axis=1)
    if not len(pairs):
        return pairs
    # Verified a block of pairs at a time: both sides' signatures are gathered for the comparison,
    # and a burst of copies gives up to two pairs per text and band (100k copies: ~8M pairs, GBs).
    agree = np.empty(len(pairs), np.intp)
    for start in range(0, len(pairs), _PAIR_BLOCK):
        block = pairs[start : start + _PAIR_BLOCK]
        agree[start : start + len(block)] = np.count_nonzero(
            matrix[block[:, 0]] == matrix[block[:, 1]], axis=1
        )
    keep = _jaccard(agree / BINS) >= threshold - 1e-9
    if times is not None:
        keep &= np.abs(times[pairs[:, 0]] - times[pairs[:, 1]]) <= window
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
