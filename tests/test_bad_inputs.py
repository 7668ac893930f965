"""Bad inputs, one row each (issue 10; docs/design.md, "Errors"): every row runs an entry point's flag parser and
``main`` in this process (``trainers.flags.parse`` + ``trainers.flags.call``, what ``run_main`` does under absl)
or calls a library function through ``trainers.flags.call``, and asserts

  * exit status 2 (0 for a counted skip) and exactly one ``error: ...`` line on stderr (predict: one per bad
    image plus the summary), holding the row's fragment (the file or flag named);
  * nothing lost: every file under the row's directory (the run directory and the row's own data) has the same
    sha256 afterwards and nothing was added, except the paths the row lists.

A few rows are also run as real processes (``test_real_process_prints_one_line``) to check that absl prints the
line once and no traceback. The shared inputs (a tiny source model, pair shards, MNIST and MNIST-M folders, a
SavedModel) are built once per module and never written by a row (checked at the end).
"""

import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np
import pytest
from absl import flags
from PIL import Image
from test_images import bomb_png

from daaa_tf import config
from trainers import flags as tflags

SIZE = 16
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
tflags.define_flags(*config.STAGES)  # every project flag; each entry point accepts the others' flags too


# --------------------------------------------------------------------------------------------- shared inputs


def idx_bytes(arr, magic):
    arr = np.asarray(arr, np.uint8)
    return magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape) + arr.tobytes()


def make_mnist(root, n_train=12, n_test=6):
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        with open(os.path.join(root, f"{prefix}-images-idx3-ubyte"), "wb") as f:
            f.write(idx_bytes(rng.integers(0, 256, (n, 28, 28)), 2051))
        with open(os.path.join(root, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
            f.write(idx_bytes(np.arange(n) % 10, 2049))


def make_mnist_m(root, n=12):
    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        os.makedirs(os.path.join(root, f"mnist_m_{split}"), exist_ok=True)
        lines = []
        for i in range(n):
            name = f"{i:08d}.png"
            Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(
                os.path.join(root, f"mnist_m_{split}", name))
            lines.append(f"{name} {i % 10}")
        with open(os.path.join(root, f"mnist_m_{split}_labels.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Read-only inputs shared by the rows."""
    from daaa_tf import runtime
    from daaa_tf.data.pair_writer import write_pair_shards
    from daaa_tf.models import build_classifier
    from daaa_tf.serving.writer import write_saved_model

    root = tmp_path_factory.mktemp("bad_inputs_data")
    runtime.set_seed(0)
    model = build_classifier("digit_cnn", 10, SIZE)
    model.save(root / "source.keras")
    rng = np.random.default_rng(0)
    for kind in ("source", "target"):
        images = rng.integers(0, 200, (40, SIZE, SIZE, 3), dtype=np.uint8)
        write_pair_shards(str(root / "pairs"), kind, images, 255 - images, np.arange(40) % 10, shard_size=16)
    make_mnist(str(root / "mnist"))
    make_mnist_m(str(root / "mnist_m"))
    write_saved_model(model, str(root / "export" / "saved_model"))
    Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(root / "digit.png")
    return root


def checksums(directory):
    out = {}
    for base, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return out


# ------------------------------------------------------------------------------------------------ the rows


@dataclass
class Row:
    id: str
    category: str  # data | flags | stages | export | predict | report
    module: str  # an entry point (parse + main), or "call" (``call(tmp, data)`` through trainers.flags.call)
    args: list  # command line; {run}, {tmp}, {data} are replaced by the row's run dir, its dir, the shared data
    fragment: str  # the one line must contain it (the file or flag named)
    setup: object = None  # setup(tmp, data): writes the row's bad input under tmp
    call: object = None
    status: int = 2  # 0: a counted skip (the fragment is then in a "note:" line)
    changes: tuple = ()  # paths (relative to tmp) a row may add or change
    errors: int = 1  # error lines expected (predict: one per bad image, plus the summary)
    extra: dict = field(default_factory=dict)


ADAPT = ["--run_dir={run}", f"--image_size={SIZE}", "--source_model={data}/source.keras", "--pairs_dir={data}/pairs",
         "--target=mnist_m:{data}/mnist_m", "--batch_size=8", "--proportions=0.25,0.25,0.25,0.25", "--epochs=1",
         "--steps_per_epoch=1", "--sync_every=1", "--eval_batch_size=8"]
OWN_PAIRS = [a for a in ADAPT if not a.startswith("--pairs_dir")] + ["--pairs_dir={tmp}/pairs"]
SOURCE = ["--run_dir={run}", f"--image_size={SIZE}", "--source=mnist:{data}/mnist", "--target=mnist_m:{data}/mnist_m",
          "--source_epochs=1", "--source_batch_size=4", "--eval_batch_size=8"]
GAN = ["--run_dir={run}", f"--image_size={SIZE}", "--source=mnist:{data}/mnist", "--target=mnist_m:{data}/mnist_m",
       "--cyclegan_steps=1", "--cyclegan_batch_size=2", "--cyclegan_steps_per_epoch=1", "--gen_width=4",
       "--gen_blocks=1", "--disc_width=4", "--cyclegan_precision=float32"]
EXPORT = ["--run_dir={run}", "--model={data}/source.keras", "--target=mnist_m:{data}/mnist_m", f"--image_size={SIZE}",
          "--num_parity=4", "--num_calibration=4"]
PREDICT = ["--model={data}/export/saved_model"]


def with_target(args, spec):
    return [a for a in args if not a.startswith("--target=")] + [f"--target={spec}"]


def with_source(args, spec):
    return [a for a in args if not a.startswith("--source=")] + [f"--source={spec}"]


# --- setups: each writes one bad thing under the row's directory


def copy_pairs(tmp, data):
    shutil.copytree(data / "pairs", tmp / "pairs")
    return tmp / "pairs"


def edit_manifest(fn):
    def setup(tmp, data):
        pairs = copy_pairs(tmp, data)
        m = json.loads((pairs / "manifest.json").read_text())
        fn(m, pairs)
        (pairs / "manifest.json").write_text(json.dumps(m))
    return setup


def pairs_file(fn):
    def setup(tmp, data):
        fn(copy_pairs(tmp, data))
    return setup


def flip_bytes(pairs):  # same size, other bytes: only the sha256 tells
    path = pairs / "source-00001-of-00003.tfrecord"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def truncate(path, size):
    with open(path, "r+b") as f:
        f.truncate(size)


def mnist_copy(edit):
    def setup(tmp, data):
        shutil.copytree(data / "mnist", tmp / "mnist")
        edit(tmp / "mnist")
    return setup


def mnist_m_labels(content, split="test"):
    """A copy of the MNIST-M folder whose ``split`` labels file holds ``content`` (bytes or str)."""
    def setup(tmp, data):
        shutil.copytree(data / "mnist_m", tmp / "mnist_m")
        path = tmp / "mnist_m" / f"mnist_m_{split}_labels.txt"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return setup


def claim(cls, args, **extra):
    """Records a fingerprint of ``cls`` built from ``args`` (as a finished earlier run would have)."""
    def setup(tmp, data):
        from daaa_tf.stages import fingerprint as fp

        values = dict(a[2:].split("=", 1) for a in fill(args, tmp, data) if "=" in a)
        values.update(extra)
        cfg = config.build(cls, values)
        fp.claim(cfg.out_dir, cfg)
    return setup


def garbage(path_in_tmp, content=b"\x00garbage{"):
    def setup(tmp, data):
        path = tmp / path_in_tmp
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return setup


def both(*setups):
    def setup(tmp, data):
        for s in setups:
            s(tmp, data)
    return setup


def legacy_gan_checkpoint(tmp, data):
    """A CycleGAN checkpoint with --gen_width=4 from before fingerprints (no fingerprint.json)."""
    import tensorflow as tf

    from daaa_tf.method.cyclegan import build_cyclegan

    values = dict(a[2:].split("=", 1) for a in fill(GAN, tmp, data))
    cfg = config.build(config.CycleGANConfig, values, precision="float32")
    model = build_cyclegan(cfg)
    tf.train.CheckpointManager(model.checkpoint(), str(tmp / "run" / "cyclegan" / "checkpoints"), 2).save(1)


def damaged_backups(keep_one_good):
    """Setup: two epochs of backups, then the newest (or both) cut short."""
    def setup(tmp, data):
        import tensorflow as tf

        from daaa_tf.stages.callbacks import Backup

        backup = Backup(str(tmp / "run" / "adapt" / "backup"), {"v": tf.Variable(np.zeros(300, np.float32))})
        for epoch in range(2):
            backup.on_epoch_end(epoch, {"loss": 1.0})
        for path in (tmp / "run" / "adapt" / "backup").glob("ckpt-*.data-*"):
            if not (keep_one_good and "ckpt-1." in path.name):
                truncate(path, 20)
    return setup


def restore_backup(tmp, data):
    import tensorflow as tf

    from daaa_tf.stages.callbacks import Backup

    return Backup(str(tmp / "run" / "adapt" / "backup"), {"v": tf.Variable(np.ones(300, np.float32))}).restore()


def read_labels(tmp, data):
    from daaa_tf.serving.runners import read_labels

    return read_labels(str(tmp / "labels.txt"))


def read_json(tmp, data):
    from daaa_tf import io

    return io.read_json(str(tmp / "x.json"))


def read_manifest(tmp, data):
    from daaa_tf.data.pairs import read_manifest

    return read_manifest(str(tmp / "pairs"), verify=True)


def report_run(metrics_bytes):
    return garbage("run/adapt/metrics.json", metrics_bytes)


def two_class_office(tmp):
    for i, c in enumerate(["a", "b"]):
        (tmp / "o" / "amazon" / "images" / c).mkdir(parents=True)
        Image.new("RGB", (8, 8), (i, 0, 0)).save(tmp / "o" / "amazon" / "images" / c / "a.jpg")


def foreign_export(tmp, data):
    (tmp / "mine").mkdir()
    (tmp / "mine" / "labels.txt").write_text("cat\ndog\n")
    (tmp / "mine" / "parity.json").write_text('{"my": "own notes"}\n')


F = "flags"
ROWS = [
    # ---------------------------------------------------------------- flags (the parser: --only_check_args too)
    Row("proportions_sum", F, "trainers.adapt", ["--proportions=0.5,0.5,0.5,0.5"], "--proportions"),
    Row("proportions_nan", F, "trainers.adapt", ["--proportions=nan,0.35,0.35,0.3"], "--proportions"),
    Row("proportions_inf", F, "trainers.adapt", ["--proportions=inf,0,0,0"], "--proportions"),
    Row("proportions_three", F, "trainers.adapt", ["--proportions=0.5,0.25,0.25"], "--proportions"),
    Row("proportions_text", F, "trainers.adapt", ["--proportions=a,b,c,d"], "--proportions"),
    Row("proportions_negative", F, "trainers.adapt", ["--proportions=-0.1,0.4,0.4,0.3"], "--proportions"),
    Row("proportions_pairing", F, "trainers.adapt", ["--proportions=0.1,0.4,0.4,0.1"], "--proportions"),
    Row("streams_unknown", F, "trainers.adapt", ["--streams=s,x"], "--streams"),
    Row("streams_twice", F, "trainers.adapt", ["--streams=s,s"], "--streams"),
    Row("streams_empty", F, "trainers.adapt", ["--streams="], "--streams"),
    Row("streams_sf_without_t", F, "trainers.adapt", ["--streams=s,sf"], "--streams"),
    Row("batch_too_small_for_mix", F, "trainers.adapt", ["--batch_size=2"], "--batch_size"),
    Row("augment_streams_unknown", F, "trainers.adapt", ["--augment_streams=q"], "--augment_streams"),
    Row("augment_cutout_above_1", F, "trainers.adapt", ["--augment_streams=t", "--augment_cutout=1.5"],
        "--augment_cutout"),
    Row("augment_cutout_without_streams", F, "trainers.adapt", ["--augment_cutout=0.25"], "--augment_cutout"),
    Row("augment_shift_with_l_at", F, "trainers.adapt", ["--augment_streams=t", "--augment_shift=2"],
        "--augment_shift"),
    Row("augment_shift_negative", F, "trainers.adapt", ["--augment_streams=t", "--beta=0", "--augment_shift=-1"],
        "--augment_shift"),
    Row("beta_negative", F, "trainers.adapt", ["--beta=-1"], "--beta"),
    Row("threshold_above_1", F, "trainers.adapt", ["--threshold=1.5"], "--threshold"),
    Row("sync_every_0", F, "trainers.adapt", ["--sync_every=0"], "--sync_every"),
    Row("epochs_0", F, "trainers.adapt", ["--epochs=0"], "--epochs"),
    Row("batch_size_text", F, "trainers.adapt", ["--batch_size=abc"], "--batch_size"),
    Row("lr_negative", F, "trainers.adapt", ["--lr=-1"], "--lr"),
    Row("profile_steps_reversed", F, "trainers.adapt", ["--profile_steps=9,3"], "--profile_steps"),
    Row("criterion_unknown", F, "trainers.adapt", ["--attention_criterion=cosine"], "--attention_criterion"),
    Row("unknown_flag", F, "trainers.adapt", ["--no_such_flag=1"], "no_such_flag"),
    Row("flagfile_missing", F, "trainers.adapt", ["--flagfile={tmp}/nowhere.flags"], "nowhere.flags"),
    Row("flagfile_includes_itself", F, "trainers.adapt", ["--flagfile={tmp}/loop.flags"], "includes itself",
        setup=garbage("loop.flags", b"--flagfile=loop.flags\n")),
    Row("flagfile_bad_value", F, "trainers.adapt", ["--flagfile={tmp}/bad.flags"], "--beta",
        setup=garbage("bad.flags", b"# a comment\n--beta=-3\n")),
    Row("arch_unknown", F, "trainers.source", ["--arch=vgg"], "--arch"),
    Row("strategy_unknown", F, "trainers.source", ["--strategy=gpu"], "--strategy"),
    Row("precision_unknown", F, "trainers.source", ["--precision=fp8"], "--precision"),
    Row("image_size_too_small", F, "trainers.source", ["--image_size=4"], "--image_size"),
    Row("seed_negative", F, "trainers.source", ["--seed=-1"], "--seed"),
    Row("digit_widths_zero", F, "trainers.source", ["--digit_widths=32,0,128"], "--digit_widths"),
    Row("digit_widths_two", F, "trainers.source", ["--digit_widths=32,64"], "--digit_widths"),
    Row("source_optimizer_unknown", F, "trainers.source", ["--source_optimizer=rmsprop"], "--source_optimizer"),
    Row("overwrite_not_bool", F, "trainers.source", ["--overwrite=maybe"], "--overwrite"),
    Row("cyclegan_steps_negative", F, "trainers.cyclegan", ["--cyclegan_steps=-5"], "--cyclegan_steps"),
    Row("gen_width_0", F, "trainers.cyclegan", ["--gen_width=0"], "--gen_width"),
    Row("cycle_weight_huge", F, "trainers.cyclegan", ["--cycle_weight=1e9"], "--cycle_weight"),
    Row("gan_loss_unknown", F, "trainers.cyclegan", ["--gan_loss=wgan"], "--gan_loss"),
    Row("revgrad_hidden_0", F, "trainers.revgrad", ["--revgrad_hidden=8,0"], "--revgrad_hidden"),
    Row("revgrad_hidden_text", F, "trainers.revgrad", ["--revgrad_hidden=x"], "--revgrad_hidden"),
    Row("variants_unknown", F, "trainers.pipeline", ["--variants=full,bogus"], "--variants"),
    Row("seeds_0", F, "trainers.pipeline", ["--seeds=0"], "--seeds"),
    Row("tflite_format_unknown", F, "export.tflite", ["--tflite_formats=float,fp16"], "--tflite_formats"),
    Row("num_calibration_negative", F, "export.tflite", ["--num_calibration=-1"], "--num_calibration"),
    Row("max_attention_maps_negative", F, "export.predict", ["--max_attention_maps=-1", "a.png"],
        "--max_attention_maps"),
    Row("report_two_run_dirs", F, "trainers.report", ["{run}", "{tmp}"], "at most one run directory"),
    Row("export_positional_argument", F, "export.saved_model", EXPORT + ["extra"], "unexpected arguments"),
    Row("tpu_without_tpu", F, "trainers.adapt", ADAPT + ["--strategy=tpu"], "TPU_NAME", extra={"env": "no_tpu"}),
    # ---------------------------------------------------------------- data (domain specs and their files)
    Row("spec_unknown_kind", "data", "trainers.source", with_source(SOURCE, "foo:bar"), "foo:bar"),
    Row("spec_no_dir", "data", "trainers.source", with_source(SOURCE, "mnist:"), "mnist:"),
    Row("spec_demo_unknown", "data", "trainers.source", with_source(SOURCE, "demo:svhn"), "demo:svhn"),
    Row("spec_tfds_no_name", "data", "trainers.source", with_source(SOURCE, "tfds:"), "tfds"),
    Row("mnist_dir_missing", "data", "trainers.source", with_source(SOURCE, "mnist:{tmp}/nowhere"), "nowhere"),
    Row("mnist_dir_empty", "data", "trainers.source", with_source(SOURCE, "mnist:{tmp}/empty"),
        "train-images-idx3-ubyte", setup=lambda tmp, data: (tmp / "empty").mkdir()),
    Row("mnist_idx_truncated", "data", "trainers.source", with_source(SOURCE, "mnist:{tmp}/mnist"),
        "train-images-idx3-ubyte", setup=mnist_copy(lambda d: truncate(d / "train-images-idx3-ubyte", 1000))),
    Row("mnist_idx_header_only", "data", "trainers.source", with_source(SOURCE, "mnist:{tmp}/mnist"),
        "train-labels-idx1-ubyte", setup=mnist_copy(lambda d: truncate(d / "train-labels-idx1-ubyte", 3))),
    Row("mnist_idx_wrong_magic", "data", "trainers.source", with_source(SOURCE, "mnist:{tmp}/mnist"), "magic",
        setup=mnist_copy(lambda d: shutil.copy(d / "train-labels-idx1-ubyte", d / "train-images-idx3-ubyte"))),
    Row("mnist_count_mismatch", "data", "trainers.source", with_source(SOURCE, "mnist:{tmp}/mnist"), "labels",
        setup=mnist_copy(lambda d: (d / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.arange(5) % 10, 2049)))),
    Row("mnist_label_above_9", "data", "trainers.source", with_source(SOURCE, "mnist:{tmp}/mnist"), "0-9",
        setup=mnist_copy(lambda d: (d / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.arange(12) + 5, 2049)))),
    Row("mnist_gzip_corrupt", "data", "trainers.source", with_source(SOURCE, "mnist:{tmp}/mnist"), "gzip",
        setup=mnist_copy(lambda d: (os.remove(d / "t10k-images-idx3-ubyte"),
                                    (d / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b not gzip")))),
    Row("mnist_m_dir_missing", "data", "trainers.source", with_target(SOURCE, "mnist_m:{tmp}/nowhere"), "nowhere"),
    Row("mnist_m_labels_missing", "data", "trainers.source", with_target(SOURCE, "mnist_m:{tmp}/mnist_m"),
        "mnist_m_test_labels.txt",
        setup=both(mnist_m_labels(""), lambda tmp, data: os.remove(tmp / "mnist_m" / "mnist_m_test_labels.txt"))),
    Row("mnist_m_labels_latin1", "data", "trainers.source", with_target(SOURCE, "mnist_m:{tmp}/mnist_m"),
        "mnist_m_test_labels.txt:2: not UTF-8", setup=mnist_m_labels("00000000.png 0\n00000001.png 1 \xe9\n".encode(
            "latin-1"))),
    *[Row(f"mnist_m_labels_{name}", "data", "trainers.source", with_target(SOURCE, "mnist_m:{tmp}/mnist_m"),
          "mnist_m_test_labels.txt:1:", setup=mnist_m_labels(line))
      for name, line in (("superscript_digit", "00000000.png \u00b2\n"), ("arabic_digit", "00000000.png \u0663\n"),
                         ("one_column", "00000000.png\n"), ("label_12", "00000000.png 12\n"))],
    Row("mnist_m_labels_names_missing_png", "data", "trainers.source", with_target(SOURCE, "mnist_m:{tmp}/mnist_m"),
        "99999999.png", setup=mnist_m_labels("99999999.png 3\n")),
    Row("mnist_m_labels_empty", "data", "trainers.source", with_target(SOURCE, "mnist_m:{tmp}/mnist_m"),
        "lists no images", setup=mnist_m_labels("\n\n")),
    Row("office31_unknown_domain", "data", "trainers.source", with_source(SOURCE, "office31:{tmp}/foo"), "foo"),
    Row("office31_root_missing", "data", "trainers.source", with_source(SOURCE, "office31:{tmp}/none/amazon"),
        "none"),
    Row("office31_no_class_folders", "data", "trainers.source", with_source(SOURCE, "office31:{tmp}/o/amazon"),
        "class folders", setup=lambda tmp, data: (tmp / "o" / "amazon" / "images").mkdir(parents=True)),
    # ---------------------------------------------------------------- stages (run directories, upstream artifacts)
    Row("source_model_missing", "stages", "trainers.adapt", ADAPT + ["--source_model={tmp}/nope.keras"], "nope.keras"),
    Row("source_model_not_keras", "stages", "trainers.adapt", ADAPT + ["--source_model={tmp}/junk.keras"],
        "junk.keras", setup=garbage("junk.keras", b"not a model")),
    Row("pairs_missing", "stages", "trainers.adapt", ADAPT + ["--pairs_dir={tmp}/nopairs"], "manifest.json"),
    Row("manifest_not_json", "stages", "trainers.adapt", OWN_PAIRS, "manifest.json: not valid JSON",
        setup=pairs_file(lambda p: (p / "manifest.json").write_text('{"complete": tr'))),
    Row("manifest_a_list", "stages", "trainers.adapt", OWN_PAIRS, "manifest.json: expected a JSON object",
        setup=pairs_file(lambda p: (p / "manifest.json").write_text("[1, 2]"))),
    Row("manifest_no_shards", "stages", "trainers.adapt", OWN_PAIRS, "'shards'",
        setup=edit_manifest(lambda m, p: m.pop("shards"))),
    Row("manifest_entry_no_sha256", "stages", "trainers.adapt", OWN_PAIRS, "lacks sha256",
        setup=edit_manifest(lambda m, p: m["shards"]["target"][0].pop("sha256"))),
    Row("manifest_incomplete", "stages", "trainers.adapt", OWN_PAIRS, "incomplete",
        setup=edit_manifest(lambda m, p: m.update(complete=False))),
    Row("shard_same_size_other_bytes", "stages", "trainers.adapt", OWN_PAIRS, "source-00001-of-00003.tfrecord",
        setup=pairs_file(flip_bytes)),
    Row("shard_truncated", "stages", "trainers.adapt", OWN_PAIRS, "target-00002-of-00003.tfrecord",
        setup=pairs_file(lambda p: truncate(p / "target-00002-of-00003.tfrecord", 100))),
    Row("shard_missing", "stages", "trainers.adapt", OWN_PAIRS, "target-00000-of-00003.tfrecord",
        setup=pairs_file(lambda p: os.remove(p / "target-00000-of-00003.tfrecord"))),
    Row("pairs_other_image_size", "stages", "trainers.adapt", OWN_PAIRS, "--image_size",
        setup=edit_manifest(lambda m, p: m.update(image_shape=[32, 32, 3]))),
    Row("adapt_rerun_other_flags", "stages", "trainers.adapt", ADAPT + ["--beta=0", "--seed=7"],
        "--beta: 1.0 -> 0.0", setup=claim(config.AdaptConfig, ADAPT)),
    Row("adapt_fingerprint_not_json", "stages", "trainers.adapt", ADAPT, "fingerprint.json: not valid JSON",
        setup=garbage("run/adapt/fingerprint.json")),
    Row("source_rerun_other_target", "stages", "trainers.source", with_target(SOURCE, "demo"), "--target",
        setup=claim(config.SourceConfig, SOURCE)),
    Row("source_batch_larger_than_data", "stages", "trainers.source", SOURCE + ["--source_batch_size=100000"],
        "--source_batch_size=100000"),
    Row("source_other_class_count", "stages", "trainers.source", with_target(SOURCE, "office31:{tmp}/o/amazon"),
        "classes", setup=lambda tmp, data: two_class_office(tmp)),
    Row("cyclegan_rerun_other_gen_width", "stages", "trainers.cyclegan", GAN + ["--gen_width=8"], "--gen_width: 4 -> 8",
        setup=claim(config.CycleGANConfig, GAN)),
    Row("cyclegan_old_checkpoint_other_width", "stages", "trainers.cyclegan", GAN + ["--gen_width=8"], "--gen_width",
        setup=legacy_gan_checkpoint, changes=("run/cyclegan/flags.txt",)),
    Row("cyclegan_batch_not_multiple_of_replicas", "stages", "trainers.cyclegan",
        GAN + ["--strategy=mirrored", "--cyclegan_batch_size=3"], "--cyclegan_batch_size"),
    Row("backups_all_damaged", "stages", "call", [], "backup: no checkpoint can be restored",
        setup=damaged_backups(keep_one_good=False), call=restore_backup),
    Row("history_json_garbage", "stages", "call", [], "history.json: not valid JSON",
        setup=both(damaged_backups(True), garbage("run/adapt/backup/history.json")), call=restore_backup),
    Row("json_cut_short", "stages", "call", [], "x.json: not valid JSON", setup=garbage("x.json", b'{"a": [1, 2'),
        call=read_json),
    Row("json_binary", "stages", "call", [], "x.json: not valid JSON", setup=garbage("x.json", b"\xff\xfe\x00\x01"),
        call=read_json),
    Row("manifest_verify_flipped", "stages", "call", [], "source-00001-of-00003.tfrecord",
        setup=pairs_file(flip_bytes), call=read_manifest),
    # ---------------------------------------------------------------- export
    Row("export_dir_is_a_file", "export", "export.saved_model", EXPORT + ["--export_dir={tmp}/file"],
        "--export_dir", setup=garbage("file", b"my notes")),
    Row("export_dir_foreign_folder", "export", "export.saved_model", EXPORT + ["--export_dir={tmp}/mine"],
        "not a checked export", setup=foreign_export),
    Row("export_dir_foreign_folder_overwrite", "export", "export.tflite",
        EXPORT + ["--export_dir={tmp}/mine", "--overwrite"], "not a checked export", setup=foreign_export),
    Row("export_model_missing", "export", "export.saved_model", EXPORT + ["--model={tmp}/nope.keras"], "nope.keras"),
    Row("export_model_not_keras", "export", "export.saved_model", EXPORT + ["--model={tmp}/junk.keras"], "junk.keras",
        setup=garbage("junk.keras", b"PK\x03\x04 not a zip")),
    Row("export_nothing_trained", "export", "export.saved_model", [a for a in EXPORT if "--model" not in a],
        "--model not given"),
    Row("export_int8_without_calibration", "export", "export.tflite",
        EXPORT + ["--tflite_formats=int8", "--num_calibration=0"], "--num_calibration"),
    Row("export_other_models_export", "export", "export.saved_model", EXPORT + ["--export_dir={tmp}/ours"],
        "not a checked export of", setup=lambda tmp, data: (
            shutil.copytree(data / "export" / "saved_model", tmp / "ours" / "saved_model"),
            (tmp / "ours" / "daaa_tf_export.json").write_text("{}"))),
    Row("export_target_missing", "export", "export.saved_model", with_target(EXPORT, "mnist_m:{tmp}/none"), "none"),
    # ---------------------------------------------------------------- predict (images: see the marked place below)
    Row("predict_no_images", "predict", "export.predict", PREDICT, "no images given"),
    Row("predict_model_missing", "predict", "export.predict", ["--model={tmp}/none", "{data}/digit.png"], "--model"),
    Row("predict_model_keras", "predict", "export.predict", ["--model={data}/source.keras", "{data}/digit.png"],
        "export it first"),
    Row("predict_model_empty_dir", "predict", "export.predict", ["--model={tmp}/empty", "{data}/digit.png"],
        "not a SavedModel directory", setup=lambda tmp, data: (tmp / "empty").mkdir()),
    Row("predict_model_not_tflite", "predict", "export.predict", ["--model={tmp}/m.tflite", "{data}/digit.png"],
        "m.tflite", setup=garbage("m.tflite", b"TFL3 but not really")),
    Row("predict_image_missing", "predict", "export.predict", PREDICT + ["{tmp}/none.png", "{data}/digit.png"],
        "none.png", errors=2),
    Row("predict_image_not_an_image", "predict", "export.predict", PREDICT + ["{tmp}/text.png"], "text.png",
        setup=garbage("text.png", b"hello"), errors=2),
    Row("predict_image_truncated_png", "predict", "export.predict", PREDICT + ["{tmp}/cut.png"], "cut.png",
        setup=lambda tmp, data: (tmp / "cut.png").write_bytes((data / "digit.png").read_bytes()[:60]), errors=2),
    Row("predict_image_is_a_folder", "predict", "export.predict", PREDICT + ["{tmp}"], "no such image file",
        errors=2),
    # --- images (the one reader, daaa_tf/images.py; its decoded values per mode: tests/test_images.py)
    Row("predict_image_decompression_bomb", "predict", "export.predict",
        PREDICT + ["{tmp}/bomb.png", "{data}/digit.png"], "bomb.png: refused",
        setup=lambda tmp, data: bomb_png(tmp / "bomb.png"), errors=2),
    Row("labels_txt_latin1", "predict", "call", [], "labels.txt:2: not UTF-8",
        setup=garbage("labels.txt", "cat\nchien \xe9\n".encode("latin-1")), call=read_labels),
    # ---------------------------------------------------------------- report
    Row("report_run_dir_missing", "report", "trainers.report", ["{tmp}/nowhere"], "nowhere"),
    Row("report_metrics_garbage", "report", "trainers.report", ["{run}"], "adapt/metrics.json: not valid JSON",
        setup=report_run(b"\x00\x01garbage"), status=0, changes=("run/results.md", "run/results.json")),
    Row("report_metrics_a_list", "report", "trainers.report", ["{run}"], "adapt/metrics.json has no numeric",
        setup=report_run(b"[1, 2]"), status=0, changes=("run/results.md", "run/results.json")),
    Row("report_metrics_accuracy_text", "report", "trainers.report", ["{run}"], "has no numeric target_test",
        setup=report_run(b'{"target_test_accuracy": "high"}'), status=0,
        changes=("run/results.md", "run/results.json")),
    Row("report_dir_is_a_file", "report", "trainers.report", ["{tmp}/file"], "is a file",
        setup=garbage("file", b"x")),
]


def fill(args, tmp, data):
    return [a.format(run=tmp / "run", tmp=tmp, data=data) for a in args]


def run_row(row, tmp, data):
    """Status of the row's command (SystemExit code, or main's return value / 0)."""
    if row.module == "call":
        try:
            tflags.call(lambda argv: row.call(tmp, data), [])
        except SystemExit as e:
            return e.code
        return 0
    module = importlib.import_module(row.module)
    flags.FLAGS.unparse_flags()
    try:
        argv = tflags.parse([row.module, *fill(row.args, tmp, data)])
        status = tflags.call(module.main, argv)
    except SystemExit as e:
        return e.code
    finally:
        flags.FLAGS.unparse_flags()
    return status or 0


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input(row, data, tmp_path, capsys, monkeypatch):
    if row.extra.get("env") == "no_tpu":
        monkeypatch.delenv("TPU_NAME", raising=False)
    (tmp_path / "run").mkdir()
    if row.setup:
        row.setup(tmp_path, data)
    capsys.readouterr()
    before = checksums(tmp_path)
    status = run_row(row, tmp_path, data)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert status == row.status, (status, err[-2000:])
    if row.status:
        assert len(errors) == row.errors, err[-2000:]
        assert row.fragment in errors[0] or row.fragment in errors[-1], errors
    else:
        assert not errors and any(row.fragment in line for line in err.splitlines() if line.startswith("note:")), err
    after = checksums(tmp_path)
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    assert changed <= set(row.changes), f"files changed or added: {sorted(changed - set(row.changes))}"


def test_the_table_covers_every_category_with_at_least_80_rows():
    assert len(ROWS) >= 80 and len({r.id for r in ROWS}) == len(ROWS)
    assert {r.category for r in ROWS} == {"data", "flags", "stages", "export", "predict", "report"}


def test_nothing_wrote_into_the_shared_inputs(data):
    """Last in the file: the shared inputs are as built (no row wrote into them)."""
    want = {"source.keras", "digit.png", "pairs/manifest.json", "mnist/train-images-idx3-ubyte",
            "mnist_m/mnist_m_test_labels.txt", "export/saved_model/1/saved_model.pb"}
    files = checksums(data)
    assert want <= set(files)
    assert not [p for p in files if os.path.basename(p).startswith(".")]


# ------------------------------------------------------------------------ what the bad inputs are measured against


@pytest.mark.parametrize("bug", [ValueError("a bug"), KeyError("k"), FileNotFoundError("an unexpected file"),
                                 RuntimeError("r")], ids=lambda e: type(e).__name__)
def test_anything_but_a_user_or_stage_error_keeps_its_traceback(bug):
    def main(argv):
        raise bug

    with pytest.raises(type(bug)):
        tflags.call(main, [])


def test_the_taxonomy():
    from daaa_tf import MissingFileError, StageError, UserError

    assert issubclass(UserError, ValueError) and issubclass(MissingFileError, (UserError, FileNotFoundError))
    assert not issubclass(StageError, UserError) and issubclass(StageError, RuntimeError)
    with pytest.raises(SystemExit) as e:
        tflags.call(lambda argv: (_ for _ in ()).throw(StageError("cannot go on")), [])
    assert e.value.code == 2


def test_newest_backup_damaged_falls_back_to_the_previous_one(data, tmp_path, capsys):
    damaged_backups(keep_one_good=True)(tmp_path, data)
    assert restore_backup(tmp_path, data) == 1  # ckpt-2 cut short: resumes after epoch 1
    out = capsys.readouterr().out
    assert "checkpoint ckpt-2 in" in out and "damaged" in out and "previous good one, ckpt-1" in out


def test_labels_files_with_bom_and_crlf_are_read_as_plain_text(data, tmp_path):
    from daaa_tf.data.mnist_m import parse_labels
    from daaa_tf.serving.runners import read_labels

    (tmp_path / "labels.txt").write_bytes("\ufeffcat\r\ndog \u00b2\r\n".encode())
    assert read_labels(str(tmp_path / "labels.txt")) == ["cat", "dog \u00b2"]
    (tmp_path / "l.txt").write_bytes("\ufeff00000000.png 3\r\n00000001.png 7\r\n".encode())
    names, labels = parse_labels(str(tmp_path / "l.txt"), str(data / "mnist_m" / "mnist_m_test"))
    assert names == ["00000000.png", "00000001.png"] and labels.tolist() == [3, 7]


def test_stale_temporaries_of_a_killed_run_are_removed_at_the_next_start(tmp_path, capsys):
    from daaa_tf import io
    from daaa_tf.stages import fingerprint as fp

    stage = tmp_path / "adapt"
    (stage / "backup").mkdir(parents=True)
    stale = [stage / ".model.keras.k2j4h5g1.tmp.keras", stage / ".metrics.json.abcd_123.tmp",
             stage / "backup" / ".history.json.zzzzzzzz.tmp"]
    for path in stale:
        path.write_text("half written")
    keep = [stage / "model.keras", stage / ".hidden_by_the_user", stage / "notes.tmp"]
    for path in keep:
        path.write_text("mine")
    fp.claim(str(stage), config.build(config.AdaptConfig, {"run_dir": str(tmp_path)}), inputs={})
    assert not any(p.exists() for p in stale) and all(p.exists() for p in keep)
    assert f"{stage}: removed 3 stale temporary file(s)" in capsys.readouterr().out
    (tmp_path / "export" / ".export.q1w2e3r4" / "saved_model").mkdir(parents=True)
    assert io.remove_stale_temporaries(str(tmp_path / "export"), recursive=False) == 1
    assert os.listdir(tmp_path / "export") == []


def test_a_shard_cut_short_by_a_kill_is_removed_when_translation_runs_again(data, tmp_path, capsys):
    from daaa_tf.data.pair_writer import write_pair_shards

    pairs = copy_pairs(tmp_path, data)
    (pairs / ".source-00001-of-00003.tfrecord.a1b2c3d4.tmp").write_bytes(b"half a shard")
    images = np.zeros((4, SIZE, SIZE, 3), np.uint8)
    write_pair_shards(str(pairs), "source", images, images, np.zeros(4), shard_size=2)
    assert not [n for n in os.listdir(pairs) if n.endswith(".tmp")]
    assert "removed 1 stale temporary file(s)" in capsys.readouterr().out


def test_export_into_a_new_or_empty_folder_is_marked_as_ours(data, tmp_path):
    from daaa_tf.serving.contract import check_export_dir, is_our_export, mark_export_dir

    check_export_dir(str(tmp_path / "new"))  # a new folder: fine
    (tmp_path / "empty").mkdir()
    check_export_dir(str(tmp_path / "empty"))  # an empty one: fine
    mark_export_dir(str(tmp_path / "empty"))
    assert is_our_export(str(tmp_path / "empty"))
    (tmp_path / "empty" / "labels.txt").write_text("0\n")
    check_export_dir(str(tmp_path / "empty"))  # ours, now with files: fine


# ------------------------------------------------------------------------------------------- real processes


@pytest.mark.parametrize("args, fragment", [
    (["trainers.adapt", "--strategy=tpu"], "--strategy=tpu"),
    (["trainers.adapt", "--proportions=nan,0.35,0.35,0.3", "--only_check_args"], "--proportions"),
    (["export.saved_model", "--export_dir={tmp}/file", "--model={tmp}/file"], "--export_dir"),
], ids=["tpu", "proportions_nan_only_check_args", "export_dir_is_a_file"])
def test_real_process_prints_one_line_once_and_exits_2(args, fragment, tmp_path):
    (tmp_path / "file").write_text("mine")
    env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TPU_NAME", None)
    out = subprocess.run([sys.executable, "-m", *[a.format(tmp=tmp_path) for a in args]], capture_output=True,
                         text=True, env=env, cwd=str(tmp_path), timeout=180)
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 2 and len(lines) == 1 and fragment in lines[0], out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    message = lines[0][len("error: "):][:60]
    assert sum(message in line for line in out.stderr.splitlines()) == 1, out.stderr[-3000:]  # printed once
    assert (tmp_path / "file").read_text() == "mine"

