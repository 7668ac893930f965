"""The one image reader (daaa_tf.images): each mode decoded to the right uint8 RGB values, the pixel limit
(decompression bombs refused per file, with one line), and the readers that use it (training folders, predict)."""

import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import test_export_fixtures as fx
from PIL import Image

from daaa_tf import images
from daaa_tf.images import read_image

trained_model, exported = fx.trained_model, fx.exported  # session fixtures shared with the export tests


@pytest.fixture
def limit():
    """Sets the reader's pixel limit for one test (restored after it)."""
    old = images.max_pixels()
    yield images.set_max_pixels
    images.set_max_pixels(old)


def _png(path, width, height, bit_depth, colour_type, raw_rows):
    """A PNG written by hand (Pillow cannot write 16-bit RGB): ``raw_rows`` are the unfiltered scanlines."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    idat = zlib.compress(b"".join(b"\0" + row for row in raw_rows), 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def test_16_bit_grey_is_scaled_not_saturated(tmp_path):
    values = np.array([[0, 32768, 65535, 257, 65280]], np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode == "I;16"
        assert np.asarray(im.convert("RGB")).min() == 0 and (np.asarray(im.convert("RGB"))[0, 1:] == 255).all()
    rgb = read_image(tmp_path / "g16.png")
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 5, 3)
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 128, 255, 1, 254])
    assert (rgb == rgb[..., :1]).all()  # grey replicated
    # the same values as 32-bit integers (mode I, e.g. a TIFF), read as 16-bit
    Image.fromarray(values.astype(np.int32)).save(tmp_path / "g32.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "g32.tif")[0, :, 0], [0, 128, 255, 1, 254])


def test_16_bit_rgb_png_keeps_its_colours(tmp_path):
    row = struct.pack(">6H", 0xFFFF, 0x8000, 0x0000, 0x0000, 0xFFFF, 0x4000)
    rgb = read_image(_png(tmp_path / "rgb16.png", 2, 1, 16, 2, [row]))
    np.testing.assert_allclose(rgb[0].astype(int), [[255, 128, 0], [0, 255, 64]], atol=1)


def test_palette_colours_and_transparent_index(tmp_path):
    p = Image.new("P", (3, 1))
    p.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    p.putdata([0, 1, 2])
    p.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_image(tmp_path / "p.png")[0], [[255, 0, 0], [0, 255, 0], [0, 0, 255]])
    p.save(tmp_path / "p_t.png", transparency=1)  # green is transparent: shown on white
    np.testing.assert_array_equal(read_image(tmp_path / "p_t.png")[0], [[255, 0, 0], [255, 255, 255], [0, 0, 255]])
    p.save(tmp_path / "p.gif")
    np.testing.assert_array_equal(read_image(tmp_path / "p.gif")[0], [[255, 0, 0], [0, 255, 0], [0, 0, 255]])


@pytest.mark.parametrize("suffix, atol", [(".jpg", 8), (".tif", 0)])
def test_cmyk(tmp_path, suffix, atol):
    img = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # red
    img.paste((0, 0, 0, 128), (0, 4, 8, 8))  # 50 % black: grey 127
    img.save(tmp_path / f"c{suffix}", **({"quality": 95} if suffix == ".jpg" else {}))
    rgb = read_image(tmp_path / f"c{suffix}").astype(int)
    np.testing.assert_allclose(rgb[1, 1], [255, 0, 0], atol=atol)
    np.testing.assert_allclose(rgb[6, 6], [127, 127, 127], atol=atol)


def test_alpha_is_composited_on_white(tmp_path):
    rgba = np.array([[[10, 200, 30, 255], [10, 200, 30, 128], [10, 200, 30, 0]]], np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    notes = []
    rgb = read_image(tmp_path / "a.png", notes).astype(int)
    np.testing.assert_array_equal(rgb[0, 0], [10, 200, 30])
    np.testing.assert_allclose(rgb[0, 1], [(10 * 128 + 255 * 127) / 255, (200 * 128 + 255 * 127) / 255,
                                           (30 * 128 + 255 * 127) / 255], atol=0.51)
    np.testing.assert_array_equal(rgb[0, 2], [255, 255, 255])  # not the hidden colour
    assert notes == ["converted from mode RGBA to RGB (alpha composited on white)"]
    Image.fromarray(np.array([[[100, 255], [100, 0]]], np.uint8), "LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png")[0], [[100] * 3, [255] * 3])


def test_grey_and_one_bit(tmp_path):
    Image.fromarray(np.array([[0, 77, 255]], np.uint8)).save(tmp_path / "l.png")
    np.testing.assert_array_equal(read_image(tmp_path / "l.png")[0], [[0] * 3, [77] * 3, [255] * 3])
    Image.fromarray(np.array([[True, False, True]])).save(tmp_path / "b.png")
    with Image.open(tmp_path / "b.png") as im:
        assert im.mode == "1"
    np.testing.assert_array_equal(read_image(tmp_path / "b.png")[0], [[255] * 3, [0] * 3, [255] * 3])


def test_exif_orientation_is_applied(tmp_path):
    img = Image.fromarray(np.zeros((10, 30, 3), np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / "o.jpg", exif=exif)
    notes = []
    assert read_image(tmp_path / "o.jpg", notes).shape == (30, 10, 3)
    assert notes == ["rotated as its EXIF orientation says"]


def test_decompression_bomb_and_broken_files_are_one_line(tmp_path, limit):
    Image.new("RGB", (10, 10), (1, 2, 3)).save(tmp_path / "ok.png")
    Image.new("RGB", (11, 10)).save(tmp_path / "big.png")
    limit(100)
    assert read_image(tmp_path / "ok.png").shape == (10, 10, 3)  # at the limit: read
    with pytest.raises(ValueError) as e:
        read_image(tmp_path / "big.png")
    msg = str(e.value)
    assert str(tmp_path / "big.png") in msg and "110 pixels is over the limit of 100" in msg and "\n" not in msg
    Image.new("RGB", (30, 30)).save(tmp_path / "huge.png")  # over twice the limit: Pillow's own error
    with pytest.raises(ValueError, match="huge.png: refused"):
        read_image(tmp_path / "huge.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ValueError, match=r"bad.png: not a readable image \(") as e:
        read_image(tmp_path / "bad.png")
    assert "\n" not in str(e.value)
    with pytest.raises(FileNotFoundError, match="none.png: no such image file"):
        read_image(tmp_path / "none.png")


def test_training_readers_decode_with_it_and_skip_a_bomb(tmp_path, limit):
    """office31 (decoded in tf.data) and mnist_m (decoded once, cached) give the reader's pixels; a bomb is a skip."""
    from daaa_tf.data import load_domain

    grey16 = np.full((8, 8), 32768, np.uint16)
    rgba = np.zeros((8, 8, 4), np.uint8)  # fully transparent black: white
    for name in ("bike", "mug"):
        folder = tmp_path / "office" / "amazon" / "images" / name
        folder.mkdir(parents=True)
        Image.fromarray(grey16).save(folder / "a_grey16.png")
        Image.fromarray(rgba, "RGBA").save(folder / "b_rgba.png")
        Image.new("RGB", (9, 9)).save(folder / "c_bomb.png")  # 81 pixels > the limit of 64
    limit(64)
    d = load_domain(f"office31:{tmp_path / 'office'}/amazon", "train", image_size=8,
                    cache_dir=str(tmp_path / "cache"))
    assert d.skipped == 2 and all(p.endswith("c_bomb.png") for p in d.skipped_files)
    x = np.stack([img for img, _ in d.dataset().as_numpy_iterator()])
    assert x.shape == (4, 8, 8, 3)
    assert (x[0] == 128).all() and (x[1] == 255).all()  # not 255 (saturated) and not 0 (alpha dropped)

    mm = tmp_path / "mm"
    (mm / "mnist_m_train").mkdir(parents=True)
    Image.fromarray(grey16).save(mm / "mnist_m_train" / "00000000.png")
    Image.new("RGB", (9, 9)).save(mm / "mnist_m_train" / "00000001.png")
    (mm / "mnist_m_train_labels.txt").write_text("00000000.png 3\n00000001.png 4\n")
    d = load_domain(f"mnist_m:{mm}", "train", image_size=8, cache_dir=str(tmp_path / "cache"))
    assert d.skipped == 1 and d.skipped_files[0].endswith("00000001.png")
    assert (d.images == 128).all() and list(d.labels) == [3]


def bomb_png(path):
    """A real decompression bomb: a 16,000 x 12,000 (192 MP) black 1-bit PNG of ~25 kB."""
    row = b"\0" + bytes(2000)
    idat = zlib.compressobj(9)
    data = b"".join(idat.compress(row) for _ in range(12000)) + idat.flush()

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", 16000, 12000, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def test_predict_skips_a_bomb_and_classifies_the_others(exported, tmp_path):
    export_dir, _ = exported
    x = fx.digits()[2]
    Image.fromarray(x[0]).save(tmp_path / "a.png")
    Image.fromarray(x[1]).save(tmp_path / "c.png")
    bomb = bomb_png(tmp_path / "b_bomb.png")
    assert bomb.stat().st_size < 100_000
    proc = fx.run_module("export.predict", [f"--model={export_dir}/saved_model", str(tmp_path / "a.png"),
                                            str(bomb), str(tmp_path / "c.png")])
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if ": class " in line]
    assert [line.split(":")[0] for line in lines] == [str(tmp_path / "a.png"), str(tmp_path / "c.png")]
    errors = fx.error_lines(proc.stderr)
    assert errors[0].startswith(f"error: {bomb}: refused") and "Traceback" not in proc.stderr
    assert errors[-1] == "error: 1 of 3 image(s) could not be read"



def test_predict_reader_does_not_import_tensorflow(tmp_path):
    """export.predict with a .tflite model runs without TensorFlow: reading an image must not import it."""
    Image.new("RGBA", (5, 4)).save(tmp_path / "a.png")
    script = ("import sys\nfrom daaa_tf.serving import overlay\n"
              f"img, notes = overlay.read_image({str(tmp_path / 'a.png')!r}, (4, 5))\n"
              "print(img.shape, 'tensorflow' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": fx.ROOT})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[0] == "(4, 5, 3) False"
