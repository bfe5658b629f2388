"""aelab_course: the instructor's side of the aelab labs (private, with this repository).

    source, runner        the lab sources in solutions/, and running them as notebooks or scripts
    release/              the released notebooks, the student repository (dist/student/), the leak scan
    grading/              the autograder: nbgrader driven per submission, sandboxed, sealed, scanned
    quality/              calibration, the banks of planted bugs and correct alternatives, tamper cases
    bench/                the benchmarks (they take the labs' models from solutions/)
    gpucheck              the references at the full budget on a GPU, in one command

The student package, aelab (student/), never imports this one.
"""
