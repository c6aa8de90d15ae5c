"""The display-name rule's character class, written out in core.payloads, is the one Unicode defines."""

from __future__ import annotations

import re
import sys
import unicodedata

from core.payloads import INVISIBLE_CATEGORIES, INVISIBLE_CLASS, USERNAME_PATTERN


def test_the_written_out_class_is_every_invisible_code_point() -> None:
    points = [c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in INVISIBLE_CATEGORIES]
    ranges: list[list[int]] = []
    for point in points:
        if ranges and ranges[-1][1] == point - 1:
            ranges[-1][1] = point
        else:
            ranges.append([point, point])
    expected = "".join(f"\\U{low:08x}" + (f"-\\U{high:08x}" if high > low else "") for low, high in ranges)
    assert expected == INVISIBLE_CLASS, f"Unicode {unicodedata.unidata_version}: regenerate core.payloads.INVISIBLE_CLASS"


def test_the_pattern_refuses_what_the_server_refuses() -> None:
    pattern = re.compile(USERNAME_PATTERN)
    assert pattern.match("Zoë Ωmega 张伟")
    for bad in ("", "   ", "evil\u202eman", "zero\u200bwidth", "line\u2028break", "tag\U000e0041", "bell\x07"):
        assert not pattern.match(bad), repr(bad)
