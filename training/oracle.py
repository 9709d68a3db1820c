"""The oracle: exact primality, prime counts and chance's prime density at every magnitude.

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
import functools
import itertools
import math

import gmpy2
import numpy as np

import utils
from training import rules

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
EXACT_DENSITY_LIMIT = 10**11  # odd_prime_density counts primes exactly up to here (~3 s)
WINDOW_SCALE = 0.003          # local_density's windows are WINDOW_SCALE * n * ln n wide: placing
                              # outputs at their bottoms gains at most WINDOW_SCALE / 2 = 0.15%
MIN_WINDOW = 64               # ... and at least this wide (below n ~ 3000)


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


@functools.cache
def _odd_sieve() -> np.ndarray:
    """The odd sieve below ODD_SIEVE_LIMIT, built on first use (0.1-0.7 s: --help never needs it)."""
    return _odd_sieve_bits(ODD_SIEVE_LIMIT)


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
        bits = _odd_sieve()[k >> np.uint64(3)] >> (k & np.uint64(7)).astype(np.uint8)
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


_INPUT_END = 2**MAX_PRIME_BITS  # computed once: a 4096-bit power costs microseconds a call


def _is_valid_integer(value: object) -> bool:
    return (
        isinstance(value, (int, np.integer))
        and not isinstance(value, (bool, np.bool_))
        and 0 <= value < _INPUT_END
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

    n: an integer (returns a bool), or a (nested) list or array of integers (a bool array of its
    shape). Raises ValueError naming the first value that is negative, not an integer (bools
    included), or too large.
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
    if not large.all():  # an empty call still costs tens of microseconds of numpy calls
        result[~large] = _is_prime_flat(flat[~large].astype(np.uint64))
    result[large] = [_is_probable_prime(v) for v in flat[large]]
    return result.reshape(values.shape)


_BITS_PER_BYTE = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1)


@functools.cache
def _odd_prime_prefix() -> np.ndarray:
    """Entry b: the number of odd primes among the 8*b first odd integers (from the odd sieve)."""
    counts = _BITS_PER_BYTE[_odd_sieve()].astype(np.int64)
    return np.concatenate([[0], np.cumsum(counts)])


@functools.lru_cache(maxsize=4096)
def _primepi(n: int) -> int:
    import sympy  # here: it takes 0.6 s to import, and most runs never count primes this far
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
    partial = int(_odd_sieve()[whole] & ((1 << rest) - 1)) if rest else 0
    return 1 + int(_odd_prime_prefix()[whole]) + int(_BITS_PER_BYTE[partial])


def odd_primes_between(lo: int, hi: int) -> np.ndarray:
    """The odd primes in [lo, hi], ascending, uint64; from the oracle's sieve, so hi < ODD_SIEVE_LIMIT."""
    lo, hi = int(lo), int(hi)
    if not hi < ODD_SIEVE_LIMIT:
        raise ValueError(f"odd_primes_between: hi={hi} is not below {ODD_SIEVE_LIMIT}")
    first, last = max(lo, 3) // 2, (hi - 1) // 2  # bit k stands for 2k + 1
    if last < first:
        return np.zeros(0, dtype=np.uint64)
    bits = np.unpackbits(_odd_sieve()[first // 8: last // 8 + 1], bitorder="little")
    k = np.flatnonzero(bits[first % 8: first % 8 + last - first + 1]) + first
    odd = 2 * k.astype(np.uint64) + np.uint64(1)
    return odd[odd >= lo]


def _odd_count(lo: int, hi: int) -> int:
    """Number of odd integers in [lo, hi], for 0 <= lo."""
    return (hi + 1) // 2 - lo // 2


def _approx_odd_prime_count(lo: int, hi: int) -> float:
    """li(hi) - li(max(lo, 2)) primes in [lo, hi], less one for the prime 2 when lo <= 2."""
    import mpmath  # sympy's numerics library: imported with it, when first needed
    count = float(mpmath.li(hi) - mpmath.li(max(lo, 2)))
    return count - 1.0 if lo <= 2 <= hi else count


def odd_prime_density(lo, hi) -> float:
    """Fraction of the odd integers in [lo, hi] that are prime (2 never counts), for integers
    0 <= lo <= hi with an odd integer between them (else ValueError).

    Exact while hi <= EXACT_DENSITY_LIMIT; above, the logarithmic integral: far better than 1%
    over ranges holding thousands of primes, rough for narrow ones.
    """
    caller = "odd_prime_density"
    lo, hi = rules.check(f"{caller}: lo", lo, 0), rules.check(f"{caller}: hi", hi, 0)
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
    """Chance's prime rate at each odd candidate (integers >= 1, any size): the prime share of odd
    integers in its window of the grid (``_window_edges``), wide enough to average over residues
    modulo small primes; past the grid (2**62), 2 / ln n. Float64, the shape of ``candidates``.
    """
    values = utils.integers(candidates)
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
