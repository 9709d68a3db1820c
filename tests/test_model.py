"""The networks: shapes, the original's homogeneity, the default's lack of it, NegativeL2."""
import numpy as np
import keras
import pytest

from training import model

Z = np.array([[1.0], [7.0], [1e3], [1e5], [5e5], [1e6], [1e7]], dtype=np.float32)


def test_original_generator_is_a_scaled_identity():
    keras.utils.set_random_seed(1)
    g = model.initialize_generator(original=True)
    ratio = np.asarray(g(Z)).ravel() / Z.ravel()
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-3)  # float32 round-off only


def test_default_generator_is_not_a_scaled_identity():
    keras.utils.set_random_seed(1)
    g = model.initialize_generator()
    ratio = np.asarray(g(Z)).ravel() / Z.ravel()
    assert np.ptp(np.log(ratio)) > 1.0  # G(z)/z varies by more than a factor e


def test_default_generator_output_is_bounded_and_positive():
    keras.utils.set_random_seed(2)
    g = model.initialize_generator()
    for layer in g.layers:  # large random weights drive the pre-activation far past the fold
        if layer.weights:
            layer.kernel.assign(10.0 * np.asarray(layer.kernel))
    x = np.asarray(g(np.linspace(1, 1e7, 1001, dtype=np.float32).reshape(-1, 1)))
    assert np.all(x >= 1.0) and np.all(x <= model.OUTPUT_CAP)


def test_fold_is_a_unit_triangle_wave_with_unit_slope():
    h = keras.ops.convert_to_tensor(np.array([0.0, 0.25, 1.0, 1.5, 2.0, -0.5, 3.75], np.float32))
    np.testing.assert_allclose(np.asarray(model.fold(h)), [0, 0.25, 1, 0.5, 0, 0.5, 0.25])
    import tensorflow as tf
    v = tf.Variable([0.3, 1.4, -2.2])
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(model.fold(v))
    np.testing.assert_allclose(np.abs(tape.gradient(y, v)), 1.0)


def test_discriminator_outputs_probabilities_and_has_dropout():
    d = model.initialize_discriminator()
    p = np.asarray(d(np.array([[3.0], [1e6], [1.6e7]], np.float32)))
    assert p.shape == (3, 1) and np.all((p > 0) & (p < 1))
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in d.layers) == 6
    assert len(d.losses) == 6  # the L2 on each hidden kernel


def test_negative_l2_rewards_large_values_up_to_its_cap():
    reg = model.NegativeL2(0.5, cap=2.0)
    x = keras.ops.convert_to_tensor(np.array([1.0, 3.0], np.float32))
    assert float(reg(x)) == pytest.approx(-0.5 * (1.0 + 4.0))
    assert float(model.NegativeL2(0.5)(x)) == pytest.approx(-0.5 * 10.0)
    with pytest.raises(ValueError):
        model.NegativeL2(-1.0)


def test_negative_l2_acts_in_the_generator_losses():
    g = model.initialize_generator(negative_l2=0.1)
    g(Z, training=True)
    assert len(g.losses) == 1 and float(g.losses[0]) < 0
    g0 = model.initialize_generator(negative_l2=0.0)
    g0(Z, training=True)
    assert float(g0.losses[0]) == 0.0


@pytest.mark.parametrize("original", [False, True])
def test_saved_generator_reloads_as_the_whole_map(tmp_path, original):
    g = model.initialize_generator(original=original)
    path = tmp_path / "g.h5"
    g.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(again(Z)), np.asarray(g(Z)), rtol=1e-6)
    assert any(isinstance(r, model.NegativeL2) for r in
               [layer.activity_regularizer for layer in again.layers]) != original
