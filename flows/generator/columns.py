"""Generator records held as parallel int64 arrays, one array a field."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Self

import numpy as np

from flows.generator.calendar import BOOL, I64


@dataclass(frozen=True)
class Columns:
    """Base of the frozen dataclasses whose fields are equal-length arrays, ``loan`` first."""

    loan: I64

    @property
    def size(self) -> int:
        """Number of records."""
        return int(self.loan.size)

    @classmethod
    def empty(cls) -> Self:
        """No records."""
        return cls(*(np.zeros(0, dtype=np.int64) for _ in fields(cls)))

    @classmethod
    def concat(cls, parts: list[Self]) -> Self:
        """All records of ``parts``, in order."""
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    def take(self, index: I64 | BOOL) -> Self:
        """The records at ``index`` (positions or a boolean mask)."""
        return type(self)(*(getattr(self, f.name)[index] for f in fields(self)))
