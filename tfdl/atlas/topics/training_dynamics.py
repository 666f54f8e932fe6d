"""Atlas entries 8-10: vanishing and exploding gradients, overfitting and underfitting."""

from __future__ import annotations

from tfdl.atlas.entry import atlas_entry
from tfdl.atlas.lesson import Lesson


def _kernel_gradient_norms(model, x, y) -> list[float]:
    """The norm of the loss's gradient with respect to each hidden layer's kernel, first layer first."""
    import keras
    import tensorflow as tf

    kernels = [layer.kernel for layer in model.layers if layer.name.startswith("dense") and hasattr(layer, "kernel")]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, model(x)))
    return [float(tf.norm(g)) for g in tape.gradient(loss, kernels)]


def _train(model, optimizer, x, y, *, epochs: int, steps_per_epoch: int, seed: int, validation=None):
    """Fit on shuffled, repeated `(x, y)` in batches of 64; returns the Keras history dict (one entry per epoch)."""
    import tensorflow as tf

    feed = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).repeat().batch(64)
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=steps_per_epoch)
    if validation is not None:
        validation = tf.data.Dataset.from_tensor_slices(validation).batch(1024)
    return model.fit(feed, steps_per_epoch=steps_per_epoch, epochs=epochs, validation_data=validation, shuffle=False,
                     verbose=0).history


@atlas_entry(
    8,
    formula=r"\frac{\partial \mathcal L}{\partial h^{(1)}} = \Big(\prod_{l=2}^{L} W^{(l)\top}"
    r" \operatorname{diag}\big(\sigma'(z^{(l)})\big)\Big) \frac{\partial \mathcal L}{\partial h^{(L)}},"
    r"\qquad 0 < \mathrm{sigmoid}' \le \tfrac14",
    see=("tfdl.models.build_mlp", "tfdl.models.MLPConfig"),
    configs=("digits_mlp",),
)
def vanishing_gradients(lesson: Lesson) -> None:
    """Backpropagation multiplies the error signal, layer after layer, by each layer's
    transposed weights and by the derivative of its activation (the formula). When
    those factors are smaller than one the product shrinks geometrically with depth:
    the layers near the input receive gradients orders of magnitude smaller than the
    layers near the output, so they barely change, and a deep network trains no
    better than its last few layers — or not at all. Sigmoid is the classic cause:
    its derivative never exceeds $1/4$ and is close to zero wherever the unit
    saturates, so each sigmoid layer can divide the gradient by four or more.

    The remedies keep each layer's factor near one: ReLU-type activations
    (derivative 1 where active) with **He initialization**, whose weight variance
    $2/n_\\text{in}$ keeps the signal's scale constant through ReLU layers; batch or
    layer normalization; residual connections, which give the gradient a path that
    skips the layers (ResNets); and, in recurrent networks, gated cells (LSTM, GRU).

    The example builds tfdl's MLP with ten hidden layers of 32 units twice — sigmoid
    with Glorot initialization, ReLU with He initialization — measures the gradient
    norm of every layer's kernel on the same batch of digits, then trains both with
    plain SGD.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.models import build_model
    from tfdl.pipelines import load_sklearn_dataset

    digits = load_sklearn_dataset("digits")
    x, y = digits.features / 16.0, digits.labels
    depth = 10
    setups = {"sigmoid, Glorot init": ("sigmoid", "glorot_uniform"), "ReLU, He init": ("relu", "he_normal")}
    norms, history = {}, {}
    for name, (activation, initializer) in setups.items():
        model = build_model("mlp", {"input_shape": (64,), "num_classes": 10, "hidden_units": (32,) * depth,
                                    "activation": activation, "kernel_initializer": initializer})
        norms[name] = _kernel_gradient_norms(model, x[:512], y[:512])
        history[name] = _train(model, keras.optimizers.SGD(0.1), x, y, epochs=lesson.budget(12, 40),
                               steps_per_epoch=25, seed=lesson.seed)
    sigmoid, relu = norms["sigmoid, Glorot init"], norms["ReLU, He init"]
    lesson.table("Gradient norm of each hidden layer's kernel at initialization",
                 ("layer", *setups), [(f"dense{i + 1}", sigmoid[i], relu[i]) for i in range(depth)])
    sigmoid_ratio = lesson.number("sigmoid: first-layer / last-layer gradient norm", sigmoid[0] / sigmoid[-1])
    relu_ratio = lesson.number("ReLU+He: first-layer / last-layer gradient norm", relu[0] / relu[-1])
    for name in setups:
        lesson.number(f"{name}: final training loss", history[name]["loss"][-1])
        lesson.number(f"{name}: final training accuracy", history[name]["accuracy"][-1])

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    for name in setups:
        axes[0].semilogy(np.arange(1, depth + 1), norms[name], "o-", label=name)
        axes[1].plot(np.arange(1, len(history[name]["loss"]) + 1) * 25, history[name]["loss"], label=name)
    axes[0].set_xlabel("hidden layer (1 = next to the input)")
    axes[0].set_ylabel("gradient norm of the kernel")
    axes[0].set_title(f"{depth} hidden layers, at initialization", fontsize=10)
    axes[1].set_xlabel("SGD step")
    axes[1].set_ylabel("training loss")
    axes[1].set_title("training with SGD, learning rate 0.1", fontsize=10)
    axes[0].legend(fontsize=8)
    lesson.figure(fig, "vanishing", "Left: the sigmoid stack's gradients shrink by orders of magnitude towards the "
                  "input; with ReLU and He initialization they stay level. Right: only the ReLU network learns.")
    lesson.check("with sigmoid, the first layer's gradient is over 1000x smaller than the last layer's",
                 sigmoid_ratio < 1e-3, f"ratio {sigmoid_ratio:.1e}")
    lesson.check("with ReLU and He initialization it stays within a factor of 10 of the last layer's",
                 0.1 < relu_ratio < 10, f"ratio {relu_ratio:.2f}")
    lesson.check("the first layer's gradient is over 100x smaller with sigmoid than with ReLU+He",
                 sigmoid[0] * 100 < relu[0], f"{sigmoid[0]:.1e} vs {relu[0]:.1e}")
    sigmoid_loss, relu_loss = history["sigmoid, Glorot init"]["loss"][-1], history["ReLU, He init"]["loss"][-1]
    chance = float(np.log(10))  # the loss of a uniform guess over 10 classes
    lesson.check(f"trained alike, the sigmoid network stays at chance (loss > {chance - 0.1:.2f}) while ReLU+He "
                 "learns (loss < 1.5)", sigmoid_loss > chance - 0.1 and relu_loss < 1.5,
                 f"{sigmoid_loss:.2f} vs {relu_loss:.2f}")


@atlas_entry(
    9,
    formula=r"\Big\lVert \frac{\partial \mathcal L}{\partial h^{(1)}} \Big\rVert \sim \prod_{l=2}^{L} "
    r"\big\lVert W^{(l)\top} \operatorname{diag}\sigma'(z^{(l)}) \big\rVert \sim g^{L},\qquad "
    r"\text{clipping: } \tilde g = g \cdot \min\Big(1, \frac{c}{\lVert g \rVert_2}\Big)",
    see=("tfdl.training.OptimizerConfig", "tfdl.training.make_optimizer", "tfdl.models.MLPConfig"),
    configs=("digits_mlp",),
)
def exploding_gradients(lesson: Lesson) -> None:
    """The exploding gradient problem is the mirror image of the vanishing one: when
    the factors backpropagation multiplies through each layer (the weights times the
    activation's derivative) are larger than one, the gradient grows geometrically
    with depth — or, in a recurrent network, with the number of time steps, since
    the same recurrent matrix multiplies the signal at every step. A step of gradient
    descent then moves the weights so far that the loss jumps up, overflows to
    infinity or NaN, or lands the network somewhere dead (all ReLUs off) from which
    it never recovers.

    Mitigations: initialize so each layer keeps the signal's scale (He or Glorot,
    orthogonal recurrent weights), normalize activations (batch or layer norm), use
    residual connections or gated recurrent cells, lower the learning rate, and
    **clip gradients**: rescale a gradient whose norm exceeds a threshold $c$ so that
    its norm is $c$, keeping its direction. Keras clips each variable's gradient
    (`clipnorm`) or all of them together (`global_clipnorm`, which keeps the
    direction of the whole update); tfdl's `OptimizerConfig` exposes both.

    The example scales the He-initialized kernels of a ten-layer ReLU MLP by
    $g = 2$, so each layer amplifies the signal: every layer's gradient comes out
    hundreds of times too large. Trained with the same SGD, the unclipped run blows
    up while the run with `global_clipnorm=1` keeps learning.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.models import build_model
    from tfdl.pipelines import load_sklearn_dataset
    from tfdl.training import OptimizerConfig, make_optimizer

    digits = load_sklearn_dataset("digits")
    x, y = digits.features / 16.0, digits.labels
    depth, gain = 10, 2.0

    def network(scale):
        model = build_model("mlp", {"input_shape": (64,), "num_classes": 10, "hidden_units": (32,) * depth,
                                    "activation": "relu", "kernel_initializer": "he_normal"})
        for i in range(1, depth + 1):  # He init times `scale`: each layer multiplies the signal's size by ~scale
            kernel = model.get_layer(f"dense{i}").kernel
            kernel.assign(kernel * scale)
        return model

    norms = {"He init": _kernel_gradient_norms(network(1.0), x[:512], y[:512]),
             f"He init × {gain:g}": _kernel_gradient_norms(network(gain), x[:512], y[:512])}
    growth = lesson.number(f"mean gradient norm, × {gain:g} / He", np.mean(norms[f"He init × {gain:g}"])
                           / np.mean(norms["He init"]))
    history = {}
    for clip in (None, 1.0):
        optimizer = make_optimizer(OptimizerConfig(name="sgd", learning_rate=0.05, global_clipnorm=clip))
        history[clip] = _train(network(gain), optimizer, x, y, epochs=lesson.budget(12, 40), steps_per_epoch=25,
                               seed=lesson.seed)
    unclipped, clipped = history[None], history[1.0]
    lesson.table("Training the amplified network with SGD (learning rate 0.05)",
                 ("optimizer", "first epoch loss", "largest loss", "final loss", "final accuracy"),
                 [(name, h["loss"][0], max(h["loss"]), h["loss"][-1], h["accuracy"][-1])
                  for name, h in (("no clipping", unclipped), ("global_clipnorm = 1", clipped))])
    lesson.number("no clipping: final accuracy", unclipped["accuracy"][-1])
    lesson.number("global_clipnorm=1: final accuracy", clipped["accuracy"][-1])

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    for name, values in norms.items():
        axes[0].semilogy(np.arange(1, depth + 1), values, "o-", label=name)
    axes[0].set_xlabel("hidden layer (1 = next to the input)")
    axes[0].set_ylabel("gradient norm of the kernel")
    axes[0].set_title(f"{depth} ReLU layers at initialization", fontsize=10)
    axes[0].legend(fontsize=8)
    steps = np.arange(1, len(clipped["loss"]) + 1) * 25
    finite = np.isfinite(unclipped["loss"])
    broken = "" if finite.all() else f", loss NaN from step {steps[~finite][0]}"
    axes[1].plot(steps, unclipped["accuracy"], "o-", label=f"no clipping{broken}")
    axes[1].plot(steps, clipped["accuracy"], "o-", label="global_clipnorm = 1")
    axes[1].axhline(0.1, color="0.6", ls="--", lw=1, label="chance")
    axes[1].set_ylim(0, 1)
    axes[1].set_xlabel("SGD step")
    axes[1].set_ylabel("training accuracy (epoch mean)")
    axes[1].set_title(f"training the × {gain:g} network, SGD 0.05", fontsize=10)
    axes[1].legend(fontsize=8)
    lesson.figure(fig, "exploding", f"Left: kernels {gain:g}x larger than He initialization give every layer a "
                  "gradient hundreds of times larger. Right: unclipped SGD blows up; clipped SGD learns.")
    lesson.check(f"scaling the weights by {gain:g} makes the gradients over 100x larger", growth > 100,
                 f"{growth:.0f}x")
    blew_up = not finite.all() or max(unclipped["loss"]) > 1e6
    lesson.check("without clipping the loss blows up (NaN or > 1e6) and the network ends at chance (accuracy < 0.2)",
                 blew_up and unclipped["accuracy"][-1] < 0.2,
                 f"largest loss {max(unclipped['loss']):.3g}, accuracy {unclipped['accuracy'][-1]:.3f}")
    lesson.check("with global_clipnorm = 1 the loss stays finite and falls, and accuracy passes 0.3",
                 np.isfinite(clipped["loss"]).all() and clipped["loss"][-1] < clipped["loss"][0] / 3
                 and clipped["accuracy"][-1] > 0.3,
                 f"loss {clipped['loss'][0]:.3g} -> {clipped['loss'][-1]:.3g}, accuracy {clipped['accuracy'][-1]:.3f}")


@atlas_entry(
    10,
    formula=r"\mathbb E\big[(y - \hat f(x))^2\big] = "
    r"\underbrace{\big(f(x) - \mathbb E \hat f(x)\big)^2}_{\text{bias}^2} "
    r"+ \underbrace{\operatorname{Var} \hat f(x)}_{\text{variance}} + \underbrace{\sigma^2}_{\text{noise}}",
    see=("tfdl.models.MLPConfig", "tfdl.training.EarlyStoppingConfig"),
    configs=("digits_mlp",),
)
def overfitting_and_underfitting(lesson: Lesson) -> None:
    """**Underfitting** is a model too simple or too little trained to capture the pattern
    in the data: its error is high on the training data *and* on new data, and the
    two are close (high bias). **Overfitting** is a model that fits the training data
    better than the pattern warrants — it memorizes the particular examples and
    their noise — so its training error keeps falling while its error on held-out
    data stops improving and rises (high variance). The gap between training and
    validation error is the measure of overfitting; the level of the training error
    is the measure of underfitting.

    Both are read off training and validation curves. Against underfitting: more
    capacity (units, layers), better features, longer training. Against
    overfitting: more data (or augmentation), L1/L2 weight penalties, dropout, early
    stopping at the validation minimum, or a smaller model (questions 18-20). Deep
    networks have capacity to memorize any labelling of a small training set, so on
    small data the validation curve is what tells a good fit from a memorized one.

    The example trains three MLPs on only 100 digits and validates on 600 others: a
    bottleneck of 2 hidden units (underfits), 32 units (fits), and two layers of 512
    units (memorizes the 100 examples, and its validation loss climbs).
    """
    import keras
    import matplotlib.pyplot as plt

    from tfdl.models import build_model
    from tfdl.pipelines import load_sklearn_dataset

    digits = load_sklearn_dataset("digits")
    x, y = digits.features / 16.0, digits.labels
    train, validation = (x[:100], y[:100]), (x[1000:1600], y[1000:1600])
    sizes = {"too small: 2 units": (2,), "about right: 32 units": (32,), "too big: 512-512 units": (512, 512)}
    history = {}
    for name, hidden_units in sizes.items():
        model = build_model("mlp", {"input_shape": (64,), "num_classes": 10, "hidden_units": hidden_units})
        history[name] = _train(model, keras.optimizers.Adam(0.003), *train, epochs=lesson.budget(16, 60),
                               steps_per_epoch=10, seed=lesson.seed, validation=validation)
    rows = []
    for name, h in history.items():
        rows.append((name, h["loss"][-1], h["val_loss"][-1], min(h["val_loss"]), h["accuracy"][-1],
                     h["val_accuracy"][-1]))
    lesson.table("After training on 100 digits", ("model", "train loss", "validation loss", "best validation loss",
                                                  "train accuracy", "validation accuracy"), rows)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharey=True, layout="constrained")
    for ax, (name, h) in zip(axes, history.items()):
        epochs = range(1, len(h["loss"]) + 1)
        ax.plot(epochs, h["loss"], label="training")
        ax.plot(epochs, h["val_loss"], label="validation")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch (10 steps of 64)")
    axes[0].set_ylabel("cross-entropy loss")
    axes[0].legend(fontsize=8)
    lesson.figure(fig, "fit_curves", "Training and validation loss on 100 digits: too small a model stays high on "
                  "both; too big a model drives training loss to zero while validation loss turns up.")
    small, right, big = (history[name] for name in sizes)
    for name, h in history.items():
        lesson.number(f"{name}: train - validation accuracy", h["accuracy"][-1] - h["val_accuracy"][-1])
    lesson.check("the 2-unit model underfits: training accuracy below 0.8", small["accuracy"][-1] < 0.8,
                 f"train {small['accuracy'][-1]:.3f}, validation {small['val_accuracy'][-1]:.3f}")
    lesson.check("the 512-512 model overfits: training loss near 0 while its validation loss rose 30% above its "
                 "minimum",
                 big["loss"][-1] < 0.01 and big["val_loss"][-1] > 1.3 * min(big["val_loss"]),
                 f"train {big['loss'][-1]:.4f}, validation {big['val_loss'][-1]:.3f} (min {min(big['val_loss']):.3f})")
    lesson.check("the 32-unit model ends with the lowest validation loss of the three",
                 right["val_loss"][-1] < min(small["val_loss"][-1], big["val_loss"][-1]),
                 ", ".join(f"{h['val_loss'][-1]:.3f}" for h in (small, right, big)))
