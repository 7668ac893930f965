"""MNIST from the standard idx files (``mnist:DIR``), gzipped or plain.

The idx format: a big-endian 4-byte magic (0x00000803 = 2051 for ubyte images with 3 dims, 0x00000801 =
2049 for ubyte labels with 1 dim), then one big-endian uint32 per dimension, then the raw ubyte body.
"""

import gzip
import os
import zlib

import numpy as np

from daaa_tf import MissingFileError, UserError
from daaa_tf.data.domains import Domain, check_split, require_dir, resize_uint8, to_rgb

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CLASS_NAMES = [str(i) for i in range(10)]


def find_idx(directory, base):
    """``directory/base`` or ``directory/base.gz``; FileNotFoundError naming both if neither exists."""
    for name in (base, base + ".gz"):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    raise MissingFileError(f"mnist: {os.path.join(directory, base)}[.gz] not found (expected the standard "
                           f"MNIST idx files {', '.join(b for pair in FILES.values() for b in pair)})")


def read_idx(path, magic):
    """Parses one idx file into a uint8 array, checking the magic, the dimensions and the body length."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            with open(path, "rb") as f:
                raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise UserError(f"{path}: not a readable (gzip) idx file ({e})") from None
    ndim = magic & 0xFF
    kind = "images" if magic == IMAGE_MAGIC else "labels"
    if len(raw) < 4 + 4 * ndim:
        raise UserError(f"{path}: {len(raw)} bytes is too short for an idx {kind} header "
                        f"(expected magic {magic} and {ndim} dimensions)")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise UserError(f"{path}: idx magic number {found}, expected {magic} (MNIST {kind}, "
                        f"ubyte, {ndim} dims)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    body = memoryview(raw)[4 + 4 * ndim:]
    expected = int(np.prod(dims))
    if len(body) != expected:
        raise UserError(f"{path}: idx body has {len(body)} bytes, expected {expected} for dims {dims} "
                        f"({'truncated' if len(body) < expected else 'trailing bytes'})")
    return np.frombuffer(body, np.uint8).reshape(dims)


def read_mnist(directory, split):
    """Returns (images uint8 [N, H, W], labels int32 [N]) of one split, checked for consistency."""
    image_path = find_idx(directory, FILES[split][0])
    label_path = find_idx(directory, FILES[split][1])
    images = read_idx(image_path, IMAGE_MAGIC)
    labels = read_idx(label_path, LABEL_MAGIC).astype(np.int32)
    if len(images) != len(labels):
        raise UserError(f"mnist: {image_path} holds {len(images)} images but {label_path} holds "
                        f"{len(labels)} labels (expected equal counts)")
    if len(labels) == 0:
        raise UserError(f"mnist: {image_path} holds no images")
    if labels.max() > 9:
        raise UserError(f"mnist: {label_path} has label {labels.max()}, expected digits 0-9")
    return images, labels


def load_mnist(directory, split, image_size=32):
    """``mnist:DIR``: the idx files resized to ``image_size`` (bilinear) and replicated to RGB."""
    directory = os.path.abspath(os.path.expanduser(directory))
    spec = f"mnist:{directory}"
    check_split(spec, split)
    require_dir(directory, "mnist")
    images, labels = read_mnist(directory, split)
    rgb = to_rgb(resize_uint8(images[..., None], image_size))
    return Domain(spec, split, CLASS_NAMES, image_size, images=rgb, labels=labels)
