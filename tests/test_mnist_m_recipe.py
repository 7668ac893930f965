"""The MNIST-M recipe (daaa_tf.data.mnist_m_recipe, trainers.make_mnist_m) and its tfds builders, on tiny data.

The MNIST idx files are written here in the real format (tests/test_data_mnist.py), the photos are a few
random PNGs, so everything runs offline in seconds.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from test_data_mnist import make_mnist

from daaa_tf.data import load_domain
from daaa_tf.data import mnist_m_recipe as recipe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_photos(folder, sizes=((40, 50), (31, 64)), seed=0):
    """Random colour PNGs of ``sizes`` (H, W) in ``folder``; returns {file name: array}."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    out = {}
    for i, (h, w) in enumerate(sizes):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(img).save(os.path.join(folder, f"photo{i}.png"))
        out[f"photo{i}.png"] = img
    return out


@pytest.fixture
def tiny(tmp_path):
    """(mnist dir, {split: (digits, labels)}, photos dir, photos) with 12 train / 6 test digits, 2 photos."""
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    digits = make_mnist(str(mnist), n_train=12, n_test=6)
    photos_dir = tmp_path / "photos"
    photos = write_photos(str(photos_dir))
    return str(mnist), digits, str(photos_dir), photos


def test_blend_is_the_absolute_difference_per_channel():
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 256, (3, 4, 4, 3), dtype=np.uint8)
    photo = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)  # the digit's size: the patch is the whole photo
    out = recipe.blend(digits, [photo], np.zeros(3, int), np.random.default_rng(1))
    expected = np.abs(photo.astype(int)[None] - digits.astype(int)).astype(np.uint8)
    assert out.dtype == np.uint8 and np.array_equal(out, expected)
    # Larger photos: each patch is a crop at the positions the rng draws (top, then left), per image.
    photos = [rng.integers(0, 256, (9, 7, 3), dtype=np.uint8), rng.integers(0, 256, (5, 11, 3), dtype=np.uint8)]
    ids = np.array([1, 0, 1])
    out = recipe.blend(digits, photos, ids, np.random.default_rng(5))
    draw = np.random.default_rng(5)
    for i in range(3):
        p = photos[ids[i]]
        top, left = draw.integers(0, p.shape[0] - 3), draw.integers(0, p.shape[1] - 3)
        patch = p[top:top + 4, left:left + 4].astype(int)
        assert np.array_equal(out[i], np.abs(patch - digits[i].astype(int)).astype(np.uint8))
    white = np.full((1, 4, 4, 3), 255, np.uint8)  # a white stroke inverts the patch, black keeps it
    assert np.array_equal(recipe.blend(white, [photo], [0], rng)[0], 255 - photo)
    assert np.array_equal(recipe.blend(np.zeros_like(white), [photo], [0], rng)[0], photo)


def test_build_release_is_read_back_by_mnist_m_with_its_labels_and_counts(tiny, tmp_path):
    mnist, digits, _, photos = tiny
    out = str(tmp_path / "mnist_m")
    assert recipe.build_release(mnist, out, photos, {"train": 10, "test": 5}, seed=3) == {"train": 10, "test": 5}
    for split, n in (("train", 10), ("test", 5)):
        assert sorted(os.listdir(os.path.join(out, f"mnist_m_{split}"))) == [f"{i:08d}.png" for i in range(n)]
        lines = open(os.path.join(out, f"mnist_m_{split}_labels.txt")).read().splitlines()
        assert lines == [f"{i:08d}.png {int(y)}" for i, y in enumerate(digits[split][1][:n])]
        domain = load_domain(f"mnist_m:{out}", split, 28, role="target")
        assert domain.num_examples == n and domain.class_names == [str(i) for i in range(10)]
        images, labels = zip(*domain.dataset().as_numpy_iterator())
        assert list(labels) == list(digits[split][1][:n])
        _, made, _ = next(s for s in recipe.make_splits(mnist, photos, {"train": 10, "test": 5}, 3)
                          if s[0] == split)
        assert np.array_equal(np.stack(images), made)  # PNG is lossless: read back pixel for pixel
        # Every image is |patch - digit| of one of the photos: where the digit is 0 the photo shows through.
        assert made.shape == (n, 28, 28, 3) and made.dtype == np.uint8
    assert os.path.isfile(os.path.join(out, "recipe.json"))


def test_the_recipe_is_deterministic_from_its_seed(tiny):
    mnist, _, _, photos = tiny
    sizes = {"train": 8, "test": 4}

    def images(seed):
        return [x for _, x, _ in recipe.make_splits(mnist, photos, sizes, seed)]

    first, again, other = images(7), images(7), images(8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
    with pytest.raises(ValueError, match="--train_size=13: MNIST train has only 12 digits"):
        list(recipe.make_splits(mnist, photos, {"train": 13}, 0))


def test_folder_photos_keeps_usable_images_and_errors_are_one_line_naming_photos(tmp_path):
    folder = tmp_path / "photos"
    photos = write_photos(str(folder), sizes=((40, 50), (10, 60)))  # the second is below 28 px: skipped
    (folder / "notes.txt").write_text("not an image")  # other suffixes are ignored
    found = recipe.folder_photos(str(folder))
    assert list(found) == ["photo0.png"] and np.array_equal(found["photo0.png"], photos["photo0.png"])
    errors = []
    with pytest.raises(FileNotFoundError) as e:
        recipe.folder_photos(str(tmp_path / "missing"))
    errors.append(str(e.value))
    with pytest.raises(ValueError) as e:
        recipe.folder_photos(str(folder), min_side=100)
    errors.append(str(e.value))
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError) as e:
        recipe.folder_photos(str(folder))
    errors.append(str(e.value))
    assert all(msg.startswith("--photos: ") and "\n" not in msg for msg in errors), errors
    assert "missing is not a folder" in errors[0] and "no image of at least 100x100" in errors[1]
    assert "broken.jpg: not a readable image" in errors[2]


def run_make(args):
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "trainers.make_mnist_m", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)


def test_recoloured_views_are_the_six_channel_orders_negatives_and_half_sizes():
    rng = np.random.default_rng(3)
    big = rng.integers(0, 256, (60, 58, 3), dtype=np.uint8)
    small = rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)  # half size 20 x 35: below 28, no half view
    photos = {"big": big, "small": small}
    assert recipe.photo_views(photos) == photos  # "original": the photos as they are
    views = recipe.photo_views(photos, "recoloured")
    assert len(views) == 6 * 3 + 6 * 2
    bgr = big[..., ::-1]
    assert np.array_equal(views["big.bgr"], bgr) and np.array_equal(views["big.rgb"], big)
    assert np.array_equal(views["big.bgr.negative"], 255 - bgr)
    assert np.array_equal(views["big.gbr.half"], big[::2, ::2][..., [1, 2, 0]])
    assert "small.rgb.half" not in views and np.array_equal(views["small.brg"], small[..., [2, 0, 1]])
    orders = {name.split(".")[1] for name in views}
    assert orders == {"rgb", "rbg", "grb", "gbr", "brg", "bgr"}
    assert all(v.dtype == np.uint8 and v.flags["C_CONTIGUOUS"] for v in views.values())
    with pytest.raises(recipe.UserError, match="--photo_views='grey': expected one of original, recoloured"):
        recipe.photo_views(photos, "grey")


def test_leaf_radius_is_the_inverse_of_the_r_cubed_law():
    # CDF of p(r) ~ r^-3 on [a, b], integrated by hand: F(r) = (a^-2 - r^-2) / (a^-2 - b^-2).
    a, b = 3.0, 120.0
    for u in (0.0, 0.1, 0.5, 0.9, 0.999):
        r = recipe.leaf_radius(u, a, b)
        assert a <= r <= b and abs((a ** -2 - r ** -2) / (a ** -2 - b ** -2) - u) < 1e-12
    assert recipe.leaf_radius(0.0, a, b) == pytest.approx(a) and recipe.leaf_radius(1.0, a, b) == pytest.approx(b)


def test_dead_leaves_cover_the_plane_with_discs_of_the_given_colours():
    colours = np.array([[10, 20, 30], [200, 100, 0], [0, 255, 7]], np.uint8)
    img = recipe.dead_leaves(np.random.default_rng(0), colours, height=40, width=60, r_min=2, r_max=15)
    assert img.shape == (40, 60, 3) and img.dtype == np.uint8
    used = {tuple(c) for c in img.reshape(-1, 3)}
    assert used == {tuple(c) for c in colours}  # every pixel painted (none left black), all three colours used
    # Occlusion edges: neighbouring pixels differ often, but most lie inside one disc.
    edges = np.mean(np.any(img[:, 1:] != img[:, :-1], axis=-1))
    assert 0.02 < edges < 0.5
    again = recipe.dead_leaves(np.random.default_rng(0), colours, height=40, width=60, r_min=2, r_max=15)
    assert np.array_equal(img, again)


def test_dead_leaves_photos_take_their_colours_from_the_photos(tiny):
    photos = tiny[3]
    made = recipe.dead_leaves_photos(photos, count=2, seed=1, samples=50)
    assert sorted(made) == ["dead_leaves_000", "dead_leaves_001"]
    assert all(img.shape == (321, 481, 3) for img in made.values())
    palette = {tuple(c) for img in photos.values() for c in img.reshape(-1, 3)}
    assert {tuple(c) for img in made.values() for c in img.reshape(-1, 3)} <= palette
    again = recipe.dead_leaves_photos(photos, count=2, seed=1, samples=50)
    assert all(np.array_equal(made[k], again[k]) for k in made)
    other = recipe.dead_leaves_photos(photos, count=1, seed=2, samples=50)
    assert not np.array_equal(made["dead_leaves_000"], other["dead_leaves_000"])


def test_the_entry_point_builds_on_dead_leaves(tiny, tmp_path):
    mnist = tiny[0]
    out = tmp_path / "leaves"
    proc = run_make([f"--mnist={mnist}", f"--out={out}", "--photos=dead_leaves", "--dead_leaves_count=3",
                     "--train_size=4", "--test_size=2", "--seed=3"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(out / "recipe.json") as f:
        assert json.load(f)["photos"] == ["dead_leaves_000", "dead_leaves_001", "dead_leaves_002"]
    # The same images as the recipe on the packaged photos' colours, dead leaves and blend seeded by --seed.
    leaves = recipe.dead_leaves_photos(recipe.packaged_photos(), 3, seed=3)
    test = next(images for split, images, _ in recipe.make_splits(mnist, leaves, {"train": 4, "test": 2}, 3)
                if split == "test")
    domain = load_domain(f"mnist_m:{out}", "test", 28, role="target")
    assert [x.tobytes() for x, _ in domain.dataset().as_numpy_iterator()] == [x.tobytes() for x in test]


def test_the_entry_point_writes_the_release_and_bad_photos_are_one_error_line(tiny, tmp_path):
    mnist, digits, photos_dir, _ = tiny
    out = tmp_path / "made"
    proc = run_make([f"--mnist={mnist}", f"--out={out}", f"--photos={photos_dir}", "--train_size=4",
                     "--test_size=3", "--seed=2"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"--target=mnist_m:{out}" in proc.stdout
    assert len(os.listdir(out / "mnist_m_train")) == 4 and len(os.listdir(out / "mnist_m_test")) == 3
    domain = load_domain(f"mnist_m:{out}", "test", 28, role="target")
    assert [int(y) for _, y in domain.dataset().as_numpy_iterator()] == list(digits["test"][1][:3])
    recoloured = tmp_path / "recoloured"  # --photo_views: the same digits over 18 views of each photo
    proc = run_make([f"--mnist={mnist}", f"--out={recoloured}", f"--photos={photos_dir}", "--train_size=4",
                     "--test_size=3", "--seed=2", "--photo_views=recoloured"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(recoloured / "recipe.json") as f:
        assert len(json.load(f)["photos"]) == 2 * 12  # photos under 56 pixels high: no half-size view
    assert (recoloured / "mnist_m_test_labels.txt").read_text() == (out / "mnist_m_test_labels.txt").read_text()
    proc = run_make([f"--mnist={mnist}", f"--out={tmp_path / 'other'}", f"--photos={tmp_path / 'nope'}"])
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and errors == [f"error: --photos: {tmp_path / 'nope'} is not a folder of "
                                                "photographs"], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


# --- the tfds builders (daaa_tf.data.tfds_mnist_m) -----------------------------------------------------------


@pytest.fixture
def tfds_mod():
    pytest.importorskip("tensorflow_datasets", reason="tensorflow_datasets is not installed")
    from daaa_tf.data import tfds_mnist_m

    return tfds_mnist_m


def _examples(builder, split):
    """The (label, image bytes) pairs of a prepared split, sorted (tfds shuffles the stored order)."""
    ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    return sorted((int(y), x.tobytes()) for x, y in ds.as_numpy_iterator())


def test_tfds_recipe_builder_makes_the_recipe_from_manual_dir(tiny, tmp_path, tfds_mod, monkeypatch):
    mnist, digits, photos_dir, photos = tiny
    os.rename(photos_dir, os.path.join(mnist, "photos"))  # manual_dir: the idx files and photos/
    config = tfds_mod.MnistMRecipeConfig(name="tiny", train_size=12, test_size=6, seed=4, photo_views="recoloured")
    data_dir = str(tmp_path / "tfds")
    builder = tfds_mod.prepare("mnist_m_recipe", mnist, data_dir, config)
    assert {s: builder.info.splits[s].num_examples for s in ("train", "test")} == {"train": 12, "test": 6}
    assert builder.info.supervised_keys == ("image", "label")
    views = recipe.photo_views(photos, "recoloured")
    for split, images, labels in recipe.make_splits(mnist, views, {"train": 12, "test": 6}, 4):
        assert _examples(builder, split) == sorted((int(y), x.tobytes()) for x, y in zip(images, labels))
    # The tfds:NAME domain spec reads it (TFDS_DATA_DIR, never a download).
    monkeypatch.setenv("TFDS_DATA_DIR", data_dir)
    domain = load_domain("tfds:mnist_m_recipe/tiny", "test", 32, role="target")
    assert domain.num_examples == 6 and domain.class_names == [str(i) for i in range(10)]
    got = [(x.shape, int(y)) for x, y in domain.dataset().as_numpy_iterator()]
    assert sorted(y for _, y in got) == sorted(int(y) for y in digits["test"][1])
    assert {shape for shape, _ in got} == {(32, 32, 3)}


def test_tfds_recipe_builder_defaults_to_the_packaged_photos(tiny, tmp_path, tfds_mod):
    mnist = tiny[0]
    config = tfds_mod.MnistMRecipeConfig(name="tiny_packaged", train_size=3, test_size=2)
    builder = tfds_mod.prepare("mnist_m_recipe", mnist, str(tmp_path / "tfds"), config)
    assert builder.info.splits["train"].num_examples == 3 and builder.info.splits["test"].num_examples == 2
    images = [x for x, _ in builder.as_dataset(split="test", as_supervised=True).as_numpy_iterator()]
    made = next(x for s, x, _ in recipe.make_splits(mnist, recipe.packaged_photos(), {"train": 3, "test": 2})
                if s == "test")
    assert sorted(x.tobytes() for x in images) == sorted(x.tobytes() for x in made)


def test_tfds_release_builder_reads_the_release_layout(tiny, tmp_path, tfds_mod, monkeypatch):
    mnist, digits, _, photos = tiny
    release = str(tmp_path / "release")
    recipe.build_release(mnist, release, photos, {"train": 7, "test": 4}, seed=1)
    data_dir = str(tmp_path / "tfds")
    monkeypatch.setenv("TFDS_DATA_DIR", data_dir)
    with pytest.raises(FileNotFoundError, match="not prepared.*python -m daaa_tf.data.tfds_mnist_m "
                                                "mnist_m_release MANUAL_DIR"):
        load_domain("tfds:mnist_m_release", "test", 28, role="target")
    builder = tfds_mod.prepare("mnist_m_release", release, data_dir)
    for split, images, labels in recipe.make_splits(mnist, photos, {"train": 7, "test": 4}, 1):
        assert _examples(builder, split) == sorted((int(y), x.tobytes()) for x, y in zip(images, labels))
    domain = load_domain("tfds:mnist_m_release", "train", 28, role="target")
    assert domain.num_examples == 7
    from daaa_tf.data.identity import data_identity  # the run fingerprints' identity of a prepared dataset

    first = data_identity("tfds:mnist_m_release")
    assert first["spec"] == "tfds:mnist_m_release" and data_identity("tfds:mnist_m_release") == first
    shard = next(p for p in os.listdir(builder.data_dir) if ".tfrecord" in p)
    with open(os.path.join(builder.data_dir, shard), "ab") as f:
        f.write(b"x")
    assert data_identity("tfds:mnist_m_release") != first
    assert sorted(int(y) for _, y in domain.dataset().as_numpy_iterator()) == sorted(digits["train"][1][:7])
    with pytest.raises(FileNotFoundError, match="manual_dir .* is not a folder"):
        tfds_mod.prepare("mnist_m_release", str(tmp_path / "none"), data_dir)
    with pytest.raises(ValueError, match="expected one of"):
        tfds_mod.prepare("mnist", release, data_dir)
