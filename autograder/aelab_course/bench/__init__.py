"""The benchmarks: how fast the labs train and grade, against the way the course notes do it.

    models.py        the labs' models and losses, taken from the solution sources (runner.definitions)
    pipelines.py     the classic DataLoader pipeline, aelab's in-memory batches, and batches from the host
    measure.py       the training step and its switches (mixed precision, compile, channels_last),
                     timing, threads, memory, and the training-throughput part
    quality.py       the time-to-quality part (lab 02)
    grading.py       the autograding part
    report.py        bench.md (one section per machine) and bench.csv, merged across runs
    cli.py           `python -m aelab_course.bench` (`make bench`): each measurement in a process of its own
    grading_bench.py `make bench-grading`: the parallel grader against serial nbgrader
"""
