"""The package structure holds: data flows down (docs/architecture.md), and every module
name can be found with grep. A new import that crosses a layer upwards fails here, naming the
module and the import."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "podnet"

# What each package may import from podnet (besides itself). Pure layers first.
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "state": {"model"},
    "policy": {"model", "state"},
    "nftables": set(),
    "render": {"model", "state", "policy", "nftables"},
    "report": {"model", "state", "policy"},
    "datapath": {"render", "nftables"},
    "controller": {"model", "state", "policy", "nftables", "render", "datapath"},
    "workload": {"model", "state", "render", "datapath"},
    "probing": {"policy", "datapath"},
    "enter": {"state", "render", "datapath"},
    "dns": {"state", "render", "datapath"},
    "daemon": {"state", "render", "controller", "workload"},
    # reads the store, the daemon's status files, the nft counters and the flow history
    "dashboard": {"model", "state", "policy", "render", "report", "datapath", "daemon", "flowlog"},
    "tracing": {"model", "policy", "render", "datapath", "probing"},
    "doctor": {
        "model",
        "state",
        "policy",
        "nftables",
        "render",
        "datapath",
        "controller",
        "probing",
        "daemon",
    },
    "flowlog": {"model", "state", "policy", "render", "datapath"},
    "cli": {
        "model",
        "state",
        "policy",
        "render",
        "report",
        "datapath",
        "controller",
        "probing",
        "enter",
        "daemon",
        "dashboard",
        "tracing",
        "doctor",
        "flowlog",
    },
}
# The CLI, the dashboard, and doctor (which checks and restarts it) talk to the daemon through
# its supervisor only.
CLI_DAEMON_MODULES = {"podnet.daemon.supervisor"}
TOP_LEVEL = {"__init__.py", "__main__.py"}
# Top-level modules every package may import: they import nothing of podnet.
LEAVES = {"__version__", "startup"}


def test_leaves_import_nothing_of_podnet() -> None:
    assert _imports(SRC / "startup.py") == []


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return [m for m in out if m.startswith("podnet.")]


def _modules() -> list[tuple[str, Path]]:
    return [
        (p.relative_to(SRC).parts[0], p)
        for p in sorted(SRC.rglob("*.py"))
        if len(p.relative_to(SRC).parts) > 1 and p.relative_to(SRC).parts[0] != "testing"
    ]


def test_every_package_is_known():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages - {"testing"} <= set(ALLOWED), "a new package: give it its place in ALLOWED"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_flow_down(package: str) -> None:
    wrong = []
    for pkg, path in _modules():
        if pkg != package:
            continue
        for module in _imports(path):
            target = module.split(".")[1]
            if target in LEAVES or target == package:
                continue
            if target == "testing":
                wrong.append(f"{path.relative_to(SRC)}: {module} (test helpers in production)")
            elif target not in ALLOWED[package]:
                wrong.append(f"{path.relative_to(SRC)}: {module}")
            elif (
                package in ("cli", "dashboard", "doctor")
                and target == "daemon"
                and not any(module.startswith(m) for m in CLI_DAEMON_MODULES)
            ):
                wrong.append(f"{path.relative_to(SRC)}: {module} (daemon internals)")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_module_names_are_unique() -> None:
    names = Counter(p.name for p in SRC.rglob("*.py") if p.name not in TOP_LEVEL)
    assert [n for n, count in names.items() if count > 1] == []
