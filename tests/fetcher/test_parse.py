"""Feed parsing: the fast parser reads the sample feeds exactly as feedparser does, broken feeds still
go to feedparser's rules, and entities are never expanded from outside the document."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.corpus.build import ROOT
from services.fetcher.http import Fetched, FetchFailedError, Validators
from services.fetcher.parse import _fast_entries, _lenient_entries, parse_feed

BASE = "http://sample.test"


def fetched(body: bytes, url: str = BASE + "/feed.xml") -> Fetched:
    return Fetched(url=url, status=200, body=body, content_type="application/rss+xml", charset="",
                   validators=Validators())  # fmt: skip


@pytest.mark.parametrize("path", sorted((ROOT / "feeds").iterdir()), ids=lambda p: p.name)
def test_fast_parser_reads_the_sample_feeds_as_feedparser_does(path: Path) -> None:
    page = fetched(path.read_text().replace("{{BASE}}", BASE).encode(), BASE + "/feeds/" + path.name)
    fast, lenient = _fast_entries(page), _lenient_entries(page)
    assert len(fast) >= 10
    assert fast == lenient


def test_relative_links_resolve_against_the_feed_url() -> None:
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
      <item><title>Dam opens</title><link>/news/dam</link><description>The dam opened.</description></item>
    </channel></rss>"""
    entries = parse_feed(fetched(body, "http://outlet.test/feeds/all.xml"))
    assert [e.url for e in entries] == ["http://outlet.test/news/dam"]


def test_a_truncated_feed_is_a_parse_error() -> None:
    with pytest.raises(FetchFailedError) as info:
        parse_feed(fetched(b"<rss><channel><item><title>broken"))
    assert info.value.code == "parse"


def test_external_entities_are_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    body = f"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY leak SYSTEM "file://{secret}">]>
<rss version="2.0"><channel><title>t</title>
  <item><title>Dam opens &leak;</title><description>The dam opened. &leak;</description></item>
</channel></rss>""".encode()
    try:
        entries = parse_feed(fetched(body))
    except FetchFailedError:
        return  # refusing the feed is as good
    assert all("TOP-SECRET" not in e.title + e.text for e in entries)


RSS_ITEMS = """<?xml version="1.0"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>t</title>
  <item><title>Teaser</title><link>http://o.test/1</link><description>The dam opened.</description></item>
  <item><title>Whole</title><link>http://o.test/2</link><description>The dam opened.</description>
    <content:encoded>&lt;p&gt;The dam opened.&lt;/p&gt;&lt;p&gt;It holds 3 million m3.&lt;/p&gt;
    </content:encoded></item>
  <item><title>Only content</title><link>http://o.test/3</link>
    <content:encoded>&lt;p&gt;The dam opened at noon.&lt;/p&gt;</content:encoded></item>
</channel></rss>"""
ATOM_ENTRIES = """<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:t</id><updated>2026-11-20T00:00:00Z</updated>
  <entry><title>Teaser</title><id>urn:1</id><link href="http://o.test/1"/><updated>2026-11-20T00:00:00Z</updated>
    <summary type="html">&lt;p&gt;The dam opened.&lt;/p&gt;</summary></entry>
  <entry><title>Whole</title><id>urn:2</id><link href="http://o.test/2"/><updated>2026-11-20T00:00:00Z</updated>
    <summary>The dam opened.</summary>
    <content type="html">&lt;p&gt;The dam opened.&lt;/p&gt;&lt;p&gt;More.&lt;/p&gt;</content>
  </entry>
</feed>"""


@pytest.mark.parametrize(
    ("body", "expected"),
    [(RSS_ITEMS, [False, True, True]), (ATOM_ENTRIES, [False, True])],
    ids=["rss", "atom"],
)
def test_an_entry_with_its_whole_article_is_marked_full(body: str, expected: list[bool]) -> None:
    """A summary or description is a teaser (its page is read); a content body is the article."""
    page = fetched(body.encode())
    assert [e.full for e in _fast_entries(page)] == expected
    assert [e.full for e in _lenient_entries(page)] == expected
    assert [e.full for e in parse_feed(page)] == expected
