"""What an `apply` did, for tests that hold two paths of a change equal (the local path and
the whole-state path): the output or the error, the store's objects, its revision."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from podnet.model.errors import InputError
from podnet.model.load import load
from podnet.state import changes
from podnet.state.store import Store


def store_contents(store: Store, kinds: Iterable[str]) -> dict[tuple[str, str, str], Any]:
    """Every stored object of `kinds`, by (kind, namespace, name): its body."""
    return {(o.kind, o.namespace, o.name): o.body for k in kinds for o in store.list(k)}


def apply_outcome(
    store: Store, path: Path, docs: list[dict[str, Any]], kinds: Iterable[str]
) -> tuple:
    """(lines or the error's text, the store's objects of `kinds`, its revision) after
    `apply` of `docs` (written to path/apply.yaml; the path in errors reads DIR)."""
    src = path / "apply.yaml"
    src.write_text(yaml.safe_dump_all(docs))
    try:
        lines, _ = changes.apply_objects(store, load([str(src)]).objects)
        said: object = lines
    except InputError as e:
        said = str(e).replace(str(path), "DIR")
    return said, store_contents(store, kinds), store.revision()
