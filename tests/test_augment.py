"""Colour augmentation (``--augment_streams``): colours only, deterministic per (seed, step), and in the DAAA
step only the target network's view of the chosen streams changes (M_post and the source net see clean x_t)."""

import numpy as np
import tensorflow as tf

from daaa_tf.data.mixing import stream_counts
from daaa_tf.method.augment import colour_augment
from daaa_tf.method.daaa import build_daaa
from tests.test_adaptation import make_batch, make_cfg, make_source


def test_colour_augment_changes_colours_not_positions():
    rng = np.random.default_rng(0)
    img = np.full((6, 8, 8, 3), 40, np.uint8)
    img[:, 2, 5] = rng.integers(150, 256, (6, 3))  # one distinct pixel per image
    seed = tf.constant([3, 7], tf.int64)
    out = colour_augment(img, seed).numpy()
    assert out.shape == img.shape and out.min() >= 0 and out.max() <= 255
    for i in range(len(img)):
        # every background pixel maps to one colour, and the marked pixel keeps a different one at its place
        bg = out[i].reshape(-1, 3)
        bg = np.delete(bg, 2 * 8 + 5, axis=0)
        assert np.ptp(bg, axis=0).max() < 1e-4
        assert np.abs(out[i, 2, 5] - bg[0]).max() > 1.0
    np.testing.assert_array_equal(out, colour_augment(img, seed).numpy())  # stateless: same seed, same result
    assert np.abs(out - colour_augment(img, tf.constant([3, 8], tf.int64)).numpy()).max() > 1.0
    # per image: not every image gets the same transform
    assert len({tuple(np.round(out[i, 0, 0], 3)) for i in range(len(img))}) > 1


def test_augmented_target_stream_changes_only_the_target_view():
    cfg = make_cfg(augment_streams=("t",), seed=0)
    source = make_source()
    model, counts = build_daaa(cfg, source, tf.distribute.get_strategy())
    assert model.augment_keys == ["xt"]
    batch = {k: tf.constant(v) for k, v in make_batch(stream_counts(8, cfg.proportions, cfg.streams)).items()}
    model.em_active.assign(1.0)
    model.threshold.assign(0.0)  # keep every target sample so L_EM sees the augmented view
    plain_cfg = make_cfg(seed=0)
    plain, _ = build_daaa(plain_cfg, source, tf.distribute.get_strategy())
    plain.em_active.assign(1.0)
    plain.threshold.assign(0.0)
    aug_train, _ = model.compute_losses(batch, training=True)
    ref_train, _ = plain.compute_losses(batch, training=True)
    aug_eval, _ = model.compute_losses(batch, training=False)
    ref_eval, _ = plain.compute_losses(batch, training=False)
    # L_CE only sees x_s, x~t: unchanged; L_EM and L_AT see the augmented x_t: changed.
    np.testing.assert_allclose(aug_train["ce"], ref_train["ce"], rtol=1e-5)
    assert abs(float(aug_train["em"]) - float(ref_train["em"])) > 1e-4
    assert abs(float(aug_train["at"]) - float(ref_train["at"])) > 1e-6
    for k in ("ce", "em", "at"):  # never at evaluation
        np.testing.assert_allclose(aug_eval[k], ref_eval[k], rtol=1e-5)


def test_cutout_greys_one_square_and_leaves_the_rest_as_colour_augment():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (40, 16, 16, 3)).astype(np.uint8)
    seed = tf.constant([5, 9], tf.int64)
    plain = colour_augment(img, seed).numpy()
    cut = colour_augment(img, seed, cutout=0.25).numpy()  # side round(0.25 * 16) = 4
    full_squares, clipped_low, clipped_high = 0, 0, 0
    for i in range(len(img)):
        rows, cols = np.nonzero(np.all(cut[i] == 127.5, axis=-1))
        # the greyed pixels form one axis-aligned rectangle of at most 4 x 4, clipped only at the border
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert len(rows) == h * w and h <= 4 and w <= 4
        assert h == 4 or rows.min() == 0 or rows.max() == 15
        assert w == 4 or cols.min() == 0 or cols.max() == 15
        full_squares += (h == 4 and w == 4)
        clipped_low += (h < 4 and rows.min() == 0) or (w < 4 and cols.min() == 0)
        clipped_high += (h < 4 and rows.max() == 15) or (w < 4 and cols.max() == 15)
        outside = np.ones((16, 16), bool)
        outside[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = False
        np.testing.assert_array_equal(cut[i][outside], plain[i][outside])  # same colour draws as without cutout
    assert 10 < full_squares < 40  # centres spread over the image: some squares clipped, most whole
    assert clipped_low and clipped_high  # centred on its pixel: clipped at the top/left border as at the bottom/right


def _augmented_losses(source, **cfg):
    """(model, training losses) of a DAAA model augmenting x_t with ``cfg``, every x_t kept by L_EM."""
    batch = {k: tf.constant(v) for k, v in make_batch(stream_counts(8, (0.35, 0.15, 0.35, 0.15),
                                                                    ("s", "tf", "t", "sf"))).items()}
    model, _ = build_daaa(make_cfg(augment_streams=("t",), seed=0, **cfg), source, tf.distribute.get_strategy())
    model.em_active.assign(1.0)
    model.threshold.assign(0.0)
    return model, model.compute_losses(batch, training=True)[0]


def _only_the_target_view_changes(plain, changed):
    np.testing.assert_allclose(plain["ce"], changed["ce"], rtol=1e-5)  # labelled streams untouched
    assert abs(float(plain["em"]) - float(changed["em"])) > 1e-5


def test_cutout_setting_reaches_the_target_view():
    source = make_source()
    results = {}
    for cutout in (0.0, 0.5):
        model, results[cutout] = _augmented_losses(source, augment_cutout=cutout)
        assert model.augment_cutout == cutout
    _only_the_target_view_changes(results[0.0], results[0.5])


def test_cutout_without_augmented_streams_is_refused_in_code_too():
    """A config built in code (not through the flag parser) gets the parser's one line from the model."""
    import pytest

    from daaa_tf import UserError

    with pytest.raises(UserError, match="--augment_cutout=0.5 .* --augment_streams is empty"):
        build_daaa(make_cfg(augment_cutout=0.5, seed=0), make_source(), tf.distribute.get_strategy())


def _np_shift(img, dy, dx):
    """Independent reference: output pixel (r, c) is input pixel (r - dy, c - dx), clamped into the image."""
    h, w = img.shape[:2]
    r = np.clip(np.arange(h) - dy, 0, h - 1)
    c = np.clip(np.arange(w) - dx, 0, w - 1)
    return img[r][:, c]


def test_shift_translates_each_image_by_at_most_k_pixels_with_borders_repeated():
    from daaa_tf.method.augment import shift_images

    rng = np.random.default_rng(2)
    img = rng.uniform(0, 255, (60, 9, 7, 3)).astype(np.float32)  # non-square: rows and columns not swapped
    out = shift_images(tf.constant(img), 2, tf.constant([4, 1], tf.int64)).numpy()
    seen = set()
    for i in range(len(img)):
        hits = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                if np.array_equal(out[i], _np_shift(img[i], dy, dx))]
        assert len(hits) == 1 and max(map(abs, hits[0])) <= 2, hits
        seen.add(hits[0])
    assert len(seen) > 15  # 25 possible offsets, drawn per image (both signs, both axes)
    assert {dy for dy, _ in seen} == {-2, -1, 0, 1, 2} and {dx for _, dx in seen} == {-2, -1, 0, 1, 2}


def test_shift_comes_first_and_leaves_the_colour_and_cutout_draws_as_they_were():
    from daaa_tf.method.augment import shift_images

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (12, 16, 16, 3)).astype(np.uint8)
    seed = tf.constant([5, 9], tf.int64)
    moved = shift_images(tf.cast(img, tf.float32), 3, tf.random.experimental.stateless_split(seed, 6)[5])
    np.testing.assert_array_equal(colour_augment(img, seed, cutout=0.25, shift=3).numpy(),
                                  colour_augment(moved, seed, cutout=0.25).numpy())
    assert np.abs(moved - img).max() > 0


def test_shift_setting_reaches_the_target_view_and_is_refused_with_l_at():
    import pytest

    from daaa_tf import UserError

    source = make_source()
    results = {}
    for shift in (0, 3):
        model, results[shift] = _augmented_losses(source, augment_shift=shift, beta=0.0)
        assert model.augment_shift == shift
    _only_the_target_view_changes(results[0], results[3])
    with pytest.raises(UserError, match="--augment_shift=3 moves pixels.*--beta=0"):
        build_daaa(make_cfg(augment_streams=("t",), augment_shift=3, beta=0.5, seed=0), source,
                   tf.distribute.get_strategy())
    with pytest.raises(UserError, match="--augment_shift=3 .* --augment_streams is empty"):
        build_daaa(make_cfg(augment_shift=3, beta=0.0, seed=0), source, tf.distribute.get_strategy())
