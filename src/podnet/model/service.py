"""Service, Endpoints and EndpointSlice: stored now, given a datapath by a later layer."""

from __future__ import annotations

from pydantic import Field, field_validator

from podnet.model.base import ApiModel, Int, PortNumber, Protocol, Str
from podnet.model.meta import ObjectMeta
from podnet.model.names import check_port_name


class ServicePort(ApiModel):
    name: str | None = None
    protocol: Protocol = "TCP"
    port: PortNumber
    target_port: Int | Str | None = None
    node_port: Int | None = None

    @field_validator("target_port")
    @classmethod
    def _target(cls, v: int | str | None) -> int | str | None:
        return check_port_name(v) if isinstance(v, str) else v


class ServiceSpec(ApiModel):
    type: str = "ClusterIP"
    selector: dict[str, str] | None = None
    ports: tuple[ServicePort, ...] = ()
    cluster_ip: str | None = Field(default=None, alias="clusterIP")
    cluster_ips: tuple[str, ...] = Field(default=(), alias="clusterIPs")


class Service(ApiModel):
    kind: str = "Service"
    api_version: str = "v1"
    metadata: ObjectMeta
    spec: ServiceSpec = Field(default_factory=ServiceSpec)


class Endpoints(ApiModel):
    kind: str = "Endpoints"
    api_version: str = "v1"
    metadata: ObjectMeta
    subsets: tuple[dict, ...] = ()  # type: ignore[type-arg]


class EndpointSlice(ApiModel):
    kind: str = "EndpointSlice"
    api_version: str = "discovery.k8s.io/v1"
    metadata: ObjectMeta
    address_type: str = "IPv4"
    endpoints: tuple[dict, ...] = ()  # type: ignore[type-arg]
    ports: tuple[dict, ...] = ()  # type: ignore[type-arg]
