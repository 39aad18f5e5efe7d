"""`podnet apply` takes two paths to the same result: through the cluster's daemon (the CLI
reads the files, the daemon parses, validates, stores and syncs: daemon.apply_server), and,
without
a daemon that takes the documents, its own (cli/apply.py). The same manifests applied, one
after another, to a cluster with a daemon and to one without (`up --no-daemon`) give the
same output, the same errors and exit statuses, and the same stored objects; the daemon
really took them (its log), and a daemon whose socket is gone leaves the CLI its own path."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from podnet.state.store import Store
from podnet.testing import live_cluster
from podnet.testing._live import podnet

pytestmark = pytest.mark.datapath


def pod(name: str, labels: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "a", "labels": labels, **meta},
        "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80}]}]},
    }


NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}
OTHER = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "z"}}
POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "in", "namespace": "a"},
    "spec": {"podSelector": {"matchLabels": {"app": "p"}}, "ingress": [{"ports": [{"port": 80}]}]},
}
BAD_POLICY = {
    **POLICY,
    "metadata": {"name": "broken", "namespace": "a"},
    "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 80, "endPort": 10}]}], "x": 1},
}
SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "s", "namespace": "a"},
    "spec": {"selector": {"app": "p"}, "ports": [{"port": 80}]},
}
# One manifest after another; each is applied to both clusters in turn.
CASES: list[tuple[str, str]] = [
    ("create", yaml.safe_dump_all([NAMESPACE, pod("p1", {"app": "p"}), POLICY])),
    ("unchanged", yaml.safe_dump_all([pod("p1", {"app": "p"})])),
    ("relabel (local change)", yaml.safe_dump_all([pod("p1", {"app": "q"})])),
    ("service (whole state)", yaml.safe_dump_all([SERVICE, pod("p2", {"app": "p"})])),
    ("bad fields", yaml.safe_dump_all([pod("p3", {"app": "p"}), BAD_POLICY])),
    ("missing name", yaml.safe_dump_all([{**NAMESPACE, "metadata": {}}])),
    ("unknown kind: a warning", yaml.safe_dump_all([{"kind": "Widget"}, pod("p4", {})])),
    ("invalid YAML", "kind: Pod\nmetadata: [unclosed\n"),
    (
        "service with a foreign cluster IP",
        yaml.safe_dump_all([{**SERVICE, "spec": {**SERVICE["spec"], "clusterIP": "1.2.3.4"}}]),
    ),
    (
        "a YAML date (a string of YAML 1.1's timestamp shape, parsed alike on both paths)",
        "kind: Pod\nmetadata:\n  name: p6\n"
        "  namespace: a\n  annotations: {since: 2024-01-01}\nspec: {containers: []}\n",
    ),
]


# A comment that makes a file big enough for the CLI to parse it itself (on two cores when
# it needs PyYAML) and send the documents instead of the text.
PADDING = ("# " + "x" * 98 + "\n") * 6000


def served(live: Any, timeout: float = 20.0) -> None:
    """Wait for the daemon's apply socket: it opens once the controller is up, a moment
    after `up` returns (an `apply` before that takes the CLI's own path)."""
    deadline = time.monotonic() + timeout
    while not (live.sdir / "apply.sock").exists():
        assert time.monotonic() < deadline, "the daemon opened no apply socket"
        time.sleep(0.05)


def outcome(live: Any, manifest: Path) -> tuple[int, str, str, dict[tuple[str, str], Any]]:
    out = live.cli("apply", "-f", str(manifest))
    with Store.open(live.sdir) as store:
        stored = {
            (kind, o.name): o.body
            for kind in ("Namespace", "Pod", "NetworkPolicy", "Service")
            for o in store.list(kind)
            if o.namespace == "a" or o.name == "a"
        }
    return out.returncode, out.stdout, out.stderr.replace(live.name, "CLUSTER"), stored


def test_the_daemon_path_and_the_cli_path_give_the_same_result(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "l").mkdir()
    with (
        live_cluster(tmp_path / "d", [OTHER], "apd") as daemon,
        live_cluster(tmp_path / "l", [OTHER], "apl", up_args=["--no-daemon"]) as local,
    ):
        served(daemon)
        log = daemon.sdir / "daemon.log"
        codes = []
        for i, (what, text) in enumerate(CASES):
            manifest = tmp_path / f"case{i}.yaml"
            manifest.write_text(text)
            taken = log.read_text().count("apply of ")
            through = outcome(daemon, manifest)
            own = outcome(local, manifest)
            assert through == own, what
            codes.append(own[0])
            assert log.read_text().count("apply of ") == taken + 1, what
        # What the cases must show, so that the equality above is not of two empty results.
        assert codes.count(2) >= 5 and codes[0] == 0
        # A big file (PADDING: parsed by the CLI, which sends its documents), then one of
        # values JSON would change (a YAML date parsed by the CLI): the CLI's own path.
        for name, docs, taken_up in (
            ("big.yaml", [pod("p8", {"app": "p"})], 1),
            ("big-date.yaml", [pod("p9", {}, annotations={"since": "DATE"})], 0),
        ):
            manifest = tmp_path / name
            text = yaml.safe_dump_all(docs).replace("DATE", "2024-01-01")
            manifest.write_text(PADDING + text)
            taken = log.read_text().count("apply of ")
            through = outcome(daemon, manifest)
            assert through == outcome(local, manifest), name
            assert log.read_text().count("apply of ") == taken + taken_up, name
        # A daemon that does not take the request (its socket gone): the CLI's own path.
        (daemon.sdir / "apply.sock").unlink()
        manifest = tmp_path / "after.yaml"
        manifest.write_text(yaml.safe_dump_all([pod("p7", {"app": "p"})]))
        taken = log.read_text().count("apply of ")
        assert outcome(daemon, manifest) == outcome(local, manifest)
        assert log.read_text().count("apply of ") == taken
        assert podnet("get", "pods", "-n", "a", "--cluster", daemon.name, env=daemon.env).stdout


def test_the_daemon_answers_once_the_change_is_enforced(tmp_path: Path) -> None:
    """The answer comes after a sync of the stored revision: the daemon's status shows it
    when the command returns."""
    import json

    with live_cluster(tmp_path, [NAMESPACE], "apw") as live:
        served(live)
        manifest = tmp_path / "p.yaml"
        manifest.write_text(yaml.safe_dump_all([pod("p1", {"app": "p"}), POLICY]))
        out = live.cli("apply", "-f", str(manifest))
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == [
            "pod/p1 created",
            "networkpolicy.networking.k8s.io/in created",
        ]
        with Store.open(live.sdir) as store:
            revision = store.revision()
        status = json.loads((live.sdir / "daemon.json").read_text())["sync"]
        assert status["ok"] and status["revision"] >= revision
        assert "apply of 1 file(s): revision" in (live.sdir / "daemon.log").read_text()
        assert oct((live.sdir / "apply.sock").stat().st_mode & 0o777) == "0o600"
