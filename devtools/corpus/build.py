"""Compose the sample corpus from the fact sheets and write it under ``sample/``.

Layout: five feeds (RSS 2.0, RSS 1.0/RDF and Atom) and standalone HTML pages; every article also has
its own HTML page. URLs hold the placeholder ``{{BASE}}``, which the corpus server replaces with its own
address. ``sample/labels.json`` maps each article's path to the event it covers.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass
from html import escape
from pathlib import Path

from storywire.v1 import common_pb2

from devtools.corpus.events import EVENTS
from runtime.ids import article_id, content_hash

ROOT = Path(__file__).resolve().parents[2] / "sample"
ARTICLES_PER_EVENT = 11
PAGES_PER_EVENT = 2  # of those, published only as standalone pages (not in any feed)
START = dt.datetime(2026, 11, 20, 6, 0, tzinfo=dt.UTC)
OUTLETS = [
    ("valmora-courier", "Valmora Courier", "rss2"),
    ("northern-ledger", "Northern Ledger", "atom"),
    ("daily-meridian", "Daily Meridian", "rss2"),
    ("ostland-post", "The Ostland Post", "rdf"),
    ("coastline-wire", "Coastline Wire", "atom"),
]


@dataclass(frozen=True)
class Item:
    event: str
    outlet: str
    path: str
    title: str
    text: str
    published: dt.datetime
    page_only: bool


def compose() -> list[Item]:
    items: list[Item] = []
    for e_index, (event, sheet) in enumerate(sorted(EVENTS.items())):
        headlines: list[str] = sheet["headlines"]  # type: ignore[assignment]
        facts: list[str] = sheet["facts"]  # type: ignore[assignment]
        for i in range(ARTICLES_PER_EVENT):
            rng = random.Random(f"{event}-{i}")  # noqa: S311 - deterministic composition, not security
            lead = facts[i % 2]
            rest = rng.sample([f for f in facts if f != lead], k=rng.randint(2, 4))
            outlet = OUTLETS[(e_index + i) % len(OUTLETS)][0]
            published = START + dt.timedelta(hours=e_index * 3 + i * 0.7)
            items.append(
                Item(event, outlet, f"/articles/{outlet}/{event}-{i}.html", headlines[i % len(headlines)],
                     " ".join([lead, *rest]), published, i >= ARTICLES_PER_EVENT - PAGES_PER_EVENT)
            )  # fmt: skip
    return items


def page(item: Item, outlet_name: str) -> str:
    sentences = [s if s.endswith(".") else s + "." for s in item.text.split(". ") if s]
    paragraphs = "\n".join(f"      <p>{escape(s)}</p>" for s in sentences)
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{escape(item.title)} | {escape(outlet_name)}</title>
  <link rel="canonical" href="{{{{BASE}}}}{item.path}">
  <meta property="og:title" content="{escape(item.title)}">
  <meta property="article:published_time" content="{item.published.isoformat()}">
</head>
<body>
  <nav><a href="/">Home</a> | <a href="/world">World</a> | <a href="/sport">Sport</a></nav>
  <main>
    <article>
      <h1>{escape(item.title)}</h1>
      <p class="byline">By staff reporter, {escape(outlet_name)}, {item.published:%d %B %Y}</p>
{paragraphs}
    </article>
  </main>
  <footer>Copyright {escape(outlet_name)}. All rights reserved.</footer>
</body>
</html>
"""


def rss2(name: str, slug: str, items: list[Item]) -> str:
    entries = "".join(
        f"""    <item>
      <title>{escape(i.title)}</title>
      <link>{{{{BASE}}}}{i.path}</link>
      <guid isPermaLink="true">{{{{BASE}}}}{i.path}</guid>
      <pubDate>{i.published.strftime("%a, %d %b %Y %H:%M:%S +0000")}</pubDate>
      <description>{escape(i.text)}</description>
    </item>
"""
        for i in items
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0">
  <channel>
    <title>{escape(name)}</title>
    <link>{{{{BASE}}}}/feeds/{slug}.xml</link>
    <description>Latest news from {escape(name)}</description>
{entries}  </channel>
</rss>
"""


def atom(name: str, slug: str, items: list[Item]) -> str:
    entries = "".join(
        f"""  <entry>
    <title>{escape(i.title)}</title>
    <link href="{{{{BASE}}}}{i.path}"/>
    <id>{{{{BASE}}}}{i.path}</id>
    <published>{i.published.isoformat()}</published>
    <updated>{i.published.isoformat()}</updated>
    <author><name>{escape(name)} staff</name></author>
    <summary type="text">{escape(i.text)}</summary>
  </entry>
"""
        for i in items
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>{escape(name)}</title>
  <id>{{{{BASE}}}}/feeds/{slug}.atom</id>
  <updated>{START.isoformat()}</updated>
{entries}</feed>
"""


def rdf(name: str, slug: str, items: list[Item]) -> str:
    seq = "".join(f'        <rdf:li rdf:resource="{{{{BASE}}}}{i.path}"/>\n' for i in items)
    entries = "".join(
        f"""  <item rdf:about="{{{{BASE}}}}{i.path}">
    <title>{escape(i.title)}</title>
    <link>{{{{BASE}}}}{i.path}</link>
    <description>{escape(i.text)}</description>
    <dc:date>{i.published.isoformat()}</dc:date>
  </item>
"""
        for i in items
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="{{{{BASE}}}}/feeds/{slug}.rdf">
    <title>{escape(name)}</title>
    <link>{{{{BASE}}}}/</link>
    <description>Latest news from {escape(name)}</description>
    <items>
      <rdf:Seq>
{seq}      </rdf:Seq>
    </items>
  </channel>
{entries}</rdf:RDF>
"""


FORMATS = {"rss2": (rss2, "xml"), "atom": (atom, "atom"), "rdf": (rdf, "rdf")}


def build(root: Path = ROOT) -> dict[str, object]:
    items = compose()
    names = {slug: name for slug, name, _ in OUTLETS}
    urls: list[str] = []
    for slug, name, kind in OUTLETS:
        render, ext = FORMATS[kind]
        mine = [i for i in items if i.outlet == slug and not i.page_only]
        path = root / "feeds" / f"{slug}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(name, slug, mine))
        urls.append(f"/feeds/{slug}.{ext}")
    for item in items:
        path = root / item.path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page(item, names[item.outlet]))
        if item.page_only:
            urls.append(item.path)
    labels = {i.path: i.event for i in items}
    manifest = {"job_urls": urls, "labels": labels, "events": len(EVENTS), "articles": len(items)}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


if __name__ == "__main__":
    result = build()
    urls: list[str] = result["job_urls"]  # type: ignore[assignment]
    print(f"wrote {result['articles']} articles about {result['events']} events; {len(urls)} job URLs")


def as_article(url: str, title: str, text: str, published: dt.datetime | None = None) -> common_pb2.Article:
    """An article as the fetcher would stream it (id and content hash as the runtime computes them), for
    tools and benchmarks that feed a synthesizer without a fetcher."""
    digest = content_hash(title, text)
    article = common_pb2.Article(
        id=article_id(url, digest), url=url, canonical_url=url, content_hash=digest, title=title, text=text
    )
    if published is not None:
        article.published_at.FromDatetime(published)
    return article
