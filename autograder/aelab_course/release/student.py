"""`make student`: the student repository a course publishes, built into dist/student/.

    dist/student/
      README.md              how to open each lab on Colab or locally, the data, the budget
      notebooks/<lab>.ipynb  the released labs (no answers, no hidden tests)
      package/               the source of the student package aelab (pyproject.toml, src/aelab/)
      wheels/                the same package as a wheel
      data/README.md         where the data sets go
      requirements.txt       the pinned stack for a local install
      RELEASE.json           the version, the labs and the commit they were made from

Everything in it is public. The released notebooks' setup cell installs the package from the
student repository at the tag v<version> (aelab_course.source.install_url); the instructor pushes
dist/student/ there and tags it (README, "Publishing the student repository").
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..paths import NOTEBOOKS, ROOT, STUDENT, course_config
from ..source import Lab, install_url
from . import leaks

# What a student needs from requirements.txt to run the labs locally (not nbgrader, not pytest).
STUDENT_REQUIREMENTS = ("torch", "torchvision", "numpy", "scipy", "scikit-learn", "matplotlib", "tqdm", "notebook",
                        "jupyterlab", "ipykernel", "ipywidgets")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache")


@dataclass(frozen=True)
class StudentRelease:
    folder: Path
    version: str
    labs: tuple[str, ...]
    wheel: Path

    def files(self) -> list[str]:
        return sorted(str(p.relative_to(self.folder)) for p in self.folder.rglob("*") if p.is_file())


def _badges(config: dict, chosen: list[Lab]) -> str:
    slug = re.sub(r"^https://github.com/", "", config["student_repo"]).rstrip("/")
    rows = []
    for lab in chosen:
        url = f"https://colab.research.google.com/github/{slug}/blob/{config['branch']}/notebooks/{lab.lab_id}.ipynb"
        rows.append(f"| {lab.title} | `notebooks/{lab.lab_id}.ipynb` | "
                    f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url}) |")
    return "| lab | notebook | open |\n|---|---|---|\n" + "\n".join(rows)


def _requirements() -> str:
    keep = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name = re.split(r"[=<>\[ ]", line.strip(), maxsplit=1)[0].lower()
        if name in STUDENT_REQUIREMENTS:
            keep.append(line.strip())
    return ("# The pinned stack for running the labs on your own machine (Python 3.11):\n"
            "#   python -m venv .venv && .venv/bin/pip install -r requirements.txt -e package\n"
            "# On Colab you need none of this: each notebook's first cell installs what it needs.\n"
            + "\n".join(keep) + "\n")


def _commit() -> str:
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


def build_wheel(package: Path, out: Path) -> Path:
    """A wheel of the package at `package` (offline: the venv's setuptools, no build isolation)."""
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--disable-pip-version-check", "-q", "-w", str(out), str(package)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"building the student wheel failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    wheels = sorted(out.glob("aelab-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one aelab wheel in {out}, found {[w.name for w in wheels]}")
    return wheels[0]


def build(out: Path, chosen: list[Lab], *, student: Path = STUDENT, notebooks: Path = NOTEBOOKS) -> StudentRelease:
    """Write the student repository for the labs `chosen` (those released so far) into `out`."""
    config = course_config()
    version = config["student_version"]
    shutil.rmtree(out, ignore_errors=True)
    (out / "notebooks").mkdir(parents=True)
    for lab in chosen:
        released = notebooks / f"{lab.lab_id}.ipynb"
        if not released.is_file():
            raise FileNotFoundError(f"{released} does not exist: run `make release` first")
        shutil.copyfile(released, out / "notebooks" / released.name)
    package = out / "package"
    package.mkdir()
    shutil.copyfile(student / "pyproject.toml", package / "pyproject.toml")
    shutil.copyfile(student / "README.md", package / "README.md")
    shutil.copytree(student / "src", package / "src", ignore=IGNORED)
    wheel = build_wheel(package, out / "wheels")
    for leftover in [package / "build", *package.rglob("*.egg-info")]:
        shutil.rmtree(leftover, ignore_errors=True)
    (out / "data").mkdir()
    shutil.copyfile(ROOT / "data" / "README.md", out / "data" / "README.md")
    readme = (student / "course_readme.md").read_text().format(
        version=version, student_repo=config["student_repo"], install_url=install_url(config),
        badges=_badges(config, chosen), labs=len(chosen))
    (out / "README.md").write_text(readme)
    (out / "requirements.txt").write_text(_requirements())
    (out / ".gitignore").write_text("data/*\n!data/README.md\n.venv/\n__pycache__/\n.ipynb_checkpoints/\n")
    (out / "RELEASE.json").write_text(json.dumps(
        {"aelab": version, "tag": f"v{version}", "labs": [lab.lab_id for lab in chosen],
         "made from commit": _commit()}, indent=1) + "\n")
    return StudentRelease(out, version, tuple(lab.lab_id for lab in chosen), wheel)


def check(release: StudentRelease) -> list[leaks.Leak]:
    """The secret lines found anywhere in the release, the wheel included."""
    return leaks.scan(release.folder, leaks.collect())
