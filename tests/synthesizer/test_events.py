"""The events backend's pieces: names from the text, average linkage and its veto, determinism, and
its quality on dev-news (``../shared/corpora/dev-news``; skipped where absent)."""

from __future__ import annotations

import random

import pytest

from devtools.corpus import devnews
from devtools.corpus.quality import story_quality
from services.synthesizer.clustering import Doc
from services.synthesizer.clustering.entities import lowercase_words, names
from services.synthesizer.clustering.events import (
    UNKNOWN_DAYS,
    EventBackend,
    days_apart,
    pair_scores,
    same_event_probability,
)
from services.synthesizer.clustering.linkage import VETO_BELOW, VETO_MIN_SIZE, average_linkage


def test_names_are_capitalised_words_the_set_never_writes_in_lower_case() -> None:
    texts = [
        "The fire at Brook Lane destroyed the paint works. Crews from Calloway fought it, she said.",
        "Fire crews said the works stay closed until the insurer takes over at noon. "
        "She'd seen it: \u201cterrible\u201d, Mrs O\u2019Neill said.",
        "Takes Over At Kelbrook's Depot",  # a title-case headline: Takes, Over, At are common words
    ]
    common = lowercase_words(texts)
    assert names(texts[0], common) == {"brook", "lane", "calloway"}  # not The, Fire, Crews
    assert names(texts[1], common) == {"mrs", "o'neill"}  # not She'd (she is common), Fire
    assert names(texts[2], common) == {"kelbrook", "depot"}  # possessive folded, Takes Over At common


def test_numbers_are_not_names() -> None:
    common = lowercase_words(["the score was"])
    assert names("Wanderers won 3-0 on 21 November 2026", common) == {"wanderers", "november"}


def chain(n: int, link: float) -> dict[tuple[int, int], float]:
    return {(i, i + 1): link for i in range(n - 1)}


def test_average_linkage_does_not_chain() -> None:
    """A line of items, each close only to its neighbours: single linkage would make one cluster,
    average linkage stops when a cluster stops being cohesive as a whole."""
    clusters = average_linkage(chain(6, 0.9), [frozenset()] * 6, threshold=0.4)
    assert len(clusters) > 1
    assert all(len(c) <= 3 for c in clusters)
    assert sorted(i for c in clusters for i in c) == list(range(6))


def test_average_linkage_merges_cohesive_groups_only() -> None:
    group = {(i, j): 0.8 for i in range(4) for j in range(i + 1, 4)}
    group.update({(i, j): 0.8 for i in range(4, 7) for j in range(i + 1, 7)})
    group[3, 4] = 0.7  # one close pair across the two groups: single linkage would join them
    assert average_linkage(group, [frozenset()] * 7, threshold=0.3) == [[0, 1, 2, 3], [4, 5, 6]]


def two_groups(across: float) -> dict[tuple[int, int], float]:
    scores = {(i, j): 0.95 for i in range(6) for j in range(i + 1, 6) if (i < 3) == (j < 3)}
    scores.update({(i, j): across for i in range(3) for j in range(3, 6)})
    return scores


def test_veto_keeps_apart_clusters_that_name_different_things() -> None:
    kilnsey, harbour = frozenset({"wanderers", "kilnsey"}), frozenset({"wanderers", "marsh", "harbour"})
    item_names = [kilnsey] * 3 + [harbour] * 3
    assert average_linkage(two_groups(0.7), item_names, 0.3) == [[0, 1, 2], [3, 4, 5]]
    # names shared one way only (every article of one side names what the other side names): no veto
    one_way = [kilnsey | harbour] * 3 + [harbour] * 3
    assert average_linkage(two_groups(0.7), one_way, 0.3) == [[0, 1, 2, 3, 4, 5]]
    # a nearly certain merge is not overruled
    assert average_linkage(two_groups(VETO_BELOW), item_names, 0.3) == [[0, 1, 2, 3, 4, 5]]


def test_veto_needs_enough_articles_on_each_side() -> None:
    small = VETO_MIN_SIZE - 1
    scores = {(i, j): 0.7 for i in range(small + 3) for j in range(i + 1, small + 3)}
    item_names = [frozenset({"a"})] * small + [frozenset({"b"})] * 3
    assert len(average_linkage(scores, item_names, 0.3)) == 1


def test_linkage_ties_go_to_the_lowest_numbers() -> None:
    scores = {(0, 1): 0.5, (1, 2): 0.5, (2, 3): 0.5}
    assert average_linkage(scores, [frozenset()] * 4, 0.4) == [[0, 1], [2, 3]]


def sample_like_docs() -> list[Doc]:
    texts = [
        (
            "Fire at Calloway paint works",
            "A fire at the Brook Lane paint works in Calloway injured 4 workers.",
        ),
        ("Calloway blaze", "Firefighters in Calloway fought the Brook Lane paint works fire for six hours."),
        (
            "Paint works fire",
            "The Calloway fire at Brook Lane began in a solvent store, the fire service said.",
        ),
        ("Port Senna mill fire", "A textile mill on Harbour Road in Port Senna burned overnight."),
        ("Mill blaze in Port Senna", "The Harbour Road mill fire in Port Senna destroyed the weaving shed."),
        ("Weaving shed lost", "Port Senna's Harbour Road mill lost its weaving shed to the fire."),
    ]
    return [Doc.of(f"id-{k}", t, x, f"h{k}") for k, (t, x) in enumerate(texts)]


def test_pair_scores_and_clusters_ignore_arrival_order() -> None:
    docs = sample_like_docs()
    backend = EventBackend()
    expected = [
        (c.key, [d.id for d in c.docs], c.cohesion) for c in backend.cluster(docs, backend.default_threshold)
    ]
    scores, _ = pair_scores(sorted(docs, key=lambda d: d.id))
    for seed in range(10):
        shuffled = docs[:]
        random.Random(seed).shuffle(shuffled)
        again = [
            (c.key, [d.id for d in c.docs], c.cohesion)
            for c in backend.cluster(shuffled, backend.default_threshold)
        ]
        assert sorted(again) == sorted(expected)
        assert pair_scores(sorted(shuffled, key=lambda d: d.id))[0] == scores
    events = sorted(sorted(d.id for d in c.docs) for c in backend.cluster(docs, backend.default_threshold))
    assert events == [["id-0", "id-1", "id-2"], ["id-3", "id-4", "id-5"]]  # two fires, two towns


DAY = 86_400.0


def test_time_apart_lowers_the_same_event_probability() -> None:
    assert same_event_probability(0.15, 0.3, 3.0) < same_event_probability(0.15, 0.3, 0.5)
    assert same_event_probability(0.15, 0.3, 10_000.0) < 1e-300  # years apart: no overflow
    dated, undated = Doc.of("a", "t", "x", "h", 0.0), Doc.of("b", "t", "x", "h")
    assert days_apart(dated, Doc.of("c", "t", "x", "h", 2.5 * DAY)) == 2.5
    assert days_apart(dated, undated) == UNKNOWN_DAYS


def follow_up_docs(later: float | None) -> list[Doc]:
    """Three reports of a depot collapse and three of its director's court appearance, which name the
    same director, firm and town; the court reports are published ``later`` seconds after."""
    collapse = [
        ("Roof collapses at Drennick depot", "Snow brought down the Kelbrook depot roof; rescuers searched."),
        ("Workers trapped in Drennick", "Rescuers dug through snow for night shift workers at Kelbrook."),
        ("Drennick rescue goes on", "Crews searched the Kelbrook depot after the roof fell under snow."),
    ]
    court = [
        ("Kelbrook director in court", "Victor Amsel appeared in a Drennick court, charged over deaths."),
        ("Amsel granted bail", "The Kelbrook director, Victor Amsel, was granted bail in Drennick."),
        ("Director charged", "Prosecutors in Drennick charged Victor Amsel; the court set bail."),
    ]
    return [
        Doc.of(f"id-{k}", t, x, f"h{k}", None if later is None else (k // 3) * later + k * 3600)
        for k, (t, x) in enumerate(collapse + court)
    ]


def test_a_follow_up_days_later_scores_lower() -> None:
    """The same words and names: the pairs across the two groups score lower when the court reports
    come three days later, the pairs within a group do not change (dev-news's case 3 below shows what
    that does to the clusters)."""
    together, _ = pair_scores(follow_up_docs(later=0.0))
    apart, _ = pair_scores(follow_up_docs(later=3 * DAY))
    for (i, j), score in together.items():
        if (i < 3) == (j < 3):
            assert apart[i, j] == score
        else:
            assert apart.get((i, j), 0.0) < score


@pytest.fixture(scope="module")
def dev_news() -> list[devnews.Article]:
    if (reason := devnews.available()) is not None:
        pytest.skip(reason)
    return devnews.articles()


def test_dev_news_events_and_look_alikes(dev_news: list[devnews.Article]) -> None:
    """A regression bound well below the benchmark's figures (docs/performance.md): the text here is
    the labelled text, where a job reads extracted pages."""
    docs = [Doc.of(a.id, a.title, a.text, a.id, a.published) for a in dev_news]
    truth = {a.id: a.event for a in dev_news}
    clusters = [[d.id for d in c.docs] for c in EventBackend().cluster(docs, EventBackend.default_threshold)]
    q = story_quality(truth, clusters)
    assert q.ari >= 0.85, q
    assert q.purity >= 0.93, q
    assert q.left_out <= 0.05, q
    report = devnews.hard_case_report(truth, clusters)
    assert not any("MERGED" in line for line in report), report
    for article in devnews.LOOKALIKES:  # d-049 and d-095 by time anchoring, d-102 by days apart
        assert f"{article}: in no story" in report, report
