"""bin/bench.py writes docs/benchmarks.md from its results: machine, date, command and every figure."""

import importlib.util
import json
import subprocess
import sys

from tests.conftest import REPO

RESULTS = {
    "machine": {"cpu": "Test CPU @ 2.00GHz", "cores": 2, "python": "3.11.9", "torch": "2.14.1",
                "opencv": "5.1.0.95", "av": "18.1.0", "numpy": "2.4.6"},
    "date": "2026-12-03 09:00 UTC",
    "command": "bin/bench --out bench.json",
    "random_init_weights": ["style_monet"],
    "cases": {
        "decode 854x480": {"frames": 1500, "seconds": 2.5, "fps": 597.3, "peak_rss_mib": 123.4},
        "run noir 854x480 long": {"frames": 1500, "seconds": 8.7, "fps": 172.71, "peak_rss_mib": 648.2,
                                  "tmp_files_seen": 0},
        "stages noir 854x480": {"frames": 150, "seconds": 0.9, "stage_fps": {"decode": 846.2, "stage 1 grade": 2165.0,
                                                                           "encode": 220.4},
                                "stage_cpu_ms": {"decode": 1.9, "stage 1 grade": 0.5, "encode": 8.1},
                                "stage_cores": {"decode": 1.6, "stage 1 grade": 1.0, "encode": 1.78},
                                "stage 1 colorize: step predict alone fps": 98.4, "peak_rss_mib": 400.0},
        "temporal quality 427x240 (proxy flicker)": {"frames": 48, "seconds": 1.0, "fps": 48.0, "peak_rss_mib": 300.0,
                                                     "warping_error_per_frame": 0.00456,
                                                     "warping_error_stabilized": 0.00079},
    },
    "ratios": {"noir: end-to-end fps / slowest part alone (encode)": 0.7836},
}


def _bench():
    spec = importlib.util.spec_from_file_location("vidcolor_bench", REPO / "bin" / "bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_page_states_machine_date_command_and_figures():
    page = _bench().benchmarks_markdown(RESULTS)
    assert page.startswith("# Benchmarks\n")
    for text in ("Test CPU @ 2.00GHz, 2 cores", "torch 2.14.1", "OpenCV 5.1.0.95", "PyAV 18.1.0", "NumPy 2.4.6",
                 "2026-12-03 09:00 UTC", "`bin/bench --out bench.json`", "`style_monet`",
                 "| decode 854x480 | 1500 | 597.3 | 123.4 |  |",
                 "| run noir 854x480 long | 1500 | 172.7 | 648.2 | 0 |",
                 "| stage 1 grade | 2165.0 | 0.5 | 1.00 |", "| encode | 220.4 | 8.10 | 1.78 |",
                 "| stage 1 colorize: step predict (pipeline step) | 98.4 | | |",
                 "| warping_error_per_frame | 0.00456 |", "| warping_error_stabilized | 0.00079 |",
                 "| noir: end-to-end fps / slowest part alone (encode) | 0.784 |"):
        assert text in page, text


def test_page_from_saved_json_without_measuring(tmp_path):
    saved = tmp_path / "bench.json"
    saved.write_text(json.dumps(RESULTS))
    page = tmp_path / "docs" / "benchmarks.md"
    res = subprocess.run([sys.executable, str(REPO / "bin" / "bench.py"), "--markdown-from", str(saved),
                          "--markdown", str(page)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert page.read_text() == _bench().benchmarks_markdown(RESULTS)
    assert not list(page.parent.glob("*.part"))


def test_page_from_results_of_an_older_bench_json():
    """A bench.json written before versions, date and command were recorded still makes a page."""
    old = {"machine": {"cpu": "Old CPU", "cores": 2, "python": "3.11.9"}, "cases": RESULTS["cases"]}
    page = _bench().benchmarks_markdown(old)
    assert "| date | not recorded |" in page and "597.3" in page


def test_painting_styles_are_timed_against_colorize_in_the_same_run():
    """Issue #20's speed bar as a ratio any machine can measure: a painting style's end-to-end fps
    over colorize's from the same bench run; styles without a painting stage get no such ratio."""
    cases = {f"run {s} 854x480 long": {"fps": fps} for s, fps in
             (("colorize", 10.0), ("starry-night", 7.5), ("colorize-starry-night", 9.0), ("noir", 150.0),
              ("starry-night --render-size 256", 11.0))}
    r = _bench().ratios(cases, ["colorize", "starry-night", "colorize-starry-night", "noir"], [256])
    assert r["starry-night --render-size 256 end-to-end fps / colorize end-to-end fps"] == 1.1
    assert r["starry-night end-to-end fps / colorize end-to-end fps"] == 0.75
    assert r["colorize-starry-night end-to-end fps / colorize end-to-end fps"] == 0.9
    assert "noir end-to-end fps / colorize end-to-end fps" not in r
    assert "colorize end-to-end fps / colorize end-to-end fps" not in r


def test_run_case_resumes_a_kept_run_and_logs_memory(tmp_path, monkeypatch):
    """`bin/bench --long-film-dir`: the run case continues a resumable run that was stopped, counts
    only the frames it did itself, and appends each memory sample to the log as it is taken."""
    from tests.conftest import make_clip
    from vidcolor.pipelines.run import run

    bench = _bench()
    clip = make_clip(tmp_path / "in.mp4", frames=48, rate=24)
    out = tmp_path / "out.mp4"
    monkeypatch.setenv("VIDCOLOR_SEGMENT_SECONDS", "0.5")

    class Stop(Exception):
        pass

    def stop_late(done, total):
        if done >= 30:
            raise Stop

    try:
        run(str(clip), str(out), "noir", overwrite=True, progress=stop_late, resumable=True)
    except Stop:
        pass
    assert not out.exists() and (tmp_path / "out.mp4.vidcolor-work").is_dir()
    log = tmp_path / "rss.log"
    res = bench.case_run(str(clip), str(out), "noir", json.dumps({"resumable": True, "_samples": 48,
                                                                  "_rss_log": str(log)}))
    assert res["frames_total"] == 48 and 0 < res["resumed_at"] < 30
    assert res["frames"] == 48 - res["resumed_at"]
    lines = log.read_text().splitlines()
    assert lines and len(lines) == len(res["rss_mib_along"])
    assert all(" rss_mib " in line and " peak_mib " in line for line in lines)
    assert out.exists()
