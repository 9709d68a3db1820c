"""Shared helpers for Optimus: exact primality, the odd-integer map, sampling, densities, overrides.

Bottom layer of the project: imports only the standard library, numpy, sympy (with its mpmath)
and gmpy2, so every other file can import it.

`is_prime` is the labelling oracle. Below 2**32 it runs fully vectorised in numpy: a sieve lookup
for small n, residue filters against small primes, then a deterministic Miller-Rabin test with
bases {2, 7, 61}, which is exact for n < 4,759,123,141 (Jaeschke 1993). For 2**32 <= n < 2**64
the survivors of the same filters go one by one through gmpy2.is_strong_prp with the first
twelve primes as bases, exact for n < 318,665,857,834,031,151,167,461 (Sorenson and Webster,
Math. Comp. 2017). Above 2**64 (up to 2**MAX_PRIME_BITS) no test of that speed is exact: there it
is gmpy2.is_prime(n, ORACLE_REPS), GMP's trial division, Baillie-PSW test and ORACLE_REPS - 24
Miller-Rabin rounds with random bases; GMP bounds the chance that a composite passes by
4**-ORACLE_REPS, and no composite is known to pass Baillie-PSW alone.
"""

import ast
import contextlib
import dataclasses
import difflib
import functools
import glob
import importlib
import io
import itertools
import math
import os
import re
import signal
import sys
import textwrap
import threading
from collections.abc import Callable, Mapping, Sequence

import gmpy2
import mpmath  # sympy's own numerics library, installed with it
import numpy as np
import sympy

# --- primality oracle -------------------------------------------------------------------------
PRIME_INPUT_LIMIT = 2**64  # is_prime is exact for 0 <= n < this
MAX_PRIME_BITS = 4096     # ... and a probable-prime test above it, for n < 2**MAX_PRIME_BITS
ORACLE_REPS = 32          # gmpy2.is_prime's reps there: a composite passes with probability < 4**-32
VECTOR_LIMIT = 2**32  # below this, n*n fits in uint64 and the test stays in numpy
SIEVE_LIMIT = 2**16  # n below this is looked up in a sieve table (64 KiB)
ODD_SIEVE_LIMIT = 2**26  # odd n below this are looked up in a bit-packed sieve (4 MiB, ~0.05 s
                         # to build); it covers every candidate of the default generator (< 2**25+2),
                         # where a few hundred labels per training step would otherwise pay
                         # numpy's per-call overhead ~300 times
# Trial-division filters, grouped so each product indexes a small lookup table. They must cover
# every Miller-Rabin base: gmpy2.is_strong_prp refuses n sharing a factor with the base.
SMALL_PRIME_GROUPS = ((3, 5, 7, 11, 13), (17, 19, 23), (29, 31, 37), (41, 43, 47), (53, 59, 61))
MR_BASES_32 = (2, 7, 61)  # deterministic Miller-Rabin bases for n < 4,759,123,141
MR_BASES_64 = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)  # same, for n < 3.18e23

# --- odd-integer map, densities -----------------------------------------------------------------
MAX_ODD_INPUT = 2**62  # to_odd_integer input cap: 2*round(x)+1 < 2**63 + 2 fits in uint64
EXACT_DENSITY_LIMIT = 10**11  # odd_prime_density counts primes exactly up to here (~3 s)
WINDOW_SCALE = 0.003          # local_density's windows are WINDOW_SCALE * n * ln n wide: placing
                              # outputs at their bottoms gains at most WINDOW_SCALE / 2 = 0.15%
MIN_WINDOW = 64               # ... and at least this wide (below n ~ 3000)


class OptimusError(ValueError):
    """A bad setting or input (constant, argument, checkpoint): the scripts show it as one line, exit 2."""


def one_line(err: BaseException) -> str:
    """An error's message on one line, as the scripts print it."""
    return " ".join(str(err).splitlines())


def print_error(err: BaseException) -> None:
    """The scripts' report of a user error: one line ``error: ...`` on stderr."""
    print("error: " + one_line(err), file=sys.stderr, flush=True)


def output_failed(err: OSError) -> int:
    """A script's end when writing its output failed (a closed pipe, a full device): one line on
    stderr, stdout pointed at /dev/null so that the interpreter's last flush stays quiet; exit 2."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    what = "standard output was closed" if isinstance(err, BrokenPipeError) else (
        f"cannot write the output ({err.strerror or err})")
    try:
        print(f"error: {what}", file=sys.stderr, flush=True)
    except OSError:
        pass
    return 2


def _sieve(limit: int) -> np.ndarray:
    """Boolean table of length `limit`: entry k says whether k is prime."""
    table = np.ones(limit, dtype=bool)
    table[:2] = False
    for p in range(2, math.isqrt(limit - 1) + 1):
        if table[p]:
            table[p * p :: p] = False
    return table


def _odd_sieve_bits(limit: int) -> np.ndarray:
    """Bit-packed table (little-endian bits): bit k says whether 2k+1 is prime, for 2k+1 < limit."""
    odd = np.ones(limit // 2, dtype=bool)
    odd[0] = False  # 1 is not prime
    for p in range(3, math.isqrt(limit - 1) + 1, 2):
        if odd[p // 2]:
            odd[p * p // 2 :: p] = False  # odd multiples p*p, p*p + 2p, ... sit p apart in k
    return np.packbits(odd, bitorder="little")


def _coprime_table(modulus: int) -> np.ndarray:
    """Boolean table of length `modulus`: entry r says whether gcd(r, modulus) == 1."""
    return np.gcd(np.arange(modulus), modulus) == 1


def _power_table(base: int) -> tuple[int, np.ndarray]:
    """Largest window w with base**(2**w - 1) < 2**32, and base**v for v < 2**w (uint64)."""
    width = 1
    while base ** (2 ** (width + 1) - 1) < VECTOR_LIMIT:
        width += 1
    return width, np.array([base**v for v in range(2**width)], dtype=np.uint64)


_SIEVE = _sieve(SIEVE_LIMIT)
_ODD_SIEVE = _odd_sieve_bits(ODD_SIEVE_LIMIT)
_FILTERS = tuple((math.prod(g), _coprime_table(math.prod(g))) for g in SMALL_PRIME_GROUPS)
_POWER_TABLES = {base: _power_table(base) for base in MR_BASES_32}
_FILTER_PRODUCT = math.prod(modulus for modulus, _ in _FILTERS)


def _passes_filters(values: np.ndarray) -> np.ndarray:
    """Mask of `values` (uint32 or uint64, all >= SIEVE_LIMIT) with no factor in SMALL_PRIME_GROUPS."""
    keep = np.ones(values.shape, dtype=bool)
    residue = np.empty_like(values)
    for modulus, table in _FILTERS:
        # v - (v // m) * m: numpy vectorises division by a scalar, not the remainder
        m = values.dtype.type(modulus)
        np.floor_divide(values, m, out=residue)
        np.multiply(residue, m, out=residue)
        np.subtract(values, residue, out=residue)
        keep &= np.take(table, residue)
    return keep


def _strong_probable_prime(n: np.ndarray, base: int) -> np.ndarray:
    """Miller-Rabin strong test of odd n (uint64, 61 < n < 2**32) to `base`; bool mask, shape of n.

    Exponentiation is left to right in windows of the base's power table, so every product stays
    below 2**64 and `%` on uint64 is exact.
    """
    width, powers = _POWER_TABLES[base]
    n_minus_1 = n - np.uint64(1)
    low_bit = n_minus_1 & (~n_minus_1 + np.uint64(1))  # 2**s, where n - 1 = d * 2**s
    d = n_minus_1 // low_bit
    n_windows = -(-int(d.max(initial=1)).bit_length() // width)
    mask = np.uint64(2**width - 1)
    shift = (n_windows - 1) * width
    x = np.take(powers, d >> np.uint64(shift)) % n
    digit = np.empty_like(n)
    for shift in range(shift - width, -1, -width):
        for _ in range(width):
            np.multiply(x, x, out=x)
            np.remainder(x, n, out=x)
        np.right_shift(d, np.uint64(shift), out=digit)
        np.bitwise_and(digit, mask, out=digit)
        np.multiply(x, np.take(powers, digit), out=x)
        np.remainder(x, n, out=x)
    # x = base**d mod n. Prime n: x == 1, or x**(2**j) == n - 1 for some j < s.
    passed = (x == 1) | (x == n_minus_1)
    open_ = np.flatnonzero(~passed & (low_bit > 2))
    x, n, n_minus_1, low_bit = x[open_], n[open_], n_minus_1[open_], low_bit[open_]
    j = 1
    while open_.size:
        np.multiply(x, x, out=x)
        np.remainder(x, n, out=x)
        hit = x == n_minus_1
        passed[open_[hit]] = True
        # x == 1 now means composite; past j = s - 1 the chain has ended
        j += 1
        go_on = ~hit & (x != 1) & (low_bit > np.uint64(2**j))
        open_, x, n, n_minus_1, low_bit = (a[go_on] for a in (open_, x, n, n_minus_1, low_bit))
    return passed


def _is_prime_below_2_32(n: np.ndarray) -> np.ndarray:
    """Exact primality of odd n (uint64, SIEVE_LIMIT <= n < 2**32); bool, shape of n."""
    result = np.zeros(n.shape, dtype=bool)
    alive = np.flatnonzero(_passes_filters(n.astype(np.uint32)))
    values = n[alive]
    for base in MR_BASES_32:  # almost only primes get past base 2
        keep = _strong_probable_prime(values, base)
        alive, values = alive[keep], values[keep]
    result[alive] = True
    return result


def _strong_probable_primes(values: list[int], bases: tuple[int, ...]) -> np.ndarray:
    """Mask of `values` (odd, coprime to every base) that are strong probable primes to all bases.

    Base by base over the whole list, so most composites cost one call.
    """
    result = np.zeros(len(values), dtype=bool)
    alive = np.arange(len(values))
    for base in bases:
        passed = np.fromiter(map(gmpy2.is_strong_prp, values, itertools.repeat(base)), bool, len(values))
        alive = alive[passed]
        values = [gmpy2.mpz(v) for v in itertools.compress(values, passed)]  # mostly primes now
    result[alive] = True
    return result


def _is_prime_scalar(value: int) -> bool:
    """Exact primality of one integer 0 <= value < 2**64, through gmpy2's strong test."""
    if value < SIEVE_LIMIT:
        return bool(_SIEVE[value])
    if value % 2 == 0 or math.gcd(value, _FILTER_PRODUCT) != 1:
        return False
    bases = MR_BASES_32 if value < VECTOR_LIMIT else MR_BASES_64
    value = gmpy2.mpz(value)
    return all(gmpy2.is_strong_prp(value, base) for base in bases)


def _is_prime_flat(n: np.ndarray) -> np.ndarray:
    """Exact primality of every entry of a 1-D uint64 array; bool, same shape."""
    result = np.zeros(n.shape, dtype=bool)
    small = n < SIEVE_LIMIT
    result[small] = _SIEVE[n[small]]
    odd = (n & np.uint64(1)) == 1
    sieved = np.flatnonzero(odd & ~small & (n < ODD_SIEVE_LIMIT))
    if sieved.size:
        k = n[sieved] >> np.uint64(1)
        bits = _ODD_SIEVE[k >> np.uint64(3)] >> (k & np.uint64(7)).astype(np.uint8)
        result[sieved] = (bits & np.uint8(1)).astype(bool)
    mid = np.flatnonzero(odd & (n >= ODD_SIEVE_LIMIT) & (n < VECTOR_LIMIT))
    if mid.size:  # empty branches still cost tens of microseconds of numpy calls
        result[mid] = _is_prime_below_2_32(n[mid])
    big = np.flatnonzero(odd & (n >= VECTOR_LIMIT))
    if big.size:
        big = big[_passes_filters(n[big])]
        result[big] = _strong_probable_primes(n[big].tolist(), MR_BASES_64)
    return result


def _invalid_prime_input(value: object) -> ValueError:
    return ValueError(f"is_prime: {value!r} is not an integer in [0, 2**{MAX_PRIME_BITS})")


def _is_valid_integer(value: object) -> bool:
    return (
        isinstance(value, (int, np.integer))
        and not isinstance(value, (bool, np.bool_))
        and 0 <= value < 2**MAX_PRIME_BITS
    )


def _is_probable_prime(value: int) -> bool:
    """gmpy2's probable-prime test for value >= 2**64 (see the module docstring)."""
    return bool(gmpy2.is_prime(gmpy2.mpz(value), ORACLE_REPS))


def _as_uint64(n: object) -> np.ndarray:
    """Validated copy of n as a uint64 array, keeping the input's shape."""
    if isinstance(n, np.ndarray) and n.dtype.kind in "iu":
        if n.dtype.kind == "i" and n.size and n.min() < 0:
            raise _invalid_prime_input(n[n < 0].flat[0].item())
        return n.astype(np.uint64, copy=False)
    if isinstance(n, np.ndarray) and n.dtype.kind != "O":
        if n.size:
            raise _invalid_prime_input(n.flat[0].item())
        raise ValueError(f"is_prime: expected an integer array, got dtype {n.dtype}")
    items = np.array(n, dtype=object)
    for value in items.flat:
        if not _is_valid_integer(value):
            raise _invalid_prime_input(value)
    return items


def is_prime(n) -> bool | np.ndarray:
    """Primality of integers 0 <= n < 2**MAX_PRIME_BITS: exact below 2**64, a probable-prime test
    above (``ORACLE_REPS``).

    n: a Python or numpy integer (returns a bool), or a list (nested ok), integer-dtype array or
    object array of Python ints (returns a bool array of the same shape). Raises ValueError
    naming the first value that is negative, not an integer (floats, bools, strings), or too large.
    """
    if isinstance(n, (int, np.integer)) and not isinstance(n, (bool, np.bool_)):
        if not _is_valid_integer(n):
            raise _invalid_prime_input(n)
        return _is_prime_scalar(int(n)) if n < PRIME_INPUT_LIMIT else _is_probable_prime(int(n))
    values = _as_uint64(n)
    if values.dtype != object:
        return _is_prime_flat(values.ravel()).reshape(values.shape)
    flat = values.ravel()
    large = np.fromiter((v >= PRIME_INPUT_LIMIT for v in flat), bool, flat.size)
    result = np.zeros(flat.size, dtype=bool)
    result[~large] = _is_prime_flat(flat[~large].astype(np.uint64))
    result[large] = [_is_probable_prime(v) for v in flat[large]]
    return result.reshape(values.shape)


def to_odd_integer(x) -> np.ndarray:
    """Map strictly positive reals to odd integers 2*round(x)+1; uint64 array, shape of x.

    x: real scalar or array-like (any integer or float dtype; integers map exactly). Rounding is
    numpy's, half to even: 0.5 -> 1, 1.5 -> 5. Raises ValueError with the number of entries that
    are NaN, infinite, <= 0 or >= MAX_ODD_INPUT, rather than wrapping around.
    """
    values = np.asarray(x)
    if values.dtype.kind not in "iuf":
        raise ValueError(f"to_odd_integer: expected real numbers, got dtype {values.dtype}")
    finite = np.isfinite(values)
    counts = {
        "NaN or infinite": np.count_nonzero(~finite),
        "<= 0": np.count_nonzero(finite & (values <= 0)),
        f">= MAX_ODD_INPUT ({MAX_ODD_INPUT:.3g})": np.count_nonzero(finite & (values >= MAX_ODD_INPUT)),
    }
    if any(counts.values()):
        detail = ", ".join(f"{count} {kind}" for kind, count in counts.items() if count)
        raise ValueError(f"to_odd_integer: {sum(counts.values())} of {values.size} values are invalid ({detail})")
    if values.dtype.kind == "f":
        values = np.rint(values)
    return values.astype(np.uint64) * np.uint64(2) + np.uint64(1)


def integers(values) -> np.ndarray:
    """Integers as an int64 array when they all fit (>= 0 and < 2**63), else an object array of
    Python ints; floats must be whole. Shape of ``values``."""
    array = np.asarray(values)
    if array.dtype.kind == "f":
        if not (np.isfinite(array).all() and (array == np.round(array)).all()):
            raise ValueError("integers: expected whole numbers")
        array = array.astype(np.int64)
    if array.dtype.kind in "iu":
        if array.size and (array.min() < 0 or (array.dtype.kind == "u" and array.max() >= 2**63)):
            return np.array([int(v) for v in array.flat], dtype=object).reshape(array.shape)
        return array.astype(np.int64)
    whole = [int(v) for v in array.flat]
    if all(0 <= v < 2**63 for v in whole):
        return np.array(whole, dtype=np.int64).reshape(array.shape)
    return np.array(whole, dtype=object).reshape(array.shape)


def bit_lengths(values: np.ndarray) -> np.ndarray:
    """The number of binary digits of each positive integer (int64, uint64 or Python ints): int64."""
    if values.dtype == object:
        return np.fromiter((int(v).bit_length() for v in values.flat), np.int64, values.size).reshape(values.shape)
    n, length = values.astype(np.uint64), np.zeros(values.shape, dtype=np.int64)
    for shift in (32, 16, 8, 4, 2, 1):  # binary search on the highest set bit, exact
        high = n >= np.uint64(1 << shift)
        length += shift * high
        n = np.where(high, n >> np.uint64(shift), n)
    return length + (n > 0)


def residues(values: np.ndarray, p: int) -> np.ndarray:
    """values mod p, exactly, for an int64 array or an object array of Python ints: int64, same shape."""
    if values.dtype == object:
        return np.fromiter((int(v) % p for v in values.flat), np.int64, values.size).reshape(values.shape)
    return np.mod(values, p)


def random_big_integers(low: int, high: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` integers drawn uniformly from [low, high], any size: Python ints in an object array.

    By rejection on random bits drawn from ``rng``, so the same seed gives the same integers.
    Distinct in practice where this is used (spans far beyond ``size``), not by construction.
    """
    span = high - low + 1
    bits = span.bit_length()
    nbytes, shift = (bits + 7) // 8, -bits % 8
    out = []
    while len(out) < size:  # one draw of random bytes per round: rng.bytes costs microseconds a call
        block = rng.bytes(nbytes * (size - len(out)))
        values = (int.from_bytes(block[i:i + nbytes], "little") >> shift for i in range(0, len(block), nbytes))
        out += [low + v for v in values if v < span]
    return np.array(out, dtype=object)


def random_vector_integers(low, high, size, rng: np.random.Generator | None = None) -> np.ndarray:
    """`size` distinct integers drawn uniformly from [low, high]; int64 array of shape (size,).

    Without replacement, in random order. rng: a numpy Generator (None: a fresh unseeded one).
    Works for ranges up to 2**63 - 1 wide without building the range in memory.
    """
    caller = "random_vector_integers"
    low, high, size = (check(f"{caller}: {k}", v, 0) for k, v in (("low", low), ("high", high), ("size", size)))
    int64 = np.iinfo(np.int64)
    if not int64.min <= low <= high <= int64.max:
        raise ValueError(f"{caller}: need int64 bounds with low <= high, got low={low}, high={high}")
    span = high - low + 1
    if span > int64.max:
        raise ValueError(f"{caller}: range [{low}, {high}] is wider than 2**63 - 1")
    if not 0 <= size <= span:
        raise ValueError(f"{caller}: size must be in [0, {span}] for [{low}, {high}], got {size}")
    if rng is None:
        rng = np.random.default_rng()
    elif not isinstance(rng, np.random.Generator):
        raise ValueError(f"{caller}: rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
    # Generator.choice without replacement uses Floyd's algorithm when span >> size
    offsets = rng.choice(span, size=size, replace=False).astype(np.int64)
    return offsets + np.int64(low)


def random_integers(low: int, high: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` integers uniform in [low, high]: distinct int64 (``random_vector_integers``) when
    high < 2**63, else Python ints (``random_big_integers``)."""
    if high < 2**63:
        return random_vector_integers(low, high, size, rng)
    return random_big_integers(low, high, size, rng)


_BITS_PER_BYTE = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1)


@functools.cache
def _odd_prime_prefix() -> np.ndarray:
    """Entry b: the number of odd primes among the 8*b first odd integers (from _ODD_SIEVE)."""
    counts = _BITS_PER_BYTE[_ODD_SIEVE].astype(np.int64)
    return np.concatenate([[0], np.cumsum(counts)])


@functools.lru_cache(maxsize=4096)
def _primepi(n: int) -> int:
    return int(sympy.primepi(n))


def prime_count(n: int) -> int:
    """pi(n), the number of primes <= n, exactly: from the oracle's sieve below ODD_SIEVE_LIMIT,
    else sympy.primepi (cached; about 0.06 s at 3e8 and 1 s at 1e10)."""
    n = int(n)
    if n < 2:
        return 0
    if n >= ODD_SIEVE_LIMIT:
        return _primepi(n)
    k = (n - 1) // 2 + 1  # the odd integers 1, 3, ..., n are bits 0..k-1
    whole, rest = divmod(k, 8)
    partial = int(_ODD_SIEVE[whole] & ((1 << rest) - 1)) if rest else 0
    return 1 + int(_odd_prime_prefix()[whole]) + int(_BITS_PER_BYTE[partial])


def odd_primes_between(lo: int, hi: int) -> np.ndarray:
    """The odd primes in [lo, hi], ascending, uint64; from the oracle's sieve, so hi < ODD_SIEVE_LIMIT."""
    lo, hi = int(lo), int(hi)
    if not hi < ODD_SIEVE_LIMIT:
        raise ValueError(f"odd_primes_between: hi={hi} is not below {ODD_SIEVE_LIMIT}")
    first, last = max(lo, 3) // 2, (hi - 1) // 2  # bit k stands for 2k + 1
    if last < first:
        return np.zeros(0, dtype=np.uint64)
    bits = np.unpackbits(_ODD_SIEVE[first // 8: last // 8 + 1], bitorder="little")
    k = np.flatnonzero(bits[first % 8: first % 8 + last - first + 1]) + first
    odd = 2 * k.astype(np.uint64) + np.uint64(1)
    return odd[odd >= lo]


def _odd_count(lo: int, hi: int) -> int:
    """Number of odd integers in [lo, hi], for 0 <= lo."""
    return (hi + 1) // 2 - lo // 2


def _approx_odd_prime_count(lo: int, hi: int) -> float:
    """li(hi) - li(max(lo, 2)) primes in [lo, hi], less one for the prime 2 when lo <= 2."""
    count = float(mpmath.li(hi) - mpmath.li(max(lo, 2)))
    return count - 1.0 if lo <= 2 <= hi else count


def odd_prime_density(lo, hi) -> float:
    """Fraction of the odd integers in [lo, hi] that are prime (2 is even: it never counts).

    Exact (``prime_count``) while hi <= EXACT_DENSITY_LIMIT. Above it, the prime count of
    both ends is approximated by the logarithmic integral, (li(hi) - li(lo)) / #odd: accurate
    to far better than 1% for ranges holding thousands of primes, rough for narrow ones.
    Requires integers 0 <= lo <= hi with at least one odd integer between them.
    """
    caller = "odd_prime_density"
    lo, hi = check(f"{caller}: lo", lo, 0), check(f"{caller}: hi", hi, 0)
    if not 0 <= lo <= hi:
        raise ValueError(f"{caller}: need 0 <= lo <= hi, got lo={lo}, hi={hi}")
    n_odd = _odd_count(lo, hi)
    if n_odd == 0:
        raise ValueError(f"{caller}: [{lo}, {hi}] holds no odd integer")
    if hi > EXACT_DENSITY_LIMIT:
        return _approx_odd_prime_count(lo, hi) / n_odd
    primes = prime_count(hi) - prime_count(lo - 1)
    return (primes - (lo <= 2 <= hi)) / n_odd


def odd_primes(largest: int) -> tuple:
    """The odd primes p <= largest."""
    return tuple(p for p in range(3, largest + 1, 2) if is_prime(p))


LOG_EPSILON = 1e-7              # probabilities are clipped to [eps, 1-eps] before a log (losses,
                                # rewards, the report's log-losses)


def rough_ceiling(largest_prime: int) -> float:
    """prod p/(p-1) over the odd primes p <= largest_prime: how much more often than random odd
    integers of their size outputs that avoid every such factor are prime (3.27 for 31)."""
    return math.prod(p / (p - 1) for p in odd_primes(largest_prime))


def _window_edges(limit: int) -> np.ndarray:
    """Left edges of the density windows, from 1 up to past ``limit`` (int64)."""
    edges = [1]
    while edges[-1] <= limit:
        n = edges[-1]
        edges.append(n + max(MIN_WINDOW, int(WINDOW_SCALE * n * math.log(n))))
    return np.array(edges, dtype=np.int64)


_EDGES = _window_edges(2**62)
PNT_START = 2**62               # local_density past its grid of windows: 2 / ln n


def density_window(n: int) -> tuple[int, int]:
    """The window [lo, hi] of the density grid that holds the integer n >= 1."""
    i = int(np.searchsorted(_EDGES, n, side="right")) - 1
    return int(_EDGES[i]), int(_EDGES[i + 1]) - 1


def local_density(candidates) -> np.ndarray:
    """Chance's prime rate at each odd candidate: the prime share of odd integers in its window.

    candidates: integer array >= 1 (uint64, or Python ints of any size). The windows tile the
    integers with widths max(MIN_WINDOW, WINDOW_SCALE * n * ln n): narrow enough that outputs
    placed at the bottom of every window beat chance by at most WINDOW_SCALE / 2 (0.15%), and
    wide enough to average over residues modulo small primes. Counts are exact up to
    EXACT_DENSITY_LIMIT, the logarithmic integral above (see ``odd_prime_density``), and past
    the grid (2**62) the prime number theorem's local density 2 / ln n. Returns float64, the
    shape of ``candidates``.
    """
    values = integers(candidates)
    flat = values.reshape(-1)
    beyond = (np.fromiter((v > PNT_START for v in flat), bool, flat.size) if flat.dtype == object
              else flat > PNT_START)
    density = np.empty(flat.size)
    density[beyond] = [2.0 / math.log(int(v)) for v in flat[beyond]]
    index = np.searchsorted(_EDGES, flat[~beyond].astype(np.int64), side="right") - 1
    windows, inverse = np.unique(index, return_inverse=True)
    counted = np.array([odd_prime_density(int(_EDGES[w]), int(_EDGES[w + 1]) - 1) for w in windows])
    density[~beyond] = counted[inverse] if windows.size else []
    return density.reshape(values.shape)


# --- settings: one way to check them ----------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Rule:
    """What a setting may be beyond its type: a test of the value, and the words for it."""
    test: Callable[[object], bool]
    allowed: str


def at_least(low, kind: str = "an integer") -> Rule:
    """Values >= low."""
    return Rule(lambda v: v >= low, f"{kind} >= {low}")


def between(low, high, kind: str = "a number", brackets: str = "[]") -> Rule:
    """Values in the interval between low and high; brackets "[]", "(]", "[)" or "()"."""
    closed_low, closed_high = brackets[0] == "[", brackets[1] == "]"
    return Rule(lambda v: (low <= v if closed_low else low < v) and (v <= high if closed_high else v < high),
                f"{kind} in {brackets[0]}{low}, {high}{brackets[1]}")


def one_of(*choices) -> Rule:
    """One of the given values."""
    return Rule(lambda v: v in choices, " or ".join(repr(c) for c in choices))


def _type_text(example: object) -> str:
    """What a value must be to replace ``example``, for error messages."""
    if isinstance(example, bool):
        return "True or False"
    if isinstance(example, int):
        return "an integer"
    if isinstance(example, float):
        return "a number"
    return f"a {type(example).__name__}"


def _coerce(value: object, example: object) -> tuple[bool, object]:
    """(ok, value converted to the example's type); an int may stand for a float."""
    if isinstance(example, bool) or isinstance(value, (bool, np.bool_)):
        return isinstance(value, (bool, np.bool_)) and isinstance(example, bool), bool(value)
    if isinstance(example, int):
        return isinstance(value, (int, np.integer)), int(value) if isinstance(value, (int, np.integer)) else value
    if isinstance(example, float) and isinstance(value, (int, float, np.integer, np.floating)):
        try:
            return math.isfinite(float(value)), float(value)
        except OverflowError:
            return False, value
    return type(value) is type(example), value


def check(name: str, value: object, example: object, rule: Rule | None = None) -> object:
    """``value`` with the type of ``example`` (an int may stand for a float), passing ``rule``.

    The one check of every setting: the scripts' constants and arguments, and the library's.
    Raises OptimusError "<name> must be <allowed> (got <type> <value>)", naming the rule's
    words, or the type's when there is no rule.
    """
    ok, converted = _coerce(value, example)
    if ok and rule is not None:
        try:
            ok = bool(rule.test(converted))
        except TypeError:
            ok = False
    if not ok:
        allowed = rule.allowed if rule is not None else _type_text(example)
        raise OptimusError(f"{name} must be {allowed} (got {type(value).__name__} {value!r})")
    return converted


def parse_overrides(argv: Sequence[str], defaults: Mapping[str, object],
                    rules: Mapping[str, Rule] | None = None) -> dict:
    """Apply nanoGPT-style ``--name=value`` overrides to ``defaults``; returns a new dict.

    argv: the arguments after the script name. A value is read with ast.literal_eval, or kept as
    the raw text if it is not a literal (``--out=abc``); then ``check`` compares it with the
    default and the name's rule. A str default takes any text. Expressions such as 10**6 are
    not literals, and 1e6 is a float, so neither replaces an int default. A bare ``--name``
    means True for a bool default. Raises OptimusError, one line that starts with the token,
    for any other form, unknown names, wrong types and failed rules.
    """
    rules = rules or {}
    config = dict(defaults)
    for token in argv:
        if not token.startswith("--"):
            raise OptimusError(f"{token}: expected --name=value")
        name, has_value, text = token[2:].partition("=")
        if name not in defaults:
            close = difflib.get_close_matches(name, list(defaults), n=1)
            hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(defaults)})"
            raise OptimusError(f"{token}: unknown constant {name!r}{hint}")
        default = defaults[name]
        if not has_value:
            if not isinstance(default, bool):
                allowed = rules[name].allowed if name in rules else _type_text(default)
                raise OptimusError(f"{token}: give a value, as --{name}=VALUE ({name} must be {allowed})")
            value = True
        elif isinstance(default, str):
            value = text[1:-1] if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"" else text
        else:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                value = text
        try:
            config[name] = check(name, value, default, rules.get(name))
        except OptimusError as err:
            raise OptimusError(f"{token}: {err}") from None
    return config


HELP_FLAGS = ("--help", "-h")
HELP_WIDTH = 96                 # characters per line of a --help page


def wants_help(argv: Sequence[str]) -> bool:
    """Whether the command line asks for the usage (``--help`` or ``-h``)."""
    return any(token in HELP_FLAGS for token in argv)


def constant_docs(path) -> dict:
    """{name: meaning} from a script's block of constants: the comment after each ``name = value``
    line, with the comment lines that continue it (indented, starting with #)."""
    docs, current = {}, None
    for line in open(path, encoding="utf-8").read().splitlines():
        head = re.match(r"^([a-z_][a-z0-9_]*) = .*?\s#\s?(.*)$", line)
        more = re.match(r"^\s+#\s?(.*)$", line)
        if head:
            current = head.group(1)
            docs[current] = head.group(2).strip()
        elif more and current:
            docs[current] += " " + more.group(1).strip()
        else:
            current = None
    return docs


def help_text(usage: str, defaults: Mapping[str, object], docs: Mapping[str, str]) -> str:
    """The ``--help`` page: the usage, then every constant with its default and meaning."""
    lines = [usage, "", "constants, each overridden as --name=value (default, then meaning):"]
    for name, default in defaults.items():
        lines.append(f"  --{name} = {default!r}")
        if docs.get(name):
            lines += textwrap.wrap(docs[name], HELP_WIDTH, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


def print_help(usage: str, defaults: Mapping[str, object], docs: Mapping[str, str]) -> int:
    """Print ``help_text`` on stdout: exit status 0, or 2 if stdout is closed (``output_failed``)."""
    try:
        print(help_text(usage, defaults, docs), flush=True)
    except OSError as err:
        return output_failed(err)
    return 0


def given_names(argv: Sequence[str]) -> set:
    """The names that ``--name=value`` arguments set (after ``parse_overrides`` accepted them)."""
    return {token[2:].partition("=")[0] for token in argv}


# --- start-up ----------------------------------------------------------------------------------
TF_LOG_LEVEL = "1"              # TF_CPP_MIN_LOG_LEVEL unless the user sets one: hide notes, show
                                # warnings and errors (0 also shows notes, 2 hides warnings)
_LOG_LINE = re.compile(rb"^([IWEF])\d{4} ")  # TensorFlow's C++ log lines: severity, then the date
_ABSL_BANNER = b"WARNING: All log messages before absl::InitializeLog() is called"


def _forward_log_lines(read_end: int, out: int, level: int) -> None:
    """Copy lines from the pipe ``read_end`` to ``out``, dropping TensorFlow's below ``level``."""
    with os.fdopen(read_end, "rb") as pipe:
        for line in pipe:
            severity = _LOG_LINE.match(line)
            if severity and "IWEF".index(severity.group(1).decode()) < level:
                continue
            if line.startswith(_ABSL_BANNER) and level >= 1:
                continue
            if _NO_GPU_LINE in line and not glob.glob("/dev/nvidia[0-9]*"):
                continue  # CUDA's libraries are installed, the machine has no GPU: nothing is wrong
            os.write(out, line)


_NO_GPU_LINE = b"failed call to cuInit"  # TensorFlow's error line where CUDA finds no device

_CTRL_C_HANDLERS = []            # what a Ctrl-C calls, innermost last (none: the process ends)
_CTRL_C_WATCHED = threading.Event()
CTRL_C_EXIT = 130               # exit status of a process that a Ctrl-C ended (128 + SIGINT)


def watch_ctrl_c(message: str) -> None:
    """For an entry script, before TensorFlow starts its threads: Ctrl-C goes to a thread of its own.

    SIGINT must be blocked before any thread starts (numpy's import starts some): the caller does
    that first, with signal.pthread_sigmask. Python runs a signal handler in the main thread wherever the interpreter checks for signals,
    including inside TensorFlow's C++ calls, and a handler that runs there can corrupt the heap
    (glibc aborts with "corrupted size vs. prev_size"), even one that only sets a flag. So SIGINT
    is blocked in the main thread, and in every thread started after it, and one thread waits
    for it: it calls the innermost handler of ``on_ctrl_c``, or with none prints ``message`` and
    ends the process at once with status 130.
    """
    if _CTRL_C_WATCHED.is_set():
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.default_int_handler)  # not ignored (as in a background
    _CTRL_C_WATCHED.set()                                       # job): an ignored one is discarded
    threading.Thread(target=_wait_for_ctrl_c, args=(message,), name="ctrl-c", daemon=True).start()


def _wait_for_ctrl_c(message: str) -> None:
    while True:
        signal.sigwait({signal.SIGINT})
        if _CTRL_C_HANDLERS:
            _CTRL_C_HANDLERS[-1]()
        else:
            end_at_once(message)


def end_at_once(message: str) -> None:
    """Print ``message`` on stderr and end the process with status 130, running nothing else:
    no exception unwinds through TensorFlow and no interpreter shutdown runs beside its threads."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, RuntimeError):
            pass  # a write to this stream was interrupted, or it is closed
    try:
        os.write(sys.stderr.fileno(), f"\n{message}\n".encode())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass
    os._exit(CTRL_C_EXIT)


@contextlib.contextmanager
def on_ctrl_c(handler: Callable[[], None]):
    """Within the block, a Ctrl-C calls ``handler()``: from the thread of ``watch_ctrl_c`` when an
    entry script started it, else as a signal handler of the main thread (in-process use)."""
    if _CTRL_C_WATCHED.is_set():
        _CTRL_C_HANDLERS.append(handler)
        try:
            yield
        finally:
            _CTRL_C_HANDLERS.remove(handler)
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: handler())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def quiet_startup(modules: Sequence[str] = ("tensorflow", "keras")) -> None:
    """For an entry script, before anything imports TensorFlow: import it at a documented log level.

    TensorFlow's C++ side obeys TF_CPP_MIN_LOG_LEVEL (set here to TF_LOG_LEVEL unless the user
    chose one), except for the notes it prints while it loads, before its logging starts. Those
    pass through a pipe that applies the same level, line by line, as they are printed: no
    warning or error is held back, and every other line goes through. Python-side notes
    (absl logging, e.g. Keras's "legacy .h5" remark) are limited to errors.
    """
    level_text = os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)
    level = int(level_text) if level_text.isdigit() else 0
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    saved = os.dup(2)
    forwarder = threading.Thread(target=_forward_log_lines, args=(read_end, saved, level), daemon=True)
    forwarder.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        for name in modules:
            importlib.import_module(name)
        if "tensorflow" in modules:  # CUDA starts at the first device query: inside the filter
            sys.modules["tensorflow"].config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)  # drops the pipe's last write end: the forwarder reads to the end
        forwarder.join()
        os.close(saved)
    if "absl.logging" in sys.modules:
        sys.modules["absl.logging"].set_verbosity("error")
