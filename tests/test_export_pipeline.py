"""The pipeline never loses a finished run to an export format outside its parity bounds.

The stages are stubbed (in-process callables, as the pipeline runs its stages) so that this runs in seconds: an
export stage that returns PARITY_FAILED_EXIT is reported and passed over, the report is still written, and the
pipeline ends non-zero with the failed formats named on its last line; a crash still stops it. The last test
runs the real export stage (``daaa_tf.stages.export.export_model``, the body of ``export.tflite``) with a bound
no model can meet.
"""

import dataclasses
import json
import os

import pytest
import test_export_fixtures as fx

from daaa_tf import StageError, config
from daaa_tf.serving.parity import PARITY_FAILED_EXIT
from daaa_tf.stages import pipeline as pl

trained_model = fx.trained_model  # the session fixture shared by the export tests


def _stub(run_dir, name, status):
    """What a stage does here: note that it ran; the export stub leaves one format outside its bounds."""
    def run():
        with open(os.path.join(run_dir, "ran.txt"), "a") as fh:
            fh.write(name + "\n")
        if name == "export":
            os.makedirs(os.path.join(run_dir, "export"), exist_ok=True)
            rows = {"saved_model": {"ok": True, "installed": True},
                    "dynamic": {"ok": False, "installed": False, "violations": ["top-1 agreement 0.5 < 0.98"]}}
            with open(os.path.join(run_dir, "export", "parity.json"), "w") as fh:
                json.dump({"complete": False, "reference": {}, "formats": rows}, fh)
        return status
    return run


@pytest.fixture
def stub_stages(tmp_path):
    """make(name, status, parity_stage, cfg) -> a Stage whose function returns ``status``."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()

    def make(name, status=0, parity_stage=False, cfg=None):
        return pl.Stage(name, _stub(str(run_dir), name, status), str(run_dir / f"{name}.done"), cfg,
                        cfg.out_dir if cfg is not None and hasattr(cfg, "out_dir") else "", parity_stage)

    return run_dir, make


def test_export_stages_are_parity_stages_and_nothing_else_is(tmp_path):
    stages = pl.plan({"run_dir": str(tmp_path)}, ("full",), export=True, revgrad=True)
    assert [s.name for s in stages if s.parity_stage] == ["export saved_model", "export tflite"]


def test_a_parity_failure_is_passed_over_but_a_crash_still_stops(stub_stages):
    run_dir, make = stub_stages
    logged = []
    stages = [make("train"), make("export", PARITY_FAILED_EXIT, parity_stage=True), make("after")]
    times = pl.run(stages, log=logged.append)
    assert (run_dir / "ran.txt").read_text().split() == ["train", "export", "after"]
    assert set(times) == {"train", "export", "after"}
    assert any("outside their parity bounds" in line for line in logged)
    assert pl.failed_exports(str(run_dir)) == ["dynamic"]
    with pytest.raises(StageError, match="stage 'export' failed \\(status 1"):
        pl.run([make("export", 1, parity_stage=True)], log=logged.append)
    with pytest.raises(StageError, match="stage 'train' failed \\(status 3"):  # 3 is a failure elsewhere
        pl.run([make("train", PARITY_FAILED_EXIT)], log=logged.append)


def test_the_pipeline_writes_its_report_and_ends_naming_the_failed_format(stub_stages, monkeypatch, capsys):
    from absl import flags

    import trainers.pipeline
    from trainers import flags as tflags

    run_dir, make = stub_stages
    values = {"run_dir": str(run_dir)}
    stages = [make("train", cfg=config.build(config.SourceConfig, values)),
              make("export", PARITY_FAILED_EXIT, parity_stage=True,
                   cfg=config.build(config.ExportConfig, values))]
    monkeypatch.setattr(pl, "plan", lambda *args, **kwargs: stages)
    tflags.define_flags(config.PipelineConfig, config.SourceConfig, config.CycleGANConfig, config.AdaptConfig,
                        config.RevGradConfig, config.ExportConfig)
    flags.FLAGS.unparse_flags()
    try:
        argv = flags.FLAGS(["pipeline", f"--run_dir={run_dir}"])
        status = trainers.pipeline.main(argv)
    finally:
        flags.FLAGS.unparse_flags()
    assert status == PARITY_FAILED_EXIT != 0
    assert (run_dir / "ran.txt").read_text().split() == ["train", "export"]
    assert (run_dir / "results.md").is_file() and (run_dir / "results.json").is_file()
    assert json.load(open(run_dir / "pipeline.json"))["export_failed"] == ["dynamic"]
    out = capsys.readouterr()
    last = out.err.strip().splitlines()[-1]
    assert last.startswith("error: export dynamic outside the parity bounds, not installed"), out.err[-800:]
    assert "saved_model" not in last


def test_a_real_export_outside_its_bounds_returns_3_and_the_pipeline_goes_on(trained_model, stub_stages):
    # The real export stage as the pipeline plans it, on the demo target, with a bound no model can meet.
    run_dir, make = stub_stages
    values = {"run_dir": str(run_dir), "model": trained_model, "target": "demo",
              "tflite_formats": ["float", "dynamic"], "dynamic_min_agreement": 1.01}
    export = next(s for s in pl.plan(values, export=True) if s.name == "export tflite")
    assert export.parity_stage
    statuses = []
    export = dataclasses.replace(export, run=lambda real=export.run: statuses.append(real()) or statuses[-1])
    logged = []
    pl.run([export, make("after")], log=logged.append)
    assert statuses == [PARITY_FAILED_EXIT] and PARITY_FAILED_EXIT == 3  # what export.tflite exits with
    assert (run_dir / "ran.txt").read_text().split() == ["after"]
    assert any("outside their parity bounds" in line for line in logged)
    assert pl.failed_exports(str(run_dir)) == ["dynamic"]
    assert (run_dir / "export" / "model_float.tflite").is_file()
    assert not (run_dir / "export" / "model_dynamic.tflite").exists()
    parity = json.load(open(run_dir / "export" / "parity.json"))
    assert not parity["complete"] and parity["formats"]["dynamic"]["violations"] == [
        f"top-1 agreement {parity['formats']['dynamic']['top1_agreement']:.4f} < 1.0100"]
    assert parity["reference"]["num_examples"] > 100  # the whole demo target test set (--num_parity=0)
    assert pl.failure_line(str(run_dir), ["dynamic"]).startswith("error: export dynamic outside the parity bounds")


def test_an_export_of_an_earlier_model_is_stale_not_done(trained_model, tmp_path):
    # After the adaptation ran again (--overwrite, or trained on with more --epochs), <run_dir>/adapt/model.keras
    # is another model: the pipeline must not skip the export stage as complete and leave the old model's export.
    # It moves that export aside (kept) and exports the current model.
    import shutil

    from daaa_tf.io import sha256_file
    from daaa_tf.models import load_classifier

    run_dir = tmp_path / "run"
    (run_dir / "adapt").mkdir(parents=True)
    model_path = run_dir / "adapt" / "model.keras"
    shutil.copy(trained_model, model_path)

    def stage(**extra):
        values = {"run_dir": str(run_dir), "target": "demo", "num_parity": 64, **extra}
        return next(s for s in pl.plan(values, export=True) if s.name == "export saved_model")

    def exported_sha(export_dir=run_dir / "export"):
        return json.load(open(export_dir / "parity.json"))["reference"]["model_sha256"]

    logged = []
    assert not pl.stale_export(stage().config)  # nothing exported yet
    pl.run([stage()], log=logged.append)
    assert pl.is_complete(stage()) and exported_sha() == sha256_file(trained_model)
    assert not pl.stale_export(stage().config)
    pl.run([stage()], log=logged.append)
    assert "complete, skipped" in logged[-1]
    model = load_classifier(str(model_path))
    model.set_weights([w + 0.01 for w in model.get_weights()])
    model.save(model_path)
    assert not pl.is_complete(stage()) and pl.stale_export(stage().config)
    pl.run([stage()], log=logged.append)
    assert pl.is_complete(stage()) and exported_sha() == sha256_file(str(model_path))
    (old,) = [p for p in os.listdir(run_dir) if p.startswith("export.old-")]
    assert exported_sha(run_dir / old) == sha256_file(trained_model)
    assert (run_dir / old / "saved_model").is_dir()
