"""nbgrader preprocessors the course adds to autograding."""

from __future__ import annotations

import functools
import secrets

from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell
from nbgrader.preprocessors import Execute
from nbgrader.preprocessors import NbGraderPreprocessor as Preprocessor  # enabled by default, unlike nbconvert's
from nbgrader.utils import is_grade, is_solution


class StderrToStdout(Preprocessor):
    """Turn stderr output of graded cells into stdout before grades are saved.

    nbgrader gives a test cell 0 points if it wrote anything to stderr, even when every
    assertion passed. Torch prints harmless warnings on some CPUs, so a correct submission
    could lose points on one machine and not another. Failures are `error` outputs, which
    this leaves alone, so a failing test still scores 0.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
        return cell, resources


class ShortTracebacksInHiddenTests(Preprocessor):
    """Cut the tracebacks of test cells that hold hidden tests down to the error's message.

    nbgrader's feedback shows the hidden tests' source, and an IPython traceback quotes the lines
    around the failing one. Run before ClearHiddenTests, this leaves the student the check's
    message (written for them: expected, got, hint) and nothing of the hidden code.
    """

    marker = "BEGIN HIDDEN TESTS"

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and self.marker in cell.source:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources


# --- tamper resistance --------------------------------------------------------------------------

def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _is_test(cell) -> bool:
    return cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)


ARM = "__import__('aelab_course.grading.sentinel', fromlist=['arm']).arm()"
NOT_PREPARED = "the grading kernel could not be prepared"
SEAL = "__import__('aelab_course.grading.sentinel', fromlist=['seal']).seal({grade_id!r}, {token!r})"
# Outcomes that end a notebook's run early or void it; the grade table reports the first one.
STOP_ERRORS = ("GradeWithheld", "IntegrityError", "KernelDied", "NotRun", "CellTimeoutError")
# Errors that say the grading machine is broken, not the submission (see preflight.environment_failure).
ENVIRONMENT_ERRORS = ("DataError", "ConfigError", "GradingEnvironmentError")


class GuardedExecute(Execute):
    """nbgrader's Execute, hardened against a submission that fights its tests.

    - Before the first cell it arms the seal (aelab_course.grading.sentinel) in the fresh kernel.
    - Every test cell is sent with a one-time token in `user_expressions`, which the kernel
      evaluates only after the cell's code ran to its end without error. The seal checks that the
      grading environment is unchanged and hands the token back. A test cell whose token does not
      come back scores 0, whatever its outputs say: an error swallowed by an overridden traceback
      hook or a cell emptied by an input transformer no longer counts as a pass.
    - A kernel that dies (os._exit, a crash) or stays busy past the time limit ends the run: the
      remaining test cells get a `NotRun` error saying why, instead of no output (which nbgrader
      would score as a pass).
    """

    def preprocess(self, nb, resources=None, km=None):
        self._armed = False
        self._stopped = ""
        self._reply = None
        return super().preprocess(nb, resources, km)

    def on_cell_executed(self, **kwargs):
        self._reply = kwargs.get("execute_reply")
        return super().on_cell_executed(**kwargs)

    def _hidden(self, code: str, index: int, timeout: int | None = None):
        """Run `code` in the kernel outside the notebook; returns its scratch cell."""
        scratch = new_code_cell(code)
        saved, old_timeout = self.nb.cells[index], self.timeout
        try:
            self.timeout = timeout or old_timeout
            self.execute_cell(scratch, index, store_history=False)
        finally:
            self.nb.cells[index], self.timeout = saved, old_timeout
        return scratch

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._stopped:
            cell.outputs = [_error("NotRun", f"not run: {self._stopped}")] if _is_test(cell) else []
            return cell, resources
        where = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index + 1}"
        try:
            if not self._armed and cell.source.strip():
                armed = self._hidden(ARM, index)
                failures = [o for o in armed.outputs if o.output_type == "error"]
                if failures:
                    self._stopped = f"{NOT_PREPARED} ({failures[0].ename}: {failures[0].evalue})"
                    return self.preprocess_cell(cell, resources, index)
                self._armed = True
            if _is_test(cell):
                self._run_test(cell, resources, index, where)
            else:
                cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._stopped = f"the kernel died while running {where} (os._exit, a crash, or memory)"
            cell.outputs.append(_error("KernelDied", self._stopped))
            return cell, resources
        if any(o.output_type == "error" and o.ename == "CellTimeoutError" for o in cell.outputs):
            self._after_timeout(index, where)
        return cell, resources

    def _run_test(self, cell, resources, index, where) -> None:
        token = secrets.token_hex(16)
        expression = SEAL.format(grade_id=where, token=token)
        execute = self.kc.execute
        self.kc.execute = functools.partial(execute, user_expressions={"seal": expression})
        self._reply = None
        try:
            super().preprocess_cell(cell, resources, index)
        finally:
            self.kc.execute = execute
        if any(o.output_type == "error" for o in cell.outputs):
            return
        content = (self._reply or {}).get("content", {})
        sealed = content.get("user_expressions", {}).get("seal", {})
        if sealed.get("status") == "ok" and sealed.get("data", {}).get("text/plain") == repr(token):
            return
        if sealed.get("status") == "error":
            cell.outputs.append(_error(sealed.get("ename", "IntegrityError"), sealed.get("evalue", "")))
        else:
            cell.outputs.append(_error("IntegrityError", f"{where}: the test did not run to its end in the grading "
                                                         "kernel, so it scores 0"))

    def _after_timeout(self, index: int, where: str) -> None:
        """After a time-out the kernel was interrupted; go on only if it answers again."""
        try:
            probe = self._hidden("None", index, timeout=30)
            alive = not any(o.output_type == "error" for o in probe.outputs)
        except DeadKernelError:
            alive = False
        if not alive:
            self._stopped = f"{where} ran past the time limit of {self.timeout} s and the kernel did not stop"


class WithholdTampered(Preprocessor):
    """Void every test of a submission that tampers with the grading, with the reason.

    Two sources: the static scan of the student's cells (aelab_course.grading.scan), and the seal's
    IntegrityError at run time. Each test cell gets a `GradeWithheld` error (so nbgrader scores
    it 0), the notebook's metadata keeps the reason for the grade table, and a note at the top
    tells the student. The instructor reads the reason and can regrade by hand.
    """

    def preprocess(self, nb, resources):
        from nbgrader.api import Gradebook

        from .scan import describe, scan_notebook

        with Gradebook(resources["nbgrader"]["db_url"]) as gb:
            source = gb.find_notebook(resources["nbgrader"]["notebook"], resources["nbgrader"]["assignment"])
            locked = {cell.name for cell in source.source_cells if cell.locked}
        reasons = []
        findings = scan_notebook(nb, locked)
        if findings:
            reasons.append(describe(findings).removeprefix("grade withheld for review: "))
        tampered = [o.get("evalue", "") for cell in nb.cells for o in cell.get("outputs", [])
                    if o.get("output_type") == "error" and o.get("ename") == "IntegrityError"]
        if tampered:  # the first is the telling one; later tests repeat it
            more = f" (and in {len(tampered) - 1} later test(s))" if len(tampered) > 1 else ""
            reasons.append(f"the kernel check found at {tampered[0]}{more}")
        if not reasons:
            return nb, resources
        reason = "grade withheld for review: " + " | ".join(reasons)
        for cell in nb.cells:
            if _is_test(cell) and not any(o.get("ename") == "GradeWithheld" for o in cell.outputs):
                cell.outputs.append(_error("GradeWithheld", reason))
        nb.metadata.setdefault("aelab", {})["withheld"] = reason
        if not nb.cells or "Grade withheld" not in nb.cells[0].source:
            nb.cells.insert(0, new_markdown_cell(f"**Grade withheld for review.** {reason}"))
        return nb, resources


class ForgetUnknownCells(Preprocessor):
    """Drop the nbgrader metadata of cells that are not the lab's own (after DeduplicateIds).

    A student's copy of a test cell, or a cell with made-up nbgrader metadata, is then an ordinary
    cell of theirs. nbgrader 0.9.6 itself crashes on such cells when it puts deleted test cells
    back (OverwriteCells.add_missing_cells), which would leave the submission ungraded.
    """

    def preprocess(self, nb, resources):
        from nbgrader.api import Gradebook

        with Gradebook(resources["nbgrader"]["db_url"]) as gb:
            source = gb.find_notebook(resources["nbgrader"]["notebook"], resources["nbgrader"]["assignment"])
            known = {cell.name for cell in source.source_cells}
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader")
            if meta is not None and meta.get("grade_id") not in known:
                del cell.metadata["nbgrader"]
        return nb, resources
