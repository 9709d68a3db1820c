"""Shared test setup: repo root on sys.path, TensorFlow started quietly, and the `slow` marker."""
import os
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import utils  # noqa: E402

utils.quiet_startup()


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: seconds-long end-to-end test (CI runs these too)")
    # Keras's own np.array(tensor) calls trip numpy 2's copy-keyword deprecation, thousands of times
    config.addinivalue_line(
        "filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword")
