"""A finished job's accounting, checked over article ids: every entry the fetch found is in exactly one
story of the job, or in no story with exactly one reason. No catch-all reason exists.

    entries_found = articles in exactly one story + articles in no story (cluster too small)
                  + entries not taken (out of window, duplicate, empty, over limit, rejected by the store)

The articles of the job are those its final attempt wrote (``job_articles``); the stories are the job's
stories after stale and retired ones were removed, with their article ids (``story_articles``); the
left-out entries and the number found are what the worker reports with ``UpdateJob(DONE)``.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence

from storywire.v1 import common_pb2

from services.store.database import Conn

R = common_pb2.LeftOutReason
#: reasons of articles the job took (they are articles of the job, in no story)
TAKEN_REASONS = frozenset({R.LEFT_OUT_REASON_CLUSTER_TOO_SMALL})
#: reasons of entries the job never took as articles
NOT_TAKEN_REASONS = frozenset(
    {
        R.LEFT_OUT_REASON_OUT_OF_WINDOW,
        R.LEFT_OUT_REASON_DUPLICATE,
        R.LEFT_OUT_REASON_EMPTY,
        R.LEFT_OUT_REASON_OVER_LIMIT,
        R.LEFT_OUT_REASON_REJECTED,
    }
)
SHOWN = 3  # ids quoted per problem


def _some(ids: Iterable[str]) -> str:
    listed = sorted(ids)
    more = f" and {len(listed) - SHOWN} more" if len(listed) > SHOWN else ""
    return ", ".join(listed[:SHOWN]) + more


async def check(
    conn: Conn,
    job_id: uuid.UUID,
    attempt: int,
    *,
    entries_found: int,
    left_out: Sequence[common_pb2.LeftOutArticle],
    retired_stories: int,
) -> common_pb2.JobAccounting:
    """The job's accounting; ``balanced`` is false and ``mismatch`` says why when it does not add up."""
    articles = {
        r["article_id"]
        for r in await conn.fetch(
            "SELECT article_id FROM job_articles WHERE job_id = $1 AND attempt = $2", job_id, attempt
        )
    }
    links = await conn.fetch(
        """SELECT sa.article_id FROM stories s JOIN story_articles sa ON sa.story_id = s.id
           WHERE s.job_id = $1""",
        job_id,
    )
    stories = int(await conn.fetchval("SELECT count(*) FROM stories WHERE job_id = $1", job_id) or 0)
    in_story = Counter(r["article_id"] for r in links)
    too_small = {a.article_id for a in left_out if a.reason in TAKEN_REASONS}
    not_taken = [a for a in left_out if a.reason in NOT_TAKEN_REASONS]
    unknown = [a for a in left_out if a.reason not in TAKEN_REASONS | NOT_TAKEN_REASONS]

    problems: list[str] = []
    if unknown:
        ids = _some(a.article_id for a in unknown)
        problems.append(f"{len(unknown)} left-out entries have no valid reason ({ids})")
    twice = {a for a, n in in_story.items() if n > 1}
    if twice:
        problems.append(f"{len(twice)} articles are in more than one story ({_some(twice)})")
    foreign = set(in_story) - articles
    if foreign:
        problems.append(f"{len(foreign)} story articles are not articles of the job ({_some(foreign)})")
    foreign_small = too_small - articles
    if foreign_small:
        ids = _some(foreign_small)
        problems.append(f"{len(foreign_small)} left-out articles are not articles of the job ({ids})")
    both = too_small & set(in_story)
    if both:
        problems.append(f"{len(both)} articles are both in a story and left out ({_some(both)})")
    lost = articles - set(in_story) - too_small
    if lost:
        problems.append(f"{len(lost)} articles are in no story and have no reason ({_some(lost)})")
    accounted = len(articles) + len(not_taken)
    if entries_found != accounted:
        problems.append(
            f"the fetch found {entries_found} entries but {len(articles)} articles + {len(not_taken)} "
            f"entries not taken = {accounted}"
        )
    counts = Counter(a.reason for a in left_out)
    return common_pb2.JobAccounting(
        entries_found=entries_found,
        articles=len(articles),
        in_stories=len(set(in_story) & articles),
        stories=stories,
        left_out=[
            common_pb2.LeftOutCount(reason=reason, entries=counts.get(reason, 0))
            for reason in sorted(TAKEN_REASONS | NOT_TAKEN_REASONS)
        ],
        retired_stories=retired_stories,
        balanced=not problems,
        mismatch="; ".join(problems),
    )
