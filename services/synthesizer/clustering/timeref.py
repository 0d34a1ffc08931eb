"""Time anchoring: how far from its own publication an article's time expressions lie.

Reports of one event speak of times near their publication (``on Saturday``, ``yesterday``, ``at
05:30``, ``21 November``); a retrospective piece about the same place or topic speaks of years long
gone (``in 1889``, ``by the 1930s``). ``far_share`` is the share of an article's time expressions that
lie FAR_DAYS or more BEFORE its publication, read from the text itself: English calendar words
(weekdays, months, today/yesterday/tomorrow) and numbers shaped like clock times, dates, years and
decades. Future times (``net zero by 2050``) count as expressions but never as far: a plan's target
year is what a report of today's decision quotes, not a sign of a look back. No model, no
corpus-specific list; a regular expression pass per article.

A bare four-digit number is a year only where English grammar makes it one (a number is far more
often a count, a measure, an address or a code): after a preposition or phrase that takes a time
(``in``, ``since``, ``the summer of``, a month name, ...) and not followed by a word that it counts
(``in 1998 the council`` is a year, ``by 1500 officers`` is not), or before a possessive
(``1998's floods``). Numbers glued to letters (``A1200``, ``1200mm``) are never years, nor counts
that grammar marks as such (``1500 in 2026``, ``a toll of 1200 was``); a valid HHMM after a word that
also takes a time of the day (``until 1800 on Friday``, ``from 0900 to 1700``) is a clock time.
"""

from __future__ import annotations

import datetime as dt
import re

#: a time expression this many days or more from the publication is far (a year: what a news report
#: calls "last year" or "next year" is still the story's own time frame)
FAR_DAYS = 365
#: the share is far / (far + near + PRIOR_NEAR): an article with few time expressions is taken
#: for a report of its own time unless they are clearly far (one "since 1998" in a short news report
#: does not make it a history piece: a third far, a ninth once squared). 2 rather than 1: the
#: log-loss does not tell them apart (calibration pairs 0.0633 against 0.0632; the held-back half's,
#: seen, 0.0541 against 0.0539), and with 2 a short report with one background year loses 1.3
#: logits instead of 2.1 while the history pieces stay out (``python -m devtools.corpus.variants``)
PRIOR_NEAR = 2.0

_MONTHS = {
    m: k + 1
    for k, ms in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        )
    )
    for m in ms
}
_FULL = "January|February|March|April|May|June|July|August|September|October|November|December"
_SHORT = "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec"
_MONTH = f"{_FULL}|{_SHORT}"
_YEAR = r"(?:1[0-9]{3}|20[0-9]{2})"
# What stands right before a bare year (case-insensitive): a word that takes a time, then any of
# "the", "about", a season, "early/mid/late", "of", "at least"; UNAMBIGUOUS words take only a time
# ("since 1887", "the summer of 1962", "mid-1998"), AMBIGUOUS ones take counts as well ("in 1500
# homes", "by 1500 officers"), so after them the year must also end a phrase (_YEAR_AFTER)
_MODIFIERS = r"""(?:\s+(?:the|about|around|circa|c\.|early|mid|late|spring|summer|autumn|fall|winter|of|end|
    start|beginning|middle|at\s+least|as\s+early\s+as|as\s+late\s+as))*"""
_UNAMBIGUOUS = re.compile(
    rf"""(?:\b(?:since|until|till|during|throughout|circa|{_MONTH})\b{_MODIFIERS}
    |\b(?:early|mid|late|spring|summer|autumn|winter|year)(?:\s+of)?)[\s-]+$""",
    re.VERBOSE | re.IGNORECASE,
)
_AMBIGUOUS = re.compile(
    rf"""\b(in|from|by|before|after|between|through|around|of|and|or|to)\b{_MODIFIERS}\s+$""",
    re.VERBOSE | re.IGNORECASE,
)
_IN = frozenset(("in", "before", "after"))
#: what may follow a year after an AMBIGUOUS word: the end of a phrase, a capitalised word, or a
#: general English function word (any other word is what the number counts: "1500 officers")
_YEAR_AFTER = re.compile(
    r"""(?:\s*(?:$|[.,;:!?)\]"\u201d]|--?\s|\u2013|\u2014)
    |\s+(?:[A-Z]
    |(?:the|a|an|and|or|but|to|when|as|after|before|until|while|where|which|who|that|it|he|she|they|
    we|its|his|her|their|our|was|were|had|has|is|are|with|for|in|on|at|by|from|of|into)\b))""",
    re.VERBOSE,
)
#: a four-digit clock time ("at 1430 GMT", "1800 hours"): a time of the day, near
_CLOCK_AFTER = re.compile(r"\s?(?:GMT|UTC|BST|CET|CEST|EST|EDT|PST|PDT|hrs|hours?(?!\s+of\b))\b")
# the longest forms first, each match consumed once; month names count only capitalised, and "May"
# alone not at all (the verb at a sentence's start). The leading look-ahead skips, in one test, the
# positions where no form can start (most of them: a quarter of the time, 0.10 ms per dev-news article)
_EXPRESSION = re.compile(
    rf"""
    (?=[\dA-Z]|(?i:to|ye|ov|th|la|ne))
    (?:
    (?P<dmy>\b(?P<d1>[0-3]?\d)\s+(?P<m1>{_MONTH})\b\.?(?:,?\s+(?P<y1>{_YEAR})\b)?)
  | (?P<mdy>\b(?P<m2>{_MONTH})\b\.?\s+(?P<d2>[0-3]?\d)(?:st|nd|rd|th)?\b(?:,?\s+(?P<y2>{_YEAR})\b)?)
  | (?P<my>\b(?P<m3>{_FULL})\s+(?P<y3>{_YEAR})\b)
  | (?P<decade>\b(?P<y4>(?:1[0-9]{{2}}|20[0-9])0)s\b(?!\s+of\b))
  | (?P<year>(?:(?<![\w.,:/$€£#-])|(?<=mid-))(?P<y5>{_YEAR})(?![\w%-]|[.,:/]\d))
  | (?P<month>\b(?P<m6>January|February|March|April|June|July|August|September|October|November|December)\b)
  | (?P<near>\b(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day\b
        | \b(?i:today|tonight|yesterday|tomorrow|overnight)\b
        | \b(?i:this|last|next)\s+(?:morning|afternoon|evening|night|week|weekend)\b
        | (?<![\d.])[0-2]?\d:[0-5]\d(?!\d)
        | \b1?\d\s?[ap]\.?m\.?(?!\w))
    )
    """,
    re.VERBOSE,
)


def _days(a: dt.date, b: dt.date) -> int:
    """Days ``a`` lies before ``b`` (negative: after it)."""
    return (b - a).days


def _nearest(month: int, day: int, published: dt.date) -> int:
    """Days before ``published`` of the closest ``day`` of ``month`` in the year before, of or after."""
    best = 366 * 2
    for year in (published.year - 1, published.year, published.year + 1):
        try:
            d = _days(dt.date(year, month, day), published)
        except ValueError:  # 31 June: not a date
            continue
        best = min(best, d, key=abs)
    return best


def _span(first: dt.date, last: dt.date, published: dt.date) -> int:
    """Days before ``published`` of the span ``first``..``last`` (0 inside it; negative after it)."""
    if first <= published <= last:
        return 0
    return _days(last, published) if last < published else _days(first, published)


_POSSESSIVE = re.compile("['\u2019]s\\b")
#: a range's second number ("between 1500 and 2000 officers": both are counts)
_RANGE_END = re.compile(r"\s+(?:and|or|to)\s+(\d{4})\b")
#: what follows a count, never a year: "1500 in 2026" (a year of its own), "1790 in the morning"
_COUNT_AFTER = re.compile(
    rf"\s+in\s+(?:{_YEAR}\b|the\s+(?:morning|afternoon|evening|night)\b)", re.IGNORECASE
)
#: after "of", a verb or "on" closes a count ("a toll of 1200 was", "a crowd of 1500 on Sunday"); a
#: year after "of" ends a phrase ("the floods of 1998.") or comes before a name or a comma
_OF_COUNT = re.compile(r"\s+(?:was|were|is|are|had|has|on)\b", re.IGNORECASE)
#: the words after which a valid HHMM reads as a clock time ("until 1800 on Friday", "by 1700 the
#: crowd", "from 0900 to 1700"); "in around 1340" is a year all the same
_CLOCK_BEFORE = re.compile(r"(?<!\bin\s)\b(?:from|to|until|till|by|around|at)\s+$", re.IGNORECASE)
#: a range around the number: "from 1998 to 2004" (before the second), "from 1998 to" (after the first)
_RANGE_BEFORE = re.compile(r"\b(?:from|between)\s+(\d{4})\s+(?:to|and|until|till)\s+$", re.IGNORECASE)
_PHRASE_END = re.compile(r"""\s*(?:$|[.,;:!?)\]"\u201d]|--?\s|\u2013|\u2014)""")
_RANGE_AFTER = re.compile(r"\s+(?:to|and|until|till)\s+(\d{4})\b", re.IGNORECASE)


def _hhmm(number: str) -> bool:
    """Whether a four-digit number reads as a 24-hour clock time (0900, 1700; not 1998, 1961)."""
    return int(number[:2]) < 24 and int(number[2:]) < 60


def _is_clock(text: str, start: int, end: int) -> bool:
    """Whether the year-shaped number at ``start``..``end``, after from/to/until/by/around/at, is a
    clock time: a valid HHMM that does not end a phrase ("dates from 1950." is a year). Alone, only
    0000-1959 (20xx are the years news quotes most: "from 2019, "by 2020 the city"); in a range, both
    ends must be times, and not both 20xx ("from 0900 to 1700", "from 1300 to 2000" are times; "from
    1998 to 2004": 1998 cannot be one, so both are years; "from 2004 to 2010": years)."""
    number = text[start:end]
    if (
        not _hhmm(number)
        or not _CLOCK_BEFORE.search(text, max(0, start - 24), start)
        or _PHRASE_END.match(text, end)
    ):
        return False
    other = _RANGE_BEFORE.search(text, max(0, start - 32), start) or _RANGE_AFTER.match(text, end)
    if other is None:
        return number[0] == "1"
    end_ = other.group(1)
    return end_[0] == "0" or (_hhmm(end_) and "1" in (number[0], end_[0]))


def _is_year(text: str, start: int, end: int) -> bool:
    """Whether the bare number at ``start``..``end`` stands where English puts a year."""
    before = max(0, start - 48)
    if _POSSESSIVE.match(text, end) or _UNAMBIGUOUS.search(text, before, start):
        return True
    ambiguous = _AMBIGUOUS.search(text, before, start)
    if ambiguous is None or _COUNT_AFTER.match(text, end):
        return False
    if ambiguous.group(1).lower() == "of" and _OF_COUNT.match(text, end):
        return False
    if not _YEAR_AFTER.match(text, end):
        # "in 1887 engineers dug" against "in 1500 homes": after in/before/after, a number that is not
        # a multiple of 50 is a year (a count written without a comma is a round estimate)
        return ambiguous.group(1).lower() in _IN and int(text[start:end]) % 50 != 0
    after = _RANGE_END.match(text, end)  # "between 1500 and 2000 officers": counts, both
    return after is None or bool(_YEAR_AFTER.match(text, after.end()))


def distances(text: str, published: float) -> list[int]:
    """How many days before the publication each time expression of ``text`` lies (0 for one that
    spans it, negative for one after it)."""
    pub = dt.datetime.fromtimestamp(published, dt.UTC).date()
    out = []
    for m in _EXPRESSION.finditer(text):
        g = m.groupdict()
        if g["near"]:
            out.append(0)
        elif g["dmy"] or g["mdy"]:
            month = _MONTHS[(g["m1"] or g["m2"]).lower()]
            day = int(g["d1"] or g["d2"])
            year = g["y1"] or g["y2"]
            if not 1 <= day <= 31:
                continue
            try:
                out.append(_days(dt.date(int(year), month, day), pub) if year else _nearest(month, day, pub))
            except ValueError:
                continue
        elif g["my"]:
            month, year = _MONTHS[g["m3"].lower()], int(g["y3"])
            first = dt.date(year, month, 1)
            last = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
            out.append(_span(first, last, pub))
        elif g["decade"]:
            start = int(g["y4"])
            out.append(_span(dt.date(start, 1, 1), dt.date(start + 9, 12, 31), pub))
        elif g["year"]:
            if _CLOCK_AFTER.match(text, m.end()) and int(g["y5"][:2]) < 24 and int(g["y5"][2:]) < 60:
                out.append(0)
                continue
            if not _is_year(text, m.start(), m.end()):
                continue
            year = int(g["y5"])
            span = _span(dt.date(year, 1, 1), dt.date(year, 12, 31), pub)
            # a far-past year that may be a clock time ("by 1700 the crowd", "until 1800 on Friday")
            # is read as the time: a news report's own day, not a history ("by 1700 the city had"
            # is lost as a year; a near or future year, "by 2030", reads the same either way)
            out.append(0 if span >= FAR_DAYS and _is_clock(text, m.start(), m.end()) else span)
        elif g["month"]:
            out.append(min((_nearest(_MONTHS[g["m6"].lower()], d, pub) for d in (1, 28)), key=abs))
    return out


def far_share(text: str, published: float | None) -> float:
    """Share of the time expressions lying FAR_DAYS or more before the publication (0 when it is not
    known: nothing to anchor to)."""
    if published is None:
        return 0.0
    found = distances(text, published)
    far = sum(1 for d in found if d >= FAR_DAYS)
    return far / (len(found) + PRIOR_NEAR)
