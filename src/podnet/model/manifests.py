"""Reading manifests into documents: files, folders, stdin; YAML streams and JSON. No
model and no pydantic here: `podnet apply` reads its files in the CLI and hands the
documents to the cluster's daemon, which validates them (model.load) with its models warm.

Parsing uses yaml-rs where its YAML 1.2 reading equals YAML 1.1's (model/fastyaml.py), else
libyaml through PyYAML's C loader.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from podnet.model.errors import InputError, Problem

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
# One document of the input: the file's name ("<stdin>" for -), its index there, its value.
Document = tuple[str, int, Any]


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Files as given, folders recursively (.yaml, .yml, .json, sorted), '-' for stdin."""
    out: list[str] = []
    for p in paths:
        if p == "-":
            out.append(p)
            continue
        path = Path(p)
        if path.is_dir():
            out += sorted(
                str(f) for f in path.rglob("*") if f.is_file() and f.suffix in MANIFEST_SUFFIXES
            )
        elif path.exists():
            out.append(p)
        else:
            raise InputError([Problem(None, "", "", f"{p}: no such file or directory")])
    return out


def parse_documents(name: str, text: str, parallel: bool = True) -> list[Any]:
    """All documents of one file; JSON takes the fast path, anything else goes through YAML
    (a big text that needs PyYAML on two processes, unless not `parallel`: the daemon, a
    threaded process, does not fork)."""
    if name.endswith(".json") or text.lstrip().startswith(("{", "[")):
        try:
            data = json.loads(text)
            return data if isinstance(data, list) else [data]
        except json.JSONDecodeError:
            pass  # YAML's error message (line and column) is the one to show
    # Here, not at the top: yaml-rs and the fast path's patterns (~15 ms to import) are
    # not for `apply`'s CLI, which sends its files' texts to the daemon.
    from podnet.model.fastyaml import fast_documents

    fast = fast_documents(text)
    if fast is not None:
        return fast
    # PyYAML only now: importing it compiles its reader's big character class (~10 ms of
    # every start-up), which the fast path above does not need.
    import yaml

    try:
        if parallel and len(text) >= PARALLEL_MIN_BYTES and (os.cpu_count() or 1) > 1:
            docs = _parse_in_parallel(text)
            if docs is not None:
                return docs
        return _load_all(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        pos = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        what = " ".join(x for x in (e.context, e.problem) if x)
        raise InputError([Problem(None, "", "", f"{pos}: invalid YAML: {what}")]) from None
    except yaml.YAMLError as e:
        raise InputError([Problem(None, "", "", f"{name}: invalid YAML: {e}")]) from None


PARALLEL_MIN_BYTES = 512 * 1024
_DOC_START = re.compile(r"^---(?=[ \t]|$)", re.M)
_ITEM_START = re.compile(r"^- ", re.M)
_TOP_KEY = re.compile(r"^[^\s#-][^\n]*:", re.M)


def _load_all(text: str) -> list[Any]:
    """Every document of `text` through PyYAML's safe loader (libyaml's C one if built)."""
    import yaml

    return list(yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))


def _list_cut(text: str) -> int | None:
    """Where a single `kind: List` document (kubectl's layout: `items:` then entries at
    column 0, other keys before or after) can be cut between two items; None otherwise."""
    items = re.search(r"^items:[ \t]*$", text, re.M)
    if items is None or _DOC_START.search(text):
        return None
    cut = next((m.start() for m in _ITEM_START.finditer(text, len(text) // 2)), None)
    if cut is None:
        return None
    # The items must run from `items:` to the cut without another top-level key, and once
    # a top-level key follows the items, no further column-0 entry may come.
    if _TOP_KEY.search(text, items.end(), cut):
        return None
    after = _TOP_KEY.search(text, cut)
    if after and _ITEM_START.search(text, after.start()):
        return None
    return cut


def _parse_in_parallel(text: str) -> list[Any] | None:
    """A big stream parsed on two cores, cut between documents or between the items of a
    single `kind: List` (the shape of `kubectl get -A -o yaml`).

    PyYAML's C loader still builds every node in Python: at 10,000 pods parsing is most of
    the analysis time. Both halves parse to the same values a whole parse gives. Any doubt
    (directives, no cut point, an error in a part) returns None and the caller parses the
    whole text, which also gives errors their true line and column.
    """
    if re.search(r"^%", text, re.M):
        return None  # directives apply to the documents after them: keep the stream whole
    cut = next((m.start() for m in _DOC_START.finditer(text, len(text) // 2)), None)
    as_list = False
    if cut is None or cut == 0:
        cut, as_list = _list_cut(text), True
        if cut is None:
            return None
    second_text = ("items:\n" if as_list else "") + text[cut:]
    # Imported here: a process pool is for big streams only, and importing it costs every
    # small run ~9 ms (tests/test_startup_imports.py).
    import concurrent.futures
    import concurrent.futures.process
    import multiprocessing

    import yaml

    ctx = multiprocessing.get_context("fork")
    try:
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            pending = pool.submit(_load_all, second_text)
            first = _load_all(text[:cut])
            second = pending.result()
    except (yaml.YAMLError, OSError, concurrent.futures.process.BrokenProcessPool):
        return None
    if not as_list:
        return first + second
    if len(first) != 1 or len(second) != 1:
        return None
    head, tail = first[0], second[0]
    if not (isinstance(head, dict) and isinstance(tail, dict)):
        return None
    if not (isinstance(head.get("items"), list) and isinstance(tail.get("items"), list)):
        return None
    return [{**head, **tail, "items": head["items"] + tail["items"]}]


def read_texts(paths: Iterable[str], stdin_text: str | None = None) -> list[tuple[str, str]]:
    """(name, text) of every file the paths name ("<stdin>" for -), in order; InputError for
    a path that does not exist or a file that cannot be read."""
    return [_read(name, stdin_text) for name in expand_paths(paths)]


def _read(name: str, stdin_text: str | None) -> tuple[str, str]:
    """(name, text) of one expanded path ("-": stdin)."""
    if name == "-":
        return "<stdin>", stdin_text if stdin_text is not None else sys.stdin.read()
    try:
        return name, Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError([Problem(None, "", "", f"{name}: cannot read: {e}")]) from None


def documents_of(name: str, text: str, parallel: bool = True) -> list[Document]:
    """The non-empty documents of one file, with their index; InputError for text that does
    not parse (naming file, line and column)."""
    docs = parse_documents(name, text, parallel)
    return [(name, i, doc) for i, doc in enumerate(docs) if doc is not None]


def read_documents(paths: Iterable[str], stdin_text: str | None = None) -> list[Document]:
    """Every non-empty document of every file, in order; InputError for a path that does not
    exist, a file that cannot be read, or text that does not parse, at the first such
    problem (file by file)."""
    out: list[Document] = []
    for path in expand_paths(paths):
        out += documents_of(*_read(path, stdin_text))
    return out
