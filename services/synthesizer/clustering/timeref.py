"""Time anchoring: how far from its own publication an article's time expressions lie.

Reports of one event speak of times near their publication (``on Saturday``, ``yesterday``, ``at
05:30``, ``21 November``); a retrospective piece about the same place or topic speaks of years long
gone (``in 1889``, ``by the 1930s``). ``far_share`` is the share of an article's time expressions that
lie more than FAR_DAYS from its publication, read from the text itself: English calendar words
(weekdays, months, today/yesterday/tomorrow) and numbers shaped like clock times, dates, years and
decades. No model, no corpus-specific list; a regular expression pass per article.
"""

from __future__ import annotations

import datetime as dt
import re

#: a time expression this many days or more from the publication is far (a year: what a news report
#: calls "last year" or "next year" is still the story's own time frame)
FAR_DAYS = 365
#: the share is far / (far + near + PRIOR_NEAR): an article with few time expressions is taken
#: for a report of its own time unless they are clearly far (one "since 1998" in a news report does not
#: make it a history piece)
PRIOR_NEAR = 1.0

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
  | (?P<decade>\b(?P<y4>(?:1[0-9]{{2}}|20[0-9])0)s\b)
  | (?P<year>(?<![\d.,:/$€£-])(?P<y5>{_YEAR})(?![\d%-]|[.,:/]\d))
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
    return abs((a - b).days)


def _nearest(month: int, day: int, published: dt.date) -> int:
    """Days from ``published`` to the closest ``day`` of ``month`` in the year before, of or after."""
    best = 366 * 2
    for year in (published.year - 1, published.year, published.year + 1):
        try:
            best = min(best, _days(dt.date(year, month, day), published))
        except ValueError:  # 31 June: not a date
            continue
    return best


def _span(first: dt.date, last: dt.date, published: dt.date) -> int:
    """Days from ``published`` to the span ``first``..``last`` (0 inside it)."""
    if first <= published <= last:
        return 0
    return min(_days(first, published), _days(last, published))


def distances(text: str, published: float) -> list[int]:
    """The distance in days of each time expression of ``text`` from the publication time."""
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
            year = int(g["y5"])
            out.append(_span(dt.date(year, 1, 1), dt.date(year, 12, 31), pub))
        elif g["month"]:
            out.append(min(_nearest(_MONTHS[g["m6"].lower()], d, pub) for d in (1, 28)))
    return out


def far_share(text: str, published: float | None) -> float:
    """Share of the time expressions lying FAR_DAYS or more from the publication (0 when it is not
    known: nothing to anchor to)."""
    if published is None:
        return 0.0
    found = distances(text, published)
    far = sum(1 for d in found if d >= FAR_DAYS)
    return far / (len(found) + PRIOR_NEAR)
