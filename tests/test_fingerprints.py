"""Run fingerprints (docs/design.md, "Fingerprints"): a rerun with other settings or inputs is refused with one
line, --overwrite moves the old run aside, the same settings resume or skip, the pipeline skips only up-to-date
stages."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from daaa_tf import StageError, config
from daaa_tf.stages import fingerprint as fp
from daaa_tf.stages import pipeline as pl

SIZE = 16
ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}


def checksums(directory):
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            out[os.path.relpath(path, directory)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return out


def one_line_error(out):
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 2 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr[-3000:]
    return lines[0]


# ------------------------------------------------------------------------------------------------ unit level


def test_fingerprint_keeps_result_flags_and_names_differences():
    a = config.build(config.AdaptConfig, {"run_dir": "/r"})
    f = fp.fingerprint(a, {"source_model": "sha256:aa"})
    assert f["stage"] == "adapt" and f["settings"]["beta"] == 1.0 and f["settings"]["streams"] == ["s", "tf", "t", "sf"]
    for not_result in ("run_dir", "adapt_dir", "pairs_dir", "source_model", "eval_batch_size", "log_every",
                       "profile_steps", "overwrite"):
        assert not_result not in f["settings"]
    b = config.build(config.AdaptConfig, {"run_dir": "/elsewhere", "beta": 0.0, "seed": 7, "eval_batch_size": 3})
    g = fp.fingerprint(b, {"source_model": "sha256:bb"})
    assert fp.differences(f, g) == ["--beta: 1.0 -> 0.0", "--seed: 0 -> 7",
                                    "input source_model changed (sha256:aa -> sha256:bb)"]
    assert fp.differences(f, fp.fingerprint(a, {"source_model": "sha256:aa"})) == []
    # a setting added to the project after a run was recorded: at its default it is what that run did
    old = {**f, "settings": {k: v for k, v in f["settings"].items() if k != "augment_cutout"}}
    assert fp.differences(old, f) == [] and fp.same(old, f)
    cut = fp.fingerprint(config.build(config.AdaptConfig, {"run_dir": "/r", "augment_streams": ("t",),
                                                           "augment_cutout": 0.5}), {"source_model": "sha256:aa"})
    old_t = {**cut, "settings": {k: v for k, v in cut["settings"].items() if k != "augment_cutout"}}
    assert fp.differences(old_t, cut) == ["--augment_cutout: (unset) -> 0.5"] and not fp.same(old_t, cut)
    src = fp.fingerprint(config.build(config.SourceConfig, {}))
    src_old = {**src, "settings": {k: v for k, v in src["settings"].items() if k != "digit_widths"}}
    assert src["settings"]["digit_widths"] == [32, 64, 128] and fp.same(src_old, src)
    # the source net's epochs may grow (a longer run resumes), not shrink
    s1 = fp.fingerprint(config.build(config.SourceConfig, {"source_epochs": 1}))
    s2 = fp.fingerprint(config.build(config.SourceConfig, {"source_epochs": 2}))
    assert fp.differences(s1, s2) == [] and fp.differences(s2, s1) == ["--source_epochs: 2 -> 1"]
    # the CycleGAN's steps too, while its LR is constant: a decaying LR is a function of the step count
    for decay, more in ((1.0, []), (0.5, ["--cyclegan_steps: 10 -> 20"])):
        c10, c20 = (fp.fingerprint(config.build(config.CycleGANConfig,
                                                {"cyclegan_steps": n, "cyclegan_lr_decay": decay}), {})
                    for n in (10, 20))
        assert fp.differences(c10, c20) == more and fp.differences(c20, c10) == ["--cyclegan_steps: 20 -> 10"]
    # what a stage reads: the source model for adapt / revgrad / semantic CycleGAN, the pair manifest, the data
    assert set(fp.stage_inputs(a)) == {"source_model", "pairs_manifest", "target_data"}
    assert set(fp.stage_inputs(config.build(config.CycleGANConfig, {}))) == {"source_data", "target_data"}
    assert set(fp.stage_inputs(config.build(config.CycleGANConfig, {"semantic_weight": 1.0}))) == {
        "source_model", "source_data", "target_data"}


def test_claim_refuses_then_moves_aside_with_overwrite(tmp_path):
    d = str(tmp_path / "adapt")
    cfg = config.build(config.AdaptConfig, {"run_dir": str(tmp_path)})
    assert fp.claim(d, cfg, inputs={})[1] == "new"
    (tmp_path / "adapt" / "model.keras").write_text("old model")
    assert fp.claim(d, cfg, inputs={})[1] == "same"
    before = checksums(d)
    other = config.build(config.AdaptConfig, {"run_dir": str(tmp_path), "beta": 0.0})
    with pytest.raises(StageError, match=r"--beta: 1.0 -> 0.0; pass --overwrite to start this stage afresh") as e:
        fp.claim(d, other, inputs={})
    assert "\n" not in str(e.value) and checksums(d) == before
    assert fp.claim(d, other, overwrite=True, inputs={})[1] == "overwrite"
    old = [p for p in os.listdir(tmp_path) if p.startswith("adapt.old-")]
    assert len(old) == 1 and (tmp_path / old[0] / "model.keras").read_text() == "old model"
    assert json.load(open(os.path.join(d, "fingerprint.json")))["settings"]["beta"] == 0.0
    assert not os.path.exists(os.path.join(d, "model.keras"))
    assert "--overwrite" not in open(os.path.join(d, "flags.txt")).read()


# ------------------------------------------------------------------------------------------------- pipeline


def _fake_stage(name, out_dir, fingerprint, ran, overwrite=False):
    def run():
        ran.append(name)
        os.makedirs(out_dir, exist_ok=True)
        from daaa_tf import io
        io.write_json(os.path.join(out_dir, "fingerprint.json"), fingerprint())
        io.write_json(os.path.join(out_dir, "metrics.json"), {"complete": True})
    return pl.Stage(name, run, os.path.join(out_dir, "metrics.json"), None, out_dir, False, fingerprint, overwrite)


def test_pipeline_skips_up_to_date_stages_and_a_changed_upstream_model_invalidates_adapt(tmp_path, capsys):
    model = {"hash": "sha256:one"}
    src = lambda: {"stage": "source", "settings": {"source_lr": 0.001}, "inputs": {}}  # noqa: E731
    adapt = lambda: {"stage": "adapt", "settings": {"beta": 1.0},  # noqa: E731
                     "inputs": {"source_model": model["hash"]}}
    ran = []

    def stages(overwrite=False):
        return [_fake_stage("source", str(tmp_path / "source"), src, ran, overwrite),
                _fake_stage("adapt full seed 0", str(tmp_path / "adapt"), adapt, ran, overwrite)]

    pl.run(stages(), log=print)
    assert ran == ["source", "adapt full seed 0"]
    ran.clear()
    pl.run(stages(), log=print)
    assert ran == [] and capsys.readouterr().out.count("complete, skipped") == 2
    model["hash"] = "sha256:two"  # the source model was retrained
    with pytest.raises(StageError, match=r"input source_model changed .* pass --overwrite") as e:
        pl.run(stages(), log=print)
    assert "\n" not in str(e.value) and ran == []
    pl.run(stages(overwrite=True), log=print)
    assert ran == ["adapt full seed 0"]  # source still up to date: skipped
    assert any(p.startswith("adapt.old-") for p in os.listdir(tmp_path))
    # a raised --source_epochs is no conflict, but the complete source stage is not skipped: it resumes
    ran.clear()
    src_longer = lambda: {"stage": "source", "settings": {"source_epochs": 2}, "inputs": {}}  # noqa: E731
    fp_first = lambda: {"stage": "source", "settings": {"source_epochs": 1}, "inputs": {}}  # noqa: E731
    pl.run([_fake_stage("source", str(tmp_path / "s2"), fp_first, ran)], log=print)
    pl.run([_fake_stage("source", str(tmp_path / "s2"), src_longer, ran)], log=print)
    assert ran == ["source", "source"]


def test_planned_adapt_stage_fingerprints_the_source_model_it_will_read(tmp_path):
    run_dir = tmp_path / "run"
    stages = {s.name: s for s in pl.plan({"run_dir": str(run_dir)}, export=False, revgrad=True)}
    data = {name: sorted(k for k in s.fingerprint()["inputs"] if k.endswith("_data")) for name, s in stages.items()}
    assert data == {"source": ["source_data", "target_data"], "cyclegan": ["source_data", "target_data"],
                    "adapt full seed 0": ["target_data"], "revgrad seed 0": ["source_data", "target_data"]}
    (run_dir / "source").mkdir(parents=True)
    (run_dir / "source" / "model.keras").write_bytes(b"model one")
    first = stages["adapt full seed 0"].fingerprint()
    (run_dir / "source" / "model.keras").write_bytes(b"model two")
    second = stages["adapt full seed 0"].fingerprint()
    assert fp.differences(first, second)[0].startswith("input source_model changed")
    assert list(stages["source"].fingerprint()["inputs"]) == ["source_data", "target_data"]  # no model


# -------------------------------------------------------------------------------------- the stages as run


from tests.test_adapt_stage import workdir  # noqa: E402,F401,F811  (source model, pair shards, MNIST-M folder)


def test_adapt_rerun_with_other_flags_is_refused_and_overwrite_starts_afresh(workdir, tmp_path):  # noqa: F811
    base = [sys.executable, "-m", "trainers.adapt", f"--run_dir={tmp_path}", f"--image_size={SIZE}",
            f"--source_model={workdir / 'source.keras'}", f"--pairs_dir={workdir / 'pairs'}",
            f"--target=mnist_m:{workdir / 'mnist_m'}", "--batch_size=8", "--proportions=0.25,0.25,0.25,0.25",
            "--epochs=1", "--steps_per_epoch=2", "--sync_every=2", "--eval_batch_size=8"]
    first = subprocess.run(base, capture_output=True, text=True, env=ENV)
    assert first.returncode == 0, first.stderr[-3000:]
    adapt = tmp_path / "adapt"
    before = checksums(adapt)
    assert "fingerprint.json" in before and "model.keras" in before
    refused = subprocess.run(base + ["--beta=0", "--seed=7", "--streams=s"], capture_output=True, text=True,
                             env=ENV)
    line = one_line_error(refused)
    assert "--beta: 1.0 -> 0.0" in line and "--seed: 0 -> 7" in line and "--streams: s,tf,t,sf -> s" in line
    assert "--overwrite" in line
    assert checksums(adapt) == before  # nothing in the stage directory changed
    again = subprocess.run(base, capture_output=True, text=True, env=ENV)  # same flags: resumes (complete)
    assert again.returncode == 0 and "resuming adaptation after epoch 1" in again.stdout, again.stderr[-3000:]
    fresh = subprocess.run(base + ["--beta=0", "--overwrite"], capture_output=True, text=True, env=ENV)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert "resuming" not in fresh.stdout
    old = [p for p in os.listdir(tmp_path) if p.startswith("adapt.old-")]
    assert len(old) == 1 and json.load(open(tmp_path / old[0] / "fingerprint.json"))["settings"]["beta"] == 1.0
    assert json.load(open(adapt / "fingerprint.json"))["settings"]["beta"] == 0.0
    assert json.load(open(adapt / "metrics.json"))["config"]["beta"] == 0.0


def _source(args, run_dir):
    return subprocess.run([sys.executable, "-m", "trainers.source", f"--run_dir={run_dir}", *args],
                          capture_output=True, text=True, env=ENV)


def test_source_rerun_skips_keeps_history_and_refuses_another_target(tmp_path):
    first = _source(["--source_epochs=1"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    metrics = (tmp_path / "source" / "metrics.json").read_bytes()
    assert json.loads(metrics)["history"]["loss"]
    again = _source(["--source_epochs=1"], tmp_path)
    assert again.returncode == 0 and "is complete with these settings" in again.stdout, again.stderr[-3000:]
    assert (tmp_path / "source" / "metrics.json").read_bytes() == metrics  # history kept
    before = checksums(tmp_path / "source")
    line = one_line_error(_source(["--source_epochs=1", "--target=demo:mnist"], tmp_path))
    assert "--target: demo -> demo:mnist" in line
    assert checksums(tmp_path / "source") == before


def test_source_batch_larger_than_the_training_set_is_one_line(tmp_path):
    line = one_line_error(_source(["--source_epochs=1", "--source_batch_size=100000"], tmp_path))
    assert "--source_batch_size=100000" in line and "examples" in line
    assert not os.path.exists(tmp_path / "source" / "model.keras")


# ------------------------------------------------------------------------------------- the data's identity


def _mnist_dir(path, **kw):
    from tests.test_data_mnist import make_mnist

    path.mkdir()
    make_mnist(path, **kw)


def _flip_last_byte(path):
    raw = bytearray(open(path, "rb").read())
    raw[-1] ^= 1
    open(path, "wb").write(bytes(raw))


def test_data_identity_of_each_reader_changes_with_its_files(tmp_path):
    from PIL import Image

    from daaa_tf import io
    from daaa_tf.data.identity import data_identity
    from tests.test_data_mnist_m import make_mnist_m
    from tests.test_data_office31 import make_office

    _mnist_dir(tmp_path / "mnist")
    first = data_identity(f"mnist:{tmp_path / 'mnist'}")
    assert first["spec"] == f"mnist:{tmp_path / 'mnist'}" and first == data_identity(f"mnist:{tmp_path}/mnist/")
    _flip_last_byte(tmp_path / "mnist" / "train-images-idx3-ubyte")  # one pixel: same size, other content
    assert data_identity(f"mnist:{tmp_path / 'mnist'}")["files"] != first["files"]

    make_mnist_m(tmp_path / "mnist_m")
    spec = f"mnist_m:{tmp_path / 'mnist_m'}"
    first = data_identity(spec)
    (tmp_path / "mnist_m" / "mnist_m_train" / "stray.txt").write_text("not listed")  # the reader ignores it
    assert data_identity(spec) == first
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "mnist_m" / "mnist_m_test" / "00000001.png")
    second = data_identity(spec)  # a replaced PNG (another size)
    assert second != first
    labels = tmp_path / "mnist_m" / "mnist_m_test_labels.txt"
    labels.write_text(labels.read_text().replace(" 3\n", " 4\n"))  # a relabelled image
    assert data_identity(spec) not in (first, second)

    make_office(tmp_path / "office")
    spec = f"office31:{tmp_path / 'office' / 'amazon'}"
    first = data_identity(spec)
    assert first == data_identity(spec) and first != data_identity(f"office31:{tmp_path / 'office' / 'webcam'}")
    (tmp_path / "office" / "amazon" / "images" / "back_pack" / "frame_0000.jpg").write_bytes(b"x")
    assert data_identity(spec) != first

    demo = data_identity("demo", "target")
    assert demo == data_identity("demo:mnist_m") and demo["spec"] == "demo:mnist_m"
    assert data_identity("demo")["files"] != demo["files"]

    ram = "ram://daaa_dataid_test"  # gfile paths: read and listed through tf.io.gfile, same files -> same digest
    for root, _, names in os.walk(tmp_path):
        for name in names:
            local = os.path.join(root, name)
            io.write_text(f"{ram}/{os.path.relpath(local, tmp_path)}", open(local, "rb").read(), "wb")
    try:
        for spec in ("mnist:{}/mnist", "mnist_m:{}/mnist_m", "office31:{}/office/amazon"):
            on_ram = data_identity(spec.format(ram))
            assert on_ram == {"spec": spec.format(ram), "files": data_identity(spec.format(tmp_path))["files"]}
    finally:
        io.remove_tree("ram://daaa_dataid_test")
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):  # the reader's own one-line error
        os.remove(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz")
        data_identity(f"mnist:{tmp_path / 'mnist'}")


def test_old_fingerprint_without_data_inputs_is_no_difference():
    new = {"stage": "source", "settings": {"source": "mnist:/d"},
           "inputs": {"source_data": {"spec": "mnist:/d", "files": "a"}}}
    old = {"stage": "source", "settings": {"source": "mnist:/d"}, "inputs": {}}
    assert fp.differences(old, new) == [] and fp.same(old, new) and not fp.same(new, old)
    changed = {**new, "inputs": {"source_data": {"spec": "mnist:/d", "files": "b"}}}
    assert fp.differences(new, changed) == ["input source data changed (mnist:/d)"]
    assert not fp.same(new, changed)


def test_source_rerun_after_the_data_changed_is_refused_and_the_pipeline_invalidates(tmp_path, capsys):
    from daaa_tf.stages.source import train_source

    _mnist_dir(tmp_path / "src", n_train=8, n_test=4, gz_test=False)
    _mnist_dir(tmp_path / "tgt", n_train=8, n_test=4, seed=1)
    values = {"run_dir": str(tmp_path / "run"), "source": f"mnist:{tmp_path / 'src'}",
              "target": f"mnist:{tmp_path / 'tgt'}", "image_size": SIZE, "source_epochs": 1,
              "source_batch_size": 4, "eval_batch_size": 4}
    cfg = config.build(config.SourceConfig, values)
    train_source(cfg)
    stage = {s.name: s for s in pl.plan(values, export=False)}["source"]
    assert pl.up_to_date(stage)  # unchanged data: the pipeline skips it
    recorded = json.load(open(tmp_path / "run" / "source" / "fingerprint.json"))
    assert recorded["inputs"]["source_data"]["spec"] == values["source"]
    before = checksums(tmp_path / "run" / "source")
    _flip_last_byte(tmp_path / "src" / "t10k-images-idx3-ubyte")  # same spec, one byte of other data
    with pytest.raises(StageError, match=r"input source data changed \(mnist:.*src\); pass --overwrite") as e:
        train_source(cfg)
    assert "\n" not in str(e.value) and "target data" not in str(e.value)
    with pytest.raises(StageError, match=r"input source data changed"):
        pl.up_to_date(stage)
    assert checksums(tmp_path / "run" / "source") == before  # nothing in the stage directory changed
    _flip_last_byte(tmp_path / "src" / "t10k-images-idx3-ubyte")  # back as it was: resumes (complete)
    capsys.readouterr()
    train_source(cfg)
    assert "is complete with these settings" in capsys.readouterr().out
    # a run recorded before data identities: no data inputs in its fingerprint -> still up to date, skipped
    old = {**recorded, "inputs": {}}
    (tmp_path / "run" / "source" / "fingerprint.json").write_text(json.dumps(old))
    assert pl.up_to_date(stage) and fp.check(str(tmp_path / "run" / "source"), stage.fingerprint()) == "same"
