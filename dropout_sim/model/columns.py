"""Per-student arrays that grow with the county: one row per student currently in it.

The county adds a cohort every August and drops students who no longer matter (their cohort
left the county, or they completed and are not in a focal cohort). Every component that keeps
per-student state (the students, each agency, the referral and service bookkeeping) declares
its arrays once in ``COLUMNS``; :meth:`PerStudent.resize` then keeps the chosen rows and
appends blank rows for the new cohort in one place, so the rows of all components always
describe the same students in the same order (row ``i`` of every component is one student).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np


class PerStudent:
    """Mixin: per-student numpy arrays declared as ``COLUMNS = {name: (dtype, fill)}``.

    A column whose name is in ``WIDE`` has shape ``(rows, width)`` (e.g. one flag per agency);
    ``width`` is given to :meth:`allocate`.
    """

    COLUMNS: ClassVar[dict[str, tuple[Any, Any]]] = {}
    WIDE: ClassVar[tuple[str, ...]] = ()

    def allocate(self, rows: int, width: int = 0) -> None:
        """Create every declared column with ``rows`` rows of its fill value."""
        self._width = width
        for name, (dtype, fill) in self.COLUMNS.items():
            shape = (rows, width) if name in self.WIDE else (rows,)
            setattr(self, name, np.full(shape, fill, dtype=dtype))

    def resize(self, keep: np.ndarray, added: int) -> None:
        """Keep the rows ``keep`` (bool mask or sorted indices, order preserved), then append
        ``added`` rows holding each column's fill value."""
        for name, (dtype, fill) in self.COLUMNS.items():
            old = getattr(self, name)[keep]
            shape = (added, self._width) if name in self.WIDE else (added,)
            setattr(self, name, np.concatenate([old, np.full(shape, fill, dtype=dtype)]))

    def rows(self) -> int:
        name = next(iter(self.COLUMNS))
        return int(getattr(self, name).shape[0])

    def take(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Copies of every column at ``rows`` (for outputs)."""
        return {name: getattr(self, name)[rows].copy() for name in self.COLUMNS}
