"""The GPU check (`make gpu-check`, `python -m aelab_course.gpucheck`): on one CUDA machine, within
8 minutes, every lab's reference at the full budget as plain Python from its source (hidden tests
included, every metric and each cell's time recorded) and the benchmark's GPU section; one
results file per run. `--smoke` makes the same run on a CPU in seconds, for CI.

    bundle.py    the data bundle a lent machine carries (at most 64 MiB with the working tree),
                 and the AELAB_DATA folder unpacked from it there
    check.py     the parts, the time plan, the processes
    labjob.py    one lab's run, in a process of its own (it needs no Jupyter and no nbgrader)
    results.py   the results file (.json) and its markdown; `publish` into docs/gpu/
    cli.py       the command line

docs/gpu/README.md says how to run it on a lent GPU.
"""
