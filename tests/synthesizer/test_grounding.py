"""The grounding check on stories a small model really produced (from the local SmolLM2 run)."""

from __future__ import annotations

from services.synthesizer.stories import grounding
from services.synthesizer.stories.prompt import SourceArticle

TEXT = (
    "Helio Grid switched on its 480-megawatt solar farm at Dunmore Flats on Wednesday. The farm has "
    "1.1 million panels spread over 900 hectares. "
    "Chief executive Marta Kovacs said it could supply 210,000 homes."
)
SOURCE = [SourceArticle("a", "Helio Grid opens 480-megawatt solar farm", TEXT, "h1")]


def test_grounded_story_is_accepted() -> None:
    title = "Helio Grid's 480-megawatt solar farm opens"
    summary = "Helio Grid switched on its 480-megawatt farm at Dunmore Flats. It has 1.1 million panels."
    assert grounding.check(title, summary, SOURCE) == []


def test_invented_numbers_and_names_are_rejected() -> None:
    problems = grounding.check(
        "The 2022 Dunmore story",
        "In 2022 Mayor Zorblax opened a farm of 613,000 panels at Dunmore Flats.",
        SOURCE,
    )
    assert "numbers not in the articles: 2022, 613000" in problems
    assert "names not in the articles: Mayor, Zorblax" in problems


def test_a_repeating_story_is_rejected_even_when_every_fact_is_sourced() -> None:
    summary = " ".join(["The farm has 1.1 million panels spread over 900 hectares."] * 3)
    problems = grounding.check("Helio Grid opens a solar farm", summary, SOURCE)
    assert any(p.startswith("repeats a sentence") for p in problems)


def test_prompt_scaffolding_is_rejected() -> None:
    problems = grounding.check(
        "Helio Grid", "Article 1: Helio Grid opens 480-megawatt solar farm. The farm.", SOURCE
    )
    assert "copies the prompt" in problems


def test_title_case_headlines_are_not_invented_names() -> None:
    title = "Helio Grid Switched On Its Solar Farm"
    assert (
        grounding.check(title, "Helio Grid switched on its 480-megawatt solar farm at Dunmore Flats.", SOURCE)
        == []
    )
    assert "names not in the articles: Scotland" in grounding.check(
        "Helio Grid Farm In Scotland",
        "Helio Grid switched on its 480-megawatt solar farm at Dunmore Flats.",
        SOURCE,
    )
