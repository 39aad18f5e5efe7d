"""Bad input: one clear line per problem naming file, document, object and field; exit 2;
nothing printed on stdout."""

from __future__ import annotations

from pathlib import Path

import pytest

from podnet.cli.main import main

NS = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"


def policy(spec: str, name: str = "p") -> str:
    body = "\n".join("  " + line for line in spec.strip("\n").splitlines())
    return f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: x}}\nspec:\n{body}\n"


def pod(spec: str, labels: str = "{}") -> str:
    body = "\n".join("  " + line for line in spec.strip("\n").splitlines())
    return f"apiVersion: v1\nkind: Pod\nmetadata: {{name: a, namespace: x, labels: {labels}}}\nspec:\n{body}\n"


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *docs: str) -> tuple[int, str, str]:
    f = tmp_path / "input.yaml"
    f.write_text("---\n".join([NS, *docs]))
    code = main(["analyze", "-f", str(f), "-o", "json"])
    out, err = capsys.readouterr()
    return code, out, err.replace(str(f), "input.yaml")


INGRESS_PORT = "podSelector: {}\ningress:\n- ports:\n  - {port: 80}\n  - %s\n"
PEER = "podSelector: {}\ningress:\n- from:\n  - %s\n"

CASES = [
    (
        "endport-below-port",
        policy(INGRESS_PORT % "{port: 80, endPort: 70}"),
        "input.yaml[1] NetworkPolicy x/p: spec.ingress[0].ports[1].endPort: 70 must be >= port 80",
    ),
    (
        "endport-with-named-port",
        policy(INGRESS_PORT % "{port: http, endPort: 90}"),
        "spec.ingress[0].ports[1].endPort: may not be specified when `port` is non-numeric",
    ),
    (
        "endport-without-port",
        policy(INGRESS_PORT % "{endPort: 90}"),
        "spec.ingress[0].ports[1].endPort: may not be specified when `port` is not specified",
    ),
    (
        "port-zero",
        policy(INGRESS_PORT % "{port: 0}"),
        "spec.ingress[0].ports[1].port: invalid port 0",
    ),
    (
        "port-too-big",
        policy(INGRESS_PORT % "{port: 70000}"),
        "spec.ingress[0].ports[1].port: invalid port 70000",
    ),
    (
        "port-number-as-string",
        policy(INGRESS_PORT % '{port: "80"}'),
        "spec.ingress[0].ports[1].port: invalid port name '80': must contain at least one letter",
    ),
    (
        "port-name-too-long",
        policy(INGRESS_PORT % "{port: abcdefghijklmnop}"),
        "invalid port name 'abcdefghijklmnop': must be no more than 15 characters",
    ),
    (
        "port-name-uppercase",
        policy(INGRESS_PORT % "{port: HTTP}"),
        "invalid port name 'HTTP': must contain only lowercase alphanumeric characters or '-'",
    ),
    (
        "port-name-double-hyphen",
        policy(INGRESS_PORT % "{port: a--b}"),
        "must not contain consecutive hyphens",
    ),
    (
        "port-name-leading-hyphen",
        policy(INGRESS_PORT % "{port: -ab}"),
        "must not begin or end with a hyphen",
    ),
    (
        "protocol-lowercase",
        policy(INGRESS_PORT % "{port: 80, protocol: tcp}"),
        "spec.ingress[0].ports[1].protocol: String should match pattern",
    ),
    (
        "protocol-icmp",
        policy(INGRESS_PORT % "{protocol: ICMP}"),
        "spec.ingress[0].ports[1].protocol",
    ),
    (
        "unknown-field-typo",
        policy("podSelector: {}\ningres: []\n"),
        "input.yaml[1] NetworkPolicy x/p: spec.ingres: unknown field",
    ),
    (
        "unknown-peer-field",
        policy(PEER % "{namespaceSelecter: {}}"),
        "spec.ingress[0].from[0].namespaceSelecter: unknown field",
    ),
    ("empty-peer", policy(PEER % "{}"), "spec.ingress[0].from[0]: must specify a peer"),
    (
        "ipblock-with-selector",
        policy(PEER % "{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}"),
        "spec.ingress[0].from[0]: may not specify more than 1 peer type",
    ),
    (
        "cidr-invalid",
        policy(PEER % "{ipBlock: {cidr: 10.0.0.300/8}}"),
        "spec.ingress[0].from[0].ipBlock.cidr:",
    ),
    (
        "cidr-without-prefix",
        policy(PEER % "{ipBlock: {cidr: 10.0.0.1}}"),
        "spec.ingress[0].from[0].ipBlock.cidr: invalid CIDR '10.0.0.1': must be an address and a prefix length",
    ),
    (
        "except-outside-cidr",
        policy(PEER % "{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.1.0/24, 10.1.0.0/24]}}"),
        "spec.ingress[0].from[0].ipBlock.except[1]: 10.1.0.0/24 must be a strict subset of cidr 10.0.0.0/16",
    ),
    (
        "except-equal-cidr",
        policy(PEER % "{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.0.0/16]}}"),
        "ipBlock.except[0]: 10.0.0.0/16 must be a strict subset of cidr 10.0.0.0/16",
    ),
    (
        "selector-bad-operator",
        policy("podSelector: {matchExpressions: [{key: app, operator: Equals, values: [a]}]}"),
        "spec.podSelector.matchExpressions[0].operator: Input should be 'In', 'NotIn', 'Exists' or 'DoesNotExist'",
    ),
    (
        "selector-in-without-values",
        policy("podSelector: {matchExpressions: [{key: app, operator: In}]}"),
        "spec.podSelector.matchExpressions[0]: values: must be specified when `operator` is 'In'",
    ),
    (
        "selector-exists-with-values",
        policy("podSelector: {matchExpressions: [{key: app, operator: Exists, values: [a]}]}"),
        "values: may not be specified when `operator` is 'Exists'",
    ),
    (
        "selector-bad-value",
        policy("podSelector: {matchLabels: {app: 'a b'}}"),
        "spec.podSelector.matchLabels: invalid label value 'a b'",
    ),
    (
        "selector-bad-key",
        policy("podSelector: {matchLabels: {'-app': a}}"),
        "invalid label key '-app'",
    ),
    (
        "policy-type-unknown",
        policy("podSelector: {}\npolicyTypes: [Ingres]\n"),
        "spec.policyTypes[0]: Input should be 'Ingress' or 'Egress'",
    ),
    (
        "label-value-bool",
        pod("containers: [{name: c}]", labels="{enabled: true}"),
        "input.yaml[1] Pod x/a: metadata.labels.enabled: Input should be a valid string",
    ),
    (
        "label-value-too-long",
        pod("containers: [{name: c}]", labels="{app: " + "a" * 64 + "}"),
        "must be no more than 63 characters",
    ),
    (
        "label-key-prefix",
        pod("containers: [{name: c}]", labels="{'Example.com/app': a}"),
        "invalid label key 'Example.com/app'",
    ),
    (
        "container-port-range",
        pod("containers: [{name: c, ports: [{containerPort: 65536}]}]"),
        "spec.containers[0].ports[0].containerPort: invalid port 65536",
    ),
    (
        "container-port-name",
        pod("containers: [{name: c, ports: [{name: web_1, containerPort: 80}]}]"),
        "spec.containers[0].ports[0].name: invalid port name 'web_1'",
    ),
    (
        "container-port-protocol",
        pod("containers: [{name: c, ports: [{containerPort: 80, protocol: HTTP}]}]"),
        "spec.containers[0].ports[0].protocol",
    ),
    (
        "missing-name",
        "apiVersion: v1\nkind: Pod\nmetadata: {namespace: x}\n",
        "input.yaml[1] Pod x/?: metadata.name: Required value",
    ),
    (
        "missing-kind",
        "apiVersion: v1\nmetadata: {name: a}\n",
        "input.yaml[1]: kind: Required value",
    ),
    ("not-an-object", "- a\n- b\n", "input.yaml[1]: expected an object, found list"),
    (
        "duplicate",
        pod("containers: [{name: c}]") + "---\n" + pod("containers: [{name: c}]"),
        "input.yaml[2] Pod x/a: duplicate object (first defined at input.yaml[1])",
    ),
]


@pytest.mark.parametrize(("doc", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_names_file_object_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: str, expected: str
) -> None:
    code, out, err = run(tmp_path, capsys, doc)
    assert code == 2
    assert out == "", "no partial result"
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert lines, err
    assert any(expected in line for line in lines), err


def test_every_problem_is_reported_once_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        tmp_path,
        capsys,
        policy(INGRESS_PORT % "{port: 80, endPort: 70}"),
        policy(PEER % "{}", name="q"),
    )
    assert code == 2
    assert len(err.strip().splitlines()) == 2


def test_invalid_yaml_reports_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [a\n")
    code = main(["analyze", "-f", str(f)])
    _, err = capsys.readouterr()
    assert code == 2
    assert f"{f}:5:1: invalid YAML" in err


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "-f", "/nonexistent/x.yaml"]) == 2
    assert "/nonexistent/x.yaml: no such file or directory" in capsys.readouterr().err


def test_cidr_with_host_bits_is_accepted_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(tmp_path, capsys, policy(PEER % "{ipBlock: {cidr: 10.0.0.1/8}}"))
    assert code == 0 and out
    assert (
        "warning: input.yaml[1] NetworkPolicy x/p: CIDR 10.0.0.1/8 has host bits set; it means 10.0.0.0/8"
        in err
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--ports", "80/ICMP"], "--ports: 80/ICMP: protocol must be one of TCP, UDP, SCTP"),
        (["--ports", "0"], "--ports: 0: ports must be 1..65535"),
        (["--from", "nope/*"], "--from: 'nope/*' matches no pod"),
        (["--to", "10.0.0.300"], "--to: '10.0.0.300' is not an IP address or CIDR"),
        (["--to", "10.0.0.0/8"], "an outside destination has no declared ports: give --ports"),
    ],
    ids=[
        "bad-protocol",
        "bad-port",
        "selection-matches-nothing",
        "bad-address",
        "outside-without-ports",
    ],
)
def test_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    f = tmp_path / "ok.yaml"
    f.write_text(NS + "---\n" + pod("containers: [{name: c, ports: [{containerPort: 80}]}]"))
    assert main(["analyze", "-f", str(f), *args]) == 2
    assert expected in capsys.readouterr().err
