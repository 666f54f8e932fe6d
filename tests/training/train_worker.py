"""One small training run in its own process, for the distributed and resume tests.

    python train_worker.py RUN_DIR OUT.npz [--strategy S] [--logical-cpus N]
        [--kill-at-step K] [--learning-rate LR] [--mixed-precision P]

Trains a dense classifier with dropout and Adam on a fixed synthetic dataset
(shuffled each epoch with a seed) and writes the final weights to OUT.npz.
With `--kill-at-step K` the process SIGKILLs itself once training passes step
K, the way a preempted machine dies: no handler runs, nothing is flushed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("out")
    parser.add_argument("--strategy", default="default")
    parser.add_argument("--devices", nargs="*")
    parser.add_argument("--logical-cpus", type=int, default=1)
    parser.add_argument("--kill-at-step", type=int)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--mixed-precision", default="none")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps-per-execution", type=int, default=3)
    parser.add_argument("--backup-every", type=int, default=5)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--model", choices=["dense", "vae"], default="dense")
    parser.add_argument("--optimizer", default="adam")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    if args.logical_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus)

    import keras

    from tfdl.training import TrainingConfig, make_strategy, train
    from tfdl.training.steps import StepFunctions

    strategy = make_strategy(args.strategy, args.devices)
    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(320, 6)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] - x[:, 2] > 0).astype("int32")
    train_data = tf.data.Dataset.from_tensor_slices((x[:256], y[:256])).shuffle(256, seed=3).batch(32)
    validation = tf.data.Dataset.from_tensor_slices((x[256:], y[256:])).batch(32)

    loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    if args.model == "vae":  # its own loss, in compute_loss; x is its own target
        from tfdl.models import build_model

        pixels = (rng.random((320, 16)) < 0.3).astype("float32")
        train_data = tf.data.Dataset.from_tensor_slices(pixels[:256]).shuffle(256, seed=3).batch(32)
        validation = tf.data.Dataset.from_tensor_slices(pixels[256:]).batch(32)
        loss, metrics = None, None

    def build():
        if args.model == "vae":
            return build_model("vae", {"input_shape": [16], "latent_dim": 2, "hidden_units": [16]})
        inputs = keras.Input((6,), name="features")
        hidden = keras.layers.Dense(16, activation="relu")(inputs)
        hidden = keras.layers.Dropout(args.dropout)(hidden)
        outputs = keras.layers.Dense(2, activation="softmax", dtype="float32")(hidden)
        return keras.Model(inputs, outputs)

    if args.kill_at_step is not None:
        original_init = StepFunctions.__init__
        done = {"steps": 0}

        def init(self, *a, **k):
            original_init(self, *a, **k)
            compiled = self.train

            def train_and_maybe_die(iterator, steps):
                result = compiled(iterator, steps)
                done["steps"] += int(steps)
                if done["steps"] >= args.kill_at_step:
                    os.kill(os.getpid(), signal.SIGKILL)
                return result

            self.train = train_and_maybe_die

        StepFunctions.__init__ = init

    config = TrainingConfig(
        epochs=args.epochs,
        steps_per_execution=args.steps_per_execution,
        early_stopping=None,
        deterministic=True,
        mixed_precision=args.mixed_precision,
        backup={"every_steps": args.backup_every},
        optimizer={"name": args.optimizer, "learning_rate": args.learning_rate},
        verbose=0,
    )
    notes = []
    result = train(build, train_data, validation, config, strategy, args.run_dir,
                   loss=loss, metrics=metrics, log=notes.append)
    np.savez(args.out, *result.model.get_weights())
    print(json.dumps({"resumed_from_step": result.resumed_from_step, "history": result.history,
                      "precision": result.precision, "notes": notes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
