"""Secret (core/v1), as far as the ingress reads it: `kubernetes.io/tls` Secrets hold the
certificate and key that TLS terminates with (docs/ingress.md).

`data` values are base64 (the API server rejects anything else); `stringData` is merged
into `data` as the API server does on write ("stringData ... will be merged into the data
field on write, overwriting any existing values"). A `kubernetes.io/tls` Secret must hold
`tls.crt` and `tls.key` (ValidateSecret); whether they are a usable pair is the
controller's finding (a bad pair is reported, and the host served with the default
certificate), not an input error: a real API server does not check it either.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import Field, field_validator, model_validator

from podnet.model.base import ApiModel, Str
from podnet.model.meta import ObjectMeta

TLS_TYPE = "kubernetes.io/tls"
TLS_CERT, TLS_KEY = "tls.crt", "tls.key"


class Secret(ApiModel):
    kind: str = "Secret"
    api_version: str = "v1"
    metadata: ObjectMeta
    type: Str = "Opaque"
    data: dict[Str, Str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _merge_string_data(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and isinstance(raw.get("stringData"), dict):
            raw = dict(raw)
            encoded = {
                k: base64.b64encode(str(v).encode()).decode()
                for k, v in raw.pop("stringData").items()
            }
            raw["data"] = {**(raw.get("data") or {}), **encoded}
        return raw

    @field_validator("data")
    @classmethod
    def _base64(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"[{key}]: Invalid value: illegal base64 data") from None
        return v

    @model_validator(mode="after")
    def _tls_keys(self) -> Secret:
        if self.type == TLS_TYPE:
            for key in (TLS_CERT, TLS_KEY):
                if key not in self.data:
                    raise ValueError(f"data[{key}]: Required value: for type {TLS_TYPE}")
        return self

    def value(self, key: str) -> bytes:
        return base64.b64decode(self.data.get(key, ""))

    @property
    def key(self) -> str:
        return f"{self.metadata.namespace}/{self.metadata.name}"
