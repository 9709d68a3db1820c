"""The shape of the code outside tests: its lines (no budget: a count), the lines per file and per
function against their budgets, and the README's layout rule that no module imports itself through
others (an import cycle).

Usage: python tests/budgets.py   (prints each figure; exit 1 if a budget is broken or a cycle found)

A researcher should read the project in an afternoon: these are the rules it keeps to.
tests/test_budgets.py checks them, so that they keep holding.
"""
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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


def project_imports(root: Path = ROOT) -> dict:
    """{module: the project modules it imports, at its top or inside a function} over utils.py,
    test.py and training/*.py (the sweep files import what they run, and nothing imports them)."""
    files = [root / "utils.py", root / "test.py", *sorted((root / "training").glob("*.py"))]
    modules = {(f"training.{f.stem}" if f.parent.name == "training" else f.stem): f for f in files if f.exists()}
    graph = {}
    for module, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        graph[module] = sorted((found & set(modules)) - {module})
    return graph


def import_cycles(graph: dict) -> list:
    """Every cycle a depth-first walk of ``graph`` meets, each as [m1, m2, ..., m1]."""
    cycles, state = [], {}

    def walk(module: str, path: list) -> None:
        state[module] = "open"
        for other in graph[module]:
            if state.get(other) == "open":
                cycles.append(path[path.index(other):] + [module, other])
            elif other not in state:
                walk(other, path + [module])
        state[module] = "done"
    for module in sorted(graph):
        if module not in state:
            walk(module, [])
    return cycles


def report() -> tuple:
    """(lines in all, {file: lines} over FILE_LINES, {file: long_functions} where any)."""
    sizes = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in project_files()}
    return (sum(sizes.values()), {p: n for p, n in sizes.items() if n > FILE_LINES},
            {p: f for p in sizes if (f := long_functions(p))})


def main() -> int:
    total, files, functions = report()
    code = sum(code_lines(p) for p in project_files())
    cycles = import_cycles(project_imports())
    print(f"Python outside tests: {total} lines, {code} of them code, without docstrings, comments or "
          f"blank lines; import cycles: {len(cycles)}")
    for cycle in cycles:
        print(f"  {' -> '.join(cycle)}")
    for path, n in files.items():
        print(f"  {path.relative_to(ROOT)}: {n} lines (budget {FILE_LINES})")
    for path, found in functions.items():
        for name, n in found:
            print(f"  {path.relative_to(ROOT)}: {name} is {n} lines (budget {FUNCTION_LINES})")
    return int(bool(files) or bool(functions) or bool(cycles))


if __name__ == "__main__":
    sys.exit(main())
