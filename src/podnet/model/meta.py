"""ObjectMeta: the identity and labels that every API object carries."""

from __future__ import annotations

import warnings

from pydantic import Field, field_validator

from podnet.model.base import ApiModel, Labels
from podnet.model.names import check_dns_subdomain


class NameWarning(UserWarning):
    """A name the API server would refuse; podnet goes on."""


class OwnerReference(ApiModel):
    kind: str
    name: str


class ObjectMeta(ApiModel):
    name: str = ""
    generate_name: str = ""
    namespace: str | None = None
    labels: Labels = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    owner_references: tuple[OwnerReference, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        # Names change no network semantics; test fixtures of peer tools use names the API
        # server would refuse (`my-deployment-A`), so a bad name is a warning, not an error.
        try:
            check_dns_subdomain(v)
        except ValueError as e:
            warnings.warn(f"metadata.name: {e}; the API server would reject it", NameWarning, 2)
        return v
