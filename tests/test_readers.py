"""The digit readers at any length: each reader's numpy twin is its layer, the networks read numbers
of up to 4096 digits through it, and the phase reader's snap carries a rule to every length."""
import keras
import numpy as np
import pytest

import utils
from training import checkpoint, lengths, primes, readers, registry, train
from training.networks import after_reader

READERS = ("periods", "frequencies", "rotation", "phases")
BITS = ["--discriminator_input=bits", "--discriminator_loss=bce"]


def networks(reader: str, mirror: bool = True, seed: int = 0):
    """An untrained pair whose discriminator reads the digits through ``reader``."""
    keras.utils.set_random_seed(seed)
    generator = ["--generator_input=discriminator", "--generator_layers=0"] if mirror else ["--generator_input=bits"]
    config = train.parse_config([*BITS, *generator, f"--reader={reader}",
                                 *(["--discriminator_layers=0"] if reader == "phases" else [])])
    d = registry.build(registry.discriminator_architecture(config), "discriminator")
    g = registry.build(registry.generator_architecture(config), "generator")
    g.follow(d)
    return g, d


@pytest.mark.parametrize("reader", READERS)
def test_each_readers_numpy_twin_gives_its_layers_beliefs_below_38_digits(reader):
    g, d = networks(reader)
    candidates = 2 * np.random.default_rng(0).integers(2**20, 2**36, 3000) + 1
    twin_reader, after = after_reader(d.model)
    np.testing.assert_allclose(np.asarray(after(twin_reader.numbers(candidates))).reshape(-1),
                               d.beliefs((candidates - 1) // 2), atol=2e-5)
    z = np.random.default_rng(1).integers(1, 2**30, 200)
    k = np.random.default_rng(2).integers(0, 16, 200)
    expected = g.logits(z)[np.arange(200), k]
    big = np.array([int(v) for v in z], dtype=object)  # the same latents as Python ints: digits path
    np.testing.assert_allclose(g.candidate_scores(big, k), expected, atol=2e-5)


@pytest.mark.parametrize("reader", READERS)
def test_a_reader_reads_numbers_of_4096_digits_and_the_digits_mlp_does_not(reader):
    g, d = networks(reader)
    numbers = lengths.random_odd(4096, 50, np.random.default_rng(0))
    beliefs = d.beliefs_of_candidates(numbers)
    assert beliefs.shape == (50,) and np.isfinite(beliefs).all() and np.ptp(beliefs) > 0
    assert np.isfinite(g.logits(np.array([2**4090, 3**2500], dtype=object))).all()
    mlp_g, mlp_d = networks("digits", mirror=False)  # the control: a weight per position, 38 of them
    assert mlp_d.beliefs_of_candidates(numbers) is None
    with pytest.raises(utils.OptimusError, match="38 binary digits"):
        mlp_g.logits(np.array([2**4090], dtype=object))


def test_a_bits_checkpoint_prints_uniform_primes_of_4096_bits_or_falls_back_to_uniform_rejection():
    g, _ = networks("phases")
    lo, hi = 2**1023, 2**1024 - 1
    sieve, ratios = primes.learned_sieve(g, lo, hi)
    assert set(ratios) == set(primes.oracle.odd_primes(primes.PROBE_PRIMES)) and sieve == ()  # untrained
    mlp, _ = networks("digits", mirror=False)
    assert primes.learned_sieve(mlp, lo, hi) == ((), {})


def supervised_phase_reader(labels_of, snap: bool = True, seed: int = 0):
    """A phase reader and a logistic readout trained on "labels_of(n)" for n < 2**20 (balanced by
    weights), snapped halfway: (reader, readout)."""
    keras.utils.set_random_seed(seed)
    width = 20
    inputs = keras.Input((width,))
    reader = readers.TiedPhases(name="reader")
    readout = keras.layers.Dense(1, activation="sigmoid")
    model = keras.Model(inputs, readout(reader(inputs)))
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    n = np.random.default_rng(seed).integers(1, 2**width, 20_000)
    digits = (2.0 * ((n[:, None] >> np.arange(width)) & 1) - 1.0).astype(np.float32)
    y = labels_of(n).astype(np.float32)
    weights = np.where(y == 1, (1 - y.mean()) / y.mean(), 1.0)
    model.fit(digits, y, sample_weight=weights, batch_size=256, epochs=3, verbose=0)
    if snap:
        reader.snap(n[:4096])
    model.fit(digits, y, sample_weight=weights, batch_size=256, epochs=2, verbose=0)
    return reader, readout


def balanced_accuracy_at(reader, readout, digits: int, rule) -> float:
    numbers = lengths.random_odd(digits, 3000, np.random.default_rng(digits)) + 0
    truth = np.array([rule(int(v)) for v in numbers])
    said = np.asarray(readout(reader.numbers(numbers))).reshape(-1) > 0.5
    return 0.5 * (said[truth].mean() + (~said[~truth]).mean())


def test_the_phase_reader_told_multiples_of_3_below_2_20_knows_them_at_1024_digits():
    """Positive control: snapped, it reads "n is a multiple of 3" at 1024 digits (>= 95%).
    Negative controls: labels shuffled against the numbers stay at chance there, and so does the
    same reader left unsnapped far past its training length."""
    def multiple_of_3(n):
        return n % 3 == 0
    reader, readout = supervised_phase_reader(multiple_of_3)
    assert balanced_accuracy_at(reader, readout, 1024, lambda n: n % 3 == 0) >= 0.95
    shuffled, shuffled_readout = supervised_phase_reader(lambda n: np.random.default_rng(5).permutation(n % 3 == 0))
    assert abs(balanced_accuracy_at(shuffled, shuffled_readout, 1024, lambda n: n % 3 == 0) - 0.5) < 0.05
    assert float(reader.snapped.numpy()) == 1.0 and float(shuffled.snapped.numpy()) == 1.0


def test_an_untrained_pair_scores_about_1_at_every_length():
    g, d = networks("phases")
    curves = lengths.checkpoint_curves(g, d, samples=4000, calibration=False)
    for name in ("discriminator", lengths.FOLD):
        assert all(abs(row["enrichment"] - 1) < 4 * row["sd"] + 0.1 for row in curves[name]), name


def test_the_snap_comes_at_its_batch_is_saved_and_survives_a_resume(tmp_path):
    def run(batches: int) -> None:
        train.train(train.parse_config([
            *BITS, "--generator_input=discriminator", "--generator_layers=0", "--reader=phases",
            "--discriminator_layers=0", f"--nb_batches={batches}", "--batch_size=200", "--test_samples=200",
            "--steps=5", "--generator_steps=2", "--reader_snap=0.5", f"--checkpoint_dir={tmp_path}"]))
    run(1)  # then stopped: the snap is due at batch round(0.5 * 4) = 2 of the full run
    assert float(checkpoint.load_networks(tmp_path)[1].model.get_layer("reader").snapped.numpy()) == 0.0
    run(4)  # resumed
    g, d = checkpoint.load_networks(tmp_path)
    reader = d.model.get_layer("reader")
    assert float(reader.snapped.numpy()) == 1.0
    grid = np.asarray(reader.grid) * reader.mask
    denominators = [next(q for q in range(1, readers.MAX_DENOMINATOR + 1)
                         if np.allclose(np.round(col * q), col * q, atol=1e-4)) for col in grid.T]
    assert max(denominators) <= readers.MAX_DENOMINATOR
    np.testing.assert_array_equal(g.model.get_layer("reader").get_weights()[2], reader.get_weights()[2])


def test_reader_snap_is_refused_without_the_phase_reader():
    with pytest.raises(utils.OptimusError, match="reader_snap"):
        train.parse_config([*BITS, "--reader=periods", "--reader_snap=0.3"])
