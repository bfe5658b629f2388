"""A static scan of a submitted notebook for code that tampers with the grading.

nbgrader runs a student's cells and the locked, hidden test cells in one Jupyter kernel, so student
code can reach everything the tests rely on. Each family of rules closes one way in:

* monkeypatching: assigning to or deleting an attribute or item of a module or of a name an import
  binds (``checks.close = ...``, ``torch.allclose = ...``, ``torch.Tensor.__eq__ = ...``), rebinding
  such a name at top level (``checks = Fake()``), ``setattr``/``delattr``/``vars``/``globals``: the
  checks would then pass whatever the answer is;
* IPython and interpreter hooks (``sys.displayhook``, ``showtraceback``, ``set_custom_exc``,
  ``input_transformers_post``, ``ast_transformers``, ``events.register``, ``settrace``): they could
  hide a failing test or rewrite the test cells before they run;
* exiting the kernel (``sys.exit``, ``os._exit``, ``exit()``, ``quit()``): the rest of the notebook,
  tests included, would never run;
* files, processes and the shell (``open``, ``os``, ``subprocess``, ``sqlite3``, ``!cat``, ``%%bash``,
  strings naming ``gradebook.db`` or the source/ folder): they could read the hidden tests, the
  gradebook or another student's submission;
* dynamic code and internals (``exec``, ``eval``, ``__import__``, ``__globals__``, ``gc``,
  ``ctypes``, ``inspect``): they would hide any of the above from a static scan.

Answer cells need none of this (model and maths code with torch, numpy, math and aelab), so a
finding withholds the grade for a person to review rather than zeroing it. Only the cells nbgrader
does not restore are scanned: pass the grade ids of the locked cells from the instructor's copy,
never from the student's metadata. This is one layer of defence: a static scan can be evaded (an
alias passed through a function, say), and the grader also checks the kernel's state at run time.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

BUILTINS = {
    **dict.fromkeys(["exec", "eval", "compile", "__import__"], "runs code built at run time"),
    **dict.fromkeys(["globals", "vars", "__builtins__"], "reaches into a namespace"),
    **dict.fromkeys(["setattr", "delattr"], "sets attributes by name: monkeypatching"),
    "open": "opens a file", "input": "waits for input", "breakpoint": "waits for a debugger",
}
MODULES = {"ctypes", "subprocess", "sqlite3", "shutil", "gc", "inspect", "importlib", "builtins", "IPython",
           "ipykernel", "traitlets", "nbgrader", "nbformat", "nbclient", "nbconvert", "jupyter_client", "socket",
           "urllib", "requests", "http", "pty", "signal", "multiprocessing", "threading", "_thread", "asyncio",
           "sys", "os", "posix", "pathlib", "glob", "io", "tempfile", "pickle", "marshal", "runpy", "code",
           "codeop", "types", "unittest", "atexit"}
HOOKS = {"displayhook", "excepthook", "showtraceback", "_showtraceback", "showsyntaxerror", "set_custom_exc",
         "CustomTB", "custom_exceptions", "input_transformers_post", "input_transformers_cleanup",
         "input_transformer_manager", "ast_transformers", "settrace", "setprofile"}
PROCESS = {"system", "popen", "fork", "forkpty", "kill", "killpg"}
PROCESS_PREFIXES = ("execv", "execl", "spawn", "posix_spawn")
INTERNALS = {"__code__", "__globals__", "__closure__", "__builtins__", "__subclasses__", "__setattr__",
             "__delattr__", "f_globals", "f_locals", "f_back"}
# Names the tests use even where no cell imports them under that name.
DEFAULT_ALIASES = {"torch", "nn", "F", "np", "numpy", "aelab", "checks", "math", "plt", "matplotlib", "Tensor",
                   "functional"}
GRADER_STRINGS = ("gradebook.db", "BEGIN HIDDEN TESTS", "/source/", "autograded/", "submitted/")
SAFE_MAGICS = {"matplotlib", "config", "time", "timeit"}
# When one line gives several findings, the first family here names it.
_PRIORITY = ("shell command", "monkeypatching", "rebinds", "hook", "exits the kernel", "builtin", "imports",
             "runs a process", "internals", "sys.", "grader file")
# Settings that answers may change although they live in a module: plotting and cuDNN switches.
_SETTINGS = re.compile(r"\w+(\.pyplot)?\.rcParams\[.*\]|torch\.backends\.\w+\.\w+")
_TIMEIT_OPTIONS = re.compile(r"^\s*(?:-[nrp]\s*[\d.]+\s*|-[tcqo]\s+)*")


@dataclass(frozen=True)
class Finding:
    cell: str  # grade_id of the cell, or f"cell {index}" for a cell without nbgrader metadata
    line: int  # 1-based line in that cell's source
    what: str  # short human reason
    code: str  # the offending source line, stripped, cut to 120 characters


@dataclass
class _Names:
    aliases: set[str]  # modules and names the tests use: assigning into them is monkeypatching
    imported: set[str]  # names an import binds somewhere in the notebook: rebinding them is tampering
    forbidden: dict[str, str]  # name -> module, for names imported from MODULES (sys, subprocess by the setup cell)


def _parse(source: str) -> ast.Module | None:
    try:
        tree = ast.parse(TransformerManager().transform_cell(source))
    except Exception:  # the student's own syntax error: it just fails their tests
        return None
    # IPython drops leading blank lines; put the line numbers back on the cell's own lines.
    skipped = len(source) - len(source.lstrip("\n"))
    if skipped:
        ast.increment_lineno(tree, skipped)
    return tree


def _root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _bound(node: ast.Import | ast.ImportFrom) -> Iterable[tuple[str, str]]:
    """(name bound, module imported) for each name an import statement binds."""
    for alias in node.names:
        if alias.name != "*":
            module = alias.name if isinstance(node, ast.Import) else (node.module or "")
            yield alias.asname or alias.name.split(".")[0], module


def _collect(trees: list[ast.Module]) -> _Names:
    names = _Names(set(DEFAULT_ALIASES), set(), {})
    for node in (n for tree in trees for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))):
        for name, module in _bound(node):
            names.imported.add(name)
            if module.split(".")[0] in MODULES:
                names.forbidden[name] = module
    names.aliases |= names.imported
    assigns = [n for tree in trees for n in ast.walk(tree) if isinstance(n, ast.Assign)]
    grew = True
    while grew:  # t = torch; u = t.nn: both are aliases
        before = len(names.aliases)
        for node in assigns:
            if isinstance(node.value, (ast.Name, ast.Attribute)) and _root(node.value) in names.aliases:
                names.aliases.update(t.id for t in node.targets if isinstance(t, ast.Name))
        grew = len(names.aliases) > before
    return names


def _local_names(params: ast.arguments | None, body: list[ast.AST]) -> set[str]:
    """The names a function (or class) body binds for itself: they shadow the notebook's."""
    args = [*params.posonlyargs, *params.args, *params.kwonlyargs, params.vararg, params.kwarg] if params else []
    found = {a.arg for a in args if a is not None}
    declared_global: set[str] = set()
    for node in (n for stmt in body for n in ast.walk(stmt)):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            found.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            declared_global.update(node.names)
    return found - declared_global


class _Scan(ast.NodeVisitor):
    def __init__(self, source: str, names: _Names, offset: int = 0):
        self.lines, self.names, self.offset = source.splitlines(), names, offset
        self.scopes: list[set[str]] = []
        self.found: list[tuple[int, str]] = []

    def flag(self, node: ast.AST, what: str) -> None:
        self.found.append((self.offset + getattr(node, "lineno", 1), what))

    def local(self, name: str) -> bool:
        return any(name in scope for scope in self.scopes)

    def from_syntax(self, node: ast.AST) -> bool:
        """Whether a get_ipython() call came from `!`/`%` syntax rather than being written out."""
        line = self.lines[node.lineno - 1] if node.lineno <= len(self.lines) else ""
        return "get_ipython" not in line

    def binds(self, node: ast.AST, name: str) -> None:
        if name in self.names.imported and not self.local(name):
            self.flag(node, f"rebinds {name}, a name the tests use")

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        if not isinstance(node, ast.Lambda):
            self.binds(node, node.name)
            for child in [*node.decorator_list, node.returns]:
                if child is not None:
                    self.visit(child)
        self.visit(node.args)  # defaults and annotations belong to the enclosing scope
        body = [node.body] if isinstance(node, ast.Lambda) else node.body
        self.scopes.append(_local_names(node.args, body))
        for stmt in body:
            self.visit(stmt)
        self.scopes.pop()

    visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.binds(node, node.name)
        for child in [*node.decorator_list, *node.bases, *node.keywords]:
            self.visit(child)
        self.scopes.append(set())  # a class body's names do not shadow anything inside its methods
        for stmt in node.body:
            self.visit(stmt)
        self.scopes.pop()

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for _, module in _bound(node):
            if module.split(".")[0] in MODULES:
                self.flag(node, f"imports {module}")

    visit_ImportFrom = visit_Import

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if not isinstance(node.ctx, ast.Load):
            self.binds(node, name)
        elif name == "get_ipython":
            self.flag(node, "shell command or magic" if self.from_syntax(node)
                      else "uses get_ipython() (reaches into the IPython kernel)")
        elif self.local(name):
            pass
        elif name in ("exit", "quit"):
            self.flag(node, f"calls {name}() (exits the kernel)")
        elif name in BUILTINS:
            self.flag(node, f"uses the builtin {name} ({BUILTINS[name]})")
        elif name in self.names.forbidden:
            module = self.names.forbidden[name]
            self.flag(node, f"uses the {name} module" if name == module else f"uses {name} (from {module})")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr, base = node.attr, node.value
        root = _root(node)
        alias = root in self.names.aliases and not self.local(root)
        if attr in HOOKS or (attr == "register" and isinstance(base, ast.Attribute) and base.attr == "events"):
            self.flag(node, f"touches {attr} (an IPython or interpreter hook)")
        elif attr == "_exit" or (attr == "exit" and _is_name(base, "sys")):
            self.flag(node, f"calls {attr} (exits the kernel)")
        elif attr in PROCESS or attr.startswith(PROCESS_PREFIXES):
            self.flag(node, f"calls {attr} (runs a process)")
        elif attr in INTERNALS or (attr == "__dict__" and alias):
            self.flag(node, f"uses {attr} (reaches into the internals of code the tests use)")
        elif _is_name(base, "sys") and (attr == "modules" or attr in ("stdout", "stderr", "stdin")
                                        and not isinstance(node.ctx, ast.Load)):
            self.flag(node, f"touches sys.{attr}")
        if not isinstance(node.ctx, ast.Load):
            verb = "assigns to" if isinstance(node.ctx, ast.Store) else "deletes"
            if alias and not _SETTINGS.fullmatch(ast.unparse(node)):
                self.flag(node, f"{verb} {ast.unparse(node)[:60]} (monkeypatching a module the tests use)")
            elif attr.startswith("__") and attr.endswith("__") and root != "self":
                self.flag(node, f"{verb} {ast.unparse(node)[:60]} (monkeypatching a special method)")
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        root = _root(node)
        if (not isinstance(node.ctx, ast.Load) and root in self.names.aliases and not self.local(root)
                and not _SETTINGS.fullmatch(ast.unparse(node))):
            self.flag(node, f"changes {ast.unparse(node)[:60]} (monkeypatching a module the tests use)")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            for marker in GRADER_STRINGS:
                if marker in node.value:
                    self.flag(node, f"mentions {marker!r} (a grader file or folder)")
            if node.value in INTERNALS | {"__dict__"}:
                self.flag(node, f"names {node.value} (reaches into the internals of code the tests use)")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if not (isinstance(func, ast.Attribute) and func.attr in ("run_line_magic", "run_cell_magic")
                and isinstance(func.value, ast.Call) and _is_name(func.value.func, "get_ipython")
                and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)
                and len(node.args) >= 2 and node.args[0].value in SAFE_MAGICS and self.from_syntax(node)):
            self.generic_visit(node)
            return
        name, *args = [a.value for a in node.args]
        if name == "config" and not args[0].strip().startswith("InlineBackend"):
            self.flag(node, "shell command or magic")
        elif name in ("time", "timeit"):  # the timed code runs: scan it too
            codes = [(_TIMEIT_OPTIONS.sub("", args[0]), node.lineno - 1)]
            if func.attr == "run_cell_magic" and len(args) > 1:
                codes.append((args[1], node.lineno))  # the cell body starts on the magic's next line
            for code, offset in codes:
                found = _scan_code(code, self.names, self.offset + offset)
                if found is None:
                    self.flag(node, f"%{name} with code that could not be checked")
                self.found += found or []


def _scan_code(source: str, names: _Names, offset: int = 0) -> list[tuple[int, str]] | None:
    tree = _parse(source)
    if tree is None:
        return None
    scan = _Scan(source, names, offset)
    scan.visit(tree)
    return scan.found


def _rank(what: str) -> int:
    return next((i for i, family in enumerate(_PRIORITY) if family in what), len(_PRIORITY))


def scan_notebook(nb: nbformat.NotebookNode, locked: set[str] | frozenset[str] = frozenset()) -> list[Finding]:
    """Scan every code cell whose grade_id is not in `locked` (locked cells are restored from the
    instructor's copy by nbgrader before grading, so whatever the student wrote there does not run).
    The names the notebook imports are collected from all its code cells, locked ones included.
    Each line gives at most one finding, the most telling (see _PRIORITY)."""
    cells = [(i, cell, _parse(cell.source)) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    names = _collect([tree for _, _, tree in cells if tree is not None])
    findings: list[Finding] = []
    for index, cell, tree in cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if tree is None or grade_id in locked:
            continue
        scan = _Scan(cell.source, names)
        scan.visit(tree)
        best: dict[int, str] = {}
        for line, what in scan.found:
            if line not in best or _rank(what) < _rank(best[line]):
                best[line] = what
        lines = cell.source.splitlines()
        for line in sorted(best):
            code = lines[line - 1].strip()[:120] if 0 < line <= len(lines) else ""
            findings.append(Finding(grade_id or f"cell {index}", line, best[line], code))
    return findings


def describe(findings: list[Finding]) -> str:
    """One paragraph for the grade export and feedback ('' when there is nothing to report)."""
    if not findings:
        return ""
    return "grade withheld for review: " + "; ".join(
        f"{f.cell} line {f.line}: {f.what} (`{f.code}`)" for f in findings)
