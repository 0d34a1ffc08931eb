"""The shared dev-news corpus (``/work/shared/corpora/dev-news``, read in place, never copied) served by its
own ``serve.py`` on loopback, optionally with slow feeds; the time each feed answered is read from the
server's request log."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path("/work/shared/corpora/dev-news")
_SERVING = re.compile(r"on http://127\.0\.0\.1:(\d+)/")
_FEED_GET = re.compile(r'"GET /feed-(\d+)\.xml')


def require() -> None:
    if not (ROOT / "serve.py").is_file():
        pytest.skip(f"the dev-news corpus is not at {ROOT}: the slow-source tests need it")


def labels() -> dict[str, str]:
    """dev-news article id (d-001) -> event label."""
    return {a["id"]: a["event"] for a in json.loads((ROOT / "articles.json").read_text())}


def feed_of() -> dict[str, int]:
    """dev-news article id -> the feed that carries it."""
    out: dict[str, int] = {}
    for path in sorted((ROOT / "feeds").glob("feed-*.xml")):
        n = int(path.stem.split("-")[1])
        out.update(dict.fromkeys(re.findall(r"/a/(d-\d{3})", path.read_text()), n))
    return out


def devnews_id(url: str) -> str:
    match = re.search(r"/a/(d-\d{3})", url)
    assert match, url
    return match.group(1)


@dataclass
class DevNews:
    base: str
    port: int
    proc: subprocess.Popen[str]
    answered: dict[int, float] = field(default_factory=dict)  # feed -> time.monotonic() of its answer

    def feed_urls(self) -> list[str]:
        return [f"{self.base}/feed-{n}.xml" for n in sorted(set(feed_of().values()))]


@contextmanager
def serve(*delays: tuple[int, float], port: int = 0) -> Iterator[DevNews]:
    """``serve.py --port PORT`` (0: any free one) with ``--delay-feed N:SECONDS`` for each delay; stopped
    at the end. Article ids derive from URLs, so runs to compare must use the same port."""
    require()
    args = [sys.executable, str(ROOT / "serve.py"), "--port", str(port)]
    for n, seconds in delays:
        args += ["--delay-feed", f"{n}:{seconds}"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = _SERVING.search(line)
        assert match, f"serve.py did not start: {line!r}"
        server = DevNews(f"http://127.0.0.1:{match.group(1)}", int(match.group(1)), proc)

        def read_log() -> None:  # the request log line is written when the answer is sent
            assert proc.stderr is not None
            for entry in proc.stderr:
                feed = _FEED_GET.search(entry)
                if feed:
                    server.answered.setdefault(int(feed.group(1)), time.monotonic())

        threading.Thread(target=read_log, daemon=True).start()
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=10)
