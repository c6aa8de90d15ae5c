"""Decoding untrusted JSON with msgspec: every way it fails, as one tuple to catch."""

from __future__ import annotations

import msgspec

# DecodeError: malformed or mistyped JSON. UnicodeDecodeError: invalid UTF-8 inside a string
# (not a DecodeError). RecursionError: nesting deeper than msgspec's limit (~1,000 levels).
UNDECODABLE: tuple[type[Exception], ...] = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
