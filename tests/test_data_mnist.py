"""mnist:DIR - the idx reader on small files written in the real format (plain and gzipped)."""

import gzip
import os

import numpy as np
import pytest

from daaa_tf.data import load_domain
from daaa_tf.data.mnist import IMAGE_MAGIC, LABEL_MAGIC, read_idx


def idx_bytes(arr, magic):
    arr = np.asarray(arr, np.uint8)
    head = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return head + arr.tobytes()


def write(path, data):
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)


def make_mnist(root, n_train=12, n_test=6, gz_train=False, gz_test=True, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for split, n, gz, (img_name, lab_name) in [
            ("train", n_train, gz_train, ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")),
            ("test", n_test, gz_test, ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))]:
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        ext = ".gz" if gz else ""
        write(os.path.join(root, img_name + ext), idx_bytes(images, IMAGE_MAGIC))
        write(os.path.join(root, lab_name + ext), idx_bytes(labels, LABEL_MAGIC))
        out[split] = (images, labels)
    return out


@pytest.mark.parametrize("split,n", [("train", 12), ("test", 6)])
def test_happy_path_plain_and_gz(tmp_path, split, n):
    raw = make_mnist(tmp_path)
    d = load_domain(f"mnist:{tmp_path}", split)
    assert d.name == f"mnist:{tmp_path}"
    assert d.images.shape == (n, 32, 32, 3) and d.images.dtype == np.uint8
    np.testing.assert_array_equal(d.labels, raw[split][1])
    assert d.labels.dtype == np.int32 and d.num_classes == 10 and d.num_examples == n
    np.testing.assert_array_equal(d.images[..., 0], d.images[..., 1])
    x, y = next(iter(d.dataset()))
    assert x.shape == (32, 32, 3) and x.dtype.name == "uint8" and y.dtype.name == "int32"


def test_native_size_keeps_pixels_and_resize_keeps_flat_images(tmp_path):
    raw = make_mnist(tmp_path)
    d28 = load_domain(f"mnist:{tmp_path}", "train", image_size=np.int64(28))  # numpy ints are fine
    np.testing.assert_array_equal(d28.images[..., 2], raw["train"][0])
    # A constant image stays constant after the bilinear 28 -> 32 resize.
    flat = np.full((2, 28, 28), 200, np.uint8)
    write(tmp_path / "t10k-images-idx3-ubyte.gz", idx_bytes(flat, IMAGE_MAGIC))
    write(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes([3, 4], LABEL_MAGIC))
    assert (load_domain(f"mnist:{tmp_path}", "test").images == 200).all()


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        load_domain(f"mnist:{tmp_path / 'nope'}", "train")


def test_empty_directory_names_the_expected_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\[\.gz\] not found"):
        load_domain(f"mnist:{tmp_path}", "train")


def test_missing_label_file(tmp_path):
    make_mnist(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_domain(f"mnist:{tmp_path}", "test")


def test_wrong_magic(tmp_path):
    make_mnist(tmp_path)
    # Images and labels swapped: a labels file where images are expected.
    write(tmp_path / "train-images-idx3-ubyte", idx_bytes(np.zeros((12, 28, 28)), LABEL_MAGIC))
    with pytest.raises(ValueError, match="magic number 2049, expected 2051"):
        load_domain(f"mnist:{tmp_path}", "train")


def test_truncated_body(tmp_path):
    make_mnist(tmp_path)
    data = idx_bytes(np.zeros((12, 28, 28)), IMAGE_MAGIC)
    write(tmp_path / "train-images-idx3-ubyte", data[:-100])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: idx body has 9308 bytes, expected 9408.*trunc"):
        load_domain(f"mnist:{tmp_path}", "train")


def test_truncated_header_and_corrupt_gzip(tmp_path):
    write(tmp_path / "x", b"\x00\x00")
    with pytest.raises(ValueError, match="too short"):
        read_idx(str(tmp_path / "x"), IMAGE_MAGIC)
    gz = gzip.compress(idx_bytes(np.zeros((3, 28, 28)), IMAGE_MAGIC))
    (tmp_path / "y.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(ValueError, match="y.gz: not a readable"):
        read_idx(str(tmp_path / "y.gz"), IMAGE_MAGIC)


def test_count_mismatch(tmp_path):
    make_mnist(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros(11), LABEL_MAGIC))
    with pytest.raises(ValueError, match="holds 12 images but .* holds 11 labels"):
        load_domain(f"mnist:{tmp_path}", "train")


def test_label_out_of_range(tmp_path):
    make_mnist(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.full(12, 10), LABEL_MAGIC))
    with pytest.raises(ValueError, match="label 10, expected digits 0-9"):
        load_domain(f"mnist:{tmp_path}", "train")
