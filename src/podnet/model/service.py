"""Service, EndpointSlice and Endpoints, as core/v1 and discovery.k8s.io/v1 define them.

These are the contract between the control plane (allocation, the endpoints controller) and
everything that serves a Service: the kube-proxy rules, cluster DNS, the ingress. Each reads
Services and EndpointSlices as a real kube-proxy or CoreDNS does, never podnet's internals.
Validation follows the API server's (pkg/apis/core/validation: ValidateService); defaults
that depend on other fields (targetPort = port, externalTrafficPolicy Cluster for NodePort
and LoadBalancer, the affinity timeout) are applied here so that every reader sees them.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from podnet.model.base import ApiModel, Bool, Int, Labels, PortNumber, Protocol, Str
from podnet.model.ip import canonical_ip
from podnet.model.meta import ObjectMeta
from podnet.model.names import check_dns_label, check_dns_subdomain, check_port_name

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds: ClientIP affinity's default, 3 hours
NODE_PORT_RANGE = (30000, 32767)  # the API server's default --service-node-port-range

ServiceType = Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]
TrafficPolicy = Literal["Cluster", "Local"]


class ServicePort(ApiModel):
    name: str | None = None
    protocol: Protocol = "TCP"
    app_protocol: str | None = None
    port: PortNumber
    target_port: Int | Str | None = None
    node_port: Int | None = None

    @field_validator("target_port")
    @classmethod
    def _target(cls, v: int | str | None) -> int | str | None:
        if isinstance(v, str):
            return check_port_name(v)
        if isinstance(v, int) and not 1 <= v <= 65535:
            raise ValueError(f"Invalid value: {v}: must be between 1 and 65535, inclusive")
        return v

    @field_validator("node_port")
    @classmethod
    def _node_port(cls, v: int | None) -> int | None:
        if v is not None and not 1 <= v <= 65535:
            raise ValueError(f"Invalid value: {v}: must be between 1 and 65535, inclusive")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return check_port_name(v) if v else None

    @property
    def target(self) -> int | str:
        """targetPort as the API server defaults it: the port itself when unset."""
        return self.port if self.target_port is None else self.target_port


class ClientIPConfig(ApiModel):
    timeout_seconds: Int = DEFAULT_AFFINITY_TIMEOUT

    @field_validator("timeout_seconds")
    @classmethod
    def _timeout(cls, v: int) -> int:
        if not 0 < v <= 86400:
            raise ValueError(f"Invalid value: {v}: must be greater than 0 and at most 86400")
        return v


class SessionAffinityConfig(ApiModel):
    client_ip: ClientIPConfig = Field(default_factory=ClientIPConfig, alias="clientIP")


class ServiceSpec(ApiModel):
    type: ServiceType = "ClusterIP"
    selector: Labels | None = None
    ports: tuple[ServicePort, ...] = ()
    cluster_ip: str | None = Field(default=None, alias="clusterIP")
    cluster_ips: tuple[str, ...] = Field(default=(), alias="clusterIPs")
    external_name: str | None = None
    external_ips: tuple[str, ...] = Field(default=(), alias="externalIPs")
    session_affinity: Literal["None", "ClientIP"] = "None"
    session_affinity_config: SessionAffinityConfig | None = None
    external_traffic_policy: TrafficPolicy | None = None
    internal_traffic_policy: TrafficPolicy = "Cluster"
    health_check_node_port: Int | None = None
    publish_not_ready_addresses: Bool = False
    load_balancer_ip: str | None = Field(default=None, alias="loadBalancerIP")
    load_balancer_class: str | None = None
    allocate_load_balancer_node_ports: Bool = True
    ip_families: tuple[str, ...] = ()
    ip_family_policy: str | None = None

    @field_validator("cluster_ip")
    @classmethod
    def _cluster_ip(cls, v: str | None) -> str | None:
        if v in (None, "", "None"):
            return v or None
        return canonical_ip(v)

    @field_validator("load_balancer_ip")
    @classmethod
    def _lb_ip(cls, v: str | None) -> str | None:
        return canonical_ip(v) if v else None

    @field_validator("external_name")
    @classmethod
    def _external_name(cls, v: str | None) -> str | None:
        if v:
            check_dns_subdomain(v.rstrip("."))
        return v or None

    @model_validator(mode="after")
    def _rules(self) -> ServiceSpec:
        _validate_spec(self)
        return self

    @property
    def headless(self) -> bool:
        return self.cluster_ip == "None"

    @property
    def affinity_timeout(self) -> int | None:
        """Seconds of ClientIP affinity, or None without affinity."""
        if self.session_affinity != "ClientIP":
            return None
        cfg = self.session_affinity_config
        return cfg.client_ip.timeout_seconds if cfg else DEFAULT_AFFINITY_TIMEOUT

    @property
    def external(self) -> bool:
        """Reachable from outside the cluster: through node ports and, for LoadBalancer,
        a load-balancer address."""
        return self.type in ("NodePort", "LoadBalancer")

    @property
    def traffic_policy(self) -> TrafficPolicy:
        """externalTrafficPolicy with the API server's default (Cluster) for external
        Services; meaningless (None in input) for the others."""
        return self.external_traffic_policy or "Cluster"


def _validate_spec(s: ServiceSpec) -> None:
    """The cross-field rules of ValidateService that change what the datapath does."""
    if s.type == "ExternalName":
        if not s.external_name:
            raise ValueError("externalName: Required value: for type ExternalName")
    elif not s.ports and not s.headless:
        raise ValueError("ports: Required value")
    if s.headless and s.type != "ClusterIP":
        raise ValueError(f"clusterIP: Invalid value: 'None': may not be set for type {s.type}")
    if len(s.ports) > 1:
        seen: set[tuple[str, int]] = set()
        names: set[str] = set()
        for i, p in enumerate(s.ports):
            if not p.name:
                raise ValueError(f"ports[{i}].name: Required value: when several ports are given")
            if p.name in names:
                raise ValueError(f"ports[{i}].name: Duplicate value: {p.name!r}")
            names.add(p.name)
            if (p.protocol, p.port) in seen:
                raise ValueError(f"ports[{i}]: Duplicate value: {p.port}/{p.protocol}")
            seen.add((p.protocol, p.port))
    for i, p in enumerate(s.ports):
        if p.node_port is not None and not s.external:
            raise ValueError(
                f"ports[{i}].nodePort: Forbidden: may not be used when type is {s.type!r}"
            )
    if s.external_traffic_policy is not None and not s.external:
        raise ValueError(
            "externalTrafficPolicy: Invalid value: may only be set when type is 'NodePort' "
            "or 'LoadBalancer'"
        )
    if s.health_check_node_port is not None and not (
        s.type == "LoadBalancer" and s.external_traffic_policy == "Local"
    ):
        raise ValueError(
            "healthCheckNodePort: Invalid value: may only be set when type is 'LoadBalancer' "
            "and externalTrafficPolicy is 'Local'"
        )
    if s.session_affinity_config is not None and s.session_affinity != "ClientIP":
        raise ValueError(
            "sessionAffinityConfig: Invalid value: must not be set when sessionAffinity is None"
        )


class LoadBalancerIngress(ApiModel):
    ip: str | None = None
    hostname: str | None = None


class LoadBalancerStatus(ApiModel):
    ingress: tuple[LoadBalancerIngress, ...] = ()


class ServiceStatus(ApiModel):
    load_balancer: LoadBalancerStatus = Field(default_factory=LoadBalancerStatus)


class Service(ApiModel):
    kind: str = "Service"
    api_version: str = "v1"
    metadata: ObjectMeta
    spec: ServiceSpec = Field(default_factory=ServiceSpec)
    status: ServiceStatus = Field(default_factory=ServiceStatus)

    @field_validator("metadata")
    @classmethod
    def _dns_name(cls, v: ObjectMeta) -> ObjectMeta:
        # A Service's name is a DNS label (RFC 1035: starts with a letter): it becomes one.
        if v.name:
            check_dns_label(v.name, "metadata.name")
            if not v.name[0].isalpha():
                raise ValueError(f"name: Invalid value: {v.name!r}: must start with a letter")
        return v

    @property
    def key(self) -> str:
        return f"{self.metadata.namespace}/{self.metadata.name}"


# --- EndpointSlice (discovery.k8s.io/v1) -------------------------------------------------

MAX_ENDPOINTS_PER_SLICE = 1000  # the API's limit; the controller cuts at 100 by default


class EndpointConditions(ApiModel):
    """Unset means unknown; consumers read an unknown `ready` as ready, as the API says."""

    ready: Bool | None = None
    serving: Bool | None = None
    terminating: Bool | None = None


class ObjectReference(ApiModel):
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None


class Endpoint(ApiModel):
    addresses: tuple[str, ...]
    conditions: EndpointConditions = Field(default_factory=EndpointConditions)
    hostname: str | None = None
    target_ref: ObjectReference | None = None
    node_name: str | None = None
    zone: str | None = None

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not 1 <= len(v) <= 100:
            raise ValueError("Invalid value: must hold between 1 and 100 addresses")
        return v

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, v: str | None) -> str | None:
        return check_dns_label(v, "hostname") if v else None

    @property
    def ready(self) -> bool:
        return self.conditions.ready is not False

    @property
    def serving(self) -> bool:
        c = self.conditions
        return c.serving if c.serving is not None else self.ready

    @property
    def terminating(self) -> bool:
        return bool(self.conditions.terminating)


class EndpointPort(ApiModel):
    name: str | None = None
    protocol: Protocol = "TCP"
    port: Int | None = None
    app_protocol: str | None = None


class EndpointSlice(ApiModel):
    kind: str = "EndpointSlice"
    api_version: str = "discovery.k8s.io/v1"
    metadata: ObjectMeta
    address_type: Literal["IPv4", "IPv6", "FQDN"]
    endpoints: tuple[Endpoint, ...] = ()
    ports: tuple[EndpointPort, ...] = ()

    @model_validator(mode="after")
    def _addresses(self) -> EndpointSlice:
        if len(self.endpoints) > MAX_ENDPOINTS_PER_SLICE:
            raise ValueError(
                f"endpoints: Too many: {len(self.endpoints)}: must have at most 1000 items"
            )
        if self.address_type == "IPv4":
            for i, e in enumerate(self.endpoints):
                for j, a in enumerate(e.addresses):
                    try:
                        ipaddress.IPv4Address(a)
                    except ValueError:
                        raise ValueError(
                            f"endpoints[{i}].addresses[{j}]: Invalid value: {a!r}: must be a "
                            "valid IPv4 address"
                        ) from None
        return self

    @property
    def service_name(self) -> str | None:
        return self.metadata.labels.get(SERVICE_NAME_LABEL)


# --- Endpoints (core/v1, the legacy object) ------------------------------------------------


class EndpointAddress(ApiModel):
    ip: str
    hostname: str | None = None
    node_name: str | None = None
    target_ref: ObjectReference | None = None

    @field_validator("ip")
    @classmethod
    def _ip(cls, v: str) -> str:
        return canonical_ip(v)


class EndpointsPort(ApiModel):
    name: str | None = None
    port: PortNumber
    protocol: Protocol = "TCP"
    app_protocol: str | None = None


class EndpointSubset(ApiModel):
    addresses: tuple[EndpointAddress, ...] = ()
    not_ready_addresses: tuple[EndpointAddress, ...] = ()
    ports: tuple[EndpointsPort, ...] = ()


class Endpoints(ApiModel):
    kind: str = "Endpoints"
    api_version: str = "v1"
    metadata: ObjectMeta
    subsets: tuple[EndpointSubset, ...] = ()
