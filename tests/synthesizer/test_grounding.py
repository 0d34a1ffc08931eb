"""The grounding check on stories a small model really produced (from the local SmolLM2 runs), one test
per rule, each with the story it rejects and a close story it accepts."""

from __future__ import annotations

from services.synthesizer.stories import grounding
from services.synthesizer.stories.prompt import SourceArticle

TEXT = (
    "Helio Grid switched on its 480-megawatt solar farm at Dunmore Flats on Wednesday. The farm has "
    "1.1 million panels spread over 900 hectares. "
    "Chief executive Marta Kovacs said it could supply 210,000 homes."
)
OTHER = (
    "Residents of Dunmore near the new farm raised concerns about glare. "
    "Councillor Owen Pryce said 42 households had complained to the council."
)
SOURCE = [
    SourceArticle("a", "Helio Grid opens 480-megawatt solar farm", TEXT, "h1"),
    SourceArticle("b", "Dunmore residents complain about glare", OTHER, "h2"),
]


def reasons(title: str, summary: str) -> list[str]:
    return [str(p) for p in grounding.check(title, summary, SOURCE)]


def codes(title: str, summary: str) -> set[str]:
    return {p.code for p in grounding.check(title, summary, SOURCE)}


def test_grounded_story_is_accepted() -> None:
    title = "Helio Grid's 480-megawatt solar farm opens"
    summary = (
        "Helio Grid has opened a solar farm with 1.1 million panels at Dunmore Flats. "
        "Some residents worry about glare, and 42 households complained."
    )
    assert grounding.check(title, summary, SOURCE) == []


def test_invented_numbers_and_names_are_rejected() -> None:
    problems = reasons(
        "The 2022 Dunmore story", "In 2022 Mayor Zorblax opened a farm of 613,000 panels at Dunmore Flats."
    )
    assert "numbers not in the articles: 2022, 613000" in problems
    assert "names not in the articles: Mayor, Zorblax" in problems


def test_a_repeating_story_is_rejected_even_when_every_fact_is_sourced() -> None:
    summary = " ".join(["The new farm has about 1.1 million panels over some 900 hectares."] * 3)
    problems = reasons("Helio Grid opens a solar farm", summary)
    assert any(p.startswith("repeats a sentence") for p in problems)


def test_a_repeated_run_of_words_is_a_loop() -> None:
    looping = (
        "The new solar farm is big and it is very bright. Residents say the new solar farm is big "
        "and they complained about glare."
    )
    assert "repeated_ngram" in codes("Helio Grid opens a solar farm", looping)
    varied = (
        "The new solar farm is big and it is very bright. Residents say its panels cause glare, "
        "and they complained."
    )
    assert "repeated_ngram" not in codes("Helio Grid opens a solar farm", varied)


def test_prompt_scaffolding_is_rejected() -> None:
    assert "copies the prompt" in reasons(
        "Helio Grid", "Article 1: Helio Grid opens 480-megawatt solar farm. The farm."
    )
    assert "prompt_scaffolding" in codes("<headline>", "Helio Grid opened a farm. <two or three sentences>")


def test_an_unfinished_last_sentence_is_rejected() -> None:
    cut = "Helio Grid has opened a big solar farm. It says the farm could supply homes across the"
    assert "unfinished" in codes("Helio Grid opens a solar farm", cut)
    assert "unfinished" not in codes("Helio Grid opens a solar farm", cut + " region.")


def test_names_and_numbers_from_different_articles_in_one_sentence_are_mixed_facts() -> None:
    # Kovacs is in the first article, 42 households in the second: no article says Kovacs counted 42
    mixed = "Helio Grid opened its farm this week. Marta Kovacs said 42 households had complained."
    assert "mixed_facts" in codes("Helio Grid opens a solar farm", mixed)
    separate = (
        "Marta Kovacs said the farm could supply 210,000 homes. Owen Pryce said 42 households complained."
    )
    assert "mixed_facts" not in codes("Helio Grid opens a solar farm", separate)


def test_a_summary_copied_from_one_article_is_extractive() -> None:
    copied = (
        "Helio Grid switched on its 480-megawatt solar farm at Dunmore Flats on Wednesday. "
        "The farm has 1.1 million panels spread over 900 hectares."
    )
    problems = grounding.check("Helio Grid opens a solar farm", copied, SOURCE)
    assert [p.code for p in problems] == ["extractive"]
    assert str(problems[0]).startswith("100% of the summary")
    # a lead taken from each article is a combination, not an extract of one
    combined = (
        "Helio Grid switched on its 480-megawatt solar farm at Dunmore Flats on Wednesday. "
        "Residents of Dunmore near the new farm raised concerns about glare."
    )
    assert grounding.check("Helio Grid opens a solar farm", combined, SOURCE) == []


def test_title_case_headlines_are_not_invented_names() -> None:
    summary = "Helio Grid has opened a solar farm at Dunmore Flats, and residents complained of glare."
    assert reasons("Helio Grid Switched On Its Solar Farm", summary) == []
    assert "names not in the articles: Scotland" in reasons("Helio Grid Farm In Scotland", summary)
