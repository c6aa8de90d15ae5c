"""Words of any language, folded the same way for what is stored and what is searched.

`fold` makes text case- and accent-insensitive (NFKD, Unicode case folding, combining
marks dropped, a few letters without a decomposition spelled out: ø -> o, æ -> ae...).
A word is a run of letters and digits. Scripts written without spaces (Chinese,
Japanese, Thai, Lao, Khmer, Myanmar) have no words to split, so their runs are
indexed as single characters and overlapping pairs (bigrams), like Lucene's CJK
analyser: a query of two or more such characters matches where they stand together.

What is stored (`index_terms`) is plain space-separated terms of letters and digits,
so MongoDB's and nx-27017's text indexes tokenize it identically (docs/store.md).
Words also store their beginnings (3 to PREFIX_MAX characters): "caf" finds "café".
"""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache

PREFIX_MIN = 3  # shorter beginnings would match most messages
PREFIX_MAX = 15  # a query word longer than this matches whole words only
TERM_MAX = 64  # longer runs (pasted hashes, long URLs) are cut
QUERY_TERMS_MAX = 16

_UNSEGMENTED = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0x20000, 0x3FFFF),  # CJK extensions B and later
)


@cache
def _folding_table() -> dict[int, str | int | None]:
    """The `str.translate` table: combining marks (Unicode M*) dropped, and letters without a decomposition
    that readers still take for their base letter spelled out. Built on the first text that is not ASCII
    (~140 ms: every code point is looked at), not at import by every process that imports this."""
    table: dict[int, str | int | None] = {point: None for point in range(sys.maxunicode + 1) if unicodedata.category(chr(point)).startswith("M")}
    table.update(str.maketrans({"ø": "o", "đ": "d", "ħ": "h", "ł": "l", "ŧ": "t", "\u0131": "i", "æ": "ae", "œ": "oe", "þ": "th", "ð": "d"}))
    return table


_UNSEGMENTED_CLASS = "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in _UNSEGMENTED)
# a run of unsegmented characters, or a word: letters and digits of other scripts (Python's \w is L*, N* and "_")
_RUN = re.compile(f"(?P<unsegmented>[{_UNSEGMENTED_CLASS}]+)|(?P<word>[^\\W_{_UNSEGMENTED_CLASS}]+)")


def fold(text: str) -> str:
    """Case- and accent-insensitive form of `text`; lengths may change ("ß" -> "ss")."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return decomposed.translate(_folding_table())


@dataclass(frozen=True, slots=True)
class Run:
    """A word (`unsegmented` False) or a run of characters of a script without spaces, folded,
    and where it starts in the folded text."""

    text: str
    unsegmented: bool
    start: int


def runs(folded: str) -> list[Run]:
    """The words and unsegmented runs of folded text, in order."""
    return [
        Run(match.group()[:TERM_MAX], match.lastgroup == "unsegmented", match.start())
        for match in _RUN.finditer(folded)
    ]


def pairs(text: str) -> list[str]:
    """The overlapping character pairs of an unsegmented run (the run itself if it is one character)."""
    return [text[i : i + 2] for i in range(len(text) - 1)] if len(text) > 1 else [text]


def index_terms(body: str) -> str:
    """What the text index stores for a message body: each distinct term once, space-separated."""
    terms: dict[str, None] = {}
    for unsegmented, word in _RUN.findall(fold(body)):
        if unsegmented:
            run = unsegmented[:TERM_MAX]
            terms.update(dict.fromkeys(run))
            terms.update(dict.fromkeys(pairs(run)))
        else:
            word = word[:TERM_MAX]
            for length in range(PREFIX_MIN, min(len(word), PREFIX_MAX + 1)):
                terms[word[:length]] = None
            terms[word] = None
    return " ".join(terms)


@dataclass(frozen=True, slots=True)
class Query:
    """A search as typed, its words and the terms every found message has."""

    typed: str
    words: tuple[Run, ...]
    terms: tuple[str, ...]

    @property
    def text_search(self) -> str:
        """The `$search` string of a `$text` filter: each term a quoted phrase, so all are required.

        Both stores then match only messages with every term (MongoDB ORs bare terms;
        a phrase is required; nx-27017 ANDs). Terms hold letters and digits only.
        """
        return " ".join(f'"{term}"' for term in self.terms)


@lru_cache(maxsize=1024)
def parse_query(typed: str) -> Query | None:
    """The query's words and terms (at most QUERY_TERMS_MAX); None if it has no letter or digit."""
    words = tuple(runs(fold(typed)))
    terms: dict[str, None] = {}
    for run in words:
        terms.update(dict.fromkeys(pairs(run.text) if run.unsegmented else [run.text]))
    if not terms:
        return None
    return Query(typed.strip(), words, tuple(terms)[:QUERY_TERMS_MAX])
