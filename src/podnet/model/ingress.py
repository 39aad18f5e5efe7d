"""Ingress and IngressClass: HTTP routing rules in front of Services."""

from __future__ import annotations

from pydantic import Field

from podnet.model.base import ApiModel
from podnet.model.meta import ObjectMeta


class IngressSpec(ApiModel):
    ingress_class_name: str | None = None
    default_backend: dict | None = None  # type: ignore[type-arg]
    rules: tuple[dict, ...] = ()  # type: ignore[type-arg]
    tls: tuple[dict, ...] = ()  # type: ignore[type-arg]


class Ingress(ApiModel):
    kind: str = "Ingress"
    api_version: str = "networking.k8s.io/v1"
    metadata: ObjectMeta
    spec: IngressSpec = Field(default_factory=IngressSpec)


class IngressClass(ApiModel):
    kind: str = "IngressClass"
    api_version: str = "networking.k8s.io/v1"
    metadata: ObjectMeta
    spec: dict = Field(default_factory=dict)  # type: ignore[type-arg]
