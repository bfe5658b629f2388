"""The grading kernel's sandbox (aelab_course.grading.jail), run on a plain Python command."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from aelab_course.grading import jail

PROBE = """
import os, socket
print("uid", os.getuid())
print("hidden", os.path.exists(os.environ["PROBE_SECRET"]))
print("own", open("mine.txt", "w").write("x"))
try:
    open(os.environ["PROBE_REPO_FILE"], "a")
    print("repo writable")
except OSError:
    print("repo read-only")
try:
    socket.create_connection(("127.0.0.1", 9), timeout=2)
    print("network")
except OSError as error:
    print("no network" if "unreachable" in str(error).lower() or error.errno in (101, 99) else "network")
import aelab  # the interpreter, its libraries and aelab stay readable
print("aelab", aelab.__name__)
"""


@pytest.mark.skipif(not jail.available(), reason="the sandbox needs root on Linux")
def test_sandboxed_command_sees_only_its_folder(tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "hidden_tests.py").write_text("assert False")
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, AELAB_JAIL_HIDE=str(secret), AELAB_JAIL_UID="231234",
               PROBE_SECRET=str(secret / "hidden_tests.py"), PROBE_REPO_FILE=jail.__file__)
    proc = subprocess.run([sys.executable, "-m", "aelab_course.grading.jail", sys.executable, "-c", PROBE], cwd=work,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "uid 231234" in lines
    assert "hidden False" in lines
    assert "own 1" in lines and (work / "mine.txt").is_file()
    assert "repo read-only" in lines
    assert "no network" in lines
    assert "aelab aelab" in lines
    assert (secret / "hidden_tests.py").read_text() == "assert False"  # the outside is untouched


def test_without_settings_the_command_runs_as_it_is(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AELAB_JAIL")}
    proc = subprocess.run([sys.executable, "-m", "aelab_course.grading.jail", sys.executable, "-c", "print('ran')"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "ran"
