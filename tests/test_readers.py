"""The digit readers at any length: each reader's numpy twin is its layer, the networks read numbers
of up to 4096 digits through it, and the phase reader's snap carries a rule to every length."""
import contextlib
import io

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


def test_a_bits_generator_is_probed_at_1024_bits_and_the_digits_mlp_falls_back_to_no_sieve():
    """A phase reader's generator is probed for the odd primes up to 127 on 1024-bit candidates
    (untrained: none avoided); the digits MLP cannot read them, so its primes are uniform
    rejection's; either way 1024-bit primes come out."""
    g, _ = networks("phases")
    lo, hi = 2**1023, 2**1024 - 1
    sieve, ratios = primes.learned_sieve(g, lo, hi)
    assert set(ratios) == set(primes.oracle.odd_primes(primes.PROBE_PRIMES)) and sieve == ()
    mlp, _ = networks("digits", mirror=False)
    assert primes.learned_sieve(mlp, lo, hi) == ((), {})
    found, _ = primes.draw(mlp, 3, lo, hi, seed=0)
    assert all(p.bit_length() == 1024 and primes.oracle.is_prime(p) for p in found)


def supervised_phase_reader(labels_of, snap: bool = True, seed: int = 0):
    """A phase reader and a logistic readout trained on "labels_of(n)" for n < 2**20 (balanced by
    weights), snapped halfway: (reader, readout)."""
    keras.utils.set_random_seed(seed)
    width = 20
    inputs = keras.Input((width,))
    reader = readers.TiedPhases(**{k: train.DEFAULTS[k] for k in registry.PHASES}, name="reader")
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


@pytest.mark.slow
def test_the_phase_reader_told_multiples_of_3_below_2_20_knows_them_at_1024_digits():
    """Positive control: snapped, it reads "n is a multiple of 3" at 1024 digits (>= 95%).
    Negative controls: labels shuffled against the numbers stay at chance there, and so does the
    same reader left unsnapped far past its training length."""
    def multiple_of_3(n):
        return n % 3 == 0
    reader, readout = supervised_phase_reader(multiple_of_3)
    assert balanced_accuracy_at(reader, readout, 1024, lambda n: n % 3 == 0) >= 0.95
    unsnapped, unsnapped_readout = supervised_phase_reader(multiple_of_3, snap=False)
    assert balanced_accuracy_at(unsnapped, unsnapped_readout, 20, lambda n: n % 3 == 0) >= 0.95  # in range
    assert balanced_accuracy_at(unsnapped, unsnapped_readout, 1024, lambda n: n % 3 == 0) < 0.9
    shuffled, shuffled_readout = supervised_phase_reader(lambda n: np.random.default_rng(5).permutation(n % 3 == 0))
    assert abs(balanced_accuracy_at(shuffled, shuffled_readout, 1024, lambda n: n % 3 == 0) - 0.5) < 0.05
    assert float(reader.snapped.numpy()) == 1.0 and float(shuffled.snapped.numpy()) == 1.0


def test_an_untrained_pair_scores_about_1_at_every_length():
    g, d = networks("phases")
    curves = lengths.checkpoint_curves(g, d, samples=4000)
    def about_1(rows):
        return (all(abs(row["enrichment"] - 1) < 4 * row["sd"] + 0.1 for row in rows)
                and abs(np.mean([row["enrichment"] for row in rows]) - 1) < 0.15)
    assert all(about_1(curves[name]) for name in ("discriminator", "generator", lengths.FOLD))
    assert not about_1(curves[lengths.CALIBRATION[1]])  # the control: the exact avoid-3-5-7 filter


def on_fractions(weights: np.ndarray, mask: np.ndarray) -> bool:
    """Whether every unit's weights are fractions k/d with one d <= max_denominator per unit."""
    return all(any(np.allclose(col[rows] * d, np.round(col[rows] * d), atol=1e-4)
                   for d in range(1, train.DEFAULTS["max_denominator"] + 1))
               for col, rows in zip(weights.T, (mask > 0).T))


@pytest.mark.slow
def test_the_snap_comes_at_its_batch_is_saved_and_survives_a_resume(tmp_path):
    def run(folder: str, batches: int):
        train.train(train.parse_config([
            *BITS, "--generator_input=discriminator", "--generator_layers=0", "--reader=phases",
            "--discriminator_layers=0", f"--nb_batches={batches}", "--batch_size=200", "--test_samples=200",
            "--steps=5", "--generator_steps=2", "--reader_snap=0.5", f"--checkpoint_dir={tmp_path / folder}"]))
        return checkpoint.load_networks(tmp_path / folder)

    g, d = run("a", 1)  # due at batch max(1, round(0.5 * 1)) = 1
    assert d.model.get_layer("reader").is_snapped()
    g, d = run("b", 4)
    reader = d.model.get_layer("reader")
    grid, mask = np.asarray(reader.grid), reader.mask
    assert reader.is_snapped() and on_fractions(grid, mask)
    assert not on_fractions(np.asarray(reader.turns), mask)  # the control: the learned weights are not
    np.testing.assert_array_equal(np.asarray(g.model.get_layer("reader").grid), grid)  # G follows D
    g, d = run("b", 6)  # resumed past its snap: the fractions stay, nothing snaps twice
    np.testing.assert_array_equal(np.asarray(d.model.get_layer("reader").grid), grid)


def test_reader_snap_is_refused_without_the_phase_reader():
    with pytest.raises(utils.OptimusError, match="reader_snap"):
        train.parse_config([*BITS, "--reader=periods", "--reader_snap=0.3"])


# -- the readers' priors are train.py constants: listed, used by the layer, recorded ----------------

CHANGED_PRIORS = {"phases": {"reader_periods": 8, "phase_units": 3, "max_denominator": 7, "snap_tolerance": 0.03},
                  "frequencies": {"reader_frequencies": "0 1/3 2/5", "frequency_step": 0.01}}


def test_help_lists_every_readers_prior_and_each_reaches_its_layer(capsys):
    assert train.main(["--help"]) == 0
    page = capsys.readouterr().out
    assert all(f"--{name} = " in page for name in {k for entry in registry.READERS.values() for k in entry.stores})
    for reader, priors in CHANGED_PRIORS.items():
        config = train.parse_config([*BITS, f"--reader={reader}", *(f"--{k}={v}" for k, v in priors.items())])
        layer = registry.build(registry.discriminator_architecture(config), "discriminator").model.get_layer("reader")
        default = networks(reader)[1].model.get_layer("reader")  # the control: train.py's defaults
        for name, value in priors.items():
            assert getattr(layer, name) == value != getattr(default, name)
    assert layer.output.shape[-1] == 2 * 3 != default.output.shape[-1]  # 3 frequencies, 2 features each
    phases = registry.build(registry.discriminator_architecture(train.parse_config(
        [*BITS, "--reader=phases", "--reader_periods=8", "--phase_units=3"])), "discriminator")
    assert phases.model.get_layer("reader").output.shape[-1] == 3 * 7  # periods 2..8, 3 units each


@pytest.mark.parametrize("value", ["", "1/0", "0 x", "0.6", "-1/3", " ".join(["1/3"] * 65)])
def test_a_bad_reader_frequencies_is_one_line(value):
    with pytest.raises(utils.OptimusError, match="reader_frequencies must be 1 to 64 fractions in"):
        train.parse_config([*BITS, "--reader=frequencies", f"--reader_frequencies={value}"])


@pytest.mark.slow
def test_a_run_records_each_readers_prior_it_was_given(tmp_path):
    for reader, priors in CHANGED_PRIORS.items():
        folder = tmp_path / reader
        with contextlib.redirect_stdout(io.StringIO()):
            train.train(train.parse_config([
                *BITS, "--generator_input=discriminator", "--generator_layers=0", f"--reader={reader}",
                *(["--discriminator_layers=0"] if reader == "phases" else []), "--nb_batches=3", "--batch_size=200",
                "--test_samples=200", "--steps=5", "--generator_steps=2", f"--checkpoint_dir={folder}",
                *(f"--{k}={v}" for k, v in priors.items())]))
        config = checkpoint.read_state(folder)["config"]
        g, d = checkpoint.load_networks(folder)
        for name, value in priors.items():
            assert config[name] == value and d.architecture[name] == value and g.architecture[name] == value
            assert getattr(d.model.get_layer("reader"), name) == value
        with pytest.raises(utils.OptimusError, match="checkpoint was trained with"):  # kept on resume
            train.train(train.parse_config([*BITS, "--generator_input=discriminator", "--generator_layers=0",
                                            f"--reader={reader}", "--nb_batches=4", f"--checkpoint_dir={folder}",
                                            *(["--discriminator_layers=0"] if reader == "phases" else [])]))
