# nbgrader settings of the aelab course. aelab writes a two-line nbgrader_config.py into each
# course folder it drives (under build/) that loads this file and sets the course root.
import os
import tempfile

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests, ClearOutput, DeduplicateIds,
                                    GetGrades, IgnorePattern, LimitOutput, OverwriteCells,
                                    OverwriteKernelspec, SaveAutoGrades)

from aelab_course.grading.preprocessors import (ForgetUnknownCells, GuardedExecute, ShortTracebacksInHiddenTests,
                                        StderrToStdout, WithholdTampered)

c = get_config()  # noqa: F821

c.CourseDirectory.course_id = "aelab"

# What a stub looks like in the released notebooks.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Grading kernels: pin the kernel, whatever the submission's metadata says (Colab saves other
# names), and give every cell a time limit. A quick-budget training cell takes well under a
# minute on a 2-core CPU; the limit leaves room for a slow machine, not for an infinite loop.
c.Execute.kernel_name = "python3"
c.Execute.timeout = int(os.environ.get("AELAB_CELL_TIMEOUT", "300"))
c.Execute.interrupt_on_timeout = True
c.Execute.error_on_timeout = {
    "ename": "CellTimeoutError",
    "evalue": f"this cell ran past the time limit of {c.Execute.timeout} s and was interrupted",
    "traceback": [f"CellTimeoutError: this cell ran past the time limit of {c.Execute.timeout} s and was interrupted"],
}
# Kernels talk to nbgrader over Unix sockets, so grading works inside a network namespace with
# no network at all (aelab runs `nbgrader autograde` under `unshare --net` where it can).
c.KernelManager.transport = "ipc"
# An absolute socket path: the kernel runs in the notebook's folder, nbgrader in the course's.
# aelab's grader gives each submission a private folder for it (AELAB_KERNEL_DIR), the one folder
# besides its own that the sandboxed kernel can see (autograder/aelab_course/grading/jail.py).
c.KernelManager.ip = os.path.join(os.environ.get("AELAB_KERNEL_DIR") or tempfile.gettempdir(), f"k{os.getpid()}")

# Duplicated or made-up nbgrader cells become the student's own cells before nbgrader restores the
# lab's (see ForgetUnknownCells); outputs a submission arrives with (Colab saves them) are cleared.
c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, ForgetUnknownCells, OverwriteKernelspec,
                                      OverwriteCells, CheckCellMetadata]

# Execute hardened against tampering (GuardedExecute), stderr kept from zeroing graded cells
# (StderrToStdout), tampering voids the grade with its reason (WithholdTampered), then nbgrader's
# own steps.
c.Autograde.autograde_preprocessors = [
    GuardedExecute,
    StderrToStdout,
    WithholdTampered,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]

# aelab's grader runs each submission in a course folder of its own, then gathers the executed
# notebooks into the class course with AELAB_GRADING_PHASE=ingest: restore the locked cells
# again and score the outputs already there, executing nothing (autograder/aelab_course/grading/grader.py).
if os.environ.get("AELAB_GRADING_PHASE") == "ingest":
    c.Autograde.sanitize_preprocessors = [DeduplicateIds, ForgetUnknownCells, OverwriteKernelspec, OverwriteCells,
                                          CheckCellMetadata]
    c.Autograde.autograde_preprocessors = [StderrToStdout, WithholdTampered, IgnorePattern, LimitOutput, SaveAutoGrades,
                                           AssignLatePenalties, CheckCellMetadata]

# A test cell the student deleted is put back (and run) rather than scored as missing: the
# later tests may depend on what it imports.
c.OverwriteCells.add_missing_cells = True

# Feedback shows what students need and no more: the hidden tests' messages, not their source.
c.LimitOutput.max_lines = 200
c.GenerateFeedback.preprocessors = [GetGrades, ShortTracebacksInHiddenTests, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
