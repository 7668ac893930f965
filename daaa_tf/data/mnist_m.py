"""MNIST-M from its standard release layout (``mnist_m:DIR``).

``DIR/mnist_m_train/*.png``, ``DIR/mnist_m_test/*.png``, ``DIR/mnist_m_train_labels.txt`` and
``DIR/mnist_m_test_labels.txt`` with lines ``00000000.png 5``. The PNGs are decoded in a parallel tf.data
pass (59,001 train images: ~10 s on 2 cores; unreadable files are skipped and counted) and the decoded
arrays cached as an .npz keyed by the directory, the labels file's size and mtime and the folder's mtime
(~2 s to load), so later loads skip the decoding. Replacing a PNG in place without adding or removing
files keeps the folder's mtime: delete the cache file then.
"""

import os

import numpy as np
from absl import logging

from daaa_tf import MissingFileError, UserError
from daaa_tf.data.domains import (
    Domain,
    cache_root,
    check_split,
    decode_files,
    fingerprint,
    load_npz,
    require_dir,
    try_save_npz,
)
from daaa_tf.io import read_text_lines

CLASS_NAMES = [str(i) for i in range(10)]
CACHE_VERSION = 2


def parse_labels(path, folder):
    """Reads ``<file> <label>`` lines; returns (file names, int32 labels). Checks every named file exists."""
    if not os.path.isfile(path):
        raise MissingFileError(f"mnist_m: labels file {path} not found (expected lines like "
                               "'00000000.png 5')")
    present = set(os.listdir(folder))
    names, labels = [], []
    for lineno, line in enumerate(read_text_lines(path), 1):  # UTF-8 (BOM, CRLF allowed), else one line
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1] not in CLASS_NAMES:  # ASCII 0-9 only: not '²' or '٣'
            raise UserError(f"{path}:{lineno}: expected '<file>.png <digit 0-9>', got {line.strip()!r}")
        if parts[0] not in present:
            raise MissingFileError(f"{path}:{lineno}: names {os.path.join(folder, parts[0])}, "
                                   "which does not exist")
        names.append(parts[0])
        labels.append(int(parts[1]))
    if not names:
        raise UserError(f"mnist_m: labels file {path} lists no images")
    return names, np.asarray(labels, np.int32)


def decode_folder(folder, names, image_size):
    """Decodes ``folder/name`` for each name in a parallel tf.data pass.

    Returns (uint8 [M, S, S, 3], indices into ``names`` of the M files that decoded).
    """
    return decode_files([os.path.join(folder, n) for n in names], image_size)


def load_mnist_m(directory, split, image_size=32, cache_dir=None):
    """``mnist_m:DIR``: one split of MNIST-M as uint8 RGB [N, image_size, image_size, 3] (corrupt PNGs skipped)."""
    directory = os.path.abspath(os.path.expanduser(directory))
    spec = f"mnist_m:{directory}"
    check_split(spec, split)
    require_dir(directory, "mnist_m")
    folder = os.path.join(directory, f"mnist_m_{split}")
    require_dir(folder, "mnist_m")
    labels_path = os.path.join(directory, f"mnist_m_{split}_labels.txt")
    names, labels = parse_labels(labels_path, folder)

    st_labels, st_folder = os.stat(labels_path), os.stat(folder)
    key = fingerprint(CACHE_VERSION, directory, split, image_size, st_labels.st_size, st_labels.st_mtime_ns,
                      st_folder.st_mtime_ns)
    cache_path = os.path.join(cache_root(cache_dir), f"mnist_m-{split}-{key}.npz")
    cached = load_npz(cache_path)
    if cached is not None:
        images, labels, skipped = cached["images"], cached["labels"], list(cached["skipped"])
    else:
        images, keep = decode_folder(folder, names, image_size)
        kept = set(keep.tolist())
        skipped = [os.path.join(folder, n) for i, n in enumerate(names) if i not in kept]
        if not len(keep):
            raise UserError(f"mnist_m: none of the {len(names)} PNGs in {folder} could be decoded")
        labels = labels[keep]
        try_save_npz(cache_path, images=images, labels=labels, skipped=np.asarray(skipped, dtype=str))
    if skipped:
        logging.warning("mnist_m: skipped %d unreadable PNG(s) in %s (first: %s)", len(skipped), folder,
                        skipped[0])
    return Domain(spec, split, CLASS_NAMES, image_size, images=images, labels=labels, skipped_files=skipped)
