"""nbgrader preprocessors the course adds to autograding."""

from __future__ import annotations

from nbgrader.preprocessors import NbGraderPreprocessor as Preprocessor  # enabled by default, unlike nbconvert's


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
