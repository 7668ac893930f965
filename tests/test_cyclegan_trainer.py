"""trainers.cyclegan end to end on the embedded demo (tiny networks): outputs, rerun, flag checks (kill -9 and
resume: tests/test_kill_resume.py)."""

import hashlib
import json
import os
import subprocess
import sys

import pytest

from daaa_tf import runtime
from daaa_tf.data import pairs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--source=demo", "--target=demo", "--image_size=16", "--gen_width=4", "--gen_blocks=1", "--disc_width=4",
        "--disc_layers=1", "--cyclegan_batch_size=4", "--translate_batch_size=512", "--shard_size=1500",
        "--strategy=default", "--precision=float32", "--cyclegan_precision=mixed_bfloat16"]


def _cmd(run_dir, *extra):
    return [sys.executable, "-m", "trainers.cyclegan", f"--run_dir={run_dir}", *TINY, *extra]


def _run(run_dir, *extra):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run(_cmd(run_dir, *extra), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_cli_trains_translates_and_skips_when_complete(tmp_path):
    run_dir = str(tmp_path / "run")
    proc = _run(run_dir, "--cyclegan_steps=2", "--cyclegan_steps_per_epoch=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pairs: 4000 images translated" in proc.stdout
    out = os.path.join(run_dir, "cyclegan")
    for name in ("flags.txt", "metrics.json", "samples.png", "g_st.keras", "g_ts.keras", "checkpoints"):
        assert os.path.exists(os.path.join(out, name)), name
    assert "--cyclegan_steps=2" in open(os.path.join(out, "flags.txt")).read()
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert metrics["step"] == 2 and metrics["complete"] and metrics["translation"]["translated"] == 4000
    assert metrics["code"] == runtime.code_version()  # the code that made it (this checkout)
    m = pairs.read_manifest(os.path.join(run_dir, "pairs"), verify=True)
    assert m["counts"] == {"source": 2000, "target": 2000} and m["image_shape"] == [16, 16, 3]
    assert [e["records"] for e in m["shards"]["target"]] == [1500, 500]
    batch = pairs.parse_pairs(next(iter(pairs.pair_records(os.path.join(run_dir, "pairs"), "target").batch(64))))
    assert batch["image"].shape == (64, 16, 16, 3) and set(batch["label"].numpy()) <= set(range(10))
    # Rerun: nothing to train, every shard kept (same checksums).
    proc = _run(run_dir, "--cyclegan_steps=2", "--cyclegan_steps_per_epoch=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert pairs.read_manifest(os.path.join(run_dir, "pairs"))["shards"] == m["shards"]
    # A raised --cyclegan_steps trains the complete run further (no conflict) and translates the pairs again;
    # the same run at 3 steps from scratch gives the same generators (constant LR, stream positioned by step).
    proc = _run(run_dir, "--cyclegan_steps=3", "--cyclegan_steps_per_epoch=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert metrics["step"] == 3 and [h["step"] for h in metrics["history"]] == [1, 2, 3]
    m3 = pairs.read_manifest(os.path.join(run_dir, "pairs"), verify=True)
    assert m3["fingerprint"]["step"] == 3 and m3["shards"] != m["shards"]
    straight = str(tmp_path / "straight")
    assert _run(straight, "--cyclegan_steps=3", "--cyclegan_steps_per_epoch=1").returncode == 0
    assert pairs.read_manifest(os.path.join(straight, "pairs"))["shards"] == m3["shards"]
    # Fewer steps than the run holds is another run: refused in one line.
    proc = _run(run_dir, "--cyclegan_steps=1", "--cyclegan_steps_per_epoch=1")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "--cyclegan_steps: 3 -> 1" in errors[0], proc.stderr[-2000:]


def test_cli_lr_decay_is_recorded_per_epoch_and_a_decaying_run_is_not_extended(tmp_path):
    run_dir = str(tmp_path / "run")
    proc = _run(run_dir, "--cyclegan_steps=2", "--cyclegan_steps_per_epoch=1", "--cyclegan_lr=1e-3",
                "--cyclegan_lr_decay=0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    history = json.load(open(os.path.join(run_dir, "cyclegan", "metrics.json")))["history"]
    assert [h["lr"] for h in history] == pytest.approx([1e-3, 5e-4])  # each epoch's last step: 1 - step / 2
    # 3 steps would have decayed otherwise: another run, refused in one line
    proc = _run(run_dir, "--cyclegan_steps=3", "--cyclegan_steps_per_epoch=1", "--cyclegan_lr=1e-3",
                "--cyclegan_lr_decay=0")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "--cyclegan_steps: 2 -> 3" in errors[0], proc.stderr[-2000:]


@pytest.mark.parametrize("flag, name", [("--cycle_weight=-1", "cycle_weight"), ("--pool_size=5000", "pool_size"),
                                        ("--gan_loss=wgan", "gan_loss"), ("--noise_shape=4,4", "noise_shape"),
                                        ("--latent_weight=-1", "latent_weight")])
def test_cli_rejects_out_of_range_flags(tmp_path, flag, name):
    proc = _run(str(tmp_path / "run"), flag)
    assert proc.returncode != 0 and name in proc.stderr
    assert not os.path.exists(tmp_path / "run" / "cyclegan")


def test_cli_noise_generator_writes_the_encoder_and_records_the_flags(tmp_path):
    run_dir = str(tmp_path / "run")
    proc = _run(run_dir, "--cyclegan_steps=1", "--noise_shape=4,4,2", "--latent_weight=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = os.path.join(run_dir, "cyclegan")
    assert os.path.exists(os.path.join(out, "enc.keras"))
    flags = open(os.path.join(out, "flags.txt")).read()
    assert "--noise_shape=4,4,2" in flags and "--latent_weight=2.0" in flags
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert "latent" in metrics["history"][-1] and metrics["translation"]["translated"] == 4000
    # Another noise shape is another run: refused in one line, naming the flag.
    proc = _run(run_dir, "--cyclegan_steps=1", "--noise_shape=2,2,2", "--latent_weight=2")
    assert proc.returncode == 2 and "--noise_shape: 4,4,2 -> 2,2,2" in proc.stderr, proc.stderr[-2000:]
    # bench/cyclegan_checkpoint_quality.py reads the run's checkpoint and translates exactly as the stage did: the
    # first 512 translations of each kind (one batch of --translate_batch_size, as the stage's first) equal the pair
    # shards' first 512 (same networks, same per-image noise).
    probe = [sys.executable, os.path.join(ROOT, "bench", "cyclegan_checkpoint_quality.py"), f"--run_dir={run_dir}",
             *TINY, "--noise_shape=4,4,2", "--latent_weight=2", "--images=512"]
    proc = subprocess.run(probe, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["step"] == 1 and report["checkpoint"].endswith("ckpt-1")
    for kind in ("source", "target"):
        records = pairs.parse_pairs(next(iter(pairs.pair_records(os.path.join(run_dir, "pairs"), kind).batch(512))))
        translated = records["translated"].numpy()
        assert report["translated_sha256"][kind] == hashlib.sha256(translated.tobytes()).hexdigest(), kind
    assert set(report["diversity"]) == {"x_s", "G_ST(x_s)", "x_t", "G_TS(x_t)"}
    assert report["same_image_two_codes"] > 0  # another code, another G^ST(x_s)
    assert report["source_net_accuracy"].startswith("skipped: no source network")
    proc = subprocess.run(probe[:2] + [f"--run_dir={tmp_path / 'none'}"] + probe[3:], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and len(errors) == 1 and "no CycleGAN checkpoint" in errors[0], proc.stderr[-2000:]
