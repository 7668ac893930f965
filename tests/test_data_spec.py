"""load_domain's spec parsing and the offline tfds error (never touches the network)."""

import time

import pytest

from daaa_tf.data import load_domain


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Nothing here should build anything; if it does, it lands in a temporary directory."""
    monkeypatch.setenv("DAAA_TF_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("spec", ["", "   ", "imagenet", "svhn:/data", "mnist", "mnist:", "office31:",
                                  "demo:svhn", "demo:", "tfds:"])
def test_unknown_or_malformed_spec(spec):
    with pytest.raises(ValueError, match="expected"):
        load_domain(spec, "train")


def test_non_string_spec():
    with pytest.raises(ValueError, match="domain spec: expected one of"):
        load_domain(None, "train")


def test_bad_split_role_and_size():
    with pytest.raises(ValueError, match=r"demo: split must be one of \('train', 'test'\), got 'val'"):
        load_domain("demo", "val")
    with pytest.raises(ValueError, match="role must be one of"):
        load_domain("demo", "train", role="both")
    for bad in ("32", 4, 32.0):
        with pytest.raises(ValueError, match=f"image_size must be an integer >= 8, got {bad!r}"):
            load_domain("demo", "train", image_size=bad)


def test_tfds_not_prepared_fails_fast_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    start = time.time()
    with pytest.raises(FileNotFoundError) as e:
        load_domain("tfds:mnist", "train")
    assert time.time() - start < 30
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"tfds:mnist is not downloaded in {tmp_path}")
    assert "tfds build mnist" in msg and "mnist:DIR" in msg


def test_tfds_unknown_name(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=r"^tfds:no_such_dataset_xyz: not a TensorFlow Datasets dataset"):
        load_domain("tfds:no_such_dataset_xyz", "train")
