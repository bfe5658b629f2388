"""The data bundle the GPU check carries to a lent GPU machine, and the data folder made from it there.

A lent machine reaches nothing outside it, and what travels with the working tree (the carried
paths included) is at most 64 MiB. ``python -m aelab_course.gpucheck bundle`` builds, from the
offline copy (``AELAB_DATA``, laid out as /work/shared/data/README.md says), the ignored folder
``.gpu-bundle/``:

* ``MNIST/raw/*.gz``: all of MNIST, the four official files (11 MiB);
* ``cifar10/test.npz``: the 1,000 test images of the offline copy;
* ``cifar10/train-NNN.npz``: the first CIFAR-10 training images, 1,000 a file, as many as fit
  (about 23,000 of the 50,000): each image stored as its difference from its left neighbour (the
  first column from the pixel above, as PNG's "sub" filter does), which bzip2 then packs to about
  68% of the raw bytes against 92% for the pixels themselves;
* ``manifest.json``: what it holds, the sizes and sha256 sums.

On the GPU machine `materialize` unpacks it into an ordinary ``AELAB_DATA`` folder that the
student package and torchvision read as they read the offline copy: MNIST unzipped, and the
CIFAR-10 training images repeated up to 50,000 (the package checks that the training set has
50,000 images; an epoch then has the full budget's number of steps, so times are the full
budget's, but a model sees each image about twice per epoch). Every results file says so.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import shutil
import subprocess
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..paths import ROOT

BUNDLE = ROOT / ".gpu-bundle"
TRAVEL_LIMIT = 64 * 2**20      # what travels to a lent machine: the working tree and the carried paths
RESERVE = 2 * 2**20            # left free for the working tree to grow a little before the run
CHUNK = 1_000                  # CIFAR-10 training images a file
CIFAR10_TRAIN_SIZE = 50_000
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")
FILTER = "sub: each pixel minus its left neighbour (column 0: minus the pixel above), modulo 256, per channel"


class BundleError(RuntimeError):
    """The bundle cannot be built, read or unpacked; the message says why."""


# ---------------------------------------------------------------------------------------------
# The image filter: reversible, and it makes natural images compress.

def encode_images(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W, C) as differences from their left neighbours (column 0: from the
    pixel above; the top-left pixel as it is), modulo 256."""
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"expected uint8 images (N, H, W, C), got {images.dtype} {images.shape}")
    x = images.astype(np.int16)
    prediction = np.zeros_like(x)
    prediction[:, :, 1:] = x[:, :, :-1]
    prediction[:, 1:, 0] = x[:, :-1, 0]
    return ((x - prediction) % 256).astype(np.uint8)


def decode_images(encoded: np.ndarray) -> np.ndarray:
    """The inverse of `encode_images`."""
    out = encoded.copy()
    out[:, :, 0] = np.cumsum(encoded[:, :, 0], axis=1, dtype=np.uint8)
    return np.cumsum(out, axis=2, dtype=np.uint8)


def write_npz(path: Path, **arrays: np.ndarray) -> int:
    """An .npz whose members are bzip2-compressed (np.load reads it as any .npz); returns its size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2, compresslevel=9) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)
    return path.stat().st_size


# ---------------------------------------------------------------------------------------------
# What travels besides the bundle.

def travelling_bytes(root: Path = ROOT, *, without: Path | None = None) -> int:
    """The bytes of the files that travel with the working tree to a lent machine: tracked, and
    untracked but not ignored (`git ls-files`, read only), leaving out `without`."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                                capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and ".git" not in p.parts
                   and not (without and p.is_relative_to(without)))
    total = 0
    skip = without.resolve() if without else None
    for name in set(filter(None, listed.decode().split("\0"))):
        path = root / name
        if skip is not None and path.resolve().is_relative_to(skip):
            continue
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def ignore_locally(folder: Path, root: Path = ROOT) -> bool:
    """Add `folder` to .git/info/exclude (this clone's own ignore list, never committed) unless it
    is ignored already; True when it added the line."""
    git = root / ".git"
    if not git.is_dir():
        return False
    line = "/" + folder.resolve().relative_to(root.resolve()).as_posix() + "/"
    exclude = git / "info" / "exclude"
    text = exclude.read_text() if exclude.is_file() else ""
    if line in text.splitlines():
        return False
    exclude.parent.mkdir(parents=True, exist_ok=True)
    exclude.write_text(text + ("" if not text or text.endswith("\n") else "\n") + line + "\n")
    return True


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Building.

def build_bundle(source: Path, out: Path = BUNDLE, *, limit: int = TRAVEL_LIMIT, reserve: int = RESERVE,
                 others: int | None = None, max_train: int | None = None, chunk: int = CHUNK,
                 log=print) -> dict:
    """Write the bundle for a lent GPU machine into `out` (emptied first) from the offline copy at
    `source`, within `limit` bytes together with what else travels (`others`, by default the
    working tree's files, measured) and `reserve`. `max_train` caps the CIFAR-10 training images
    (tests). Returns the manifest."""
    start = time.perf_counter()
    source = Path(source)
    raw = source / "MNIST" / "raw"
    missing = [f"{name}.gz" for name in MNIST_FILES if not (raw / f"{name}.gz").is_file()]
    cifar = source / "cifar10"
    for name in ("cifar10_train.npz", "cifar10_test.npz"):
        if not (cifar / name).is_file():
            missing.append(f"cifar10/{name}")
    if missing:
        raise BundleError(f"the offline copy at {source} lacks {', '.join(missing)} (set AELAB_DATA to the folder "
                          "that /work/shared/data/README.md describes)")
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    (out / "MNIST" / "raw").mkdir(parents=True)
    others = travelling_bytes(without=out) if others is None else others
    room = limit - reserve - others
    files: dict[str, dict] = {}

    def add(path: Path, **info) -> None:
        files[path.relative_to(out).as_posix()] = {"bytes": path.stat().st_size, "sha256": sha256(path), **info}

    for name in MNIST_FILES:
        target = out / "MNIST" / "raw" / f"{name}.gz"
        shutil.copyfile(raw / f"{name}.gz", target)
        add(target)
    with np.load(cifar / "cifar10_test.npz") as npz:
        test_images, test_labels = npz["images"], npz["labels"].astype(np.int64)
    write_npz(out / "cifar10" / "test.npz", images=encode_images(test_images), labels=test_labels)
    add(out / "cifar10" / "test.npz", images=len(test_images))
    used = folder_bytes(out) + 4096  # the manifest
    if used > room:
        raise BundleError(f"MNIST and the CIFAR-10 test images alone take {used / 2**20:.1f} MiB, but only "
                          f"{room / 2**20:.1f} MiB are free ({others / 2**20:.1f} MiB of the working tree travel too)")
    with np.load(cifar / "cifar10_train.npz") as npz:
        train_images, train_labels = npz["images"], npz["labels"].astype(np.int64)
    cap = min(len(train_images), max_train or len(train_images))
    kept = 0
    while kept < cap:
        stop = min(kept + chunk, cap)
        path = out / "cifar10" / f"train-{kept // chunk:03d}.npz"
        size = write_npz(path, images=encode_images(train_images[kept:stop]), labels=train_labels[kept:stop])
        if used + size > room:
            path.unlink()
            break
        used += size
        add(path, images=stop - kept, first=kept)
        kept = stop
    manifest = {
        "what": "the data of aelab's GPU check (python -m aelab_course.gpucheck bundle)",
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "source": str(source),
        "mnist": {"train": 60_000, "test": 10_000, "files": [f"MNIST/raw/{n}.gz" for n in MNIST_FILES]},
        "cifar10": {"train": kept, "train_of": len(train_images), "test": int(len(test_images)), "chunk": chunk,
                    "filter": FILTER, "compression": "npz with bzip2 members"},
        "bytes": used - 4096, "others_bytes": others, "limit_bytes": limit, "reserve_bytes": reserve,
        "files": files,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    manifest["bytes"] = folder_bytes(out)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    log(f"[gpucheck] bundle {out}: {manifest['bytes'] / 2**20:.1f} MiB (MNIST whole, CIFAR-10 {kept:,} of "
        f"{len(train_images):,} training and {len(test_images):,} test images) + {others / 2**20:.1f} MiB of the "
        f"working tree = {(manifest['bytes'] + others) / 2**20:.1f} MiB of the {limit / 2**20:.0f} MiB that may "
        f"travel; {time.perf_counter() - start:.0f} s")
    return manifest


def read_manifest(bundle: Path) -> dict:
    path = Path(bundle) / "manifest.json"
    if not path.is_file():
        raise BundleError(f"{bundle} holds no manifest.json: build it with `python -m aelab_course.gpucheck bundle`")
    return json.loads(path.read_text())


def verify(bundle: Path) -> dict:
    """The manifest, after checking every file's size and sha256 (BundleError naming the first bad one)."""
    manifest = read_manifest(bundle)

    def bad(item) -> str:
        name, info = item
        path = Path(bundle) / name
        ok = path.is_file() and path.stat().st_size == info["bytes"] and sha256(path) == info["sha256"]
        return "" if ok else str(path)

    with ThreadPoolExecutor(max_workers=_workers()) as pool:  # hashlib lets go of the GIL
        broken = [path for path in pool.map(bad, manifest["files"].items()) if path]
    if broken:
        raise BundleError(f"{broken[0]} is missing or differs from the manifest: build the bundle again")
    return manifest


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def read_cifar10_train(bundle: Path) -> tuple[np.ndarray, np.ndarray]:
    """The bundle's CIFAR-10 training images (N, 32, 32, 3) uint8 and labels, in order."""
    manifest = read_manifest(bundle)

    def read(name: str) -> tuple[np.ndarray, np.ndarray]:
        with np.load(Path(bundle) / name) as npz:
            return decode_images(npz["images"]), npz["labels"]

    names = sorted(n for n in manifest["files"] if n.startswith("cifar10/train-"))
    if not names:
        raise BundleError(f"{bundle} holds no CIFAR-10 training images")
    with ThreadPoolExecutor(max_workers=_workers()) as pool:  # bzip2 lets go of the GIL
        parts = list(pool.map(read, names))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def read_cifar10_test(bundle: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(Path(bundle) / "cifar10" / "test.npz") as npz:
        return decode_images(npz["images"]), npz["labels"]


def materialize(bundle: Path, target: Path, *, fill_to: int = CIFAR10_TRAIN_SIZE, log=print) -> dict:
    """Unpack `bundle` into `target`, an AELAB_DATA folder: MNIST/raw/ unzipped, and
    cifar10/cifar10_{train,test}.npz, the training images repeated in order up to `fill_to`.
    Does nothing when `target` already holds this bundle. Returns what the data is, in words and
    numbers, for the results file."""
    start = time.perf_counter()
    manifest = verify(bundle)
    target = Path(target)
    stamp = target / "BUNDLE.json"
    kept = manifest["cifar10"]["train"]
    info = {"bundle": str(bundle), "bundle_bytes": manifest["bytes"], "data": str(target),
            "mnist": "all of MNIST (60,000 training, 10,000 test images)",
            "cifar10_train_images": kept, "cifar10_train_filled_to": fill_to,
            "cifar10_test_images": manifest["cifar10"]["test"],
            "cifar10": (f"the first {kept:,} of CIFAR-10's 50,000 training images, repeated in order to {fill_to:,} "
                        f"(an epoch has the full budget's steps; each image is seen about {fill_to / kept:.1f} times "
                        f"an epoch), and the first {manifest['cifar10']['test']:,} test images")}
    if stamp.is_file() and json.loads(stamp.read_text()).get("manifest_sha") == _manifest_sha(bundle):
        return {**info, "seconds": 0.0}
    if target.exists():
        shutil.rmtree(target)
    raw = target / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        with gzip.open(Path(bundle) / "MNIST" / "raw" / f"{name}.gz") as f, (raw / name).open("wb") as g:
            shutil.copyfileobj(f, g)
    images, labels = read_cifar10_train(bundle)
    repeats = math.ceil(fill_to / len(images))
    (target / "cifar10").mkdir()
    np.savez(target / "cifar10" / "cifar10_train.npz", images=np.concatenate([images] * repeats)[:fill_to],
             labels=np.concatenate([labels] * repeats)[:fill_to].astype(np.int64))
    test_images, test_labels = read_cifar10_test(bundle)
    np.savez(target / "cifar10" / "cifar10_test.npz", images=test_images, labels=test_labels.astype(np.int64))
    stamp.write_text(json.dumps({"manifest_sha": _manifest_sha(bundle), **info}, indent=1) + "\n")
    info["seconds"] = round(time.perf_counter() - start, 1)
    log(f"[gpucheck] data unpacked into {target} in {info['seconds']} s: {info['cifar10']}")
    return info


def _manifest_sha(bundle: Path) -> str:
    return sha256(Path(bundle) / "manifest.json")


def default_source() -> Path:
    """The offline copy: AELAB_DATA."""
    configured = os.environ.get("AELAB_DATA", "").strip()
    if not configured:
        raise BundleError("set AELAB_DATA to the offline copy of the data (e.g. /work/shared/data) to build the bundle")
    return Path(configured).expanduser()
