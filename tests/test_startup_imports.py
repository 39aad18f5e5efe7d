"""A command imports what it uses and nothing else: `--help`, `get`, `exec` never load numpy,
pydantic or rich; `analyze` never loads the netlink library or SQLite. (Start-up time itself
is measured by bench/startup_bench.py, not bounded here.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from podnet.model.cluster import load_cluster
from podnet.state.changes import store_cluster
from podnet.state.network import NetworkConfig
from podnet.state.placement import place
from podnet.state.store import Store

EXAMPLE = str(Path(__file__).resolve().parent.parent / "examples" / "shop")
HEAVY = {"numpy", "pydantic", "rich", "yaml", "pyroute2"}
COMMANDS = ("analyze", "explain", "up", "down", "get", "exec", "probe", "apply", "delete", "label")

RUN = """
import json, sys
from podnet.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
sys.stdout.flush()
print("\\n" + json.dumps(sorted(m.split(".")[0] for m in sys.modules)), file=sys.stderr)
"""


def loaded(*argv: str, env: dict[str, str] | None = None) -> set[str]:
    """The top-level modules a fresh `podnet ARGV` has imported by the time it returns."""
    out = subprocess.run(
        [sys.executable, "-c", RUN, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return set(json.loads(out.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("argv", [["--help"], *([c, "--help"] for c in COMMANDS)], ids=str)
def test_help_imports_nothing_heavy(argv):
    assert loaded(*argv) & HEAVY == set()


def test_the_listing_imports_no_command():
    """`podnet --help` lists the commands from cli.main's table: no command module, and
    none of what they import (the error types' dataclasses, typing) is loaded."""
    code = RUN.replace('m.split(".")[0] for m in sys.modules', "sys.modules")
    out = subprocess.run(
        [sys.executable, "-c", code, "--help"], capture_output=True, text=True, timeout=60
    )
    modules = set(json.loads(out.stderr.strip().splitlines()[-1]))
    assert "usage: podnet" in out.stdout
    podnet = {m for m in modules if m.startswith("podnet.")}
    assert podnet == {"podnet.cli", "podnet.cli.main", "podnet.startup"}
    assert modules & {"dataclasses", "typing", "inspect"} == set()


@pytest.fixture
def stored(tmp_path):
    cluster = load_cluster([EXAMPLE], node_count=2)
    net = NetworkConfig()
    with Store.open(tmp_path / "c1") as store:
        store_cluster(store, cluster, place(cluster, net, strict=True), "c1", "host-gw", net)
    return {"PATH": "/usr/bin:/bin", "PODNET_STATE_DIR": str(tmp_path)}


@pytest.mark.parametrize("kind", ["pods", "nodes", "namespaces", "services"])
def test_get_imports_nothing_heavy(stored, kind):
    assert loaded("get", kind, "-A", "--cluster", "c1", env=stored) & HEAVY == set()


def test_get_pods_reads_no_runtime_schema(stored):
    """Whether the daemon serves the current runtime.json is a digest comparison
    (state.files.file_digest): `get` does not define the file's schema (render.runtime,
    a dozen dataclasses) to make it."""
    code = RUN.replace('m.split(".")[0] for m in sys.modules', "sys.modules")
    out = subprocess.run(
        [sys.executable, "-c", code, "get", "pods", "-A", "--cluster", "c1"],
        capture_output=True,
        text=True,
        env=stored,
        timeout=60,
    )
    modules = set(json.loads(out.stderr.strip().splitlines()[-1]))
    assert "shop" in out.stdout and "podnet.daemon.supervisor" in modules
    assert "podnet.render.runtime" not in modules


def test_exec_imports_nothing_heavy(stored):
    assert loaded("exec", "--cluster", "c1", "shop/db-0", "--", "true", env=stored) & HEAVY == set()


@pytest.mark.parametrize(
    ("output", "unused"),
    [("json", {"pyroute2", "sqlite3", "rich"}), ("summary", {"pyroute2", "sqlite3"})],
)
def test_analyze_imports_no_live_network(output, unused):
    assert loaded("analyze", "-f", EXAMPLE, "-o", output) & unused == set()


def test_label_path_imports_nothing_heavy():
    """What `podnet label` imports on its way from the command line to the daemon's sync
    (the change of the store, the daemon's liveness, the sync request) is part of every
    change's latency to enforcement: no model classes, no logging, no event loop."""
    code = (
        "import json, sys, podnet.cli.main, podnet.cli.label, podnet.state.labels, "
        "podnet.daemon.supervisor; "
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    modules = set(json.loads(out.stdout))
    assert modules & (HEAVY | {"logging", "asyncio", "concurrent"}) == set()


def test_daemon_serves_before_the_models_load():
    """A restarted daemon opens the pods' sockets before its controller is imported (on a
    worker thread, behind them): what runs before that is the gap a `kill -9` leaves, so the
    daemon's entry module loads no model classes, no numpy, no YAML."""
    code = (
        "import json, sys, podnet.daemon.__main__; "
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert set(json.loads(out.stdout)) & HEAVY == set()


def test_analyze_of_small_input_imports_no_fallbacks():
    """The example parses on the fast YAML path and is far below the size that parses on
    two cores: PyYAML (its reader compiles a big regex at import), the process pool and
    numpy (the example's question is answered pair by pair: policy.pair_analysis) are then
    start-up time spent for nothing."""
    unused = {"yaml", "concurrent", "multiprocessing", "numpy", "podnet.policy.matrix"}
    code = RUN.replace('m.split(".")[0] for m in sys.modules', "sys.modules")
    out = subprocess.run(
        [sys.executable, "-c", code, "analyze", "-f", EXAMPLE, "-o", "summary"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    modules = set(json.loads(out.stderr.strip().splitlines()[-1]))
    assert {"podnet.policy.pair_analysis", "pydantic"} <= modules  # the analysis did run
    assert modules & unused == set()


def test_apply_of_a_relabelled_pod_imports_the_pods_model_only(stored, tmp_path):
    """`podnet apply` of a local change (state.local_change) is on the way of a change to
    enforcement: it builds the classes of the kinds it reads, and neither the whole-state
    validation (the cluster build, placement, Service allocation) nor the analysis."""
    import yaml

    with Store.open(tmp_path / "c1") as store:
        body = store.get("Pod", "shop", "db-0").body
    body["metadata"]["labels"]["extra"] = "yes"
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(yaml.safe_dump({"kind": "Pod", **body}))
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "import podnet.cli.apply, podnet.daemon.supervisor\n"
        "from podnet.cli.live import check_next_state\n"
        "from podnet.model.load import load\n"
        "from podnet.state.changes import apply_objects\n"
        "from podnet.state.store import Store\n"
        "with Store.open(Path(sys.argv[2])) as s:\n"
        "    lines, _ = apply_objects(s, load([sys.argv[1]]).objects, check_next_state)\n"
        "print(json.dumps([lines, sorted(sys.modules)]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(manifest), str(tmp_path / "c1")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines, modules = json.loads(out.stdout)
    assert lines == ["pod/db-0 configured"]
    unused = {
        "numpy",
        "rich",
        "yaml",
        "podnet.model.cluster",
        "podnet.model.service",
        "podnet.model.networkpolicy",
        "podnet.model.ingress",
        "podnet.state.placement",
        "podnet.state.snapshot",
        "podnet.state.service_alloc",
        "podnet.render.topology",
    }
    assert set(modules) & unused == set()


PLUGIN_CHECK = """
import json, sys
from podnet.cli.main import main
main(sys.argv[1:])
loader = sys.modules.get("pydantic.plugin._loader")
print(json.dumps([type(loader).__name__, "importlib.metadata" in sys.modules]), file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("setting", "expected"),
    [(None, ["_PluginsOff", False]), ("__all__", ["_PluginsOff", False]), ("x", ["module", True])],
)
def test_plugins_off_spare_the_plugin_loader(setting, expected):
    """With pydantic's plugins off (podnet's setting or the user's), pydantic's loader would
    only answer (), but importing it imports importlib.metadata (~15 ms): podnet's process
    uses podnet.startup's stand-in. A user's setting that leaves plugins on gets the real
    loader, which then reads the installed entry points."""
    env = {k: v for k, v in os.environ.items() if "PYDANTIC" not in k}
    if setting is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = setting
    out = subprocess.run(
        [sys.executable, "-c", PLUGIN_CHECK, "analyze", "-f", EXAMPLE, "-o", "summary"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "pods" in out.stdout  # the summary was printed: the models were built and used
    assert json.loads(out.stderr.strip().splitlines()[-1]) == expected


def test_importing_the_models_leaves_the_environment_alone() -> None:
    """Only podnet's entry points turn pydantic's plugin discovery off (podnet.startup);
    importing the models from another program changes nothing in its process, and a
    user's command in a pod does not inherit the setting."""
    code = (
        "import os, sys; import podnet.model.pod, podnet.model.networkpolicy; "
        "podnet.model.pod.Pod.model_rebuild(); "
        "print('PYDANTIC_DISABLE_PLUGINS' in os.environ); "
        "print(type(sys.modules['pydantic.plugin._loader']).__name__); "
        "from podnet import startup; startup.lean_pydantic(); "
        "print(os.environ['PYDANTIC_DISABLE_PLUGINS']); startup.user_environment(); "
        "print('PYDANTIC_DISABLE_PLUGINS' in os.environ)"
    )
    env = {k: v for k, v in os.environ.items() if "PYDANTIC" not in k}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["False", "module", "__all__", "False"], out.stderr


def test_analyze_without_services_imports_no_service_models(tmp_path):
    """The model classes of a kind are defined when the input holds an object of the kind
    (model.kinds): defining pydantic classes is most of the models' import time, and a
    manifest of pods and policies needs neither the Service, EndpointSlice and Ingress
    classes nor their schemas."""
    (tmp_path / "app.yaml").write_text(
        "kind: Pod\napiVersion: v1\nmetadata: {name: a, namespace: web, labels: {app: a}}\n"
        "spec: {containers: [{name: c, image: x, ports: [{containerPort: 80}]}]}\n---\n"
        "kind: NetworkPolicy\napiVersion: networking.k8s.io/v1\n"
        "metadata: {name: deny, namespace: web}\nspec: {podSelector: {}}\n"
    )
    code = RUN.replace('m.split(".")[0] for m in sys.modules', "sys.modules")
    out = subprocess.run(
        [sys.executable, "-c", code, "analyze", "-f", str(tmp_path), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    modules = set(json.loads(out.stderr.strip().splitlines()[-1]))
    assert json.loads(out.stdout)  # the analysis did run
    assert {"podnet.model.pod", "podnet.model.networkpolicy"} <= modules
    assert (
        modules & {"podnet.model.service", "podnet.model.ingress", "podnet.model.secret"} == set()
    )


SCHEMA_COUNT = """
import collections, io, json, sys, contextlib
import pydantic._internal._generate_schema as g
from pydantic._internal._mock_val_ser import MockCoreSchema
generated = collections.defaultdict(set)  # model -> the schema generations that made it
original = g.GenerateSchema._model_schema
def counting(self, cls):
    schema = cls.__dict__.get("__pydantic_core_schema__")
    if schema is None or isinstance(schema, MockCoreSchema):
        generated[cls.__name__].add(id(self))
    return original(self, cls)
g.GenerateSchema._model_schema = counting
from podnet.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    main(sys.argv[1:])
print(json.dumps({name: len(runs) for name, runs in generated.items()}))
"""


def test_every_model_schema_is_generated_once():
    """Parts of several kinds' models (the metadata, the load balancer status) and models
    that are also built on their own (a default factory's status, the pod template whose
    JSON expansion hashes) are built first (model.kinds), so that pydantic takes their
    schema into every model that holds them instead of generating it again in each: in
    `analyze` of the example, every model's schema is generated once (pydantic's private
    schema generator is counted here; main generated ObjectMeta's 6 times, PodSpec's 3)."""
    out = subprocess.run(
        [sys.executable, "-c", SCHEMA_COUNT, "analyze", "-f", EXAMPLE, "-o", "summary"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    generated = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"Ingress", "Service", "NetworkPolicy", "Workload", "PodSpec"} <= generated.keys()
    assert {model: n for model, n in generated.items() if n != 1} == {}


APPLY_UNUSED = {"pydantic", "numpy", "rich", "pyroute2", "logging", "asyncio", "concurrent"}
APPLY_UNUSED_PODNET = {
    "podnet.model.fastyaml",
    "podnet.model.kinds",
    "podnet.model.load",
    "podnet.state.changes",
    "podnet.state.local_change",
    "podnet.render.topology",
}


def test_apply_path_to_the_daemon_imports_nothing_heavy():
    """What `podnet apply` imports on its way to the daemon (reading the files, the daemon's
    liveness, the request): the daemon parses and validates with its models warm, so the
    CLI loads no pydantic, no model classes and no YAML parser."""
    code = (
        "import json, sys, podnet.cli.main, podnet.cli.apply, podnet.model.manifests, "
        "podnet.daemon.supervisor; "
        "texts = podnet.model.manifests.read_texts([sys.argv[1]]); "
        "[podnet.cli.apply.source(name, text) for name, text in texts]; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, EXAMPLE], capture_output=True, text=True, timeout=60
    )
    modules = set(json.loads(out.stdout))
    assert {m.split(".")[0] for m in modules} & (APPLY_UNUSED | {"yaml", "yaml_rs"}) == set()
    assert modules & APPLY_UNUSED_PODNET == set()


@pytest.mark.datapath
def test_apply_through_the_daemon_imports_nothing_heavy(tmp_path):
    """A fresh `podnet apply` process against a running daemon, by the time it returns
    (the change enforced): none of the validation's modules."""
    import time

    from podnet.testing import live_cluster

    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "a", "labels": {"app": "p"}},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
    }
    with live_cluster(tmp_path, [ns], "imp") as live:
        deadline = time.monotonic() + 20
        while not (live.sdir / "apply.sock").exists():  # opens once the controller is up
            assert time.monotonic() < deadline
            time.sleep(0.05)
        manifest = tmp_path / "p.yaml"
        manifest.write_text(json.dumps(pod))
        code = RUN.replace('m.split(".")[0] for m in sys.modules', "sys.modules")
        out = subprocess.run(
            [sys.executable, "-c", code, "apply", "-f", str(manifest), "--cluster", live.name],
            capture_output=True,
            text=True,
            env={**os.environ, **live.env},
            timeout=120,
        )
        assert out.stdout.strip() == "pod/p created", out.stderr
        modules = set(json.loads(out.stderr.strip().splitlines()[-1]))
        assert "apply of 1 file(s)" in (live.sdir / "daemon.log").read_text()
    assert {m.split(".")[0] for m in modules} & APPLY_UNUSED == set()
    assert modules & APPLY_UNUSED_PODNET == set()
