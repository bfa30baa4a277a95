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


def containment(a, b):
    """Exact containment over the shorter copy."""
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / min(len(sa), len(sb))


def lead(text, words=60):
    return " ".join(text.split()[:words])


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


def test_estimated_containment_tracks_exact_containment(texts):
    # Light edits, and lead-only copies of both the story and its edited copy.
    pairs = [p for a, b in texts for p in ((a, b), (a, lead(a)), (b, lead(a)))]
    errors = [
        minhash.containment(minhash.signature(a), minhash.signature(b)) - containment(a, b) for a, b in pairs
    ]
    assert abs(np.mean(errors)) < 0.05
    assert np.sqrt(np.mean(np.square(errors))) < 0.1


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
    signature = minhash.signature(text)
    assert signature[:16].hex() == "8edcc0e9a6bf8577315013dee93548a7"
    # The bins, then the count of distinct shingles: the bins are those of a legacy signature.
    assert len(signature) == minhash.SIGNATURE_BYTES == minhash.LEGACY_SIGNATURE_BYTES + 4
    assert int.from_bytes(signature[minhash.LEGACY_SIGNATURE_BYTES :], "little") == len(shingles(text))
    repeated = minhash.signature(text + " " + text)
    assert int.from_bytes(repeated[minhash.LEGACY_SIGNATURE_BYTES :], "little") == len(
        shingles(text + " " + text)
    )


def test_quoted_speech_is_left_out():
    said = "Kyiv said on Monday that talks would go on in Istanbul next week"
    for quote in (
        '"We will not stop," ',
        "“We will not stop, whatever it costs,” ",
        "«Мы не остановимся» ",
        "„Wir hören nicht auf“ ",
    ):
        assert minhash.signature(quote + said) == minhash.signature(said)
    # Across paragraphs: a statement quoted over several opens on the first and closes on the last.
    statement = '"The exchange is over.\n\nAll of them are home now."'
    assert minhash.signature(f"{said}\n\n{statement}\n\nMore swaps will follow.") == minhash.signature(
        f"{said}\n\nMore swaps will follow."
    )
    # ‘ is also an apostrophe: a short span between ‘ and ’ stays.
    assert minhash.signature("the ‘deal’ " + said) != minhash.signature(said)
    # A text that is all quotation is signed whole.
    assert minhash.signature('"We will not stop."') == minhash.signature("We will not stop.")


def test_case_punctuation_and_spacing_do_not_matter():
    a = minhash.signature("Grain ship leaves Odesa, officials say.")
    assert a == minhash.signature("grain  ship\nleaves ODESA officials say")
    assert minhash.similarity(a, minhash.signature("Grain ship leaves Izmail, officials say.")) < 0.5


def test_texts_without_words_have_no_signature_and_short_texts_one_shingle():
    assert minhash.signature("") is None and minhash.signature(" -- !! ") is None
    short = minhash.signature("Kremlin says no")
    assert minhash.similarity(short, minhash.signature("kremlin SAYS no.")) == 1.0
    assert minhash.similarity(short, minhash.signature("Kremlin says yes")) == 0.0


def test_bands_name_pairs_of_bins():
    assert minhash.BANDS.shape[1] == minhash.BAND_ROWS
    assert minhash.BANDS.min() >= 0 and minhash.BANDS.max() < minhash.BINS
    assert len({tuple(band) for band in minhash.BANDS.tolist()}) == len(minhash.BANDS)


def test_lead_only_and_extended_copies_pair_with_the_full_story(texts):
    fulls = [a for a, _b in texts]
    leads = [lead(a) for a in fulls]
    # A site's own paragraphs after the story: 150 words in an order no story has.
    rng = random.Random(3)
    extended = [a + " " + " ".join(rng.sample(b.split(), 150)) for a, b in texts]
    assert max(jaccard(a, c) for a, c in zip(fulls, leads, strict=True)) < 0.25  # Jaccard would miss them
    n = len(fulls)
    pairs = minhash.near_duplicate_pairs(minhash.signatures(fulls + leads + extended), 0.35).tolist()
    for i in range(n):
        assert [i, n + i] in pairs and [i, 2 * n + i] in pairs
    assert all(i % n == j % n for i, j in pairs)  # unrelated stories stay apart
    # The lead and the extended copy (J ~ 0.12, a candidate in ~95% of cases) meet through the story.
    label = minhash.connected_components(3 * n, np.array(pairs))
    assert label.tolist() == list(range(n)) * 3


def test_near_duplicate_pairs_respect_threshold_and_time_window(texts):
    a, b = texts[0]
    sigs = [minhash.signature(t) for t in (a, b, texts[1][0])]
    assert containment(a, b) > 0.6
    pairs = minhash.near_duplicate_pairs(sigs, 0.3)
    assert [0, 1] in pairs.tolist()
    assert [0, 2] not in pairs.tolist() and [1, 2] not in pairs.tolist()
    same = [sigs[0], sigs[0], sigs[0]]
    times = np.array([0, 5, 100], np.int64)
    assert minhash.near_duplicate_pairs(same, 0.5, times, window=10).tolist() == [[0, 1]]


def test_pairs_are_the_band_candidates_whose_estimate_reaches_the_threshold(texts):
    # Copies of a few texts among unrelated ones: buckets of many members in every band.
    bodies = [t for pair in texts for t in pair] + [texts[0][0]] * 40 + [texts[3][1]] * 25
    bodies += [lead(t, 30) for t, _ in texts[:10]]
    sigs = minhash.signatures(bodies)
    matrix = minhash.signature_matrix(sigs)
    candidates = minhash.spec_band_pairs(matrix)
    for threshold in (0.3, 0.5, 0.8):
        expected = np.array(
            [(i, j) for i, j in candidates.tolist() if minhash.near_duplicate(sigs[i], sigs[j], threshold)]
        )
        assert len(expected) >= 40 + 25  # each copy paired at least once
        assert minhash.near_duplicate_pairs(matrix, threshold).tolist() == expected.tolist()
        # Verified in blocks: the same pairs when a block holds three of them.
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(minhash, "_PAIR_BLOCK", 3)
            assert minhash.near_duplicate_pairs(matrix, threshold).tolist() == expected.tolist()


def shared(a, b):
    return len(shingles(a) & shingles(b))


def test_estimated_shared_shingles_track_the_exact_count(texts):
    pairs = [p for a, b in texts for p in ((a, b), (a, lead(a, 100)), (b, lead(a, 100)))]
    ratios = [
        minhash.shared_shingles(minhash.signature(a), minhash.signature(b)) / shared(a, b) for a, b in pairs
    ]
    assert abs(np.mean(ratios) - 1) < 0.05
    assert np.sqrt(np.mean(np.square(np.subtract(ratios, 1)))) < 0.25


def vocabulary_text(rng, vocab, words):
    return " ".join(rng.choice(vocab) for _ in range(words))


def test_a_shared_passage_links_copies_below_the_threshold_and_needs_the_floor(texts):
    rng = random.Random(11)
    vocab = sorted({w for a, _b in texts for w in a.split()})
    links = []
    for a, _b in texts[:20]:
        # A site's own 200 words, then the story's first 80: one window of it; the other is the story.
        window = vocabulary_text(rng, vocab, 200) + " " + lead(a, 80)
        # Two long texts of their own with the same 80 words inside: a passage, but a containment
        # far below the floor.
        long_a = vocabulary_text(rng, vocab, 900) + " " + lead(a, 80)
        long_b = vocabulary_text(rng, vocab, 900) + " " + lead(a, 80) + " " + vocabulary_text(rng, vocab, 100)
        assert shared(window, a) >= 70 and containment(window, a) < 0.3
        assert shared(long_a, long_b) >= 70 and containment(long_a, long_b) < 0.1
        sa, sw, la, lb = minhash.signatures([a, window, long_a, long_b])
        assert not minhash.near_duplicate(la, lb, 0.45)
        assert minhash.containment(sa, sw) < 0.45  # the ratio alone does not link them
        links.append(minhash.near_duplicate(sa, sw, 0.45))
        # A signature without its count has no overlap to read: Jaccard similarity alone.
        legacy = sw[: minhash.LEGACY_SIGNATURE_BYTES]
        assert minhash.shared_shingles(sa, legacy) == 0
        assert minhash.near_duplicate(sa, legacy, 0.45) == (minhash.similarity(sa, legacy) >= 0.45)
    assert sum(links) >= 18  # the estimate errs by about a quarter at ~75 shared shingles


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
    # Quoted speech in every form, unbalanced quotes, and texts that are all quotation.
    rng = random.Random(13)
    quoted = ['"', "“", "”", "«", "»", "„", "‘", "’", " word", " Слово", "\n\n", ", "]
    cases += ["".join(rng.choice(quoted) for _ in range(rng.choice([1, 5, 40, 200]))) for _ in range(1000)]
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


def test_compiled_band_pairs_equal_the_specification():
    rng = np.random.default_rng(5)
    from pipeline import _minhash_native  # the compiled extension: not built, this fails

    assert callable(_minhash_native.band_pairs)
    for rows, distinct in [(0, 1), (1, 1), (7, 2), (500, 3), (3000, 40), (20000, 65536)]:
        # few distinct values: buckets of every size, texts sharing a band's first bin but not its
        # second, and texts sharing several bands
        matrix = rng.integers(0, distinct, size=(rows, minhash.COLUMNS), dtype=np.uint16)
        native, spec = minhash.band_pairs(matrix), minhash.spec_band_pairs(matrix)
        assert native.dtype == spec.dtype and native.shape == spec.shape, rows
        assert np.array_equal(native, spec), rows
    # a bucket of m texts gives its first member and each predecessor: 2m - 3 distinct pairs
    assert minhash.band_pairs(np.full((5, minhash.COLUMNS), 9, np.uint16)).tolist() == [
        [0, 1], [0, 2], [0, 3], [0, 4], [1, 2], [2, 3], [3, 4]
    ]  # fmt: skip


def test_legacy_signatures_still_pair_by_jaccard(texts):
    a, b = texts[0]
    legacy = minhash.signature(a)[: minhash.LEGACY_SIGNATURE_BYTES]
    new = minhash.signature(b)
    assert minhash.is_signature(legacy) and minhash.is_signature(new)
    assert not minhash.is_signature(new[:100])
    assert minhash.containment(legacy, new) == minhash.similarity(legacy, new)
    assert minhash.shingle_counts(minhash.signature_matrix([legacy, new])).tolist() == [0, len(shingles(b))]
    assert jaccard(a, b) > 0.5
    assert minhash.near_duplicate_pairs([legacy, new, minhash.signature(texts[1][0])], 0.35).tolist() == [
        [0, 1]
    ]
