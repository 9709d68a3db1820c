"""Random primes for users (test.py --primes): fresh entropy, a sieve read from the generator, a stream.

What comes out is uniform over every prime of the requested range, by construction; the network
decides only how fast the primes come, never which. A proposal is a uniform odd integer of the
range. It goes to the oracle unless a prime of the *sieve* divides it (a sieve prime itself always
goes). The sieve is the set of small primes whose multiples the generator learned to avoid, read
once from its own weights (``learned_sieve``). No prime of the range is divisible by a smaller
prime, so every prime passes with probability 1 and is printed with the same probability as any
other; the sieve only spares the oracle composites.

Why not the network's score per candidate: an acceptance that is exactly uniform over the primes
above the primes it reads must accept every residue class coprime to them, which is exactly what
the wheel of those primes accepts. So on residues no learned filter can call the oracle less than
the wheel of the primes it reads; it can only match it, and the sieve does, at table-lookup cost.

Randomness: without a seed every bit comes from the operating system's CSPRNG (``os.urandom``),
fresh at each run. A seed gives numpy's PCG64: reproducible, and not for secrets.
"""
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

import utils
from training import measuring, oracle, sampling
from training.encodings import prime_groups

PROBE_SEED = 0                  # seed of the probe latents: the sieve is a function of the weights and range
PROBE_LATENTS = 1024            # latents whose whole windows the sieve is read from
PROBE_PRIMES = 127              # a generator that reads no residues is probed for the odd primes up to this
                                # (those whose 2-adic period is at most 12 end at 127)
MIN_MULTIPLES = 20              # a prime with fewer multiples (or non-multiples) among the probes is left out
SIEVE_RATIO = 0.5               # p joins the sieve when the generator weighs its multiples at most this
                                # share of the others' (on average)
EXHAUSTIVE_SPAN = 2**16          # a range of at most this many odd integers is searched for a prime first
WIDE_MARGIN_BITS = 8            # wide ranges: the residues' modulus at most span / 2**this (drops < 1/128)
DIRECT_SPAN = 2**62             # ranges with at most this many odd integers are drawn directly in int64
FIRST_STEP, LAST_STEP = 256, 2**16  # proposals per step, doubling: a first prime at once, then throughput
TEST_SLICE = 16                 # candidates tested at a time beyond 2**64 (below, the first slice of a
                                # step, doubling), so primes stream as found and few are tested in vain
BLOCK = 16                      # --distribution: consecutive odd integers per sampled block
GIVE_UP_FACTOR = 50             # refuse after this many times chance's proposals per prime without one


# ---------------------------------------------------------------------------------------------
# Where the random bits come from


class SystemSource:
    """Every random bit from the operating system's CSPRNG, fresh at each run."""
    name = "os.urandom (fresh at each run)"

    @staticmethod
    def below(bound: int, size: int) -> np.ndarray:
        """``size`` integers uniform in [0, bound), int64; bound <= 2**63. Rejection keeps them exact."""
        limit = 2**64 - 2**64 % bound   # the largest multiple of bound that 64 bits reach
        out, have = np.empty(size, np.int64), 0
        while have < size:
            words = np.frombuffer(os.urandom(8 * (size - have) + 64), np.uint64)
            if limit < 2**64:
                words = words[words < np.uint64(limit)]
            words = (words % np.uint64(bound)).astype(np.int64)[:size - have]
            out[have:have + words.size] = words
            have += words.size
        return out

    @staticmethod
    def big_below(bound: int, size: int) -> list:
        """``size`` Python ints uniform in [0, bound), any size: by rejection on whole bytes of one
        os.urandom call per round (a call per integer would cost a system call each). The same
        rejection as ``utils.random_big_integers``, kept as a list: its object array costs a
        quarter more per integer on the stream's hot path."""
        bits = max(bound - 1, 1).bit_length()
        width, shift, out = (bits + 7) // 8, -bits % 8, []
        while len(out) < size:
            block = os.urandom(width * 2 * (size - len(out)))
            values = (int.from_bytes(block[i:i + width], "little") >> shift for i in range(0, len(block), width))
            out += [v for v in values if v < bound][:size - len(out)]
        return out


class SeededSource:
    """numpy's PCG64 from a seed: the same seed, the same primes. For reproduction, not for secrets:
    one printed prime can reveal a small seed, and PCG64's state can be recovered from its output."""

    def __init__(self, seed: int):
        self.rng, self.name = np.random.default_rng(seed), f"seed {seed} (PCG64: reproducible, not for secrets)"

    def below(self, bound: int, size: int) -> np.ndarray:
        return self.rng.integers(0, bound, size, dtype=np.int64)

    def big_below(self, bound: int, size: int) -> list:
        return utils.random_big_integers(0, bound - 1, size, self.rng).tolist()


def source(seed: int | None):
    """The random source of --primes: the OS's without a seed, else a seeded PCG64."""
    return SystemSource() if seed is None else SeededSource(seed)


# ---------------------------------------------------------------------------------------------
# The sieve the generator learned


def log_weights(generator, z: np.ndarray) -> np.ndarray:
    """Log weights (n, K) of the windows of latents z: the log probability that the generator's
    sampler emits each candidate 2 (K z + k) + 1, up to one constant (policy times acceptance)."""
    logits = np.asarray(generator.logits(z), np.float64)
    top = logits.max(axis=1, keepdims=True)
    log_pi = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
    return log_pi + generator.acceptance.build(logits)[:, None]


def learned_sieve(generator, lo: int, hi: int) -> tuple:
    """(sieve primes, {p: weight ratio}): the odd primes p whose multiples among the candidates of
    PROBE_LATENTS windows in [lo, hi] the generator weighs at most SIEVE_RATIO times the others'.

    The primes probed are those it reads (residue inputs), else the odd primes up to PROBE_PRIMES.
    A generator without windows (a real head: one output per latent), or one that cannot read
    numbers of this size, gives no sieve: its primes are then uniform rejection's.
    """
    if not hasattr(generator, "logits"):
        return (), {}
    low, high = generator.latents_for(lo, hi)
    z = sampling.iid_latents(low, high, PROBE_LATENTS, np.random.default_rng(PROBE_SEED))
    try:
        with threadpool_limits(1, user_api="blas"):  # small products: a second BLAS thread would only
            log_w = log_weights(generator, z)          # spin, doubling the CPU time of the stream after it
    except utils.OptimusError:  # it cannot read numbers of this size (the digits MLP past 38 digits)
        return (), {}
    weights = np.exp(log_w - log_w.max())
    ceiling = generator.encoding.ceiling(generator.architecture)
    offsets, ratios = generator.offsets, {}
    for p in oracle.odd_primes(ceiling[1] if ceiling else PROBE_PRIMES):
        # candidate 2 (K z + k) + 1 mod p, from z mod p: no big integer is built
        multiple = (2 * offsets * utils.residues(z, p)[:, None] + 2 * np.arange(offsets) + 1) % p == 0
        if min(multiple.sum(), (~multiple).sum()) >= MIN_MULTIPLES:
            ratios[p] = float(weights[multiple].mean() / max(weights[~multiple].mean(), 1e-300))
    return tuple(p for p, ratio in ratios.items() if ratio <= SIEVE_RATIO), ratios


# ---------------------------------------------------------------------------------------------
# The stream


def _groups(sieve: tuple) -> list:
    """The sieve's primes in groups (``encodings.prime_groups``): [(m, passes (m,) bool)], m the
    group's product and passes[r] whether no prime of the group divides a number = r mod m."""
    return [(m, np.gcd(np.arange(m), m) == 1) for m in map(math.prod, prime_groups(sieve))]


def _crt(moduli: list) -> tuple:
    """(M, coefficients): x = sum(r_i * c_i) mod M is the integer with x = r_i mod m_i, for coprime m_i."""
    modulus = math.prod(moduli)
    return modulus, [(modulus // m) * pow(modulus // m, -1, m) for m in moduli]


def _integers(lo_odd: int, j, hi: int) -> np.ndarray:
    """The odd integers lo_odd + 2 j (j int64 or Python ints): uint64 when they fit, else Python ints."""
    if hi < 2**64:
        return np.uint64(lo_odd) + np.uint64(2) * np.asarray(j, np.int64).astype(np.uint64)
    return np.array([lo_odd + 2 * int(v) for v in j], dtype=object)


def passes(sieve: tuple, candidates: np.ndarray) -> np.ndarray:
    """Which odd candidates (any shape; uint64 or Python ints) the sieve lets through to the oracle."""
    flat, through = candidates.reshape(-1), np.ones(candidates.size, bool)
    for p in sieve:
        through &= (utils.residues(flat, p) != 0) | (flat == p)
    return through.reshape(candidates.shape)


@dataclass
class Plan:
    """The range's arithmetic, fixed for a stream: the odd integers lo_odd + 2 j, 0 <= j < span."""
    lo: int
    hi: int
    sieve: tuple

    def __post_init__(self):
        self.lo_odd = self.lo | 1
        self.span = (self.hi - self.lo_odd) // 2 + 1
        self.small = (max(self.sieve, default=0) - self.lo_odd) // 2  # j <= this: maybe a sieve prime itself
        self.groups = _groups(self.sieve)
        if self.span > DIRECT_SPAN:  # j mod M is drawn first: only groups whose M stays far below the span
            while self.groups and math.prod(m for m, _ in self.groups) > self.span >> WIDE_MARGIN_BITS:
                self.groups.pop()
        self.moduli = [m for m, _ in self.groups]
        self.back = math.prod(self.sieve) // math.prod(self.moduli)  # the other sieve primes, tested after
        self.bases = [self.lo_odd % m for m in self.moduli]
        self.modulus, self.coefficients = _crt(self.moduli)
        self.top = (self.span - 1) // self.modulus  # wide ranges: j = q * modulus + r, q in [0, top]

    def passes(self, residues: list, size: int) -> np.ndarray:
        """Whether ``size`` proposals j, given as j mod each group's modulus, pass the sieve."""
        passed = np.ones(size, bool)
        for (m, table), base, r in zip(self.groups, self.bases, residues):
            passed &= table[(base + 2 * r) % m]
        return passed

    def step(self, random, size: int) -> tuple:
        """``size`` proposals: (how many passed so far, build(a, b) -> the odd integers of passed
        proposals a..b that pass the whole sieve, or are sieve primes themselves)."""
        if self.span <= DIRECT_SPAN:
            j = random.below(self.span, size)
            passed = self.passes([j % m for m in self.moduli], size) | (j <= self.small)
            j = j[passed]
            return j.size, lambda a, b: _integers(self.lo_odd, j[a:b], self.hi)
        # a wide range: residues of j first, the big part q only for the slices tested
        if self.modulus < 2**63:
            whole = random.below(self.modulus, size)
            passed = self.passes([whole % m for m in self.moduli], size)
            tiny = whole <= self.small  # j <= small needs q = 0 and r <= small
            r = whole[passed | tiny].tolist()
        else:  # by the Chinese remainder theorem, from each group's residue (each above small)
            parts = [random.below(m, size) for m in self.moduli]
            passed = self.passes(parts, size)
            tiny = np.all([part == parts[0] for part in parts], axis=0) & (parts[0] <= self.small)
            r = [sum(v * c for v, c in zip(row, self.coefficients)) % self.modulus
                 for row in zip(*(part[passed | tiny].tolist() for part in parts))]
        ok = passed[passed | tiny].tolist()

        def build(a: int, b: int) -> np.ndarray:
            j = [q * self.modulus + v for q, v in zip(random.big_below(self.top + 1, len(r[a:b])), r[a:b])]
            # the last block of [0, (top + 1) modulus) overshoots the range: dropped
            n = [self.lo_odd + 2 * v for v, good in zip(j, ok[a:b]) if v < self.span and (good or v <= self.small)]
            return np.array([v for v in n if self.back == 1 or math.gcd(v, self.back) == 1
                             or v in self.sieve], dtype=object)
        return len(r), build


def _first_prime(plan: Plan) -> int | None:
    """The first prime of a narrow range in order, through the sieve, or None: one proves it is
    worth drawing from, at about the cost of one prime."""
    for start in range(0, plan.span, 4096):
        candidates = _integers(plan.lo_odd, np.arange(start, min(start + 4096, plan.span)), plan.hi)
        for v in candidates[passes(plan.sieve, candidates)].tolist():
            if oracle.is_prime(v):
                return v
    return None


def stream(sieve: tuple, lo: int, hi: int, random, stats: dict) -> Iterator[list]:
    """Lists of primes uniform over the primes of [lo, hi], in the order drawn, without end.

    random: a ``source``. stats: updated in place with proposals, tested (oracle calls), primes.
    Raises OptimusError after GIVE_UP_FACTOR times chance's proposals per prime without a prime.
    """
    plan = Plan(lo, hi, sieve)
    if plan.span <= EXHAUSTIVE_SPAN:        # narrow: a range without a prime is refused now
        if _first_prime(plan) is None:
            raise utils.OptimusError(f"no odd prime lies in [{lo}, {hi}]")
        patience = GIVE_UP_FACTOR * plan.span  # enough for a range holding one prime
    else:                                   # chance's proposals per prime near hi: ln(hi) / 2
        patience = GIVE_UP_FACTOR * math.log(hi) / 2
    stats.update(proposals=0, tested=0, primes=0)
    since, size = 0, FIRST_STEP
    while True:
        count, build = plan.step(random, size)
        stats["proposals"] += size
        start, slice_ = 0, TEST_SLICE  # slices that double, so that few are tested past a last prime
        while start < count:
            piece = build(start, start + slice_)
            start += slice_
            if piece.dtype == object:  # the scalar oracle: no array's conversions per big integer
                found = [v for v in piece.tolist() if oracle.is_prime(v)]
            else:
                found = [int(v) for v in piece[oracle.is_prime(piece)]] if piece.size else []
                slice_ *= 2
            stats["tested"] += piece.size
            stats["primes"] += len(found)
            if found:
                since = -size                   # counts from this step's end
                yield found
        since += size
        if since > patience:
            raise utils.OptimusError(f"no prime in [{lo}, {hi}] after {since} proposals: "
                                     f"{GIVE_UP_FACTOR} times chance's need")
        size = min(2 * size, LAST_STEP)


def draw(generator, count: int, lo: int, hi: int, seed: int | None = None) -> tuple:
    """``count`` primes of [lo, hi] (a list) and stats: the whole of what test.py --primes streams."""
    sieve, _ = learned_sieve(generator, lo, hi)
    stats, primes = {}, []
    for found in stream(sieve, lo, hi, source(seed), stats):
        primes += found[:count - len(primes)]
        if len(primes) == count:
            break
    return primes, {**stats, "sieve": sieve}


# ---------------------------------------------------------------------------------------------
# What the stream prints, measured


def distribution(sieve: tuple, lo: int, hi: int, seed: int | None = None,
                 progress: sampling.Progress = sampling.QUIET) -> dict:
    """``measuring.window_distribution`` of what ``stream`` prints in [lo, hi], from every odd integer
    of DISTRIBUTION_WINDOWS blocks of BLOCK consecutive ones (distinct, uniform; all when fewer):
    weight 1 where the sieve passes it, else 0, against uniform over every prime in the blocks."""
    lo_odd = lo | 1
    span = (hi - lo_odd) // 2 + 1
    blocks = -(-span // BLOCK)
    size = min(measuring.DISTRIBUTION_WINDOWS, blocks)
    rng = np.random.default_rng(seed)
    b = np.arange(blocks) if size == blocks else utils.random_integers(0, blocks - 1, size, rng)
    if blocks * BLOCK >= 2**62:  # b * BLOCK would leave int64
        b = b.astype(object)
    j = b.reshape(-1, 1) * BLOCK + np.arange(BLOCK)
    outside = np.fromiter((v >= span for v in j.flat), bool, j.size).reshape(j.shape)
    candidates = _integers(lo_odd, np.where(outside, 0, j).reshape(-1), hi).reshape(j.shape)
    weights = passes(sieve, candidates).astype(np.float64)
    labels = sampling.window_labels(candidates, progress)
    primes = oracle.odd_primes(max(measuring.RESIDUE_PRIMES_AT_LEAST, *sieve, 3))
    return measuring.window_distribution(sampling.Windows(candidates, weights), primes, exact=size == blocks,
                                         excluded=outside, labels=labels)
