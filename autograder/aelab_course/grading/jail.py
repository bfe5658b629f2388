"""The grading kernel's sandbox: `python -m aelab_course.grading.jail KERNEL ARGV...` sets it up, then
becomes the kernel. The autograder installs a `python3` kernelspec that starts kernels this way.

Inside, the kernel (that is, the student's code)

- has no network (its own network namespace; it talks to nbgrader over Unix sockets);
- sees empty folders where the hidden tests, the solutions, the gradebooks and every other
  submission live (empty tmpfs mounted over them in its own mount namespace), and a private /tmp;
- runs as an unprivileged user of its own, so it can neither undo those mounts, nor write
  anywhere but its own folder and /tmp, nor signal another student's kernel;
- is capped in processes and file size (its address space is capped by the grader already).

It needs root (as in the course's grading containers). Elsewhere it says once on stderr that it
is not sandboxing and starts the kernel as it is; the grader reports that too.

Settings come from the environment the grader gives nbgrader:
    AELAB_JAIL_HIDE   paths hidden behind empty folders (os.pathsep-separated)
    AELAB_JAIL_KEEP   folders kept visible and writable (the kernel's socket folder); the kernel's
                      working folder and its connection file are kept as well
    AELAB_JAIL_UID    the user id the kernel runs as
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys
from pathlib import Path

CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 4096, 16384, 1 << 18
ENV_HIDE, ENV_KEEP, ENV_UID = "AELAB_JAIL_HIDE", "AELAB_JAIL_KEEP", "AELAB_JAIL_UID"


class JailError(OSError):
    pass


def available() -> bool:
    """Whether kernels can be sandboxed here (root, on Linux)."""
    return sys.platform.startswith("linux") and os.geteuid() == 0


def _libc_call(name: str, *args) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        errno = ctypes.get_errno()
        raise JailError(errno, f"{name}{args!r}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _libc_call("mount", enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))


def _paths(variable: str) -> list[str]:
    return [p for p in os.environ.get(variable, "").split(os.pathsep) if p]


def _bind_back(path: str, fd: int) -> None:
    if os.path.isdir(f"/proc/self/fd/{fd}"):
        os.makedirs(path, exist_ok=True)
    elif not os.path.exists(path):  # a file: bind it onto an empty one
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Path(path).touch()
    _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND)
    os.close(fd)


def _needed() -> list[str]:
    """What the kernel must read: the interpreter, its libraries, aelab, and the data."""
    paths = [sys.base_prefix, sys.prefix, *sys.path, str(Path(__file__).resolve().parents[2]),
             os.environ.get("AELAB_DATA", "")]
    return sorted({os.path.realpath(p) for p in paths if p and os.path.isdir(p)})


def _expose(needed: list[str]) -> None:
    """Make the `needed` folders reachable by the unprivileged user: a parent it may not enter
    (say /root, home of a pyenv interpreter) is replaced by an empty folder it may enter, with
    only the needed folders bound back in. The rest of that parent stays out of sight."""
    blocked: dict[str, list[str]] = {}
    for path in needed:
        parts = Path(path).parts
        for depth in range(2, len(parts) + 1):
            ancestor = str(Path(*parts[:depth]))
            if not os.stat(ancestor).st_mode & 0o001:
                blocked.setdefault(ancestor, []).append(path)
                break
    for ancestor, paths in blocked.items():
        held = {path: os.open(path, os.O_PATH) for path in paths}
        _mount("tmpfs", ancestor, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
        for path, fd in held.items():
            _bind_back(path, fd)


def enter(hide: list[str], keep: list[str], uid: int) -> None:
    """Enter the sandbox in this process (see the module's docstring)."""
    _libc_call("unshare", CLONE_NEWNS | CLONE_NEWNET)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here leaks back to the grader
    # Hold what is kept open: the tmpfs mounted over its parents would hide it otherwise. The same
    # for what the kernel must read (the interpreter, the venv, aelab), which may live under /tmp.
    held = {path: os.open(path, os.O_PATH) for path in keep if os.path.exists(path)}
    needed = [p for p in _needed() if not any(p == h or p.startswith(h.rstrip("/") + "/") for h in hide)]
    held_needed = {path: os.open(path, os.O_PATH) for path in needed}
    private = ["/tmp", "/dev/shm", "/var/tmp"]
    for path in private + hide:
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=512m,mode=1777" if path in private else "size=1m,mode=755")
        elif os.path.exists(path):  # a file, such as a gradebook
            _mount("/dev/null", path, None, MS_BIND)
    for path, fd in held.items():
        _bind_back(path, fd)
        for entry in [Path(path), *(Path(path).iterdir() if os.path.isdir(path) else [])]:
            os.chown(entry, uid, uid)
    for path, fd in sorted(held_needed.items()):  # parents first
        now = os.stat(path) if os.path.exists(path) else None
        if now is None or (now.st_dev, now.st_ino) != (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
            _bind_back(path, fd)
        else:
            os.close(fd)
    _expose(_needed())
    resource.setrlimit(resource.RLIMIT_NPROC, (512, 512))
    resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 30, 2 << 30))
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python -m aelab_course.grading.jail KERNEL_COMMAND...")
    cwd = os.getcwd()
    # The kernel's connection file, wherever the kernel manager wrote it.
    connection = [os.path.abspath(argv[i + 1]) for i, arg in enumerate(argv[:-1]) if arg == "-f"]
    # The data stay where they are inside the sandbox; a symlink to them (under /tmp, say) may not.
    data = os.path.realpath(os.environ["AELAB_DATA"]) if os.environ.get("AELAB_DATA") else ""
    if available() and os.environ.get(ENV_UID):
        enter(_paths(ENV_HIDE), _paths(ENV_KEEP) + [cwd] + connection, int(os.environ[ENV_UID]))
        os.chdir(cwd)
        os.environ.update(HOME="/tmp", USER="student", LOGNAME="student", MPLCONFIGDIR="/tmp/matplotlib",
                          IPYTHONDIR="/tmp/ipython")
        if data:
            os.environ["AELAB_DATA"] = data
    else:
        print("aelab: grading kernels are not sandboxed here (this needs root on Linux)", file=sys.stderr)
    for name in (ENV_HIDE, ENV_KEEP, ENV_UID):
        os.environ.pop(name, None)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
