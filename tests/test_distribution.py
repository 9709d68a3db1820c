"""The distribution of the generated primes: the measures against generators whose distribution is
known, a planted residue bias, the samplers' draws against their own windows, and the method."""
import math

import numpy as np
import pytest
import sympy
import sympy.core.random

import utils
from training import oracle
from training import calibration, measuring, registry, train


EVERY = (1, 10**4)              # every latent of this range: exact measures
PRIMES = oracle.odd_primes(31)


def exact(generator) -> dict:
    report = measuring.test_models(generator, None, EVERY[1], *EVERY, seed=0)
    assert report["distribution"]["exact"]
    return report["distribution"]


def windows(weights) -> "calibration._WindowGenerator":
    return calibration._WindowGenerator(weights)


# -- known values -----------------------------------------------------------------------------------

def test_uniform_rejection_is_exactly_uniform():
    m = exact(windows(lambda c: np.ones(c.shape)))
    assert m["tv"] == pytest.approx(0, abs=1e-12) and m["entropy_deficit_bits"] == pytest.approx(0, abs=1e-9)
    assert m["min_entropy_deficit_bits"] == pytest.approx(0, abs=1e-9) and m["coverage"] == 1.0
    assert m["residue_tv"] == pytest.approx(m["residue_tv_floor"])  # only the range's own deviation


def test_keeping_latents_by_their_coprime_count_is_exactly_uniform_and_without_it_is_not():
    kept = exact(windows(lambda c: calibration._coprime(c).astype(float)))
    once = exact(windows(calibration._each_coprime_once))
    assert kept["tv"] == pytest.approx(0, abs=1e-12)
    assert 0.05 < once["tv"] < 0.15 and once["entropy_deficit_bits"] > 0.02


def test_the_greedy_wheels_coverage_is_exactly_its_share_of_the_primes():
    z = np.arange(EVERY[0], EVERY[1] + 1)
    generator = windows(calibration._first_coprime)
    sampler = generator.sampler("sampled", *EVERY)
    w = sampler.windows(z)
    chosen = w.candidates[w.weights > 0]
    assert chosen.size == z.size  # one candidate per latent
    share = oracle.is_prime(chosen).sum() / oracle.is_prime(w.candidates).sum()
    m = exact(generator)
    assert m["coverage"] == pytest.approx(share, rel=1e-12)
    assert m["tv"] == pytest.approx(1 - share, rel=1e-12)  # point masses of 1/hits on its hits


@pytest.mark.parametrize("modulus", [6, 30, 210])
def test_a_progression_reaches_one_class_of_primes(modulus):
    phi = calibration._totient(modulus)
    m = exact(calibration._Map(calibration._progression(modulus)))
    assert m["tv"] == pytest.approx(1 - 1 / phi, abs=0.01)
    assert m["entropy_deficit_bits"] == pytest.approx(math.log2(phi), abs=0.03)
    largest = max(p for p in PRIMES if modulus % p == 0)
    assert m["residue_tv"] == pytest.approx(1 - 1 / (largest - 1), abs=0.01)


def test_a_planted_residue_bias_is_reported_with_its_size_and_modulus():
    # twice the weight on candidates = 1 mod 3: primes split 2/3 and 1/3 between classes 1 and 2
    m = exact(windows(lambda c: np.where(c % np.uint64(3) == 1, 2.0, 1.0)))
    assert m["residue_prime"] == 3
    assert m["residue_tv"] == pytest.approx(1 / 6, abs=0.005)
    assert m["tv"] == pytest.approx(1 / 6, abs=0.005)
    assert m["entropy_deficit_bits"] == pytest.approx(
        2 / 3 * math.log2(4 / 3) + 1 / 3 * math.log2(2 / 3), abs=0.003)
    control = exact(windows(lambda c: np.ones(c.shape)))
    assert control["residue_tv"] < 0.01


def test_sampled_windows_estimate_the_exact_measures_within_their_sd():
    generator = windows(calibration._each_coprime_once)
    truth = exact(generator)
    estimate = measuring.test_models(generator, None, 3000, *EVERY, seed=1)["distribution"]
    assert not estimate["exact"]
    for key in ("tv", "entropy_deficit_bits", "coverage"):
        assert abs(estimate[key] - truth[key]) <= 4 * estimate[f"{key}_sd"] + 1e-3, key


def test_the_searches_weights_are_their_algorithms(monkeypatch):
    lo, hi = 33, 2001
    primes = oracle.odd_primes_between(lo, hi)
    for kind, draw in (("randprime", lambda: sympy.randprime(lo, hi + 1)),
                       ("incremental", lambda: sympy.nextprime(2 * sympy.core.random.randint(
                           (lo - 1) // 2, (hi - 1) // 2) - 1))):
        sympy.core.random.seed(3)
        draws = 40_000
        counts = {int(p): 0 for p in primes}
        for _ in range(draws):
            p = int(draw())
            if p <= hi:
                counts[p] = counts[p] + 1
        observed = np.array([counts[int(p)] for p in primes], dtype=float)
        expected = calibration.search_weights(primes, lo, hi, kind)
        expected = expected / expected.sum() * observed.sum()
        chi2 = float(np.sum((observed - expected) ** 2 / expected))
        assert chi2 < primes.size + 5 * math.sqrt(2 * primes.size), (kind, chi2)
    # the incremental search's gaps: the weight of 37 (after 31) is the odd starts 33, 35, 37
    assert calibration.search_weights(primes, lo, hi, "incremental")[0] == 3


# -- the offset head as a sampler --------------------------------------------------------------------

def random_head(argv=()):
    config = train.parse_config(list(argv))
    head = registry.build(registry.generator_architecture(config), "generator")
    rng = np.random.default_rng(0)
    for w in head.model.trainable_weights:
        w.assign(rng.normal(0, 0.15, w.shape).astype(np.float32))
    return head


@pytest.mark.parametrize("argv", [[], ["--acceptance=window"]])
def test_sampled_outputs_follow_the_windows_the_measures_use(argv):
    head = random_head(argv)
    sampler = head.sampler("sampled", 1, 10**6)
    some = np.arange(1, 10**4)
    kept_most = some[np.argsort(sampler.windows(some).weights.sum(axis=1))[-3:]]  # kept often
    z = np.repeat(kept_most, 20_000)
    candidates, kept = sampler.draw_candidates(z, np.random.default_rng(0))
    w = sampler.windows(z[::20_000])
    assert np.all(w.weights.sum(axis=1) > 0.2)
    for i in range(3):
        rows = slice(20_000 * i, 20_000 * (i + 1))
        k = ((candidates[rows][kept[rows]].astype(np.int64) - 1) // 2 - 16 * z[rows][0]).astype(int)
        frequencies = np.bincount(k, minlength=16) / k.size
        np.testing.assert_allclose(frequencies, w.weights[i] / w.weights[i].sum(), atol=0.012)
        assert kept[rows].mean() == pytest.approx(w.weights[i].sum(), abs=0.012)


def test_greedy_outputs_are_the_likeliest_offset_of_every_latent():
    head = random_head()
    z = np.arange(1, 2001)
    candidates, kept = head.sampler("greedy", 1, 2000).draw_candidates(z, np.random.default_rng(0))
    assert kept.all()
    np.testing.assert_array_equal(candidates, utils.to_odd_integer(head.outputs(z)))
    w = head.sampler("greedy", 1, 2000).windows(z)
    assert np.all(w.weights.sum(axis=1) == 1) and np.all(w.weights.max(axis=1) == 1)


def test_window_acceptance_makes_each_candidates_probability_its_own_score():
    head = random_head(["--acceptance=window"])
    z = np.arange(1, 3001)
    w = head.sampler("sampled", 1, 3000).windows(z)
    scores = np.exp(head.logits(z))
    ratio = w.weights / scores  # the same constant for every candidate of every window
    np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-6)


# -- the method: controls of a short training ---------------------------------------------------------

def trained_report(argv, batches: int, sampling: str, seed: int = 0) -> dict:
    """The held-out report of a short training with train.py's constants and ``argv``."""
    import keras
    config = train.parse_config(list(argv))
    keras.utils.set_random_seed(seed)
    trainer = registry.build_trainer(config)
    rng = np.random.default_rng(seed)
    for batch in range(1, batches + 1):
        train.run_batch(trainer, config, rng, batch)
    return measuring.test_models(trainer.generator, None, 5000, 10**6 + 1, 10**7, seed=seed,
                                    sampling=sampling)


BELIEF = ["--reward=belief", "--policy_gradient=sampled", "--generator_steps=5",
          "--discriminator_batch=outputs", "--discriminator_minibatch=0", "--acceptance=none"]


@pytest.mark.slow
def test_positive_control_the_default_learns_primes_and_spreads_them_evenly():
    default = trained_report([], batches=6, sampling="sampled")
    greedy_belief = trained_report(BELIEF, batches=6, sampling="greedy")
    assert default["score"] >= 2.0 and greedy_belief["score"] >= 2.0  # both learned (chance: 1)
    assert default["distribution"]["tv"] <= greedy_belief["distribution"]["tv"] / 3
    assert greedy_belief["distribution"]["tv"] > 0.7  # one prime per window at most


@pytest.mark.slow
def test_negative_control_without_reward_the_default_stays_at_chance():
    report = trained_report(["--reward=constant"], batches=3, sampling="sampled")
    assert abs(report["score"] - 1.0) <= 3 * report["score_sd"]
