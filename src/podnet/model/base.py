"""The shared pydantic configuration of API objects.

Objects are immutable values, fields use the API's camelCase spelling, and types are strict:
the API server rejects `port: "80"` as a number and `app: true` as a label value, so do we
(scalars are strict; lists are accepted where the model keeps tuples).
"""

from __future__ import annotations

from typing import Annotated, Any

# pydantic's plugin discovery (10-25 ms of every start) is turned off by podnet's entry
# points, not here: podnet.startup.
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)
from pydantic.alias_generators import to_camel

from podnet.model.names import check_label_key, check_label_value, check_port_number


class ApiModel(BaseModel):
    """Tolerates fields podnet does not read (status, managedFields, volumes, ...)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
        defer_build=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _null_is_unset(cls, data: Any) -> Any:
        """A field given as null is a field not given, as the API server decodes JSON.

        Go's encoding/json leaves a pointer, slice or map nil for `null`, exactly as for an
        absent key, and the API types mark every optional field `omitempty`: `podSelector:`
        with no value is the empty selector (all pods), `ingress: null` is no rules. Only
        fields the model knows are dropped, so that an unknown field stays reported even when
        null; a required field given as null is then reported as missing.
        """
        if isinstance(data, dict) and None in data.values():
            known = _field_keys(cls)
            return {k: v for k, v in data.items() if v is not None or k not in known}
        return data


_FIELD_KEYS: dict[type[BaseModel], frozenset[str]] = {}


def _field_keys(model: type[BaseModel]) -> frozenset[str]:
    """Every spelling of the model's fields in input: the API's alias and the Python name."""
    keys = _FIELD_KEYS.get(model)
    if keys is None:
        names = {n for n in model.model_fields}
        names |= {f.alias for f in model.model_fields.values() if f.alias}
        keys = _FIELD_KEYS[model] = frozenset(names)
    return keys


class StrictApiModel(ApiModel):
    """For objects whose every field podnet models: an unknown field is a typo to report."""

    model_config = ConfigDict(extra="forbid")


# Keys and values already found valid: a cluster's pods repeat a few label sets (replicas
# share their template's), and checking each again is most of validating a 100,000-pod dump.
# Only valid texts are kept, so an invalid one is reported every time.
_VALID_KEYS: set[str] = set()
_VALID_VALUES: set[str] = set()


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if key not in _VALID_KEYS:
            _VALID_KEYS.add(check_label_key(key))
        if value not in _VALID_VALUES:
            _VALID_VALUES.add(check_label_value(value))
    return labels


Labels = Annotated[dict[StrictStr, StrictStr], AfterValidator(_check_labels)]
PortNumber = Annotated[StrictInt, AfterValidator(check_port_number)]
Bool = StrictBool
Int = StrictInt
Str = StrictStr
Protocol = Annotated[str, Field(pattern=r"^(TCP|UDP|SCTP)$")]
