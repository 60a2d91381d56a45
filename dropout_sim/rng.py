"""Named random streams with common random numbers (CRN), indexed by student.

Every random decision in the model is drawn from a *named stream* (``"dropout"``,
``"consent.ppt"``, ...). A draw is a pure function of ``(seed, replicate, stream name, month,
student id)``: a counter-based generator (two rounds of the SplitMix64/Murmur3 finaliser on
a 64-bit counter) turns that tuple into a uniform number. Consequences:

* the same config and seed give the same numbers, bit for bit, on any machine;
* replicate *r* of two scenarios shares every student-level draw, so scenario differences
  are paired (common random numbers);
* asking for draws for some students never shifts the draws of others, so changing one
  agency's behaviour does not reshuffle unrelated students' events;
* only the students a rule applies to are drawn for (no county-wide arrays per rule).

Each entry cohort of the county is drawn once, at its August, from a numpy ``Generator``
seeded from ``(seed, replicate, stream name, entry cohort)``, so a replicate's cohorts are
identical across its scenarios.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy.special import ndtri

_MASK64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MONTH_STRIDE = np.uint64(0xD1B54A32D192ED03)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_S11 = np.uint64(11)
_TO_UNIT = 1.0 / (1 << 53)


def _mix(z: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (a bijection on uint64 with full avalanche), in place (``tmp``: scratch
    of the same shape)."""
    np.right_shift(z, _S30, out=tmp)
    z ^= tmp
    z *= _M1
    np.right_shift(z, _S27, out=tmp)
    z ^= tmp
    z *= _M2
    np.right_shift(z, _S31, out=tmp)
    z ^= tmp
    return z


def _mix_int(x: int) -> int:
    """The same finaliser on a Python int (used to derive stream keys)."""
    x &= _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


class Streams:
    """Counter-based named random streams for one (seed, replicate).

    ``uniform(name, month, ids)`` returns one U[0, 1) number per id; the value for a given
    (name, month, id) never depends on which other ids are asked for.
    """

    def __init__(self, seed: int, replicate: int = 0):
        self.seed = int(seed)
        self.replicate = int(replicate)
        self._keys: dict[str, int] = {}

    def _key(self, name: str) -> int:
        key = self._keys.get(name)
        if key is None:
            key = _mix_int(self.seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019)
            key = _mix_int(key ^ (self.replicate * 0xC2B2AE3D27D4EB4F + 1))
            key = _mix_int(key ^ zlib.crc32(name.encode("utf-8")))
            self._keys[name] = key
        return key

    def uniform(self, name: str, month: int, ids: np.ndarray) -> np.ndarray:
        """U[0, 1) draws for students ``ids`` in ``month`` from stream ``name``."""
        ids = np.asarray(ids)
        if ids.ndim == 0:
            return self.uniform(name, month, ids.reshape(1))[0]
        base = np.uint64(_mix_int(self._key(name) + (int(month) + 1) * int(_MONTH_STRIDE)))
        # Array arithmetic in uint64 wraps modulo 2**64 silently (what the generator relies on);
        # int64 ids (non-negative) are reinterpreted, not copied.
        z = (ids.view(np.uint64) if ids.dtype == np.int64 else ids.astype(np.uint64)) * _GOLDEN
        z += base
        tmp = np.empty_like(z)
        _mix(z, tmp)
        z ^= base
        _mix(z, tmp)
        z >>= _S11
        out = z.astype(np.float64)
        out *= _TO_UNIT
        return out

    def bernoulli(self, name: str, month: int, ids: np.ndarray, p) -> np.ndarray:
        """True with probability ``p`` (scalar or per-id array) for each id."""
        return self.uniform(name, month, ids) < p

    def normal(self, name: str, month: int, ids: np.ndarray) -> np.ndarray:
        """Standard normal draws by inverting the CDF of the stream's uniforms."""
        u = self.uniform(name, month, ids)
        return ndtri(np.clip(u, 1e-16, 1 - 1e-16))

    def exponential(self, name: str, month: int, ids: np.ndarray, mean) -> np.ndarray:
        """Exponential draws with the given mean (scalar or per-id)."""
        return -np.log1p(-self.uniform(name, month, ids)) * mean

    def generator(self, name: str) -> np.random.Generator:
        """A numpy Generator for bulk draws that happen once (the cohort)."""
        ss = np.random.SeedSequence([self.seed & _MASK64, self.replicate, zlib.crc32(name.encode())])
        return np.random.Generator(np.random.PCG64(ss))
