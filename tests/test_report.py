"""The report: tables read from metrics.json (mean ± std over seeds), partial runs, plots, paper numbers."""

import os
import subprocess
import sys

import numpy as np
import pytest

from daaa_tf import io, runtime
from daaa_tf.models import build_classifier
from daaa_tf.report import tables as report

# target_test_accuracy per seed, written into the fake run directory below
ACC = {"full": [0.91, 0.935, 0.95], "full-noAT": [0.88, 0.9], "RevGrad": [0.7], "EM-A": [0.6, 0.66], "S+Tf": [0.8]}


def write_run(path, acc, seed, epochs=3, at=None):
    hist = {"val_accuracy": list(np.linspace(acc - 0.1, acc, epochs)), "loss": [1.0] * epochs}
    if at is not None:
        hist["at"] = at
    io.write_json(os.path.join(path, "metrics.json"),
                  {"target_test_accuracy": acc, "history": hist, "steps": 30 * epochs, "train_seconds": 12.5,
                   "config": {"seed": seed, "target": "demo", "arch": "digit_cnn"}})


def fake_images(spec, size, n):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), np.arange(n) % 10


@pytest.fixture
def run_dir(tmp_path):
    d = str(tmp_path / "exp")
    io.write_json(os.path.join(d, "source", "metrics.json"),
                  {"source_test_accuracy": 0.987, "target_test_accuracy": 0.456, "arch": "digit_cnn",
                   "source": "demo:mnist", "target": "demo:mnist_m", "epochs": 2, "train_seconds": 3.0})
    runtime.set_seed(0)
    net = build_classifier("digit_cnn", 10, 16)
    net.save(os.path.join(d, "source", "model.keras"))
    for variant, accs in ACC.items():
        for seed, acc in enumerate(accs):
            path = (os.path.join(d, "adapt") if variant == "full" and seed == 0
                    else os.path.join(d, "variants", variant, f"seed{seed}"))
            at = {"full": [0.3, 0.2, 0.15], "full-noAT": [0.4, 0.6, 0.8]}.get(variant)
            write_run(path, acc, seed, at=None if at is None else [a + 0.01 * seed for a in at])
            if seed == 0 and variant in ("full", "full-noAT"):
                net.set_weights([w + np.float32(0.05 * (1 + seed)) for w in net.get_weights()])
                net.save(os.path.join(path, "model.keras"))
    os.makedirs(os.path.join(d, "variants", "Tf", "seed0"))  # started, no metrics.json yet
    return d


def _row(text, method):
    return next(line for line in text.splitlines() if line.startswith(f"| {method} |"))


def test_tables_match_metrics_json(run_dir):
    result = report.make_report(run_dir, num_images=4, load_images=fake_images)
    text = open(os.path.join(run_dir, "results.md")).read()
    for variant, method, paper in (("full", "Ours w L_AT", "95.6"), ("full-noAT", "Ours wo L_AT", "93.5"),
                                   ("EM-A", "EM-A + L_AT (synchronous M_post, --sync_every=1)", "—")):
        acc = np.array(ACC[variant]) * 100
        mean, std = acc.mean(), acc.std(ddof=1)  # computed here, independently of the report
        row = _row(text, method)
        assert f"| {mean:.2f} ± {std:.2f} | {len(acc)} |" in row and row.endswith(f"| {paper} |")
        assert result["stats"][variant]["mean"] == pytest.approx(mean)
        assert result["stats"][variant]["std"] == pytest.approx(std)
        assert result["stats"][variant]["n"] == len(acc)
    assert "| 70.00 | 1 | 0 | 81.5 |" in _row(text, "RevGrad [5]")
    assert "| 80.00 | 1 | 0 | 78.5 |" in _row(text, "CNN | S + T_f")
    assert "| 45.60 | 1 | 0 | 45.6 |" in _row(text, "CNN (the source network, source/)")
    assert "Source network on the source test split: 98.70 % (paper: 99.3)" in text
    assert result["task"] == "MNIST→MNIST-M" and result["stats"]["full"]["seeds"] == [0, 1, 2]
    # what was found: missing Table-1 rows and the started-but-unfinished run
    assert "Table-1 rows not run (no metrics.json): S, Tf, S+Tf+AT" in text
    assert "incomplete (directory without metrics.json" in text and os.path.join("variants", "Tf", "seed0") in text
    assert result["incomplete"] == [os.path.join("variants", "Tf", "seed0")]
    assert io.read_json(os.path.join(run_dir, "results.json"))["stats"]["full"]["n"] == 3


@pytest.mark.parametrize("settings, method, paper, plot_label", [
    ({"beta": 0.0}, "Ours wo L_AT (--beta=0)", "93.5", "wo L_AT (beta = 0)"),
    ({"beta": 0.0, "augment_streams": ["t"], "augment_cutout": 0.5, "augment_shift": 0},
     "Ours wo L_AT (--beta=0) + beyond the paper (--augment_streams=t --augment_cutout=0.5)", "—",
     "wo L_AT (beta = 0) + beyond the paper"),
    ({"beta": 0.5, "augment_streams": ["t", "sf"], "augment_cutout": 0.0, "augment_shift": 2},
     "Ours w L_AT + beyond the paper (--augment_streams=t,sf --augment_shift=2)", "—",
     "w L_AT (DAAA) + beyond the paper")])
def test_the_full_row_is_named_after_the_settings_it_ran_with(run_dir, settings, method, paper, plot_label):
    # The pipeline's main run is whatever its flags say: the consistency config's run is no "Ours w L_AT" row
    # to hold against the paper's 95.6.
    path = os.path.join(run_dir, "adapt", "metrics.json")
    m = io.read_json(path)
    io.write_json(path, {**m, "config": {**m["config"], **settings}})
    result = report.make_report(run_dir, num_images=2, load_images=fake_images)
    text = open(os.path.join(run_dir, "results.md")).read()
    assert _row(text, method).endswith(f"| {paper} |")
    assert _row(text, f"{method} (criterion L2, reference)")  # the ablation table's reference row (EM-A ran)
    assert "| Ours w L_AT |" not in text and result["paper"]["full"] == paper
    assert result["paper"]["full-noAT"] == "93.5"  # the variants keep their own rows
    assert result["plot_notes"]["attention"].endswith(f"adapted wo L_AT, adapted {plot_label} (cf. Fig. 5)")


def test_plots_are_written(run_dir, tmp_path):
    import matplotlib.image as mpimg

    out = str(tmp_path / "report")
    result = report.make_report(run_dir, out_dir=out, num_images=3, load_images=fake_images)
    assert result["plots"] == {"accuracy": "accuracy_vs_epoch.png", "at_trend": "at_trend.png",
                               "attention": "attention_maps.png"}
    for name in result["plots"].values():
        path = os.path.join(out, name)
        with open(path, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
        img = mpimg.imread(path)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    text = open(os.path.join(out, "results.md")).read()
    assert "![attention](attention_maps.png)" in text and "wo L_AT" in result["plot_notes"]["attention"]
    assert not os.path.exists(os.path.join(run_dir, "results.md"))  # everything went to out_dir


def test_curves_mean_band_input():
    runs = [report.Run("full", s, "", {"target_test_accuracy": 0.5, "history": {"at": h}})
            for s, h in enumerate(([1.0, 2.0, 3.0], [3.0, 4.0]))]
    from daaa_tf.report.plots import curves

    np.testing.assert_array_equal(curves(runs, "at"), [[1.0, 2.0], [3.0, 4.0]])  # cut to the shortest
    assert curves(runs, "missing") is None


def test_partial_run_only_source(tmp_path):
    d = str(tmp_path / "partial")
    io.write_json(os.path.join(d, "source", "metrics.json"),
                  {"source_test_accuracy": 0.99, "target_test_accuracy": 0.5, "arch": "digit_cnn",
                   "source": "demo:mnist", "target": "demo:mnist_m"})
    result = report.make_report(d, load_images=fake_images)
    text = open(os.path.join(d, "results.md")).read()
    assert "Table-1 rows not run (no metrics.json): S, RevGrad, Tf, S+Tf, S+Tf+AT, full-noAT, full" in text
    assert "| 50.00 | 1 | 0 | 45.6 |" in text and "## Ablations" not in text
    assert result["plots"] == {"accuracy": None, "at_trend": None, "attention": None}
    assert "skipped" in result["plot_notes"]["attention"] and "skipped" in result["plot_notes"]["at_trend"]


def test_empty_and_missing_run_dir(tmp_path):
    os.makedirs(tmp_path / "empty")
    report.make_report(str(tmp_path / "empty"), load_images=fake_images)
    assert "no finished run at all" in open(tmp_path / "empty" / "results.md").read()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        report.make_report(str(tmp_path / "nope"))


def test_office_task_and_paper_numbers():
    runs = {"source": [report.Run("source", 0, "", {"target_test_accuracy": 0.6, "source": "office31:/o/dslr",
                                                    "target": "office31:/o/amazon"})]}
    assert report.detect_task(runs) == "D→A"
    assert report.paper_value("D→A", "full") == "74.3" and report.paper_value("D→A", "RevGrad") == "68.2"
    assert report.paper_value("D→A", "AT-mmd") == "66.2" and report.paper_value("A→W", "AT-mmd") == "—"
    assert report.paper_value("A→D", "EM-B") == "very low" and report.paper_value("W→D", "full-noAT") == "100"
    assert report.paper_value("MNIST→MNIST-M", "S+Tf+AT") == "85.7" and report.paper_value(None, "full") == "—"


def test_entry_point_positional_run_dir(run_dir):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    # no model.keras files needed for the tables: remove the attention inputs so it never loads data
    os.remove(os.path.join(run_dir, "source", "model.keras"))
    out = subprocess.run([sys.executable, "-m", "trainers.report", run_dir], capture_output=True, text=True,
                         env=env, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Ours w L_AT" in out.stdout and "wrote" in out.stdout


def test_title_and_code_versions(tmp_path, monkeypatch):
    """The title is the run directory as named (no absolute temporary path); the code that made the runs is
    listed, one line per version when they differ."""
    monkeypatch.chdir(tmp_path)
    write_run(os.path.join("exp", "adapt"), 0.9, 0)
    write_run(os.path.join("exp", "variants", "full", "seed1"), 0.8, 1)
    text = report.results_markdown("exp/", *_found("exp"))
    assert text.startswith("# Results: exp\n") and "code: not recorded" in text and "all runs" in text
    for path, code in ((os.path.join("exp", "adapt"), "daaa-tf 0.1.0 (git 1234567)"),
                       (os.path.join("exp", "variants", "full", "seed1"), "daaa-tf 0.1.0 (git 89abcde+changes)")):
        m = io.read_json(os.path.join(path, "metrics.json"))
        io.write_json(os.path.join(path, "metrics.json"), {**m, "code": code})
    text = report.results_markdown("exp", *_found("exp"))
    assert "- code: daaa-tf 0.1.0 (git 1234567): 1 run(s)" in text
    assert "- code: daaa-tf 0.1.0 (git 89abcde+changes): 1 run(s)" in text
    assert report.make_report("./exp/", load_images=fake_images)["run_dir"] == "exp"  # results.json likewise


def _found(run_dir):
    runs, incomplete, notes = report.collect(run_dir)
    return runs, report.summarize(runs), "MNIST→MNIST-M", incomplete, notes, {}


def test_code_version_names_the_checkout():
    code = runtime.code_version()
    assert code.startswith("daaa-tf ")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.exists(os.path.join(repo, ".git")):
        head = subprocess.run(["git", "-C", repo, "rev-parse", "--short=7", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        assert f"(git {head}" in code
