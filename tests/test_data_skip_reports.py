"""Skipped (unreadable) images are reported to the user: the count and the first file name in a warning."""

import logging

import numpy as np
import pytest
from PIL import Image

from daaa_tf.data import load_domain


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _mnist_m(root, n=5):
    folder = root / "mnist_m_train"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:08d}.png")
        lines.append(f"{i:08d}.png {i % 10}\n")
    (root / "mnist_m_train_labels.txt").write_text("".join(lines))
    return folder


@pytest.mark.parametrize("cached", [False, True])
def test_mnist_m_reports_skipped_pngs(tmp_path, caplog, cached):
    folder = _mnist_m(tmp_path / "mm")
    (folder / "00000002.png").write_bytes(b"not a png")
    (folder / "00000003.png").write_bytes(b"\x89PNG\r\n")
    spec, cache = f"mnist_m:{tmp_path / 'mm'}", str(tmp_path / "cache")
    if cached:  # the second load comes from the cache and must report the same
        load_domain(spec, "train", cache_dir=cache)
        caplog.clear()
    with caplog.at_level(logging.WARNING):
        d = load_domain(spec, "train", cache_dir=cache)
    assert d.skipped == 2
    msgs = [m for m in _warnings(caplog) if "skipped" in m]
    assert len(msgs) == 1, _warnings(caplog)
    assert "skipped 2 " in msgs[0] and "00000002.png" in msgs[0] and str(folder) in msgs[0]


def test_mnist_m_without_bad_files_reports_nothing(tmp_path, caplog):
    _mnist_m(tmp_path / "mm")
    with caplog.at_level(logging.WARNING):
        d = load_domain(f"mnist_m:{tmp_path / 'mm'}", "train", cache_dir=str(tmp_path / "cache"))
    assert d.skipped == 0 and not [m for m in _warnings(caplog) if "skipped" in m]


@pytest.mark.parametrize("cached", [False, True])
def test_office31_reports_skipped_images(tmp_path, caplog, cached):
    for c, name in enumerate(("bike", "mug")):
        folder = tmp_path / "amazon" / "images" / name
        folder.mkdir(parents=True)
        for k in range(2):
            Image.fromarray(np.full((20, 24, 3), 40 * c + k, np.uint8)).save(folder / f"frame_{k:04d}.jpg")
    (tmp_path / "amazon" / "images" / "mug" / "frame_0001.jpg").write_bytes(b"not a jpeg")
    spec, cache = f"office31:{tmp_path}/amazon", str(tmp_path / "cache")
    if cached:
        load_domain(spec, "train", image_size=16, cache_dir=cache)
        caplog.clear()
    with caplog.at_level(logging.WARNING):
        d = load_domain(spec, "train", image_size=16, cache_dir=cache)
    assert d.skipped == 1 and d.num_examples == 3
    msgs = [m for m in _warnings(caplog) if "skipped" in m]
    assert len(msgs) == 1, _warnings(caplog)
    assert "skipped 1 " in msgs[0] and "frame_0001.jpg" in msgs[0] and "mug" in msgs[0]
