"""Tests for utils: the primality oracle, the odd-integer map, the sampler and prime densities."""

import random
import re
import sys
from pathlib import Path

import gmpy2
import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root holds utils.py

import utils  # noqa: E402
from training import oracle  # noqa: E402
from training.oracle import EXACT_DENSITY_LIMIT, is_prime, odd_prime_density  # noqa: E402
from utils import MAX_ODD_INPUT, random_vector_integers, to_odd_integer  # noqa: E402

BRUTE_LIMIT = 10**6  # exhaustive comparison bound for is_prime
CARMICHAEL_SMALL = (561, 1105, 1729, 2465, 2821, 6601, 8911, 10585, 15841, 29341, 41041, 46657, 52633, 62745,
                    63973, 75361, 101101, 115921, 126217, 162401, 172081, 188461, 252601, 278545, 294409)
# (composite value, bases it passes as a strong probable prime)
STRONG_PSEUDOPRIMES = (
    (2047, (2,)),
    (1373653, (2, 3)),
    (25326001, (2, 3, 5)),
    (3215031751, (2, 3, 5, 7)),
    (2152302898747, (2, 3, 5, 7, 11)),
    (3474749660383, (2, 3, 5, 7, 11, 13)),
    (341550071728321, (2, 3, 5, 7, 11, 13, 17)),
    (3825123056546413051, (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31)),
    (4759123141, (2, 7, 61)),
)


def sympy_reference(values) -> np.ndarray:
    return np.array([sympy.isprime(int(v)) for v in values], dtype=bool)


def chernick_carmichael(count: int, at_least: int) -> list[int]:
    """Carmichael numbers (6k+1)(12k+1)(18k+1) >= at_least whose three factors are prime."""
    found, k = [], 1
    while len(found) < count:
        factors = (6 * k + 1, 12 * k + 1, 18 * k + 1)
        n = factors[0] * factors[1] * factors[2]
        if n >= at_least and all(sympy.isprime(f) for f in factors):
            assert all((n - 1) % (f - 1) == 0 for f in factors)  # Korselt's criterion
            found.append(n)
        k += 1
    return found


# --- is_prime: correctness ------------------------------------------------------------------------


def test_is_prime_matches_sieve_below_one_million():
    reference = np.zeros(BRUTE_LIMIT, dtype=bool)
    reference[list(sympy.sieve.primerange(BRUTE_LIMIT))] = True
    np.testing.assert_array_equal(is_prime(np.arange(BRUTE_LIMIT)), reference)


def test_is_prime_rejects_small_carmichael_numbers():
    assert not is_prime(np.array(CARMICHAEL_SMALL)).any()
    assert not any(is_prime(n) for n in CARMICHAEL_SMALL)


@pytest.mark.parametrize("at_least", [2**20, 2**32, 2**50])
def test_is_prime_rejects_large_carmichael_numbers(at_least):
    numbers = chernick_carmichael(4, at_least)
    assert max(numbers) < 2**64
    assert not is_prime(numbers).any()


@pytest.mark.parametrize("value, bases", STRONG_PSEUDOPRIMES)
def test_is_prime_rejects_strong_pseudoprimes(value, bases):
    assert all(gmpy2.is_strong_prp(value, base) for base in bases)  # it really fools those bases
    assert not sympy.isprime(value)
    assert is_prime(value) is False
    assert not is_prime(np.array([value], dtype=np.uint64))[0]


def test_is_prime_rejects_base_2_pseudoprimes_in_the_vector_range():
    odd = np.arange(oracle.SIEVE_LIMIT + 1, BRUTE_LIMIT, 2)
    fooling = [int(n) for n in odd if gmpy2.is_strong_prp(int(n), 2) and not gmpy2.is_prime(int(n))]
    assert len(fooling) > 10
    assert not is_prime(fooling).any()
    # the same numbers through the Miller-Rabin path, which is_prime uses from ODD_SIEVE_LIMIT on
    assert not oracle._is_prime_below_2_32(np.array(fooling, dtype=np.uint64)).any()


def test_odd_sieve_and_miller_rabin_agree_on_their_shared_range():
    rng = np.random.default_rng(5)
    odd = rng.integers(oracle.SIEVE_LIMIT // 2, oracle.ODD_SIEVE_LIMIT // 2, 200_000, dtype=np.uint64) * 2 + 1
    edge = np.arange(oracle.ODD_SIEVE_LIMIT - 999, oracle.ODD_SIEVE_LIMIT + 1000, 2, dtype=np.uint64)
    for values in (odd, edge):
        expected = np.array([gmpy2.is_prime(int(v)) for v in values])
        np.testing.assert_array_equal(is_prime(values), expected)
        np.testing.assert_array_equal(oracle._is_prime_below_2_32(values), expected)


def test_is_prime_around_2_32_and_2_64():
    near_32 = np.arange(2**32 - 300, 2**32 + 300, dtype=np.uint64)
    near_64 = np.arange(2**64 - 600, 2**64 - 1, dtype=np.uint64)
    near_64 = np.append(near_64, np.uint64(2**64 - 1))
    for values in (near_32, near_64):
        np.testing.assert_array_equal(is_prime(values), sympy_reference(values))
    assert is_prime(2**32 - 5) and is_prime(2**32 + 15) and is_prime(2**64 - 59)
    assert not (is_prime(2**32 - 1) or is_prime(2**32 + 1) or is_prime(2**64 - 1))


def test_is_prime_rejects_squares_and_close_products_of_primes():
    below = [sympy.prevprime(2**16), sympy.prevprime(sympy.prevprime(2**16))]
    above = [sympy.nextprime(2**16), sympy.nextprime(2**20), sympy.prevprime(2**32)]
    squares = [p * p for p in below + above]
    assert squares[0] < 2**32 < squares[2] and squares[-1] < 2**64
    products = [below[0] * below[1], above[0] * sympy.nextprime(above[0]), above[2] * sympy.prevprime(above[2])]
    assert not is_prime(squares + products).any()


def test_is_prime_random_32_bit_values_match_sympy():
    values = np.random.default_rng(2).integers(0, 2**32, 50_000, dtype=np.uint64)
    np.testing.assert_array_equal(is_prime(values), sympy_reference(values))


def test_is_prime_random_64_bit_values_match_sympy():
    values = np.random.default_rng(3).integers(2**32, 2**64, 20_000, dtype=np.uint64, endpoint=False)
    values |= np.uint64(1)
    np.testing.assert_array_equal(is_prime(values), sympy_reference(values))


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_is_prime_property_64_bit(n):
    assert is_prime(n) == sympy.isprime(n)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**32 - 1), max_size=64))
def test_is_prime_property_32_bit_vectors(values):
    np.testing.assert_array_equal(is_prime(values), sympy_reference(values).reshape(len(values)))


# --- is_prime: shapes, dtypes, errors ---------------------------------------------------------------


def test_is_prime_scalar_returns_python_bool():
    for value in (7, np.int64(7), np.uint8(7), np.uint64(2**64 - 59)):
        result = is_prime(value)
        assert type(result) is bool and result
    assert is_prime(0) is False and is_prime(1) is False and is_prime(2) is True


def test_is_prime_keeps_shape_of_lists_and_arrays():
    nested = [[2, 4, 5], [9, 11, 2**61 - 1]]
    result = is_prime(nested)
    assert isinstance(result, np.ndarray) and result.dtype == bool and result.shape == (2, 3)
    np.testing.assert_array_equal(result, [[True, False, True], [False, True, True]])
    grid = np.arange(24).reshape(2, 3, 4)
    np.testing.assert_array_equal(is_prime(grid), sympy_reference(grid.ravel()).reshape(2, 3, 4))
    assert is_prime(np.array(13)).shape == ()


def test_is_prime_accepts_empty_inputs():
    for empty in ([], np.array([], dtype=np.int64), np.zeros((0, 3), dtype=np.uint32)):
        result = is_prime(empty)
        assert result.dtype == bool and result.shape == np.shape(empty)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64])
def test_is_prime_accepts_every_integer_dtype(dtype):
    values = np.arange(min(np.iinfo(dtype).max, 3000), dtype=dtype)
    np.testing.assert_array_equal(is_prime(values), sympy_reference(values))


@pytest.mark.parametrize(
    "bad, named",
    [
        (-1, "-1"),
        (3.0, "3.0"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (True, "True"),
        ("7", "'7'"),
        (None, "None"),
        (2**4096, str(2**4096)[:20]),
        ([5, [7, -3]], "-3"),
        ([5, 2.5], "2.5"),
        ([5, False], "False"),
        (np.array([4, -9]), "-9"),
        (np.array([1.0, 2.0]), "1.0"),
        (np.array([True]), "True"),
    ],
)
def test_is_prime_rejects_invalid_values_naming_them(bad, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        is_prime(bad)


@pytest.mark.parametrize("bits", [64, 65, 512, 2048])
def test_is_prime_above_2_64_agrees_with_sympy(bits):
    rng = random.Random(bits)
    values = [rng.getrandbits(bits) | (1 << (bits - 1)) | 1 for _ in range(300)]
    values += [int(sympy.nextprime(v)) for v in values[:20]]  # primes too, not just composites
    values += [318665857834031151167461, 3825123056546413051 * 3]  # strong pseudoprimes of small bases
    expected = [sympy.isprime(v) for v in values]
    assert is_prime(values).tolist() == expected
    assert [is_prime(v) for v in values] == expected
    assert any(expected) and not all(expected)


def test_is_prime_mixes_exact_and_probable_values_in_one_array():
    values = np.array([7, 2**61 - 1, 2**64 - 59, 2**64 + 13, 2**89 - 1, 2**89 + 1], dtype=object)
    assert is_prime(values).tolist() == [True, True, True, sympy.isprime(2**64 + 13), True, False]


def test_is_prime_rejects_empty_float_array():
    with pytest.raises(ValueError, match="float64"):
        is_prime(np.array([]))


# --- to_odd_integer ------------------------------------------------------------------------------------


def test_to_odd_integer_maps_to_twice_rounded_plus_one():
    result = to_odd_integer([0.2, 1.0, 2.4, 2.6, 10.0, 1e6 + 0.3])
    np.testing.assert_array_equal(result, [1, 3, 5, 7, 21, 2_000_001])
    assert result.dtype == np.uint64


def test_to_odd_integer_rounds_half_to_even():
    np.testing.assert_array_equal(to_odd_integer([0.5, 1.5, 2.5, 3.5]), [1, 5, 5, 9])


def test_to_odd_integer_keeps_shape_and_dtype():
    grid = np.full((3, 2), 4.2, dtype=np.float32)
    result = to_odd_integer(grid)
    assert result.shape == (3, 2) and result.dtype == np.uint64
    assert to_odd_integer(7.0).shape == ()


def test_to_odd_integer_maps_large_integers_exactly():
    assert int(to_odd_integer(2**53 + 1)) == 2**54 + 3
    assert int(to_odd_integer(np.uint64(MAX_ODD_INPUT - 1))) == 2 * MAX_ODD_INPUT - 1


@pytest.mark.parametrize(
    "values, count, kind",
    [
        ([1.0, np.nan, 2.0], 1, "NaN or infinite"),
        ([np.inf, -np.inf, 2.0], 2, "NaN or infinite"),
        ([0.0, 3.0], 1, "<= 0"),
        ([-1.5, -2.0, 0.0], 3, "<= 0"),
        ([float(MAX_ODD_INPUT), 1e30, 5.0], 2, ">= MAX_ODD_INPUT"),
        (np.array([MAX_ODD_INPUT], dtype=np.int64), 1, ">= MAX_ODD_INPUT"),
    ],
)
def test_to_odd_integer_rejects_bad_values_with_count(values, count, kind):
    with pytest.raises(ValueError, match=rf"{count} of {len(values)} values are invalid \({count} {re.escape(kind)}"):
        to_odd_integer(values)


def test_to_odd_integer_counts_mixed_bad_values():
    with pytest.raises(ValueError, match=r"3 of 4 .*1 NaN or infinite, 1 <= 0, 1 >= MAX_ODD_INPUT"):
        to_odd_integer([np.nan, -1.0, 1e20, 2.0])


def test_to_odd_integer_rejects_non_numbers():
    with pytest.raises(ValueError, match="dtype"):
        to_odd_integer(["a"])
    with pytest.raises(ValueError, match="dtype"):
        to_odd_integer([True, False])


# --- random_vector_integers ----------------------------------------------------------------------------


def test_random_vector_integers_are_distinct_and_in_range():
    values = random_vector_integers(10, 10**7, 10**5, np.random.default_rng(0))
    assert values.dtype == np.int64 and values.shape == (10**5,)
    assert values.min() >= 10 and values.max() <= 10**7
    assert np.unique(values).size == values.size


def test_random_vector_integers_repeat_with_the_same_seed():
    first = random_vector_integers(1, 10**6, 1000, np.random.default_rng(42))
    again = random_vector_integers(1, 10**6, 1000, np.random.default_rng(42))
    other = random_vector_integers(1, 10**6, 1000, np.random.default_rng(43))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_random_vector_integers_full_range_is_a_permutation():
    values = random_vector_integers(-3, 96, 100, np.random.default_rng(1))
    np.testing.assert_array_equal(np.sort(values), np.arange(-3, 97))
    assert random_vector_integers(5, 5, 1).tolist() == [5]
    assert random_vector_integers(5, 9, 0).shape == (0,)


def test_random_vector_integers_handle_huge_ranges():
    values = random_vector_integers(2**61, 2**62, 10**4, np.random.default_rng(2))
    assert values.min() >= 2**61 and values.max() <= 2**62
    assert np.unique(values).size == values.size
    assert values.max() > 2**62 - 2**57  # reaches the top of the range, not a truncated one


def test_random_vector_integers_are_uniform():
    values = random_vector_integers(0, 10**6 - 1, 10**5, np.random.default_rng(3))
    counts = np.bincount(values // 10**5, minlength=10)
    assert np.all(np.abs(counts - 10**4) < 500)  # about 5 standard deviations


@pytest.mark.parametrize(
    "low, high, size, rng, message",
    [
        (1.5, 10, 1, None, "integers"),
        (1, "10", 1, None, "integers"),
        (1, 10, 2.0, None, "integers"),
        (True, 10, 1, None, "integers"),
        (10, 1, 1, None, "int64 bounds"),
        (1, 10, 11, None, "size 11"),
        (1, 10, -1, None, "size -1"),
        (0, 2**63, 1, None, "int64 bounds"),
        (-(2**63), 2**63 - 1, 1, None, "int64 bounds"),
    ],
)
def test_random_vector_integers_assert_their_arguments(low, high, size, rng, message):
    with pytest.raises(AssertionError, match=message):
        random_vector_integers(low, high, size, rng)


# --- odd_prime_density ------------------------------------------------------------------------------------


def brute_density(lo: int, hi: int) -> float:
    odd = range(lo | 1, hi + 1, 2)
    return sum(sympy.isprime(n) for n in odd) / len(odd)


def test_odd_prime_density_matches_brute_force_on_small_ranges():
    for lo in range(0, 40):
        for hi in range(max(lo, 1), 130, 7):
            if lo <= hi and (hi > lo or lo % 2):
                assert odd_prime_density(lo, hi) == brute_density(lo, hi), (lo, hi)


def test_odd_prime_density_edge_ranges():
    assert odd_prime_density(0, 1) == 0.0  # 1 is not prime
    assert odd_prime_density(0, 3) == 0.5  # 1, 3
    assert odd_prime_density(2, 3) == 1.0  # 2 is prime but even: not counted
    assert odd_prime_density(1, 2) == 0.0
    assert odd_prime_density(97, 97) == 1.0 and odd_prime_density(91, 91) == 0.0
    assert odd_prime_density(1, 10**6) == (78498 - 1) / 500_000  # pi(1e6) less the prime 2


def test_odd_prime_density_matches_brute_force_on_random_ranges():
    rng = np.random.default_rng(4)
    for _ in range(20):
        lo = int(rng.integers(0, 10**6))
        hi = lo + int(rng.integers(1, 5000))
        assert odd_prime_density(lo, hi) == pytest.approx(brute_density(lo, hi), abs=1e-15)


def test_odd_prime_density_approximation_agrees_at_the_exact_limit():
    exact = odd_prime_density(1, EXACT_DENSITY_LIMIT)
    approx = oracle._approx_odd_prime_count(1, EXACT_DENSITY_LIMIT) / (EXACT_DENSITY_LIMIT // 2)
    assert approx == pytest.approx(exact, rel=1e-3)


def test_odd_prime_density_above_the_limit_matches_a_window_count():
    lo, hi = EXACT_DENSITY_LIMIT + 1, EXACT_DENSITY_LIMIT + 2 * 10**6
    odd = np.arange(lo, hi + 1, 2, dtype=np.uint64)
    counted = np.count_nonzero(is_prime(odd)) / odd.size
    assert odd_prime_density(lo, hi) == pytest.approx(counted, rel=0.01)


@pytest.mark.parametrize(
    "lo, hi, message",
    [(5, 4, "lo <= hi"), (-1, 5, "0 <= lo"), (2, 2, "no odd"), (10, 10, "no odd"), (1.0, 5, "lo must be an integer"),
     (1, 5.5, "hi must be an integer"), (False, 5, "lo must be an integer")],
)
def test_odd_prime_density_rejects_invalid_ranges(lo, hi, message):
    with pytest.raises(ValueError, match=message):
        odd_prime_density(lo, hi)


# --- prime_count and the local density ---------------------------------------------------------------


def test_prime_count_matches_sympy_on_both_sides_of_the_sieve_limit():
    rng = np.random.default_rng(5)
    limit = oracle.ODD_SIEVE_LIMIT
    points = [0, 1, 2, 3, 4, 5, 7, 8, 9, 100, 65535, 65536, limit - 3, limit - 2, limit - 1, limit,
              limit + 1, limit + 2, *rng.integers(0, limit, 50), *rng.integers(limit, 4 * limit, 3)]
    for n in points:
        assert oracle.prime_count(int(n)) == sympy.primepi(int(n)), n


def test_rough_ceiling_is_the_density_of_rough_numbers():
    assert oracle.rough_ceiling(3) == 1.5 and oracle.rough_ceiling(31) == pytest.approx(3.2711, abs=1e-4)
    n = np.arange(1, 30030 * 2, 2)  # odd integers over whole periods of 3*5*7*11*13
    rough = np.all([n % p != 0 for p in (3, 5, 7, 11, 13)], axis=0)
    assert oracle.rough_ceiling(13) == pytest.approx(1 / rough.mean())


def test_density_windows_tile_the_integers():
    edges = oracle._EDGES
    assert edges[0] == 1 and np.all(np.diff(edges) >= oracle.MIN_WINDOW)
    for n in (1, 2, 63, 64, 65, 3000, 10**6, 2**40 + 17):
        lo, hi = oracle.density_window(n)
        assert lo <= n <= hi
        assert oracle.density_window(hi + 1)[0] == hi + 1


def test_local_density_is_the_prime_share_of_the_window():
    candidates = np.array([3, 65, 999_999, 123_456_789], dtype=np.uint64)
    densities = oracle.local_density(candidates)
    for n, density in zip(candidates, densities):
        lo, hi = oracle.density_window(int(n))
        odd = np.arange(lo | 1, hi + 1, 2, dtype=np.uint64)
        assert density == pytest.approx(np.count_nonzero(is_prime(odd)) / odd.size, rel=1e-12)


# --- quiet_startup ----------------------------------------------------------------------------------

FAKE_MODULE = '''
import os
os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
os.write(2, b"I0000 00:00:1.000000    1 port.cc:153] a note\\n")
os.write(2, b"W0000 00:00:1.000000    1 stub.cc:31] a warning\\n")
os.write(2, b"E0000 00:00:1.000000    1 cuda.cc:52] a library error\\n")
os.write(2, b"something else entirely\\n")
'''


@pytest.mark.parametrize("level, shown", [
    (None, ["a warning", "a library error", "something else"]),  # the default, TF_LOG_LEVEL
    ("0", ["All log messages", "a note", "a warning", "a library error", "something else"]),
    ("2", ["a library error", "something else"]),
])
def test_quiet_startup_applies_the_documented_level_to_start_up_notes(tmp_path, level, shown):
    import os
    import subprocess
    (tmp_path / "fake_tf.py").write_text(FAKE_MODULE)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    code = (f"import sys; sys.path[:0] = [{str(tmp_path)!r}, {str(Path(utils.__file__).parent)!r}]; "
            "import utils; utils.quiet_startup(['fake_tf']); import os; "
            "print(os.environ['TF_CPP_MIN_LOG_LEVEL'], file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1] == (level or utils.TF_LOG_LEVEL)
    for fragment in ["All log messages", "a note", "a warning", "a library error", "something else"]:
        assert any(fragment in line for line in lines[:-1]) == (fragment in shown), (fragment, lines)


def test_tensorflow_starts_without_a_line_on_a_machine_without_a_gpu():
    """The real TensorFlow, started as the scripts start it: nothing on stderr on a CPU machine
    (its cuInit error included); with a GPU present the check is moot and is skipped."""
    import glob
    import os
    import subprocess
    if glob.glob("/dev/nvidia[0-9]*"):
        pytest.skip("this machine has a GPU")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    code = (f"import sys; sys.path.insert(0, {str(Path(utils.__file__).parent)!r}); import utils; "
            "utils.quiet_startup(); import tensorflow as tf; print(int(tf.reduce_sum(tf.ones(3))))")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "3\n", "")


@pytest.mark.parametrize("script, shown", [("training/train.py", "--nb_batches = 100"),
                                           ("test.py", "--n_samples = 10000")])
def test_help_answers_before_tensorflow_is_imported(script, shown):
    """--help, run as the script: the page on stdout, exit 0, and TensorFlow never imported (its
    import is most of a start's seconds)."""
    import subprocess
    path = str(Path(utils.__file__).parent / script)
    code = (f"import runpy, sys; sys.argv = [{path!r}, '--help']\n"
            f"try:\n    runpy.run_path({path!r}, run_name='__main__')\n"
            "except SystemExit as end:\n    print('exit', end.code, 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert shown in result.stdout and result.stderr == ""
    assert result.stdout.splitlines()[-1] == "exit 0 False"


def _run_as_script(script: str, argv: list):
    """(stdout, stderr) of ``script`` run with argv, then a last stdout line: exit status and
    whether TensorFlow was imported."""
    import subprocess
    path = str(Path(utils.__file__).parent / script)
    code = (f"import runpy, sys; sys.argv = [{path!r}, *{argv!r}]\n"
            f"try:\n    runpy.run_path({path!r}, run_name='__main__')\n"
            "except SystemExit as end:\n    print('exit', end.code, 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    return result.stdout, result.stderr


@pytest.mark.parametrize("script, argv", [
    ("training/train.py", ["--batch_size=0"]), ("training/train.py", ["--reader=nope"]),
    ("training/train.py", ["--generator_head=real", "--offsets=8"]),  # a cross-constant rule
    ("training/train.py", ["--batch_size=1000000", "--offsets=4096"]),  # the memory estimate
    ("test.py", ["--n_samples=0"]), ("test.py", ["--primes=5", "--bits=3"])])
def test_every_refusal_of_the_arguments_answers_before_tensorflow_is_imported(script, argv):
    out, err = _run_as_script(script, argv)
    assert err.startswith("error: ") and err.count("\n") == 1
    assert out.splitlines()[-1] == "exit 2 False"


def test_primes_from_the_shipped_pair_need_no_tensorflow_and_a_report_does():
    """--primes reads the folding generator's weights with h5py; the control: a report on the
    same checkpoint builds the Keras networks, and the probe sees TensorFlow imported."""
    out, err = _run_as_script("test.py", ["--primes=3", "--bits=64"])
    assert len(out.splitlines()) == 4 and out.splitlines()[-1] == "exit 0 False", err
    out, err = _run_as_script("test.py", ["--n_samples=10", "--verbose=0"])
    assert out.splitlines()[-1] == "exit 0 True", err
