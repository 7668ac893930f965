"""mnist_m:DIR - the release layout on a few small PNGs, including grey/RGBA/corrupt files and the cache."""

import os

import numpy as np
import pytest
from PIL import Image

from daaa_tf.data import load_domain, mnist_m


def make_mnist_m(root, n_train=6, n_test=3, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        folder = root / f"mnist_m_{split}"
        folder.mkdir(parents=True)
        images, lines = [], []
        for i in range(n):
            img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            name = f"{i:08d}.png"
            Image.fromarray(img).save(folder / name)
            images.append(img)
            lines.append(f"{name} {(i * 3) % 10}\n")
        (root / f"mnist_m_{split}_labels.txt").write_text("".join(lines))
        out[split] = np.stack(images), np.array([(i * 3) % 10 for i in range(n)])
    return out


@pytest.fixture
def cache(tmp_path):
    return str(tmp_path / "cache")


@pytest.mark.parametrize("split", ["train", "test"])
def test_happy_path(tmp_path, cache, split):
    raw = make_mnist_m(tmp_path / "mm")
    d = load_domain(f"mnist_m:{tmp_path / 'mm'}", split, cache_dir=cache)
    assert d.name == f"mnist_m:{tmp_path / 'mm'}" and d.skipped == 0
    np.testing.assert_array_equal(d.images, raw[split][0])
    np.testing.assert_array_equal(d.labels, raw[split][1])
    assert d.images.dtype == np.uint8 and d.labels.dtype == np.int32 and d.num_classes == 10
    x, y = next(iter(d.dataset()))
    assert x.shape == (32, 32, 3) and x.dtype.name == "uint8" and y.dtype.name == "int32"


def test_grey_rgba_palette_and_other_sizes_become_rgb(tmp_path, cache):
    root = tmp_path / "mm"
    make_mnist_m(root)
    folder = root / "mnist_m_train"
    Image.fromarray(np.full((32, 32), 77, np.uint8), "L").save(folder / "00000000.png")
    Image.fromarray(np.full((32, 32, 4), [10, 20, 30, 128], np.uint8), "RGBA").save(folder / "00000001.png")
    Image.fromarray(np.full((32, 32, 3), 102, np.uint8)).convert("P").save(folder / "00000002.png")
    Image.fromarray(np.full((28, 28, 3), 150, np.uint8)).save(folder / "00000003.png")
    d = load_domain(f"mnist_m:{root}", "train", cache_dir=cache)
    assert d.images.shape == (6, 32, 32, 3) and d.skipped == 0
    assert (d.images[0] == 77).all()
    assert (d.images[1] == [132, 137, 142]).all()  # alpha 128 composited on white (daaa_tf.images)
    assert (d.images[2] == 102).all()  # a web-palette grey survives the P round trip
    assert (d.images[3] == 150).all()


def test_corrupt_and_truncated_pngs_are_skipped_and_counted(tmp_path, cache):
    root = tmp_path / "mm"
    raw = make_mnist_m(root)
    folder = root / "mnist_m_train"
    (folder / "00000001.png").write_bytes(b"garbage, not a png")
    data = (folder / "00000004.png").read_bytes()
    (folder / "00000004.png").write_bytes(data[: len(data) // 2])
    d = load_domain(f"mnist_m:{root}", "train", cache_dir=cache)
    assert d.skipped == 2 and d.num_examples == 4
    assert [os.path.basename(p) for p in d.skipped_files] == ["00000001.png", "00000004.png"]
    keep = [0, 2, 3, 5]
    np.testing.assert_array_equal(d.images, raw["train"][0][keep])
    np.testing.assert_array_equal(d.labels, raw["train"][1][keep])
    # The cached copy remembers the skips.
    again = load_domain(f"mnist_m:{root}", "train", cache_dir=cache)
    assert again.skipped == 2 and again.num_examples == 4


def test_all_corrupt_is_an_error(tmp_path, cache):
    root = tmp_path / "mm"
    make_mnist_m(root, n_test=2)
    for p in (root / "mnist_m_test").iterdir():
        p.write_bytes(b"x")
    with pytest.raises(ValueError, match="none of the 2 PNGs"):
        load_domain(f"mnist_m:{root}", "test", cache_dir=cache)


def test_cache_hit_and_invalidation(tmp_path, cache, monkeypatch):
    root = tmp_path / "mm"
    make_mnist_m(root)
    first = load_domain(f"mnist_m:{root}", "train", cache_dir=cache)
    assert len([f for f in os.listdir(cache) if f.startswith("mnist_m-train-")]) == 1

    def fail(*a, **k):
        raise AssertionError("decoded despite the cache")

    with monkeypatch.context() as m:
        m.setattr(mnist_m, "decode_folder", fail)
        hit = load_domain(f"mnist_m:{root}", "train", cache_dir=cache)
    np.testing.assert_array_equal(hit.images, first.images)
    # Relabelling (a changed labels file) invalidates the cache.
    (root / "mnist_m_train_labels.txt").write_text("00000000.png 9\n00000001.png 8\n")
    d = load_domain(f"mnist_m:{root}", "train", cache_dir=cache)
    assert d.labels.tolist() == [9, 8]


def test_missing_directory_folder_and_labels(tmp_path, cache):
    with pytest.raises(FileNotFoundError, match="nope does not exist"):
        load_domain(f"mnist_m:{tmp_path / 'nope'}", "train", cache_dir=cache)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="mnist_m_train does not exist"):
        load_domain(f"mnist_m:{tmp_path / 'empty'}", "train", cache_dir=cache)
    root = tmp_path / "mm"
    make_mnist_m(root)
    os.remove(root / "mnist_m_test_labels.txt")
    with pytest.raises(FileNotFoundError, match="mnist_m_test_labels.txt not found"):
        load_domain(f"mnist_m:{root}", "test", cache_dir=cache)


@pytest.mark.parametrize("line", ["00000000.png", "00000000.png five", "00000000.png 12", "a b c"])
def test_unparseable_label_line(tmp_path, cache, line):
    root = tmp_path / "mm"
    make_mnist_m(root)
    (root / "mnist_m_test_labels.txt").write_text(f"00000001.png 3\n{line}\n")
    with pytest.raises(ValueError, match=r"mnist_m_test_labels.txt:2: expected '<file>.png <digit 0-9>'"):
        load_domain(f"mnist_m:{root}", "test", cache_dir=cache)


def test_label_names_missing_png(tmp_path, cache):
    root = tmp_path / "mm"
    make_mnist_m(root)
    (root / "mnist_m_test_labels.txt").write_text("00000001.png 3\n\n00000099.png 4\n")
    with pytest.raises(FileNotFoundError, match=r"labels.txt:3: names .*00000099.png, which does not exist"):
        load_domain(f"mnist_m:{root}", "test", cache_dir=cache)


def test_empty_labels_file(tmp_path, cache):
    root = tmp_path / "mm"
    make_mnist_m(root)
    (root / "mnist_m_test_labels.txt").write_text("\n")
    with pytest.raises(ValueError, match="lists no images"):
        load_domain(f"mnist_m:{root}", "test", cache_dir=cache)
