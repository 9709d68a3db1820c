"""The length curve: exact odd draws, the calibration scorers at every length, the rough-number
estimator against direct counts, n/a cells and the curve's cost. Each check meets a control it
must reject."""
import math
import time

import numpy as np
import pytest

import utils
from training import lengths, oracle

AVOID_357 = 1.5 * 1.25 * 7 / 6   # prod p/(p-1) over 3, 5, 7: 2.1875
SIGMAS = 4                       # calibration: within this many standard errors of the truth
AGREE_SIGMAS = 3                 # direct and rough estimates agree within this many
DRAWS = 20_000                   # random_odd's checks: numbers drawn per length
CURVE_CPU_LIMIT = 60             # seconds of CPU for the whole default curve of a cheap scorer
BURN = 0.1                       # seconds of CPU the slow control scorer burns per length


def exact_length(values: np.ndarray, bits: int) -> bool:
    """Every value odd with exactly `bits` binary digits."""
    return bool((utils.bit_lengths(values) == bits).all() and (utils.residues(values, 2) == 1).all())


def chi_square_ok(counts: np.ndarray, shares: np.ndarray) -> bool:
    """Counts consistent with the expected shares: chi-square within 5 sd of its mean (dof)."""
    expected = counts.sum() * shares
    dof = counts.size - 1
    return bool(np.sum((counts - expected) ** 2 / expected) < dof + 5 * math.sqrt(2 * dof))


def bit_shares(values: np.ndarray, bits: int) -> np.ndarray:
    """The share of values with each binary digit set, lowest first."""
    nbytes = (bits + 7) // 8
    raw = b"".join(int(v).to_bytes(nbytes, "little") for v in values)
    digits = np.unpackbits(np.frombuffer(raw, np.uint8).reshape(values.size, nbytes), axis=1,
                           bitorder="little")
    return digits[:, :bits].mean(axis=0)


def looks_uniform(values: np.ndarray, bits: int) -> bool:
    """Every binary digit between the top and the bottom one set about half the time, and
    residues mod 3 even (exact shares over the whole range when it is small)."""
    middle = bit_shares(values, bits)[1:-1]
    if bits <= 16:
        every = np.arange(1 << (bits - 1), 1 << bits)[1::2]
        shares = np.bincount(every % 3, minlength=3) / every.size
    else:
        shares = np.full(3, 1 / 3)
    counts = np.bincount(utils.residues(values, 3), minlength=3)
    tolerance = 5 * math.sqrt(0.25 / values.size)  # 5 sd: up to 4094 digits are checked at once
    return bool(np.all(np.abs(middle - 0.5) < tolerance)) and chi_square_ok(counts, shares)


@pytest.mark.parametrize("bits", [8, 64, 65, 1024])
def test_random_odd_draws_exact_lengths_uniformly(bits):
    rng = np.random.default_rng(bits)
    values = lengths.random_odd(bits, DRAWS, rng)
    assert values.dtype == (np.uint64 if bits <= 64 else object)
    assert exact_length(values, bits) and looks_uniform(values, bits)
    again = lengths.random_odd(bits, DRAWS, np.random.default_rng(bits))
    assert (again == values).all()  # the same seed, the same numbers
    # controls: one digit too many, even numbers, a forced second bit, one residue class mod 3
    longer = lengths.random_odd(bits + 1, 100, rng)
    assert not exact_length(longer, bits)
    assert not exact_length(values - 1, bits)
    for digit in (1, bits // 2, bits - 2):  # a forced binary digit anywhere
        forced = values | (np.uint64(1 << digit) if bits <= 64 else 1 << digit)
        assert exact_length(forced, bits) and not looks_uniform(forced, bits)
    one_class = values[utils.residues(values, 3) != 0]
    assert not looks_uniform(one_class, bits)


def test_random_odd_covers_the_smallest_lengths():
    rng = np.random.default_rng(0)
    assert set(lengths.random_odd(1, 10, rng).tolist()) == {1}
    assert set(lengths.random_odd(2, 10, rng).tolist()) == {3}
    assert set(lengths.random_odd(4, 200, rng).tolist()) == {9, 11, 13, 15}
    with pytest.raises(AssertionError):
        lengths.random_odd(0, 10, rng)


def test_enrichment_breaks_ties_at_random_not_by_order():
    n = 10_000
    hits = np.arange(n) < n // 10  # the hits all come first
    assert lengths.enrichment(hits.astype(float), hits) == pytest.approx(1 / lengths.TOP_SHARE)
    constant = np.zeros(n)
    assert lengths.enrichment(constant, hits) == pytest.approx(1.0, abs=0.15)
    # control: a stable order would put the first 30%, every hit, on top
    stable_top = np.argsort(-constant, kind="stable")[:round(lengths.TOP_SHARE * n)]
    assert hits[stable_top].mean() / hits.mean() == pytest.approx(1 / lengths.TOP_SHARE)
    assert math.isnan(lengths.enrichment(constant, np.zeros(n, dtype=bool)))


def test_the_calibration_scorers_hold_at_every_length():
    uniform = lengths.curve(lengths.uniform_scorer(0))
    avoid = lengths.curve(lengths.avoid_scorer())
    assert [row["digits"] for row in avoid] == list(lengths.LENGTHS)
    for u, a in zip(uniform, avoid):
        assert u["method"] == a["method"] == ("direct" if u["digits"] <= lengths.DIRECT_LIMIT else "rough")
        assert 0 < u["sd"] < 0.2 and 0 < a["sd"] < 0.3
        assert abs(u["enrichment"] - 1) < SIGMAS * u["sd"], u
        assert abs(a["enrichment"] - AVOID_357) < SIGMAS * a["sd"], a
        # controls: each is far from the other's truth
        assert abs(u["enrichment"] - AVOID_357) > SIGMAS * u["sd"], u
        assert abs(a["enrichment"] - 1) > SIGMAS * a["sd"], a
    # a scorer that avoids only 3 and 5 reaches 1.875, not 2.1875 (at 1024 digits: sd ~0.03)
    fewer = lengths.curve(lengths.avoid_scorer((3, 5)), lengths=(1024,))[0]
    assert abs(fewer["enrichment"] - 1.875) < SIGMAS * fewer["sd"]
    assert abs(fewer["enrichment"] - AVOID_357) > SIGMAS * fewer["sd"]


def test_the_jackknife_sd_matches_the_spread_over_fresh_samples():
    seeds, digits, samples = range(40), 32, 5000
    rows = [lengths.curve(lengths.avoid_scorer(), (digits,), samples, seed)[0] for seed in seeds]
    spread = np.std([row["enrichment"] for row in rows], ddof=1)
    sd = np.mean([row["sd"] for row in rows])
    assert 0.7 < sd / spread < 1.4, (sd, spread)
    # control: replicates with fresh tie-break keys, not each number's own, inflate it threefold
    numbers, primes, _ = lengths._sample(digits, samples, 0)
    scores = lengths.avoid_scorer()(numbers)
    rng = np.random.default_rng(0)
    replicates = []
    for group in np.array_split(np.arange(samples), lengths.GROUPS):
        keep = np.ones(samples, dtype=bool)
        keep[group] = False
        replicates.append(lengths._enrichment(scores[keep], primes[keep], rng.random(keep.sum())))
    fresh = math.sqrt((lengths.GROUPS - 1) * np.var(replicates))
    assert fresh / spread > 1.4, (fresh, spread)


def test_rough_means_no_prime_factor_below_the_bound():
    below, above = 9973, 10007  # the primes either side of ROUGH_BOUND = 10**4
    assert lengths.ROUGH_BOUND == 10**4
    values = np.array([1, 2, 3, 4, 9, below, above, 3 * above, below * above, above * 10009,
                       2**127 - 1, 3 * (2**127 - 1)], dtype=object)
    expected = [True, True, True, False, False, True, True, False, False, True, True, False]
    assert lengths.rough(values).tolist() == expected
    draws = lengths.random_odd(64, 300, np.random.default_rng(1))
    small = oracle.odd_primes(lengths.ROUGH_BOUND)
    reference = [all(int(v) % p for p in small) for v in draws]
    assert lengths.rough(draws).tolist() == reference
    # control: multiplying by the largest prime below the bound makes them all smooth, by the
    # smallest above it changes nothing
    assert not lengths.rough(draws.astype(object) * below).any()
    assert lengths.rough(draws.astype(object) * above).tolist() == reference


def test_the_rough_estimate_matches_direct_counts_only_for_residue_scorers():
    def cheat(numbers):
        return oracle.is_prime(numbers).astype(float)

    avoid = lengths.curve(lengths.avoid_scorer(), lengths=(64, 256))
    cheating = lengths.curve(cheat, lengths=(64, 256))
    for digits, direct, rough in lengths.validation(avoid):
        row = next(r for r in avoid if r["digits"] == digits)
        assert abs(direct - rough) < AGREE_SIGMAS * math.hypot(row["sd"], row["sd_rough"]), row
    for row in cheating:  # knowing primality breaks the assumption: the estimate falls far short
        assert row["enrichment"] == pytest.approx(1 / lengths.TOP_SHARE)
        gap = row["enrichment"] - row["enrichment_rough"]
        assert gap > 1 and gap > 10 * math.hypot(row["sd"], row["sd_rough"]), row
    assert [d for d, _, _ in lengths.validation(lengths.curve(lengths.avoid_scorer()))] == [
        d for d in lengths.LENGTHS if d <= lengths.DIRECT_LIMIT]


def test_a_scorer_that_cannot_read_a_length_gets_na_cells():
    def short(numbers):
        return None if numbers.dtype == object else lengths.avoid_scorer()(numbers)

    kept = (24, 64, 128)
    rows = {"short": lengths.curve(short, lengths=kept, samples=2000),
            "avoid": lengths.curve(lengths.avoid_scorer(), lengths=kept, samples=2000)}
    assert [row["method"] for row in rows["short"]] == ["direct", "direct", "n/a"]
    table = lengths.format_curve(rows).splitlines()
    assert table[0].split() == ["digits", "24", "64", "128"]
    cells = {line.split()[0]: line.split()[1:] for line in table[1:3]}
    assert cells["short"][2] == "n/a" and "n/a" not in cells["short"][:2]
    assert "n/a" not in cells["avoid"]  # control: the same scorer where it reads every length
    assert all(float(c) > 1.5 for c in cells["avoid"])
    assert "validated against the direct counts" in table[-1]


def test_a_scorer_of_the_wrong_shape_is_caught():
    with pytest.raises(AssertionError, match="one score per number"):
        lengths.curve(lambda numbers: np.zeros(3), lengths=(24,), samples=100)


def test_the_default_curve_of_a_cheap_scorer_takes_under_a_minute():
    lengths._sample.cache_clear()  # measure the draws and their counts too
    start = time.process_time()
    rows = lengths.curve(lengths.avoid_scorer())
    spent = time.process_time() - start
    assert len(rows) == len(lengths.LENGTHS) and spent < CURVE_CPU_LIMIT, spent

    def slow(numbers):  # control: a scorer's own CPU time shows in the same measure
        end = time.process_time() + BURN
        while time.process_time() < end:
            pass
        return np.zeros(len(numbers))

    start = time.process_time()
    lengths.curve(slow)
    assert time.process_time() - start >= BURN * len(lengths.LENGTHS)


@pytest.mark.slow
def test_the_command_line_prints_the_shipped_pairs_curves_at_every_length():
    """test.py --lengths --json on the shipped pair: its discriminator and generator hold the residue
    track's ~3.27 at every length, the calibration rows sit at 1 and 2.19, and no fold row (its
    discriminator reads residues, not digits)."""
    import json
    import subprocess
    import sys
    from pathlib import Path
    result = subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "test.py"), "--lengths",
                             "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    curves = json.loads(result.stdout)
    assert set(curves) == {"discriminator", "generator", *lengths.CALIBRATION}
    for name in ("discriminator", "generator"):
        assert [row["digits"] for row in curves[name]] == list(lengths.LENGTHS)
        assert all(abs(row["enrichment"] - 3.27) < 0.25 for row in curves[name]), name
    uniform, avoid = (curves[name] for name in lengths.CALIBRATION)
    assert all(abs(row["enrichment"] - 1) < 0.3 for row in uniform)
    assert all(abs(row["enrichment"] - 2.19) < 0.3 for row in avoid)
