"""Encodings: how a network reads a number, as a Keras layer, and the same features computed
exactly from integers of any size (test sessions and --primes score candidates outside the
networks). The registry's input tables choose one; each says what it allows (a gradient through
it, bounded features for the GLN, folding into residue tables for the sampler)."""
import keras
import numpy as np

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
