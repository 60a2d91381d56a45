"""The model: student mechanisms, agencies, regimes and the monthly step (no I/O).

Dependencies point one way: ``students``, ``agencies``, ``regimes`` (mechanisms) are used by
``model`` (the documented monthly step); ``metrics`` observes a model. Nothing here imports
from :mod:`dropout_sim.runs`, :mod:`dropout_sim.analysis` or :mod:`dropout_sim.app`.
"""

from .model import DropoutModel

__all__ = ["DropoutModel"]
