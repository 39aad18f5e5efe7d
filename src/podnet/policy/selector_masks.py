"""Label selectors evaluated over many label sets at once (numpy), memoised per selector.

Each label key a selector mentions becomes one integer column (the code of the value, -1
where the key is absent); matchLabels, In, NotIn, Exists and DoesNotExist become array
comparisons on those columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from podnet.model.selectors import LabelSelector


class LabelTable:
    def __init__(self, label_sets: Sequence[Mapping[str, str]]) -> None:
        self.label_sets = label_sets
        self.size = len(label_sets)
        self._columns: dict[str, tuple[np.ndarray, dict[str, int]]] = {}
        self._memo: dict[str, np.ndarray] = {}

    def _column(self, key: str) -> tuple[np.ndarray, dict[str, int]]:
        col = self._columns.get(key)
        if col is None:
            codes: dict[str, int] = {}
            values = np.fromiter(
                (
                    codes.setdefault(ls[key], len(codes)) if key in ls else -1
                    for ls in self.label_sets
                ),
                dtype=np.int64,
                count=self.size,
            )
            col = self._columns[key] = (values, codes)
        return col

    def _equals_any(self, key: str, values: Sequence[str]) -> np.ndarray:
        col, codes = self._column(key)
        wanted = [codes[v] for v in values if v in codes]
        if not wanted:
            return np.zeros(self.size, dtype=bool)
        return np.isin(col, wanted)

    def match(self, sel: LabelSelector) -> np.ndarray:
        """Bool per label set; "An empty label selector matches all objects"."""
        memo_key = sel.model_dump_json()
        hit = self._memo.get(memo_key)
        if hit is not None:
            return hit
        m = np.ones(self.size, dtype=bool)
        for key, value in sel.match_labels.items():
            m &= self._equals_any(key, [value])
        for req in sel.match_expressions:
            if req.operator == "In":
                m &= self._equals_any(req.key, req.values)
            elif req.operator == "NotIn":
                m &= ~self._equals_any(req.key, req.values)
            elif req.operator == "Exists":
                m &= self._column(req.key)[0] >= 0
            else:
                m &= self._column(req.key)[0] < 0
        m.setflags(write=False)
        self._memo[memo_key] = m
        return m
