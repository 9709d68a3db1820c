"""Shared helpers: the one kind of user error, exact integers in numpy, random latents, and a
quiet TensorFlow start with Ctrl-C handling. The bottom layer: only the standard library and numpy.
"""
import contextlib
import glob
import importlib
import io
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence

import numpy as np

FLOAT32_EXACT = 2**24           # float32 holds every integer up to here, and not all beyond
FLOAT64_EXACT = 2**53           # float64 holds every integer up to here: candidates stay below it
OUTPUT_LIMIT = float(FLOAT64_EXACT)  # a generator's outputs beyond this have no integer resolution: divergence
LATENT_LIMIT = FLOAT32_EXACT    # largest latent integer: the real head reads z as float32
MAX_ODD_INPUT = 2**62  # to_odd_integer input cap: 2*round(x)+1 < 2**63 + 2 fits in uint64


class OptimusError(ValueError):
    """A bad setting or input (constant, argument, checkpoint): the scripts show it as one line, exit 2."""


class GeneratorDivergedError(OptimusError):
    """The generator emitted NaN, inf, a non-positive value or a value beyond OUTPUT_LIMIT."""


def check_outputs(x: np.ndarray) -> np.ndarray:
    """x as float64 (n,) if every value is finite and in (0, OUTPUT_LIMIT], else raise: run before
    any primality label is computed, so nothing downstream sees a bad value."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    bad = ~(np.isfinite(x) & (x > 0) & (x <= OUTPUT_LIMIT))
    if bad.any():
        raise GeneratorDivergedError(
            f"generator emitted {int(bad.sum())} of {x.size} outputs that are NaN, inf, <= 0 or "
            f"> {OUTPUT_LIMIT:.0e} (first: {x[bad][0]!r})")
    return x


def one_line(err: BaseException) -> str:
    """An error's message on one line, as the scripts print it."""
    return " ".join(str(err).splitlines())


def print_error(err: BaseException) -> None:
    """The scripts' report of a user error: one line ``error: ...`` on stderr."""
    print("error: " + one_line(err), file=sys.stderr, flush=True)


def output_failed(err: OSError) -> int:
    """One line on stderr when writing the output failed (a closed pipe, a full device); exit 2.
    stdout then points at /dev/null, so that the interpreter's last flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    what = "standard output was closed" if isinstance(err, BrokenPipeError) else (
        f"cannot write the output ({err.strerror or err})")
    try:
        print(f"error: {what}", file=sys.stderr, flush=True)
    except OSError:
        pass
    return 2


def to_odd_integer(x) -> np.ndarray:
    """Map strictly positive reals to odd integers 2*round(x)+1 (half to even); uint64, shape of x.

    Raises ValueError counting the entries that are NaN, infinite, <= 0 or >= MAX_ODD_INPUT,
    rather than wrapping around.
    """
    values = np.asarray(x)
    if values.dtype.kind not in "iuf":
        raise ValueError(f"to_odd_integer: expected real numbers, got dtype {values.dtype}")
    finite = np.isfinite(values)
    counts = {
        "NaN or infinite": np.count_nonzero(~finite),
        "<= 0": np.count_nonzero(finite & (values <= 0)),
        f">= MAX_ODD_INPUT ({MAX_ODD_INPUT:.3g})": np.count_nonzero(finite & (values >= MAX_ODD_INPUT)),
    }
    if any(counts.values()):
        detail = ", ".join(f"{count} {kind}" for kind, count in counts.items() if count)
        raise ValueError(f"to_odd_integer: {sum(counts.values())} of {values.size} values are invalid ({detail})")
    if values.dtype.kind == "f":
        values = np.rint(values)
    return values.astype(np.uint64) * np.uint64(2) + np.uint64(1)


def integers(values) -> np.ndarray:
    """Integers as an int64 array when they all fit (>= 0 and < 2**63), else an object array of
    Python ints; floats must be whole. Shape of ``values``."""
    array = np.asarray(values)
    if array.dtype.kind == "f":
        if not (np.isfinite(array).all() and (array == np.round(array)).all()):
            raise ValueError("integers: expected whole numbers")
        array = array.astype(np.int64)
    if array.dtype.kind in "iu":
        if array.size and (array.min() < 0 or (array.dtype.kind == "u" and array.max() >= 2**63)):
            return np.array([int(v) for v in array.flat], dtype=object).reshape(array.shape)
        return array.astype(np.int64)
    whole = [int(v) for v in array.flat]
    if all(0 <= v < 2**63 for v in whole):
        return np.array(whole, dtype=np.int64).reshape(array.shape)
    return np.array(whole, dtype=object).reshape(array.shape)


def bit_lengths(values: np.ndarray) -> np.ndarray:
    """The number of binary digits of each positive integer (int64, uint64 or Python ints): int64."""
    if values.dtype == object:
        return np.fromiter((int(v).bit_length() for v in values.flat), np.int64, values.size).reshape(values.shape)
    n, length = values.astype(np.uint64), np.zeros(values.shape, dtype=np.int64)
    for shift in (32, 16, 8, 4, 2, 1):  # binary search on the highest set bit, exact
        high = n >= np.uint64(1 << shift)
        length += shift * high
        n = np.where(high, n >> np.uint64(shift), n)
    return length + (n > 0)


def residues(values: np.ndarray, p: int) -> np.ndarray:
    """values mod p, exactly, for an int64 array or an object array of Python ints: int64, same shape."""
    if values.dtype == object:
        return np.fromiter((int(v) % p for v in values.flat), np.int64, values.size).reshape(values.shape)
    return np.mod(values, p)


def random_big_integers(low: int, high: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` integers uniform in [low, high], any size: Python ints in an object array.

    By rejection on ``rng``'s random bits: the same seed, the same integers. Distinct in practice
    here (spans far beyond ``size``), not by construction.
    """
    span = high - low + 1
    bits = span.bit_length()
    nbytes, shift = (bits + 7) // 8, -bits % 8
    out = []
    while len(out) < size:  # one draw of random bytes per round: rng.bytes costs microseconds a call
        block = rng.bytes(nbytes * (size - len(out)))
        values = (int.from_bytes(block[i:i + nbytes], "little") >> shift for i in range(0, len(block), nbytes))
        out += [low + v for v in values if v < span]
    return np.array(out, dtype=object)


def random_vector_integers(low, high, size, rng: np.random.Generator | None = None) -> np.ndarray:
    """`size` distinct integers uniform in [low, high], in random order: int64 (size,).

    rng: a numpy Generator (None: a fresh unseeded one). Ranges up to 2**63 - 1 wide.
    """
    int64 = np.iinfo(np.int64)  # its callers pass checked values: it asserts them
    assert all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (low, high, size)), "integers"
    low, high, size = int(low), int(high), int(size)
    assert int64.min <= low <= high <= int64.max and high - low < int64.max, f"int64 bounds: [{low}, {high}]"
    assert 0 <= size <= high - low + 1, f"size {size} of [{low}, {high}]"
    span = high - low + 1
    rng = np.random.default_rng() if rng is None else rng
    # Generator.choice without replacement uses Floyd's algorithm when span >> size
    offsets = rng.choice(span, size=size, replace=False).astype(np.int64)
    return offsets + np.int64(low)


def random_integers(low: int, high: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` integers uniform in [low, high]: distinct int64 (``random_vector_integers``) when
    high < 2**63, else Python ints (``random_big_integers``)."""
    if high < 2**63:
        return random_vector_integers(low, high, size, rng)
    return random_big_integers(low, high, size, rng)


LOG_EPSILON = 1e-7              # probabilities are clipped to [eps, 1-eps] before a log (losses,
                                # rewards, the report's log-losses)
TF_LOG_LEVEL = "1"              # TF_CPP_MIN_LOG_LEVEL unless the user sets one: hide notes, show
                                # warnings and errors (0 also shows notes, 2 hides warnings)
_LOG_LINE = re.compile(rb"^([IWEF])\d{4} ")  # TensorFlow's C++ log lines: severity, then the date
_ABSL_BANNER = b"WARNING: All log messages before absl::InitializeLog() is called"


def _forward_log_lines(read_end: int, out: int, level: int) -> None:
    """Copy lines from the pipe ``read_end`` to ``out``, dropping TensorFlow's below ``level``."""
    with os.fdopen(read_end, "rb") as pipe:
        for line in pipe:
            severity = _LOG_LINE.match(line)
            if severity and "IWEF".index(severity.group(1).decode()) < level:
                continue
            if line.startswith(_ABSL_BANNER) and level >= 1:
                continue
            if _NO_GPU_LINE in line and not glob.glob("/dev/nvidia[0-9]*"):
                continue  # CUDA's libraries are installed, the machine has no GPU: nothing is wrong
            os.write(out, line)


_NO_GPU_LINE = b"failed call to cuInit"  # TensorFlow's error line where CUDA finds no device
_CTRL_C_HANDLERS = []            # what a Ctrl-C calls, innermost last (none: the process ends)
_CTRL_C_WATCHED = threading.Event()
CTRL_C_EXIT = 130               # exit status of a process that a Ctrl-C ended (128 + SIGINT)


def watch_ctrl_c(message: str) -> None:
    """For an entry script: Ctrl-C goes to a thread of its own, which calls the innermost handler
    of ``on_ctrl_c``, or with none prints ``message`` and ends the process with status 130.

    Why: a Python signal handler can run inside TensorFlow's C++ calls and corrupt the heap (glibc
    aborts: "corrupted size vs. prev_size"), even one that only sets a flag. So SIGINT stays
    blocked in every thread but one; the caller blocks it with signal.pthread_sigmask before any
    thread starts (numpy's import starts some).
    """
    if _CTRL_C_WATCHED.is_set():
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.default_int_handler)  # not ignored (as in a background
    _CTRL_C_WATCHED.set()                                       # job): an ignored one is discarded
    threading.Thread(target=_wait_for_ctrl_c, args=(message,), name="ctrl-c", daemon=True).start()


def _wait_for_ctrl_c(message: str) -> None:
    while True:
        signal.sigwait({signal.SIGINT})
        if _CTRL_C_HANDLERS:
            _CTRL_C_HANDLERS[-1]()
        else:
            end_at_once(message)


def end_at_once(message: str) -> None:
    """Print ``message`` on stderr and end the process with status 130, running nothing else:
    no exception unwinds through TensorFlow and no interpreter shutdown runs beside its threads."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, RuntimeError):
            pass  # a write to this stream was interrupted, or it is closed
    try:
        os.write(sys.stderr.fileno(), f"\n{message}\n".encode())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass
    os._exit(CTRL_C_EXIT)


@contextlib.contextmanager
def on_ctrl_c(handler: Callable[[], None]):
    """Within the block, a Ctrl-C calls ``handler()``: from the thread of ``watch_ctrl_c`` when an
    entry script started it, else as a signal handler of the main thread (in-process use)."""
    if _CTRL_C_WATCHED.is_set():
        _CTRL_C_HANDLERS.append(handler)
        try:
            yield
        finally:
            _CTRL_C_HANDLERS.remove(handler)
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: handler())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def quiet_startup(modules: Sequence[str] = ("tensorflow", "keras")) -> None:
    """Import TensorFlow, before anything else does, at TF_CPP_MIN_LOG_LEVEL (TF_LOG_LEVEL unless
    the user set one).

    The notes TensorFlow prints while it loads ignore that level: stderr goes through a pipe that
    applies it line by line meanwhile. Python-side (absl) notes are limited to errors.
    """
    level_text = os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)
    level = int(level_text) if level_text.isdigit() else 0
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    saved = os.dup(2)
    forwarder = threading.Thread(target=_forward_log_lines, args=(read_end, saved, level), daemon=True)
    forwarder.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        for name in modules:
            importlib.import_module(name)
        if "tensorflow" in modules:  # CUDA starts at the first device query: inside the filter
            sys.modules["tensorflow"].config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)  # drops the pipe's last write end: the forwarder reads to the end
        forwarder.join()
        os.close(saved)
    if "absl.logging" in sys.modules:
        sys.modules["absl.logging"].set_verbosity("error")
