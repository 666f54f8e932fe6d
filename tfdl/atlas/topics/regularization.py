"""Atlas entries 18-20: L1 and L2 penalties, dropout, early stopping."""

from __future__ import annotations

from tfdl.atlas.entry import atlas_entry
from tfdl.atlas.lesson import Lesson


def _noisy_digits(seed: int, noise: float = 0.3):
    """300 training digits with a fraction `noise` of their labels replaced by random ones, and 600 clean validation
    digits: a training set a large MLP can memorize, noise included, so overfitting is plain to see."""
    import numpy as np

    from tfdl.pipelines import load_sklearn_dataset

    digits = load_sklearn_dataset("digits")
    x, y = digits.features / 16.0, digits.labels.copy()
    rng = np.random.default_rng(seed)
    labels = y[:300].copy()
    flipped = rng.random(300) < noise
    labels[flipped] = rng.integers(0, 10, flipped.sum())
    return (x[:300], labels), (x[1000:1600], y[1000:1600])


def _train(config: dict, train, validation, *, epochs: int, seed: int, steps: int = 25, callbacks=()):
    """Build tfdl's MLP (two hidden layers of 256, plus `config`) and train it with Adam, `steps` batches of 32 per
    "epoch" (Keras's per-epoch cost would dominate these small runs with true epochs of 10 batches); returns the model
    and its Keras history. `ce` is the cross-entropy alone (`loss` adds the penalties)."""
    import keras
    import tensorflow as tf

    from tfdl.models import build_model

    model = build_model("mlp", {"input_shape": (64,), "num_classes": 10, "hidden_units": (256, 256), **config})
    feed = tf.data.Dataset.from_tensor_slices(train).shuffle(len(train[0]), seed=seed).repeat().batch(32)
    model.compile(keras.optimizers.Adam(0.002), "sparse_categorical_crossentropy",
                  metrics=[keras.metrics.SparseCategoricalCrossentropy(name="ce"), "accuracy"],
                  steps_per_execution=steps)
    history = model.fit(feed, steps_per_epoch=steps, epochs=epochs, shuffle=False, verbose=0, callbacks=list(callbacks),
                        validation_data=tf.data.Dataset.from_tensor_slices(validation).batch(600)).history
    return model, history


def _curves(ax, history: dict, title: str, steps: int) -> None:
    epochs = range(1, len(history["ce"]) + 1)
    ax.plot(epochs, history["ce"], label="training (noisy labels)")
    ax.plot(epochs, history["val_ce"], label="validation")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(f"epoch ({steps} batches of 32)")


@atlas_entry(
    18,
    formula=r"\mathcal L_\text{total}(w) = \mathcal L_\text{data}(w) + \lambda_1 \sum_i \lvert w_i \rvert "
    r"+ \lambda_2 \sum_i w_i^2;\qquad "
    r"\text{L2 step: } w \leftarrow (1 - 2\eta\lambda_2)\, w - \eta \nabla \mathcal L_\text{data},\quad "
    r"\text{L1 step: } w \leftarrow w - \eta\lambda_1 \operatorname{sign}(w) - \eta \nabla \mathcal L_\text{data}",
    see=("tfdl.models.MLPConfig", "tfdl.models.build_mlp", "tfdl.training.OptimizerConfig"),
    configs=("digits_mlp",),
)
def l1_and_l2_regularization(lesson: Lesson) -> None:
    """L1 and L2 regularization add a penalty on the size of the weights to the loss,
    so training trades fitting the data against keeping the weights small. A network
    that overfits uses large, finely balanced weights to bend its function through
    every training point, noise included; the penalty makes such weights expensive,
    which favours smoother functions that change little when an input changes a
    little, and those generalize better. $\\lambda$ sets the trade: too large and the
    model underfits.

    **L2** (ridge, *weight decay*) penalizes $\\sum w^2$. Its gradient $2\\lambda w$
    shrinks every weight in proportion to its size, so weights become small but
    rarely exactly zero; it is the most common choice. (With Adam, add it as
    decoupled weight decay — AdamW — since Adam's per-parameter scaling otherwise
    weakens it for weights with large gradients.) **L1** (lasso) penalizes
    $\\sum |w|$. Its gradient has the same size $\\lambda$ for every weight, however
    small, so it pushes the weights that matter little all the way to zero: a
    **sparse** model that in effect selects features. In Keras both are a layer's
    `kernel_regularizer`; tfdl's MLP takes `l1` and `l2` in its config.

    The example trains tfdl's MLP on 300 digits, 30% of them mislabelled, without a
    penalty, with L2 and with L1, and watches the validation loss, the weights'
    size and how many are (nearly) zero.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    train, validation = _noisy_digits(lesson.seed)
    epochs, steps = lesson.budget(10, 25), 40
    setups = {"no penalty": {}, "L2, λ = 0.003": {"l2": 0.003}, "L1, λ = 0.001": {"l1": 0.001}}
    runs = {name: _train(config, train, validation, epochs=epochs, seed=lesson.seed, steps=steps)
            for name, config in setups.items()}

    # The penalty Keras adds to the loss, against the formula over the kernels in numpy.
    model = runs["L2, λ = 0.003"][0]
    kernels = [layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")]
    by_hand = 0.003 * sum(float(np.sum(k**2)) for k in kernels)
    by_keras = float(sum(float(loss) for loss in model.losses))
    penalty_error = lesson.number("L2 model: |Keras penalty - λ Σ w²| / penalty", abs(by_keras - by_hand) / by_hand)
    model = runs["L1, λ = 0.001"][0]
    l1_by_hand = 0.001 * sum(float(np.sum(np.abs(layer.kernel.numpy()))) for layer in model.layers
                             if hasattr(layer, "kernel"))
    l1_error = lesson.number("L1 model: |Keras penalty - λ Σ |w|| / penalty",
                             abs(float(sum(float(loss) for loss in model.losses)) - l1_by_hand) / l1_by_hand)

    rows, weights, near_zero, norm = [], {}, {}, {}
    for name, (model, history) in runs.items():
        weights[name] = model.get_layer("dense2").kernel.numpy().ravel()
        near_zero[name] = lesson.number(f"{name}: fraction of hidden-layer-2 weights with |w| < 1e-3",
                                        float(np.mean(np.abs(weights[name]) < 1e-3)))
        norm[name] = float(np.linalg.norm(weights[name]))
        rows.append((name, history["ce"][-1], history["val_ce"][-1], min(history["val_ce"]),
                     history["val_accuracy"][-1], norm[name], near_zero[name]))
    lesson.table(f"After {epochs} epochs on 300 digits with 30% wrong labels",
                 ("penalty", "train cross-entropy", "validation cross-entropy", "best validation cross-entropy",
                  "validation accuracy", "‖W₂‖", "|w| < 1e-3 in W₂"), rows)

    fig, axes = plt.subplots(1, 4, figsize=(13, 3.4), layout="constrained")
    for ax, (name, (_, history)) in zip(axes, runs.items()):
        _curves(ax, history, name, steps)
    axes[0].set_ylabel("cross-entropy")
    axes[0].legend(fontsize=8)
    for ax in axes[1:3]:
        ax.sharey(axes[0])
    bins = np.linspace(-0.25, 0.25, 101)
    for name in runs:
        axes[3].hist(weights[name], bins=bins, histtype="step", label=name, log=True)
    axes[3].set_xlabel("weight of hidden layer 2")
    axes[3].set_ylabel("count (log)")
    axes[3].set_title("the weights", fontsize=10)
    axes[3].legend(fontsize=7)
    lesson.figure(fig, "l1_l2", "Without a penalty the MLP memorizes the wrong labels and its validation loss climbs; "
                  "L2 and L1 hold it down. L2 shrinks all weights; L1 sets most of them to (nearly) zero.")

    lesson.check("the penalty Keras adds equals λ Σ w² (L2) and λ Σ |w| (L1) over the kernels "
                 "(relative error < 1e-4)",
                 penalty_error < 1e-4 and l1_error < 1e-4, f"L2 {penalty_error:.1e}, L1 {l1_error:.1e}")
    plain = runs["no penalty"][1]["val_ce"][-1]
    penalized = {name: runs[name][1]["val_ce"][-1] for name in ("L2, λ = 0.003", "L1, λ = 0.001")}
    lesson.check("with either penalty the final validation cross-entropy is at least 25% lower than without",
                 all(value < 0.75 * plain for value in penalized.values()),
                 f"none {plain:.3f}, " + ", ".join(f"{name} {value:.3f}" for name, value in penalized.items()))
    lesson.check("L2 at least halves the weights' norm; L1 sets over half of them below 1e-3 (without: under 5%)",
                 norm["L2, λ = 0.003"] < 0.5 * norm["no penalty"] and near_zero["L1, λ = 0.001"] > 0.5
                 and near_zero["no penalty"] < 0.05,
                 f"norm {norm['no penalty']:.1f} -> {norm['L2, λ = 0.003']:.1f}; near zero "
                 f"{near_zero['no penalty']:.0%} vs {near_zero['L1, λ = 0.001']:.0%}")


@atlas_entry(
    19,
    formula=r"\text{training: } \tilde h = \frac{m \odot h}{1 - p},\ \ m_i \sim \operatorname{Bernoulli}(1 - p)"
    r"\ \Rightarrow\ \mathbb E[\tilde h] = h;\qquad \text{inference: } \tilde h = h",
    see=("tfdl.models.MLPConfig", "tfdl.models.build_mlp"),
    configs=("digits_mlp",),
)
def dropout(lesson: Lesson) -> None:
    """**Dropout** sets each unit's output to zero with probability $p$ (typically 0.1 to
    0.5) at every training step, a fresh random choice each time. A unit can then
    never count on a particular other unit being there, so units cannot form fragile
    co-adaptations that fit the training set's quirks; each must be useful on its
    own and the representation becomes redundant. Training with dropout is like
    training a huge ensemble of thinned networks that share their weights; at
    inference every unit is kept, which approximately averages that ensemble.

    For the two modes to agree, the expected output of a unit must be the same in
    both. Keras uses **inverted dropout**: during training the kept outputs are
    divided by $1 - p$, so $\\mathbb E[\\tilde h] = h$, and at inference the layer does
    nothing. Dropout slows training (the training loss falls more slowly and
    noisily) and, like any regularizer, can cause underfitting if $p$ is too high. It
    is standard in fully connected layers and transformers, less so in convolutional
    networks that use batch normalization. tfdl's MLP takes `dropout` in its config.

    The example checks Keras's `Dropout` layer against the formula, then trains
    tfdl's MLP on 300 digits with 30% wrong labels with and without dropout 0.5.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    rate = 0.5
    h = np.random.default_rng(lesson.seed).uniform(0.5, 2.0, size=(2000, 256)).astype("float32")
    layer = keras.layers.Dropout(rate, seed=lesson.seed)
    dropped = np.asarray(layer(h, training=True))
    kept = dropped != 0
    zero_fraction = lesson.number("fraction of outputs zeroed in training", float(1 - kept.mean()))
    scale_error = lesson.number("largest |kept output - h / (1 - p)|",
                                float(np.abs(dropped[kept] - h[kept] / (1 - rate)).max()))
    mean_ratio = lesson.number("mean output in training / mean input", float(dropped.mean() / h.mean()))
    inference_error = lesson.number("largest |output at inference - h|",
                                    float(np.abs(np.asarray(layer(h, training=False)) - h).max()))

    train, validation = _noisy_digits(lesson.seed)
    epochs, steps = lesson.budget(10, 25), 40
    runs = {"no dropout": _train({}, train, validation, epochs=epochs, seed=lesson.seed, steps=steps)[1],
            f"dropout {rate}": _train({"dropout": rate}, train, validation, epochs=epochs, seed=lesson.seed,
                                      steps=steps)[1]}
    lesson.table(f"After {epochs} epochs on 300 digits with 30% wrong labels",
                 ("model", "train cross-entropy (as fit saw it)", "validation cross-entropy", "validation accuracy",
                  "validation - train"),
                 [(name, history["ce"][-1], history["val_ce"][-1], history["val_accuracy"][-1],
                   history["val_ce"][-1] - history["ce"][-1]) for name, history in runs.items()])

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
    for ax, (name, history) in zip(axes, runs.items()):
        _curves(ax, history, name, steps)
    axes[1].sharey(axes[0])
    axes[0].set_ylabel("cross-entropy")
    axes[0].legend(fontsize=8)
    axes[2].hist(dropped[0], bins=40, color="tab:green")
    axes[2].set_xlabel("output of Dropout(0.5), training=True")
    axes[2].set_ylabel("count")
    axes[2].set_title("one row of inputs in [0.5, 2]: zeros, or doubled", fontsize=10)
    lesson.figure(fig, "dropout", "Left, middle: without dropout the MLP memorizes the wrong labels and its "
                  "validation loss climbs; with dropout 0.5 it stays down. Right: Keras's inverted dropout zeroes "
                  "half the outputs and doubles the rest.")

    lesson.check("Keras's Dropout zeroes a fraction p of the outputs (±0.01) and divides the rest by 1 - p exactly",
                 abs(zero_fraction - rate) < 0.01 and scale_error < 1e-6,
                 f"zeroed {zero_fraction:.4f}, scaling error {scale_error:.1e}")
    lesson.check("so the expected output is preserved (mean ratio within 1% of 1) and inference leaves h unchanged",
                 abs(mean_ratio - 1) < 0.01 and inference_error == 0,
                 f"ratio {mean_ratio:.4f}, inference error {inference_error:.1e}")
    plain, regular = runs["no dropout"], runs[f"dropout {rate}"]
    lesson.check("with dropout the final validation cross-entropy is at least 25% lower, and the gap to training "
                 "narrower", regular["val_ce"][-1] < 0.75 * plain["val_ce"][-1]
                 and regular["val_ce"][-1] - regular["ce"][-1] < plain["val_ce"][-1] - plain["ce"][-1],
                 f"validation {plain['val_ce'][-1]:.3f} -> {regular['val_ce'][-1]:.3f}; gap "
                 f"{plain['val_ce'][-1] - plain['ce'][-1]:.3f} -> {regular['val_ce'][-1] - regular['ce'][-1]:.3f}")


@atlas_entry(
    20,
    formula=r"t^\star = \arg\min_{t \le T} \mathcal L_\text{val}(w_t),\qquad "
    r"\text{stop at the first } T \text{ with } "
    r"\mathcal L_\text{val}(w_t) \ge \mathcal L_\text{val}(w_{t^\star}) - \delta "
    r"\text{ for } t = t^\star + 1, \dots, t^\star + \text{patience};\ \text{return } w_{t^\star}",
    see=("tfdl.training.EarlyStoppingConfig", "tfdl.training.TrainingConfig", "tfdl.training.train"),
    configs=("digits_mlp",),
)
def early_stopping(lesson: Lesson) -> None:
    """**Early stopping** ends training when the loss on held-out validation data stops
    improving, and keeps the weights from the best epoch rather than the last.
    Training a large network first learns the patterns shared across examples, then
    increasingly the noise particular to the training set: the validation loss falls,
    bottoms out, and rises again while the training loss keeps falling. Stopping at
    the bottom takes the model before it memorizes. It regularizes by limiting how
    far gradient descent can travel from the small initial weights — for a linear
    model, stopping early is close to an L2 penalty — and it saves the compute of the
    epochs that would only have made the model worse.

    Because the validation loss is noisy, training stops only after it has failed to
    improve (by more than `min_delta`) for `patience` epochs, and then restores the
    best epoch's weights. The validation data used to pick the epoch can no longer
    give an unbiased estimate of the error, so the final evaluation needs a separate
    test set. In Keras it is the `EarlyStopping` callback
    (`restore_best_weights=True`); tfdl's trainer does it for every run through
    `training.early_stopping` (monitor, patience, min_delta), restoring the best
    epoch.

    The example trains tfdl's MLP on 300 digits with 30% wrong labels for a fixed
    number of epochs, and again with early stopping (patience 3).
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    train, validation = _noisy_digits(lesson.seed)
    epochs, patience = lesson.budget(16, 40), 3
    _, full = _train({}, train, validation, epochs=epochs, seed=lesson.seed)
    stopper = keras.callbacks.EarlyStopping(monitor="val_ce", patience=patience, restore_best_weights=True)
    model, stopped = _train({}, train, validation, epochs=epochs, seed=lesson.seed, callbacks=[stopper])
    epochs_run = len(stopped["val_ce"])
    best_epoch = int(np.argmin(stopped["val_ce"])) + 1
    restored = keras.metrics.SparseCategoricalCrossentropy()
    restored.update_state(validation[1], model(validation[0]))
    restored = lesson.number("validation cross-entropy of the returned model", float(restored.result()))
    lesson.number("epochs run with early stopping", epochs_run)
    lesson.number("best epoch", best_epoch)
    lesson.table("Validation cross-entropy", ("training", "epochs run", "best epoch", "at the last epoch",
                                              "of the model returned"),
                 [(f"fixed {epochs} epochs", epochs, int(np.argmin(full["val_ce"])) + 1, full["val_ce"][-1],
                   full["val_ce"][-1]),
                  (f"early stopping, patience {patience}", epochs_run, best_epoch, stopped["val_ce"][-1], restored)])

    fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
    ax.plot(range(1, epochs + 1), full["ce"], color="tab:blue", alpha=0.4, label="training, no stopping")
    ax.plot(range(1, epochs + 1), full["val_ce"], color="tab:orange", alpha=0.4, label="validation, no stopping")
    ax.plot(range(1, epochs_run + 1), stopped["val_ce"], "o-", color="tab:orange", ms=4,
            label="validation, early stopping")
    ax.axvline(epochs_run, color="tab:red", ls="--", lw=1, label=f"stopped (epoch {epochs_run})")
    ax.plot(best_epoch, restored, "*", color="tab:red", ms=14, label=f"weights returned (epoch {best_epoch})")
    ax.set_xlabel("epoch (25 batches of 32)")
    ax.set_ylabel("cross-entropy")
    ax.set_title(f"early stopping on val_ce, patience {patience}", fontsize=10)
    ax.legend(fontsize=8)
    lesson.figure(fig, "early_stopping", f"Training stops {patience} epochs after the validation minimum and returns "
                  "the weights of the best epoch; trained on, the model memorizes the wrong labels.")

    lesson.check(f"training stopped {patience} epochs after the best epoch, before the {epochs}-epoch budget",
                 epochs_run == best_epoch + patience and epochs_run < epochs,
                 f"best epoch {best_epoch}, stopped after {epochs_run}")
    lesson.check("the returned model has the best epoch's validation loss (restored weights, difference < 1e-4)",
                 abs(restored - min(stopped["val_ce"])) < 1e-4, f"{restored:.4f} vs {min(stopped['val_ce']):.4f}")
    lesson.check("it is at least 25% better on validation than the model trained for the whole budget",
                 restored < 0.75 * full["val_ce"][-1], f"{restored:.3f} vs {full['val_ce'][-1]:.3f}")
