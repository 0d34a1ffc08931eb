"""Names from the text itself: the capitalised words of an article that the article set never uses in
lower case (``Veldmoor``, ``Kilnsey``, ``Achterberg``; not ``The`` at a sentence's start, nor ``Takes``
in a title-case headline). No model and no word list: it works for any invented or foreign name, costs
a regular expression per article, and is a pure function of the article set.

A library NER (spaCy) would type the names (place, person, organisation), but its official models are
not on PyPI, only unofficial re-uploads are, and the types did not matter for what the clustering asks
of names: does an event's cluster keep naming something the other cluster never names.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable

# a word (letters, inner apostrophes and hyphens) or a number; numbers are left out of names
_APOSTROPHE = "\u2019"  # typographic apostrophe, read as '
_WORD = re.compile(rf"[^\W\d_](?:[\w'{_APOSTROPHE}-]*\w)?")
_POSSESSIVE = re.compile(r"'s$")


def lowercase_words(texts: Iterable[str]) -> frozenset[str]:
    """Every word that occurs in lower case somewhere in ``texts``: common words, not names."""
    seen: set[str] = set()
    for text in texts:
        seen.update(w for w in _WORD.findall(text) if w[0].islower())
    return frozenset(seen)


def names(text: str, common: frozenset[str]) -> frozenset[str]:
    """The capitalised words of ``text`` that are not ``common`` words, lower-cased, possessive 's
    dropped (``Kelbrook's`` and ``Kelbrook`` are one name)."""
    out = set()
    for word in _WORD.findall(text):
        if not word[0].isupper():
            continue
        lower = _POSSESSIVE.sub("", word.lower().replace(_APOSTROPHE, "'"))
        # "She'd", "Don't": a contraction of a common word is common too
        if lower.split("'")[0] not in common and len(lower) > 1:
            out.add(sys.intern(lower))
    return frozenset(out)
