"""NetworkPolicy (networking.k8s.io/v1), validated as the API server validates it.

Every field of the spec is modelled, so an unknown field (`ingres`, `namespaceSelecter`) is
reported instead of silently widening or narrowing what the policy means.
"""

from __future__ import annotations

import ipaddress
import warnings
from functools import cached_property
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from podnet.model.base import ApiModel, Int, Protocol, Str, StrictApiModel
from podnet.model.meta import ObjectMeta
from podnet.model.names import check_port_name, check_port_number
from podnet.model.selectors import LabelSelector

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class HostBitsWarning(UserWarning):
    """A CIDR with host bits set: accepted, meaning its network, as the API server does."""


def parse_cidr(value: str) -> IPNetwork:
    net = ipaddress.ip_network(value, strict=False)
    if "/" not in value:
        raise ValueError(f"invalid CIDR {value!r}: must be an address and a prefix length")
    if str(net.network_address) != value.split("/")[0].strip():
        warnings.warn(f"CIDR {value} has host bits set; it means {net}", HostBitsWarning, 2)
    return net


class IPBlock(StrictApiModel):
    cidr: str
    except_: tuple[str, ...] = Field(default=(), alias="except")

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        return str(_cidr_or_error(v))

    @field_validator("except_")
    @classmethod
    def _except(cls, v: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        # "except is a list of CIDRs that should not be included within an IPBlock ... Except
        # values will be rejected if they are outside the cidr range"; the API server demands
        # a strict subset.
        outer = info.data.get("cidr")
        out = []
        for i, e in enumerate(v):
            net = _cidr_or_error(e, f"[{i}] ")
            if outer is not None:
                o = ipaddress.ip_network(outer)
                if net.version != o.version or not net.subnet_of(o) or net.prefixlen <= o.prefixlen:  # type: ignore[arg-type]
                    raise ValueError(f"[{i}] {e} must be a strict subset of cidr {outer}")
            out.append(str(net))
        return tuple(out)

    # Parsed once per object (a policy's ipBlock is asked about for every outside peer and
    # every pod); cached_property writes the instance dict, which a frozen model allows, and
    # pydantic leaves it out of equality and dumps.
    @cached_property
    def network(self) -> IPNetwork:
        return ipaddress.ip_network(self.cidr)

    @cached_property
    def excepts(self) -> tuple[IPNetwork, ...]:
        return tuple(ipaddress.ip_network(e) for e in self.except_)


def _cidr_or_error(v: str, prefix: str = "") -> IPNetwork:
    try:
        return parse_cidr(v)
    except ValueError as e:
        raise ValueError(f"{prefix}{e}") from None


class NetworkPolicyPeer(StrictApiModel):
    # "namespaceSelector ... If present but empty, it selects all namespaces. ... Otherwise
    # [podSelector] selects the pods matching podSelector in the policy's own namespace."
    # Absent and null alike leave the pointer nil (ApiModel drops null fields): the policy's
    # own namespace; only `{}` means every namespace.
    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlock | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> NetworkPolicyPeer:
        # "Exactly one of the selector pointers must be non-nil" — ipBlock may not be combined
        # with the selectors; podSelector and namespaceSelector may be combined.
        if self.ip_block is not None and (self.pod_selector or self.namespace_selector):
            raise ValueError("may not specify more than 1 peer type")
        if self.ip_block is None and self.pod_selector is None and self.namespace_selector is None:
            raise ValueError("must specify a peer")
        return self


class NetworkPolicyPort(StrictApiModel):
    protocol: Protocol = "TCP"
    port: Int | Str | None = None
    end_port: Int | None = None

    @field_validator("port")
    @classmethod
    def _port(cls, v: int | str | None) -> int | str | None:
        if isinstance(v, int):
            return check_port_number(v)
        if isinstance(v, str):
            return check_port_name(v)
        return v

    @field_validator("end_port")
    @classmethod
    def _end_port(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is None:
            return v
        if "port" not in info.data:
            return v  # port itself was invalid; that error is reported
        port = info.data["port"]
        if port is None:
            raise ValueError("may not be specified when `port` is not specified")
        if isinstance(port, str):
            raise ValueError("may not be specified when `port` is non-numeric")
        check_port_number(v)
        if v < port:
            raise ValueError(f"{v} must be >= port {port}")
        return v


class NetworkPolicyIngressRule(StrictApiModel):
    from_: tuple[NetworkPolicyPeer, ...] | None = Field(default=None, alias="from")
    ports: tuple[NetworkPolicyPort, ...] | None = None

    @property
    def peers(self) -> tuple[NetworkPolicyPeer, ...] | None:
        return self.from_


class NetworkPolicyEgressRule(StrictApiModel):
    to: tuple[NetworkPolicyPeer, ...] | None = None
    ports: tuple[NetworkPolicyPort, ...] | None = None

    @property
    def peers(self) -> tuple[NetworkPolicyPeer, ...] | None:
        return self.to


Rule = NetworkPolicyIngressRule | NetworkPolicyEgressRule


PolicyType = Literal["Ingress", "Egress"]


class NetworkPolicySpec(StrictApiModel):
    # Declared required, but the API server stores an absent selector as {} (all pods).
    pod_selector: LabelSelector = Field(default_factory=LabelSelector)
    policy_types: tuple[PolicyType, ...] = ()
    ingress: tuple[NetworkPolicyIngressRule, ...] | None = None
    egress: tuple[NetworkPolicyEgressRule, ...] | None = None

    def rules(self, direction: str) -> tuple[Rule, ...]:
        """The rules of one direction ("ingress" or "egress"); absent and [] alike."""
        return (self.ingress if direction == "ingress" else self.egress) or ()

    @field_validator("policy_types")
    @classmethod
    def _types(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate policy type in {list(v)}")
        return v


class NetworkPolicy(ApiModel):
    kind: str = "NetworkPolicy"
    api_version: str = "networking.k8s.io/v1"
    metadata: ObjectMeta
    spec: NetworkPolicySpec

    @property
    def affects_ingress(self) -> bool:
        return "Ingress" in self.spec.policy_types

    @property
    def affects_egress(self) -> bool:
        return "Egress" in self.spec.policy_types
