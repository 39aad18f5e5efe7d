"""Loading manifests: the documents model.manifests reads (files, folders, stdin; YAML
streams, JSON), `kind: List` and typed lists flattened, each object validated into its model
and remembering its Origin, so that every later message can point at the file and document.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from podnet.model.errors import InputError, Origin, Problem, loc_to_path
from podnet.model.kinds import CLUSTER_SCOPED, MODELS, identity
from podnet.model.manifests import Document, read_documents


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
    return validate_documents(read_documents(paths, stdin_text))


def validate_documents(documents: Iterable[Document]) -> LoadResult:
    """Validate the objects of documents read by model.manifests (lists flattened); raise
    InputError listing every problem found. The daemon validates `apply`'s documents here,
    as `load` does."""
    result = LoadResult()
    problems: list[Problem] = []
    skipped: Counter[str] = Counter()
    for name, index, doc in documents:
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
