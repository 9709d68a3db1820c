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
    config.addinivalue_line("markers", "slow: the tier of long end-to-end runs: -m slow runs it, "
                                       "-m 'not slow' the rest (CI runs both)")
    # Keras's own np.array(tensor) calls trip numpy 2's copy-keyword deprecation, thousands of times
    config.addinivalue_line(
        "filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword")


SLOW_FIXTURES = {"cli"}  # test_report's: every command-line run at once, about a minute


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("slow")
