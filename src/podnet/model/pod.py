"""Pod: the unit of networking. Its containers share one network namespace."""

from __future__ import annotations

import warnings
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from podnet.model.base import ApiModel, Bool, Int, PortNumber, Protocol, Str
from podnet.model.ip import canonical_ip
from podnet.model.meta import NameWarning, ObjectMeta
from podnet.model.names import check_dns_label, check_dns_subdomain, check_port_name


class ContainerPort(ApiModel):
    name: str | None = None
    container_port: PortNumber
    protocol: Protocol = "TCP"
    host_port: int | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return check_port_name(v) if v is not None else v


class TCPSocketAction(ApiModel):
    port: Int | Str
    host: str | None = None


class HTTPHeader(ApiModel):
    name: str
    value: str


class HTTPGetAction(ApiModel):
    path: str = "/"
    port: Int | Str
    host: str | None = None
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"
    http_headers: tuple[HTTPHeader, ...] = ()


class ExecAction(ApiModel):
    command: tuple[str, ...] = ()


class Probe(ApiModel):
    """A readiness probe, with the kubelet's defaults."""

    tcp_socket: TCPSocketAction | None = None
    http_get: HTTPGetAction | None = None
    exec: ExecAction | None = None
    initial_delay_seconds: Int = 0
    period_seconds: Int = 10
    timeout_seconds: Int = 1
    success_threshold: Int = 1
    failure_threshold: Int = 3

    @model_validator(mode="after")
    def _one_handler(self) -> Probe:
        given = [h for h in (self.tcp_socket, self.http_get, self.exec) if h is not None]
        if len(given) != 1:
            raise ValueError(
                "Invalid value: must specify exactly one handler type (tcpSocket, httpGet, exec; grpc is not supported)"
            )
        for name in ("period_seconds", "timeout_seconds", "success_threshold", "failure_threshold"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: Invalid value: must be greater than or equal to 1")
        if self.initial_delay_seconds < 0:
            raise ValueError(
                "initialDelaySeconds: Invalid value: must be greater than or equal to 0"
            )
        return self


class Container(ApiModel):
    # Required by the API, but only displayed by podnet: a missing or bad container name is
    # a warning (peer tools' fixtures omit it), while everything about ports stays strict.
    name: str = ""
    image: str = ""
    ports: tuple[ContainerPort, ...] = ()
    restart_policy: str | None = None  # "Always" on an init container makes it a sidecar
    readiness_probe: Probe | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        try:
            check_dns_label(v, "container name")
        except ValueError as e:
            warnings.warn(f"{e}; the API server would reject it", NameWarning, 2)
        return v

    @field_validator("ports")
    @classmethod
    def _unique_names(cls, v: tuple[ContainerPort, ...]) -> tuple[ContainerPort, ...]:
        # validateContainerPorts: a port name appears once per container ("Duplicate value").
        seen: set[str] = set()
        for i, p in enumerate(v):
            if p.name is not None and p.name in seen:
                raise ValueError(f"[{i}].name: Duplicate value: {p.name!r}")
            if p.name is not None:
                seen.add(p.name)
        return v

    @field_validator("ports", mode="before")
    @classmethod
    def _empty_ports(cls, v: object) -> object:
        if v == {}:
            warnings.warn("ports: {} is not a list; read as no ports", NameWarning, 2)
            return ()
        return v


class DNSOption(ApiModel):
    name: str
    value: str | None = None


class PodDNSConfig(ApiModel):
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[DNSOption, ...] = ()


class HostAlias(ApiModel):
    """An /etc/hosts entry kubelet adds (ValidateHostAliases: an IP, hostnames that are DNS
    subdomains)."""

    ip: str
    hostnames: tuple[str, ...] = ()

    @field_validator("ip")
    @classmethod
    def _ip(cls, v: str) -> str:
        return canonical_ip(v)

    @field_validator("hostnames")
    @classmethod
    def _hostnames(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for name in v:
            check_dns_subdomain(name, what="hostAliases hostname")
        return v


class PodSpec(ApiModel):
    containers: tuple[Container, ...] = ()
    init_containers: tuple[Container, ...] = ()
    node_name: str | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    host_network: Bool = False
    hostname: str | None = None
    subdomain: str | None = None
    dns_policy: Literal["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"] = (
        "ClusterFirst"
    )
    dns_config: PodDNSConfig | None = None
    host_aliases: tuple[HostAlias, ...] = ()

    @field_validator("hostname", "subdomain")
    @classmethod
    def _dns_label(cls, v: str | None, info: ValidationInfo) -> str | None:
        """ValidatePodSpec: both are DNS-1123 labels (kubelet makes the hostname and the
        `<hostname>.<subdomain>.<ns>.svc.<zone>` name of /etc/hosts from them)."""
        return v if v is None else check_dns_label(v, str(info.field_name))

    @model_validator(mode="after")
    def _dns(self) -> PodSpec:
        _validate_dns(self.dns_policy, self.dns_config)
        return self


def _validate_dns(policy: str, cfg: PodDNSConfig | None) -> None:
    """ValidatePodDNSConfig: what kubelet could not turn into a resolv.conf is rejected."""
    if policy == "None" and cfg is None:
        raise ValueError(
            "dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"
        )
    if cfg is None:
        return
    if policy == "None" and not cfg.nameservers:
        raise ValueError(
            "dnsConfig.nameservers: Required value: must provide at least one DNS nameserver "
            "when `dnsPolicy` is None"
        )
    if len(cfg.nameservers) > 3:
        raise ValueError(
            "dnsConfig.nameservers: Invalid value: must not have more than 3 nameservers"
        )
    for i, ip in enumerate(cfg.nameservers):
        try:
            canonical_ip(ip)
        except ValueError:
            raise ValueError(
                f"dnsConfig.nameservers[{i}]: Invalid value: {ip!r}: must be a valid IP address"
            ) from None
    if len(cfg.searches) > 32:
        raise ValueError(
            "dnsConfig.searches: Invalid value: must not have more than 32 search paths"
        )
    if len(" ".join(cfg.searches)) > 2048:
        raise ValueError(
            "dnsConfig.searches: Invalid value: must not have more than 2048 characters "
            "(including spaces) in the search list"
        )
    for i, domain in enumerate(cfg.searches):
        try:
            check_dns_subdomain(domain.removesuffix("."))
        except ValueError as e:
            raise ValueError(f"dnsConfig.searches[{i}]: {e}") from None


class PodIP(ApiModel):
    ip: str

    @field_validator("ip")
    @classmethod
    def _ip(cls, v: str) -> str:
        return canonical_ip(v)


class PodCondition(ApiModel):
    type: str
    status: str = "Unknown"


class PodStatus(ApiModel):
    phase: str | None = None
    conditions: tuple[PodCondition, ...] = ()
    pod_ip: str | None = Field(default=None, alias="podIP")
    pod_ips: tuple[PodIP, ...] = Field(default=(), alias="podIPs")
    host_ip: str | None = Field(default=None, alias="hostIP")

    @field_validator("pod_ip", "host_ip")
    @classmethod
    def _ip(cls, v: str | None) -> str | None:
        return canonical_ip(v) if v else None


class PodTemplate(ApiModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec = Field(default_factory=PodSpec)


class Pod(ApiModel):
    kind: str = "Pod"
    api_version: str = "v1"
    metadata: ObjectMeta
    spec: PodSpec = Field(default_factory=PodSpec)
    status: PodStatus = Field(default_factory=PodStatus)

    @property
    def all_ports(self) -> tuple[tuple[str, ContainerPort], ...]:
        """(container name, port) for every container and sidecar; they share the namespace."""
        sidecars = [c for c in self.spec.init_containers if c.restart_policy == "Always"]
        return tuple((c.name, p) for c in (*self.spec.containers, *sidecars) for p in c.ports)

    @property
    def declared_unready(self) -> bool:
        """The manifest's status says Ready=False: the pod stays unready until a readiness
        probe passes (a dump of a cluster in trouble keeps its verdicts)."""
        return any(c.type == "Ready" and c.status == "False" for c in self.status.conditions)

    @property
    def readiness_probes(self) -> tuple[tuple[str, Probe], ...]:
        """(container name, probe) of every container and sidecar that has one."""
        sidecars = [c for c in self.spec.init_containers if c.restart_policy == "Always"]
        return tuple(
            (c.name, c.readiness_probe)
            for c in (*self.spec.containers, *sidecars)
            if c.readiness_probe is not None
        )

    @property
    def ip(self) -> str | None:
        if self.status.pod_ip:
            return self.status.pod_ip
        return self.status.pod_ips[0].ip if self.status.pod_ips else None
