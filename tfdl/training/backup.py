"""The backup a killed or preempted run resumes from, exactly.

Keras's `BackupAndRestore` keeps the model's weights only, so a resumed run
drifts from one never stopped: the optimizer's slots, the data iterator's
position and the random state of dropout start over. This backup is a
`tf.train.Checkpoint` of all of them: every model variable (seed generator
states included), the optimizer's variables, the metrics' running totals, the
distributed iterator over the training data, and the trainer's own record
(history, best score, early-stopping count) as a string variable, so that one
checkpoint file holds a consistent state.

In a multi-worker run every worker takes part in each save (the variables are
read collectively); the chief writes under `RUN_DIR/backup/`, the others
write to a scratch folder they delete, and all restore from the chief's. A
`PreemptionCheckpointHandler` saves a backup when the platform sends a
worker a termination notice.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
from pathlib import Path

import tensorflow as tf

from tfdl.schema import ConfigError
from tfdl.training.errors import Preempted


class Backup:
    """Saves and restores the whole training state under `directory`.

    Args:
        directory: where the chief keeps the backup (`RUN_DIR/backup`).
        model, optimizer: built, in the strategy's scope.
        iterator: the distributed iterator over the (repeated) training data.
        strategy: the run's strategy.
        chief: whether this process is the one that writes.
        keep: how many backups to keep.
    """

    def __init__(self, directory: Path, model, optimizer, iterator, strategy, chief: bool, keep: int = 2):
        self.directory = Path(directory)
        self._chief = chief
        self._record = tf.Variable("", dtype=tf.string, trainable=False, name="trainer_record")
        self._checkpoint = tf.train.Checkpoint(
            model_variables=[v.value for v in model.variables],
            optimizer_variables=[v.value for v in optimizer.variables],
            metric_variables=[v.value for v in model.metrics_variables],
            iterator=iterator,
            record=self._record,
        )
        write_dir = self.directory if chief else self.directory / f".worker-{strategy.cluster_resolver.task_id}"
        self._write_dir = write_dir
        self._manager = tf.train.CheckpointManager(self._checkpoint, str(write_dir), max_to_keep=keep)
        self._preemption = None
        self._stop_requested = False
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            self._preemption = tf.distribute.experimental.PreemptionCheckpointHandler(
                strategy.cluster_resolver, self._manager
            )
        elif threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
        else:  # signal handlers can only be set from the main thread
            self._previous_handler = None

    def _on_sigterm(self, signum, frame) -> None:
        # Finish the step under way, save, then stop (see `after_execution`).
        self._stop_requested = True

    def restore(self) -> dict | None:
        """Restore the latest backup; returns the trainer's record, or None if there is none.

        Raises:
            ConfigError: the backup was written by a different model, optimizer or data.
        """
        latest = tf.train.latest_checkpoint(str(self.directory))
        if latest is None:
            return None
        try:
            self._checkpoint.restore(latest).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as error:
            raise ConfigError(
                f"the backup {latest} does not fit this run (was the model, optimizer or data changed?): "
                f"{str(error).splitlines()[0]}; delete {self.directory} to start training over"
            ) from None
        return json.loads(self._record.numpy().decode())

    def save(self, record: dict) -> None:
        """Save the current state with `record` (JSON-able); every worker must call it."""
        self._record.assign(json.dumps(record))
        self._manager.save(checkpoint_number=record["step"])
        if not self._chief:
            shutil.rmtree(self._write_dir, ignore_errors=True)

    def after_execution(self, record: dict) -> None:
        """Called between compiled calls: on a termination notice, save and stop.

        Raises:
            Preempted: after the backup is saved.
        """
        if self._preemption is not None:
            self._record.assign(json.dumps(record))
            self._preemption.save_checkpoint_if_preempted()
        elif self._stop_requested:
            self.save(record)
            raise Preempted(
                f"stopped by SIGTERM at step {record['step']}; the backup in {self.directory} holds it: "
                "run the same command again to resume"
            )

    def latest(self) -> str | None:
        """The path of the latest backup, for messages."""
        return tf.train.latest_checkpoint(str(self.directory))

    def close(self, delete: bool) -> None:
        """Stop watching for SIGTERM; delete the backup when training finished."""
        if self._preemption is None and self._previous_handler is not None:
            signal.signal(signal.SIGTERM, self._previous_handler)
        if delete and self._chief:
            shutil.rmtree(self.directory, ignore_errors=True)
