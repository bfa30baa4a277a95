import random
import re

import numpy as np
import pytest

from pipeline import minhash


def shingles(text, k=minhash.SHINGLE):
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + k]) for i in range(max(1, len(words) - k + 1))} if words else set()


def jaccard(a, b):
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


@pytest.fixture(scope="module")
def texts():
    rng = random.Random(7)
    vocab = [
        "".join(rng.choice("abcdefghijklmnoprstuvyz") for _ in range(rng.randint(2, 9))) for _ in range(3000)
    ]
    out = []
    for _ in range(60):
        words = [rng.choice(vocab) for _ in range(300)]
        cut = rng.randint(0, 250)
        edited = (
            words[:cut]
            + [rng.choice(vocab) for _ in range(rng.randint(0, 40))]
            + words[cut + rng.randint(0, 60) :]
        )
        out.append((" ".join(words), " ".join(edited)))
    return out


def test_estimates_track_exact_jaccard(texts):
    errors = [
        minhash.similarity(minhash.signature(a), minhash.signature(b)) - jaccard(a, b) for a, b in texts
    ]
    assert abs(np.mean(errors)) < 0.02
    assert np.sqrt(np.mean(np.square(errors))) < 0.06  # 128 bins: standard error <= 0.045


def test_signatures_are_deterministic_and_batch_independent(texts):
    flat = [t for pair in texts[:10] for t in pair] + [
        "",
        "two words",
        "Русский текст, азербайджанский: Bakı",
    ]
    batch = minhash.signatures(flat)
    assert batch == [minhash.signature(t) for t in flat]
    assert all(len(s) == minhash.SIGNATURE_BYTES for s in batch if s is not None)


def test_signature_values_are_pinned():
    # Fixed arithmetic, no per-process seed: these bytes must never change, or signatures committed
    # by earlier batches stop matching new ones (change them only with a migration that re-signs).
    text = "The grain deal was extended for another four months, the United Nations said on Thursday."
    assert minhash.signature(text)[:16].hex() == "8edcc0e9a6bf8577315013dee93548a7"


def test_case_punctuation_and_spacing_do_not_matter():
    a = minhash.signature("Grain ship leaves Odesa, officials say.")
    assert a == minhash.signature("grain  ship\nleaves ODESA officials say")
    assert minhash.similarity(a, minhash.signature("Grain ship leaves Izmail, officials say.")) < 0.5


def test_texts_without_words_have_no_signature_and_short_texts_one_shingle():
    assert minhash.signature("") is None and minhash.signature(" -- !! ") is None
    short = minhash.signature("Kremlin says no")
    assert minhash.similarity(short, minhash.signature("kremlin SAYS no.")) == 1.0
    assert minhash.similarity(short, minhash.signature("Kremlin says yes")) == 0.0


def test_lsh_bands_fit_the_signature():
    for threshold in (0.2, 0.4, 0.5, 0.8, 1.0):
        bands, rows = minhash.lsh_bands(threshold)
        assert bands * rows <= minhash.BINS and bands >= 1 and rows >= 1
    with pytest.raises(ValueError):
        minhash.lsh_bands(0)


def test_near_duplicate_pairs_respect_threshold_and_time_window(texts):
    a, b = texts[0]
    sigs = [minhash.signature(t) for t in (a, b, texts[1][0])]
    expected = jaccard(a, b) >= 0.3
    pairs = minhash.near_duplicate_pairs(sigs, 0.3)
    assert ([0, 1] in pairs.tolist()) == expected
    assert [0, 2] not in pairs.tolist() and [1, 2] not in pairs.tolist()
    same = [sigs[0], sigs[0], sigs[0]]
    times = np.array([0, 5, 100], np.int64)
    assert minhash.near_duplicate_pairs(same, 0.5, times, window=10).tolist() == [[0, 1]]


def test_pairs_found_a_band_at_a_time_are_those_of_every_band_at_once(texts):
    # Copies of a few texts among unrelated ones: buckets of many members in every band.
    bodies = [t for pair in texts for t in pair] + [texts[0][0]] * 40 + [texts[3][1]] * 25
    matrix = minhash.signature_matrix(minhash.signatures(bodies))
    for threshold in (0.3, 0.5, 0.8):
        bands, rows = minhash.lsh_bands(threshold)
        candidates = minhash.spec_candidate_pairs(minhash.band_keys(matrix, bands, rows))
        agree = np.count_nonzero(matrix[candidates[:, 0]] == matrix[candidates[:, 1]], axis=1) / minhash.BINS
        expected = candidates[(agree - 2.0**-16) / (1 - 2.0**-16) >= threshold - 1e-9]
        assert len(expected) >= 40 + 25  # each copy paired at least once
        assert minhash.near_duplicate_pairs(matrix, threshold).tolist() == expected.tolist()
        # Verified in blocks: the same pairs when a block holds three of them.
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(minhash, "_PAIR_BLOCK", 3)
            assert minhash.near_duplicate_pairs(matrix, threshold).tolist() == expected.tolist()


def test_connected_components_label_each_node_with_its_smallest_member():
    pairs = np.array([[3, 4], [1, 3], [5, 6]])
    assert minhash.connected_components(7, pairs).tolist() == [0, 1, 2, 1, 1, 5, 5]
    assert minhash.connected_components(3, np.zeros((0, 2), np.intp)).tolist() == [0, 1, 2]


def test_the_compiled_signer_is_built():
    assert minhash._native() is not None, "pipeline._minhash_native missing: reinstall with cargo on PATH"


def _random_texts(seed, count):
    """Texts of every shape the signer meets: empty, shorter than a shingle, long; letters of several
    scripts, digits, case pairs whose lower case changes length (İ), combining marks, characters
    beyond 0x3000 and beyond the BMP, NUL, the separators Python and Rust might disagree on."""
    rng = random.Random(seed)
    pieces = list("abc XYZ 123 .,;-'\n\t") + [
        "é", "İ", "ß", "Σ", "ς", "ı", "ǅ", "Ⅷ", "٣", "中", "文", "😀", "\u0301", "\x00", "\u3000",
        "\u2028", "\u00a0", "Baki", "Bakı", "Лавров", "грейн", " ", " ",
    ]  # fmt: skip
    return [
        "".join(rng.choice(pieces) for _ in range(rng.choice([0, 1, 2, 4, 9, 40, 400]))) for _ in range(count)
    ]


def test_compiled_signatures_equal_the_specification_byte_for_byte(texts):
    cases = _random_texts(11, 4000) + [t for pair in texts for t in pair] + ["a b c d", "a b c d e"]
    # ASCII alone takes the signer's own path: words and gaps of every length, at either end or not.
    rng = random.Random(12)
    ascii_pieces = ["a", "Zq", "_", "7", " ", "  ", "-", ".,", "\n", "\t", "x_y", "word"]
    cases += [
        "".join(rng.choice(ascii_pieces) for _ in range(rng.choice([0, 1, 3, 9, 60, 500])))
        for _ in range(2000)
    ]
    for start in range(0, len(cases), 256):
        batch = cases[start : start + 256]
        assert minhash.signatures(batch) == minhash.spec_signatures(batch)


def test_a_lone_surrogate_is_refused_as_the_specification_refuses_it():
    # Validation keeps surrogate halves out of the pipeline; should one get here, the compiled path
    # must not sign what the specification cannot.
    batch = ["grain deal \ud83d extended", "grain deal extended for four months"]
    for sign in (minhash.signatures, minhash.spec_signatures):
        with pytest.raises(UnicodeEncodeError):
            sign(batch)


def test_compiled_candidate_pairs_equal_the_specification():
    rng = np.random.default_rng(5)
    assert minhash._native_candidate_pairs is not None, "the compiled extension is not built"
    for rows, bands, distinct in [(0, 3, 1), (1, 1, 1), (7, 2, 2), (500, 42, 40), (3000, 12, 2000)]:
        # few distinct keys: buckets of every size, and texts sharing several bands
        keys = rng.integers(0, distinct, size=(rows, bands), dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        native, spec = minhash.candidate_pairs(keys), minhash.spec_candidate_pairs(keys)
        assert native.dtype == spec.dtype and native.shape == spec.shape, (rows, bands)
        assert np.array_equal(native, spec), (rows, bands)
    # a bucket of m texts gives its first member and each predecessor: 2m - 3 distinct pairs
    assert minhash.candidate_pairs(np.full((5, 1), 9, np.uint64)).tolist() == [
        [0, 1], [0, 2], [0, 3], [0, 4], [1, 2], [2, 3], [3, 4]
    ]  # fmt: skip
