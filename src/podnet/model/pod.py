"""Pod: the unit of networking. Its containers share one network namespace."""

from __future__ import annotations

import warnings

from pydantic import Field, field_validator

from podnet.model.base import ApiModel, Bool, PortNumber, Protocol
from podnet.model.ip import canonical_ip
from podnet.model.meta import NameWarning, ObjectMeta
from podnet.model.names import check_dns_label, check_port_name


class ContainerPort(ApiModel):
    name: str | None = None
    container_port: PortNumber
    protocol: Protocol = "TCP"
    host_port: int | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return check_port_name(v) if v is not None else v


class Container(ApiModel):
    # Required by the API, but only displayed by podnet: a missing or bad container name is
    # a warning (peer tools' fixtures omit it), while everything about ports stays strict.
    name: str = ""
    image: str = ""
    ports: tuple[ContainerPort, ...] = ()
    restart_policy: str | None = None  # "Always" on an init container makes it a sidecar

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


class PodSpec(ApiModel):
    containers: tuple[Container, ...] = ()
    init_containers: tuple[Container, ...] = ()
    node_name: str | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    host_network: Bool = False
    hostname: str | None = None
    subdomain: str | None = None


class PodIP(ApiModel):
    ip: str

    @field_validator("ip")
    @classmethod
    def _ip(cls, v: str) -> str:
        return canonical_ip(v)


class PodStatus(ApiModel):
    phase: str | None = None
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
    def ip(self) -> str | None:
        if self.status.pod_ip:
            return self.status.pod_ip
        return self.status.pod_ips[0].ip if self.status.pod_ips else None
