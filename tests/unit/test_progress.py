import io
import logging

from wirestream.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_a_bar_with_rate_and_eta():
    out = _Terminal()
    progress = Progress("backfill", stream=out)
    progress(50, 200)
    progress(200, 200)
    text = out.getvalue()
    assert "\rbackfill [" in text and "50/200" in text and "stories/s" in text and "ETA" in text
    assert text.endswith("\n")


def test_elsewhere_plain_log_lines(caplog):
    caplog.set_level(logging.INFO, logger="wirestream.progress")
    out = io.StringIO()
    Progress("backfill", stream=out)(100, 400)
    assert out.getvalue() == ""
    assert "backfill: 100/400 (25%)" in caplog.text and "ETA" in caplog.text
