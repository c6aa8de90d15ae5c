"""JSON request bodies: decoded once, strictly, into the handler's declared type, and never a 500."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import SerializationException
from litestar.types import Empty


@cache
def _decoder(body_type: Any) -> msgspec.json.Decoder:
    """A strict decoder for `body_type` (untyped for a type msgspec cannot decode into)."""
    try:
        return msgspec.json.Decoder(body_type, strict=True)
    except TypeError:
        return msgspec.json.Decoder()


def _described(exc: msgspec.DecodeError) -> str:
    """msgspec's "Expected `int` - at `$.a.b`" as "a.b: Expected `int`" (the API's usual "field: problem")."""
    problem, _, path = str(exc).partition(" - at `$")
    return f"{path.strip('`.')}: {problem}" if path else problem


class StrictJSONRequest(Request):
    """A request whose `json()` is the body decoded into the handler's `data` type, strictly.

    Litestar decodes a body untyped and then converts it leniently, so `0` passed for
    a boolean and invalid UTF-8 or nesting deeper than ~1,000 levels escaped as 500s.
    Here every decoding failure becomes a SerializationException, which Litestar
    answers with 400 (`invalid_input` in api.errors).
    """

    async def json(self) -> Any:
        if self._json is Empty:
            data = self.route_handler.parsed_data_field
            decoder = _decoder(data.annotation if data is not None else Any)
            try:
                self._json = decoder.decode(await self.body() or b"null")
            except msgspec.DecodeError as exc:  # malformed JSON, or a value of the wrong type or shape
                raise SerializationException(_described(exc)) from None
            except UnicodeDecodeError:
                raise SerializationException("the body is not valid UTF-8") from None
            except RecursionError:
                raise SerializationException("the body is nested too deeply") from None
        return self._json
