"""The size budgets of the code outside tests: lines in all, lines per file, lines per function.

Usage: python tests/budgets.py   (prints each figure against its budget; exit 1 if any is over)

A researcher should read the project in an afternoon: these are the budgets it keeps to.
tests/test_budgets.py checks those that hold, so that they keep holding.
"""
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOTAL_LINES = 4200              # Python lines outside tests/, at most
FILE_LINES = 600                # lines of any one file, at most
FUNCTION_LINES = 50             # lines of any one function or method (its def to its last line)


def project_files() -> list:
    """Every Python file of the project outside tests/ (and the virtual environment)."""
    return sorted(p for p in ROOT.rglob("*.py")
                  if not {"tests", ".venv", "runs"} & set(p.relative_to(ROOT).parts))


def long_functions(path: Path) -> list:
    """(name, lines) of every function in ``path`` longer than FUNCTION_LINES."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > FUNCTION_LINES]


def code_lines(path: Path) -> int:
    """Lines of ``path`` that are code: not blank, not a comment, not in a docstring."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    skipped = {i for i, line in enumerate(lines, 1) if not line.strip() or line.strip().startswith("#")}
    for node in ast.walk(ast.parse(text)):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            skipped.update(range(body[0].lineno, body[0].end_lineno + 1))
    return len(lines) - len(skipped)


def report() -> tuple:
    """(lines in all, {file: lines} over FILE_LINES, {file: long_functions} where any)."""
    sizes = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in project_files()}
    return (sum(sizes.values()), {p: n for p, n in sizes.items() if n > FILE_LINES},
            {p: f for p in sizes if (f := long_functions(p))})


def main() -> int:
    total, files, functions = report()
    code = sum(code_lines(p) for p in project_files())
    print(f"Python outside tests: {total} lines (budget {TOTAL_LINES}); {code} of them code, without "
          "docstrings, comments or blank lines")
    for path, n in files.items():
        print(f"  {path.relative_to(ROOT)}: {n} lines (budget {FILE_LINES})")
    for path, found in functions.items():
        for name, n in found:
            print(f"  {path.relative_to(ROOT)}: {name} is {n} lines (budget {FUNCTION_LINES})")
    return int(total > TOTAL_LINES or bool(files) or bool(functions))


if __name__ == "__main__":
    sys.exit(main())
