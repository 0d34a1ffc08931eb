"""The dev-news corpus (``../shared/corpora/dev-news``, beside the repository; not copied into it):
113 labelled fictional news articles about 16 multi-article events and 12 singletons, with look-alike
events (its README lists the hard cases). Read from ``$STORYWIRE_DEV_NEWS`` or that default path; code
that uses it skips with a message where it is absent.

The calibration split: half of its events (and half of its singletons) serve to fit the events
backend together with the sample corpus; the other half is held back and reported apart. Hard cases
stay whole on one side, since a look-alike pair teaches nothing when only one of its events is seen:
cases 1, 3 and 5 and the singletons that resemble them calibrate, cases 2 and 4 are held back.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO.parent / "shared" / "corpora" / "dev-news"

CALIBRATION = frozenset(
    {
        # hard case 1: same city, same week
        "veldmoor-nurses-strike", "veldmoor-tram-line4",
        # hard case 3: the collapse and the charging of the director
        "drennick-warehouse-collapse", "drennick-director-charged",
        # hard case 5: one company, two stories
        "tessaly-q3-results", "tessaly-kettle-recall",
        "harnmouth-south-byelection", "storm-ilse",
        # singletons that resemble these events, and one more
        "single-1", "single-3", "single-8", "single-7", "single-10", "single-5",
    }
)  # fmt: skip
#: look-alike singletons that must reach no event's story
LOOKALIKES = ("d-049", "d-095", "d-102")
#: hard cases 1-5 of the README: no cluster may hold both events of one
HARD_CASES = (
    ("veldmoor-nurses-strike", "veldmoor-tram-line4"),
    ("calloway-paint-factory-fire", "port-senna-mill-fire"),
    ("drennick-warehouse-collapse", "drennick-director-charged"),
    ("kilnsey-wanderers-cup-tie", "wanderers-marsh-harbour-league"),
    ("tessaly-q3-results", "tessaly-kettle-recall"),
)


@dataclass(frozen=True)
class Article:
    id: str
    event: str
    title: str
    text: str
    published: float  # seconds since the epoch


def root() -> Path:
    return Path(os.environ.get("STORYWIRE_DEV_NEWS") or DEFAULT)


def available() -> str | None:
    """None when the corpus is there, else why it is not (for a skip message)."""
    path = root() / "articles.json"
    if path.is_file():
        return None
    return f"dev-news corpus not found at {path.parent} (set STORYWIRE_DEV_NEWS)"


def articles() -> list[Article]:
    data = json.loads((root() / "articles.json").read_text())
    return [
        Article(a["id"], a["event"], a["title"], " ".join(a["text"].split()), _epoch(a["published"]))
        for a in data
    ]


def _epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def calibration_half(items: list[Article]) -> list[Article]:
    return [a for a in items if a.event in CALIBRATION]


def held_back_half(items: list[Article]) -> list[Article]:
    return [a for a in items if a.event not in CALIBRATION]


@contextmanager
def serving() -> Iterator[str]:
    """The corpus's own ``serve.py`` on a free loopback port; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, str(root() / "serve.py"), "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "serving 6 feeds and 113 pages on http://127.0.0.1:PORT/"
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if match is None:
            raise RuntimeError(f"dev-news serve.py did not say its port: {line!r}")
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def feed_urls(base: str) -> list[str]:
    return [f"{base}/feed-{n}.xml" for n in range(1, 7)]


def article_id_of(url: str) -> str:
    """``d-042`` for ``http://127.0.0.1:PORT/a/d-042``."""
    return url.rstrip("/").rsplit("/", 1)[-1]


def hard_case_report(truth: dict[str, str], clusters: list[list[str]], min_size: int = 2) -> list[str]:
    """One line per hard case and look-alike singleton: does a story mix them up?"""
    stories = [c for c in clusters if len(c) >= min_size]
    lines = []
    for k, (a, b) in enumerate(HARD_CASES, 1):
        mixed = [c for c in stories if {a, b} <= {truth[x] for x in c}]
        lines.append(f"case {k} ({a} / {b}): " + ("MERGED" if mixed else "kept apart"))
    for article in LOOKALIKES:
        home = next((c for c in stories if article in c), None)
        where = (
            "in no story"
            if home is None
            else "in a story of " + ", ".join(sorted({truth[x] for x in home} - {truth[article]}))
        )
        lines.append(f"{article}: {where}")
    return lines
