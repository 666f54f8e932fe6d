"""The main job, `tfdl run`: data -> model -> training -> evaluation -> export -> report.

Everything a run writes goes under its run directory (`runs/NAME/` unless
told otherwise):

    report.md, plots/            what a person reads
    metrics.json                 the evaluation and parity figures
    config.yaml                  the config as run, every default filled in
    history.csv, logs/           per-epoch figures; TensorBoard logs
    checkpoints/                 best and last weights
    export/                      every artifact; see tfdl.export.export_stage
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from tfdl.config import RunConfig

@dataclass
class RunResult:
    run_dir: Path
    metrics: dict
    serving_dir: Path | None  # None on a worker that is not the chief
    version: int
    serve_commands: list[str]


def model_params_from_data(config: RunConfig, pipeline) -> dict:
    """The model's parameters with what the data decides filled in."""
    from tfdl.models import model_entry

    fields = model_entry(config.model.name).config_class.model_fields
    from_data = {
        "input_shape": pipeline.input_shape,
        "num_classes": len(pipeline.class_names),
        "input_name": pipeline.input_name,
        **pipeline.model_params,
    }
    params = dict(config.model.params)
    for key, value in from_data.items():
        if key in fields and params.get(key) is None:
            params[key] = value
    return params


def _describe_tflite(reports) -> list[str]:
    lines = []
    for r in reports:
        if r.passed is None:
            lines.append(f"TFLite {r.mode}: {r.bytes / 1024:.1f} KiB, not run ({r.note})")
            continue
        accuracy = f", accuracy {r.accuracy:.4f}" if r.accuracy is not None else ""
        lines.append(
            f"TFLite {r.mode}: {r.bytes / 1024:.1f} KiB, max diff {r.max_abs_diff:.1e}{accuracy}, "
            f"{r.latency_ms_p50:.3f} ms/example{'' if r.passed else ' (OUTSIDE ' + r.criterion + ')'}"
        )
    return lines


def _serve_commands(serving_model_dir: Path, model_name: str, sample: Path) -> list[str]:
    return [
        f"tfdl serve --model-base-path {serving_model_dir} --model-name {model_name}",
        f"tfdl predict --model-name {model_name} --input {sample}",
        f"curl -s -d @{sample} http://127.0.0.1:8501/v1/models/{model_name}:predict",
    ]


def run(config: RunConfig, output_dir: Path | str | None = None, log: Callable[[str], None] = print) -> RunResult:
    """Run the whole job for `config`; see the module docstring for what it writes."""
    import keras

    from tfdl.evaluation import RunSummary, plot_learning_curves, write_report
    from tfdl.models import model_config, model_entry
    from tfdl.tasks import run_task
    from tfdl.training import describe_strategy, is_chief, make_strategy, train

    if config.rl is not None:
        from tfdl.tasks.reinforcement import run_reinforcement

        return run_reinforcement(config, Path(output_dir) if output_dir else Path("runs") / config.name, log)
    started = time.perf_counter()
    # First: a multi-worker or TPU strategy must configure the runtime before anything starts it.
    strategy = make_strategy(config.training.strategy, config.training.devices, config.training.tpu)
    chief = is_chief(strategy)
    entry = model_entry(config.model.name)
    task = run_task(entry.task)
    run_dir = Path(output_dir) if output_dir else Path("runs") / config.name
    run_dir.mkdir(parents=True, exist_ok=True)
    if chief:
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    keras.utils.set_random_seed(config.seed)
    replicas = strategy.num_replicas_in_sync
    log(f"[1/5] data: {config.data.source.describe()}, strategy {describe_strategy(strategy)}")
    pipeline = task.build_data(config, config.seed, config.data.batch_size * replicas)
    sizes = pipeline.sizes
    log(
        f"      {sizes['train']} train / {sizes['validation']} validation / {sizes['test']} test examples, "
        f"{len(pipeline.class_names)} classes"
    )
    for line in pipeline.report.lines():
        log(f"      {line}")

    params = model_config(config.model.name, model_params_from_data(config, pipeline))
    loss, metrics = task.objective(pipeline)
    log(f"[2/5] training {config.model.name} for up to {config.training.epochs} epochs")
    def build():
        return entry.builder(params)

    common = dict(loss=loss, metrics=metrics, class_weight=pipeline.class_weight, log=log)
    if config.training.fine_tuning is None:
        trained = train(build, pipeline.train, pipeline.validation, config.training, strategy, run_dir, **common,
                        epoch_end=task.epoch_end(pipeline, run_dir) if chief else None)
    else:
        from tfdl.training.fine_tuning import fine_tune

        tuned = fine_tune(build, pipeline.train, pipeline.validation, config.training, config.training.fine_tuning,
                          strategy, run_dir, **common)
        log(f"      head: best val_loss epoch {tuned.head.best_epoch}; fine-tuned {len(tuned.unfrozen)} layers")
        trained = tuned.fine_tuned
    model = trained.model
    training_figures = {
        "strategy": describe_strategy(strategy),
        "precision": trained.precision,
        "jit_compile": trained.jit_compile,
        "resumed_from_step": trained.resumed_from_step,
        "epochs_run": trained.epochs_run,
        "best_epoch": trained.best_epoch,
        "seconds": trained.seconds,
        "history": trained.history,
    }
    if not chief:  # the chief evaluates, exports and reports; the other workers are done
        log("      trained; the chief worker evaluates, exports and writes the report")
        return RunResult(run_dir, {"training": training_figures}, None, 0, [])

    log("[3/5] evaluating on the test split")
    test_loss = float(model.evaluate(pipeline.test, verbose=0, return_dict=True)["loss"]) if loss else None
    evaluation = task.evaluate(model, pipeline, run_dir)

    log("[4/5] exporting")
    exported = task.export(model, pipeline, config.export, run_dir / "export", log)
    serving_model_dir, version, sample = exported.serving_model_dir, exported.version, exported.sample_request
    for line in _describe_tflite(exported.tflite):
        log(f"      {line}")
    if not exported.passed:
        log("      WARNING: an export is outside its parity bound; see the report")

    log("[5/5] writing the report")
    plots = {
        "Learning curves": plot_learning_curves(trained.history, run_dir / "plots" / "learning_curves.png"),
        **evaluation.plots,
    }
    commands = _serve_commands(serving_model_dir, config.export.model_name, sample)
    artifacts = {**exported.artifacts, **evaluation.extra_files}
    summary = RunSummary(
        name=config.name, model=config.model.name,
        strategy=f"{describe_strategy(strategy)}, {trained.precision}" + (", XLA" if trained.jit_compile else ""),
        epochs_run=trained.epochs_run, best_epoch=trained.best_epoch, train_seconds=trained.seconds,
        test_loss=test_loss, test_section=evaluation.section, plots=plots, parity=exported.parity.to_dict(),
        tflite=[r.to_dict() for r in exported.tflite],
        artifacts=artifacts, serve_commands=commands,
        data_sizes=pipeline.sizes, data_report=pipeline.report.lines(), export_notes=exported.notes,
    )
    report = write_report(summary, run_dir / "report.md")
    figures = {
        "data": {"sizes": pipeline.sizes, "report": pipeline.report.to_dict()},
        "test": {"loss": test_loss, **evaluation.figures},
        "training": training_figures,
        "parity": {**exported.parity.to_dict(), "passed": exported.passed},
        "export": {"model_name": config.export.model_name, **exported.to_dict()},
        "seconds": time.perf_counter() - started,
    }
    (run_dir / "metrics.json").write_text(json.dumps(figures, indent=2))
    log(f"\n{evaluation.headline}; parity {'ok' if exported.passed else 'FAILED'}; {figures['seconds']:.0f} s in all")
    log(f"report: {report}\n\nServe the model and ask it for a prediction:\n  " + "\n  ".join(commands))
    return RunResult(run_dir, figures, serving_model_dir, version, commands)
