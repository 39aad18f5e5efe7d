"""Where an object came from, and errors that name it.

Every message a user sees about bad input names the file, the document's index, the object
and the field path, so that it can be fixed without guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Origin:
    """The place of one object in the input: `file[doc]` plus `.items[i]` inside a List."""

    file: str
    doc: int
    item: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}[{self.doc}]"
        return where if self.item is None else f"{where}.items[{self.item}]"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (or worth a warning) with one object."""

    origin: Origin | None
    obj: str  # "Kind ns/name" or "" when unknown
    path: str  # field path such as spec.ingress[0].ports[1].endPort, or ""
    message: str

    def __str__(self) -> str:
        head = " ".join(x for x in (str(self.origin) if self.origin else "", self.obj) if x)
        where = f"{self.path}: " if self.path else ""
        return f"{head}: {where}{self.message}" if head else f"{where}{self.message}"


class InputError(Exception):
    """Bad input: one or more problems, each printed as one line; exit status 2."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems

    @classmethod
    def line(cls, message: str) -> InputError:
        """One problem tied to no file or object (an argument, a missing cluster)."""
        return cls([Problem(None, "", "", message)])


def problem_to_json(p: Problem) -> dict[str, Any]:
    """A problem as JSON: what the daemon answers `apply` with (problem_from_json reads it)."""
    origin = None if p.origin is None else [p.origin.file, p.origin.doc, p.origin.item]
    return {"origin": origin, "obj": p.obj, "path": p.path, "message": p.message}


def problem_from_json(d: dict[str, Any]) -> Problem:
    origin = d.get("origin")
    return Problem(
        Origin(*origin) if origin else None, str(d["obj"]), str(d["path"]), str(d["message"])
    )


def loc_to_path(loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic location into a Kubernetes field path: ('spec','ingress',0) -> spec.ingress[0]."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "union[")) or part in ("int", "str"):
            continue  # pydantic's own markers for validators and union branches
        else:
            out += f".{part}" if out else part
    return out
