"""Namespace and Node: the cluster-scoped objects whose labels and addresses policies see."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator

from podnet.model.base import ApiModel
from podnet.model.meta import ObjectMeta


class Namespace(ApiModel):
    kind: str = "Namespace"
    api_version: str = "v1"
    metadata: ObjectMeta


class NodeAddress(ApiModel):
    type: str
    address: str


class NodeSpec(ApiModel):
    pod_cidr: str | None = Field(default=None, alias="podCIDR")
    pod_cidrs: tuple[str, ...] = Field(default=(), alias="podCIDRs")

    @field_validator("pod_cidr")
    @classmethod
    def _cidr(cls, v: str | None) -> str | None:
        return str(ipaddress.ip_network(v, strict=True)) if v else None


class NodeStatus(ApiModel):
    addresses: tuple[NodeAddress, ...] = ()


class Node(ApiModel):
    kind: str = "Node"
    api_version: str = "v1"
    metadata: ObjectMeta
    spec: NodeSpec = Field(default_factory=NodeSpec)
    status: NodeStatus = Field(default_factory=NodeStatus)

    @property
    def internal_ip(self) -> str | None:
        for a in self.status.addresses:
            if a.type == "InternalIP":
                return a.address
        return None
