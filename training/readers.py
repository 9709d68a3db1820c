"""Readers of the binary digits: the trainable layers between the bits encoding and the MLP
(the registry's ``reader`` table). Each reads digits b_i in {0, 1} (leading zeros add nothing), so
what it computes does not depend on how many digits a number has: what it learns from short
numbers can hold for longer ones."""
import keras
import numpy as np
import tensorflow as tf

from training import rules, sampling


def periods(largest: int) -> tuple:
    """The periods q = 2..largest of a ``reader_periods`` value."""
    return tuple(range(2, largest + 1))


def _digits01(digits):
    """BitsEncoding's -1/+1 digits as 0/1."""
    return (tf.cast(digits, tf.float32) + 1.0) / 2.0


def binary_digits(numbers) -> np.ndarray:
    """The binary digits of non-negative integers of any size (uint64/int64, or Python ints),
    least significant first: uint8 (n, W), W a multiple of 8 that holds the longest. Every reader
    here gives the same output for any W that holds the number (a 0 digit adds nothing), so each
    ``numbers`` method below computes its layer's output on numbers of any length."""
    numbers = np.asarray(numbers).reshape(-1)
    if numbers.dtype != object:
        return ((numbers.astype(np.uint64)[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    width = max((int(v).bit_length() + 7) // 8 for v in numbers) if numbers.size else 1
    raw = np.frombuffer(b"".join(int(v).to_bytes(width, "little") for v in numbers), np.uint8)
    return np.unpackbits(raw.reshape(len(numbers), width), axis=1, bitorder="little")


@keras.saving.register_keras_serializable(package="optimus")
class PositionalFrequencies(keras.layers.Layer):
    """h_f = sum_i b_i cos(a_f i + c_f), with learned frequencies a_f and phases c_f.

    Input (..., W) digits, least significant first; output (..., 2F). Position i's weight is a
    sinusoid of i, defined even where no digit varied in training. The a_f start at
    reader_frequencies, each twice, with phases 0 and pi/2 (started uniform in [0, pi], they fit
    the training range with frequencies that do not carry over).

    reader_frequencies: the a_f's starts, in turns per digit; frequency_step: the a_f
    move at this share of the optimiser's step (a prior: at the full step they drift to fit the
    training range and stop carrying over)."""
    readout_scale = 1.0         # the next layer's kernel from U[-1, 1]

    def __init__(self, reader_frequencies: str, frequency_step: float, **kwargs):
        super().__init__(**kwargs)
        self.reader_frequencies, self.frequency_step = reader_frequencies, frequency_step
        self.starts = rules.fractions(reader_frequencies)  # turns per digit

    def _frequencies(self, repeat: int):
        """The frequencies' variable, in units of frequency_step radians (``frequencies``)."""
        starts = np.repeat(self.starts, repeat)
        return self.add_weight(shape=starts.shape, name="frequency",
                               initializer=keras.initializers.Constant(2 * np.pi * starts / self.frequency_step))

    def frequencies(self):
        """a_f in radians per digit."""
        return self.frequency_step * self.frequency

    def build(self, input_shape):
        self.frequency = self._frequencies(2)
        self.phase = self.add_weight(shape=self.frequency.shape, name="phase", initializer=keras.initializers.Constant(
            np.tile([0.0, -np.pi / 2], len(self.starts))))

    def call(self, digits):
        i = tf.range(digits.shape[-1], dtype=tf.float32)[:, None]
        return tf.tensordot(_digits01(digits), tf.cos(i * self.frequencies() + self.phase), 1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2 * len(self.starts))

    def numbers(self, numbers) -> np.ndarray:
        """The layer's output (n, 2F) for integers of any length, in numpy."""
        digits = binary_digits(numbers)
        i = np.arange(digits.shape[1], dtype=np.float64)[:, None]
        weights = np.cos(i * np.asarray(self.frequencies(), np.float64) + np.asarray(self.phase, np.float64))
        return (digits @ weights).astype(np.float32)


@keras.saving.register_keras_serializable(package="optimus")
class RotationRecurrence(PositionalFrequencies):
    """A complex-diagonal linear recurrence whose state is a rotation: s <- exp(i a_f) s + b_i,
    reading the digits from the most significant, so the last state is sum_i b_i exp(i a_f i).

    Input (..., W) digits; output (..., 2F): the states' real and imaginary parts, the a_f starting
    at reader_frequencies. As linear recurrent units are computed, it runs on its impulse response
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

    def numbers(self, numbers) -> np.ndarray:
        """The layer's output (n, 2F) for integers of any length, in numpy."""
        digits = binary_digits(numbers)
        angle = np.arange(digits.shape[1], dtype=np.float64)[:, None] * np.asarray(self.frequencies(), np.float64)
        return (digits @ np.concatenate([np.cos(angle), np.sin(angle)], axis=1)).astype(np.float32)


@keras.saving.register_keras_serializable(package="optimus")
class PeriodCounts(keras.layers.Layer):
    """A period prior, fixed: for each period q = 2..reader_periods and class r < q, the count of set
    digits at positions i = r mod q (n mod p is a fixed combination of the counts of period
    ord_p(2), mod p); no weights, so nothing can fit positions alone. Output (..., sum of the q)."""
    readout_scale = 0.3         # the next layer's kernel from U[-0.3, 0.3]: counts reach ~W/q

    def __init__(self, reader_periods: int, **kwargs):
        super().__init__(**kwargs)
        self.reader_periods, self.periods = reader_periods, periods(reader_periods)

    def call(self, digits):
        i = np.arange(digits.shape[-1])[:, None]
        table = np.concatenate([(i % q == np.arange(q)) for q in self.periods], axis=1)
        return tf.tensordot(_digits01(digits), tf.constant(table, tf.float32), 1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], sum(self.periods))

    def numbers(self, numbers) -> np.ndarray:
        """The counts (n, sum of the q) for integers of any length, in numpy."""
        digits = binary_digits(numbers)  # the positions i = r mod q are the strided columns r::q
        return np.stack([digits[:, r::q].sum(axis=1, dtype=np.int32) for q in self.periods for r in range(q)],
                        axis=1).astype(np.float32)



SHIFT_STEPS = 64                # common shifts tried, per grid step


@keras.saving.register_keras_serializable(package="optimus")
class TiedPhases(PeriodCounts):
    """Period-tied phase units: for each period q, phase_units units h = sin(2 pi w . c_q + phi),
    each reading only its own period's counts c_q (w in turns per set digit). Until ``snap`` the w
    are learned; ``snap`` rounds each unit's w to fractions k/d (d <= max_denominator) and freezes
    them, so that each unit is an exact function of sum k_r c_r mod d: a finite set of values at
    every length. Its phases phi and the readout after it train on. Output (..., phase_units * periods).
    snap_tolerance: the snap picks the smallest d that puts every weight of a unit within this many
    turns of a common shift plus k/d (1 / (2 max_denominator): the largest d always does)."""
    readout_scale = 1.0

    def __init__(self, reader_periods: int, phase_units: int, max_denominator: int, snap_tolerance: float,
                 **kwargs):
        super().__init__(reader_periods, **kwargs)
        self.phase_units, self.max_denominator, self.snap_tolerance = phase_units, max_denominator, snap_tolerance

    def build(self, input_shape):
        rows, units = sum(self.periods), self.phase_units * len(self.periods)
        starts = np.cumsum((0,) + self.periods)
        mask = np.zeros((rows, units), np.float32)
        for j, (a, b) in enumerate(zip(starts[:-1], starts[1:])):
            mask[a:b, j * self.phase_units:(j + 1) * self.phase_units] = 1.0
        self.mask = mask  # a constant of the architecture: unit j reads period j // phase_units only
        self.turns = self.add_weight(shape=(rows, units), name="turns",
                                     initializer=keras.initializers.RandomUniform(0.0, 1.0))
        self.phase = self.add_weight(shape=(units,), name="phase",
                                     initializer=keras.initializers.RandomUniform(-np.pi, np.pi))
        self.grid = self.add_weight(shape=(rows, units), name="grid", trainable=False,
                                    initializer="zeros")  # the snapped k/d
        self.snapped = self.add_weight(shape=(), name="snapped", trainable=False, initializer="zeros")

    def weights_in_turns(self):
        """The units' weights in use: the learned ones, or the snapped fractions once snapped."""
        return (self.snapped * self.grid + (1.0 - self.snapped) * self.turns) * self.mask

    def call(self, digits):
        counts = super().call(digits)
        return tf.sin(2 * np.pi * tf.tensordot(counts, self.weights_in_turns(), 1) + self.phase)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.phase_units * len(self.periods))

    def numbers(self, numbers) -> np.ndarray:
        """The layer's output for integers of any length, in numpy (float64 inside)."""
        w, phase = np.asarray(self.weights_in_turns(), np.float64), np.asarray(self.phase, np.float64)
        return np.sin(2 * np.pi * (super().numbers(numbers).astype(np.float64) @ w) + phase).astype(np.float32)

    def is_snapped(self) -> bool:
        return float(np.asarray(self.snapped)) == 1.0

    def snap(self, numbers) -> list:
        """Round each unit's weights to fractions k/d and freeze them; returns each unit's d.

        Learned weights are an exact pattern k/d plus a common shift s: at training lengths s times
        the count of set digits is nearly a constant phase, beyond them it grows with the length.
        So s is set apart: d is the smallest denominator <= max_denominator for which every weight
        lies within snap_tolerance turns of s + k/d, for the best s; the shift is then dropped and
        the unit's phase refitted (least squares on sin and cos) on training inputs ``numbers``."""
        w = np.asarray(self.turns, np.float64) * self.mask
        phase, counts = np.asarray(self.phase, np.float64), super().numbers(numbers).astype(np.float64)
        grid, phases, chosen = np.zeros_like(w), phase.copy(), []
        shifts = np.linspace(0.0, 1.0, SHIFT_STEPS, endpoint=False)[:, None]
        for u in range(w.shape[1]):
            rows = self.mask[:, u] > 0
            for d in range(1, self.max_denominator + 1):
                moved = (w[rows, u][None, :] - shifts / d) * d  # in grid steps, for each shift
                error = np.abs(moved - np.round(moved)).max(axis=1) / d
                if error.min() <= self.snap_tolerance or d == self.max_denominator:
                    k = np.round(moved[np.argmin(error)]) / d
                    break
            target = np.sin(2 * np.pi * counts[:, rows] @ w[rows, u] + phase[u])
            angle = 2 * np.pi * counts[:, rows] @ k
            (a, b), *_ = np.linalg.lstsq(np.stack([np.sin(angle), np.cos(angle)], axis=1), target, rcond=None)
            grid[rows, u], phases[u] = k, np.arctan2(b, a)
            chosen.append(d)
        self.grid.assign(grid.astype(np.float32))
        self.phase.assign(phases.astype(np.float32))
        self.snapped.assign(1.0)
        return chosen


SNAP_SAMPLES = 8192              # training candidates on which a phase reader chooses its fractions


def snap_readers(trainer, config: dict, batch: int) -> dict:
    """Snap every reader of either network that snaps (``readers.TiedPhases``) and has not yet, on
    the counts of SNAP_SAMPLES candidates of the training range (drawn from the run's seed and the
    batch, so the batches' own stream is untouched); a generator that reads D's features follows.
    Returns {network: the units' denominators}, empty when nothing snapped."""
    due = {name: layer for name, network in (("discriminator", trainer.discriminator.model),
                                             ("generator", trainer.generator.model))
           for layer in network.layers
           if layer.name == "reader" and layer.trainable and hasattr(layer, "snap") and not layer.is_snapped()}
    if not due:
        return {}
    rng = np.random.default_rng([config["seed"], batch])
    z = rng.integers(config["low_latent"], config["high_latent"], SNAP_SAMPLES, endpoint=True)
    candidates = sampling.candidates(config["offsets"], z, rng.integers(0, config["offsets"], SNAP_SAMPLES))
    chosen = {name: reader.snap(candidates) for name, reader in due.items()}
    trainer.generator.follow(trainer.discriminator)  # only offset heads have readers
    return chosen

READERS = {"digits": None, "frequencies": PositionalFrequencies, "rotation": RotationRecurrence,
           "periods": PeriodCounts, "phases": TiedPhases}  # registry.READERS documents them ("digits": no layer)
