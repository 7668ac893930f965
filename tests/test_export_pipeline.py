"""The pipeline never loses a finished run to an export format outside its parity bounds.

The stages are stubbed (small scripts run as ``python -m``) so that this runs in seconds: an export stage
that exits with PARITY_FAILED_EXIT is reported and passed over, the report is still written, and the
pipeline ends non-zero with the failed formats named on its last line; a crash still stops it.
"""

import json
import os

import pytest
import test_export_fixtures as fx
from test_export_fixtures import ROOT

from daaa_tf import StageError
from daaa_tf.serving.parity import PARITY_FAILED_EXIT
from daaa_tf.stages import pipeline as pl

trained_model = fx.trained_model  # the session fixture shared by the export tests

STUB = """import json, os, sys
run_dir, name, status = sys.argv[-3], sys.argv[-2], int(sys.argv[-1])  # after --flagfile
open(os.path.join(run_dir, "ran.txt"), "a").write(name + "\\n")
if name == "export":
    os.makedirs(os.path.join(run_dir, "export"), exist_ok=True)
    rows = {"saved_model": {"ok": True, "installed": True},
            "dynamic": {"ok": False, "installed": False, "violations": ["top-1 agreement 0.5 < 0.98"]}}
    json.dump({"complete": False, "reference": {}, "formats": rows},
              open(os.path.join(run_dir, "export", "parity.json"), "w"))
sys.exit(status)
"""


@pytest.fixture
def stub_stages(tmp_path, monkeypatch):
    """make(name, status, parity_stage) -> a Stage running the stub script, which exits with ``status``."""
    (tmp_path / "stub_stage.py").write_text(STUB)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), ROOT, os.environ.get("PYTHONPATH", "")]))
    run_dir = tmp_path / "run"
    run_dir.mkdir()

    def make(name, status=0, parity_stage=False):
        return pl.Stage(name, "stub_stage", str(run_dir / f"{name}.done"), (str(run_dir), name, str(status)),
                        parity_stage=parity_stage)

    return run_dir, make


def test_export_stages_are_parity_stages_and_nothing_else_is(tmp_path):
    stages = pl.plan(str(tmp_path), ("full",), export=True, revgrad=True)
    assert [s.name for s in stages if s.parity_stage] == ["export saved_model", "export tflite"]


def test_a_parity_failure_is_passed_over_but_a_crash_still_stops(stub_stages, monkeypatch):
    run_dir, make = stub_stages
    logged = []
    stages = [make("train"), make("export", PARITY_FAILED_EXIT, parity_stage=True), make("after")]
    times = pl.run(stages, "flags.txt", log=logged.append)
    assert (run_dir / "ran.txt").read_text().split() == ["train", "export", "after"]
    assert set(times) == {"train", "export", "after"}
    assert any("outside their parity bounds" in line for line in logged)
    assert pl.failed_exports(str(run_dir)) == ["dynamic"]
    with pytest.raises(StageError, match="stage 'export' failed \\(exit 1\\)"):
        pl.run([make("export", 1, parity_stage=True)], "flags.txt", log=logged.append)
    with pytest.raises(StageError, match="stage 'train' failed \\(exit 3\\)"):  # 3 is a failure elsewhere
        pl.run([make("train", PARITY_FAILED_EXIT)], "flags.txt", log=logged.append)


def test_the_pipeline_writes_its_report_and_ends_naming_the_failed_format(stub_stages, monkeypatch, capsys):
    from absl import flags

    import trainers.pipeline
    from trainers import flags as tflags

    run_dir, make = stub_stages
    stages = [make("train"), make("export", PARITY_FAILED_EXIT, parity_stage=True)]
    monkeypatch.setattr(pl, "plan", lambda *args, **kwargs: stages)
    if "run_dir" not in flags.FLAGS:
        tflags.define_all()
    flags.FLAGS.unparse_flags()
    try:
        argv = flags.FLAGS(["pipeline", f"--run_dir={run_dir}"])
        status = trainers.pipeline.main(argv)
    finally:
        flags.FLAGS.unparse_flags()
    assert status == PARITY_FAILED_EXIT != 0
    assert (run_dir / "results.md").is_file() and (run_dir / "results.json").is_file()
    assert json.load(open(run_dir / "pipeline.json"))["export_failed"] == ["dynamic"]
    out = capsys.readouterr()
    last = out.err.strip().splitlines()[-1]
    assert last.startswith("error: export dynamic outside the parity bounds, not installed"), out.err[-800:]
    assert "saved_model" not in last


def test_a_real_export_outside_its_bounds_exits_3_and_the_pipeline_goes_on(trained_model, stub_stages):
    # The real export.tflite in its own process, on the demo target, with a bound no model can meet.
    run_dir, make = stub_stages
    flagfile = run_dir / "pipeline.flags"
    flagfile.write_text("")
    export = pl.Stage("export tflite", "export.tflite", str(run_dir / "export" / "parity.json"),
                      (f"--run_dir={run_dir}", f"--model={trained_model}", "--target=demo",
                       "--tflite_formats=float,dynamic", "--dynamic_min_agreement=1.01"), parity_stage=True)
    logged = []
    pl.run([export, make("after")], str(flagfile), log=logged.append)
    assert (run_dir / "ran.txt").read_text().split() == ["after"]
    assert pl.failed_exports(str(run_dir)) == ["dynamic"]
    assert (run_dir / "export" / "model_float.tflite").is_file()
    assert not (run_dir / "export" / "model_dynamic.tflite").exists()
    parity = json.load(open(run_dir / "export" / "parity.json"))
    assert not parity["complete"] and parity["formats"]["dynamic"]["violations"] == [
        f"top-1 agreement {parity['formats']['dynamic']['top1_agreement']:.4f} < 1.0100"]
    assert parity["reference"]["num_examples"] > 100  # the whole demo target test set (--num_parity=0)
    assert pl.failure_line(str(run_dir), ["dynamic"]).startswith("error: export dynamic outside the parity bounds")
