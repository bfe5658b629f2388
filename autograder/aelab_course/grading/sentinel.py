"""The grading kernel's tamper seal (run by the autograder, never by students).

Student code runs in the same kernel as the tests, so it could replace what the tests rely on:
aelab's checks, the torch and NumPy functions they call, or IPython's machinery that turns a
failing test into an `error` output (nbgrader scores a test cell by the absence of one). The
autograder therefore

1. calls `arm()` in a fresh kernel before the first cell, which remembers every function the
   tests depend on and the state of IPython's hooks, and
2. sends every graded test cell with `seal(grade_id, token)` as a user expression, which the
   kernel evaluates only after the cell's code ran to its end without error. The seal compares
   the kernel with that memory and returns the one-time `token` only when nothing changed. A
   test cell scores only when its token comes back (`aelab_course.grading.preprocessors.GuardedExecute`):
   a cell that raised, was emptied by an input transformer, or had its error swallowed by a
   custom exception handler never returns it.

This is one layer; the autograder also scans the submitted source (aelab_course.grading.scan) and runs
the kernel in a sandbox (aelab_course.grading.jail).
"""

from __future__ import annotations

import sys
from types import ModuleType

# What the test cells and aelab.checks call. Whole modules where they are stable; for builtins and
# torch, a list: the kernel swaps some builtins per request (input), and torch wraps some of its
# own functions lazily (manual_seed, when dynamo loads).
WATCHED_MODULES = ("math", "numpy", "numpy.testing", "torch.nn.functional", "aelab", "aelab.checks",
                   "aelab.metrics", "aelab.tracking", "aelab.runtime", "aelab.data")
WATCHED_NAMES = {
    "builtins": ("isinstance", "issubclass", "type", "float", "int", "bool", "str", "repr", "abs", "len", "min",
                 "max", "sum", "round", "all", "any", "sorted", "zip", "enumerate", "range", "iter", "next",
                 "getattr", "hasattr", "callable", "id", "print", "__import__", "AssertionError", "Exception"),
    "torch": ("allclose", "isclose", "isfinite", "isnan", "equal", "eq", "ne", "lt", "le", "gt", "ge", "all", "any",
              "abs", "as_tensor", "tensor", "from_numpy", "stack", "cat", "sum", "mean", "max", "min", "norm",
              "no_grad", "is_tensor", "Tensor", "testing", "linalg", "nn", "float64", "float32", "bool"),
}
# IPython's hooks that decide what a cell runs and whether its error is reported.
SHELL_METHODS = ("run_cell", "run_ast_nodes", "run_code", "showtraceback", "_showtraceback",
                 "showsyntaxerror", "showindentationerror", "transform_cell", "transform_ast", "excepthook")
# Objects the shell keeps (compared by their class: the kernel may recreate them).
SHELL_OBJECTS = ("displayhook", "display_pub", "display_trap", "input_transformer_manager", "events")
# Callbacks the kernel and matplotlib register themselves (pyplot, on first use).
OWN_CALLBACKS = ("matplotlib", "matplotlib_inline", "ipykernel", "IPython")


class IntegrityError(AssertionError):
    """The submission changed the grading environment; the message says what."""


def _module_snapshot(module: ModuleType) -> dict[str, int]:
    return {name: id(value) for name, value in vars(module).items()
            if callable(value) or isinstance(value, ModuleType)}


def _class_snapshot(cls: type) -> dict[str, int]:
    # The most derived definition wins, as in attribute lookup.
    return {name: id(value) for klass in reversed(cls.__mro__) for name, value in vars(klass).items()}


def _shell_state(shell) -> dict[str, object]:
    if shell is None:
        return {}
    state: dict[str, object] = {f"class of shell.{name}": _class_snapshot(type(getattr(shell, name, None)))
                                for name in SHELL_OBJECTS}
    state["class of the shell"] = _class_snapshot(type(shell))
    state["methods set on the shell"] = tuple(sorted(n for n in SHELL_METHODS if n in vars(shell)))
    state["shell.custom_exceptions"] = tuple(shell.custom_exceptions)
    state["shell.CustomTB"] = id(shell.CustomTB)
    for name in ("input_transformers_cleanup", "input_transformers_post", "ast_transformers"):
        state[f"shell.{name}"] = tuple(id(f) for f in getattr(shell, name, ()))
    manager = shell.input_transformer_manager
    state["shell.input_transformer_manager"] = (id(manager), tuple(id(f) for f in manager.cleanup_transforms),
                                                tuple(id(f) for f in manager.line_transforms))
    state["shell.events"] = {event: tuple(id(f) for f in callbacks
                                          if not getattr(f, "__module__", "").startswith(OWN_CALLBACKS))
                             for event, callbacks in shell.events.callbacks.items()}
    state["class of sys.excepthook"] = id(type(sys.excepthook))
    state["sys.settrace"] = id(sys.gettrace())
    return state


def _take() -> dict[str, object]:
    import numpy  # noqa: F401 - imported so that the snapshot sees them
    import numpy.testing  # noqa: F401
    import torch
    import torch.nn.functional  # noqa: F401

    import aelab  # noqa: F401
    import aelab.checks  # noqa: F401
    import matplotlib.pyplot  # noqa: F401 - the inline backend registers its hooks on import

    from IPython.core.getipython import get_ipython  # the builtin is absent in user_expressions

    shell = get_ipython()
    watched = WATCHED_MODULES + tuple(WATCHED_NAMES)
    state: dict[str, object] = {"sys.modules": {name: id(sys.modules.get(name)) for name in watched}}
    for name in WATCHED_MODULES:
        state[f"module {name}"] = _module_snapshot(sys.modules[name])
    for name, names in WATCHED_NAMES.items():
        state[f"module {name}"] = {n: id(getattr(sys.modules[name], n, None)) for n in names}
    state["class torch.Tensor"] = _class_snapshot(torch.Tensor)
    state["class numpy.ndarray"] = _class_snapshot(numpy.ndarray)
    code = {name: id(f.__code__) for name, f in vars(aelab.checks).items() if hasattr(f, "__code__")}
    state["code of aelab.checks"] = code
    state.update(_shell_state(shell))
    return state


def _differences(before: dict[str, object], after: dict[str, object]) -> list[str]:
    found = []
    for key, old in before.items():
        new = after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            # Only what existed: importing a submodule later legitimately adds names.
            changed = sorted(k for k in old if old[k] != new.get(k))
            if changed:
                shown = ", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
                found.append(f"{key}: {shown} changed")
        elif old != new:
            found.append(f"{key} changed")
    return found


def arm() -> None:
    """Remember the pristine kernel. Called by the autograder before the notebook's first cell."""
    pristine = _take()

    def seal(grade_id: str, token: str) -> str:
        problems = _differences(pristine, _take())
        if problems:
            raise IntegrityError(
                f"{grade_id}: the submission changed the grading environment ({'; '.join(problems[:5])})")
        return token

    # The seal keeps the snapshot in its closure, where student code cannot reach it by name.
    globals()["seal"] = seal


def seal(grade_id: str, token: str) -> str:  # replaced by arm()
    raise IntegrityError(f"{grade_id}: the grading kernel was not armed")


__all__ = ["IntegrityError", "arm", "seal"]
