"""Time anchoring (``services/synthesizer/clustering/timeref.py``) and what it does to the events
backend: a retrospective piece that shares a place and a topic with an event's reports stays out of
the event's story. All text here is invented for the test."""

from __future__ import annotations

import datetime as dt

from services.synthesizer.clustering import Doc
from services.synthesizer.clustering.events import EventBackend, far_shares, pair_scores, time_feature
from services.synthesizer.clustering.timeref import FAR_DAYS, PRIOR_NEAR, distances, far_share

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
        (day - dt.date(2026, 6, 3)).days,  # June 3, 2026: after the publication, negative
        (day - dt.date(2025, 3, 31)).days,  # March 2025: from its last day
        (day - dt.date(2019, 12, 31)).days,  # 2019: from its last day
        (day - dt.date(1959, 12, 31)).days,  # the 1950s: from their last day
        (day - dt.date(2026, 9, 1)).days,  # September: this year's, from its first day (negative)
        0,  # 9pm
    ]


def test_numbers_that_are_not_times() -> None:
    """Counts, measures, addresses and codes: a bare four-digit number is a year only where grammar
    puts one (all sentences invented)."""
    text = (
        "It holds 1,150 people, cost 2.40 euros or $1500, scored 2-1, flew C/2026 K3, grew 1999% in "
        "May and sold a 2000-seat hall."
    )
    assert distances(text, PUBLISHED) == []
    for sentence in (
        "The tunnel runs 1200 metres under the river.",
        "Police said 1500 officers were deployed and 2000 homes lost power.",
        "Inside the kiln it reached 1050 degrees.",
        "The storm left 1200mm of rain and the ash cloud drifted 1500km.",
        "1000s of fans waited outside.",
        "The blaze at 1600 Pennsylvania Avenue was out by morning.",
        "Crews sealed off the 1500 block of Elm Street.",
        "He lived at No. 1500, Route 1900 was closed and Flight 1549 was diverted.",
        "Traffic on the A1200 was held up while BA2012 waited.",
        "Shelters opened in 1500 homes, up by 1200 beds.",
        "Between 1500 and 2000 officers were on duty.",
        "The company's 2019 report flagged the risk.",  # a year, but only as a modifier: not counted
    ):
        assert distances(sentence, PUBLISHED) == [], sentence
    # a four-digit clock time is a time of the day, near
    assert distances("The ferry left at 1430 GMT and docked at 1800 hours.", PUBLISHED) == [0, 0]


#: Monday 2026-11-30 09:00 UTC: every year before 2025 is far
LATE = dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC).timestamp()


def test_counts_and_clock_times_are_not_years_long_past() -> None:
    """A count before "in <year>" or "in the morning", or closed by a verb after "of", is no year; a
    valid HHMM after from/to/until/by/around/at is a time of the day (near). Sentences invented."""
    cases: dict[str, list[int]] = {
        "Visitors rose from 1200 in 2024 to 1900 in 2025.": [
            (dt.date(2026, 11, 30) - dt.date(2024, 12, 31)).days,
            (dt.date(2026, 11, 30) - dt.date(2025, 12, 31)).days,
        ],
        "Hundreds were evacuated in 2025 and 1500 in 2026.": [
            (dt.date(2026, 11, 30) - dt.date(2025, 12, 31)).days,
            0,  # 2026
        ],
        "A crowd of 1500 on Sunday.": [0],
        "The death toll of 1200 was confirmed.": [],
        "A total of 1250 were rescued.": [],
        "Demand fell to 1100 when crews restored power.": [0],
        "Calls were up from 1790 in the morning.": [],
        "By 1700 the crowd had gone home.": [0],
        "The road is closed until 1800 on Friday.": [0, 0],
        "The park was shut from 0900 to 1700 on Sunday.": [0, 0],
        "The jam began around 1300 when a truck overturned.": [0],
    }
    for sentence, expected in cases.items():
        assert distances(sentence, LATE) == expected, sentence
        assert far_share(sentence, LATE) == (1 / (2 + PRIOR_NEAR) if "2024" in sentence else 0.0)


def test_years_stay_years_late_in_the_year() -> None:
    """What was right before the count and clock rules stays right (publication 2026-11-30)."""

    def years_ago(year: int) -> int:
        return (dt.date(2026, 11, 30) - dt.date(year, 12, 31)).days

    for sentence in (
        "Shelters opened in 1500 homes.",
        "The fire burned 1987 acres.",
        "Route 1917 buses were held.",
        "Room 1204 was sealed.",
        "Tickets cost $1500.",
        "The hall holds 1,500.",
        "Between 1500 and 2000 officers were on duty.",
    ):
        assert distances(sentence, LATE) == [], sentence
    cases: dict[str, list[int]] = {
        "Prices have doubled since 1976.": [years_ago(1976)],
        "The line ran to the coast by the 1930s.": [years_ago(1939)],
        "The mill ran from 1998 to 2004.": [years_ago(1998), years_ago(2004)],
        "Coal is out by 2030.": [(dt.date(2026, 11, 30) - dt.date(2030, 1, 1)).days],
        "The ferry left at 1145 GMT.": [0],
        "The bridge was built in 1889.": [years_ago(1889)],
        "She was born on 30 June 1962.": [(dt.date(2026, 11, 30) - dt.date(1962, 6, 30)).days],
        "Another strike came in mid-1974.": [years_ago(1974)],
        "Monks built the quay in about 1340.": [years_ago(1340)],
        "Deeper water was needed, and in 1887 engineers dug a basin.": [years_ago(1887)],
        "1998's floods were worse.": [years_ago(1998)],
        # HHMM-shaped, but a phrase's end, a 20xx year or a range of years: years all the same
        "The chapel dates from 1950.": [years_ago(1950)],
        "By 2020 the city had grown.": [years_ago(2020)],
        "The mine ran from 2004 to 2010.": [years_ago(2004), years_ago(2010)],
    }
    for sentence, expected in cases.items():
        assert distances(sentence, LATE) == expected, sentence


def test_years_in_year_contexts_count() -> None:
    def years_ago(year: int) -> int:
        return (dt.date(2026, 5, 30) - dt.date(year, 12, 31)).days

    cases: dict[str, list[int]] = {
        "The bridge was built in 1889.": [years_ago(1889)],
        "Prices have doubled since 1998, the council said.": [years_ago(1998)],
        "In 1998 the council closed it.": [years_ago(1998)],
        "1998's floods were worse.": [years_ago(1998)],
        "The line ran to the coast by the 1930s.": [years_ago(1939)],
        "She was born on 30 June 1962 in Leeds.": [(dt.date(2026, 5, 30) - dt.date(1962, 6, 30)).days],
        "A strike in the summer of 1962 closed it, and another in mid-1974.": [
            years_ago(1962),
            years_ago(1974),
        ],
        "Monks built the quay in about 1340, and in early 1911 trams came.": [
            years_ago(1340),
            years_ago(1911),
        ],
        "Deeper water was needed, and in 1887 engineers dug a basin.": [years_ago(1887)],
        "Trams ran between 1950 and 1960, until 1961 engineers said.": [
            years_ago(y) for y in (1950, 1960, 1961)
        ],
    }
    for sentence, expected in cases.items():
        assert distances(sentence, PUBLISHED) == expected, sentence


def test_future_years_are_never_far() -> None:
    """A plan's target years are what a report of today's decision quotes: counted, not far."""
    plan = "Coal is out by 2030, and net zero by 2050."
    assert distances(plan, PUBLISHED) == [
        (dt.date(2026, 5, 30) - dt.date(2030, 1, 1)).days,
        (dt.date(2026, 5, 30) - dt.date(2050, 1, 1)).days,
    ]
    assert far_share(plan, PUBLISHED) == 0.0
    assert far_share("The plant opened in 1975; it closes by 2030.", PUBLISHED) > 0.0


def test_far_share_counts_the_years_long_gone() -> None:
    history = "A steamer began in 1887; by the 1950s it carried dockers. It stopped in 1968."
    report = "The ferry opened on Saturday at 06:10; the plan dates from 2019."
    assert far_share(history, PUBLISHED) == 3 / (3 + PRIOR_NEAR)  # three far, and the prior's near
    assert far_share(report, PUBLISHED) == 1 / (3 + PRIOR_NEAR)
    assert far_share("The bridge, built in 1998, closed on Saturday.", PUBLISHED) == 1 / (2 + PRIOR_NEAR)
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
