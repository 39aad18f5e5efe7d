"""Real clusters for live tests: `podnet up` of a test's manifests through the CLI, under a
unique name and a private state directory, and always `podnet down` afterwards.

Tests of the daemon, the workload stand-in, `exec` and `probe` all run against clusters
built this way, so that they exercise the one path users take (store -> reconciler ->
kernel -> runtime.json -> daemon), never namespaces wired by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from podnet.state.files import STATE_DIR_ENV


@dataclass(frozen=True)
class Live:
    """A running cluster: its name, its state directory, the environment in which
    `podnet --cluster <name>` finds it, and a directory for the test's manifests."""

    name: str
    sdir: Path
    env: dict[str, str]
    tmp: Path

    def runtime(self) -> dict[str, Any]:
        """runtime.json as the reconciler last wrote it."""
        return dict(json.loads((self.sdir / "runtime.json").read_text()))

    def pod(self, key: str) -> dict[str, Any]:
        """The runtime.json entry of pod `ns/name`."""
        for p in self.runtime()["pods"]:
            if f"{p['namespace']}/{p['name']}" == key:
                return dict(p)
        raise KeyError(f"no pod {key} in cluster {self.name}")

    def pod_ips(self) -> dict[str, str]:
        return {f"{p['namespace']}/{p['name']}": p["ip"] for p in self.runtime()["pods"]}

    def node_netns(self) -> dict[str, str]:
        return {n["name"]: n["netns"] for n in self.runtime()["nodes"]}

    def node_ips(self) -> dict[str, str]:
        return {n["name"]: n["ip"] for n in self.runtime()["nodes"]}

    def cli(self, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        """`podnet COMMAND --cluster NAME ARGS...` in a child process."""
        from podnet.testing._live import podnet

        return podnet(command, "--cluster", self.name, *args, env=self.env)

    def apply(self, docs: Sequence[dict[str, Any]]) -> str:
        """`podnet apply -f` of `docs` (returns once the cluster enforces them); its output."""
        manifest = self.tmp / f"{self.name}-apply.yaml"
        manifest.write_text(yaml.safe_dump_all(list(docs)))
        out = self.cli("apply", "-f", str(manifest))
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout


@contextmanager
def live_cluster(
    tmp: Path,
    docs: Sequence[dict[str, Any]],
    prefix: str,
    nodes: int = 2,
    up_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> Iterator[Live]:
    """`podnet up` of `docs` under a unique name and a private state directory (`up_args`
    e.g. `--no-daemon`; `env` extra variables for the CLI and so for the daemon it starts);
    on exit, even after a failure, `podnet down` and a check that no namespace of it is left.
    PODNET_STATE_DIR is set in this process too, for in-process calls."""
    from podnet.datapath import netns
    from podnet.render import kernel_names
    from podnet.testing._live import podnet, unique_cluster

    name = unique_cluster(prefix)
    state = tmp / "state"
    cli_env = {**(env or {}), STATE_DIR_ENV: str(state)}
    manifest = tmp / f"{name}.yaml"
    manifest.write_text(yaml.safe_dump_all(list(docs)))
    old = os.environ.get(STATE_DIR_ENV)
    os.environ[STATE_DIR_ENV] = str(state)
    try:
        up = podnet(
            "up",
            "-f",
            str(manifest),
            "--cluster",
            name,
            "--nodes",
            str(nodes),
            *up_args,
            env=cli_env,
        )
        assert up.returncode == 0, up.stdout + up.stderr
        yield Live(name, state / name, cli_env, tmp)
    finally:
        podnet("down", "--cluster", name, env=cli_env)
        if old is None:
            os.environ.pop(STATE_DIR_ENV, None)
        else:
            os.environ[STATE_DIR_ENV] = old
        assert netns.listing(kernel_names.netns_prefix(name)) == []
