"""Fine-tuning a pretrained backbone in two phases, each a run of tfdl's `train`.

Phase 1 trains the new head with the backbone frozen, so the head's random
start sends no large gradients into the pretrained weights. Phase 2 starts
from phase 1's best weights, unfreezes the top N layers of the backbone
(batch normalization stays frozen and in inference mode) and trains again
with the learning rate times a factor (0.1 by default). This is the recipe of
the Keras transfer-learning guide, over tfdl's trainer, so both phases get its
strategies, checkpoints, early stopping and backups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tfdl.training.config import FineTuningConfig, TrainingConfig

BATCH_NORM_STATISTICS = ("moving_mean", "moving_variance")


@dataclass
class FineTuningResult:
    """Both phases' records; `model` is phase 2's (best epoch)."""

    head: object  # TrainResult of phase 1
    fine_tuned: object  # TrainResult of phase 2
    unfrozen: list[str] = field(default_factory=list)

    @property
    def model(self):
        return self.fine_tuned.model


def find_backbone(model, name: str = "backbone"):
    """The backbone layer of `model`.

    Args:
        model: a Keras model holding the backbone as one layer (a nested
            model or a `SavedModelBackbone`), as `build_transfer` makes it.
        name: the backbone layer's name.

    Returns:
        The layer.

    Raises:
        ValueError: `model` has no layer of that name.
    """
    names = [layer.name for layer in model.layers]
    if name not in names:
        raise ValueError(
            f"the model has no backbone layer named {name!r}; its layers are {names}. Pass the name of the "
            "pretrained part as `backbone`."
        )
    return model.get_layer(name)


def unfreeze_top(backbone, count: int) -> list[str]:
    """Make only the top `count` layers of `backbone` trainable; batch normalization stays frozen.

    For a nested Keras model (keras.applications) the layers are its layers
    that hold weights; for a `SavedModelBackbone` they are its variable groups
    (`variable_groups()`, one per layer of the SavedModel), and a group with a
    `moving_mean` or `moving_variance` is a batch normalization. Frozen batch
    normalization also runs in inference mode in Keras 3.

    Args:
        backbone: the backbone layer.
        count: how many layers to unfreeze, >= 1, counted from the top and
            skipping batch normalization.

    Returns:
        The unfrozen layers' (or groups') names, top first.

    Raises:
        ValueError: `count` < 1, or the backbone has no layers with weights.

    Example:

    >>> import keras
    >>> inputs = keras.Input((4,))
    >>> x = keras.layers.Dense(3, name="low")(inputs)
    >>> x = keras.layers.BatchNormalization(name="bn")(x)
    >>> backbone = keras.Model(inputs, keras.layers.Dense(2, name="high")(x))
    >>> unfreeze_top(backbone, 1), backbone.get_layer("low").trainable, backbone.get_layer("bn").trainable
    (['high'], False, False)
    """
    import keras

    from tfdl.layers.saved_model_backbone import SavedModelBackbone

    if count < 1:
        raise ValueError(f"unfreeze_top must be >= 1; got {count}")
    backbone.trainable = True
    if isinstance(backbone, SavedModelBackbone):
        # `.value` is the SavedModel's own tf.Variable, whose `trainable` says what the SavedModel trains.
        units = [
            (name, variables, any(v.value.name.split(":")[0].endswith(BATCH_NORM_STATISTICS) for v in variables))
            for name, variables in backbone.variable_groups()
            if any(v.value.trainable for v in variables)
        ]
    else:
        units = [
            (layer.name, layer, isinstance(layer, keras.layers.BatchNormalization))
            for layer in backbone.layers
            if layer.weights
        ]
    if not units:
        raise ValueError(f"backbone {backbone.name!r} has no trainable weights to unfreeze")
    unfrozen = []
    for name, unit, batch_norm in reversed(units):
        keep = not batch_norm and len(unfrozen) < count
        if keep:
            unfrozen.append(name)
        # Set on every unit: `backbone.trainable = True` above does nothing
        # when it already is (TensorFlow's attribute tracking skips assigning
        # an attribute its own value), which would keep an earlier freeze.
        if isinstance(unit, list):
            for variable in unit:
                variable.trainable = keep and variable.value.trainable
        else:
            unit.trainable = keep
    return unfrozen


def _phase_two_config(config: TrainingConfig, fine_tuning: FineTuningConfig) -> TrainingConfig:
    if config.optimizer.schedule is not None:
        raise ValueError(
            "fine_tuning.learning_rate_factor scales training.optimizer.learning_rate, but the optimizer has a "
            "schedule; give a constant learning_rate for fine-tuning"
        )
    optimizer = config.optimizer.model_copy(
        update={"learning_rate": config.optimizer.learning_rate * fine_tuning.learning_rate_factor}
    )
    return config.model_copy(update={"optimizer": optimizer, "epochs": fine_tuning.epochs})


def fine_tune(
    build: Callable[[], object],
    train_data,
    validation_data,
    config: TrainingConfig,
    fine_tuning: FineTuningConfig,
    strategy,
    run_dir: Path,
    loss,
    metrics: list | None,
    backbone: str = "backbone",
    class_weight: dict[int, float] | None = None,
    log: Callable[[str], None] = print,
) -> FineTuningResult:
    """Train the head with the backbone frozen, then fine-tune the backbone's top layers.

    Args:
        build: makes the uncompiled model with pretrained backbone weights
            (e.g. `lambda: build_model("transfer", params)`); called inside
            the strategy's scope, once per phase.
        train_data, validation_data: as for `train`.
        config: the training config of phase 1 (its epochs, optimizer and
            learning rate); phase 2 uses it with `fine_tuning.epochs` and the
            learning rate times `fine_tuning.learning_rate_factor`.
        fine_tuning: see `FineTuningConfig`.
        strategy: from `make_strategy`.
        run_dir: phase 1 writes under `run_dir/head`, phase 2 under
            `run_dir/fine_tune` (checkpoints, logs, history, backups).
        loss, metrics, class_weight, log: as for `train`.
        backbone: the name of the backbone layer in the built model.

    Returns:
        Both phases' `TrainResult`s and the unfrozen layers; `.model` is the
        fine-tuned model with its best epoch's weights.

    Raises:
        ValueError: no backbone layer of that name, or an optimizer schedule
            (the factor scales a constant learning rate).
        TrainingDiverged, Preempted: as `train` raises them.
    """
    from tfdl.training.trainer import train

    run_dir = Path(run_dir)
    tuned_config = _phase_two_config(config, fine_tuning)

    def build_frozen():
        model = build()
        find_backbone(model, backbone).trainable = False
        return model

    log(f"      fine-tuning phase 1: the head, backbone {backbone!r} frozen, for up to {config.epochs} epochs")
    head = train(build_frozen, train_data, validation_data, config, strategy, run_dir / "head", loss, metrics,
                 class_weight=class_weight, log=log)
    head_weights = head.model.get_weights()
    unfrozen: list[str] = []

    def build_unfrozen():
        model = build()
        model.set_weights(head_weights)
        unfrozen[:] = unfreeze_top(find_backbone(model, backbone), fine_tuning.unfreeze_top)
        return model

    log(
        f"      fine-tuning phase 2: the top {fine_tuning.unfreeze_top} backbone layers at learning rate "
        f"{tuned_config.optimizer.learning_rate:g}, for up to {fine_tuning.epochs} epochs"
    )
    tuned = train(build_unfrozen, train_data, validation_data, tuned_config, strategy, run_dir / "fine_tune", loss,
                  metrics, class_weight=class_weight, log=log)
    return FineTuningResult(head=head, fine_tuned=tuned, unfrozen=list(unfrozen))
