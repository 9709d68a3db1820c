"""The method registry: every part of a training method, one entry per value of the constant that
selects it.

A method is a choice of parts: a generator head and what its network reads, a discriminator and
what it reads, the generator's reward, the discriminator's loss and its Fisher for EWC. Each part
is a class registered under its constant's value, e.g. ``@GENERATOR_HEADS.register("offset")``,
and declares:
- ``doc``: what the value means (train.py --help shows it);
- ``reads``: the constants that act only when it is chosen (set one otherwise: refused);
- ``requires``: what it needs of the other chosen parts (the GLN needs the offset head);
- ``architecture``: the keys it records in its network's weight file;
and offers the operations that the step, the Fisher, the loader and test.py call. Nothing else in
the project knows the parts by name: train.py's rules and cross-checks, the constants a resume must
keep and the weight files' keys all come from here.

A new method is its layer or network in ``model.py`` plus one class here.
"""
import operator
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import utils
from training import model as model_lib
from training import sampling
from training import training_utils as tu


@dataclass(frozen=True)
class Requirement:
    """What a part needs of another chosen part: a test of its class, and the words for it."""
    text: str
    test: Callable


def values(*names: str) -> Requirement:
    """The other part must be one of these values."""
    return Requirement(" or ".join(repr(n) for n in names), lambda part: part.value in names)


def having(attribute: str, text: str) -> Requirement:
    """The other part must declare ``attribute`` true, e.g. "encoding.differentiable"."""
    return Requirement(text, lambda part: bool(operator.attrgetter(attribute)(part)))


class Part:
    """One value of a selector constant. Subclasses set the class attributes below."""
    constant = ""       # the selector constant (set by Registry.register)
    value = ""          # its value that selects this part (set by Registry.register)
    doc = ""            # what the value means, one line
    reads = ()          # constants that act only when this part is chosen
    requires = {}       # {other selector constant: Requirement}
    stores = ()         # constants it records in its network's weight file (besides selectors)


class Registry:
    """The parts selected by one constant, in registration order (the first is listed first)."""

    def __init__(self, constant: str):
        self.constant = constant
        self.parts = {}

    def register(self, value: str):
        """Class decorator: register the class as this constant's ``value``."""
        def add(cls):
            if value in self.parts:
                raise ValueError(f"{self.constant}={value!r} is registered twice")
            cls.constant, cls.value = self.constant, value
            self.parts[value] = cls
            return cls
        return add

    def __getitem__(self, value):
        if not isinstance(value, str) or value not in self.parts:
            raise utils.OptimusError(f"{self.constant}={value!r} is not a known setting (known: "
                                     f"{', '.join(map(repr, self.parts))})")
        return self.parts[value]

    def __iter__(self):
        return iter(self.parts)


GENERATOR_HEADS = Registry("generator_head")
GENERATOR_INPUTS = Registry("generator_input")
DISCRIMINATORS = Registry("discriminator")
DISCRIMINATOR_INPUTS = Registry("discriminator_input")
REWARDS = Registry("reward")
DISCRIMINATOR_LOSSES = Registry("discriminator_loss")
DISCRIMINATOR_FISHERS = Registry("discriminator_fisher")
ACCEPTANCES = Registry("acceptance")
POLICY_GRADIENTS = Registry("policy_gradient")
DISCRIMINATOR_BATCHES = Registry("discriminator_batch")
REGISTRIES = (GENERATOR_HEADS, GENERATOR_INPUTS, ACCEPTANCES, REWARDS, POLICY_GRADIENTS,
              DISCRIMINATOR_BATCHES, DISCRIMINATORS, DISCRIMINATOR_INPUTS, DISCRIMINATOR_LOSSES,
              DISCRIMINATOR_FISHERS)
ROOTS = ("generator_head", "discriminator", "discriminator_input")  # always chosen; the others
                                                                    # are chosen by what reads them

LOGIT_ROWS = 65536              # candidates per scorer call when computing logits from integers
                                # (4096 latents of 16 offsets: a few tens of MB of features)

# The other constants that parts read: (type, rule). train.py's defaults must have these types.
PARAMETERS = {
    "offsets": (int, utils.between(2, model_lib.MAX_OFFSETS, "an integer")),
    "largest_prime": (int, utils.between(3, model_lib.MAX_LARGEST_PRIME, "an integer")),
    "generator_steps": (int, utils.at_least(1)),
    "discriminator_minibatch": (int, utils.at_least(0)),
    "generator_layers": (int, utils.between(0, model_lib.MAX_LAYERS, "an integer")),
    "generator_units": (int, utils.between(1, model_lib.MAX_UNITS, "an integer")),
    "discriminator_layers": (int, utils.between(0, model_lib.MAX_LAYERS, "an integer")),
    "discriminator_units": (int, utils.between(1, model_lib.MAX_UNITS, "an integer")),
    "generator_activation": (str, utils.one_of(*model_lib.ACTIVATIONS)),
    "discriminator_activation": (str, utils.one_of(*model_lib.ACTIVATIONS)),
    "negative_l2": (float, utils.between(0, 1)),
}


# ---------------------------------------------------------------------------------------------
# Encodings: how a network reads a number (the inputs below choose one)


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
        return sum(p - 1 for p in utils.odd_primes(config["largest_prime"]))

    @staticmethod
    def layer(architecture: dict, candidate: bool = True):
        return model_lib.ResidueEncoding(architecture["largest_prime"], candidate=candidate,
                                         name="encoding")

    @staticmethod
    def _lookup(architecture: dict, residues_mod) -> np.ndarray:
        """The features, from the residues ``residues_mod(m)`` (int64) modulo each group's product."""
        groups = model_lib.grouped_residue_tables(utils.odd_primes(architecture["largest_prime"]))
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
        return utils.rough_ceiling(config["largest_prime"]), config["largest_prime"]


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
# Generator inputs (offset head): what its policy network reads


class Encoded(Part):
    """A part that reads numbers through an ``encoding``: it reads and stores what that reads."""
    encoding = Encoding

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.reads = cls.stores = cls.encoding.stores


class GeneratorInput(Encoded):
    """What the offset head's policy reads, and through which encoding."""
    per_candidate = True        # one shared network scores each choice's candidate


@GENERATOR_INPUTS.register("candidates")
class CandidateResidues(GeneratorInput):
    doc = "score each choice's candidate from its residues with one shared MLP"
    encoding = Residues


@GENERATOR_INPUTS.register("latent")
class LatentResidues(GeneratorInput):
    doc = "an MLP from the residues of z itself to the logits of the offsets"
    encoding = Residues
    per_candidate = False


@GENERATOR_INPUTS.register("bits")
class CandidateBits(GeneratorInput):
    doc = "score each choice's candidate from its binary digits with one shared MLP"
    encoding = Bits


# ---------------------------------------------------------------------------------------------
# Generator heads: each owns its Keras model and knows how it is trained


class GeneratorHead(Part):
    """A generator: its Keras ``model`` (latent z (n, 1) -> output x (n, 1)) and its operations.

    The step asks it for training candidates (``training_candidates``), to train a batch
    (``train``), for its Fisher terms (``fisher_terms``) and for the candidates D's Fisher uses
    (``fisher_inputs``); test.py asks for ``outputs``.
    """

    def __init__(self, architecture: dict):
        self.architecture = architecture
        self.model = self.build()

    @classmethod
    def architecture_of(cls, config: dict) -> dict:
        """The constants that shape this network, in the order its weight file records them."""
        return {"generator_head": cls.value}

    def build(self) -> keras.Model:
        raise NotImplementedError

    def outputs(self, z) -> np.ndarray:
        """Generator outputs for latents z (n,), checked, float64 (n,): the most likely ones."""
        return model_lib.check_outputs(model_lib.forward(self.model, z))

    def choices(self, z, x):
        """(the offset chosen for each latent, how many offsets there are), or None without offsets."""
        return None

    def sampler(self, how: str, low: int, high: int):
        """The generator used as a random prime generator on latents in [low, high]: an object
        with ``draw_candidates(z, rng) -> (candidates, accepted)`` (exact integers) and
        ``windows(z) -> Windows or None``. This head's outputs are fixed by z: point masses,
        whatever ``how`` asks. Its latents are read as float32: at most LATENT_LIMIT."""
        if high > model_lib.LATENT_LIMIT:
            raise utils.OptimusError(
                f"latents up to {high}: the {self.value} head reads its latent as float32, exact "
                f"only up to {model_lib.LATENT_LIMIT} (2**24), and its outputs stop at 2**24")
        return sampling.PointMasses(self.outputs, low, high)

    def latents_for(self, lo: int, hi: int) -> tuple:
        """All its latents, when its outputs can reach [lo, hi] (each output is kept if inside)."""
        top = 2 * int(model_lib.OUTPUT_CAP) + 1
        if lo > top:
            raise utils.OptimusError(
                f"primes from {lo}: the {self.value} head outputs float32 reals up to 2**24, so its "
                f"candidates stop at {top}; use an offset head")
        return 1, model_lib.LATENT_LIMIT


@GENERATOR_HEADS.register("offset")
class OffsetHead(GeneratorHead):
    doc = ("x = offsets*z + k, k chosen by a softmax policy trained by the score-function "
           "gradient")
    reads = ("generator_input", "offsets", "generator_layers", "generator_units", "generator_activation",
             "acceptance", "reward", "policy_gradient", "generator_steps", "discriminator_batch",
             "discriminator_minibatch")
    stores = ("offsets", "generator_layers", "generator_units", "generator_activation")
    score_function = True       # trained without an input gradient through D

    @classmethod
    def architecture_of(cls, config: dict) -> dict:
        read = GENERATOR_INPUTS[config["generator_input"]]
        return {"generator_head": cls.value, **{k: config[k] for k in cls.stores + read.stores},
                "generator_input": read.value, "acceptance": config["acceptance"]}

    def build(self) -> keras.Model:
        a = self.architecture
        self.input = GENERATOR_INPUTS[a["generator_input"]]
        self.offsets = a["offsets"]
        encoding = self.input.encoding.layer(a, candidate=self.input.per_candidate)
        widths = (a["generator_units"],) * a["generator_layers"]
        network, features, logits = model_lib.offset_generator(
            self.offsets, encoding, self.input.per_candidate, widths, a["generator_activation"])
        self.policy = keras.Model(network.input, logits, name="offset_policy")
        self.encode, self.score = model_lib.split(network.input, features, logits)
        self.acceptance = ACCEPTANCES[a["acceptance"]]
        return network

    def logits(self, z) -> np.ndarray:
        """The policy's logits for latents z ((n,), any integers): float64 (n, offsets).

        The encoding's features are computed from the integers exactly (as its layer computes
        them below 2**53), then the scorer runs on them: the same logits, at any size.
        """
        z = utils.integers(z).reshape(-1)
        a, encoding = self.architecture, self.input.encoding
        parts, step = [], max(1, LOGIT_ROWS // self.offsets)
        for i in range(0, len(z), step):
            chunk = z[i:i + step]
            features = (encoding.window_features(a, chunk, self.offsets) if self.input.per_candidate
                        else encoding.latent_features(a, chunk))
            parts.append(np.asarray(self.score(features, training=False)))
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, self.offsets))

    def candidate_scores(self, z, k) -> np.ndarray:
        """The score (logit) of candidate k of each latent z alone: float64 (n,). The scorer runs
        on each candidate by itself, so they are packed offsets to a row."""
        z, k = utils.integers(z).reshape(-1), np.asarray(k).reshape(-1)
        a, encoding, n = self.architecture, self.input.encoding, len(k)
        rows = -(-n // self.offsets)
        features = encoding.candidate_features(a, z, k, self.offsets)
        padded = np.concatenate([features, np.zeros((rows * self.offsets - n, features.shape[-1]),
                                                    features.dtype)])
        packed = padded.reshape(rows, self.offsets, -1)
        step = max(1, LOGIT_ROWS // self.offsets)
        parts = [np.asarray(self.score(packed[i:i + step], training=False)) for i in range(0, rows, step)]
        return np.concatenate(parts).reshape(-1)[:n].astype(np.float64)

    def candidates(self, z, k=None) -> np.ndarray:
        """The candidates 2*(offsets*z + k)+1 of latents z (n,), exactly: every choice's (n,
        offsets), or choice k (n,) of each; uint64 below 2**64, else Python ints."""
        z = utils.integers(z).reshape(-1, 1)
        k = np.arange(self.offsets) if k is None else np.asarray(k).reshape(-1, 1)
        shape = (len(z), self.offsets) if k.ndim == 1 else (len(z), 1)
        if z.dtype == object or (z.size and z.max() >= 2**62 // self.offsets):
            out = 2 * (self.offsets * z.astype(object) + k.astype(object)) + 1
        else:
            out = np.uint64(2) * (np.uint64(self.offsets) * z.astype(np.uint64) + k.astype(np.uint64)) + np.uint64(1)
        return out.reshape(shape) if k.ndim == 1 else out.reshape(-1)

    def sampler(self, how: str, low: int, high: int):
        return sampling.OffsetSampler(self, how, low, high)

    def choices(self, z, x):
        k = np.asarray(x, dtype=np.float64) - self.offsets * np.asarray(z, dtype=np.float64)
        return k.astype(np.int64), self.offsets

    def latents_for(self, lo: int, hi: int) -> tuple:
        """The latents whose windows meet the odd integers of [lo, hi]: (low, high)."""
        span = 2 * self.offsets
        return max((lo - 1) // span, 0), (hi - 1) // span

    def training_candidates(self, trainer, z, batch: int) -> np.ndarray:
        return tu.sampled_candidates(trainer, z, batch)

    def train(self, trainer, z, x, labels, kept, batch: int) -> dict:
        return tu.train_score_function(trainer, z, x, labels, kept, batch)

    def fisher_terms(self, trainer, z) -> tuple:
        return tu.policy_fisher_terms(trainer, z)

    def fisher_inputs(self, trainer, z, x, labels) -> tuple:
        return x, labels  # candidates of D's own batch

    @property
    def fisher_rows(self) -> int:
        """Per-sample gradients in its Fisher per latent: one for each offset."""
        return self.offsets

    def discriminator_pool(self, trainer, z, x, labels) -> tuple:
        """(D's candidates, their labels, the latent of each): as the batch part chooses."""
        return trainer.batch.pool(self, z, x, labels)


@GENERATOR_HEADS.register("real")
class RealHead(GeneratorHead):
    doc = "the seed's generator of a real x, trained through the discriminator's slope"
    reads = ("negative_l2",)
    requires = {"discriminator_input": having("encoding.differentiable", "an input a gradient passes")}
    score_function = False      # trained through D's input gradient
    original = False

    def build(self) -> keras.Model:
        return model_lib.real_generator(self.original)

    def training_candidates(self, trainer, z, batch: int) -> np.ndarray:
        return self.outputs(z)

    def train(self, trainer, z, x, labels, kept, batch: int) -> dict:
        return tu.train_pathwise(trainer, z, x, labels, kept, batch)

    def fisher_terms(self, trainer, z) -> tuple:
        return tu.belief_fisher_terms(trainer, z)

    def fisher_inputs(self, trainer, z, x, labels) -> tuple:
        x = self.outputs(z)  # D trained on the moving outputs: take them as they are now
        return x, tu.label(x)

    fisher_rows = 1             # per-sample gradients in its Fisher per latent

    def discriminator_pool(self, trainer, z, x, labels) -> tuple:
        return x, labels, np.arange(len(z))  # D learns from the outputs


@GENERATOR_HEADS.register("original")
class OriginalHead(RealHead):
    doc = ("the original's generator, which can only compute k*z, with the original's scalar "
           "discriminator and no negative L2 (it never acted there)")
    reads = ()
    requires = {"discriminator": values("seed")}
    original = True


class Acceptance(Part):
    """How likely an offset head keeps a latent before choosing its offset, from its logits."""
    varies = True               # False: every latent is kept
    per_candidate = False       # True: each output's probability is then exp(its own score)

    @staticmethod
    def log_weight(logits: np.ndarray) -> np.ndarray:
        """log of the (unbounded) weight of keeping each latent, from logits (n, K): shape (n,)."""
        raise NotImplementedError


@ACCEPTANCES.register("none")
class KeepEvery(Acceptance):
    doc = "every latent is kept: its window gives one output"
    varies = False

    @staticmethod
    def log_weight(logits: np.ndarray) -> np.ndarray:
        return np.zeros(len(logits))


@ACCEPTANCES.register("window")
class WindowAcceptance(Acceptance):
    doc = ("a latent is kept with probability proportional to its window's sum of exp(score): "
           "then each output's probability is proportional to exp(its own score) alone")
    requires = {"generator_input": having("per_candidate", "a per-candidate scorer")}
    per_candidate = True

    @staticmethod
    def log_weight(logits: np.ndarray) -> np.ndarray:
        top = logits.max(axis=1)
        return top + np.log(np.exp(logits - top[:, None]).sum(axis=1))


# ---------------------------------------------------------------------------------------------
# Discriminator inputs


class DiscriminatorInput(Encoded):
    """What the discriminator reads: ``layer`` encodes the candidate of an output x."""

    @classmethod
    def layer(cls, architecture: dict):
        return cls.encoding.layer(architecture)

    @classmethod
    def ceiling(cls, config: dict) -> tuple | None:
        """The encoding's (score ceiling, largest prime), when it reads residues."""
        return cls.encoding.ceiling(config)


@DISCRIMINATOR_INPUTS.register("residues")
class ResidueInput(DiscriminatorInput):
    doc = "the candidate's residues modulo the odd primes up to largest_prime"
    encoding = Residues


@DISCRIMINATOR_INPUTS.register("scalar")
class ScalarInput(DiscriminatorInput):
    doc = "x as one real number (the seed's), rescaled to [0, 1]"
    encoding = Real


@DISCRIMINATOR_INPUTS.register("bits")
class BitsInput(DiscriminatorInput):
    doc = "the candidate's binary digits, and nothing else"
    encoding = Bits


# ---------------------------------------------------------------------------------------------
# Discriminators: each owns its Keras model and knows how it is trained


class Discriminator(Part):
    """A discriminator: its Keras ``model`` (x (n, 1) -> P(prime) (n, 1)), split as
    head(encode(x)); ``representation`` (x -> what its output layer reads, for probes); and
    ``update(trainer)``: (encode, update) of one training step."""

    def __init__(self, architecture: dict):
        self.architecture = architecture
        self.input = DISCRIMINATOR_INPUTS[architecture["discriminator_input"]]
        self.model, self.encode, self.head, self.representation = self.build()

    @classmethod
    def architecture_of(cls, config: dict) -> dict:
        read = DISCRIMINATOR_INPUTS[config["discriminator_input"]]
        return {"discriminator": cls.value, "discriminator_input": read.value,
                **{k: config[k] for k in cls.stores + read.stores}}

    def build(self) -> tuple:
        raise NotImplementedError

    def beliefs(self, x) -> np.ndarray:
        """P(prime) for outputs x (n,), float (n,)."""
        return model_lib.forward(self.model, x)

    def representation_of(self, candidates) -> np.ndarray:
        """``representation`` of odd candidates (n,) below 2**53: float (n, H)."""
        x = (utils.integers(candidates).reshape(-1, 1) - 1) // 2
        return np.concatenate([np.asarray(self.representation(x[i:i + LOGIT_ROWS].astype(np.float64),
                                                              training=False))
                               for i in range(0, len(x), LOGIT_ROWS)]).reshape(len(x), -1)

    def beliefs_of_candidates(self, candidates) -> np.ndarray | None:
        """P(prime) for odd candidates (n,) of any size: from their outputs below 2**53, else from
        their encoding's features computed from the integers; None if the input cannot read them."""
        candidates = utils.integers(candidates).reshape(-1)
        if candidates.dtype != object and (not candidates.size or candidates.max() < model_lib.FLOAT64_EXACT):
            return self.beliefs((candidates - 1) // 2)
        try:
            features = self.input.encoding.number_features(self.architecture, candidates)
        except utils.OptimusError:
            return None
        return np.concatenate([np.asarray(self.head(features[i:i + LOGIT_ROWS], training=False)).reshape(-1)
                               for i in range(0, len(features), LOGIT_ROWS)])


@DISCRIMINATORS.register("mlp")
class MlpDiscriminator(Discriminator):
    doc = "an MLP on its input, trained by Adam through its loss"
    reads = ("discriminator_layers", "discriminator_units", "discriminator_activation",
             "discriminator_loss", "discriminator_fisher")
    stores = ("discriminator_layers", "discriminator_units", "discriminator_activation")

    def build(self) -> tuple:
        a = self.architecture
        network, features, hidden = model_lib.encoded_discriminator(
            self.input.layer(a), f"discriminator_{self.input.value}",
            (a["discriminator_units"],) * a["discriminator_layers"], a["discriminator_activation"])
        return self.parts(network, features, hidden)

    @staticmethod
    def parts(network, features, hidden) -> tuple:
        """(model, encode, head, representation) of a network split at its encoding's features."""
        return (network, *model_lib.split(network.input, features, network.output),
                keras.Model(network.input, hidden))

    def update(self, trainer) -> tuple:
        return tu.gradient_update(trainer)


@DISCRIMINATORS.register("recurrent")
class RecurrentDiscriminator(MlpDiscriminator):
    doc = ("a GRU of discriminator_units reading the binary digits one at a time, most significant "
           "first, trained by Adam through its loss")
    reads = ("discriminator_units", "discriminator_loss", "discriminator_fisher")
    stores = ("discriminator_units",)
    requires = {"discriminator_input": values("bits")}

    def build(self) -> tuple:
        return self.parts(*model_lib.recurrent_discriminator(
            self.input.layer(self.architecture), self.architecture["discriminator_units"]))


@DISCRIMINATORS.register("seed")
class SeedDiscriminator(MlpDiscriminator):
    doc = ("the seed's: x as one real, sigmoid layers (1000, then 5 x 100) with L2 and dropout, "
           "trained by Adam through its loss")
    reads = ("discriminator_loss", "discriminator_fisher")
    stores = ()
    requires = {"discriminator_input": values("scalar")}

    def build(self) -> tuple:
        network = model_lib.scalar_discriminator()
        last_hidden = network.layers[-2].output  # its builder's own stack: the last dropout
        return network, (lambda x: x), network, keras.Model(network.inputs[0], last_hidden)


@DISCRIMINATORS.register("gln")
class GlnDiscriminator(Discriminator):
    doc = ("a gated linear network with its own local learning rule (offset head, bounded "
           "features)")
    requires = {"generator_head": having("score_function", "a head that needs no input gradient"),
                "discriminator_input": having("encoding.bounded", "an input with bounded features")}

    def build(self) -> tuple:
        network, features, self.gln = model_lib.gln_discriminator(self.input.layer(self.architecture))
        hidden = keras.layers.Lambda(self.gln.hidden, name="hidden")(features)
        return (network, *model_lib.split(network.input, features, network.output),
                keras.Model(network.input, hidden))

    def update(self, trainer) -> tuple:
        return self.encode, self.gln.local_update


# ---------------------------------------------------------------------------------------------
# Rewards (offset head), discriminator losses and Fisher kinds (gradient-trained discriminators)


class Reward(Part):
    """The reward of a candidate from D's belief p that it is prime (clipped), and log pi(k | z)."""

    @staticmethod
    def of(p, log_pi):
        raise NotImplementedError


def _reward(value: str, doc: str, of: Callable) -> None:
    """Register a reward computed by ``of(p, log_pi)``."""
    REWARDS.register(value)(type(f"Reward_{value}", (Reward,), {"doc": doc, "of": staticmethod(of)}))


_reward("belief", "D(x), the discriminator's belief", lambda p, log_pi: p)
_reward("log", "log D(x)", lambda p, log_pi: tf.math.log(p))
_reward("focal", "minus the focal loss of calling x prime",
        lambda p, log_pi: tf.pow(1.0 - p, tu.FOCAL_GAMMA) * tf.math.log(p))
_reward("constant", "0: the negative control, no signal at all", lambda p, log_pi: tf.zeros_like(p))
_reward("entropy", "log D(x) - log pi(k | z), maximum entropy: the best policy is pi proportional "
        "to D over each window", lambda p, log_pi: tf.math.log(p) - log_pi)


@POLICY_GRADIENTS.register("sampled")
class SampledGradient(Part):
    doc = "REINFORCE: one sampled offset per latent, the batch's mean reward as baseline"
    objective = staticmethod(tu.sampled_objective)


@POLICY_GRADIENTS.register("exact")
class ExactGradient(Part):
    doc = "the expectation over every offset, computed exactly: no sampling noise"
    objective = staticmethod(tu.exact_objective)


@DISCRIMINATOR_BATCHES.register("outputs")
class OutputsBatch(Part):
    doc = "the generator's sampled candidates, one per latent (the seed's: D learns from G's outputs)"

    @staticmethod
    def pool(head, z, x, labels) -> tuple:
        return x, labels, np.arange(len(z))


@DISCRIMINATOR_BATCHES.register("windows")
class WindowsBatch(Part):
    doc = "every candidate of every latent's window, labelled by the oracle"

    @staticmethod
    def pool(head, z, x, labels) -> tuple:
        every = tu.window_candidates(head.offsets, z)
        return every, tu.label(every), np.repeat(np.arange(len(z)), head.offsets)


@DISCRIMINATOR_LOSSES.register("focal")
class FocalLoss(Part):
    doc = "class-balanced focal loss (alpha 0.65, gamma 2), as the seed"

    @staticmethod
    def build() -> keras.losses.Loss:
        return keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True,
                                                    alpha=tu.FOCAL_ALPHA, gamma=tu.FOCAL_GAMMA)


@DISCRIMINATOR_LOSSES.register("bce")
class CrossEntropy(Part):
    doc = "binary cross-entropy"

    @staticmethod
    def build() -> keras.losses.Loss:
        return keras.losses.BinaryCrossentropy()


@DISCRIMINATOR_FISHERS.register("empirical")
class EmpiricalFisher(Part):
    doc = "at the true labels, as the seed"
    rows = 1                    # per-sample gradients per candidate

    @staticmethod
    def terms(d, x, y) -> tuple:
        """(log_prob, inputs, weights) for ``training_utils.fisher_diagonal``: each row 1/n."""
        n = tf.cast(tf.shape(x)[0], tf.float32)
        return (lambda x, y: tu.label_log_prob(d, x, y)), (x, y), tf.fill([tf.shape(x)[0]], 1.0 / n)


@DISCRIMINATOR_FISHERS.register("model")
class ModelFisher(Part):
    doc = "expected over D's own labels: label-free, p(1-p) (d logit/d theta)**2"
    rows = 2                    # both labels of each candidate

    @staticmethod
    def terms(d, x, y) -> tuple:
        """Both labels of every row, weighted by D's own probability of each, over n."""
        n = tf.cast(tf.shape(x)[0], tf.float32)
        p = tf.reshape(d(x, training=False), [-1])
        xs = tf.concat([x, x], 0)
        ys = tf.concat([tf.ones_like(y), tf.zeros_like(y)], 0)
        return (lambda x, y: tu.label_log_prob(d, x, y)), (xs, ys), tf.concat([p, 1.0 - p], 0) / n


# ---------------------------------------------------------------------------------------------
# Derived: the rules of train.py's method constants, the chosen parts, the cross-checks


def rules() -> dict:
    """{constant: Rule} of every selector (its registered values) and every PARAMETERS entry."""
    return {**{r.constant: utils.one_of(*r) for r in REGISTRIES},
            **{name: rule for name, (_, rule) in PARAMETERS.items()}}


def method_constants() -> tuple:
    """The constants a resumed run must keep: every selector and every key a weight file holds."""
    stored = {k for r in REGISTRIES for cls in r.parts.values() for k in cls.stores}
    return tuple(r.constant for r in REGISTRIES) + tuple(k for k in PARAMETERS if k in stored)


REGISTRY_OF = {r.constant: r for r in REGISTRIES}


def chosen(config: dict) -> dict:
    """{selector constant: part class} of the parts ``config`` chooses: the ROOTS, and every
    selector that a chosen part reads."""
    parts, todo = {}, list(ROOTS)
    while todo:
        constant = todo.pop(0)
        if constant in parts:
            continue
        parts[constant] = REGISTRY_OF[constant][config[constant]]
        todo += [c for c in parts[constant].reads if c in REGISTRY_OF]
    return parts


def readers() -> dict:
    """{constant: [part classes that read it]} over every registered part."""
    found = {}
    for registry in REGISTRIES:
        for cls in registry.parts.values():
            for name in cls.reads:
                found.setdefault(name, []).append(cls)
    return found


def memory_bytes(config: dict) -> int:
    """About the most memory one training batch holds: the generator phase's rows (every offset
    of every latent, their features, activations and gradients) and D's batch of every window's
    candidates, encoded. The Fisher is computed in chunks (``training_utils.FISHER_BYTES``)."""
    parts = chosen(config)
    rows = config["batch_size"]
    if "generator_input" in parts:  # an offset head: every offset of every latent at each step
        read = parts["generator_input"]
        rows *= config["offsets"] if read.per_candidate else 1
        width = read.encoding.width(config) + config["generator_units"] * config["generator_layers"] + 8
        generator = rows * width * 4 * 2  # float32 activations, and as many gradients
        pool = config["batch_size"] * config["offsets"]
    else:
        generator, pool = config["batch_size"] * 4 * 1000 * 4, config["batch_size"]
    discriminator = pool * (parts["discriminator_input"].encoding.width(config) + 16) * 4
    return generator + discriminator


def check_method(config: dict, given: set) -> None:
    """Refuse, in one line, a combination the parts do not support, and a constant given in
    ``given`` that no chosen part reads (it would be ignored)."""
    parts = chosen(config)
    for cls in parts.values():
        for constant, need in cls.requires.items():
            other = parts.get(constant)
            if other is not None and not need.test(other):
                raise utils.OptimusError(
                    f"--{cls.constant}={cls.value}: needs {constant} to be {need.text} "
                    f"(got {config[constant]!r})")
    read = {name for cls in parts.values() for name in cls.reads}
    for name, by in sorted(readers().items()):
        if name in given and name not in read:
            where = " or ".join(f"{c.constant}={c.value!r}" for c in by)
            raise utils.OptimusError(f"--{name}: {name} acts only with {where}; leave it out")


# ---------------------------------------------------------------------------------------------
# Building and loading networks


def ceiling(config: dict) -> tuple | None:
    """(score ceiling, largest prime) of outputs that avoid every prime the discriminator sees,
    or None when it sees no residues: the generator learns what D's beliefs show it."""
    return DISCRIMINATOR_INPUTS[config["discriminator_input"]].ceiling(config)


def generator_architecture(config: dict) -> dict:
    """The part of ``config`` (train.py's constants) that shapes the generator."""
    return GENERATOR_HEADS[config["generator_head"]].architecture_of(config)


def discriminator_architecture(config: dict) -> dict:
    """The part of ``config`` (train.py's constants) that shapes the discriminator."""
    return DISCRIMINATORS[config["discriminator"]].architecture_of(config)


ROLES = {"generator": GENERATOR_HEADS, "discriminator": DISCRIMINATORS}


def build(architecture: dict, role: str):
    """The network part (``GeneratorHead`` or ``Discriminator``) an architecture describes."""
    return ROLES[role][architecture[ROLES[role].constant]](architecture)


def checked_architecture(recorded, role: str) -> dict:
    """A weight file's architecture record, validated for ``role``: a dict that a registered part
    of that role would write itself, with values of the right types and rules, whose parts
    support each other. Raises ValueError saying what is wrong."""
    if not isinstance(recorded, dict):
        raise ValueError("not a JSON object")
    root = ROLES[role].constant
    if root not in recorded:
        raise ValueError(f"it holds no {role}")
    specs = {**{r.constant: (str, utils.one_of(*r)) for r in REGISTRIES}, **PARAMETERS}
    for key, value in recorded.items():
        if key not in specs:
            raise ValueError(f"{key}={value!r} is not a known setting")
        kind, rule = specs[key]
        if type(value) is not kind:  # strict: True is not the integer 1
            raise ValueError(f"{key}={value!r} is not {kind.__name__}")
        utils.check(key, value, kind(), rule)
    try:
        expected = ROLES[role][recorded[root]].architecture_of(recorded)
    except KeyError as missing:
        raise ValueError(f"a setting is missing: {missing}") from None
    if set(recorded) != set(expected):
        raise ValueError(f"expected the settings {sorted(expected)}")
    parts = {c: REGISTRY_OF[c][v] for c, v in recorded.items() if c in REGISTRY_OF}
    for cls in parts.values():
        for constant, need in cls.requires.items():
            if constant in parts and not need.test(parts[constant]):
                raise ValueError(f"{cls.constant}={cls.value!r} needs {constant} to be {need.text}")
    return recorded


def load_network(path, role: str):
    """The network part a weight file records (``model.save_network``), rebuilt in code, with its
    weights. role: "generator" or "discriminator", which the file must hold."""
    path = Path(path)
    model_lib.require_file(path)
    try:
        architecture = checked_architecture(model_lib.read_architecture(path), role)
    except Exception as err:  # h5py, json and the checks raise many types for a bad file
        raise model_lib.unusable(path, f"a known {role}", err)
    network = build(architecture, role)
    model_lib.load_weights(network.model, path, architecture)
    return network


def build_trainer(config: dict) -> tu.Trainer:
    """A fresh Trainer for train.py's constants: both networks built (generator first, as the
    seeded initial weights expect), Adam and EWC state, and the method's other parts."""
    generator = build(generator_architecture(config), "generator")
    discriminator = build(discriminator_architecture(config), "discriminator")
    return tu.Trainer.create(generator, discriminator, config, reward=REWARDS[config["reward"]],
                             gradient=POLICY_GRADIENTS[config["policy_gradient"]],
                             batch=DISCRIMINATOR_BATCHES[config["discriminator_batch"]],
                             loss=DISCRIMINATOR_LOSSES[config["discriminator_loss"]],
                             fisher=DISCRIMINATOR_FISHERS[config["discriminator_fisher"]])
