"""A fast path for YAML: yaml-rs (Rust) builds the objects ~20x faster than PyYAML, whose C
parser still constructs every node in Python.

yaml-rs reads YAML 1.2 (core schema); the API server's YAML (sigs.k8s.io/yaml over go-yaml
v2) and PyYAML read YAML 1.1, where `on`, `yes`, `0755`, `1:20`, `1_000` or `2024-01-01` are
not the strings or numbers 1.2 makes of them. So the fast path takes only texts in which no
plain scalar (a key or a value) has a shape the two schemas resolve differently; any other
text, any directive or document-end marker, and any error go to PyYAML, which then also
reports the error's exact line and column. A fast answer therefore always equals PyYAML's
(tests/test_fastyaml.py holds them equal on the shapes that differ).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from typing import Any

yaml_rs: Any
try:
    import yaml_rs
except ImportError:  # pragma: no cover - an install without the optional speed-up
    yaml_rs = None

# Plain scalars that PyYAML's YAML 1.1 and yaml-rs's 1.2 resolve differently (or that we do
# not bother to prove equal: timestamps, hex, exponents, merge keys): booleans beyond
# true/false (PyYAML, unlike the 1.1 spec and go-yaml, keeps `y` and `n` strings), numbers
# with a leading zero, underscores, sexagesimal colons, 0b/0o/0x prefixes or an exponent,
# dates, `<<` and `=`.
_TOKEN = (
    r"(?:[yY]es|YES|[nN]o|NO|[oO]n|ON|[oO]ff|OFF"
    r"|[-+]?0[0-9_]+(?:\.[0-9_]*)?"
    r"|[-+]?[0-9.][0-9_.]*[_:][0-9_:.]*"
    r"|[-+]?0[xXoObB][0-9a-fA-F_]*"
    r"|[-+]?[0-9.][0-9_.]*[eE][-+]?[0-9]*"
    r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}[^\s,\]}]*"
    r"|<<|=)"
)
# Values are found in the text (a quoted "2024-01-01" is a string in both schemas, a plain
# one is not); every pattern starts with a literal, which Python's re scans for quickly.
_VALUE_PATTERNS = tuple(
    re.compile(p, re.M)
    for p in (
        rf": +{_TOKEN}[ \t]*(?:#[^\n]*$|$|[,\]}}])",
        rf"- +{_TOKEN}[ \t]*(?:#[^\n]*)?$",
        rf"[\[{{][ \t]*{_TOKEN}[ \t]*[,\]}}]",
        rf",[ \t]*{_TOKEN}[ \t]*[,\]}}]",
    )
)
_DIRECTIVE = re.compile(r"^(?:%|\.\.\.(?:[ \t]|$))", re.M)
# Keys are checked on the parsed objects instead: a regex anchored at every line start is
# slow in Python, and a key that merely looks like a token (quoted or not) is rare enough
# that sending such a text to PyYAML costs nothing.
_KEY = re.compile(_TOKEN)
_KEY_START = frozenset("yYnNoO0123456789+-.<=")  # first characters of _TOKEN
_DOC_START = re.compile(r"^---(?=[ \t]|$)", re.M)
_CONTENT = re.compile(r"^[ \t]*[^\s#]", re.M)


def _needs_yaml11(text: str) -> bool:
    if "!!" in text or _DIRECTIVE.search(text):
        return True
    return any(p.search(text) for p in _VALUE_PATTERNS)


def _keys_differ(docs: list[Any]) -> bool:
    """Whether some mapping key is not a string or has a shape the schemas read apart."""
    stack = [d for d in docs if type(d) is dict or type(d) is list]
    seen: set[Any] = set()  # keys already found plain strings (manifests repeat a few)
    while stack:
        obj = stack.pop()
        values: Iterable[Any]
        if type(obj) is dict:
            for k in obj.keys() - seen:
                if type(k) is not str or (k[:1] in _KEY_START and _KEY.fullmatch(k)):
                    return True
                seen.add(k)
            values = obj.values()
        else:
            values = obj
        stack += [v for v in values if type(v) is dict or type(v) is list]
    return False


def fast_documents(text: str) -> list[Any] | None:
    """The documents of `text` as PyYAML's safe loader gives them, or None when the fast
    path does not apply (then parse with PyYAML)."""
    if yaml_rs is None or _needs_yaml11(text):
        return None
    # yaml-rs returns one document as itself and several as a list, which a single
    # document that is a list would make ambiguous: parse each document on its own.
    cuts = [m.start() for m in _DOC_START.finditer(text)]
    bounds = [0, *cuts, len(text)] if not cuts or cuts[0] != 0 else [*cuts, len(text)]
    docs = []
    try:
        for start, end in itertools.pairwise(bounds):
            part = text[start:end]
            if start not in cuts and not _CONTENT.search(part):
                continue  # blank or comments before the first `---`: no document
            docs.append(yaml_rs.loads(part, parse_datetime=False))
    except Exception:  # any doubt goes to PyYAML, which reports an error exactly
        return None
    return None if _keys_differ(docs) else docs
