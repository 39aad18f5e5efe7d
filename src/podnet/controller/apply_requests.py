"""`podnet apply` in the daemon, as the API server takes kubectl's request: the CLI reads
the files and sends their documents (daemon.apply_server); here they are validated exactly
as `load` validates them (model.load.validate_documents: the same InputError naming file,
object and field), the next state is checked and stored in one transaction
(state.changes.apply_objects), and the answer says what the CLI prints. The daemon holds
pydantic and the models warm, which a fresh CLI process spends most of its time importing.

The CLI sends the files' texts (it reads them; parsing them here spares each CLI process
the YAML fast path's import) or, for big texts, the documents it parsed on two cores.
The CLI's own path (cli/apply.py, without a daemon) runs the same functions, so both give
the same lines, the same warnings and the same errors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from podnet.model.errors import InputError, Problem, problem_to_json
from podnet.model.load import validate_documents
from podnet.model.manifests import Document, documents_of
from podnet.state.changes import apply_objects
from podnet.state.store import DEFAULT_CLUSTER, Store

if TYPE_CHECKING:
    from podnet.model.cluster import Cluster
    from podnet.state.network import NetworkConfig
    from podnet.state.placement import Placement


def next_state_renders(
    store: Store, cluster: Cluster, placement: Placement, net: NetworkConfig
) -> list[Problem]:
    """The next state of a change must render (kernel names that cannot be built are an
    InputError); returns placement's warnings, to be shown."""
    from podnet.render.topology import render

    name = str(store.get_meta("cluster", DEFAULT_CLUSTER))
    render(cluster, placement, name, str(store.get_meta("mode")), net)
    return list(placement.warnings)


def documents(sources: list[dict[str, Any]]) -> list[Document]:
    """The documents of the CLI's sources: {"name", "text"} parsed here (as the CLI's own
    path parses them, on one process: the daemon does not fork), {"name", "documents":
    [[index, document], ...]} as the CLI parsed them (big texts, parsed on two cores)."""
    out: list[Document] = []
    for source in sources:
        name = str(source["name"])
        if "text" in source:
            out += documents_of(name, source["text"], parallel=False)
        else:
            out += [(name, int(i), doc) for i, doc in source["documents"]]
    return out


def answer(root: Path, sources: list[dict[str, Any]]) -> dict[str, Any]:
    """Parse, validate and store the CLI's `sources` in the store at `root`. {"lines",
    "revision", "warnings"} when stored; {"problems", "warnings"} for bad input (nothing
    stored).
    "warnings" holds groups (the objects', then placement's), each shown as the CLI shows
    one call of print_warnings, in the order the CLI's own path shows them."""
    groups: list[list[Problem]] = []

    def check(store: Store, cluster: Cluster, placement: Placement, net: NetworkConfig) -> None:
        groups.append(next_state_renders(store, cluster, placement, net))

    try:
        incoming = validate_documents(documents(sources))
        groups.append(list(incoming.warnings))
        with Store.open(root) as store:
            lines, revision = apply_objects(store, incoming.objects, check)
    except InputError as e:
        return {"problems": [problem_to_json(p) for p in e.problems], "warnings": _json(groups)}
    return {"lines": lines, "revision": revision, "warnings": _json(groups)}


def _json(groups: list[list[Problem]]) -> list[list[dict[str, Any]]]:
    return [[problem_to_json(p) for p in group] for group in groups if group]
