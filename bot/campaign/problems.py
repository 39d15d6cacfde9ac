"""Problems found in campaign files, and the translation of pydantic's errors into staff language.

Every problem reads ``path:line: location: what is wrong (what was expected)``.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bot.campaign.yamlsrc import Loc, Source

M = TypeVar("M", bound=BaseModel)
WARNING = "warning"
ERROR = "error"


# Characters that would break a problem's one line or disguise it on a terminal (a key or a file name may
# hold any of them):
# controls, line and paragraph separators, bidirectional overrides and isolates.
_UNSEEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


@dataclass(frozen=True, order=True)
class Problem:
    rel: str
    line: int
    message: str
    severity: str = ERROR

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == WARNING else ""
        where = f"{self.rel}:{self.line}" if self.line else self.rel  # line 0: the whole folder, not a file
        return f"{where}: {prefix}{self.message}"


MOST_PER_FILE = 50
"""Problems shown for one file; past them one line counts the rest (a hostile file could hold 100,000)."""
_FROM_HERE = "in this file from here on are not shown (fix the ones above and check again)"


@dataclass
class Problems:
    """Collects every problem of every file so that all are reported at once.

    ``count`` counts every problem found, shown or not: compare it before and after a check.
    """

    items: list[Problem] = field(default_factory=list)
    count: int = 0
    _shown: dict[str, int] = field(default_factory=dict)
    _hidden: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # rel: how many, first line, severity

    def add(self, source: Source, loc: Loc, message: str, severity: str = ERROR) -> None:
        if self.full(source.rel):
            self.count += 1
            # Locating costs: only the first problem not shown is located.
            self._hide(source.rel, 0 if source.rel in self._hidden else source.line(loc), severity)
            return
        text = f"{dotted(loc)}: {message}" if loc else message
        self.at(source.rel, source.line(loc), text, severity)

    def at(self, rel: str, line: int, message: str, severity: str = ERROR) -> None:
        self.count += 1
        if self.full(rel):
            self._hide(rel, line, severity)
            return
        self._shown[rel] = self._shown.get(rel, 0) + 1
        self.items.append(Problem(_UNSEEN.sub(_escaped, rel), line, _UNSEEN.sub(_escaped, message), severity))

    def full(self, rel: str) -> bool:
        """Whether ``rel`` has as many problems shown as a file gets (more are only counted)."""
        return self._shown.get(rel, 0) >= MOST_PER_FILE

    def _hide(self, rel: str, line: int, severity: str) -> None:
        many, first, worst = self._hidden.get(rel, (0, line, severity))
        self._hidden[rel] = (many + 1, first, ERROR if ERROR in (worst, severity) else WARNING)

    @property
    def errors(self) -> list[Problem]:
        return sorted(p for p in self._all() if p.severity == ERROR)

    @property
    def warnings(self) -> list[Problem]:
        return sorted(p for p in self._all() if p.severity == WARNING)

    def _all(self) -> list[Problem]:
        more = [
            Problem(rel, first, f"{many:,} more problem{'' if many == 1 else 's'} {_FROM_HERE}", worst)
            for rel, (many, first, worst) in self._hidden.items()
        ]
        return self.items + more


def dotted(loc: Loc) -> str:
    """``('slots', 2, 'accounts')`` -> ``slots[2].accounts``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def suggest(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a known word is close, else an empty string."""
    close = difflib.get_close_matches(str(word), list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def known_list(known: Iterable[str]) -> str:
    names = list(known)
    return ", ".join(names) if names else "none"


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values",
    "model_attributes_type": "a mapping of keys to values",
    "date_type": "a date like 2022-01-12",
    "date_parsing": "a date like 2022-01-12",
    "date_from_datetime_parsing": "a date like 2022-01-12",
    "date_from_datetime_inexact": "a date like 2022-01-12",
}


def add_validation_errors(
    problems: Problems, source: Source, model: type[BaseModel], exc: ValidationError, prefix: Loc = ()
) -> None:
    """One problem per pydantic error, located by line, worded for staff.

    ``prefix`` is where the validated value sits in the file when it is not the whole document.
    """
    for err in exc.errors(include_url=False):
        loc = (*prefix, *err["loc"])
        if problems.full(source.rel):  # only counted: no wording, no "did you mean" to compute
            problems.add(source, loc, "")
            continue
        kind, value = err["type"], err.get("input")
        if kind == "extra_forbidden":
            key, parent = loc[-1], loc[:-1]
            allowed = _fields_at(model, tuple(err["loc"])[:-1])
            hint = suggest(str(key), allowed) or f" (expected one of: {known_list(allowed)})"
            problems.at(source.rel, source.line(loc), _join(parent, f"unknown key '{key}'{hint}"))
        elif kind == "missing":
            problems.add(source, loc, "required key is missing")
        elif kind == "literal_error":
            problems.add(source, loc, f"{shown(value)} is not allowed (expected {err['ctx']['expected']})")
        elif kind in _EXPECTED:
            problems.add(source, loc, f"got {shown(value)} (expected {_EXPECTED[kind]})")
        else:
            problems.add(source, loc, f"{err['msg'][0].lower()}{err['msg'][1:]} (got {shown(value)})")


def _join(loc: Loc, message: str) -> str:
    return f"{dotted(loc)}: {message}" if loc else message


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """Field names of the model found at ``loc`` inside ``model`` (for "did you mean")."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                return []
            current = info.annotation
        else:
            args = typing.get_args(current)
            current = args[-1] if args else None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        real = [a for a in typing.get_args(annotation) if a is not type(None)]
        return real[0] if len(real) == 1 else annotation
    return annotation


def validated(problems: Problems, source: Source, model: type[M], data: Any, prefix: Loc = ()) -> M | None:
    """``model`` built from ``data``, or None with every problem recorded."""
    if data is None and not prefix:
        problems.at(source.rel, 1, "the file is empty (expected a mapping of keys to values)")
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        add_validation_errors(problems, source, model, exc, prefix)
        return None
