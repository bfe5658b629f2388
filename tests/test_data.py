import gzip
import shutil

import numpy as np
import pytest
import torch

from aelab import data as aedata
from aelab.data import Batches, DataError, load_cifar10, load_mnist


@pytest.fixture(autouse=True)
def fresh_cache():
    aedata._cache.clear()
    yield
    aedata._cache.clear()


def test_batches_cover_every_image_once_and_scale_to_unit_interval():
    images = torch.arange(10 * 4, dtype=torch.uint8).reshape(10, 1, 2, 2) * 6
    labels = torch.arange(10)
    batches = Batches(images, labels, batch_size=4, shuffle=True, device="cpu", seed=0)
    assert len(batches) == 3
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(10))
    x, _ = next(iter(batches))
    assert x.dtype == torch.float32 and x.shape == (4, 1, 2, 2)
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_batches_shuffle_repeatably_per_seed_and_flatten():
    images = torch.randint(0, 255, (20, 1, 3, 3), dtype=torch.uint8)
    labels = torch.arange(20)
    a = [y.tolist() for _, y in Batches(images, labels, 5, seed=1, device="cpu")]
    b = [y.tolist() for _, y in Batches(images, labels, 5, seed=1, device="cpu")]
    assert a == b and a != [list(range(i, i + 5)) for i in range(0, 20, 5)]
    x, _ = next(iter(Batches(images, labels, 5, shuffle=False, flatten=True, device="cpu")))
    assert x.shape == (5, 9)
    torch.testing.assert_close(x, images[:5].reshape(5, 9).float() / 255)


def test_batches_reject_bad_input():
    with pytest.raises(TypeError, match="uint8"):
        Batches(torch.zeros(3, 4), torch.zeros(3), 2)
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        Batches(torch.zeros(3, 4, dtype=torch.uint8), torch.zeros(2), 2)
    with pytest.raises(ValueError, match="batch_size"):
        Batches(torch.zeros(3, 4, dtype=torch.uint8), torch.zeros(3), 0)


def test_missing_mnist_says_where_it_looked_and_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("AELAB_DATA", str(tmp_path))
    with pytest.raises(DataError) as info:
        load_mnist()
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "AELAB_DATA" in message and "download" in message



def test_a_failed_download_says_so_and_asks_for_nothing_to_be_deleted(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://...\n<urlopen error>")

    monkeypatch.delenv("AELAB_DATA", raising=False)
    monkeypatch.setenv("AELAB_DOWNLOAD", "1")
    monkeypatch.setattr(aedata, "data_root", lambda: tmp_path / "data")
    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    for load, name in ((load_mnist, "MNIST"), (aedata.load_cifar10, "CIFAR-10")):
        with pytest.raises(DataError) as info:
            load()
        message = str(info.value)
        assert f"{name} could not be downloaded" in message and "Error downloading" in message, message
        assert "delete" not in message.lower() and "AELAB_DATA" in message, message

def test_no_download_when_forbidden(tmp_path, monkeypatch):
    monkeypatch.delenv("AELAB_DATA", raising=False)
    monkeypatch.setenv("AELAB_DOWNLOAD", "0")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(aedata, "data_root", lambda: tmp_path / "data")
    with pytest.raises(DataError, match="not found"):
        load_mnist()


def test_corrupt_mnist_is_a_clear_error_not_a_torchvision_trace(tmp_path, monkeypatch, real_data):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (real_data / "MNIST" / "raw").glob("*-ubyte"):
        shutil.copyfile(f, raw / f.name)
    # Truncate the training images to half.
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    monkeypatch.setenv("AELAB_DATA", str(tmp_path))
    with pytest.raises(DataError, match="MNIST") as info:
        load_mnist()
    assert str(raw) in str(info.value) and "AELAB_DATA" in str(info.value)


def test_real_mnist(real_data, monkeypatch):
    monkeypatch.setenv("AELAB_DATA", str(real_data))
    mnist = load_mnist()
    assert mnist.train_images.shape == (60_000, 1, 28, 28) and mnist.train_images.dtype == torch.uint8
    assert mnist.test_images.shape == (10_000, 1, 28, 28)
    assert mnist.train_labels[:5].tolist() == [5, 0, 4, 1, 9]  # the official first labels
    assert load_mnist() is mnist  # loaded once per process
    x = mnist.images("test", 3, flatten=True)
    assert x.shape == (3, 784) and 0 <= float(x.min()) and float(x.max()) <= 1


def _write_npz(folder, n_train, n_test, shape=(32, 32, 3)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        np.savez(folder / f"cifar10_{split}.npz", images=rng.integers(0, 255, (n, *shape), dtype=np.uint8),
                 labels=rng.integers(0, 10, n).astype(np.int64))


def test_cifar_npz_subset_is_announced(tmp_path, monkeypatch):
    _write_npz(tmp_path / "cifar10", 50_000, 1_000)
    monkeypatch.setenv("AELAB_DATA", str(tmp_path))
    cifar = load_cifar10()
    assert cifar.train_images.shape == (50_000, 3, 32, 32)
    assert cifar.test_images.shape == (1_000, 3, 32, 32)
    assert "only the first 1,000" in cifar.describe()


def test_cifar_npz_with_wrong_shape_is_a_clear_error(tmp_path, monkeypatch):
    _write_npz(tmp_path / "cifar10", 10, 10, shape=(28, 28, 3))
    monkeypatch.setenv("AELAB_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"\(N, 32, 32, 3\)"):
        load_cifar10()


def test_cifar_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("AELAB_DATA", str(tmp_path))
    with pytest.raises(DataError, match="cifar10_train.npz"):
        load_cifar10()


def test_real_cifar(real_data, monkeypatch):
    if not (real_data / "cifar10" / "cifar10_train.npz").is_file():
        pytest.skip("no CIFAR-10 arrays in the offline copy")
    monkeypatch.setenv("AELAB_DATA", str(real_data))
    cifar = load_cifar10()
    # SOURCE.txt's checks: train[0] pixel (0, 0) and the first labels.
    assert cifar.train_images[0, :, 0, 0].tolist() == [59, 62, 63]
    assert cifar.train_labels[:5].tolist() == [6, 9, 9, 4, 1]
    mean = cifar.train_images.float().mean(dim=(0, 2, 3)) / 255
    torch.testing.assert_close(mean, torch.tensor([0.4914, 0.4822, 0.4465]), atol=1e-3, rtol=0)


def test_data_root_keeps_the_name_you_gave_it(tmp_path, monkeypatch):
    """Messages show the folder the student named, not where its symbolic links lead (issue 14)."""
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "mydata"
    link.symlink_to(real)
    monkeypatch.setenv("AELAB_DATA", str(link))
    assert aedata.data_root() == link
    with pytest.raises(DataError) as info:
        load_mnist()
    assert str(link) in str(info.value) and str(real) not in str(info.value)


def test_without_aelab_data_the_repository_data_folder_is_used(monkeypatch):
    """Installed from a checkout (editable), aelab reads and downloads into that checkout's data/:
    the folder beside data/README.md, whatever the working folder."""
    from pathlib import Path

    monkeypatch.delenv("AELAB_DATA", raising=False)
    monkeypatch.chdir("/")
    root = aedata.data_root()
    assert (root / "README.md").is_file() and root.name == "data"
    assert Path(aedata.__file__).resolve().is_relative_to(root.parent.resolve())


def test_validation_split_is_held_out_of_training():
    images = torch.arange(20, dtype=torch.uint8).reshape(20, 1, 1, 1)
    labels = torch.arange(20) % 10
    data = aedata.ImageDataset("toy", images, labels, images[:5], labels[:5], tuple("0123456789"), "memory")
    with pytest.raises(ValueError, match="no validation split"):
        data.split("val")
    held = data.with_validation(4)
    assert len(held.train_images) == 16 and len(held.val_images) == 4
    assert held.images("val").mul(255).round().flatten().tolist() == [16, 17, 18, 19]
    assert not set(held.split("train")[0].flatten().tolist()) & set(held.split("val")[0].flatten().tolist())
    assert "4 validation" in held.describe()
    with pytest.raises(ValueError, match="validation size"):
        data.with_validation(20)
    assert next(iter(held.batches("val", batch_size=2)))[0].shape == (2, 1, 1, 1)


def test_mnist_from_the_official_gz_files_alone(tmp_path, monkeypatch, real_data):
    """A copy of MNIST's four .gz files (as on the official mirrors) is unpacked on first use:
    torchvision itself reads only the unpacked files."""
    import shutil

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        shutil.copyfile(real_data / "MNIST" / "raw" / f"{name}.gz", raw / f"{name}.gz")
    monkeypatch.setenv("AELAB_DATA", str(tmp_path))
    monkeypatch.setattr(aedata, "_cache", {})
    mnist = load_mnist()
    assert len(mnist.train_images) == 60_000 and (raw / "t10k-images-idx3-ubyte").is_file()
