"""Ingress and IngressClass (networking.k8s.io/v1): HTTP routing rules in front of Services.

Validation follows the API server's (pkg/apis/networking/validation: ValidateIngress,
ValidateIngressClass), plus what podnet's controller cannot serve and says so at once:
resource backends (podnet routes to Services only). The routing semantics that read these
fields live in `render.ingress_routes` (docs/ingress.md).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from podnet.model.base import ApiModel, PortNumber, Str
from podnet.model.meta import ObjectMeta
from podnet.model.names import check_dns_subdomain, check_port_name
from podnet.model.service import LoadBalancerStatus

PathType = Literal["Exact", "Prefix", "ImplementationSpecific"]
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
# The characters a path may hold: RFC 3986's pchar and '/', less '$' and '%' (nginx would
# read them as a variable or an escape in a location). The API server allows more for
# ImplementationSpecific; nginx's configuration could not hold them safely.
_PATH_RE = re.compile(r"^/[A-Za-z0-9/._~!&'()*+,;=:@-]*$")
_CONTROLLER_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[-A-Za-z0-9_./]+$")


class ServiceBackendPort(ApiModel):
    """`name` or `number`, exactly one ("This is a mutually exclusive setting")."""

    name: Str | None = None
    number: PortNumber | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return check_port_name(v) if v else None

    @model_validator(mode="after")
    def _one(self) -> ServiceBackendPort:
        if (self.name is None) == (self.number is None):
            raise ValueError("Invalid value: exactly one of port.name and port.number is required")
        return self


class IngressServiceBackend(ApiModel):
    name: Str
    port: ServiceBackendPort

    @field_validator("name")
    @classmethod
    def _svc(cls, v: str) -> str:
        return check_dns_subdomain(v, "service.name")


class IngressBackend(ApiModel):
    service: IngressServiceBackend | None = None
    resource: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _service_only(self) -> IngressBackend:
        if self.resource is not None:
            raise ValueError(
                "resource: Unsupported value: podnet's ingress controller routes to Services "
                "only; use backend.service"
            )
        if self.service is None:
            raise ValueError("service: Required value")
        return self

    @property
    def svc(self) -> IngressServiceBackend:
        assert self.service is not None  # validated
        return self.service


class HTTPIngressPath(ApiModel):
    path: Str | None = None
    path_type: PathType | None = None
    backend: IngressBackend

    @model_validator(mode="after")
    def _path(self) -> HTTPIngressPath:
        if self.path_type is None:
            raise ValueError(
                "pathType: Required value: must be one of Exact, Prefix, ImplementationSpecific"
            )
        if self.path is None:
            if self.path_type != "ImplementationSpecific":
                raise ValueError(f"path: Required value: for pathType {self.path_type}")
        elif not self.path.startswith("/"):
            raise ValueError(f"path: Invalid value: {self.path!r}: must be an absolute path")
        elif not _PATH_RE.match(self.path):
            raise ValueError(
                f"path: Invalid value: {self.path!r}: may hold only letters, digits and "
                "/._~!&'()*+,;=:@- (podnet)"
            )
        elif self.path_type in ("Exact", "Prefix") and "//" in self.path:
            raise ValueError(f"path: Invalid value: {self.path!r}: must not contain '//'")
        return self

    @property
    def effective_path(self) -> str:
        """An ImplementationSpecific path left out matches everything, as `/` does."""
        return self.path or "/"


class HTTPIngressRuleValue(ApiModel):
    paths: tuple[HTTPIngressPath, ...]

    @field_validator("paths")
    @classmethod
    def _some(cls, v: tuple[HTTPIngressPath, ...]) -> tuple[HTTPIngressPath, ...]:
        if not v:
            raise ValueError("Required value: at least one path")
        return v


def check_host(host: str) -> str:
    """A DNS subdomain, or `*.` and one (ValidateIngressRule: "a wildcard DNS-1123
    subdomain"); never an IP address."""
    name = host[2:] if host.startswith("*.") else host
    if "*" in name:
        raise ValueError(
            f"Invalid value: {host!r}: a wildcard is allowed only as the first label, as '*.'"
        )
    check_dns_subdomain(name, "host")
    if re.fullmatch(r"[0-9.]+", name):
        raise ValueError(f"Invalid value: {host!r}: must be a DNS name, not an IP address")
    return host


class IngressRule(ApiModel):
    host: Str | None = None
    http: HTTPIngressRuleValue | None = None

    @field_validator("host")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        return check_host(v) if v else None


class IngressTLS(ApiModel):
    hosts: tuple[Str, ...] = ()
    secret_name: Str | None = None

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for h in v:
            check_host(h)
        return v


class IngressSpec(ApiModel):
    ingress_class_name: Str | None = None
    default_backend: IngressBackend | None = None
    rules: tuple[IngressRule, ...] = ()
    tls: tuple[IngressTLS, ...] = ()

    @model_validator(mode="after")
    def _something(self) -> IngressSpec:
        if self.default_backend is None and not self.rules:
            raise ValueError("Invalid value: either `defaultBackend` or `rules` must be specified")
        return self

    def backends(self) -> list[tuple[str, IngressServiceBackend]]:
        """(field path, backend) of every backend, for the checks that need them all."""
        out = []
        if self.default_backend is not None:
            out.append(("spec.defaultBackend.service", self.default_backend.svc))
        for i, rule in enumerate(self.rules):
            for j, p in enumerate(rule.http.paths if rule.http else ()):
                out.append((f"spec.rules[{i}].http.paths[{j}].backend.service", p.backend.svc))
        return out


class IngressStatus(ApiModel):
    load_balancer: LoadBalancerStatus = Field(default_factory=LoadBalancerStatus)


class Ingress(ApiModel):
    kind: str = "Ingress"
    api_version: str = "networking.k8s.io/v1"
    metadata: ObjectMeta
    spec: IngressSpec
    status: IngressStatus = Field(default_factory=IngressStatus)

    @property
    def key(self) -> str:
        return f"{self.metadata.namespace}/{self.metadata.name}"

    @property
    def class_name(self) -> str | None:
        """spec.ingressClassName, else the deprecated `kubernetes.io/ingress.class`
        annotation (still honoured by ingress-nginx)."""
        return self.spec.ingress_class_name or self.metadata.annotations.get(
            "kubernetes.io/ingress.class"
        )


class IngressClassSpec(ApiModel):
    controller: Str
    parameters: dict[str, Any] | None = None

    @field_validator("controller")
    @classmethod
    def _controller(cls, v: str) -> str:
        # "a domain-prefixed path such as example.com/ingress-controller", at most 250.
        if len(v) > 250 or not _CONTROLLER_RE.match(v):
            raise ValueError(
                f"Invalid value: {v!r}: must be a domain-prefixed path "
                "(such as 'k8s.io/ingress-nginx'), at most 250 characters"
            )
        return v


class IngressClass(ApiModel):
    kind: str = "IngressClass"
    api_version: str = "networking.k8s.io/v1"
    metadata: ObjectMeta
    spec: IngressClassSpec

    @property
    def is_default(self) -> bool:
        """ "ingressclass.kubernetes.io/is-default-class" set to "true"."""
        return self.metadata.annotations.get(DEFAULT_CLASS_ANNOTATION) == "true"
