"""office31:ROOT/DOMAIN - the folder layout on 3 classes x 2 images per domain, with bad files mixed in."""

import os

import numpy as np
import pytest
from PIL import Image

from daaa_tf.data import load_domain, office31

CLASSES = ("back_pack", "bike", "mug")


def make_office(root, domains=("amazon", "webcam"), classes=CLASSES, per_class=2, size=(40, 30)):
    for d_i, domain in enumerate(domains):
        for c_i, name in enumerate(classes):
            folder = root / domain / "images" / name
            folder.mkdir(parents=True)
            for k in range(per_class):
                value = 20 + 40 * c_i + 10 * k + d_i
                Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(
                    folder / f"frame_{k:04d}.jpg", quality=95)


def images_of(d):
    xs, ys = zip(*d.dataset().as_numpy_iterator())
    return np.stack(xs), np.array(ys)


@pytest.fixture
def cache(tmp_path):
    return str(tmp_path / "cache")


@pytest.mark.parametrize("split", ["train", "test"])
def test_happy_path_whole_domain_for_both_splits(tmp_path, cache, split):
    make_office(tmp_path)
    d = load_domain(f"office31:{tmp_path}/webcam", split, image_size=24, cache_dir=cache)
    assert d.name == f"office31:{tmp_path}/webcam"
    assert d.class_names == list(CLASSES) and d.num_classes == 3
    assert d.num_examples == 6 and d.skipped == 0 and d.images is None
    assert d.labels.tolist() == [0, 0, 1, 1, 2, 2]
    x, y = images_of(d)
    assert x.shape == (6, 24, 24, 3) and x.dtype == np.uint8 and y.dtype == np.int32
    np.testing.assert_array_equal(y, d.labels)
    # Order is fixed (class, then file name): the flat colours come back where they were written.
    expected = [20 + 40 * c + 10 * k + 1 for c in range(3) for k in range(2)]
    np.testing.assert_allclose(x.reshape(6, -1).mean(axis=1), expected, atol=2)


def test_folder_without_images_subdir_is_accepted(tmp_path, cache):
    make_office(tmp_path, domains=("dslr",))
    os.rename(tmp_path / "dslr" / "images", tmp_path / "flat")
    os.rmdir(tmp_path / "dslr")
    os.rename(tmp_path / "flat", tmp_path / "dslr")
    assert load_domain(f"office31:{tmp_path}/dslr", "train", cache_dir=cache).num_examples == 6


def test_grey_and_rgba_files_become_rgb(tmp_path, cache):
    make_office(tmp_path)
    folder = tmp_path / "amazon" / "images" / "bike"
    Image.fromarray(np.full((30, 40), 99, np.uint8), "L").save(folder / "grey.jpg")
    Image.fromarray(np.full((30, 40, 4), [200, 100, 50, 255], np.uint8), "RGBA").save(folder / "rgba.png")
    d = load_domain(f"office31:{tmp_path}/amazon", "train", image_size=16, cache_dir=cache)
    assert d.num_examples == 8 and d.skipped == 0
    x, y = images_of(d)
    by_name = dict(zip([os.path.basename(p) for p in d.paths], x))
    assert np.abs(by_name["grey.jpg"].astype(int) - 99).max() <= 2
    assert (by_name["rgba.png"] == [200, 100, 50]).all()
    assert x.shape[-1] == 3


def test_corrupt_and_truncated_jpegs_are_skipped_counted_and_cached(tmp_path, cache, monkeypatch):
    make_office(tmp_path, size=(64, 48))
    folder = tmp_path / "amazon" / "images" / "mug"
    data = (folder / "frame_0001.jpg").read_bytes()
    (folder / "frame_0001.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "amazon" / "images" / "bike" / "frame_0000.jpg").write_bytes(b"not a jpeg at all")
    d = load_domain(f"office31:{tmp_path}/amazon", "train", image_size=16, cache_dir=cache)
    assert d.skipped == 2 and d.num_examples == 4
    assert sorted(os.path.basename(os.path.dirname(p)) for p in d.skipped_files) == ["bike", "mug"]
    x, y = images_of(d)  # the pipeline never meets the bad files
    assert len(x) == 4 and y.tolist() == [0, 0, 1, 2]

    def fail(*a, **k):
        raise AssertionError("re-checked despite the cache")

    monkeypatch.setattr(office31, "find_unreadable", fail)
    again = load_domain(f"office31:{tmp_path}/amazon", "test", image_size=16, cache_dir=cache)
    assert again.skipped == 2 and again.num_examples == 4


def test_class_folders_differ_between_domains(tmp_path, cache):
    make_office(tmp_path, domains=("amazon",))
    make_office(tmp_path, domains=("dslr",), classes=("back_pack", "bike", "laptop"))
    with pytest.raises(ValueError, match=r"class folders differ between .*amazon \(3\) and .*dslr \(3\): "
                                         r"only in amazon: \['mug'\]; only in dslr: \['laptop'\]"):
        load_domain(f"office31:{tmp_path}/amazon", "train", cache_dir=cache)


def test_unknown_domain_name(tmp_path, cache):
    make_office(tmp_path)
    with pytest.raises(ValueError, match=r"must be one of \('amazon', 'dslr', 'webcam'\).*'caltech'"):
        load_domain(f"office31:{tmp_path}/caltech", "train", cache_dir=cache)


def test_missing_root_and_domain(tmp_path, cache):
    with pytest.raises(FileNotFoundError, match="nope does not exist"):
        load_domain(f"office31:{tmp_path}/nope/amazon", "train", cache_dir=cache)
    make_office(tmp_path, domains=("amazon",))
    with pytest.raises(FileNotFoundError, match=r"webcam does not exist \(expected ROOT/DOMAIN/images"):
        load_domain(f"office31:{tmp_path}/webcam", "train", cache_dir=cache)


def test_empty_domain_and_no_images(tmp_path, cache):
    (tmp_path / "amazon" / "images").mkdir(parents=True)
    with pytest.raises(ValueError, match="no class folders in"):
        load_domain(f"office31:{tmp_path}/amazon", "train", cache_dir=cache)
    (tmp_path / "amazon" / "images" / "mug").mkdir()
    (tmp_path / "amazon" / "images" / "mug" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="no image files"):
        load_domain(f"office31:{tmp_path}/amazon", "train", cache_dir=cache)
