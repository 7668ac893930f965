"""The pipeline's plan, its skip-completed logic and its in-process run (stage functions faked)."""

import json
import os

import pytest

from daaa_tf import StageError, experiments
from daaa_tf.stages import pipeline as pl


def test_plan_shares_source_and_cyclegan_and_lays_out_variants(tmp_path):
    stages = pl.plan({"run_dir": str(tmp_path)}, ("S", "full"), seeds=(0, 1), export=True, revgrad=True)
    names = [s.name for s in stages]
    assert names[:2] == ["source", "cyclegan"]
    assert names[-2:] == ["export saved_model", "export tflite"]
    adapt = {s.name: s.config for s in stages if s.name.startswith("adapt")}
    assert set(adapt) == {"adapt S seed 0", "adapt full seed 0", "adapt S seed 1", "adapt full seed 1"}
    assert adapt["adapt full seed 0"].out_dir == f"{tmp_path}/adapt"
    assert adapt["adapt full seed 1"].out_dir == f"{tmp_path}/variants/full/seed1"
    s1 = adapt["adapt S seed 1"]
    assert s1.streams == ("s",) and s1.beta == 0.0 and s1.seed == 1 and s1.pairs_dir == f"{tmp_path}/pairs"
    revgrad = [s.config for s in stages if s.name.startswith("revgrad")]
    assert [c.out_dir for c in revgrad] == [f"{tmp_path}/variants/RevGrad/seed{k}" for k in (0, 1)]
    with pytest.raises(ValueError, match="--variants"):
        pl.plan({"run_dir": str(tmp_path)}, ("nonsense",))
    with pytest.raises(ValueError, match="--proportions"):
        pl.plan({"run_dir": str(tmp_path), "proportions": ["0.5"] * 4})


def test_variant_groups_expand_from_the_grid():
    assert experiments.expand(["table1"]) == experiments.TABLE1
    assert experiments.expand(["full", "table4"]) == ("full", "AT-l1", "AT-mmd", "AT-jmmd")
    assert {"EM-A-noAT", "EM-B-noAT", "EM-C-noAT"} <= set(experiments.expand(["table3"]))
    assert all(v in experiments.VARIANTS for v, *_ in experiments.ABLATION_ROWS)


def test_run_skips_completed_stages_and_reports_a_failed_one(tmp_path, capsys):
    done = tmp_path / "done.json"
    done.write_text("{}")
    incomplete_manifest = tmp_path / "manifest.json"
    incomplete_manifest.write_text(json.dumps({"complete": False}))
    ran = []
    stages = [pl.Stage("source", lambda: ran.append("source"), str(done)),
              pl.Stage("cyclegan", lambda: ran.append("cyclegan"), str(incomplete_manifest)),
              pl.Stage("adapt full seed 0", lambda: ran.append("adapt"), str(tmp_path / "missing.json"))]
    times = pl.run(stages, log=print)
    assert ran == ["cyclegan", "adapt"]
    assert times["source"] == 0.0 and times["cyclegan"] > 0 and times["adapt full seed 0"] > 0
    out = capsys.readouterr().out
    assert "source: complete, skipped" in out
    # what runs after each stage is named, each stage's wall time is printed, and no pipeline-wide guess
    assert "[2/3] cyclegan: running (" in out and "; then adapt full seed 0)" in out
    assert "[3/3] adapt full seed 0: running (" in out and "; the last stage)" in out
    assert "[2/3] cyclegan: done in 0.0 min" in out and "left" not in out

    def boom():
        raise ValueError("bad\nthing")

    with pytest.raises(StageError, match="stage 'bad' failed: ValueError: bad thing") as e:
        pl.run([pl.Stage("bad", boom, str(tmp_path / "x"), out_dir=str(tmp_path / "bad"))], log=print)
    assert "\n" not in str(e.value) and "Traceback" in (tmp_path / "bad" / "error.txt").read_text()
    with pytest.raises(StageError, match="stage 'export tflite' failed .status 1"):
        pl.run([pl.Stage("export tflite", lambda: 1, str(tmp_path / "x"))], log=print)


def test_run_pipeline_calls_the_stage_functions_in_process(tmp_path, monkeypatch):
    import daaa_tf.report.tables
    import daaa_tf.stages.adapt
    import daaa_tf.stages.cyclegan
    import daaa_tf.stages.export
    import daaa_tf.stages.revgrad
    import daaa_tf.stages.source
    from daaa_tf import config

    calls = []

    def fake(kind, done="metrics.json"):
        def run(cfg, *args):
            calls.append((kind, cfg, *args))
            out = cfg.pairs_dir if kind == "cyclegan" else getattr(cfg, "out_dir", None) or cfg.export_dir
            os.makedirs(out, exist_ok=True)
            with open(os.path.join(out, done), "w") as fh:
                json.dump({"complete": True}, fh)
        return run

    monkeypatch.setattr(daaa_tf.stages.source, "train_source", fake("source"))
    monkeypatch.setattr(daaa_tf.stages.cyclegan, "run_cyclegan", fake("cyclegan", "manifest.json"))
    monkeypatch.setattr(daaa_tf.stages.adapt, "run_adaptation", fake("adapt"))
    monkeypatch.setattr(daaa_tf.stages.revgrad, "run_revgrad", fake("revgrad"))
    monkeypatch.setattr(daaa_tf.stages.export, "export_model", fake("export", "parity.json"))
    monkeypatch.setattr(daaa_tf.report.tables, "make_report",
                        lambda run_dir: open(os.path.join(run_dir, "results.md"), "w").write("report"))
    run_dir = str(tmp_path / "run")
    cfg = config.PipelineConfig(run_dir=run_dir, variants=("S+Tf+AT",), seeds=2, revgrad=True, export=False)
    results = pl.run_pipeline({"beta": 0.5, "revgrad_optimizer": "", "optimizer": "sgd"}, cfg, log=print)
    assert open(results).read() == "report"
    kinds = [c[0] for c in calls]
    assert kinds == ["source", "cyclegan", "adapt", "revgrad", "adapt", "revgrad"]
    adapt = [c[1] for c in calls if c[0] == "adapt"]
    assert [a.seed for a in adapt] == [0, 1] and all(a.beta == 0.5 and a.streams == ("s", "tf") for a in adapt)
    assert calls[3][1].optimizer == "sgd"  # --revgrad_optimizer='' falls back to --optimizer
    flags_txt = open(os.path.join(run_dir, "variants", "S+Tf+AT", "seed1", "flags.txt")).read().splitlines()
    assert "--streams=s,tf" in flags_txt and "--seed=1" in flags_txt and "--beta=0.5" in flags_txt
    pipeline_flags = open(os.path.join(run_dir, "pipeline.flags")).read().splitlines()
    assert f"--run_dir={os.path.abspath(run_dir)}" in pipeline_flags and "--seeds=2" in pipeline_flags
    assert "--streams=s,tf,t,sf" in pipeline_flags  # the base settings, not a variant's
    assert json.load(open(os.path.join(run_dir, "pipeline.json")))["stage_seconds"]
    calls.clear()
    pl.run_pipeline({"beta": 0.5}, cfg, log=print)  # rerun: every stage complete, nothing runs
    assert calls == []
