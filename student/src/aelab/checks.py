"""Checks for the test cells: each one fails with a message that tells the student what was
expected, what they returned, and where to look.

They never compare a student's object with ``==``: a value must be a real ``torch.Tensor`` or
a real number before anything else is looked at, so an object whose ``__eq__`` always says
True gets nowhere.
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

Shape = Sequence[int | None]


class CheckFailed(AssertionError):
    """A test cell's check did not pass; the message is written for the student."""


def _fail(name: str, message: str, hint: str = "") -> None:
    text = f"{name}: {message}"
    if hint:
        text += f"\n  Hint: {hint}"
    raise CheckFailed(text)


def _describe(value: object) -> str:
    if type(value) in (Tensor, torch.nn.Parameter):
        return f"a tensor of shape {tuple(value.shape)}, dtype {value.dtype}, on {value.device}"
    return f"a {type(value).__module__}.{type(value).__qualname__}"


def tensor(value: object, name: str, *, shape: Shape | None = None, dtype: torch.dtype | None = None,
           device: torch.device | str | None = None, finite: bool = True, hint: str = "") -> Tensor:
    """`value` must be a torch.Tensor (of `shape`, where None matches any size, of `dtype`, and on
    `device`: every function of the labs returns its tensors on the device of its inputs)."""
    if type(value) not in (Tensor, torch.nn.Parameter):
        _fail(name, f"expected a torch.Tensor, got {_describe(value)}", hint)
    if device is not None and not _same_device(value.device, torch.device(device)):
        _fail(name, f"expected a tensor on {torch.device(device)} (the device of the inputs), got one on "
                    f"{value.device}", hint or "create new tensors on the inputs' device, e.g. torch.zeros_like(x) "
                                               "or torch.randn(shape, device=x.device)")
    got = tuple(int(s) for s in value.shape)
    if shape is not None:
        want = tuple(shape)
        if len(got) != len(want) or any(w is not None and int(w) != g for w, g in zip(want, got)):
            shown = tuple("any" if w is None else w for w in want)
            _fail(name, f"expected shape {shown}, got {got}", hint)
    if dtype is not None and value.dtype != dtype:
        _fail(name, f"expected dtype {dtype}, got {value.dtype}", hint)
    if finite and value.is_floating_point() and value.device.type != "meta" \
            and not bool(torch.isfinite(value.detach()).all()):
        _fail(name, "contains NaN or infinity", hint or "look for a division by zero or an exploding loss")
    return value


def number(value: object, name: str, *, finite: bool = True, hint: str = "") -> float:
    """`value` must be a real number: a Python or NumPy scalar, or a tensor with one element."""
    if type(value) in (Tensor, torch.nn.Parameter):
        if value.numel() != 1:
            _fail(name, f"expected a single number, got a tensor of shape {tuple(value.shape)}", hint)
        if value.device.type == "meta":
            _fail(name, "expected a number, got a tensor on the meta device (it holds no value)", hint)
        result = float(value.detach().cpu().reshape(()).item())
    elif type(value) in (int, float) or isinstance(value, (np.floating, np.integer)):
        result = float(value)
    else:
        _fail(name, f"expected a number, got {_describe(value)}", hint)
    if finite and not math.isfinite(result):
        _fail(name, f"expected a finite number, got {result}", hint)
    return result


def close(got: object, expected: Tensor | float | Sequence[float], name: str, *, atol: float = 1e-5,
          rtol: float = 1e-4, hint: str = "") -> None:
    """`got` must equal `expected` within tolerance (element-wise for tensors)."""
    if isinstance(expected, numbers.Real) and not isinstance(expected, bool):
        value = number(got, name, hint=hint)
        if not math.isclose(value, float(expected), rel_tol=rtol, abs_tol=atol):
            _fail(name, f"expected {float(expected):.6g}, got {value:.6g}", hint)
        return
    if isinstance(expected, Tensor) and isinstance(got, Tensor) and not _same_device(got.device, expected.device):
        _fail(name, f"expected a tensor on {expected.device} (the device of the inputs), got one on {got.device}",
              hint or "create new tensors on the inputs' device, e.g. torch.zeros_like(x)")
    want = torch.as_tensor(expected.detach().cpu() if isinstance(expected, Tensor) else expected, dtype=torch.float64)
    value = tensor(got, name, shape=tuple(want.shape), hint=hint).detach().cpu().to(torch.float64)
    if not torch.allclose(value, want, rtol=rtol, atol=atol):
        diff = (value - want).abs()
        where = tuple(int(i) for i in np.unravel_index(int(diff.argmax()), tuple(want.shape))) if want.ndim else ()
        _fail(name, f"values differ by up to {float(diff.max()):.3g} (tolerance {atol:g}); "
                    f"at index {where} expected {float(want[where]):.6g}, got {float(value[where]):.6g}", hint)


def less(value: object, limit: float, name: str, *, hint: str = "") -> float:
    """`value` must be a number below `limit`."""
    result = number(value, name, hint=hint)
    if not result < limit:
        _fail(name, f"expected less than {limit:.6g}, got {result:.6g}", hint)
    return result


def greater(value: object, limit: float, name: str, *, hint: str = "") -> float:
    """`value` must be a number above `limit`."""
    result = number(value, name, hint=hint)
    if not result > limit:
        _fail(name, f"expected more than {limit:.6g}, got {result:.6g}", hint)
    return result


def between(value: object, low: float, high: float, name: str, *, hint: str = "") -> float:
    """`value` must be a number in [low, high]."""
    result = number(value, name, hint=hint)
    if not low <= result <= high:
        _fail(name, f"expected a value in [{low:.6g}, {high:.6g}], got {result:.6g}", hint)
    return result


def true(condition: object, name: str, message: str, *, hint: str = "") -> None:
    """`condition` must be the bool True (a truthy object is not enough)."""
    if type(condition) is torch.Tensor and condition.numel() == 1 and condition.dtype == torch.bool:
        condition = bool(condition.item())
    if condition is not True and not (type(condition) is np.bool_ and bool(condition)):
        _fail(name, message, hint)


def raises(call: Callable[[], object], error: type[BaseException], name: str, *, hint: str = "") -> None:
    """`call()` must raise `error` (e.g. a ValueError for bad input)."""
    try:
        call()
    except error:
        return
    except Exception as exc:  # noqa: BLE001 - the student needs to know which error came instead
        _fail(name, f"expected {error.__name__}, got {type(exc).__name__}: {exc}", hint)
    _fail(name, f"expected {error.__name__}, but nothing was raised", hint)


def needs(*names: str, made_by: str) -> None:
    """Fail with a message that says which earlier part a test depends on, when a name it uses was
    never made (the cell that makes it raised an error, or was not run).

    ``checks.needs("pca_test_mse", made_by="the cell after section 1's test, which calls your fit_pca")``
    """
    caller = inspect.currentframe().f_back
    namespace = {**caller.f_globals, **caller.f_locals}
    missing = [n for n in names if n not in namespace]
    if missing:
        _fail(", ".join(missing), f"this test needs {', '.join(missing)}, made by {made_by}; it does not exist "
                                  "because that cell stopped with an error or was not run",
              "run the notebook from the top and fix the first error it shows")


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    return a.index is None or b.index is None or a.index == b.index


def passed(what: str) -> None:
    """Say that a test cell's checks all passed."""
    print(f"\u2713 {what}: all visible checks passed.")
