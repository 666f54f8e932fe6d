import subprocess
import sys
import time


def tfdl(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "tfdl", *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_the_commands_without_importing_tensorflow():
    started = time.perf_counter()
    result = tfdl("--help")
    assert result.returncode == 0
    for command in ("run", "serve", "predict"):
        assert command in result.stdout
    code = "import sys, tfdl.cli; tfdl.cli.build_parser(); print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    assert time.perf_counter() - started < 60


def test_bad_config_fails_before_any_work_naming_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntraining:\n  epochs: 3\n  optimiser: {name: adam}\n")
    result = tfdl("run", str(bad), "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "training.optimiser: unknown field" in result.stderr
    assert "Epoch" not in result.stdout and not (tmp_path / "out").exists()


def test_bad_override_value_is_named(tmp_path):
    result = tfdl("run", "--set", "data.batch_size=-1", "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "data.batch_size" in result.stderr


def test_serve_without_a_model_says_what_to_do(tmp_path):
    result = tfdl("serve", "--model-base-path", str(tmp_path / "none"), "--rest_api_port", "0", "--port", "0")
    assert result.returncode != 0
    assert "no SavedModel version under" in result.stderr


def test_bench_data_reports_feed_and_model_throughput():
    import json

    result = tfdl("bench", "data", "--seconds", "0.2", "--steps", "16", "--json",
                  "--set", "data.batch_size=64", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout)
    assert figures["feed_examples_per_s"] > 0 and figures["model_examples_per_s"] > 0
    assert figures["ratio"] == figures["feed_examples_per_s"] / figures["model_examples_per_s"]
    assert figures["input_bound"] == (figures["ratio"] < 1)


def test_bad_data_fails_with_exit_code_2_naming_the_file(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a,b,label\n1,2,0\n3,oops,1\n")
    config = tmp_path / "csv.yaml"
    config.write_text(
        f"name: csv\ndata:\n  source: {{type: csv, path: '{data}', label_column: label, "
        "column_types: {b: float}}\nmodel: {name: mlp}\n"
    )
    result = tfdl("run", str(config), "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "data.csv, line 3, column 'b'" in result.stderr and "Traceback" not in result.stderr
