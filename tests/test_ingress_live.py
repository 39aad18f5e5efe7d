"""The ingress controller on a live cluster: real HTTP(S) requests from the `internet`
namespace to the controller's LoadBalancer address, through nginx in its pod, to the pods
(docs/ingress.md). The rows of the documentation's tables are the same as in
tests/test_ingress_routes.py (podnet.testing.PATH_ROWS, HOST_ROWS).

One cluster for the module; the tests that change it run last."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podnet.testing import (
    HOST_ROWS,
    PATH_ROWS,
    Live,
    PathRow,
    ingress,
    live_cluster,
    namespace,
    pod,
    policy,
    rule,
    service,
)

pytestmark = pytest.mark.datapath

INTERNET = "203.0.113.2"


def _tls_secret(tmp: Path, name: str, cn: str) -> dict[str, Any]:
    key, crt = tmp / f"{name}.key", tmp / f"{name}.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", f"/CN={cn}", "-addext", f"subjectAltName=DNS:{cn}",
         "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True,
    )  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "web"},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(crt.read_bytes()).decode(),
            "tls.key": base64.b64encode(key.read_bytes()).decode(),
        },
    }


def _row_ingress(i: int, row: PathRow) -> dict[str, Any]:
    paths = [(p, kind, f"s{j}") for j, (p, kind) in enumerate(row.paths)]
    return ingress(f"web/row{i:02d}", [rule(f"row{i:02d}.paths.test", *paths)])


def _docs(tmp: Path) -> list[dict[str, Any]]:
    http = [{"name": "http", "containerPort": 8080}]
    docs: list[dict[str, Any]] = [namespace("web"), namespace("client")]
    for i in range(3):
        docs.append(pod(f"web/s{i}", {"app": f"s{i}"}, http))
        docs.append(
            service(
                f"web/s{i}", {"app": f"s{i}"}, [{"name": "http", "port": 80, "targetPort": "http"}]
            )
        )
    multi = []
    for name in ("m1", "m2"):
        p = pod(f"web/{name}", {"app": "multi"}, http)
        p["spec"]["containers"][0]["readinessProbe"] = {
            "tcpSocket": {"port": 8080},
            "periodSeconds": 1,
            "failureThreshold": 1,
        }
        multi.append(p)
    docs += multi
    docs.append(
        service("web/multi", {"app": "multi"}, [{"name": "http", "port": 80, "targetPort": 8080}])
    )
    docs.append(pod("client/c", {"app": "c"}, http))
    docs += [_row_ingress(i, row) for i, row in enumerate(PATH_ROWS)]
    docs.append(ingress("web/hosts", [
        rule("*.foo.com", ("/", "Prefix", "s0")),
        rule("exact.foo.com", ("/", "Prefix", "s1", "http")),
        rule(None, ("/hostless", "Exact", "s2")),
        rule("multi.test", ("/", "Prefix", "multi")),
    ]))  # fmt: skip
    docs.append({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": "other"}, "spec": {"controller": "example.com/other"},
    })  # fmt: skip
    docs.append(
        ingress("web/theirs", [rule("theirs.test", ("/", "Prefix", "s0"))], class_name="other")
    )
    docs.append(_tls_secret(tmp, "secure-tls", "secure.test"))
    docs.append(ingress(
        "web/tls",
        [rule(h, ("/", "Prefix", "s1")) for h in ("secure.test", "broken.test")],
        tls=[{"hosts": ["secure.test"], "secretName": "secure-tls"},
             {"hosts": ["broken.test"], "secretName": "missing-tls"}],
    ))  # fmt: skip
    return docs


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("ingress")
    with live_cluster(tmp, _docs(tmp), "ing", nodes=2) as c:
        yield c


def curl(live: Live, url: str, *args: str) -> dict[str, Any]:
    out = live.cli("curl", "-o", "json", *args, url)
    doc = json.loads(out.stdout)
    assert isinstance(doc, dict)
    return doc


def served_by(live: Live, url: str, *args: str) -> str | int:
    """The pod that answered, or the HTTP status when nginx answered itself."""
    doc = curl(live, url, *args)
    if doc["status"] == 200:
        return str(json.loads(doc["body"])["pod"])
    return int(doc["status"] or 0)


def lb(live: Live) -> str:
    out = live.cli(
        "get", "services", "ingress-nginx-controller", "-n", "ingress-nginx", "-o", "json"
    )
    return str(json.loads(out.stdout)["status"]["loadBalancer"]["ingress"][0]["ip"])


def test_controller_pod_and_service_are_in_the_cluster(live: Live) -> None:
    pods = live.cli("get", "pods", "-n", "ingress-nginx").stdout
    assert "ingress-nginx-controller-" in pods and "Running" in pods
    assert lb(live).startswith("172.18.255.")


def test_get_ingress_shows_class_hosts_address_ports(live: Live) -> None:
    out = live.cli("get", "ingress", "-n", "web").stdout.splitlines()
    assert out[0].split() == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    rows = {line.split()[0]: line for line in out[1:]}
    assert lb(live) in rows["tls"] and "80, 443" in rows["tls"]
    assert "*.foo.com,exact.foo.com,*,multi.test" in rows["hosts"]
    # another controller's Ingress gets no address from us
    assert lb(live) not in rows["theirs"] and "other" in rows["theirs"]


@pytest.mark.parametrize("i", range(len(PATH_ROWS)), ids=[r.id for r in PATH_ROWS])
def test_documentation_path_table(live: Live, i: int) -> None:
    row = PATH_ROWS[i]
    got = served_by(live, f"http://row{i:02d}.paths.test{row.request}")
    assert got == (404 if row.expected is None else f"s{row.expected}")


@pytest.mark.parametrize(("rule_host", "host", "matches"), HOST_ROWS)
def test_documentation_host_wildcards(live: Live, rule_host: str, host: str, matches: bool) -> None:
    assert served_by(live, f"http://{host}/") == ("s0" if matches else 404)


def test_exact_host_beats_wildcard_and_host_header_is_honoured(live: Live) -> None:
    assert served_by(live, "http://exact.foo.com/") == "s1"
    assert served_by(live, f"http://{lb(live)}/", "-H", "Host: exact.foo.com") == "s1"


def test_hostless_rule_and_404_for_unknown_hosts(live: Live) -> None:
    assert served_by(live, "http://nobody.test/hostless") == "s2"
    doc = curl(live, "http://nobody.test/other")
    assert doc["status"] == 404


def test_another_controllers_ingress_is_not_served(live: Live) -> None:
    assert served_by(live, "http://theirs.test/") == 404


def test_headers_reach_the_pod(live: Live) -> None:
    doc = curl(live, "http://exact.foo.com/some/path?q=1")
    body = json.loads(doc["body"])
    h = body["headers"]
    assert h["Host"] == "exact.foo.com"
    assert h["X-Forwarded-For"] == INTERNET and h["X-Real-IP"] == INTERNET
    assert h["X-Forwarded-Proto"] == "http"
    assert body["path"] == "/some/path?q=1"
    https = json.loads(curl(live, "https://secure.test/", "-k")["body"])
    assert https["headers"]["X-Forwarded-Proto"] == "https"


def _subject(live: Live, host: str) -> str:
    out = live.cli(
        "exec", "internet", "--", "sh", "-c",
        f"openssl s_client -connect {lb(live)}:443 -servername {host} </dev/null 2>/dev/null "
        "| openssl x509 -noout -subject",
    )  # fmt: skip
    return out.stdout.strip()


def test_tls_sni_per_host_and_default_certificate_for_a_missing_secret(live: Live) -> None:
    assert "CN = secure.test" in _subject(live, "secure.test")
    assert "Fake Certificate" in _subject(live, "broken.test")
    assert served_by(live, "https://broken.test/", "-k") == "s1"
    # verified against the Secret's own certificate: the chain is the one we gave
    status = json.loads((live.sdir / "ingress" / "status.json").read_text())
    assert any("web/missing-tls" in p and "not found" in p for p in status["problems"])


def test_probe_knows_the_ingress_pod(live: Live) -> None:
    out = live.cli("probe")
    assert out.returncode == 0, out.stdout + out.stderr


def test_invalid_ingress_is_refused_and_nothing_changes(live: Live) -> None:
    before = live.cli("get", "ingress", "-A", "-o", "json").stdout
    bad = live.tmp / "bad.yaml"
    bad.write_text(json.dumps(ingress("web/bad", [rule("bad.test", ("/", "Prefix", "nope"))])))
    out = live.cli("apply", "-f", str(bad))
    assert out.returncode == 2
    assert 'backend.service.name: Not found: Service "nope"' in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert live.cli("get", "ingress", "-A", "-o", "json").stdout == before


def test_apply_returns_once_nginx_serves_the_change(live: Live) -> None:
    """`apply` (and `up`) wait for the status nginx_child writes after the reload took
    effect: by then no worker of the previous configuration accepts connections, and the
    new host answers at once, from every connection."""
    from podnet.daemon import procs

    master = json.loads((live.sdir / "ingress" / "status.json").read_text())["pid"]
    before = {pid for pid, accepting in procs.nginx_workers(master).items() if accepting}
    assert before, "nginx has no accepting worker"
    src = live.tmp / "fresh.yaml"
    src.write_text(json.dumps(ingress("web/fresh", [rule("fresh.test", ("/", "Prefix", "s2"))])))
    out = live.cli("apply", "-f", str(src))
    assert out.returncode == 0, out.stderr
    after = {pid for pid, accepting in procs.nginx_workers(master).items() if accepting}
    assert after and not after & before, f"old workers still accept: {after & before}"
    internet = live.runtime()["internet"]["netns"]
    urls = [a for i in range(20) for a in ("-o", "/dev/null", f"http://{lb(live)}/?{i}")]
    answers = subprocess.run(
        ["ip", "netns", "exec", internet, "curl", "-s", "-w", "%{http_code} ", "--parallel",
         "--parallel-immediate", "-H", "Host: fresh.test", *urls],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert answers == ["200"] * 20
    status = json.loads((live.sdir / "ingress" / "status.json").read_text())
    assert status["timings"]["reload"] > 0
    # The reload itself, checked the instant it returns (the CLI's exit above leaves time).
    from podnet.daemon.nginx_child import NginxChild

    for _ in range(3):
        before = {pid for pid, accepting in procs.nginx_workers(master).items() if accepting}
        NginxChild(live.sdir, live.name).reload(master)
        after = {pid for pid, accepting in procs.nginx_workers(master).items() if accepting}
        assert after and not after & before, f"old workers still accept: {after & before}"


def test_a_configuration_nginx_refuses_never_replaces_the_working_one(live: Live) -> None:
    from podnet.controller.ingress_controller import Desired
    from podnet.daemon.nginx_child import NginxChild

    child = NginxChild(live.sdir, live.name)
    conf = (live.sdir / "ingress" / "nginx.conf").read_text()
    broken = Desired(
        conf.replace("worker_processes 1;", "worker_processes one;"), {}, (), "", "", 0
    )
    assert child.prepare(broken) is False
    assert "nginx -t refused" in (child.error or "")
    assert (live.sdir / "ingress" / "nginx.conf").read_text() == conf
    assert served_by(live, "http://exact.foo.com/") == "s1"


WATCH = r"""
import json, socket, sys, time
ip, seconds = sys.argv[1], float(sys.argv[2])
end = time.time() + seconds
while time.time() < end:
    try:
        s = socket.create_connection((ip, 80), timeout=2)
        s.sendall(b"GET / HTTP/1.1\r\nHost: multi.test\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        pod = json.loads(body)["pod"] if head.startswith(b"HTTP/1.1 200") else head[:12].decode()
    except OSError as e:
        pod = type(e).__name__
    print(json.dumps([time.time(), pod]), flush=True)
"""


def test_an_unready_pod_leaves_the_upstream_within_a_second(live: Live) -> None:
    internet = live.runtime()["internet"]["netns"]
    proc = subprocess.Popen(
        ["ip", "netns", "exec", internet, "python3", "-c", WATCH, lb(live), "6"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.0)
        assert live.cli("serve", "web/m1", "--stop", "8080/TCP").returncode == 0
        readiness = live.sdir / "readiness.json"
        unready_at = None
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                if json.loads(readiness.read_text()).get("web/m1") is False:
                    unready_at = time.time()
                    break
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.01)
        assert unready_at is not None, "the kubelet never marked web/m1 unready"
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
        live.cli("serve", "web/m1", "--start", "8080/TCP")
    seen = [json.loads(line) for line in out.splitlines()]
    after = [(t, p) for t, p in seen if t > unready_at]
    last_m1 = max((t for t, p in after if p == "m1"), default=unready_at)
    assert last_m1 - unready_at < 1.0, f"web/m1 served {last_m1 - unready_at:.2f}s after unready"
    assert any(p == "m2" for t, p in after if t > unready_at + 1.0)
    print(f"web/m1 left the upstream {last_m1 - unready_at:.3f}s after it became unready")


def test_policy_admitting_only_the_ingress_namespace(live: Live) -> None:
    only_ingress = policy("web/only-ingress", {
        "podSelector": {},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]}],
    })  # fmt: skip
    live.apply([only_ingress])
    try:
        assert served_by(live, "http://exact.foo.com/") == "s1"
        s1 = live.pod_ips()["web/s1"]
        direct = live.cli("curl", "--from", "client/c", "--max-time", "2", f"http://{s1}:8080/")
        assert direct.returncode != 0
        out = live.cli("probe")
        assert out.returncode == 0, out.stdout + out.stderr
    finally:
        live.cli("delete", "networkpolicy", "only-ingress", "-n", "web")


def test_twenty_reloads_under_load_fail_no_request(live: Live) -> None:
    """20 graceful reloads (SIGHUP, each after the previous one took effect) while wrk
    sends requests, each on its own connection: no request fails. (Idle keep-alive
    connections are closed by the old workers at a reload, and a request sent on one at
    that very moment is lost, as with any HTTP server; clients retry those, RFC 9112 9.3.1.
    bench/ingress_bench.py measures that case too.)"""
    internet = live.runtime()["internet"]["netns"]
    status = json.loads((live.sdir / "ingress" / "status.json").read_text())
    master = status["pid"]
    errors = live.sdir / "ingress" / "error.log"

    def reloads() -> int:
        return errors.read_text().count("reconfiguring")

    before = reloads()
    wrk = subprocess.Popen(
        ["ip", "netns", "exec", internet, "wrk", "-t1", "-c8", "-d10s",
         "-H", "Host: exact.foo.com", "-H", "Connection: close", f"http://{lb(live)}/"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(1.0)
    for n in range(1, 21):
        os.kill(master, signal.SIGHUP)
        deadline = time.monotonic() + 5
        while reloads() - before < n and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
    out, _ = wrk.communicate(timeout=60)
    print(out)
    assert wrk.returncode == 0
    assert reloads() - before >= 20  # the daemon may reload too (endpoint changes)
    assert "Socket errors" not in out, out
    assert "Non-2xx" not in out, out
    assert "requests in" in out
