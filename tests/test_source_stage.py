"""The source stage as a user runs it: python -m trainers.source on the embedded demo, and bad flags."""

import json
import os
import subprocess
import sys

from daaa_tf import runtime
from daaa_tf.models import load_classifier, model_spec


def run(args, tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-m", "trainers.source", f"--run_dir={tmp_path}", *args],
                          capture_output=True, text=True, env=env)


def test_source_stage_on_demo_writes_model_metrics_flags(tmp_path):
    out = run(["--source_epochs=1", "--digit_widths=16,32,48"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "source only: source test accuracy" in out.stdout
    assert "`shuffle=True` was passed" not in out.stderr  # fit(shuffle=False): the dataset is shuffled already
    m = json.loads((tmp_path / "source" / "metrics.json").read_text())
    assert m["source"] == "demo:mnist" and m["target"] == "demo:mnist_m" and m["num_classes"] == 10
    assert m["source_test_accuracy"] > 0.5  # one epoch on 2,000 real digits
    assert 0.0 <= m["target_test_accuracy"] <= 1.0
    assert m["code"] == runtime.code_version()  # the code that made it (this checkout)
    assert model_spec(load_classifier(str(tmp_path / "source" / "model.keras")))["widths"] == (16, 32, 48)
    flags_txt = (tmp_path / "source" / "flags.txt").read_text().splitlines()
    assert "--source_epochs=1" in flags_txt and f"--run_dir={tmp_path}" in flags_txt
    assert all(line.startswith(("--source", "--target", "--run_dir", "--arch", "--image_size", "--weights",
                                "--attention_layers", "--seed", "--strategy", "--precision", "--eval_batch_size",
                                "--profile_steps", "--digit_widths"))
               for line in flags_txt), flags_txt  # the stage's own flags only, no TF/absl internals
    assert os.listdir(tmp_path / "source" / "tensorboard")
    # rerun with more epochs resumes after the completed one instead of starting again
    again = run(["--source_epochs=2", "--digit_widths=16,32,48"], tmp_path)
    assert again.returncode == 0 and "resuming the source stage after epoch 1" in again.stdout


def test_bad_flags_and_domains_give_one_line(tmp_path):
    for args, needle in ((["--image_size=4"], "image_size"), (["--source=nowhere:/x"], "nowhere"),
                         (["--source=mnist:/definitely/missing"], "/definitely/missing"),
                         (["--arch=vgg"], "arch")):
        out = run(args, tmp_path)
        assert out.returncode == 2, args
        assert needle in out.stderr and "Traceback" not in out.stderr, (args, out.stderr[-1500:])
