"""Readers of the binary digits: the trainable layers between the bits encoding and the MLP
(the registry's ``reader`` table). Each reads digits b_i in {0, 1} (leading zeros add nothing), so
what it computes does not depend on how many digits a number has: what it learns from short
numbers can hold for longer ones."""
import keras
import numpy as np
import tensorflow as tf

READER_FREQUENCIES = (0, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 2 / 5, 1 / 6, 1 / 7)  # the learned readers'
                                # first frequencies, in turns per digit (2**i mod p has period 2
                                # for p = 3, 4 for 5, 3 for 7); each gives 2 features
FREQUENCY_STEP = 0.001            # the frequencies move at this share of Adam's step (a prior: at the
                                # full step they drift to fit the training range and stop carrying over)
READER_PERIODS = tuple(range(2, 13))  # the period prior's periods q of the digit positions


def _digits01(digits):
    """BitsEncoding's -1/+1 digits as 0/1."""
    return (tf.cast(digits, tf.float32) + 1.0) / 2.0


@keras.saving.register_keras_serializable(package="optimus")
class PositionalFrequencies(keras.layers.Layer):
    """h_f = sum_i b_i cos(a_f i + c_f), with learned frequencies a_f and phases c_f.

    Input (..., W) digits, least significant first; output (..., 2F). Position i's weight is a
    sinusoid of i, defined even where no digit varied in training. The a_f start at
    READER_FREQUENCIES, each twice, with phases 0 and pi/2 (started uniform in [0, pi], they fit
    the training range with frequencies that do not carry over)."""
    readout_scale = 1.0         # the next layer's kernel from U[-1, 1]

    def _frequencies(self, repeat: int):
        """The frequencies' variable, in units of FREQUENCY_STEP radians (``frequencies``)."""
        turns = np.repeat(READER_FREQUENCIES, repeat)
        return self.add_weight(shape=turns.shape, name="frequency",
                               initializer=keras.initializers.Constant(2 * np.pi * turns / FREQUENCY_STEP))

    def frequencies(self):
        """a_f in radians per digit."""
        return FREQUENCY_STEP * self.frequency

    def build(self, input_shape):
        self.frequency = self._frequencies(2)
        self.phase = self.add_weight(shape=self.frequency.shape, name="phase", initializer=keras.initializers.Constant(
            np.tile([0.0, -np.pi / 2], len(READER_FREQUENCIES))))

    def call(self, digits):
        i = tf.range(digits.shape[-1], dtype=tf.float32)[:, None]
        return tf.tensordot(_digits01(digits), tf.cos(i * self.frequencies() + self.phase), 1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2 * len(READER_FREQUENCIES))


@keras.saving.register_keras_serializable(package="optimus")
class RotationRecurrence(PositionalFrequencies):
    """A complex-diagonal linear recurrence whose state is a rotation: s <- exp(i a_f) s + b_i,
    reading the digits from the most significant, so the last state is sum_i b_i exp(i a_f i).

    Input (..., W) digits; output (..., 2F): the states' real and imaginary parts, the a_f starting
    at READER_FREQUENCIES. As linear recurrent units are computed, it runs on its impulse response
    (W steps on F numbers) and the digits meet it in one product; it needs no phases: a rotation
    of (re, im) is linear."""

    def build(self, input_shape):  # no phase: every weight must reach the output (the Fisher)
        self.frequency = self._frequencies(1)

    def call(self, digits):
        cos, sin = tf.cos(self.frequencies()), tf.sin(self.frequencies())
        re, im, response = tf.ones_like(cos), tf.zeros_like(cos), []
        for _ in range(digits.shape[-1]):  # response[i] = exp(i a_f)**i, rotation after rotation
            response.append(tf.concat([re, im], 0))
            re, im = re * cos - im * sin, re * sin + im * cos
        return tf.tensordot(_digits01(digits), tf.stack(response), 1)


@keras.saving.register_keras_serializable(package="optimus")
class PeriodCounts(keras.layers.Layer):
    """A period prior, fixed: for each period q of READER_PERIODS and class r < q, the count of set
    digits at positions i = r mod q (n mod p is a fixed combination of the counts of period
    ord_p(2), mod p); no weights, so nothing can fit positions alone. Output (..., sum(READER_PERIODS))."""
    readout_scale = 0.3         # the next layer's kernel from U[-0.3, 0.3]: counts reach ~W/q

    def call(self, digits):
        i = np.arange(digits.shape[-1])[:, None]
        table = np.concatenate([(i % q == np.arange(q)) for q in READER_PERIODS], axis=1)
        return tf.tensordot(_digits01(digits), tf.constant(table, tf.float32), 1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], sum(READER_PERIODS))
