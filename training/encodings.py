"""Encodings: how a network reads a number, as features computed exactly from integers of any
size (test sessions and --primes score candidates outside the networks); the Keras layer that
computes the same inside a network is model.py's (``model.encoding_layer``). The registry's input
tables choose one; each says what it allows (a gradient through it, bounded features for the GLN,
folding into residue tables for the sampler). Nothing here imports TensorFlow, so the registry's
tables and test.py --primes load without it."""
import functools
import math

import numpy as np

import utils
from training import oracle

# Residue encoding
LARGEST_PRIME = 31              # default: odd primes 3..31 (ceiling of the score: prod p/(p-1) = 3.27)
MAX_LARGEST_PRIME = 257         # above this the encoding's width, sum(p-1), passes 6000 features

# Bits encoding
BIT_WIDTH = 38                  # binary digits read: every candidate below 2**38 (the offset head's
                                # largest, offsets 4096 at z = 2**24, is below 2**37)


def residue_tables(primes) -> tuple:
    """Per prime p: the (p, p-1) feature table and its derivative in n, both float32.

    Row r holds sin(2 pi j r / p) for j = 1..(p-1)/2, then the cosines. With a constant these
    span every function of r, so a linear layer can single out any residue class (r = 0 above
    all). The phase is taken from (j * r) mod p, an exact integer, so no large angle is rounded.
    """
    tables, slopes = [], []
    for p in primes:
        r = np.arange(p)[:, None]
        j = np.arange(1, (p - 1) // 2 + 1)[None, :]
        phase = 2 * np.pi * ((j * r) % p) / p
        rate = 2 * np.pi * j / p
        tables.append(np.concatenate([np.sin(phase), np.cos(phase)], 1).astype(np.float32))
        slopes.append(np.concatenate([rate * np.cos(phase), -rate * np.sin(phase)], 1).astype(np.float32))
    return tables, slopes


RESIDUE_GROUP_ROWS = 2**15      # largest product of primes whose features share one table


def prime_groups(primes) -> list:
    """The primes in runs of consecutive ones whose product is at most RESIDUE_GROUP_ROWS (a prime
    above it alone): one table row per group then reads all of a group's residues."""
    groups, group = [], []
    for p in primes:
        if group and math.prod(group) * p > RESIDUE_GROUP_ROWS:
            groups.append(group)
            group = []
        group.append(p)
    return groups + [group] if group else groups


@functools.cache
def grouped_residue_tables(primes: tuple) -> tuple:
    """The tables of ``residue_tables`` joined per group of consecutive primes: ((m, table), ...)
    with m the group's product (at most RESIDUE_GROUP_ROWS, or one prime) and row n mod m of the
    table the group's features of n side by side, float32. One gather per group gives the same
    features as one per prime, in a third of the time."""
    tables, joined = dict(zip(primes, residue_tables(primes)[0])), []
    for group in prime_groups(primes):
        n = np.arange(math.prod(group))
        joined.append((math.prod(group), np.concatenate([tables[p][n % p] for p in group], axis=1)))
    return tuple(joined)


class Encoding:
    """How a network reads a number x: a layer, the constants it stores, what it allows."""
    reads = stores = ()
    differentiable = False      # a gradient passes from its features back to x
    bounded = False             # its features lie in [-1, 1]
    folds = False               # a linear layer on its features folds into residue tables
    reads_below = math.inf      # numbers its layer reads whole (the bits encoding: BIT_WIDTH digits)

    @staticmethod
    def width(config: dict) -> int:
        """Features per number."""
        return 1

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
    def _lookup(architecture: dict, residues_mod) -> np.ndarray:
        """The features, from the residues ``residues_mod(m)`` (int64) modulo each group's product,
        each group's rows gathered straight into its columns."""
        groups = grouped_residue_tables(oracle.odd_primes(architecture["largest_prime"]))
        parts = [(table, residues_mod(m)) for m, table in groups]
        out = np.empty((*parts[0][1].shape, sum(t.shape[1] for t, _ in parts)), np.float32)
        start = 0
        for table, rows in parts:  # rows < len(table): mode "clip" changes nothing
            np.take(table, rows, axis=0, out=out[..., start:start + table.shape[1]], mode="clip")
            start += table.shape[1]
        return out

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
    reads_below = 2**BIT_WIDTH

    @staticmethod
    def width(config: dict) -> int:
        return BIT_WIDTH

    @staticmethod
    def _digits(numbers: np.ndarray) -> np.ndarray:
        if numbers.dtype == object or (numbers.size and numbers.max() >= 2**BIT_WIDTH):
            raise utils.OptimusError(f"a bits encoding reads {BIT_WIDTH} binary digits: its "
                                     f"numbers must stay below 2**{BIT_WIDTH}")
        digits = (numbers[..., None] >> np.arange(BIT_WIDTH)) & 1
        return (2.0 * digits - 1.0).astype(np.float32)

    @classmethod
    def window_features(cls, architecture: dict, z: np.ndarray, offsets: int) -> np.ndarray:
        if z.dtype == object or (z.size and z.max() >= 2**BIT_WIDTH):
            return cls._digits(z)  # refused: too large
        return cls._digits(2 * (offsets * z[:, None] + np.arange(offsets)) + 1)

    @classmethod
    def candidate_features(cls, architecture: dict, z: np.ndarray, k: np.ndarray, offsets: int) -> np.ndarray:
        if z.dtype == object or (z.size and z.max() >= 2**BIT_WIDTH):
            return cls._digits(z)  # refused: too large
        return cls._digits(2 * (offsets * z + k) + 1)

    @classmethod
    def latent_features(cls, architecture: dict, z: np.ndarray) -> np.ndarray:
        return cls._digits(z)

    number_features = latent_features
