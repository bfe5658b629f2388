# aelab: every target works from a clean clone and creates the virtual environment on first use.
#   make setup        .venv with the pinned stack, the student package (student/) and the course tools
#   make test         the project's test suite (unit tests, the labs through nbgrader, the student release)
#   make release      regenerate notebooks/ from solutions/ with nbgrader
#   make student      write dist/student/, the student repository a course publishes
#   make solutions    execute every reference notebook at the full budget (QUICK=1: the quick one)
#   make autograde    grade SUBMISSIONS=<folder> holding <student>/<lab>.ipynb
#   make demo         the whole instructor round trip on example submissions
#   make mutants      grade every planted student bug; writes build/mutants.csv
#   make equivalents  grade every correct alternative answer; writes build/equivalents.csv
#                     (DIRECT=1 on either bank: each lab as plain Python, no nbgrader; a quick look)
#   make calibrate    run the references over SEEDS seeds (default 20); writes build/calibration/
#                     (DOCS=1: also the committed table docs/calibration/quick.md; CALIBRATE_ARGS="--cpu-capability avx2")
#   make tamper       grade hostile and broken submissions; writes build/tamper.csv
#   make gpu-check    the references at the full budget, their tests and the GPU benchmark, on a GPU;
#                     writes build/gpu-check/ (GPU_ARGS="--smoke": a CPU smoke run, about 2 minutes).
#                     On a lent GPU machine (no network, no venv) run it as docs/gpu/README.md says.
#   make gpu-bundle   the data the GPU check carries (at most 64 MiB) into .gpu-bundle/
#   make bench        time training (vs the course notes' DataLoader) and grading on this machine;
#                     writes build/bench.md and build/bench.csv (BENCH_ARGS="--only throughput" ...)
#   make bench-grading  20 submissions: aelab's parallel grader vs serial `nbgrader autograde`
# LABS="lab01 lab02" restricts release/student/solutions/autograde/demo/mutants/equivalents/calibrate.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# nbgrader shells out to `alembic`, which lives in the venv's bin.
export PATH := $(abspath $(VENV))/bin:$(PATH)

LABS ?=
SUBMISSIONS ?= submissions
SEEDS ?= 20
GRADE_ARGS ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=
GPU_ARGS ?=
CALIBRATE_ARGS ?=

.PHONY: setup test release student solutions autograde demo mutants equivalents calibrate tamper gpu-check gpu-bundle \
        bench bench-grading clean

$(VENV)/.installed: requirements.txt pyproject.toml student/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e student -e .
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

release: setup
	$(PY) -m aelab_course release $(LABS)

student: setup
	$(PY) -m aelab_course student $(LABS)

solutions: setup
	$(PY) -m aelab_course solutions $(if $(QUICK),--quick) $(LABS)

autograde: setup
	$(PY) -m aelab_course autograde $(SUBMISSIONS) $(LABS) $(GRADE_ARGS)

demo: setup
	$(PY) -m aelab_course demo $(LABS)

mutants: setup
	$(PY) -m aelab_course mutants $(if $(DIRECT),--direct) $(LABS)

equivalents: setup
	$(PY) -m aelab_course equivalents $(if $(DIRECT),--direct) $(LABS)

calibrate: setup
	$(PY) -m aelab_course calibrate --seeds $(SEEDS) $(if $(DOCS),--docs) $(CALIBRATE_ARGS) $(LABS)

tamper: setup
	$(PY) -m aelab_course tamper

gpu-check: setup
	$(PY) -m aelab_course.gpucheck $(GPU_ARGS)

gpu-bundle: setup
	$(PY) -m aelab_course.gpucheck bundle

bench-grading: setup
	$(PY) -m aelab_course bench-grading

# One run on whatever machine this is (a GPU's run adds its own section to build/bench.md).
bench: setup
	AELAB_PROGRESS=$${AELAB_PROGRESS:-1} $(PY) -m aelab_course.bench --out build $(BENCH_ARGS)

clean:
	rm -rf build dist
