"""Ingress, IngressClass and Secret validation: one line per problem naming the object and
the field (model.ingress, model.secret, state.ingress_checks)."""

from __future__ import annotations

from typing import Any

import pytest

from podnet.model.errors import InputError
from podnet.state import ingress_checks
from podnet.testing import backend, cluster, ingress, namespace, rule, service

WEB = [namespace("web"), service("web/s0", {"app": "s0"}, [{"name": "http", "port": 80}])]


def _error(*docs: dict[str, Any]) -> str:
    with pytest.raises(InputError) as e:
        ingress_checks.check(cluster(*WEB, *docs))
    return str(e.value)


def _path(**fields: Any) -> dict[str, Any]:
    return ingress("web/i", [{"host": "a.test", "http": {"paths": [fields]}}])


CASES = [
    (
        "missing-pathtype",
        _path(path="/", backend=backend("s0")),
        "spec.rules[0].http.paths[0]: pathType: Required value",
    ),
    (
        "relative-path",
        _path(path="api", pathType="Prefix", backend=backend("s0")),
        "path: Invalid value: 'api': must be an absolute path",
    ),
    (
        "resource-backend",
        _path(
            path="/",
            pathType="Prefix",
            backend={"resource": {"apiGroup": "k8s.example.com", "kind": "Bucket", "name": "b"}},
        ),
        "backend: resource: Unsupported value: podnet's ingress controller routes to Services only",
    ),
    (
        "unknown-service",
        ingress("web/i", [rule("a.test", ("/", "Prefix", "nope"))]),
        'spec.rules[0].http.paths[0].backend.service.name: Not found: Service "nope" in namespace "web"',
    ),
    (
        "unknown-port-number",
        ingress("web/i", [rule("a.test", ("/", "Prefix", "s0", 8080))]),
        "backend.service.port: Not found: Service web/s0 has no TCP port 8080 (its TCP ports: 80 (http))",
    ),
    (
        "unknown-port-name",
        ingress("web/i", [rule("a.test", ("/", "Prefix", "s0", "grpc"))]),
        "has no TCP port 'grpc'",
    ),
    (
        "unknown-default-backend",
        ingress("web/i", defaultBackend=backend("gone")),
        'spec.defaultBackend.service.name: Not found: Service "gone"',
    ),
    (
        "nothing-to-route",
        ingress("web/i"),
        "either `defaultBackend` or `rules` must be specified",
    ),
    (
        "wildcard-inside",
        ingress("web/i", [rule("a.*.test", ("/", "Prefix", "s0"))]),
        "a wildcard is allowed only as the first label",
    ),
    (
        "port-name-and-number",
        _path(
            path="/",
            pathType="Prefix",
            backend={"service": {"name": "s0", "port": {"name": "http", "number": 80}}},
        ),
        "exactly one of port.name and port.number is required",
    ),
    (
        "tls-secret-without-key",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "t", "namespace": "web"},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": "AAAA"},
        },
        "Secret web/t: data[tls.key]: Required value: for type kubernetes.io/tls",
    ),
    (
        "secret-bad-base64",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "t", "namespace": "web"},
            "data": {"x": "not base64!"},
        },
        "illegal base64 data",
    ),
    (
        "class-controller-not-a-path",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": "c"},
            "spec": {"controller": "nginx"},
        },
        "IngressClass c: spec.controller: Invalid value: 'nginx': must be a domain-prefixed path",
    ),
]


@pytest.mark.parametrize(("doc", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_input_is_one_line_naming_object_and_field(
    doc: dict[str, Any], message: str
) -> None:
    text = _error(doc)
    assert message in text
    assert "test.yaml[" in text
    assert len(text.splitlines()) == 1


def test_valid_ingress_passes_and_string_data_is_merged() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "t", "namespace": "web"},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": "crt", "tls.key": "key"},
    }
    c = cluster(*WEB, secret, ingress("web/i", [rule("*.a.test", ("/", "Prefix", "s0", "http"))]))
    ingress_checks.check(c)
    assert c.secrets[0].value("tls.key") == b"key"


def test_several_default_classes_refuse_an_ingress_without_class() -> None:
    classes = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {
                "name": n,
                "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"},
            },
            "spec": {"controller": "k8s.io/ingress-nginx"},
        }
        for n in ("a", "b")
    ]
    text = _error(*classes, ingress("web/i", [rule("a.test", ("/", "Prefix", "s0"))]))
    assert "spec.ingressClassName: Required value: several IngressClasses" in text
