"""test.py --primes as a random prime generator: fresh entropy, uniform over the primes by
construction, a sieve read from the generator, a stream that stops at once."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gmpy2
import numpy as np
import pytest
from scipy import stats as scipy_stats

from training import checkpoint, oracle, primes

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED = REPO_ROOT / "training"
DRAWS = 10**6                   # a sample size at which the learned weights' bias was seen (p < 1e-145)
ALPHA = 1e-3                    # the chi-square's level


@pytest.fixture(scope="module")
def shipped():
    return checkpoint.load_generator(SHIPPED)


def cli(*argv, **kwargs):
    return subprocess.run([sys.executable, str(REPO_ROOT / "test.py"), *argv], capture_output=True,
                          text=True, timeout=120, **kwargs)


def counts_over(values, reference: np.ndarray) -> np.ndarray:
    """How often each prime of ``reference`` (sorted) occurs in ``values``."""
    return np.bincount(np.searchsorted(reference, np.asarray(values, np.uint64)), minlength=reference.size)


# -- where the random bits come from ---------------------------------------------------------------------

def test_two_runs_without_a_seed_differ_and_a_seed_repeats():
    runs = [cli("--primes=5", "--bits=256") for _ in range(2)]
    seeded = [cli("--primes=5", "--bits=256", "--seed=5") for _ in range(2)]
    assert all(r.returncode == 0 and len(r.stdout.split()) == 5 for r in runs + seeded)
    assert runs[0].stdout != runs[1].stdout and "os.urandom" in runs[0].stderr
    assert seeded[0].stdout == seeded[1].stdout and "not for secrets" in seeded[0].stderr


@pytest.mark.parametrize("bound", [7, 3 * 2**61, 2**63])
def test_the_operating_systems_source_draws_uniform_integers(bound):
    """At 3 * 2**61 a plain modulo of 64-bit words would put 3/4 of the values below 2**62, not 2/3:
    the rejection is what this test sees."""
    values = primes.SystemSource.below(bound, 60_000)
    assert values.dtype == np.int64 and values.min() >= 0 and values.max() < bound
    cells = np.bincount((values.astype(np.float64) * 7 / bound).astype(np.int64), minlength=7)
    assert scipy_stats.chisquare(cells).pvalue > ALPHA
    if bound == 3 * 2**61:
        assert abs((values < 2**62).mean() - 2 / 3) < 0.01
        words = np.frombuffer(os.urandom(8 * 60_000), np.uint64)  # the control: modulo without rejection
        assert abs(((words % np.uint64(bound)) < np.uint64(2**62)).mean() - 3 / 4) < 0.01
    assert len({tuple(primes.SystemSource.below(bound, 8)) for _ in range(3)}) == 3 or bound == 7


def test_the_operating_systems_big_integers_are_uniform():
    bound = 3 * 2**1000
    big = primes.SystemSource.big_below(bound, 30_000)
    assert all(0 <= v < bound for v in big)
    thirds = np.bincount([3 * v // bound for v in big], minlength=3)  # rejection keeps the top third
    assert scipy_stats.chisquare(thirds).pvalue > ALPHA
    assert scipy_stats.chisquare(np.bincount([v % 5 for v in big], minlength=5)).pvalue > ALPHA


# -- uniform over the primes by construction ------------------------------------------------------------

@pytest.mark.parametrize("lo, hi", [(1000001, 1003000), (128, 255)])
def test_a_million_draws_are_uniform_over_every_prime_of_the_range(shipped, lo, hi):
    """Positive control: the stream passes a chi-square at 10**6 draws. Negative control: the
    generator's own weights over the same primes (the former sampler) fail it at that size."""
    drawn, stats = primes.draw(shipped, DRAWS, lo, hi, seed=3)
    reference = oracle.odd_primes_between(lo, hi)
    assert stats["sieve"] == oracle.odd_primes(31)
    assert scipy_stats.chisquare(counts_over(drawn, reference)).pvalue > ALPHA
    weights = np.exp(_log_weight_of(shipped, reference))
    planted = np.random.default_rng(3).multinomial(DRAWS, weights / weights.sum())
    assert scipy_stats.chisquare(planted).pvalue < ALPHA


def _log_weight_of(generator, n) -> np.ndarray:
    """Each odd n's log weight in the generator's own sampler (its window's policy and acceptance)."""
    h = [(int(v) - 1) // 2 for v in n]
    z = np.array([v // generator.offsets for v in h], dtype=object)
    k = np.array([v % generator.offsets for v in h])
    return primes.log_weights(generator, z)[np.arange(len(h)), k]


def test_every_prime_of_3_to_1000_is_drawn(shipped):
    drawn, _ = primes.draw(shipped, 30_000, 3, 1000, seed=0)
    reference = oracle.odd_primes_between(3, 1000)
    assert set(drawn) == set(reference.tolist())
    weights = np.exp(_log_weight_of(shipped, reference))  # the control: the former sampler's weights
    planted = np.random.default_rng(0).multinomial(30_000, weights / weights.sum())
    assert (planted[reference <= 31] == 0).any()


def test_the_white_box_distance_from_uniform_is_zero_at_1024_bits(shipped):
    """The sieve's weight of every prime is 1 (tv 0); the generator's own weights vary (tv > 0.001)."""
    rng = np.random.default_rng(0)
    lo, hi = 2**1023, 2**1024 - 1
    sieve, _ = primes.learned_sieve(shipped, lo, hi)
    sample = [int(gmpy2.next_prime(lo + int(v) * 2**960)) for v in rng.integers(0, 2**62, 2000)]
    weights = primes.passes(sieve, np.array(sample, dtype=object)).astype(np.float64)
    learned = np.exp(_log_weight_of(shipped, sample))

    def tv(w):  # from a sample of the primes: 0.5 E|w / E w - 1|
        return 0.5 * np.abs(w / w.mean() - 1).mean()
    assert tv(weights) == 0.0 and tv(learned) > 0.001


def test_the_sieve_is_what_the_generator_learned(shipped):
    sieve, ratios = primes.learned_sieve(shipped, 2**255, 2**256 - 1)
    assert sieve == oracle.odd_primes(31) and max(ratios.values()) < 0.05
    from test_primes import random_head  # the control: a generator that learned nothing
    blank = random_head(scale=0.0)
    assert primes.learned_sieve(blank, 2**255, 2**256 - 1) == ((), {p: 1.0 for p in oracle.odd_primes(31)})


def test_the_distribution_of_what_is_printed_agrees_with_the_argument(shipped):
    sieve, _ = primes.learned_sieve(shipped, 1000001, 1003000)
    measures = primes.distribution(sieve, 1000001, 1003000)
    assert measures["exact"] and measures["tv"] == 0.0 and measures["coverage"] == 1.0
    assert measures["reference_primes"] == oracle.odd_primes_between(1000001, 1003000).size


# -- what a user of a prime generator expects -------------------------------------------------------------

def test_a_range_of_one_prime_answers_at_once_and_one_without_is_refused(shipped):
    start = time.perf_counter()
    assert primes.draw(shipped, 5, 3, 3)[0] == [3] * 5
    assert primes.draw(shipped, 3, 24, 30, seed=0)[0] == [29] * 3
    assert time.perf_counter() - start < 5
    with pytest.raises(primes.utils.OptimusError, match=r"no odd prime lies in \[24, 28\]"):
        primes.draw(shipped, 1, 24, 28, seed=0)


@pytest.mark.parametrize("lo, hi", [(2**63, 2**64 - 1), (10**12, 10**15), (2**200, 2**210), (1000, 1100)])
def test_fewer_primes_of_a_seed_are_a_prefix_of_more(shipped, lo, hi):
    more, stats = primes.draw(shipped, 600, lo, hi, seed=5)
    assert stats["proposals"] > 4 * primes.FIRST_STEP  # several steps
    assert all(lo <= p <= hi and gmpy2.is_prime(p) for p in more)
    for count in (1, 100, 599):
        assert primes.draw(shipped, count, lo, hi, seed=5)[0] == more[:count]
    assert primes.draw(shipped, 100, lo, hi, seed=6)[0] != more[:100]  # the control: another seed


@pytest.mark.slow
@pytest.mark.parametrize("bits", [16, 64, 65, 1024])
def test_top_two_bits_make_a_modulus_of_exactly_twice_the_bits(bits):
    result = cli("--primes=20", f"--bits={bits}", "--top_two_bits", "--seed=1")
    assert result.returncode == 0, result.stderr
    found = [int(v) for v in result.stdout.split()]
    assert len(found) == 20 and all(p >> (bits - 2) == 3 and gmpy2.is_prime(p) for p in found)
    assert all((p * q).bit_length() == 2 * bits for p, q in zip(found, found[1:]))


@pytest.mark.parametrize("value", ["7", "4097", "abc"])
def test_every_refusal_of_bits_names_the_same_range(value):
    result = cli("--primes=1", f"--bits={value}")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "an integer in [8, 4096]" in result.stderr


def test_a_huge_count_streams_and_a_closed_pipe_stops_it_at_once():
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "test.py"), "--primes=1000000000000", "--bits=8"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does
    _, err = proc.communicate(timeout=60)
    assert 128 <= int(first) < 256 and gmpy2.is_prime(int(first))
    assert proc.returncode == 2 and err == "error: standard output was closed\n"
    assert time.perf_counter() - start < 30


def test_ctrl_c_stops_a_huge_count_with_one_line():
    proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "test.py"), "--primes=1000000000000", "--bits=64"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert int(proc.stdout.readline()).bit_length() == 64
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.startswith("stopped by Ctrl-C after") and err.count("\n") == 1


def test_a_sieve_beyond_int64_draws_by_its_residues_and_stays_uniform_over_the_range():
    """Primes up to 61 multiply past 2**63: the wide stream draws each group's residue and joins
    them (Chinese remainders). The primes lie in the range, spread over all of it, and their
    classes mod 3 and 5 are uniform."""
    lo, hi = 2**300, 2**300 + 2**290
    stats = {}
    drawn = []
    for found in primes.stream(oracle.odd_primes(61), lo, hi, primes.source(7), stats):
        drawn += found
        if len(drawn) >= 2000:
            break
    assert all(lo <= p <= hi for p in drawn) and stats["tested"] < stats["proposals"] / 3
    eighths = np.bincount([(p - lo) >> 287 for p in drawn], minlength=8)
    assert scipy_stats.chisquare(eighths).pvalue > ALPHA
    for q in (3, 5):
        classes = np.bincount([p % q for p in drawn], minlength=q)[1:]
        assert scipy_stats.chisquare(classes).pvalue > ALPHA
    assert all(gmpy2.is_prime(p) for p in drawn[:200])


@pytest.mark.parametrize("sieve", [(3, 5, 7), oracle.odd_primes(31), oracle.odd_primes(127)])
def test_the_wide_stream_is_uniform_over_every_prime_sieve_primes_included(monkeypatch, sieve):
    """The wide path (residues first, then the rest) made to serve a range of 25,000 odd integers,
    whose primes can all be counted: 3 to 127 and the others equally often (chi-square), though a
    sieve of primes up to 127 multiplies far past the span. Control: the direct path's counts of
    the same size pass too, and a stream that drops the sieve primes fails."""
    monkeypatch.setattr(primes, "DIRECT_SPAN", 2**10)
    reference = oracle.odd_primes_between(3, 50_000)
    drawn = []
    for found in primes.stream(sieve, 3, 50_000, primes.source(2), {}):
        drawn += found
        if len(drawn) >= 200 * reference.size:
            break
    counts = counts_over(drawn[:200 * reference.size], reference)
    assert scipy_stats.chisquare(counts).pvalue > ALPHA
    assert (counts[reference <= max(sieve)] > 0).all()
    planted = counts.copy()
    planted[reference <= max(sieve)] = 0  # a stream that never gives the sieve's own primes
    assert scipy_stats.chisquare(planted).pvalue < ALPHA


def test_a_narrow_range_of_big_numbers_answers_at_about_one_primes_cost():
    start = time.process_time()
    found, stats = primes.draw(None, 2, 2**2048, 2**2048 + 20_000, seed=0)
    assert all(2**2048 <= p <= 2**2048 + 20_000 and gmpy2.is_prime(p) for p in found)
    assert time.process_time() - start < 20


def test_the_stderr_line_counts_what_one_prime_cost():
    result = cli("--primes=1", "--bits=64", "--seed=1")
    tested = float(result.stderr.split(";")[1].split()[0])
    assert result.returncode == 0 and tested < 40  # a 256-proposal step holds ~80 to test
