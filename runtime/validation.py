"""Request validation at the edge: one rule engine, driven by the protobuf descriptors and the API's rule
table (:mod:`runtime.rules`), for every message of the three services.

Every field a request sets is checked where it enters: strings (no NUL or control characters, a length
cap, URLs parsed), enums (known numbers only), numbers (finite, in range), durations and timestamps (in
range), repeated fields (an item cap). The first problem raises :class:`InvalidArgumentError` naming the
field by its path (``spec.urls[3]``). A field without a rule in the table still gets the defaults below,
so a field added to a .proto later is never unchecked.

Invalid UTF-8 never gets this far: protobuf refuses to parse it, and :func:`locate_bad_utf8` finds
which field held it so the edge can name it too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from runtime.errors import InvalidArgumentError

__all__ = [
    "Dur",
    "Enum",
    "InvalidArgumentError",
    "Num",
    "Rep",
    "Rule",
    "Str",
    "Validator",
    "check_string",
    "locate_bad_utf8",
    "normalize_url",
]

StrKind = Literal["text", "line", "url"]

DEFAULT_MAX_CHARS = 65_536
DEFAULT_MAX_ITEMS = 100_000
MAX_URL_LENGTH = 2048

# text may hold tabs and line breaks; a line (names, ids, keys, URLs) no control character at all
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_IN_LINE = re.compile(r"[\x00-\x1f\x7f]")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
_CONTROL = {"text": _CONTROL_IN_TEXT, "line": _CONTROL_IN_LINE}
_STRING = FieldDescriptor.TYPE_STRING
_NO_RULES: Mapping[str, Rule] = {}


@dataclass(frozen=True)
class Str:
    """A string: ``text`` (tabs and line breaks allowed), ``line`` (no control character) or ``url``
    (a line that parses as an absolute http(s) URL); at most ``max_chars`` characters."""

    max_chars: int = DEFAULT_MAX_CHARS
    kind: StrKind = "text"


@dataclass(frozen=True)
class Num:
    """A number in ``[low, high]``; with ``zero_ok``, 0 (meaning "default") is allowed too."""

    low: float
    high: float
    zero_ok: bool = False


@dataclass(frozen=True)
class Enum:
    """A known enum number; ``unspecified_ok=False`` also refuses 0 (the ``*_UNSPECIFIED`` value)."""

    unspecified_ok: bool = True


@dataclass(frozen=True)
class Dur:
    """A google.protobuf.Duration in ``[low, high]`` seconds; with ``zero_ok`` unset or 0 is allowed."""

    low: float
    high: float
    zero_ok: bool = True


@dataclass(frozen=True)
class Rep:
    """A repeated field: at most ``max_items``; each item checked with ``item`` (or the defaults).
    ``per_item`` leaves the items to the service, which refuses bad ones one by one (batch writes
    report rejected items instead of failing the whole stream)."""

    max_items: int = DEFAULT_MAX_ITEMS
    item: Rule | None = None
    per_item: bool = False


Rule = Str | Num | Enum | Dur | Rep
_TEXT, _ENUM, _DURATION = Str(), Enum(), Dur(0, 315_576_000_000)  # the defaults
Rules = Mapping[str, Mapping[str, Rule]]  # message full name -> field name -> rule

_TIMESTAMP_MIN = -62_135_596_800  # 0001-01-01T00:00:00Z, the range google.protobuf.Timestamp allows
_TIMESTAMP_MAX = 253_402_300_799  # 9999-12-31T23:59:59Z


def check_string(value: str, rule: Str, field: str) -> None:
    """Raise InvalidArgumentError when ``value`` breaks ``rule``."""
    if len(value) > rule.max_chars:
        raise InvalidArgumentError(field, f"is longer than {rule.max_chars} characters ({len(value)})")
    if rule.kind == "url":
        normalize_url(value, field)
        return
    pattern = _CONTROL_IN_TEXT if rule.kind == "text" else _CONTROL_IN_LINE
    bad = pattern.search(value)
    if bad is not None:
        raise InvalidArgumentError(
            field, f"contains the control character U+{ord(bad.group()):04X} at position {bad.start()}"
        )


def normalize_url(url: str, field: str) -> str:
    """The URL with scheme and host lower-cased, the default port and the fragment dropped, and an
    empty path made "/"; InvalidArgumentError when it is not an absolute http(s) URL without control
    characters or spaces."""
    if not url:
        raise InvalidArgumentError(field, "is empty")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidArgumentError(field, f"is longer than {MAX_URL_LENGTH} characters ({len(url)})")
    bad = _URL_FORBIDDEN.search(url)
    if bad is not None:
        what = "a space" if bad.group() == " " else f"the control character U+{ord(bad.group()):04X}"
        raise InvalidArgumentError(field, f"contains {what} at position {bad.start()}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidArgumentError(field, f"{url[:100]!r} does not parse ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidArgumentError(field, f"scheme {parts.scheme!r} is not http or https")
    host = parts.hostname
    if not host:
        raise InvalidArgumentError(field, f"{url[:100]!r} has no host")
    try:
        host.encode("idna")
    except UnicodeError:
        raise InvalidArgumentError(field, f"host {host[:100]!r} is not a valid host name") from None
    if ":" in host:
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}" if userinfo else host
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


class Validator:
    """Checks messages against a rule table (see the module docstring)."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules

    def check(self, message: Message, path: str = "") -> None:
        """Raise InvalidArgumentError for the first field of ``message`` that breaks its rule."""
        descriptor = message.DESCRIPTOR
        if descriptor.full_name == "google.protobuf.Timestamp":
            self._timestamp(message, path.rstrip("."))
            return
        table = self.rules.get(descriptor.full_name, _NO_RULES)
        for field, value in message.ListFields():
            rule = table.get(field.name)
            if field.type == _STRING and not field.is_repeated:
                # the common case inline (most fields of an article are strings): the full check,
                # with its precise message, only for a value that fails the quick one
                r = rule if isinstance(rule, Str) else _TEXT
                if r.kind == "url" or len(value) > r.max_chars or _CONTROL[r.kind].search(value):
                    check_string(value, r, f"{path}{field.name}")
            elif field.is_repeated:
                self._repeated(field, value, rule, f"{path}{field.name}")
            else:
                self._single(field, value, rule, f"{path}{field.name}")

    def check_item(self, message: Message, path: str) -> str | None:
        """Why one item of a ``per_item`` field is invalid (``path: reason``), or None."""
        try:
            self.check(message, path)
        except InvalidArgumentError as exc:
            return str(exc)
        return None

    def _repeated(self, field: FieldDescriptor, values: Any, rule: Rule | None, name: str) -> None:
        rep = rule if isinstance(rule, Rep) else Rep(item=rule)
        if len(values) > rep.max_items:
            raise InvalidArgumentError(name, f"has {len(values)} items; at most {rep.max_items} are allowed")
        if rep.per_item:
            return
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            # a map (e.g. SynthesisTotals.rejection_reasons): each key and value by its own field's rule
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            for key, value in values.items():
                self._single(key_field, key, None, f"{name}.key")
                self._single(value_field, value, rep.item, f"{name}[{key!r}]")
            return
        for i, value in enumerate(values):
            self._single(field, value, rep.item, f"{name}[{i}]")

    def _single(self, field: FieldDescriptor, value: Any, rule: Rule | None, name: str) -> None:
        kind = field.type
        if kind == FieldDescriptor.TYPE_STRING:
            check_string(value, rule if isinstance(rule, Str) else _TEXT, name)
        elif kind == FieldDescriptor.TYPE_BYTES:
            limit = rule.max_chars if isinstance(rule, Str) else DEFAULT_MAX_CHARS
            if len(value) > limit:
                raise InvalidArgumentError(name, f"is longer than {limit} bytes ({len(value)})")
        elif kind == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
            _enum(field.enum_type, value, rule if isinstance(rule, Enum) else _ENUM, name)
        elif field.message_type is not None:
            if field.message_type.full_name == "google.protobuf.Duration":
                _duration(value, rule if isinstance(rule, Dur) else None, name)
            else:
                self.check(value, f"{name}.")
        elif kind != FieldDescriptor.TYPE_BOOL:
            _number(value, rule if isinstance(rule, Num) else None, name)

    @staticmethod
    def _timestamp(message: Message, name: str) -> None:
        seconds, nanos = message.seconds, message.nanos  # type: ignore[attr-defined]
        if not (_TIMESTAMP_MIN <= seconds <= _TIMESTAMP_MAX and 0 <= nanos < 1_000_000_000):
            raise InvalidArgumentError(name, "is not a valid timestamp (years 1 to 9999)")


def _enum(enum: EnumDescriptor, value: int, rule: Enum, name: str) -> None:
    if value not in enum.values_by_number:
        raise InvalidArgumentError(name, f"{value} is not a known {enum.name}")
    if value == 0 and not rule.unspecified_ok:
        raise InvalidArgumentError(name, f"{enum.values_by_number[0].name} is not allowed")


def _number(value: float, rule: Num | None, name: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgumentError(name, f"{value} is not a finite number")
    if rule is None or (rule.zero_ok and value == 0):
        return
    if not rule.low <= value <= rule.high:
        raise InvalidArgumentError(name, f"{value} is outside [{_fmt(rule.low)}, {_fmt(rule.high)}]")


def _duration(value: Message, rule: Dur | None, name: str) -> None:
    seconds, nanos = value.seconds, value.nanos  # type: ignore[attr-defined]
    if abs(nanos) >= 1_000_000_000 or (seconds > 0 > nanos) or (seconds < 0 < nanos):
        raise InvalidArgumentError(name, "is not a valid duration")
    total = seconds + nanos / 1e9
    rule = rule or _DURATION
    if rule.zero_ok and total == 0:
        return
    if not rule.low <= total <= rule.high:
        raise InvalidArgumentError(name, f"{total:g} s is outside [{_fmt(rule.low)}, {_fmt(rule.high)}] s")


def _fmt(bound: float) -> str:
    return str(bound)  # the table writes integer bounds as ints and real ones as floats


# -- naming the field that held invalid UTF-8 -------------------------------------------------------


def locate_bad_utf8(descriptor: Descriptor, data: bytes, path: str = "") -> str | None:
    """The path of the first string field in the wire bytes ``data`` of a ``descriptor`` message that
    is not valid UTF-8, or None (also when the bytes are malformed in another way)."""
    try:
        return _walk(descriptor, memoryview(data), path)
    except (IndexError, ValueError):
        return None


def _walk(descriptor: Descriptor, data: memoryview, path: str) -> str | None:
    pos, seen = 0, dict[int, int]()
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            size, pos = _varint(data, pos)
            chunk, pos = data[pos : pos + size], pos + size
            field = descriptor.fields_by_number.get(number)
            if field is None:
                continue
            index = seen.get(number, 0)
            seen[number] = index + 1
            name = f"{path}{field.name}" + (f"[{index}]" if field.is_repeated else "")
            if field.type == FieldDescriptor.TYPE_STRING:
                try:
                    bytes(chunk).decode("utf-8")
                except UnicodeDecodeError:
                    return name
            elif field.message_type is not None:
                found = _walk(field.message_type, chunk, f"{name}.")
                if found:
                    return found
        else:
            return None
    return None


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")
