"""Encodings: how a network reads a number, as a Keras layer, and the same features computed
exactly from integers of any size (test sessions and --primes score candidates outside the
networks). The registry's input tables choose one; each says what it allows (a gradient through
it, bounded features for the GLN, folding into residue tables for the sampler)."""
import keras
import numpy as np
import tensorflow as tf

import utils
from training import model as model_lib
from training import oracle


class Encoding:
    """How a network reads a number x: a layer, the constants it stores, what it allows."""
    reads = stores = ()
    differentiable = False      # a gradient passes from its features back to x
    bounded = False             # its features lie in [-1, 1]
    folds = False               # a linear layer on its features folds into residue tables

    @staticmethod
    def width(config: dict) -> int:
        """Features per number."""
        return 1

    @staticmethod
    def layer(architecture: dict, candidate: bool = True):
        raise NotImplementedError

    @classmethod
    def window_features(cls, architecture: dict, z: np.ndarray, offsets: int) -> np.ndarray:
        """The layer's features of every candidate 2*(offsets*z + k)+1, k < offsets, of latents z
        ((n,) int64 or Python ints), computed exactly from the integers: float32 (n, offsets, F)."""
        raise utils.OptimusError(f"the {cls.__name__} encoding cannot read integers outside its network")

    @classmethod
    def latent_features(cls, architecture: dict, z: np.ndarray) -> np.ndarray:
        """The layer's features of the latents z themselves (candidate=False): float32 (n, F)."""
        raise utils.OptimusError(f"the {cls.__name__} encoding cannot read integers outside its network")

    @classmethod
    def number_features(cls, architecture: dict, n: np.ndarray) -> np.ndarray:
        """The layer's features of odd numbers n themselves (its candidates): float32 (len(n), F)."""
        raise utils.OptimusError(f"the {cls.__name__} encoding cannot read integers outside its network")

    @classmethod
    def candidate_features(cls, architecture: dict, z: np.ndarray, k: np.ndarray, offsets: int) -> np.ndarray:
        """The layer's features of candidate k of each latent z alone: float32 (n, F)."""
        raise utils.OptimusError(f"the {cls.__name__} encoding cannot read integers outside its network")

    @staticmethod
    def ceiling(config: dict) -> tuple | None:
        """(score ceiling of avoiding every small prime it shows, the largest), if it shows residues."""
        return None


class DiscriminatorFeatures(Encoding):
    """A generator input that reads as the discriminator does: D's input encoding, then a frozen
    copy of D's reader and hidden layers (``networks.OffsetHead.follow`` refreshes it from D
    before each generator phase). Its features are those of D's input; this class only marks it."""


class Real(Encoding):
    """x as one real number (the seed's), divided by the largest output."""
    differentiable = True

    @staticmethod
    def layer(architecture: dict, candidate: bool = True):
        return keras.layers.Rescaling(1.0 / model_lib.OUTPUT_CAP, name="encoding")


class Residues(Encoding):
    """Residues modulo the odd primes up to ``largest_prime`` (``model.ResidueEncoding``)."""
    reads = stores = ("largest_prime",)
    differentiable = True       # straight-through: the seed's pathwise gradient can pass
    bounded = True              # features in [-1, 1]: a GLN can gate on them
    folds = True                # a linear layer on it folds into tables (sampling.FoldedScorer)

    @staticmethod
    def width(config: dict) -> int:
        return sum(p - 1 for p in oracle.odd_primes(config["largest_prime"]))

    @staticmethod
    def layer(architecture: dict, candidate: bool = True):
        return model_lib.ResidueEncoding(architecture["largest_prime"], candidate=candidate,
                                         name="encoding")

    @staticmethod
    def _lookup(architecture: dict, residues_mod) -> np.ndarray:
        """The features, from the residues ``residues_mod(m)`` (int64) modulo each group's product."""
        groups = model_lib.grouped_residue_tables(oracle.odd_primes(architecture["largest_prime"]))
        return np.concatenate([t[residues_mod(m)] for m, t in groups], axis=-1)

    @classmethod
    def window_features(cls, architecture: dict, z: np.ndarray, offsets: int) -> np.ndarray:
        k = 2 * np.arange(offsets) + 1  # candidate = 2*offsets*z + k: its residue from z's alone
        return cls._lookup(architecture, lambda m: (2 * offsets * utils.residues(z, m)[:, None] + k) % m)

    @classmethod
    def candidate_features(cls, architecture: dict, z: np.ndarray, k: np.ndarray, offsets: int) -> np.ndarray:
        return cls._lookup(architecture, lambda m: (2 * offsets * utils.residues(z, m) + 2 * k + 1) % m)

    @classmethod
    def latent_features(cls, architecture: dict, z: np.ndarray) -> np.ndarray:
        return cls._lookup(architecture, lambda m: utils.residues(z, m))

    number_features = latent_features  # an odd number's residues are its own

    @staticmethod
    def ceiling(config: dict) -> tuple:
        """(how much more often than chance outputs that avoid every encoded prime are prime,
        the largest encoded prime)."""
        return oracle.rough_ceiling(config["largest_prime"]), config["largest_prime"]


class Bits(Encoding):
    """The candidate's binary digits and nothing else (``model.BitsEncoding``): no number theory."""
    bounded = True

    @staticmethod
    def width(config: dict) -> int:
        return model_lib.BIT_WIDTH

    @staticmethod
    def layer(architecture: dict, candidate: bool = True):
        return model_lib.BitsEncoding(candidate=candidate, name="encoding")

    @staticmethod
    def _digits(numbers: np.ndarray) -> np.ndarray:
        if numbers.dtype == object or (numbers.size and numbers.max() >= 2**model_lib.BIT_WIDTH):
            raise utils.OptimusError(f"a bits encoding reads {model_lib.BIT_WIDTH} binary digits: its "
                                     f"numbers must stay below 2**{model_lib.BIT_WIDTH}")
        digits = (numbers[..., None] >> np.arange(model_lib.BIT_WIDTH)) & 1
        return (2.0 * digits - 1.0).astype(np.float32)

    @classmethod
    def window_features(cls, architecture: dict, z: np.ndarray, offsets: int) -> np.ndarray:
        if z.dtype == object or (z.size and z.max() >= 2**model_lib.BIT_WIDTH):
            return cls._digits(z)  # refused: too large
        return cls._digits(2 * (offsets * z[:, None] + np.arange(offsets)) + 1)

    @classmethod
    def candidate_features(cls, architecture: dict, z: np.ndarray, k: np.ndarray, offsets: int) -> np.ndarray:
        if z.dtype == object or (z.size and z.max() >= 2**model_lib.BIT_WIDTH):
            return cls._digits(z)  # refused: too large
        return cls._digits(2 * (offsets * z + k) + 1)

    @classmethod
    def latent_features(cls, architecture: dict, z: np.ndarray) -> np.ndarray:
        return cls._digits(z)

    number_features = latent_features


# ---------------------------------------------------------------------------------------------
# Readers of the binary digits: trainable layers between the bits encoding and the MLP. Each reads
# digits b_i in {0, 1} (leading zeros add nothing), so what it computes does not depend on how
# many digits a number has: what it learns from short numbers can hold for longer ones.

READER_FREQUENCIES = (0, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 2 / 5, 1 / 6, 1 / 7)  # the learned readers'
                                # first frequencies, in turns per digit: j/q by q (2**i mod p has
                                # period 2 for p = 3, 4 for 5, 3 for 7); each gives 2 features
FREQUENCY_STEP = 0.001            # the learned frequencies move at this share of Adam's step (a prior:
                                # stay near the small periods; at the full step they drift to fit the
                                # training range and stop carrying over)
READER_PERIODS = tuple(range(2, 13))  # the period prior's periods q of the digit positions


def _digits01(digits):
    """BitsEncoding's -1/+1 digits as 0/1."""
    return (tf.cast(digits, tf.float32) + 1.0) / 2.0


@keras.saving.register_keras_serializable(package="optimus")
class PositionalFrequencies(keras.layers.Layer):
    """h_f = sum_i b_i cos(a_f i + c_f), with learned frequencies a_f and phases c_f.

    Input (..., W) digits, least significant first; output (..., 2F). The weight of position i is
    a sinusoid of i, so it is defined at positions that never varied in training. The a_f start
    at READER_FREQUENCIES, each twice, with phases 0 and pi/2 (a cosine and a sine): started
    uniform in [0, pi], as first tried, they fit the training range with frequencies that do not
    carry over.
    """
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

    Input (..., W) digits; output (..., 2F): the real and imaginary parts of the F states, the a_f
    starting at READER_FREQUENCIES. As
    linear recurrent units are computed, the recurrence runs on its impulse response (the unit
    phasor rotated once per digit, W steps on F numbers) and the digits meet it in one product;
    it needs no phases, as ``PositionalFrequencies`` does: a rotation of (re, im) is linear.
    """

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
    digits at positions i = r mod q. n mod p is a fixed combination of the counts of period
    ord_p(2), taken mod p; no weights here, so nothing can fit positions alone.

    Input (..., W) digits; output (..., sum(READER_PERIODS)).
    """
    readout_scale = 0.3         # the next layer's kernel from U[-0.3, 0.3]: counts reach ~W/q

    def call(self, digits):
        i = np.arange(digits.shape[-1])[:, None]
        table = np.concatenate([(i % q == np.arange(q)) for q in READER_PERIODS], axis=1)
        return tf.tensordot(_digits01(digits), tf.constant(table, tf.float32), 1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], sum(READER_PERIODS))
