# aelab: every target works from a clean clone and creates the virtual environment on first use.
#   make setup        create .venv with the pinned stack (requirements.txt) and aelab itself
#   make test         the project's test suite (unit tests, the labs, nbgrader round trips)
#   make release      regenerate notebooks/ from solutions/ with nbgrader
#   make solutions    execute every reference notebook at the full budget (QUICK=1: the quick one)
#   make autograde    grade SUBMISSIONS=<folder> holding <student>/<lab>.ipynb
#   make demo         the whole instructor round trip on example submissions
#   make mutants      grade every planted student bug; writes build/mutants.csv
#   make calibrate    measure every test threshold over 5 seeds; writes build/calibration.csv
#   make tamper       grade hostile and broken submissions; writes build/tamper.csv
#   make bench-grading  20 submissions: aelab's parallel grader vs serial `nbgrader autograde`
#   make bench        time training (vs the course notes' DataLoader) and grading on this machine;
#                     writes build/bench.md and build/bench.csv (BENCH_ARGS="--only throughput" ...)
# LABS="lab01 lab02" restricts release/solutions/autograde/demo to some labs.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# nbgrader shells out to `alembic`, which lives in the venv's bin.
export PATH := $(abspath $(VENV))/bin:$(PATH)

LABS ?=
SUBMISSIONS ?= submissions
GRADE_ARGS ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: setup test release solutions autograde demo mutants calibrate tamper bench bench-grading clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

release: setup
	$(PY) -m aelab.course release $(LABS)

solutions: setup
	$(PY) -m aelab.course solutions $(if $(QUICK),--quick) $(LABS)

autograde: setup
	$(PY) -m aelab.course autograde $(SUBMISSIONS) $(LABS) $(GRADE_ARGS)

demo: setup
	$(PY) -m aelab.course demo $(LABS)

mutants: setup
	$(PY) -m aelab.course mutants $(LABS)

calibrate: setup
	$(PY) -m aelab.course calibrate $(LABS)

tamper: setup
	$(PY) -m aelab.course tamper

bench-grading: setup
	$(PY) -m aelab.course bench-grading

# One run on whatever machine this is (a GPU's run adds its own section to build/bench.md).
# Progress bars on, one CPU thread per measurement unless OMP_NUM_THREADS says otherwise.
bench: setup
	AELAB_PROGRESS=$${AELAB_PROGRESS:-1} $(PY) -m aelab.bench --out build $(BENCH_ARGS)

clean:
	rm -rf build
