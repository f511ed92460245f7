"""The celeba loader, tested on a tiny CelebA laid out the way torchvision writes it."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganbench.plugin.data import DatasetRequest
from ganbench.errors import DatasetUnavailableError, UsageError
from ganbench.execution.runner import Invocation, load_dataset

PARTS = (0, 0, 0, 0, 0, 1, 1, 2, 2)  # 5 train, 2 valid, 2 test, in the official file's order
BAND = (255, 0, 0)  # the 20 rows the 178x178 centre crop drops at the top and at the bottom


def make_celeba(data_dir: Path, parts=PARTS) -> Path:
    """Fake aligned faces (178x218 JPEGs): image i is (0, 20 + 25 i, 200) between two red bands."""
    root = data_dir / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    lines = []
    for i, part in enumerate(parts):
        pixels = np.empty((218, 178, 3), dtype=np.uint8)
        pixels[:] = (0, 20 + 25 * i, 200)
        pixels[:20] = pixels[-20:] = BAND
        name = f"{i + 1:06d}.jpg"
        Image.fromarray(pixels).save(root / "img_align_celeba" / name, quality=95, subsampling=0)
        lines.append(f"{name} {part}\n")
    (root / "list_eval_partition.txt").write_text("".join(lines))
    return root


def request(data_dir, split=None, resolution=None, download=False):
    return DatasetRequest("celeba", split, Path(data_dir), download, resolution)


def test_splits_are_cropped_resized_and_unlabelled(tmp_path, registry):
    make_celeba(tmp_path)
    load = registry.dataset("celeba").load
    train, valid, test, everything = (load(request(tmp_path, s)) for s in (None, "valid", "test", "all"))
    assert [len(d) for d in (train, valid, test, everything)] == [5, 2, 2, 9]
    assert train.split == "train" and train.images.dtype == torch.uint8 and train.images.shape == (5, 3, 64, 64)
    assert train.labels is None and train.num_classes == 0
    assert torch.equal(everything.images, torch.cat([train.images, valid.images, test.images]))
    # The red bands are cropped away: without the crop the top and bottom ~6 rows would be red.
    assert everything.images[:, 0].max() < 40
    # Each image is the one the partition file names, in its order.
    greens = everything.images[:, 1].float().mean(dim=(1, 2))
    assert torch.allclose(greens, torch.tensor([20.0 + 25 * i for i in range(9)]), atol=3)
    assert load(request(tmp_path, "test", resolution=32)).images.shape == (2, 3, 32, 32)


def test_the_runner_uses_the_default_resolution(tmp_path, registry):
    make_celeba(tmp_path)
    ds = load_dataset(registry, Invocation(dataset="celeba:valid", data_dir=tmp_path, download=False))
    assert ds.images.shape == (2, 3, 64, 64) and ds.info.shape == (3, 64, 64)


def test_a_second_load_reads_the_cache_and_a_new_partition_misses_it(tmp_path, registry):
    root = make_celeba(tmp_path)
    load = registry.dataset("celeba").load
    first = load(request(tmp_path))
    cached = list((root / "ganbench-cache").glob("train-64px-*.npy"))
    assert len(cached) == 1 and first.meta["cache"] == str(cached[0])
    for jpeg in (root / "img_align_celeba").glob("*.jpg"):
        jpeg.unlink()
    assert torch.equal(load(request(tmp_path)).images, first.images)
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 1\n")  # edited: the cache no longer applies
    with pytest.raises(DatasetUnavailableError, match="1 of the 1 train images .* missing .* 000001.jpg"):
        load(request(tmp_path))


def test_an_unwritable_cache_only_warns(tmp_path, registry):
    root = make_celeba(tmp_path)
    (root / "ganbench-cache").write_text("a file where the cache folder would go")
    with pytest.warns(UserWarning, match="not caching"):
        ds = registry.dataset("celeba").load(request(tmp_path, "test"))
    assert len(ds) == 2 and ds.meta["cache"] is None


def test_unknown_split_lists_the_valid_ones(tmp_path, registry):
    with pytest.raises(UsageError) as info:
        registry.dataset("celeba").load(request(tmp_path, "validation"))
    assert all(f"celeba:{s}" in str(info.value) for s in ("train", "valid", "test", "all"))


def test_missing_dataset_says_where_it_looked_and_what_to_do(tmp_path, registry):
    with pytest.raises(DatasetUnavailableError) as info:
        registry.dataset("celeba").load(request(tmp_path))
    message = str(info.value)
    assert str(tmp_path / "celeba" / "img_align_celeba") in message
    assert str(tmp_path / "celeba" / "list_eval_partition.txt") in message
    assert "--no-download" in message and "--data-dir" in message
    assert "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html" in message and "img_align_celeba.zip" in message


def test_failed_download_is_reported_not_raised_raw(tmp_path, registry, monkeypatch):
    import torchvision.datasets as tvd

    calls = []

    def quota_exceeded(**kwargs):
        calls.append(kwargs)
        raise RuntimeError("Too many users have viewed or downloaded this file recently")

    monkeypatch.setattr(tvd, "CelebA", quota_exceeded)
    with pytest.raises(DatasetUnavailableError, match="download failed.*Too many users"):
        registry.dataset("celeba").load(request(tmp_path, download=True))
    assert calls == [{"root": str(tmp_path), "split": "all", "download": True}]


def test_a_malformed_partition_file_is_named(tmp_path, registry):
    root = make_celeba(tmp_path)
    (root / "list_eval_partition.txt").write_text("000001.jpg train\n")
    with pytest.raises(DatasetUnavailableError, match="Line 1 of .*list_eval_partition.txt"):
        registry.dataset("celeba").load(request(tmp_path))
