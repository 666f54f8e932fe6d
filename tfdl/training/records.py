"""What a training run records as it goes: progress, TensorBoard logs, the CSV history.

Only the chief writes files; every process may show progress.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import tensorflow as tf
from tensorflow.core.framework import summary_pb2

# What `tf.summary.scalar` attaches, for TensorBoard's scalars dashboard.
# Written with `tf.summary.write` directly: `tf.summary.scalar` first imports
# TensorBoard's summary package, a quarter of a second of imports (fsspec)
# that a short run's first epoch would pay.
_SCALAR = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))


def _scalar(tag: str, value: float) -> None:
    tf.summary.write(tag, tf.constant(value, tf.float32), metadata=_SCALAR)


class EpochRecords:
    """Progress output, TensorBoard scalars (losses, metrics, learning rate) and `history.csv`.

    Args:
        run_dir: the run's directory; logs go to `logs/train` and `logs/validation`.
        verbose: 0 silent, 1 a progress bar, 2 one line per epoch.
        steps_per_epoch: for the progress bar.
        write: whether this process writes files (the chief).
    """

    def __init__(self, run_dir: Path, verbose: int, steps_per_epoch: int, write: bool):
        self._verbose = verbose
        self._steps = steps_per_epoch
        self._write = write
        self._csv = Path(run_dir) / "history.csv"
        self._progress = None
        if write:
            self._writers = {
                "train": tf.summary.create_file_writer(str(Path(run_dir) / "logs" / "train")),
                "validation": tf.summary.create_file_writer(str(Path(run_dir) / "logs" / "validation")),
            }

    def start_epoch(self, epoch: int, epochs: int, step_in_epoch: int) -> None:
        if self._verbose == 1:
            import keras

            print(f"Epoch {epoch + 1}/{epochs}", flush=True)
            self._progress = keras.utils.Progbar(self._steps, verbose=1)
            if step_in_epoch:
                self._progress.update(step_in_epoch)

    def progress(self, step_in_epoch: int, logs: dict[str, float]) -> None:
        if self._progress is not None:
            self._progress.update(step_in_epoch, values=list(logs.items()))

    def end_epoch(self, epoch: int, epochs: int, logs: dict[str, float], learning_rate: float, seconds: float) -> None:
        """Record one finished epoch: `logs` holds training figures and `val_`-prefixed validation ones."""
        if self._progress is not None:
            self._progress.update(self._steps, values=list(logs.items()), finalize=True)
        elif self._verbose == 2:
            shown = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            print(f"Epoch {epoch + 1}/{epochs} - {seconds:.1f}s - {shown}", file=sys.stdout, flush=True)
        if not self._write:
            return
        for split, writer in self._writers.items():
            with writer.as_default(step=epoch + 1):
                for key, value in logs.items():
                    is_validation = key.startswith("val_")
                    if is_validation == (split == "validation"):
                        _scalar(f"epoch_{key.removeprefix('val_')}", value)
                if split == "train":
                    _scalar("epoch_learning_rate", learning_rate)
            writer.flush()
        new_file = not self._csv.exists() or epoch == 0
        with self._csv.open("w" if new_file else "a", newline="") as handle:
            out = csv.writer(handle)
            if new_file:
                out.writerow(["epoch", *logs])
            out.writerow([epoch, *logs.values()])
