"""tests/benchmark.py answers --help and bad arguments at once, before TensorFlow's import."""
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parent / "benchmark.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCHMARK), *args], capture_output=True, text=True, timeout=20)


def test_help_prints_the_usage_and_exits_0():
    for flag in ("--help", "-h"):
        result = run(flag)
        assert result.returncode == 0, result.stderr
        assert "Usage: python tests/benchmark.py" in result.stdout
        assert "target" not in result.stdout.lower()


def test_an_unknown_argument_is_one_error_line_and_exit_2():
    result = run("--no-such-option")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--no-such-option" in lines[0]
