"""Turn a clone of the template into your project: keep the example data sets and models you
name, remove the others with their configs, code, tests, scripts and README rows, and set the
project's name.

    python scripts/new_project.py my-project --keep-data image_folder --keep-models resnet18

The default run's data and model (`points`, `mlp` in `configs/train.yaml`) always stay: `python
src/train.py` and the tests run them.

It works on a clean git checkout only (it refuses uncommitted changes), so `git diff --stat`
shows what it did and `git checkout . && git clean -fd` undoes it. Then `make test`. It removes
itself and its tests last: a project is made once.

What goes with an example: its config (`configs/data/<name>.yaml`, `configs/model/<name>.yaml`),
the source file its `_target_` names when nothing kept uses it, the experiments and searches
built on it, the scripts that run it, and every test, test case, fixture and helper that names
it (found by reading the tests' syntax trees, so a case of a parametrized test goes alone);
in the README, the table rows and columns and the command lines that name it.
"""

import argparse
import ast
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {"data": "data", "models": "model"}  # option of this script -> config group
BUILT_ON = ("experiment", "hparams_search")  # config groups whose options pick data and models
TEST_FILE = "test_new_project.py"  # this script's tests, which go with it


@dataclass
class Removal:
    """What goes: config options by group, files, and the words that name them in code."""

    options: dict[str, set[str]] = field(default_factory=dict)
    files: set[Path] = field(default_factory=set)
    names: set[str] = field(default_factory=set)  # identifiers: classes, modules, test helpers
    tests: set[str] = field(default_factory=set)  # the test functions removed

    def option_patterns(self) -> list[re.Pattern]:
        """`data=mnist`, `model=mlp,cnn` (a sweep's list) and the like, for each removed option."""
        return [
            re.compile(rf"\b{group}=([\w.-]+,)*{re.escape(name)}(?![\w-])")
            for group, names in self.options.items()
            for name in names
        ]

    def removed_options(self) -> set[str]:
        """The names of the removed options of every group (`mnist`, `mnist_cnn`)."""
        return set().union(*self.options.values())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="the project's name (pyproject.toml, README title)")
    for option, group in GROUPS.items():
        parser.add_argument(
            f"--keep-{option}",
            default="",
            help=f"comma-separated options of configs/{group}/ to keep (default: none)",
        )
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", args.name):
            raise ValueError(
                f"{args.name!r} is not a project name: use letters, digits, and . _ - inside"
            )
        check_clean(root)
        kept = {group: words(getattr(args, f"keep_{o}")) for o, group in GROUPS.items()}
        removal = plan(root, kept)
    except ValueError as error:
        raise SystemExit(f"new_project: {error}") from None
    apply(root, removal, args.name)
    defaults = " and ".join(f"{g}={o}" for g, o in default_choices(root).items())
    print(f"kept {defaults}: the default run (python src/train.py) and the tests use them")
    for group, names in sorted(removal.options.items()):
        print(f"removed {group}: {', '.join(sorted(names)) or 'none'}")
    print(f"removed {len(removal.files)} files; see git status. Next: make test")


def words(text: str) -> set[str]:
    return {word.strip() for word in text.split(",") if word.strip()}


def check_clean(root: Path) -> None:
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True
    )
    if status.returncode != 0:
        raise ValueError(f"{root} is not a git checkout; run this in a clone of the template")
    if status.stdout.strip():
        raise ValueError(
            f"{root} has uncommitted changes; commit or stash them first, so that git can show "
            f"and undo what this does"
        )


def options(root: Path, group: str) -> set[str]:
    return {path.stem for path in (root / "configs" / group).glob("*.yaml")}


def plan(root: Path, kept: dict[str, set[str]]) -> Removal:
    """What to remove for keeping `kept` (options by group); `ValueError` for an unknown one."""
    removal = Removal()
    defaults = default_choices(root)
    for option, group in GROUPS.items():
        if unknown := kept[group] - options(root, group):
            raise ValueError(
                f"--keep-{option}: no configs/{group}/{sorted(unknown)[0]}.yaml; choose from "
                f"{', '.join(sorted(options(root, group)))}"
            )
        removal.options[group] = options(root, group) - kept[group] - {defaults[group]}
    for group in BUILT_ON:
        removal.options[group] = {
            path.stem
            for path in (root / "configs" / group).glob("*.yaml")
            if any(p.search(choice) for p in removal.option_patterns() for choice in picks(path))
        }
    configs = [
        (path, path.stem in removal.options.get(path.parent.name, ()))
        for group in (*GROUPS.values(), *BUILT_ON)
        for path in (root / "configs" / group).glob("*.yaml")
    ]
    removal.files |= {path for path, removed in configs if removed}
    removal.files |= orphaned_sources(root, configs)
    removal.names |= {dotted(root, path) for path in removal.files if path.suffix == ".py"}
    removal.names |= {
        name for path in removal.files if path.suffix == ".py" for name in defined(path)
    }
    removal.files |= {
        path
        for path in (root / "scripts").glob("*.py")
        if path.name != Path(__file__).name and mentions(path.read_text(), removal)
    }
    return removal


def default_choices(root: Path) -> dict[str, str]:
    """The data and model of the default run (`configs/train.yaml`), which stay: `python
    src/train.py` and the tests run them."""
    chosen = dict(choice.split("=", 1) for choice in picks(root / "configs" / "train.yaml"))
    return {group: chosen[group] for group in GROUPS.values()}


def picks(path: Path) -> set[str]:
    """The `group=option` choices of a config's defaults list (`override /data: mnist`)."""
    config = yaml.safe_load(path.read_text()) or {}
    chosen = set()
    for entry in config.get("defaults", []) if isinstance(config, dict) else []:
        if isinstance(entry, dict):
            for key, value in entry.items():
                group = key.split()[-1].strip("/")
                chosen.add(f"{group}={value}")
    return chosen


def targets(path: Path) -> set[str]:
    """The project modules a config's `_target_`s name (`src.data.vision`)."""
    found = re.findall(r"_target_:\s*(src\.[\w.]+)", path.read_text())
    return {target.rsplit(".", 1)[0] for target in found}


def orphaned_sources(root: Path, configs: list[tuple[Path, bool]]) -> set[Path]:
    """The source files of removed examples: those a removed config names and no kept config or
    kept file uses, then those only removed files imported."""
    sources = {dotted(root, path): path for path in (root / "src").rglob("*.py")}
    kept_targets = {t for path, removed in configs if not removed for t in targets(path)}
    candidates = {t for path, removed in configs if removed for t in targets(path)}
    removed: set[str] = set()
    while True:
        imported = {
            module
            for name, path in sources.items()
            if name not in removed
            for module in imports(path)
        }
        newly = {
            module
            for module in candidates - removed - kept_targets - imported
            if module in sources and not sources[module].name.startswith("__")
        }
        if not newly:
            return {sources[module] for module in removed}
        removed |= newly
        candidates |= {m for module in newly for m in imports(sources[module])}


def dotted(root: Path, path: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts)


def imports(path: Path) -> set[str]:
    """The modules a Python file imports (`from a.b import c` gives `a.b` and `a.b.c`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def defined(path: Path) -> set[str]:
    """The public classes and functions a Python file defines."""
    return {
        node.name
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_")
    }


def defines(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return set()


def mentions(text: str, removal: Removal) -> bool:
    """Whether source text names a removed option (`data=mnist`, a `"mnist"` string of a group's
    cases), module or definition."""
    if any(pattern.search(text) for pattern in removal.option_patterns()):
        return True
    return any(re.search(rf"(?<![\w.]){re.escape(name)}\b", text) for name in removal.names)


def node_mentions(node: ast.AST, removal: Removal) -> bool:
    """Whether a syntax tree names a removed option, module or definition: in a string, an
    identifier, an argument or an import."""
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            text = child.value
            if text in removal.names or is_option(text, removal) or mentions(text, removal):
                return True
        elif identifier(child) in removal.names:
            return True
    return False


def identifier(node: ast.AST) -> str | None:
    """The name a node uses or defines, if any."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.arg):
        return node.arg
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.ImportFrom):
        return node.module
    return None


def is_option(text: str, removal: Removal) -> bool:
    """A string that is a removed option itself (a case such as `"mnist"`)."""
    return text in removal.removed_options()


def prune_tests(root: Path, removal: Removal) -> None:
    """Remove from the tests what names a removed example: a case of a list or dict (a
    parametrized test's, a table's) alone, anything else whole; what the removed pieces defined
    goes too (a test module's own names within it, a shared module's everywhere), until nothing
    left names anything removed. A test file left without tests goes."""
    paths = sorted((root / "tests").glob("*.py"))
    sources = {path: path.read_text() for path in paths}
    local: dict[Path, set[str]] = {path: set() for path in paths}
    changed = True
    while changed:
        changed = False
        for path in paths:
            names = removal.names | local[path]
            pruned, gone = prune_source(sources[path], Removal(removal.options, set(), names))
            if pruned != sources[path]:
                sources[path], changed = pruned, True
                (local[path] if path.name.startswith("test_") else removal.names).update(gone)
                removal.tests |= {name for name in gone if name.startswith("test_")}
    for path in paths:
        if path.name.startswith("test_") and not re.search(r"^def test_", sources[path], re.M):
            path.unlink()
            removal.files.add(path)
        elif sources[path] != path.read_text():
            path.write_text(sources[path])


def prune_source(source: str, removal: Removal) -> tuple[str, set[str]]:
    """`source` without the statements and cases that name removed things, and the names the
    removed statements defined."""
    spans: list[tuple[int, int]] = []  # character ranges to cut
    gone: set[str] = set()
    position = positions(source)
    for node in ast.parse(source).body:
        if not node_mentions(node, removal):
            continue
        cases = [c for c in case_lists(node) if any(node_mentions(e, removal) for e in c)]
        emptied = any(all(node_mentions(e, removal) for e in c) for c in cases)
        if (
            cases
            and not emptied
            and not any(node_mentions(part, removal) for part in outside_cases(node, cases))
        ):
            for elements in cases:
                for element, following in zip(elements, [*elements[1:], None], strict=True):
                    if node_mentions(element, removal):
                        gone |= case_name(element)
                        spans.append(case_span(source, position, element, following))
            continue
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        spans.append((position(first, 0), position(node.end_lineno + 1, 0)))
        gone |= defines(node)
    for start, end in sorted(spans, reverse=True):
        source = source[:start] + source[end:]
    return source, gone


def positions(source: str) -> Callable[[int, int], int]:
    """The character index in `source` of a syntax tree's (line, column), the column counted in
    UTF-8 bytes as `ast` counts it; line one past the last: the end."""
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def position(line: int, col: int) -> int:
        text = lines[line - 1] if line <= len(lines) else ""
        return starts[line - 1] + len(text.encode()[:col].decode(errors="ignore"))

    return position


def case_span(
    source: str,
    position: Callable[[int, int], int],
    element: ast.expr,
    following: ast.expr | None,
) -> tuple[int, int]:
    """The characters of a case in a list or dict: up to the next case, or, the last, with its
    trailing comma."""
    start = position(element.lineno, element.col_offset)
    if following:
        return start, position(following.lineno, following.col_offset)
    end = position(element.end_lineno, element.end_col_offset)
    return start, end + len(re.match(r"\s*,?", source[end:]).group())


def case_lists(node: ast.stmt) -> list[list[ast.expr]]:
    """The element lists of a statement's list, tuple and dict literals of cases: a top-level
    assignment's value, a dict a function returns last, and the case lists of
    `pytest.mark.parametrize` decorators."""
    literals: list[ast.expr] = []
    if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
        literals.append(node.value)
    body = getattr(node, "body", [])
    if body and isinstance(body[-1], ast.Return) and isinstance(body[-1].value, ast.Dict):
        literals.append(body[-1].value)  # a fixture's named cases: `return {"mnist": ...}`
    for decorator in getattr(node, "decorator_list", []):
        if isinstance(decorator, ast.Call) and len(decorator.args) >= 2:
            literals.append(decorator.args[1])
    found = []
    for literal in literals:
        if isinstance(literal, ast.List | ast.Tuple):
            found.append(list(literal.elts))
        elif isinstance(literal, ast.Dict) and None not in literal.keys:
            found.append(
                [dict_entry(k, v) for k, v in zip(literal.keys, literal.values, strict=True)]
            )
    return found


def case_name(element: ast.expr) -> set[str]:
    """The name of a dict's case (its string key), which other lists may give to pick it."""
    if isinstance(element, ast.Tuple) and getattr(element, "is_entry", False):
        key = element.elts[0]
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return {key.value}
    return set()


def dict_entry(key: ast.expr, value: ast.expr) -> ast.expr:
    """A dict's key and value as one node spanning both."""
    entry = ast.Tuple(elts=[key, value])
    entry.is_entry = True
    entry.lineno, entry.col_offset = key.lineno, key.col_offset
    entry.end_lineno, entry.end_col_offset = value.end_lineno, value.end_col_offset
    return entry


def outside_cases(node: ast.stmt, cases: list[list[ast.expr]]) -> Iterable[ast.AST]:
    """The parts of a statement other than its case lists (its body, other arguments)."""
    inside = {id(element) for elements in cases for element in elements}
    inside |= {id(part) for elements in cases for e in elements for part in ast.walk(e)}
    for child in ast.walk(node):
        if id(child) in inside or isinstance(child, ast.List | ast.Tuple | ast.Dict):
            continue
        if isinstance(child, ast.Constant | ast.Name | ast.arg | ast.Attribute | ast.ImportFrom):
            yield child


def prune_readme(root: Path, removal: Removal) -> None:
    """Remove from the README the table rows and columns and the command lines that name a
    removed option, and the names of the removed tests."""
    path = root / "README.md"
    kept: list[str] = []
    table: list[str] = []
    for line in [*path.read_text().splitlines(keepends=True), ""]:
        if line.startswith("|"):
            table.append(line)
            continue
        kept += prune_table(table, removal)
        table = []
        if not ("src/train.py" in line and mentions(line, removal)):
            kept.append(line)
    text = re.sub(r"^```\w*\n```\n", "", "".join(kept), flags=re.M)  # a block left empty
    paragraphs = text.split("\n\n")  # and the one that tells of this script
    text = "\n\n".join(p for p in paragraphs if f"scripts/{Path(__file__).name}" not in p)
    for test in removal.tests:  # "(`test`)", "`test`, ..." or "..., and `test`"
        name = f"`{test}`"
        for pattern in (rf"\s*\({name}\)", rf"{name},\s*", rf",?\s*(and\s+)?{name}"):
            text = re.sub(pattern, "", text)
    path.write_text(text)


def prune_table(lines: list[str], removal: Removal) -> list[str]:
    """A Markdown table without the rows (by their first cell) and the columns (by their
    header) that name a removed option."""
    rows = [line.rstrip("\n").strip("|").split("|") for line in lines]
    if not rows:
        return []
    gone = {i for i, cell in enumerate(rows[0]) if i and names_removed_cell(cell, removal)}
    return [
        "|" + "|".join(cell for i, cell in enumerate(row) if i not in gone) + "|\n"
        for index, row in enumerate(rows)
        if index < 2 or not names_removed_cell(row[0], removal)
    ]


def names_removed_cell(cell: str, removal: Removal) -> bool:
    """Whether a table's cell names a removed option (`mnist`, "seed CNN, MNIST", `data=mnist`)."""
    names = set(re.findall(r"\w+", cell.lower()))
    return bool(names & removal.removed_options()) or mentions(cell, removal)


def apply(root: Path, removal: Removal, name: str) -> None:
    removal.files |= {root / "scripts" / Path(__file__).name, root / "tests" / TEST_FILE}
    prune_tests(root, removal)
    for path in sorted(removal.files):
        path.unlink(missing_ok=True)
    prune_readme(root, removal)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(re.sub(r'^name = ".*"$', f'name = "{name}"', text, count=1, flags=re.M))
    readme = root / "README.md"
    text = readme.read_text()
    readme.write_text(re.sub(r"^# .*$", f"# {name}", text, count=1, flags=re.M))
    ruff = [sys.executable, "-m", "ruff"]
    subprocess.run([*ruff, "check", "-q", "--fix", "--select", "F401,I", "tests"], cwd=root)
    subprocess.run([*ruff, "format", "-q", "tests"], cwd=root)


if __name__ == "__main__":
    main()
