import gzip
import json
from pathlib import Path

import pytest

from benchmarks.quality.extraction import Scores, evaluate, load_pages, main, match, scores, spread, summary


def test_identical_texts_match_fully_whatever_the_punctuation_and_spacing() -> None:
    tp, fp, fn = match("The cat sat on the mat, quietly.", "The  cat sat\non the mat quietly")
    assert (tp, fp, fn) == (1.0, 0.0, 0.0)
    assert scores([(tp, fp, fn)]).f1 == 1.0


def test_counts_are_over_four_token_shingles_and_divided_by_their_sum() -> None:
    # true: "a b c d", "b c d e"; predicted: "a b c d" alone -> tp 1, fp 0, fn 1
    assert match("a b c d e", "a b c d") == (0.5, 0.0, 0.5)
    # predicted has one extra shingle "b c d x" -> tp 1, fp 1, fn 1
    assert match("a b c d e", "a b c d x") == pytest.approx((1 / 3, 1 / 3, 1 / 3))


def test_tokens_keep_their_case_and_repeats_count() -> None:
    assert match("One two three four", "one two three four") == (0.0, 0.5, 0.5)
    # a paragraph printed twice is a false positive the second time
    assert match("w x y z", "w x y z w x y z") == pytest.approx((1 / 5, 4 / 5, 0.0))


def test_a_text_shorter_than_a_shingle_is_one_short_shingle() -> None:
    assert match("Breaking news", "Breaking news") == (1.0, 0.0, 0.0)
    assert match("Breaking news", "Breaking") == (0.0, 0.5, 0.5)


def test_an_empty_prediction_scores_zero_recall_and_is_left_out_of_precision() -> None:
    empty = match("a b c d e", "")
    assert empty == (0.0, 0.0, 1.0)
    perfect = match("a b c d e", "a b c d e")
    result = scores([empty, perfect])
    assert result.precision == 1.0  # only the page with a prediction counts
    assert result.recall == 0.5
    assert result.f1 == pytest.approx(2 / 3)


def test_f1_is_taken_from_the_mean_precision_and_mean_recall() -> None:
    # page 1: precision 1, recall 0.5; page 2: precision 0.5, recall 1
    rows = [match("a b c d e", "a b c d"), match("a b c d", "a b c d e")]
    result = scores(rows)
    assert (result.precision, result.recall) == (0.75, 0.75)
    assert result.f1 == 0.75  # the mean of the per-page F1s would be 2/3


def _benchmark(folder: Path, pages: dict[str, tuple[str, str]]) -> Path:
    (folder / "html").mkdir(parents=True)
    truth = {
        key: {"articleBody": body, "url": f"https://example.org/{key}"} for key, (_, body) in pages.items()
    }
    (folder / "ground-truth.json").write_text(json.dumps(truth), "utf-8")
    for key, (markup, _) in pages.items():
        with gzip.open(folder / "html" / f"{key}.html.gz", "wt", encoding="utf-8") as f:
            f.write(markup)
    return folder


ARTICLE = " ".join(
    f"Sentence number {i} of the story says something new about the harbour." for i in range(40)
)


def test_pages_are_scored_by_each_extractor_in_one_run(tmp_path: Path) -> None:
    markup = f"<html><body><nav>Home | World | Sport</nav><article><p>{ARTICLE}</p></article></body></html>"
    pages = load_pages(_benchmark(tmp_path, {"b": (markup, ARTICLE), "a": (markup, ARTICLE)}))
    assert [page.key for page in pages] == ["a", "b"]
    runs = evaluate(pages, {"whole page": lambda html: html, "nothing": lambda html: ""})
    assert scores(runs["whole page"]).recall == 1.0
    assert scores(runs["whole page"]).precision < 1.0  # the menu words are extra
    assert scores(runs["nothing"]).recall == 0.0


def test_the_command_prints_each_extractor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    markup = (
        f"<html><head><title>Harbour</title></head><body><article><p>{ARTICLE}</p></article></body></html>"
    )
    assert main(["--data", str(_benchmark(tmp_path, {"a": (markup, ARTICLE)}))]) == 0
    figures = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[2:]}
    assert set(figures) == {"trafilatura", "trafilatura-nc", "extract_html", "clean_text"}
    for values in figures.values():
        f1, precision, recall = float(values[0]), float(values[3]), float(values[6])
        assert min(f1, precision, recall) > 0.9  # one plain article, found whole by each


def test_a_missing_copy_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "absent").exists()


def test_the_spread_is_the_bootstrap_deviation_over_pages() -> None:
    alike = [match("a b c d e", "a b c d")] * 20
    assert spread(alike) == Scores(0.0, 0.0, 0.0)
    mixed = [match("a b c d e", "a b c d e"), match("a b c d e", "x y z w")] * 10
    deviation = spread(mixed)
    assert 0.0 < deviation.recall < 0.5
    assert deviation == spread(mixed)  # a fixed seed: the same figures every run


def test_the_quality_summary_says_where_the_data_goes_when_it_is_missing(tmp_path: Path) -> None:
    text = summary(tmp_path)
    assert "not run" in text and str(tmp_path / "ground-truth.json") in text
    assert text.count("\n") == 0


def test_a_negative_count_of_worst_pages_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data", str(tmp_path), "--worst", "-1"]) == 2
    err = capsys.readouterr().err
    assert err == "error: --worst must be 0 or more\n"
