"""The shared pydantic configuration of API objects.

Objects are immutable values, fields use the API's camelCase spelling, and types are strict:
the API server rejects `port: "80"` as a number and `app: true` as a label value, so do we
(scalars are strict; lists are accepted where the model keeps tuples).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic.alias_generators import to_camel

from podnet.model.names import check_label_key, check_label_value, check_port_number


class ApiModel(BaseModel):
    """Tolerates fields podnet does not read (status, managedFields, volumes, ...)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
    )


class StrictApiModel(ApiModel):
    """For objects whose every field podnet models: an unknown field is a typo to report."""

    model_config = ConfigDict(extra="forbid")


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        check_label_key(key)
        check_label_value(value)
    return labels


Labels = Annotated[dict[StrictStr, StrictStr], AfterValidator(_check_labels)]
PortNumber = Annotated[StrictInt, AfterValidator(check_port_number)]
Bool = StrictBool
Int = StrictInt
Str = StrictStr
Protocol = Annotated[str, Field(pattern=r"^(TCP|UDP|SCTP)$")]
