import numpy as np
import pytest
import torch

from aelab import checks
from aelab.checks import CheckFailed


class AlwaysEqual:
    """What a student (or a tamperer) might return: equal to everything."""

    shape = (3,)
    dtype = torch.float32

    def __eq__(self, other):
        return True

    def __lt__(self, other):
        return True

    def __gt__(self, other):
        return True

    def __float__(self):
        return 0.0


def test_tensor_checks_shape_dtype_and_finiteness():
    x = torch.zeros(2, 3)
    assert checks.tensor(x, "x", shape=(2, 3), dtype=torch.float32) is x
    checks.tensor(x, "x", shape=(None, 3))
    with pytest.raises(CheckFailed, match=r"x: expected shape \(2, 4\), got \(2, 3\)"):
        checks.tensor(x, "x", shape=(2, 4))
    with pytest.raises(CheckFailed, match="dtype"):
        checks.tensor(x, "x", dtype=torch.float64)
    with pytest.raises(CheckFailed, match="NaN"):
        checks.tensor(torch.tensor([float("nan")]), "x")
    with pytest.raises(CheckFailed, match="Hint: look here"):
        checks.tensor([1, 2], "x", hint="look here")


def test_objects_that_equal_everything_get_nowhere():
    fake = AlwaysEqual()
    for call in (lambda: checks.tensor(fake, "x", shape=(3,)), lambda: checks.number(fake, "x"),
                 lambda: checks.close(fake, 1.0, "x"), lambda: checks.close(fake, torch.zeros(3), "x"),
                 lambda: checks.less(fake, 1.0, "x"), lambda: checks.greater(fake, 1.0, "x"),
                 lambda: checks.true(fake, "x", "must be True")):
        with pytest.raises(CheckFailed):
            call()


def test_number_accepts_real_numbers_only():
    assert checks.number(2, "n") == 2.0
    assert checks.number(np.float32(0.5), "n") == 0.5
    assert checks.number(torch.tensor([[1.5]]), "n") == 1.5
    for bad in ("1.0", None, torch.zeros(2), float("inf")):
        with pytest.raises(CheckFailed):
            checks.number(bad, "n")


def test_close_reports_where_values_differ():
    checks.close(torch.tensor([1.0, 2.0]), [1.0, 2.0 + 1e-7], "v")
    with pytest.raises(CheckFailed, match=r"at index \(1,\) expected 3, got 2"):
        checks.close(torch.tensor([1.0, 2.0]), [1.0, 3.0], "v")
    with pytest.raises(CheckFailed, match="expected 1, got 1.1"):
        checks.close(1.1, 1.0, "v", atol=1e-3)


def test_bounds():
    assert checks.less(0.1, 0.2, "mse") == 0.1
    with pytest.raises(CheckFailed, match="expected less than 0.2, got 0.3"):
        checks.less(0.3, 0.2, "mse")
    with pytest.raises(CheckFailed, match="more than"):
        checks.greater(0.3, 0.5, "nmi")
    checks.between(0.5, 0.0, 1.0, "p")
    with pytest.raises(CheckFailed):
        checks.between(1.5, 0.0, 1.0, "p")


def test_true_needs_a_real_true():
    checks.true(True, "c", "m")
    checks.true(torch.tensor(True), "c", "m")
    checks.true(np.bool_(True), "c", "m")
    for bad in (1, "yes", [1], torch.tensor([True, True])):
        with pytest.raises(CheckFailed, match="c: m"):
            checks.true(bad, "c", "m")


def test_raises():
    checks.raises(lambda: int("x"), ValueError, "parse")
    with pytest.raises(CheckFailed, match="nothing was raised"):
        checks.raises(lambda: 1, ValueError, "parse")
    with pytest.raises(CheckFailed, match="got KeyError"):
        checks.raises(lambda: {}["k"], ValueError, "parse")


def test_passed_prints_to_stdout(capsys):
    checks.passed("thing")
    assert "thing" in capsys.readouterr().out


def test_tensor_reports_the_device_and_checks_it():
    meta = torch.empty(2, 3, device="meta")
    checks.tensor(meta, "z", shape=(2, 3), device="meta")  # no data needed, nothing to check for NaN
    with pytest.raises(CheckFailed, match="on meta.*got one on cpu|expected a tensor on meta"):
        checks.tensor(torch.zeros(2, 3), "z", device="meta")
    with pytest.raises(CheckFailed, match="meta device"):
        checks.number(meta[0, 0], "x")


def test_close_fails_clearly_when_the_devices_differ():
    expected = torch.zeros(2, device="meta")
    with pytest.raises(CheckFailed, match="device of the inputs"):
        checks.close(torch.zeros(2), expected, "z")


def test_needs_names_the_earlier_part(monkeypatch):
    made_here = 1.0  # noqa: F841 - looked up by checks.needs in this frame
    checks.needs("made_here", made_by="this test")
    with pytest.raises(CheckFailed, match="needs pca_mse.*made by the PCA cell"):
        checks.needs("pca_mse", made_by="the PCA cell")
