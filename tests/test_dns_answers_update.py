"""The DNS server's reload from the previous answers (dns.answers, `previous=`): only the
records whose lines changed are parsed and answered again, so every answer must equal a
build from scratch of the same text, over random sequences of zones (Services of every
kind coming, changing and going; the serial moving every time)."""

from __future__ import annotations

from typing import Any

import dns.message
import dns.name
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podnet.dns.answers import Answers
from podnet.dns.wire import respond
from podnet.model.service import EndpointSlice, Service
from podnet.render.dns_zone import PodAddress, render_zone

NAMES = ("web", "db", "api")
KINDS = ("clusterip", "headless", "external")


def service(name: str, kind: str, ip: int) -> Service:
    spec: dict[str, Any] = {"ports": [{"name": "http", "port": 80}]}
    if kind == "clusterip":
        spec["clusterIP"] = f"10.96.0.{ip}"
    elif kind == "headless":
        spec["clusterIP"] = "None"
    else:
        spec = {"type": "ExternalName", "externalName": "db.shop.svc.cluster.local"}
    return Service.model_validate({"metadata": {"name": name, "namespace": "shop"}, "spec": spec})


def endpoint_slice(name: str, hosts: tuple[int, ...]) -> EndpointSlice:
    return EndpointSlice.model_validate(
        {
            "metadata": {
                "name": f"{name}-abc",
                "namespace": "shop",
                "labels": {"kubernetes.io/service-name": name},
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": [f"10.244.0.{h}"], **({"hostname": f"h{h}"} if h % 2 else {})}
                for h in hosts
            ],
        }
    )


STATE = st.fixed_dictionaries(
    {
        name: st.one_of(
            st.none(),
            st.tuples(
                st.sampled_from(KINDS),
                st.integers(20, 22),
                st.lists(st.integers(1, 4), max_size=3, unique=True).map(tuple),
            ),
        )
        for name in NAMES
    }
)


def zone_text(state: dict[str, Any], serial: int, pods: int) -> str:
    services, slices = [], []
    for name, spec in state.items():
        if spec is not None:
            kind, ip, hosts = spec
            services.append(service(name, kind, ip))
            slices.append(endpoint_slice(name, hosts))
    addresses = [PodAddress("shop", f"10.244.0.{i}") for i in range(1, pods + 1)]
    return render_zone(services, slices, addresses, serial=serial).text()


QUESTIONS = [
    (f"{n}.shop.svc.cluster.local", t) for n in (*NAMES, "nope") for t in ("A", "SRV", "ANY")
] + [
    ("_http._tcp.web.shop.svc.cluster.local", "SRV"),
    ("h1.db.shop.svc.cluster.local", "A"),
    ("h3.web.shop.svc.cluster.local", "A"),
    ("shop.svc.cluster.local", "A"),
    ("20.0.96.10.in-addr.arpa", "PTR"),
    ("1.0.244.10.in-addr.arpa", "PTR"),
    ("10-244-0-2.shop.pod.cluster.local", "A"),
    ("cluster.local", "SOA"),
]


def same(a: Answers, b: Answers) -> None:
    """Equal answers. Compared as parsed messages (sections as sets): dnspython shuffles
    the records of an rrset when it writes them, so two builds differ in byte order."""
    assert a.rrsets == b.rrsets
    assert {k: sorted(map(str, v)) for k, v in a.by_name.items()} == {
        k: sorted(map(str, v)) for k, v in b.by_name.items()
    }
    assert (a.exists, a.exists_wire, a.nxdomain_wire) == (b.exists, b.exists_wire, b.nxdomain_wire)
    assert (a.negative, a.records, a.apexes) == (b.negative, b.records, b.apexes)
    assert a.positive.keys() == b.positive.keys()
    asked = [(dns.name.from_wire(k[:-2], 0)[0], int.from_bytes(k[-2:], "big")) for k in a.positive]
    for name, rdtype in [*asked, *QUESTIONS]:
        q = dns.message.make_query(name, rdtype, use_edns=0, payload=4096).to_wire()
        got, want = respond(a, q, None), respond(b, q, None)
        assert got is not None and want is not None
        assert dns.message.from_wire(got) == dns.message.from_wire(want), (name, rdtype)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(STATE, st.integers(0, 3)), min_size=1, max_size=6))
def test_a_reload_from_the_previous_answers_equals_a_whole_build(steps: Any) -> None:
    answers = Answers("")
    for serial, (state, pods) in enumerate(steps, start=1):
        text = zone_text(state, serial, pods)
        answers = Answers(text, previous=answers)
        same(answers, Answers(text))


def test_a_reload_builds_only_the_changed_answers() -> None:
    """One Service added to many: the answers of the others are the very same objects."""
    base = {name: ("clusterip", 20 + i, (1,)) for i, name in enumerate(NAMES[:2])}
    before = Answers(zone_text({**base, "api": None}, 1, 2))
    after = Answers(zone_text({**base, "api": ("clusterip", 22, ())}, 2, 2), previous=before)
    kept = [k for k in before.positive if k in after.positive and k[-2:] != b"\x00\x06"]
    assert kept and all(after.positive[k] is before.positive[k] for k in kept)  # not the SOA
    assert len(after.positive) > len(before.positive)
