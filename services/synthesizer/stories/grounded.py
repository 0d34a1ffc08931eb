"""Grounded decoding for llama-server: a per-request GBNF grammar in which a capitalised word or a number
can only be one that the cluster's own articles contain, so the model cannot generate an invented name
or figure at all (``STORYWIRE_LLM_STRUCTURED_OUTPUT=grounded``).

The answer has the same JSON shape as the plain grammar (:mod:`services.synthesizer.stories.structured`):
a title of 4 to 14 words and two or three sentences of 5 to 28 words. A sentence starts with a name
from the articles or a common capitalised opener; other words are lower-case words (any), names and
numbers (from the articles only), each optionally followed by a comma, colon or semicolon.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from services.synthesizer.stories.prompt import SourceArticle

MAX_NAMES, MAX_NUMBERS = 150, 80
_NAME = re.compile(r"\b[A-Z][A-Za-z\-]{1,30}\b")
_NUMBER = re.compile(r"\b\d+(?:[.,]\d+)*(?:%|\b)")
OPENERS = ("The", "A", "An", "In", "On", "At", "After", "It", "Its", "This", "They", "He", "She", "Some")


def _alternatives(words: Sequence[str]) -> str:
    return " | ".join(json.dumps(w) for w in words)


def grounded_grammar(articles: Sequence[SourceArticle]) -> str:
    source = "\n".join(f"{a.title}\n{a.text}" for a in articles)
    names = sorted({m for m in _NAME.findall(source) if m.upper() != m or len(m) <= 4})[:MAX_NAMES]
    numbers = sorted(set(_NUMBER.findall(source)), key=lambda n: (len(n), n))[:MAX_NUMBERS]
    openers = [o for o in OPENERS if o not in names]
    lines = [
        'root ::= "{\\"title\\": \\"" title "\\", \\"summary\\": \\"" summary "\\"}"',
        'title ::= first (" " word){3,13}',
        'summary ::= sentence (" " sentence){1,2}',
        'sentence ::= first (" " word){4,27} [.!?]',
        "first ::= " + " | ".join(x for x in ("name", "opener" if openers else "") if x),
        "word ::= lower | name" + (" | number" if numbers else ""),
        "lower ::= [a-z] [a-z'\\-]{0,15} punct",
        'punct ::= ("," | ":" | ";")?',
    ]
    lines.append(f'name ::= ({_alternatives(names) or json.dumps("It")}) ("\'s")? punct')
    if openers:
        lines.append(f"opener ::= {_alternatives(openers)}")
    if numbers:
        lines.append(f'number ::= ({_alternatives(numbers)}) ("-" [a-z]{{1,12}})? punct')
    return "\n".join(lines)
