"""The Ingress semantics, pure (render.ingress_routes, render.nginx_conf): every row of the
documentation's path and host tables, precedence, classes, backends, TLS problems, and the
nginx.conf golden file. tests/test_ingress_live.py sends the same rows through nginx.

Regenerate the golden file with PODNET_UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from podnet.model.ingress import HTTPIngressPath
from podnet.render.ingress_routes import CATCH_ALL, IngressPlan, build, host_matches, path_matches
from podnet.render.nginx_conf import render, server_name
from podnet.state.endpoint_slices import desired, pod_views
from podnet.state.ingress_addon import with_ingress_controller
from podnet.state.ingress_classes import served
from podnet.state.network import NetworkConfig
from podnet.state.placement import place
from podnet.state.service_alloc import with_services
from podnet.testing import (
    HOST_ROWS,
    PATH_ROWS,
    PathRow,
    backend,
    cluster,
    ingress,
    namespace,
    pod,
    route,
    rule,
    service,
)

GOLDEN = Path(__file__).parent / "golden" / "ingress"


def _path(p: str, kind: str) -> HTTPIngressPath:
    return HTTPIngressPath.model_validate({"path": p, "pathType": kind, "backend": backend("s0")})


@pytest.mark.parametrize("row", PATH_ROWS, ids=lambda r: r.id)
def test_documentation_path_table_one_path(row: PathRow) -> None:
    """Each path alone: does it match the request (the table's Matches? column)."""
    if len(row.paths) == 1:
        ((p, kind),) = row.paths
        assert path_matches(_path(p, kind), row.request) is (row.expected is not None)


def _docs(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [namespace("web")]
    for i in range(3):
        docs.append(pod(f"web/s{i}", {"app": f"s{i}"}, [{"name": "http", "containerPort": 8080}]))
        docs.append(
            service(
                f"web/s{i}", {"app": f"s{i}"}, [{"name": "http", "port": 80, "targetPort": "http"}]
            )
        )
    return docs + list(extra)


def _plan(*docs: dict[str, Any], ready: bool = True) -> IngressPlan:
    c = with_ingress_controller(cluster(*_docs(*docs)))
    net = NetworkConfig()
    c = with_services(c, net)
    placement = place(c, net)
    views = pod_views(c, placement.pod_ip, placement.pod_node, lambda p: ready)
    slices, _ = desired(c, views)
    return build(served(c.ingresses, c.ingress_classes), c.services, slices, c.secrets)


def _row_ingress(row: PathRow) -> dict[str, Any]:
    paths = [(p, kind, f"s{i}") for i, (p, kind) in enumerate(row.paths)]
    return ingress("web/row", [rule("paths.test", *paths)])


@pytest.mark.parametrize("row", PATH_ROWS, ids=lambda r: r.id)
def test_documentation_path_table_with_precedence(row: PathRow) -> None:
    plan = _plan(_row_ingress(row))
    server = next(s for s in plan.servers if s.host == "paths.test")
    chosen = route(server, row.request)
    if row.expected is None:
        assert chosen.backend.status == 404
    else:
        assert chosen.backend.what == f"web/s{row.expected}:80"


@pytest.mark.parametrize(("rule_host", "host", "matches"), HOST_ROWS)
def test_documentation_host_wildcards(rule_host: str, host: str, matches: bool) -> None:
    import re

    assert host_matches(rule_host, host) is matches
    # and nginx's server_name regex says the same
    pattern = server_name(rule_host).strip('"')[1:]
    assert bool(re.match(pattern, host)) is matches


def test_hosts_get_servers_and_hostless_rules_the_catch_all() -> None:
    plan = _plan(
        ingress("web/a", [rule("a.test", ("/", "Prefix", "s0")), rule(None, ("/x", "Exact", "s1"))])
    )
    hosts = {s.host: s for s in plan.servers}
    assert set(hosts) == {"a.test", CATCH_ALL}
    assert route(hosts[CATCH_ALL], "/x").backend.what == "web/s1:80"
    assert route(hosts[CATCH_ALL], "/y").backend.status == 404


def test_default_backend_takes_what_nothing_matches() -> None:
    plan = _plan(
        ingress("web/a", [rule("a.test", ("/app", "Prefix", "s0"))], defaultBackend=backend("s2"))
    )
    hosts = {s.host: s for s in plan.servers}
    assert route(hosts["a.test"], "/other").backend.what == "web/s2:80"
    assert route(hosts[CATCH_ALL], "/").backend.what == "web/s2:80"


def test_port_by_name_and_number_reach_the_same_upstream() -> None:
    plan = _plan(
        ingress(
            "web/a", [rule("a.test", ("/n", "Prefix", "s0", 80), ("/m", "Prefix", "s0", "http"))]
        )
    )
    server = next(s for s in plan.servers if s.host == "a.test")
    assert route(server, "/n").backend == route(server, "/m").backend
    (up,) = plan.upstreams
    assert len(up.servers) == 1 and up.servers[0].endswith(":8080")


def test_no_ready_endpoint_is_503() -> None:
    plan = _plan(ingress("web/a", [rule("a.test", ("/", "Prefix", "s0"))]), ready=False)
    server = next(s for s in plan.servers if s.host == "a.test")
    assert route(server, "/").backend.status == 503


def test_class_selection() -> None:
    other = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": "other"},
        "spec": {"controller": "example.com/other"},
    }
    c = with_ingress_controller(
        cluster(
            *_docs(
                other,
                ingress("web/mine", [rule("a.test", ("/", "Prefix", "s0"))]),
                ingress("web/named", [rule("b.test", ("/", "Prefix", "s0"))], class_name="nginx"),
                ingress("web/theirs", [rule("c.test", ("/", "Prefix", "s0"))], class_name="other"),
                ingress("web/nobody", [rule("d.test", ("/", "Prefix", "s0"))], class_name="gone"),
            )
        )
    )
    assert [i.metadata.name for i in served(c.ingresses, c.ingress_classes)] == ["mine", "named"]


def test_a_default_class_in_the_input_wins_over_the_addons() -> None:
    mine = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {
            "name": "theirs",
            "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"},
        },
        "spec": {"controller": "example.com/other"},
    }
    c = with_ingress_controller(
        cluster(*_docs(mine, ingress("web/a", [rule("a.test", ("/", "Prefix", "s0"))])))
    )
    nginx = next(k for k in c.ingress_classes if k.metadata.name == "nginx")
    assert not nginx.is_default
    assert served(c.ingresses, c.ingress_classes) == []


def test_conflicting_paths_first_ingress_wins_and_is_reported() -> None:
    plan = _plan(
        ingress("web/a", [rule("a.test", ("/x", "Prefix", "s0"))]),
        ingress("web/b", [rule("a.test", ("/x", "Prefix", "s1"))]),
    )
    server = next(s for s in plan.servers if s.host == "a.test")
    assert route(server, "/x/y").backend.what == "web/s0:80"
    assert any("already routed by Ingress web/a" in p for p in plan.problems)


def _secret(name: str, crt: bytes, key: bytes, kind: str = "kubernetes.io/tls") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "web"},
        "type": kind,
        "data": {
            "tls.crt": base64.b64encode(crt).decode(),
            "tls.key": base64.b64encode(key).decode(),
        },
    }


CRT = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


def test_tls_secrets_missing_and_bad_are_reported_and_get_the_default() -> None:
    plan = _plan(
        _secret("good", CRT, KEY),
        _secret("junk", b"not a cert", b"nor a key"),
        ingress(
            "web/a",
            [rule(h, ("/", "Prefix", "s0")) for h in ("good.test", "junk.test", "gone.test")],
            tls=[
                {"hosts": ["good.test"], "secretName": "good"},
                {"hosts": ["junk.test"], "secretName": "junk"},
                {"hosts": ["gone.test"], "secretName": "gone"},
            ],
        ),
    )
    certs = {s.host: s.tls for s in plan.servers}
    assert certs["good.test"].startswith("cert-") and certs["good.test"] in plan.certificates
    assert certs["junk.test"] == certs["gone.test"] == certs[CATCH_ALL] == "default"
    assert (
        _plan(ingress("web/b", [rule("plain.test", ("/", "Prefix", "s0"))])).servers[1].tls is None
    )
    assert any("web/junk" in p and "no PEM" in p for p in plan.problems)
    assert any("web/gone" in p and "not found" in p for p in plan.problems)


def test_nginx_conf_golden() -> None:
    row = next(r for r in PATH_ROWS if r.id == "mixed-prefers-exact")
    plan = _plan(
        _secret("good", CRT, KEY),
        _row_ingress(row),
        ingress(
            "web/site",
            [
                rule("shop.test", ("/", "Prefix", "s0"), ("/api", "Prefix", "s1", "http")),
                rule("*.wild.test", ("/", "ImplementationSpecific", "s2")),
            ],
            tls=[{"hosts": ["shop.test"], "secretName": "good"}],
        ),
    )
    text = render(plan, "/state/ingress")
    golden = GOLDEN / "site.conf"
    if os.environ.get("PODNET_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
