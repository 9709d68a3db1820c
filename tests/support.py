"""Helpers shared by the test modules."""
import re

# A line of TensorFlow's own C++ log (severity, date, time, thread, file:line]). The scripts do not
# hide its warnings and errors: on a machine with a CUDA driver but no GPU it logs a cuInit error.
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\] ")


def own_lines(stderr: str) -> list:
    """The lines of ``stderr`` that are not TensorFlow's own log lines."""
    return [line for line in stderr.splitlines() if not TF_LOG_LINE.match(line)]


def error_line(stderr: str) -> str:
    """The one ``error: ...`` line that, besides TensorFlow's log, is all of ``stderr``."""
    lines = own_lines(stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def whole_state(config: dict, batch: int) -> dict:
    """A state.json as train.py writes it after ``batch`` batches, with empty history and tests."""
    import numpy as np
    from training import checkpoint
    return {"format": checkpoint.STATE_FORMAT, "batch": batch, "config": config, "history": [],
            "tests": [], "rng": np.random.default_rng(0).bit_generator.state}
