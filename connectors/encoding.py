"""Bytes to text for every source format, recording what the source declared and what was used.

Agencies and feeds in the region still publish in windows-1251, koi8-r and iso-8859-9, and often
declare the wrong one (a server default of iso-8859-1, a template that says utf-8). Each declared
encoding is therefore checked, not trusted: it must decode strictly and the result must not look
like mojibake, and bytes that are valid UTF-8 with multi-byte sequences are UTF-8 whatever a
single-byte declaration says (a server default of iso-8859-1 would turn ``…`` into ``â¦``; legacy
text is valid UTF-8 by chance almost never). UTF-16 and UTF-32 without a byte-order mark are
recognised by where the zero bytes of the first characters fall (XML 1.0 appendix F, RFC 4627).

Undeclared bytes that are not UTF-8, and bytes whose declared encoding reads as mojibake, go to
charset-normalizer's detection when it recognises a language (or CJK script) in the text (GB2312, EUC-JP, Shift_JIS, EUC-KR, TIS-620, windows-1255 … all decode into
*something* as windows-1251, so decoding without error proves nothing; the language model tells
Chinese from Cyrillic mojibake). Short texts carry too little for its language model, so the
configured fallbacks, judged by charset-normalizer's mess ratio, decide when it is not sure.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Any

from charset_normalizer import from_bytes
from charset_normalizer.md import mess_ratio

# Single-byte encodings decode any bytes, so the order breaks ties between equally clean results:
# Turkish text reads the same in iso-8859-9 and windows-1252 except for the letters that matter.
FALLBACK_ENCODINGS = ("windows-1251", "koi8-r", "iso-8859-9", "windows-1252")
_MESS_SAMPLE_CHARS = 65536
_CLEAN = 0.05  # a mess ratio at or below this reads as the language it claims to be
_BETTER_BY = 0.1  # a candidate replaces a declared encoding only when this much cleaner
_DETECT_SAMPLE_BYTES = 262144

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_XML_DECL = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']""")
_XML_DECL_TEXT = re.compile(r"""^(<\?xml[^>]*?encoding\s*=\s*["'])([A-Za-z0-9._:-]{1,40})(["'])""")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE)
_CONTENT_TYPE_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE)

# Python's codec names -> the labels people (and the IANA registry) use.
_LABELS = {
    "cp1251": "windows-1251",
    "cp1252": "windows-1252",
    "cp1254": "windows-1254",
    "iso8859-1": "iso-8859-1",
    "latin-1": "iso-8859-1",
    "iso8859-5": "iso-8859-5",
    "iso8859-9": "iso-8859-9",
    "utf-16-le": "utf-16le",
    "utf-16-be": "utf-16be",
    "utf-32-le": "utf-32le",
    "utf-32-be": "utf-32be",
}


# Zero bytes among the first four, for text that starts with an ASCII character ("<", "{", space).
_WIDE = (
    (lambda b: b[0] == b[1] == b[2] == 0 and b[3] != 0, "utf-32-be"),
    (lambda b: b[0] != 0 and b[1] == b[2] == b[3] == 0, "utf-32-le"),
    (lambda b: b[0] == 0 and b[1] != 0 and b[2] == 0 and b[3] != 0, "utf-16-be"),
    (lambda b: b[0] != 0 and b[1] == 0 and b[2] != 0 and b[3] == 0, "utf-16-le"),
)


# Ideographs, kana, Hangul and their punctuation and full-width forms; not half-width katakana.
_CJK = re.compile("[\u3000-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff01-\uff5e]")


class EncodingError(ValueError):
    """No encoding turns these bytes into text."""


@dataclass(frozen=True)
class Decoded:
    text: str
    declared: str | None
    """What the source said: BOM, HTTP charset or in-document declaration (None when silent)."""
    detected: str
    """The encoding the text was actually decoded with."""

    def record(self) -> dict[str, str | None]:
        """The raw message's ``encoding`` field."""
        return {"declared": self.declared, "detected": self.detected}


def label(name: str) -> str | None:
    """Canonical label of an encoding name, or None when Python has no such codec."""
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return None
    return _LABELS.get(codec, codec)


def charset_of(content_type: str | None) -> str | None:
    if not content_type:
        return None
    match = _CONTENT_TYPE_CHARSET.search(content_type)
    return match.group(1) if match else None


def _declared_in_document(data: bytes) -> str | None:
    head = data[:1024]
    match = _XML_DECL.match(head.lstrip())
    if match:
        return match.group(1).decode("ascii")
    match = _META_CHARSET.search(head)
    return match.group(1).decode("ascii") if match else None


def _mess(text: str) -> float:
    return float(mess_ratio(text[:_MESS_SAMPLE_CHARS], maximum_threshold=1.0))


def _cleanest(data: bytes, candidates: tuple[str, ...]) -> tuple[str, str, float] | None:
    best: tuple[str, str, float] | None = None
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        mess = _mess(text)
        if best is None or mess < best[2]:
            best = (encoding, text, mess)
        if mess == 0.0:
            break
    return best


def _wide(data: bytes) -> tuple[str, str] | None:
    """(encoding, text) of UTF-16/32 without a byte-order mark, recognised by its zero bytes."""
    if len(data) < 4:
        return None
    for matches, encoding in _WIDE:
        if matches(data[:4]):
            try:
                return encoding, data.decode(encoding)
            except UnicodeDecodeError:
                return None
    return None


def _utf8_multibyte(data: bytes) -> str | None:
    if data.isascii():
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _cjk(text: str) -> bool:
    """Whether the text's non-ASCII characters are (nearly all) CJK ideographs, kana or Hangul."""
    wide = [c for c in text if ord(c) > 127]
    return len(wide) >= 4 and len(_CJK.findall("".join(wide))) >= 0.9 * len(wide)


def _samples(data: bytes) -> list[bytes]:
    """What the detector reads of a document: all of it, or a head that ends on a whole character.

    The head is cut after its last byte below 0x40 (ASCII controls, space, digits, most
    punctuation, ``<`` and ``>``): no such byte is a lead or trail byte in Shift_JIS, GBK, Big5 or
    EUC, so the cut leaves no half character to count against the right encoding. A head without
    such a byte in its second half is offered cut one to three bytes shorter as well.
    """
    if len(data) <= _DETECT_SAMPLE_BYTES:
        return [data]
    head = data[:_DETECT_SAMPLE_BYTES]
    cut = max(head.rfind(bytes([byte])) for byte in range(0x40))
    if cut >= len(head) // 2:
        return [head[: cut + 1]]
    return [head[: len(head) - trim] for trim in range(4)]


def _detect(data: bytes) -> tuple[Any, Any]:
    """charset-normalizer's matches and best match; of several samples, the least messy reading."""
    found: list[tuple[Any, Any]] = []
    for sample in _samples(data):
        matches = from_bytes(sample)
        found.append((matches, matches.best()))
    readable = [pair for pair in found if pair[1] is not None]
    if not readable:
        return found[0]
    return min(readable, key=lambda pair: (pair[1].chaos, -pair[1].coherence))


def _detected(data: bytes, fallbacks: tuple[str, ...], detect: bool) -> tuple[str, str] | None:
    """(encoding, text) of non-UTF-8 bytes, or None when nothing decodes them.

    For bytes that declare no encoding, or one that reads as mojibake. ``detect`` False (a feed
    configured with its own encodings) gets the best of ``fallbacks`` only.

    charset-normalizer's choice wins when it found a language (coherence above zero) that the
    best fallback's text does not show as well, or when it reads the bytes as a CJK multi-byte
    encoding whose text is CJK script (its language model has no CJK coherence, and Cyrillic in
    koi8-r reads as half-width katakana in Shift_JIS, which the script test refuses), and its text
    is no messier; otherwise the fallbacks decide. When its text is what a fallback gives, the
    fallback's label is kept (the same Turkish text is iso-8859-9 and windows-1254 alike).
    """
    fallback = _cleanest(data, fallbacks)
    if not detect:
        return None if fallback is None else (label(fallback[0]) or fallback[0], fallback[1])
    matches, best = _detect(data)
    sample = str(best) if best is not None else ""
    if best is not None and (best.coherence > 0 or _cjk(sample)):
        fallback_text = fallback[1][: len(sample)] if fallback else None
        fallback_coherence = max(
            (m.coherence for m in matches if fallback_text is not None and str(m) == fallback_text),
            default=0.0,
        )
        if fallback_text != sample and (best.coherence > fallback_coherence or _cjk(sample)):
            try:
                text = data.decode(best.encoding)
            except (UnicodeDecodeError, LookupError):
                text = None
            if text is not None and (fallback is None or _mess(text) <= fallback[2] + _BETTER_BY):
                return label(best.encoding) or best.encoding, text
    if fallback is None:
        return None
    return label(fallback[0]) or fallback[0], fallback[1]


def decode(
    data: bytes,
    *,
    content_type: str | None = None,
    fallbacks: tuple[str, ...] = FALLBACK_ENCODINGS,
) -> Decoded:
    """Decode ``data``; raises EncodingError when nothing decodes it."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return Decoded(
                    data[len(bom) :].decode(encoding), label(encoding), label(encoding) or encoding
                )
            except UnicodeDecodeError as exc:
                raise EncodingError(f"byte-order mark says {encoding} but the bytes are not: {exc}") from None
    said = [name for name in (charset_of(content_type), _declared_in_document(data)) if name]
    declared = [lab for lab in (label(name) for name in said) if lab]
    declared_label = declared[0] if declared else (said[0] if said else None)
    wide = _wide(data)
    if wide is not None:
        return Decoded(wide[1], declared_label, label(wide[0]) or wide[0])
    ascii_only = data.isascii()
    if any(not d.startswith("utf-") for d in declared):
        utf8 = _utf8_multibyte(data)
        if utf8 is not None:
            return Decoded(utf8, declared_label, "utf-8")
    for encoding in dict.fromkeys(declared):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if ascii_only or encoding.startswith("utf-") or _mess(text) <= _CLEAN:
            return Decoded(text, declared_label, encoding)
        # The declared single-byte encoding decodes, but into mojibake: see whether another reads clean.
        others = tuple(f for f in fallbacks if f != encoding)
        better = _detected(data, others, detect=fallbacks == FALLBACK_ENCODINGS)
        if better is not None and _mess(better[1]) + _BETTER_BY <= _mess(text):
            return Decoded(better[1], declared_label, better[0])
        return Decoded(text, declared_label, encoding)
    try:
        return Decoded(data.decode("utf-8"), declared_label, "utf-8")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    found = _detected(data, fallbacks, detect=fallbacks == FALLBACK_ENCODINGS)
    if found is None:
        raise EncodingError(f"not UTF-8 ({utf8_error}) and not any of {', '.join(fallbacks)}")
    return Decoded(found[1], declared_label, found[0])


def xml_as_utf8(text: str) -> bytes:
    """The decoded document as UTF-8 bytes whose XML declaration (if any) says so."""
    return _XML_DECL_TEXT.sub(r"\g<1>utf-8\g<3>", text.lstrip("\ufeff \t\r\n"), count=1).encode("utf-8")
