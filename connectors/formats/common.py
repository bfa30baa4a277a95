"""What every format shares: the validation gate, state keys, dates, languages, dead letters."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from connectors.delivery import Item
from connectors.publisher import DeadLetter
from schemas import parse_rfc3339, rfc3339, story_id, validate_raw

_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")


def problems(message: Any) -> list[str]:
    """Everything wrong with a raw message (empty when it is valid)."""
    return validate_raw(message)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dead(key: str, source: str, origin: str, reason: str, payload: bytes) -> Item:
    """A dead letter item; DeadLetter bounds its reason."""
    return Item(key, dead_letter=DeadLetter(source, origin, reason, payload))


def checked(
    message: dict[str, Any], origin: str, payload: Callable[[], bytes], key: str | None = None
) -> Item:
    """A story when the message is valid, else a dead letter carrying every reason.

    ``payload`` is only called for dead letters: serialising every valid entry would cost more than
    building it.
    """
    # A schema message quotes the offending value; keep its start and its verdict, not 5,000 characters.
    found = [p if len(p) <= 300 else f"{p[:150]} … {p[-120:]}" for p in problems(message)]
    source = str(message.get("source") or "")
    if not message.get("id"):
        found.insert(0, "item has no identifier (no guid, id, uri or link)")
    if found:
        if key is None:
            # Keyed by what the item says, not by when it was fetched or which parser read it, so the
            # same bad item is dead-lettered once however often its feed is fetched.
            stable = {k: v for k, v in message.items() if k not in ("fetched_at", "encoding")}
            key = "dl:" + digest(json.dumps(stable, sort_keys=True, default=str).encode("utf-8"))[:32]
        return dead(key, source, origin, "; ".join(found), payload())
    return Item(key or message["id"], story=message)


def entry_payload(entry: Any) -> Callable[[], bytes]:
    return lambda: json.dumps(entry, default=str, ensure_ascii=False, sort_keys=True).encode("utf-8")


def identity(source: str, guid: str | None) -> str:
    return story_id(source, guid) if guid else ""


def language(value: Any) -> str | None:
    """Primary language subtag, lower case; None for anything that is not a language tag."""
    if not isinstance(value, str) or not _LANGUAGE.match(value.strip()):
        return None
    return value.strip().replace("_", "-").split("-")[0].lower()


def when(value: Any) -> str | None:
    """RFC 3339 UTC from an RFC 3339 / ISO 8601 string; None when absent or unreadable.

    A feed's dates are metadata: an unreadable one is dropped, not a reason to lose the story.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = parse_rfc3339(value.strip())
    except (ValueError, OverflowError):
        return None
    return rfc3339(moment) if moment else None


def when_struct(value: Any) -> str | None:
    """RFC 3339 UTC from the UTC struct_time feedparser gives."""
    if not value:
        return None
    try:
        year, month, day, hour, minute, second = value[:6]
        return rfc3339(datetime(year, month, day, hour, minute, second, tzinfo=UTC))
    except (TypeError, ValueError, OverflowError):
        return None


def text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class FormatError(ValueError):
    """A whole document that cannot be read as its format; the reason says why."""


def json_items(
    items: list[Any],
    where: Callable[[int], str],
    source: str,
    decoded: Any,
    wrong_types: Callable[[dict[str, Any]], list[str]],
    to_story: Callable[[dict[str, Any]], dict[str, Any]],
) -> Iterator[Item]:
    """One raw story (or dead letter with the reasons) per item of a JSON document."""
    for index, item in enumerate(items):
        payload = entry_payload(item)
        wrong = [f"item is a {type(item).__name__}, not an object"] if not isinstance(item, dict) else []
        wrong = wrong or wrong_types(item)
        if wrong:
            body = payload()
            yield dead("dl:" + digest(body)[:32], source, where(index), "; ".join(wrong), body)
            continue
        message = to_story(item)
        message["encoding"] = decoded.record()
        yield checked(message, where(index), payload)
