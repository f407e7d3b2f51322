"""Type checks for config dataclasses fed from TOML files and widgets.

Dataclasses do not check types, and a wrong one (``lr = "fast"``) otherwise surfaces later as an
obscure TypeError deep in training. ``check_types`` gives one message naming the field instead.
"""
from __future__ import annotations

import math
import types
import typing
from typing import Any, Mapping


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:  # an integer is a fine float in a config file ("lr = 1"); TOML's inf and nan are not
        return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float)
                                                                            and math.isfinite(value))
    if hint is str:
        return isinstance(value, str)
    if origin in (tuple, list):
        return isinstance(value, (tuple, list))
    return True  # Any, Literal and other rich hints: left to the dataclass's own checks


def _describe(hint: Any) -> str:
    if hint is float:
        return "a finite number"
    text = str(hint).replace("typing.", "")
    return getattr(hint, "__name__", text) if typing.get_origin(hint) is None else text


def _how_to_write(value: Any, hint: Any) -> str:
    """What to write instead of a value of the wrong type that means a right one: a number or bool in quotes
    (``lr = "1e-3"`` in TOML, a string from a form or JSON), 0 or 1 for a bool; "" where there is nothing to say."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("true", "false") and _matches(text.lower() == "true", hint):
            return f"; write {text.lower()} without quotes ({text.lower() == 'true'} in Python)"
        for read in (int, float):
            try:
                number = read(text)
            except ValueError:
                continue
            if _matches(number, hint):
                return f"; write the number without quotes: {text}"
    elif isinstance(value, int) and not isinstance(value, bool) and value in (0, 1) and _matches(bool(value), hint):
        return f"; write {'true' if value else 'false'} ({bool(value)} in Python)"
    return ""


def check_types(cls: type, values: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first of ``values`` whose type does not fit ``cls``'s annotation.

    cls: a dataclass; values: field name -> value (names not annotated on ``cls`` are ignored).
    """
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        if name in hints and not _matches(value, hints[name]):
            raise ValueError(f"{cls.__name__}.{name} must be {_describe(hints[name])}, "
                             f"got {value!r} ({type(value).__name__}){_how_to_write(value, hints[name])}")
