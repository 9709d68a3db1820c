"""The hard track's controls: the bits input can express divisibility when told it directly, and
with its digits shuffled the pair stays at chance. Also its methods' parts: the periodic
activations, the recurrent discriminator and the magnitude curriculum."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import utils
from training import checkpoint, measuring, model, registry, train

PROBE_BITS = 20          # the control's numbers: odd n below 2**20
PROBE_STEPS = 1500       # Adam steps of 1000 labelled numbers
HELD = 10_000            # held-out numbers, never drawn in training


def multiples_of_3(rng, count: int, exclude: np.ndarray) -> tuple:
    """(x, labels): ``count`` odd n below 2**PROBE_BITS, half multiples of 3, none in ``exclude``,
    as the discriminator's outputs x = (n - 1) / 2."""
    half = count // 2
    multiples = 3 * (2 * rng.integers(0, 2**PROBE_BITS // 6, 3 * half) + 1)
    others = 2 * rng.integers(0, 2**(PROBE_BITS - 1), 3 * half) + 1
    multiples = multiples[~np.isin(multiples, exclude)][:half]
    others = others[(others % 3 != 0) & ~np.isin(others, exclude)][:count - half]
    n = np.concatenate([multiples, others])
    return ((n - 1) / 2).reshape(-1, 1), (n % 3 == 0).astype(np.float32).reshape(-1, 1)


def shuffled_digits(self, x):
    """BitsEncoding.call with each row's digits in a fresh random order: the same digits, no places."""
    digits = original_call(self, x)
    order = tf.argsort(tf.random.uniform(tf.shape(digits)), axis=-1)
    return tf.gather(digits, order, batch_dims=len(digits.shape) - 1)


original_call = model.BitsEncoding.call


def direct_label_accuracy() -> float:
    """Held-out balanced accuracy of the bits discriminator of train.py's constants (2 x 256)
    trained by Adam on "n is a multiple of 3" itself, the label the online loop never gives."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    held_x, held_y = multiples_of_3(rng, HELD, np.array([], dtype=np.int64))
    held_n = (2 * held_x + 1).astype(np.int64).ravel()
    config = train.parse_config(["--discriminator_input=bits", "--discriminator_units=256"])
    d = registry.build(registry.discriminator_architecture(config), "discriminator").model
    d.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    for _ in range(PROBE_STEPS):
        d.train_on_batch(*multiples_of_3(rng, 1000, held_n))
    said = np.asarray(d.predict(held_x, verbose=0, batch_size=5000)) > 0.5
    return 0.5 * (said[held_y == 1].mean() + (~said[held_y == 0]).mean())


@pytest.mark.slow
def test_positive_control_told_directly_the_bits_discriminator_learns_multiples_of_3():
    assert direct_label_accuracy() >= 0.95


@pytest.mark.slow
def test_negative_control_with_its_digits_shuffled_it_cannot(monkeypatch):
    monkeypatch.setattr(model.BitsEncoding, "call", shuffled_digits)
    assert direct_label_accuracy() <= 0.6


@pytest.mark.slow
def test_negative_control_with_the_digits_shuffled_the_pair_stays_within_chance(monkeypatch):
    monkeypatch.setattr(model.BitsEncoding, "call", shuffled_digits)
    config = train.parse_config(["--generator_input=bits", "--discriminator_input=bits"])
    keras.utils.set_random_seed(0)
    trainer = registry.build_trainer(config)
    rng = np.random.default_rng(0)
    for batch in range(1, 9):
        train.run_batch(trainer, config, rng, batch)
    report = measuring.test_models(trainer.generator, None, n_samples=5000, low_latent=10**6 + 1,
                                    high_latent=10**7, seed=0)
    assert abs(report["score"] - 1.0) <= 3 * report["score_sd"]


def test_the_shuffle_keeps_each_rows_digits_and_moves_them():
    x = np.array([[5.0], [2.0**20 + 7]])
    plain = np.asarray(original_call(model.BitsEncoding(), x))
    mixed = np.asarray(shuffled_digits(model.BitsEncoding(), x))
    assert (np.sort(plain, axis=1) == np.sort(mixed, axis=1)).all() and (plain != mixed).any()


# -- the track's method parts ---------------------------------------------------------------------

@pytest.mark.parametrize("activation", sorted(model.ACTIVATIONS))
def test_each_activation_is_the_one_built_and_survives_a_save(activation, tmp_path):
    config = train.parse_config([f"--discriminator_activation={activation}",
                                 f"--generator_activation={activation}"])
    x = np.linspace(-3, 3, 7, dtype=np.float32)
    expected = {"relu": np.maximum(x, 0), "sin": np.sin(x), "snake": x + np.sin(x)**2}[activation]
    for role, build in (("discriminator", registry.discriminator_architecture),
                        ("generator", registry.generator_architecture)):
        part = registry.build(build(config), role)
        hidden = [layer for layer in part.model._flatten_layers() if layer.name.endswith("_0")
                  and isinstance(layer, keras.layers.Dense)][0]
        np.testing.assert_allclose(np.asarray(hidden.activation(x)), expected, rtol=1e-6, atol=1e-6)
        path = tmp_path / f"{role}.h5"
        checkpoint.save_network(part.model, path, part.architecture)
        loaded = checkpoint.load_network(path, role)
        assert loaded.architecture[f"{role}_activation"] == activation
        z = np.array([[3.0], [77.0]])
        np.testing.assert_allclose(np.asarray(loaded.model(z)), np.asarray(part.model(z)))


def test_the_recurrent_discriminator_reads_only_bits():
    with pytest.raises(utils.OptimusError, match="bits"):
        train.parse_config(["--discriminator=recurrent"])
    config = train.parse_config(["--discriminator=recurrent", "--discriminator_input=bits",
                                 "--generator_input=bits", "--discriminator_units=8"])
    d = registry.build(registry.discriminator_architecture(config), "discriminator")
    x = np.array([[3.0], [10.0], [12345.0]])
    p = d.beliefs(x)
    assert p.shape == (3,) and np.all((p > 0) & (p < 1))
    assert d.representation_of(2 * x.ravel().astype(np.int64) + 1).shape == (3, 8)


def test_the_curriculum_grows_the_latents_geometrically_and_run_batch_draws_below_it(monkeypatch):
    config = train.parse_config(["--curriculum_batches=10", "--curriculum_start=100"])
    ceilings = [train.latent_ceiling(config, b) for b in range(1, 13)]
    assert ceilings[0] == 100 and ceilings[10] == ceilings[11] == config["high_latent"]
    assert ceilings[5] == round(100 * (config["high_latent"] / 100) ** 0.5)
    assert train.latent_ceiling(train.parse_config([]), 1) == config["high_latent"]
    drawn = []
    real = utils.random_vector_integers
    monkeypatch.setattr(utils, "random_vector_integers",
                        lambda low, high, n, rng: drawn.append(high) or real(low, high, n, rng))
    small = train.parse_config(["--curriculum_batches=10", "--curriculum_start=100", "--batch_size=50",
                                "--minimum_batch_size=10", "--steps=1", "--generator_steps=1",
                                "--nb_samples=4"])
    trainer = registry.build_trainer(small)
    train.run_batch(trainer, small, np.random.default_rng(0), 1)
    assert drawn[0] == 100
    with pytest.raises(utils.OptimusError, match="curriculum"):
        train.parse_config(["--curriculum_start=100"])
