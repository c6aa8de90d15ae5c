"""How well a found message matches a query, and its snippet with the matched words marked.

The score depends only on the message and the query (never on other messages), so a
page cursor stays valid while messages arrive: results are ordered by score, then
newest first.
"""

from __future__ import annotations

import re
from functools import lru_cache

from core.payloads import SnippetPart
from core.services.search.folding import PREFIX_MIN, Query, Run, fold, pairs, runs

SNIPPET_BEFORE = 40  # characters of context before the first match
SNIPPET_LENGTH = 160
PHRASE, WHOLE_WORDS, AS_TYPED = 4, 2, 1  # score points


def score(query: Query, body: str) -> int:
    """PHRASE if the query's words stand together in this order, WHOLE_WORDS if each is a whole
    word here (not only a beginning), AS_TYPED if the query appears with its accents as typed."""
    found = runs(fold(body))
    asked, count = query.words, len(query.words)
    points = 0
    if count > 1 and any(all(_matches(asked[k], found[i + k]) for k in range(count)) for i in range(len(found) - count + 1)):
        points += PHRASE
    words = {run.text for run in found if not run.unsegmented}
    if all(run.text in words for run in asked if not run.unsegmented) and any(not run.unsegmented for run in asked):
        points += WHOLE_WORDS
    if query.typed.casefold() in body.casefold():
        points += AS_TYPED
    return points


def _matches(asked: Run, run: Run) -> bool:
    """True if the query's word (or unsegmented run) `asked` is found in the message's `run`."""
    if asked.unsegmented or run.unsegmented:
        return asked.unsegmented == run.unsegmented and asked.text in run.text
    return run.text == asked.text or (len(asked.text) >= PREFIX_MIN and run.text.startswith(asked.text))


@lru_cache(maxsize=8192)
def _fold_char(char: str) -> str:
    return fold(char)


def _folded_with_origins(body: str) -> tuple[str, list[int]]:
    """The folded body, and for each of its characters the index of the body character it came from."""
    parts: list[str] = []
    origins: list[int] = []
    for index, char in enumerate(body):
        folded = _fold_char(char)
        parts.append(folded)
        origins.extend([index] * len(folded))
    return "".join(parts), origins


def _matched(query: Query, run: Run) -> list[tuple[int, int]]:
    """Spans of the folded text where the query matches inside one of the message's runs."""
    spans: list[tuple[int, int]] = []
    for asked in query.words:
        if asked.unsegmented != run.unsegmented:
            continue
        if run.unsegmented:
            spans += [(run.start + found.start(), run.start + found.end())
                      for term in pairs(asked.text) for found in re.finditer(re.escape(term), run.text)]  # fmt: skip
        elif _matches(asked, run):
            spans.append((run.start, run.start + len(asked.text)))
    return spans


def snippet(query: Query, body: str) -> list[SnippetPart]:
    """Up to SNIPPET_LENGTH characters of the body around its first match, matches marked, whitespace
    collapsed, an ellipsis where it was cut."""
    folded, origins = _folded_with_origins(body)
    hits = [False] * len(body)
    for run in runs(folded):
        for start, end in _matched(query, run):
            for position in range(start, end):
                hits[origins[position]] = True
    first = hits.index(True) if True in hits else 0
    start = 0 if first <= SNIPPET_BEFORE else body.find(" ", first - SNIPPET_BEFORE, first) + 1 or first - SNIPPET_BEFORE
    end = min(len(body), start + SNIPPET_LENGTH)
    if end < len(body) and (cut := body.rfind(" ", start, end)) > first:
        end = cut
    parts: list[SnippetPart] = []
    for index in range(start, end):
        if parts and parts[-1].hit == hits[index]:
            parts[-1].text += body[index]
        else:
            parts.append(SnippetPart(body[index], hits[index]))
    for part in parts:
        part.text = re.sub(r"\s+", " ", part.text)
    if start > 0:
        parts.insert(0, SnippetPart("…", False))
    if end < len(body):
        parts.append(SnippetPart("…", False))
    return parts
