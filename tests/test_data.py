"""Dataset loaders, tested on files laid out the way torchvision writes them."""

import gzip
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganbench.plugin.data import BatchStream, DatasetRequest, ImageDataset, to_float, to_uint8
from ganbench.errors import DatasetUnavailableError, UsageError
from ganbench.execution.runner import Invocation, load_dataset

from helpers import SHARED_MNIST


def request(name, argument=None, data_dir=Path("."), download=False, resolution=None):
    return DatasetRequest(name, argument, Path(data_dir), download, resolution)


def test_digits_is_embedded_and_upscaled(registry):
    ds = load_dataset(registry, Invocation(dataset="digits"))
    assert ds.images.shape == (1797, 1, 16, 16) and ds.images.dtype == torch.uint8
    assert ds.num_classes == 10 and tuple(ds.labels.bincount().tolist()) == ds.info.class_counts
    assert ds.images.max() == 255 and ds.images.min() == 0
    assert ds.info.shape == (1, 16, 16)


def test_resolution_option_resizes(registry):
    ds = load_dataset(registry, Invocation(dataset="digits", resolution=32))
    assert ds.resolution == 32


def test_uint8_float_round_trip_is_exact():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.equal(to_uint8(to_float(x)), x)
    assert to_uint8(torch.tensor([0.999])).item() == 255  # rounded, not truncated


def test_batch_stream_is_reproducible_and_resumable(tiny_dataset):
    a = BatchStream(tiny_dataset, 16, seed=3, device=torch.device("cpu"))
    first = [a.next()[0] for _ in range(5)]  # crosses an epoch boundary (40 images)
    b = BatchStream(tiny_dataset, 16, seed=3, device=torch.device("cpu"))
    for _ in range(2):
        b.next()
    state = b.state_dict()
    c = BatchStream(tiny_dataset, 16, seed=99, device=torch.device("cpu"))
    c.load_state_dict(state)
    assert all(torch.equal(x, y) for x, y in zip(first[2:], [c.next()[0] for _ in range(3)]))
    assert not torch.equal(first[0], BatchStream(tiny_dataset, 16, seed=4, device=torch.device("cpu")).next()[0])


def test_dataset_validates_its_tensors():
    with pytest.raises(UsageError, match="uint8"):
        ImageDataset("bad", torch.zeros(2, 1, 8, 8))
    with pytest.raises(UsageError, match="square"):
        ImageDataset("bad", torch.zeros(2, 1, 8, 6, dtype=torch.uint8))
    with pytest.raises(UsageError, match="no images"):
        ImageDataset("bad", torch.zeros(0, 1, 8, 8, dtype=torch.uint8))


# -- MNIST-style IDX files ------------------------------------------------------


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_mnist_reads_one_split_in_torchvision_layout(tmp_path, registry):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.random.default_rng(0).integers(0, 256, (12, 28, 28))
    _write_idx(raw / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.arange(12) % 10)
    ds = registry.dataset("mnist").load(request("mnist", "test", tmp_path))
    assert ds.images.shape == (12, 1, 28, 28) and ds.split == "test"
    assert np.array_equal(ds.images[:, 0].numpy(), images)
    assert ds.labels.tolist() == [i % 10 for i in range(12)]


def test_missing_dataset_says_where_it_looked_and_what_to_do(tmp_path, registry):
    with pytest.raises(DatasetUnavailableError) as info:
        registry.dataset("mnist").load(request("mnist", None, tmp_path))
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte") in message
    assert "--no-download" in message and "--data-dir" in message


def test_failed_download_is_reported_not_raised_raw(tmp_path, registry, monkeypatch):
    import torchvision.datasets as tvd

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tvd, "FashionMNIST", offline)
    with pytest.raises(DatasetUnavailableError, match="download failed.*network is unreachable"):
        registry.dataset("fashion-mnist").load(request("fashion-mnist", None, tmp_path, download=True))


def test_unknown_split_is_refused(tmp_path, registry):
    with pytest.raises(UsageError, match="mnist:test"):
        registry.dataset("mnist").load(request("mnist", "validation", tmp_path))


@pytest.mark.skipif(not SHARED_MNIST.exists(), reason=f"real MNIST test files not present at {SHARED_MNIST}")
def test_real_mnist_test_split(tmp_path, registry):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in SHARED_MNIST.glob("t10k-*-ubyte.gz"):
        shutil.copy(f, raw / f.name)
    ds = registry.dataset("mnist").load(request("mnist", "test", tmp_path))
    assert ds.images.shape == (10_000, 1, 28, 28)
    assert ds.labels.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# -- CIFAR-10 pickled batches --------------------------------------------------


def test_cifar10_reads_the_python_batches(tmp_path, registry):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    data = np.random.default_rng(1).integers(0, 256, (6, 3072)).astype(np.uint8)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({"data": data, "labels": [0, 1, 2, 3, 4, 5]}, fh)
    ds = registry.dataset("cifar10").load(request("cifar10", "test", tmp_path))
    assert ds.images.shape == (6, 3, 32, 32)
    assert np.array_equal(ds.images[2, 1].numpy(), data[2, 1024:2048].reshape(32, 32))
    with pytest.raises(DatasetUnavailableError, match="data_batch_1"):
        registry.dataset("cifar10").load(request("cifar10", "train", tmp_path))


# -- user image folders -----------------------------------------------------------


def test_imagefolder_with_classes(tmp_path, registry):
    for cls, colour in (("cats", (255, 0, 0)), ("dogs", (0, 0, 255))):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("RGB", (40 + i, 30), colour).save(tmp_path / cls / f"{i}.png")
    ds = registry.dataset("imagefolder").load(request("imagefolder", str(tmp_path), resolution=8))
    assert ds.images.shape == (6, 3, 8, 8) and ds.class_names == ("cats", "dogs")
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.images[0, 0].float().mean() > 250 and ds.images[5, 2].float().mean() > 250


def test_imagefolder_unlabelled_greyscale(tmp_path, registry):
    for i in range(2):
        Image.new("L", (16, 16), 100).save(tmp_path / f"{i}.png")
    ds = registry.dataset("imagefolder").load(request("imagefolder", str(tmp_path), resolution=16))
    assert ds.images.shape == (2, 1, 16, 16) and ds.labels is None


def test_imagefolder_errors(tmp_path, registry):
    load = registry.dataset("imagefolder").load
    with pytest.raises(DatasetUnavailableError, match="does not exist"):
        load(request("imagefolder", str(tmp_path / "nope")))
    with pytest.raises(DatasetUnavailableError, match="holds no images"):
        load(request("imagefolder", str(tmp_path)))
    (tmp_path / "broken.png").write_text("not an image")
    with pytest.raises(DatasetUnavailableError, match="Cannot read the image"):
        load(request("imagefolder", str(tmp_path)))


@pytest.mark.parametrize("batch", [16, 24])
def test_batches_and_their_order_do_not_depend_on_where_the_data_live(tiny_dataset, batch):
    """On the device (gathered there) or not (gathered on the host, next batch prepared ahead): same batches."""
    cpu = torch.device("cpu")
    there, host = BatchStream(tiny_dataset, batch, 5, cpu, on_device=True), BatchStream(tiny_dataset, batch, 5, cpu, on_device=False)
    for _ in range(7):  # across epoch boundaries (40 images)
        (a, la), (b, lb) = there.next(), host.next()
        assert torch.equal(a, b) and torch.equal(la, lb)
    assert there.state_dict() == host.state_dict()  # a prepared batch is not counted as handed out
    resumed = BatchStream(tiny_dataset, batch, 0, cpu, on_device=False)
    resumed.load_state_dict(host.state_dict())
    for _ in range(3):
        assert torch.equal(resumed.next()[0], host.next()[0])


def test_data_placement_choice(tiny_dataset):
    from ganbench.plugin.data import data_on_device
    from ganbench.errors import UsageError

    cpu = torch.device("cpu")
    assert data_on_device("auto", tiny_dataset, cpu) and data_on_device("yes", tiny_dataset, cpu)
    assert not data_on_device("no", tiny_dataset, cpu)
    with pytest.raises(UsageError, match="--data-on-device"):
        data_on_device("maybe", tiny_dataset, cpu)
