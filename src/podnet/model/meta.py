"""ObjectMeta: the identity and labels that every API object carries."""

from __future__ import annotations

import warnings

from pydantic import Field, field_validator

from podnet.model.base import ApiModel, Labels
from podnet.model.names import check_dns_subdomain


class NameWarning(UserWarning):
    """A name the API server would refuse; podnet goes on."""


class OwnerReference(ApiModel):
    """Who owns the object: podnet reads it only to tell whether a dump already holds a
    workload's pods. The API requires apiVersion, kind, name and uid alike; since none of
    them changes what a policy means, a missing one is a warning (ObjectMeta gives it, with
    the reference's index), never an error."""

    api_version: str = ""
    kind: str = ""
    name: str = ""
    uid: str = ""

    def missing(self) -> list[str]:
        """The required fields this reference lacks, in the API's order."""
        fields = (("apiVersion", self.api_version), ("kind", self.kind), ("name", self.name))
        return [f for f, v in (*fields, ("uid", self.uid)) if not v]


class ObjectMeta(ApiModel):
    name: str = ""
    generate_name: str = ""
    namespace: str | None = None
    labels: Labels = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    owner_references: tuple[OwnerReference, ...] = ()

    @field_validator("owner_references")
    @classmethod
    def _owners(cls, v: tuple[OwnerReference, ...]) -> tuple[OwnerReference, ...]:
        for i, ref in enumerate(v):
            for f in ref.missing():
                warnings.warn(
                    f"metadata.ownerReferences[{i}].{f}: Required value; the API server would "
                    "reject it",
                    NameWarning,
                    2,
                )
        return v

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
