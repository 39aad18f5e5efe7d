"""Reading manifests: files, folders, stdin; YAML streams, JSON, `kind: List` and typed lists.

Parsing uses yaml-rs where its YAML 1.2 reading equals YAML 1.1's (model/fastyaml.py), else
libyaml through PyYAML's C loader. Each object is validated into its model and
remembers its Origin, so that every later message can point at the file and document.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from podnet.model.errors import InputError, Origin, Problem, loc_to_path
from podnet.model.fastyaml import fast_documents
from podnet.model.kinds import CLUSTER_SCOPED, MODELS, identity

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True)
class Loaded:
    """One validated object and where it came from."""

    kind: str
    obj: Any
    origin: Origin


@dataclass
class LoadResult:
    objects: list[Loaded] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


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


def parse_documents(name: str, text: str) -> list[Any]:
    """All documents of one file; JSON takes the fast path, anything else goes through YAML."""
    if name.endswith(".json") or text.lstrip().startswith(("{", "[")):
        try:
            data = json.loads(text)
            return data if isinstance(data, list) else [data]
        except json.JSONDecodeError:
            pass  # YAML's error message (line and column) is the one to show
    fast = fast_documents(text)
    if fast is not None:
        return fast
    # PyYAML only now: importing it compiles its reader's big character class (~10 ms of
    # every start-up), which the fast path above does not need.
    import yaml

    try:
        if len(text) >= PARALLEL_MIN_BYTES and (os.cpu_count() or 1) > 1:
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


def _items(doc: Any, name: str, index: int) -> Iterator[tuple[Any, Origin]]:
    """Flatten `kind: List` and typed lists (PodList, ...) whose items may omit their kind."""
    origin = Origin(name, index)
    if isinstance(doc, dict) and isinstance(doc.get("items"), list):
        list_kind = doc.get("kind") or ""
        item_kind = list_kind[: -len("List")] if list_kind.endswith("List") else ""
        for i, item in enumerate(doc["items"]):
            if isinstance(item, dict) and "kind" not in item and item_kind:
                item = {**item, "kind": item_kind}
            yield item, Origin(name, index, i)
    else:
        yield doc, origin


def _apply_raw_defaults(kind: str, raw: dict[str, Any]) -> None:
    """The API server's defaulting that must happen before validation sees the object."""
    meta = raw.get("metadata")
    if meta is None:
        meta = raw["metadata"] = {}
    if not isinstance(meta, dict):
        return  # validation reports the type error
    if not meta.get("name") and meta.get("generateName"):
        digest = hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()
        meta["name"] = meta["generateName"] + digest[:5]
    if kind in CLUSTER_SCOPED:
        meta.pop("namespace", None)
    elif not meta.get("namespace"):
        meta["namespace"] = "default"
    if kind == "Namespace" and meta.get("name"):
        # Since 1.22 the API server labels every namespace with its own name.
        labels = meta.get("labels")
        if labels is None:
            labels = meta["labels"] = {}
        if isinstance(labels, dict):
            labels["kubernetes.io/metadata.name"] = meta["name"]
    if kind == "NetworkPolicy" and isinstance(raw.get("spec"), dict):
        spec = raw["spec"]
        if not spec.get("policyTypes"):
            # SetDefaults_NetworkPolicySpec: "Any policy that does not specify policyTypes
            # implies at least Ingress"; Egress is added when `len(spec.Egress) != 0`, so an
            # empty `egress: []` does not make the policy affect egress.
            types = ["Ingress"]
            if isinstance(spec.get("egress"), list) and spec["egress"]:
                types.append("Egress")
            spec["policyTypes"] = types


def _problems(e: ValidationError, origin: Origin, obj: str) -> list[Problem]:
    out = []
    for err in e.errors(include_url=False):
        path = loc_to_path(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if msg.startswith("[") and "] " in msg:  # a validator naming an element of its list
            idx, _, msg = msg.partition(" ")
            path += idx
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "Required value"
        out.append(Problem(origin, obj, path, msg))
    return out


def validate_object(
    raw: Any, origin: Origin, result: LoadResult, skipped: Counter[str]
) -> list[Problem]:
    if not isinstance(raw, dict):
        return [Problem(origin, "", "", f"expected an object, found {type(raw).__name__}")]
    kind = raw.get("kind")
    if not isinstance(kind, str) or not kind:
        return [Problem(origin, "", "kind", "Required value")]
    model: type[BaseModel] | None = MODELS.get(kind)
    if model is None:
        skipped[kind] += 1
        return []
    _apply_raw_defaults(kind, raw)
    meta = raw.get("metadata") or {}
    name = meta.get("name") if isinstance(meta, dict) else None
    ns = meta.get("namespace") if isinstance(meta, dict) else None
    obj_id = identity(kind, ns if isinstance(ns, str) else None, str(name or "?"))
    if not name:
        return [Problem(origin, obj_id, "metadata.name", "Required value")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            obj = model.model_validate(raw)
        except ValidationError as e:
            return _problems(e, origin, obj_id)
    result.warnings += [Problem(origin, obj_id, "", str(w.message)) for w in caught]
    result.objects.append(Loaded(kind, obj, origin))
    return []


def load(paths: Iterable[str], stdin_text: str | None = None) -> LoadResult:
    """Load and validate every object; raise InputError listing every problem found."""
    result = LoadResult()
    problems: list[Problem] = []
    skipped: Counter[str] = Counter()
    for name in expand_paths(paths):
        if name == "-":
            text = stdin_text if stdin_text is not None else sys.stdin.read()
            name = "<stdin>"
        else:
            try:
                text = Path(name).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise InputError([Problem(None, "", "", f"{name}: cannot read: {e}")]) from None
        for index, doc in enumerate(parse_documents(name, text)):
            if doc is None:
                continue
            for raw, origin in _items(doc, name, index):
                problems += validate_object(raw, origin, result, skipped)
    if problems:
        raise InputError(problems)
    if skipped:
        kinds = ", ".join(f"{k} ({n})" for k, n in sorted(skipped.items()))
        result.warnings.append(
            Problem(
                None,
                "",
                "",
                f"skipped {sum(skipped.values())} objects of kinds podnet does not model: {kinds}",
            )
        )
    return result
