"""Label selectors (metav1.LabelSelector) and their matching.

"A label selector is a label query over a set of resources. The result of matchLabels and
matchExpressions are ANDed. An empty label selector matches all objects. A null label
selector matches no objects."
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field, field_validator, model_validator

from podnet.model.base import Labels, StrictApiModel
from podnet.model.names import check_label_key, check_label_value


class Requirement(StrictApiModel):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        return check_label_key(v)

    @field_validator("values")
    @classmethod
    def _values(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for value in v:
            check_label_value(value)
        return v

    @model_validator(mode="after")
    def _operator_values(self) -> Requirement:
        # "If the operator is In or NotIn, the values array must be non-empty. If the operator
        # is Exists or DoesNotExist, the values array must be empty."
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"values: must be specified when `operator` is '{self.operator}'")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"values: may not be specified when `operator` is '{self.operator}'")
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return labels.get(self.key) in self.values
        if self.operator == "NotIn":
            # NotIn also matches objects that do not carry the key at all.
            return labels.get(self.key) not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels

    def __str__(self) -> str:
        if self.operator in ("Exists", "DoesNotExist"):
            return self.key if self.operator == "Exists" else f"!{self.key}"
        op = "in" if self.operator == "In" else "notin"
        return f"{self.key} {op} ({','.join(self.values)})"


class LabelSelector(StrictApiModel):
    match_labels: Labels = Field(default_factory=dict)
    match_expressions: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels.items():
            if labels.get(key) != value:
                return False
        return all(r.matches(labels) for r in self.match_expressions)

    def first_miss(self, labels: Mapping[str, str]) -> str | None:
        """The first term that does not match `labels`, as text; None when all match."""
        for key, value in self.match_labels.items():
            if labels.get(key) != value:
                return f"{key}={value}"
        for r in self.match_expressions:
            if not r.matches(labels):
                return str(r)
        return None

    @property
    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def __str__(self) -> str:
        terms = [f"{k}: {v}" for k, v in self.match_labels.items()]
        terms += [str(r) for r in self.match_expressions]
        return "{" + ", ".join(terms) + "}"
