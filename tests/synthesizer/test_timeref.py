"""Time anchoring (``services/synthesizer/clustering/timeref.py``) and what it does to the events
backend: a retrospective piece that shares a place and a topic with an event's reports stays out of
the event's story. All text here is invented for the test."""

from __future__ import annotations

import datetime as dt

from services.synthesizer.clustering import Doc
from services.synthesizer.clustering.events import EventBackend, far_shares, pair_scores, time_feature
from services.synthesizer.clustering.timeref import FAR_DAYS, distances, far_share

#: Saturday 2026-05-30 09:00 UTC
PUBLISHED = dt.datetime(2026, 5, 30, 9, tzinfo=dt.UTC).timestamp()


def test_expressions_and_their_distance_from_publication() -> None:
    text = (
        "On Saturday at 06:10 the ferry left; yesterday and this morning were quiet. "
        "Trials ended on 12 May and on June 3, 2026. Work began in March 2025, the plan dates from "
        "2019, the old pier from the 1950s. Fares rise in September. Services stop at 9pm."
    )
    day = dt.date(2026, 5, 30)
    assert distances(text, PUBLISHED) == [
        0,  # Saturday
        0,  # 06:10
        0,  # yesterday
        0,  # this morning
        (day - dt.date(2026, 5, 12)).days,  # 12 May: this year's, the nearest
        (dt.date(2026, 6, 3) - day).days,  # June 3, 2026
        (day - dt.date(2025, 3, 31)).days,  # March 2025: from its last day
        (day - dt.date(2019, 12, 31)).days,  # 2019: from its last day
        (day - dt.date(1959, 12, 31)).days,  # the 1950s: from their last day
        (dt.date(2026, 9, 1) - day).days,  # September: this year's, from its first day
        0,  # 9pm
    ]


def test_numbers_that_are_not_times() -> None:
    text = (
        "It holds 1,150 people, cost 2.40 euros or $1500, scored 2-1, flew C/2026 K3, grew 1999% in "
        "May and sold a 2000-seat hall."
    )
    assert distances(text, PUBLISHED) == []


def test_far_share_counts_the_years_long_gone() -> None:
    history = "A steamer began in 1887; by the 1950s it carried dockers. It stopped in 1968."
    report = "The ferry opened on Saturday at 06:10; the plan dates from 2019."
    assert far_share(history, PUBLISHED) == 3 / 4  # three far, and the prior's one near
    assert far_share(report, PUBLISHED) == 1 / 4
    assert far_share("No dates at all.", PUBLISHED) == 0.0
    assert far_share(history, None) == 0.0  # nothing to anchor to
    assert FAR_DAYS == 365


def test_time_feature_weighs_mostly_far_pieces() -> None:
    assert time_feature(0.0, 0.8) == time_feature(0.8, 0.0) == 0.8**2
    assert time_feature(1 / 3, 0.0) < time_feature(0.8, 0.0) / 5  # one background year: little


HOUR = 3600.0

REPORTS = [
    (
        "Pellmarsh ferry route opens",
        "The new Pellmarsh harbour ferry made its first crossing from Corrin Quay on Saturday at 06:10. "
        "Operator Brannock Lines said 300 passengers rode the ferry before noon. The route links Corrin "
        "Quay with Lantern Street pier.",
    ),
    (
        "First crossings on Pellmarsh ferry",
        "Brannock Lines ran its new harbour ferry between Corrin Quay and the Lantern Street pier on "
        "Saturday. Crossings leave every 20 minutes until 22:00, and rides are free until Monday, the "
        "operator said.",
    ),
    (
        "Queues at Corrin Quay for new ferry",
        "Passengers queued at Corrin Quay from 05:30 on Saturday for the first Pellmarsh harbour ferry. "
        "Brannock Lines said the route to Lantern Street pier carried 1,900 riders by Sunday evening.",
    ),
    (
        "Pellmarsh ferry carries 4,100 in first weekend",
        "The Pellmarsh harbour ferry of Brannock Lines carried 4,100 passengers on Saturday and Sunday. "
        "The busiest stop was Corrin Quay; fares on the Lantern Street route start on Monday.",
    ),
]
HISTORY = (
    "Oars, sails and steam: how a town learned to cross its estuary",
    "Long before anyone talked of Corrin Quay, Pellmarsh fishermen rowed neighbours across the estuary "
    "for a penny. A paddle steamer began in {1887}, and by the {1950}s its boats carried dockers and "
    "schoolchildren alike. Bridges and buses ended it in {1968}; a rusted bollard from the old landing "
    "stands in the museum garden, restored in {2001} by volunteers who remember the last ferry.",
)


def ferry_docs(years: tuple[int, int, int, int]) -> list[Doc]:
    """Four reports of a ferry's opening weekend and one piece on the town's ferries, whose four years
    are ``years``."""
    title, text = HISTORY
    for old, new in zip(("{1887}", "{1950}", "{1968}", "{2001}"), years, strict=True):
        text = text.replace(old, str(new))
    docs = [Doc.of(f"r{k}", t, x, f"h{k}", PUBLISHED + k * 3 * HOUR) for k, (t, x) in enumerate(REPORTS)]
    return [*docs, Doc.of("x-history", title, text, "hx", PUBLISHED + 5 * HOUR)]


def stories(docs: list[Doc]) -> list[list[str]]:
    backend = EventBackend()
    clusters = backend.cluster(docs, backend.default_threshold)
    return sorted(sorted(d.id for d in c.docs) for c in clusters if len(c.docs) > 1)


def test_a_history_piece_stays_out_of_the_event_it_resembles() -> None:
    """The same words and names: with its years long gone the piece is in no story; with the very
    same text dated this year it reads as a report of the event and joins it (so it is the time
    anchoring that keeps it out, not a lack of shared words)."""
    past, now = ferry_docs((1887, 1950, 1968, 2001)), ferry_docs((2026, 2020, 2026, 2026))
    assert far_shares(past)[-1] > 0.5
    assert far_shares(now)[-1] == 0.0
    assert stories(past) == [["r0", "r1", "r2", "r3"]]
    assert stories(now) == [["r0", "r1", "r2", "r3", "x-history"]]
    past_scores, _ = pair_scores(past)
    now_scores, _ = pair_scores(now)
    for i in range(4):  # every link of the piece is weaker, the reports' own links are the same
        assert past_scores.get((i, 4), 0.0) < now_scores[i, 4]
        for j in range(i + 1, 4):
            assert past_scores[i, j] == now_scores[i, j]
