"""Atlas entries 40-50: residual networks, training difficulties, imbalance, augmentation, transfer learning,
fine-tuning, evaluation and its metrics, missing data, batch normalization."""

from __future__ import annotations

from tfdl.atlas.entry import atlas_entry
from tfdl.atlas.lesson import Lesson


def _digits(scale: float = 16.0):
    """scikit-learn's 8x8 digits as float32 rows in [0, 1] and int32 labels."""
    from tfdl.pipelines import load_sklearn_dataset

    digits = load_sklearn_dataset("digits")
    return (digits.features / scale).astype("float32"), digits.labels.astype("int32")


def _train_stack(x, y, *, depth: int, residual: bool, normalize: bool = True, init_gain: float = 2.0,
                 learning_rate: float = 0.003, steps: int = 200, width: int = 32, seed: int = 0):
    """Train a stack of `depth` dense layers on `(x, y)` with Adam.

    Returns the loss of each step's batch, each hidden layer's gradient norm at initialization (input side
    first) and the final loss on all of `(x, y)`.

    Each layer computes `f(h) = relu(norm(h)) W` (`norm` standardizes each unit over the batch, as batch
    normalization does in training, or is the identity); a plain stack passes on `f(h)`, a residual one
    `h + f(h)`. Weights are drawn with variance `init_gain / fan_in` (2 is He initialization). Written in plain
    TensorFlow so that a 24-layer network trains in about a second.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    shapes = [(x.shape[1], width)] + [(width, width)] * depth + [(width, 10)]
    weights = [tf.Variable(rng.normal(size=s) * np.sqrt(init_gain / s[0]), dtype=tf.float32) for s in shapes]

    def loss(inputs, labels):
        h = inputs @ weights[0]
        for w in weights[1:-1]:
            if normalize:
                mean, variance = tf.nn.moments(h, axes=[0])
                h_in = (h - mean) / tf.sqrt(variance + 1e-5)
            else:
                h_in = h
            f = tf.nn.relu(h_in) @ w
            h = h + f if residual else f
        logits = h @ weights[-1]
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))

    x, y = tf.constant(x), tf.constant(y)
    with tf.GradientTape() as tape:
        initial = loss(x, y)
    gradient_norms = [float(tf.norm(g)) for g in tape.gradient(initial, weights[1:-1])]
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(weights)
    draws = tf.random.Generator.from_seed(seed)

    @tf.function
    def run():
        losses = tf.TensorArray(tf.float32, size=steps)
        for step in tf.range(steps):
            batch = draws.uniform([64], 0, tf.shape(x)[0], dtype=tf.int32)
            with tf.GradientTape() as tape:
                value = loss(tf.gather(x, batch), tf.gather(y, batch))
            optimizer.apply_gradients(zip(tape.gradient(value, weights), weights))
            losses = losses.write(step, value)
        return losses.stack()

    losses = np.nan_to_num(run().numpy(), nan=np.inf)
    return losses, np.array(gradient_norms), float(np.nan_to_num(loss(x, y).numpy(), nan=np.inf))


def _fit(model, feed, *, steps: int, learning_rate: float, loss="sparse_categorical_crossentropy", **fit_args):
    """Compile `model` with Adam and fit it for `steps` steps of the repeating, batched `feed` (one long epoch)."""
    import keras

    model.compile(keras.optimizers.Adam(learning_rate), loss, steps_per_execution=min(steps, 50))
    model.fit(feed, steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0, **fit_args)
    return model


def _smooth(values, window: int = 10):
    """Moving average of a loss curve, for plotting and for reading its end without batch noise."""
    import numpy as np

    return np.convolve(values, np.ones(window) / window, mode="valid")


@atlas_entry(
    40,
    formula=r"\text{plain: } h_{l+1} = F_l(h_l),\qquad \text{residual: } h_{l+1} = h_l + F_l(h_l),\qquad "
    r"\frac{\partial h_L}{\partial h_l} = I + \frac{\partial}{\partial h_l}\sum_{k=l}^{L-1} F_k(h_k)",
    see=("tfdl.models.build_resnet", "tfdl.models.ResNetConfig", "tfdl.models.build_model"),
    configs=("digits_resnet", "cifar10_resnet"),
)
def residual_networks(lesson: Lesson) -> None:
    """A **residual network** (ResNet, He et al. 2015) is built from blocks that add their input
    to their output: a block computes $h + F(h)$, where $F$ is a few layers (two 3×3
    convolutions with batch normalization and ReLU in the original), instead of $F(h)$.
    The *shortcut* carries $h$ unchanged; the layers only learn the *residual*, the
    correction to the identity. When the shapes differ (more channels, a stride), the
    shortcut is a 1×1 convolution.

    Why it matters: before ResNets, adding layers to a deep enough plain network made
    it *worse on the training set* — the **degradation problem**. That is an
    optimization failure, not overfitting: a deeper network could copy the shallower
    one and set the extra layers to the identity, but gradient descent does not find
    that solution. With shortcuts the identity is the default (all $F = 0$), and the
    Jacobian of the output with respect to any earlier layer contains the term $I$, so
    the gradient reaches early layers directly, whatever the depth. This made networks
    of 50 to 150 layers (and 1000 in experiments) trainable, won ImageNet 2015, and
    the same addition is inside every transformer layer.

    The example trains three dense networks on the digits, all with He initialization
    and batch-wise normalization before each ReLU: 2 hidden layers, 24 plain layers,
    and the same 24 layers with shortcuts. The deep plain network is the one that
    fails on the *training* loss; the residual one trains like the shallow one.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    x, y = _digits()
    steps, depth = lesson.budget(150, 600), 24
    runs = {  # name: (loss per step, gradient norm per layer at initialization, final loss on the training set)
        "2 layers, plain": _train_stack(x, y, depth=2, residual=False, steps=steps, seed=lesson.seed),
        f"{depth} layers, plain": _train_stack(x, y, depth=depth, residual=False, steps=steps, seed=lesson.seed),
        f"{depth} layers, residual": _train_stack(x, y, depth=depth, residual=True, steps=steps, seed=lesson.seed),
    }
    final = {name: run[2] for name, run in runs.items()}
    for name, value in final.items():
        lesson.number(f"{name}: training loss at the end", value)
    lesson.table(f"Loss on the whole training set after {steps} Adam steps",
                 ("network", "training loss", "first-layer gradient norm at init"),
                 [(name, final[name], norms[0]) for name, (_, norms, _) in runs.items()])

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    for name, (losses, norms, _) in runs.items():
        axes[0].plot(_smooth(losses), label=name)
        axes[1].semilogy(np.arange(1, len(norms) + 1), norms, "o-", ms=3, label=name)
    axes[0].set_xlabel("Adam step")
    axes[0].set_ylabel("training loss (cross-entropy)")
    axes[0].set_title("training loss on the digits", fontsize=10)
    axes[0].legend(fontsize=8)
    axes[1].set_xlabel("hidden layer (input side first)")
    axes[1].set_ylabel("gradient norm at initialization")
    axes[1].set_title("per-layer gradient norm", fontsize=10)
    lesson.figure(fig, "degradation", "The degradation problem: 24 plain layers train worse than 2; the same 24 "
                  "layers with shortcuts train as well as the shallow network.")
    plain, residual, shallow = final[f"{depth} layers, plain"], final[f"{depth} layers, residual"], final["2 layers, plain"]
    lesson.check("degradation: the 24-layer plain network ends with over 10x the training loss of the 2-layer one",
                 plain > 10 * shallow, f"{plain:.3f} vs {shallow:.3f}")
    lesson.check("with shortcuts the same 24 layers train: loss below 1/10 of the plain stack's and within 3x of "
                 "the 2-layer network's", residual < plain / 10 and residual < 3 * shallow,
                 f"residual {residual:.3f}, plain {plain:.3f}, shallow {shallow:.3f}")


@atlas_entry(
    41,
    formula=r"h_{l+1} = \mathrm{relu}(W_l h_l),\ \ \mathrm{Var}(W_l) = \frac{g}{n}:\qquad "
    r"\mathbb E\,\|h_{L}\|^2 \approx \Big(\frac{g}{2}\Big)^{L} \|h_0\|^2 "
    r"\quad (g = 2:\ \text{He};\ g < 2 \text{ vanishes},\ g > 2 \text{ explodes})",
    see=("tfdl.training.OptimizerConfig", "tfdl.training.TrainingConfig", "tfdl.models.ResNetConfig"),
)
def challenges_of_deep_networks(lesson: Lesson) -> None:
    """Training a deep network is non-convex optimization of millions of parameters through
    a long chain of layers, and most of its difficulties come from that chain:

    - **Vanishing and exploding gradients** (questions 8 and 9). The gradient reaching
      layer $l$ is a product of one Jacobian per layer above it, so it shrinks or grows
      geometrically with depth. Remedies: initialization matched to the activation
      (16, 17), normalization layers (50), residual connections (40), gating in
      recurrent networks (27-30), gradient clipping.
    - **Optimization itself**: the loss surface is badly conditioned, full of saddle
      points and plateaus; a learning rate too large diverges or kills ReLU units,
      one too small crawls. Remedies: momentum and adaptive methods (14, 15),
      learning-rate schedules and warm-up (13), normalization.
    - **Generalization**: a network large enough to fit the data can memorize it
      (10); regularization (18-20), data augmentation (43) and transfer from a
      pre-trained model (44, 45) fight it, and careful held-out evaluation (46)
      measures it. Imbalanced or incomplete data add their own traps (42, 49).
    - **Cost and fragility**: many hyperparameters interact, every trial costs hours
      of accelerator time, and runs are noisy; it takes memory for activations,
      distributed training, mixed precision, and checkpoints to resume from.

    The example isolates the first two on one 16-layer ReLU network (no normalization,
    no shortcuts) on the digits, trained with Adam for the same number of steps, and
    changes one thing at a time: the initialization's gain $g$ and the learning rate.
    Only He initialization at a moderate learning rate trains. With $g = 0.5$ the
    squared signal shrinks by a factor 4 per layer, and the first layer's gradient is
    about $10^{-5}$ of He's; with $g = 4$ it grows by 2 per layer, so the initial
    outputs, the loss and the gradients are huge; with a learning rate of 0.05 the first steps push the ReLUs
    into a dead region and the loss stays at chance, $\\ln 10 \\approx 2.30$.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    x, y = _digits()
    steps = lesson.budget(150, 500)
    settings = {  # name: (init gain g, learning rate)
        "He (g = 2), lr 0.003": (2.0, 0.003),
        "too small (g = 0.5), lr 0.003": (0.5, 0.003),
        "too large (g = 4), lr 0.003": (4.0, 0.003),
        "He (g = 2), lr 0.05": (2.0, 0.05),
    }
    runs = {name: _train_stack(x, y, depth=16, residual=False, normalize=False, init_gain=gain,
                               learning_rate=rate, steps=steps, seed=lesson.seed)
            for name, (gain, rate) in settings.items()}
    rows = []
    for name, (losses, norms, final) in runs.items():
        lesson.number(f"{name}: final training loss", final)
        rows.append((name, losses[0], norms[0], final))
    lesson.table(f"A 16-layer ReLU network, {steps} Adam steps on the digits",
                 ("setting", "loss at step 1", "first-layer gradient norm at init", "final training loss"), rows)

    fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
    for name, (losses, _, _) in runs.items():
        ax.plot(_smooth(losses), label=name)
    ax.axhline(np.log(10), color="0.6", ls=":", label="chance (ln 10)")
    ax.set_ylim(0, 4)
    ax.set_xlabel("Adam step")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_title("one 16-layer network: only He initialization at a sane learning rate trains", fontsize=10)
    ax.legend(fontsize=8)
    lesson.figure(fig, "challenges", "The same 16-layer ReLU network on the digits: vanishing (g = 0.5) and "
                  "exploding (g = 4) initial signals and a too large learning rate each stop it from training.")
    he_losses, he_norms, he = runs["He (g = 2), lr 0.003"]
    _, small_norms, small = runs["too small (g = 0.5), lr 0.003"]
    large_losses, large_norms, large = runs["too large (g = 4), lr 0.003"]
    fast = runs["He (g = 2), lr 0.05"][2]
    lesson.check("He initialization at lr 0.003 trains the 16 layers (final loss < 0.6)", he < 0.6, f"{he:.3f}")
    lesson.check("vanishing: with g = 0.5 the first layer's gradient is < 1e-3 of He's, and the final loss is "
                 "over 3x He's", small_norms[0] < 1e-3 * he_norms[0] and small > 3 * he,
                 f"gradient {small_norms[0]:.1e} vs {he_norms[0]:.1e}; loss {small:.3f} vs {he:.3f}")
    lesson.check("exploding: with g = 4 the first loss is over 10 and the first layer's gradient over 100x He's, "
                 "and the final loss is over 3x He's",
                 large_losses[0] > 10 and large_norms[0] > 100 * he_norms[0] and large > 3 * he,
                 f"first loss {large_losses[0]:.1f}, gradient {large_norms[0]:.1e} vs {he_norms[0]:.1e}; "
                 f"loss {large:.3f}")
    lesson.check("a learning rate of 0.05 stalls the same network (final loss over 3x He's)", fast > 3 * he,
                 f"{fast:.3f} vs {he:.3f}")


@atlas_entry(
    42,
    formula=r"w_c = \frac{n}{K\, n_c},\qquad \mathcal L = -\frac{1}{n}\sum_{i} w_{y_i} \log p_\theta(y_i \mid x_i),"
    r"\qquad \text{balanced accuracy} = \frac{1}{K}\sum_{c} \mathrm{recall}_c",
    see=("tfdl.pipelines.class_weights", "tfdl.pipelines.resample", "tfdl.pipelines.class_distribution",
         "tfdl.pipelines.ImbalanceConfig", "tfdl.evaluation.classification_metrics"),
)
def imbalanced_datasets(lesson: Lesson) -> None:
    """A dataset is **imbalanced** when some classes are much rarer than others (fraud,
    disease, defects). A model trained to minimize the average loss then learns mostly
    the common class: predicting it everywhere already scores the majority's share in
    *accuracy*, so accuracy hides the failure. First, measure what matters:
    per-class recall and precision, F1, balanced accuracy, precision-recall curves
    (question 47), on a test set with the real class frequencies.

    Then correct the training signal, on the training split only:

    - **class weights** multiply each example's loss by its class's weight, usually
      $n / (K n_c)$, so every class carries the same total weight
      (`class_weights`, `model.fit(class_weight=...)`);
    - **resampling** draws the training feed to a balanced distribution:
      oversample the rare class (repeat it, or synthesize new examples as SMOTE or
      augmentation do) or undersample the common one (`resample`);
    - **the decision threshold** can be moved after training to trade precision for
      recall; losses such as focal loss down-weight easy, mostly-majority examples;
      and more data of the rare class beats all of these.

    Weighting and resampling do not add information: they move the decision boundary
    toward the majority, buying minority recall with majority precision. The example
    trains the same small MLP on two overlapping classes where 5% of the examples
    are positive, plain, with balanced class weights and with an oversampled feed,
    and tests each on held-out data with the same 95/5 split.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.evaluation import classification_metrics
    from tfdl.models import build_model
    from tfdl.pipelines import class_weights, resample

    rng = np.random.default_rng(lesson.seed)

    def draw(n):  # 95% negatives around (0, 0), 5% positives around (1.3, 1.3), overlapping
        labels = (rng.random(n) < 0.05).astype("int32")
        return (rng.normal(size=(n, 2)) + 1.3 * labels[:, None]).astype("float32"), labels

    (x, y), (x_test, y_test) = draw(3000), draw(10000)
    weights = class_weights(y, num_classes=2)
    steps = lesson.budget(200, 1500)
    plain_feed = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=lesson.seed).repeat().batch(64)
    feeds = {  # name: (training feed, extra fit arguments)
        "plain": (plain_feed, {}),
        "class weights": (plain_feed, {"class_weight": weights}),
        "oversampled 50/50": (resample(x, y, target="uniform", seed=lesson.seed).repeat().batch(64), {}),
    }
    rows, metrics, models = [], {}, {}
    for name, (feed, fit_args) in feeds.items():
        model = build_model("mlp", {"input_shape": (2,), "num_classes": 2, "hidden_units": (16,)})
        models[name] = _fit(model, feed, steps=steps, learning_rate=0.01, **fit_args)
        m = classification_metrics(y_test, model(x_test).numpy().argmax(-1), ("negative", "positive"))
        metrics[name] = m
        rows.append((name, m.accuracy, m.recall[1], m.precision[1], m.f1[1], m.recall.mean()))
        lesson.number(f"{name}: accuracy", m.accuracy)
        lesson.number(f"{name}: recall of the rare class", m.recall[1])
    always = float(np.mean(y_test == 0))
    rows.append(("always 'negative'", always, 0.0, 0.0, 0.0, 0.5))
    lesson.number("accuracy of always answering 'negative'", always)
    lesson.table("Held-out test set, 5% positives",
                 ("training", "accuracy", "recall (positive)", "precision (positive)", "F1 (positive)",
                  "balanced accuracy"), rows)
    lesson.table("Balanced class weights n / (K n_c) from tfdl.pipelines.class_weights",
                 ("class", "training examples", "weight"),
                 [(c, int(np.sum(y == c)), w) for c, w in weights.items()])

    grid_axis = np.linspace(-3, 4.5, 121, dtype="float32")
    grid = np.stack(np.meshgrid(grid_axis, grid_axis), -1).reshape(-1, 2)
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6), sharey=True, layout="constrained")
    shown = rng.permutation(len(x_test))[:1500]
    for ax, (name, model) in zip(axes, models.items()):
        ax.scatter(*x_test[shown].T, c=y_test[shown], s=3, cmap="coolwarm", vmin=0, vmax=1)
        ax.contour(grid_axis, grid_axis, model(grid).numpy()[:, 1].reshape(121, 121), levels=[0.5], colors="k")
        ax.set_title(f"{name}\naccuracy {metrics[name].accuracy:.3f}, positive recall {metrics[name].recall[1]:.2f}",
                     fontsize=9)
        ax.set_xlabel("$x_1$")
    axes[0].set_ylabel("$x_2$")
    lesson.figure(fig, "imbalance", "Test points (red: the 5% positives) and each model's decision boundary: "
                  "weighting or oversampling moves it toward the majority, catching most positives.")
    plain, weighted, sampled = (metrics[k] for k in feeds)
    lesson.check("plain training: accuracy looks high (>= 0.94, near always-'negative') while under half of the "
                 "positives are found", plain.accuracy >= 0.94 and plain.recall[1] < 0.5,
                 f"accuracy {plain.accuracy:.3f} (always-negative {always:.3f}), recall {plain.recall[1]:.3f}")
    lesson.check("class weights and oversampling each find at least 0.7 of the positives and raise balanced "
                 "accuracy by over 0.1", min(weighted.recall[1], sampled.recall[1]) >= 0.7
                 and min(weighted.recall.mean(), sampled.recall.mean()) > plain.recall.mean() + 0.1,
                 f"recall {weighted.recall[1]:.3f} / {sampled.recall[1]:.3f}; balanced accuracy "
                 f"{plain.recall.mean():.3f} -> {weighted.recall.mean():.3f} / {sampled.recall.mean():.3f}")
    lesson.check("the price: positive precision falls below the plain model's", max(weighted.precision[1],
                 sampled.precision[1]) < plain.precision[1],
                 f"{plain.precision[1]:.3f} -> {weighted.precision[1]:.3f} / {sampled.precision[1]:.3f}")


@atlas_entry(
    43,
    formula=r"\min_\theta\ \frac{1}{n}\sum_{i=1}^{n} \mathbb E_{T \sim \mathcal T}\, "
    r"\ell\big(f_\theta(T(x_i)),\ y_i\big)\qquad (\mathcal T: \text{transforms that keep the label})",
    see=("tfdl.pipelines.build_augmentation", "tfdl.pipelines.augment", "tfdl.pipelines.AugmentationConfig",
         "tfdl.pipelines.augment_dataset"),
    configs=("digits_cnn",),
)
def data_augmentation(lesson: Lesson) -> None:
    """**Data augmentation** trains on randomly transformed copies of the training examples,
    using transforms that do not change the label: for images, shifts, crops, flips,
    small rotations and zooms, colour and brightness jitter, cutout, mixup; for audio,
    time shifts, noise and masking; for text, synonym swaps or back-translation. Each
    epoch draws new transforms, so the network never sees the same input twice. It is
    a regularizer that encodes prior knowledge: it tells the model which variations
    are irrelevant (a digit moved one pixel is the same digit) and widens the training
    distribution toward what the test data will show. It helps most when data is
    scarce.

    It is applied to the training feed only, on the fly (in the `tf.data` pipeline or
    as the model's first layers, on the accelerator), never to validation or test
    data. The transforms must keep the label true: a horizontal flip is right for
    cats and wrong for digits and text; for detection and segmentation the boxes and
    masks must move with the image (`augment_dataset`).

    The example trains the same MLP on 200 digits placed in the centre of a 12×12
    canvas, once as they are and once through `build_augmentation(translation=...)`,
    which shifts each image by up to two pixels. It tests both on held-out digits,
    centred and at random positions. Without augmentation the network memorizes the
    centred training set and fails on shifted digits; with it the train/test gap
    closes.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.models import build_model
    from tfdl.pipelines import augment, build_augmentation

    x, y = _digits()
    rng = np.random.default_rng(lesson.seed)
    order = rng.permutation(len(x))
    train, test = order[:200], order[200:]

    def on_canvas(images, rows, columns):  # each 8x8 digit on a 12x12 canvas, its corner at (row, column)
        canvas = np.zeros((len(images), 12, 12, 1), "float32")
        for i, (r, c) in enumerate(zip(rows, columns)):
            canvas[i, r:r + 8, c:c + 8, 0] = images[i].reshape(8, 8)
        return canvas

    x_train = on_canvas(x[train], [2] * len(train), [2] * len(train))
    x_centred = on_canvas(x[test], [2] * len(test), [2] * len(test))
    x_shifted = on_canvas(x[test], rng.integers(0, 5, len(test)), rng.integers(0, 5, len(test)))
    augmentation = build_augmentation(translation=0.17, seed=lesson.seed)  # up to 0.17 x 12 = 2 pixels
    feed = tf.data.Dataset.from_tensor_slices((x_train, y[train])).shuffle(200, seed=lesson.seed).repeat().batch(32)
    accuracy, rows = {}, []
    for name, training_feed in (("no augmentation", feed), ("random shifts", augment(feed, augmentation))):
        model = build_model("mlp", {"input_shape": (12, 12, 1), "num_classes": 10, "hidden_units": (64,)})
        _fit(model, training_feed, steps=lesson.budget(400, 1500), learning_rate=0.003)
        scores = [float(np.mean(model(images).numpy().argmax(-1) == labels))
                  for images, labels in ((x_train, y[train]), (x_centred, y[test]), (x_shifted, y[test]))]
        accuracy[name] = dict(zip(("train", "test, centred", "test, shifted"), scores))
        rows.append((name, *scores, scores[0] - scores[2]))
        lesson.number(f"{name}: accuracy on shifted test digits", scores[2])
        lesson.number(f"{name}: train - shifted test accuracy", scores[0] - scores[2])
    lesson.table("Accuracy of an MLP trained on 200 centred digits",
                 ("training", "train", "test, centred", "test, shifted", "gap (train - shifted)"), rows)

    fig = plt.figure(figsize=(10, 3.4), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1.2, 1])
    samples = next(iter(augment(tf.data.Dataset.from_tensor_slices((np.repeat(x_train[:1], 8, 0), y[train][:8]))
                                .batch(8), augmentation)))[0].numpy()
    cells = left.subplots(2, 5)
    for ax, image, title in zip(cells.flat, [x_train[0], *samples[:4], x_shifted[0], *x_shifted[1:5]],
                                ["training image", *["augmented"] * 4, "shifted test", *[""] * 4]):
        ax.imshow(image[..., 0], cmap="gray_r")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    ax = right.subplots()
    columns = ("train", "test, centred", "test, shifted")
    for offset, name in zip((-0.2, 0.2), accuracy):
        ax.bar(np.arange(3) + offset, [accuracy[name][c] for c in columns], width=0.4, label=name)
    ax.set_xticks(range(3), columns)
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, loc="lower left")
    lesson.figure(fig, "augmentation", "Left: a training digit, four random shifts of it drawn by the augmentation, "
                  "and shifted test digits. Right: accuracy with and without augmentation.")
    plain, shifted = accuracy["no augmentation"], accuracy["random shifts"]
    lesson.check("without augmentation the MLP memorizes the centred digits and fails on shifted ones "
                 "(train - shifted test accuracy > 0.5)", plain["train"] - plain["test, shifted"] > 0.5,
                 f"{plain['train']:.3f} vs {plain['test, shifted']:.3f}")
    lesson.check("augmentation raises shifted-test accuracy by over 0.25 and at least halves the gap",
                 shifted["test, shifted"] > plain["test, shifted"] + 0.25
                 and shifted["train"] - shifted["test, shifted"] < (plain["train"] - plain["test, shifted"]) / 2,
                 f"shifted test {plain['test, shifted']:.3f} -> {shifted['test, shifted']:.3f}; gap "
                 f"{plain['train'] - plain['test, shifted']:.3f} -> {shifted['train'] - shifted['test, shifted']:.3f}")


def _digits_source_and_target(seed: int, labels_per_digit: int, steps: int):
    """The transfer setting of entries 44 and 45, on the digits.

    Source task: classify the 10 digits, 900 labelled images. Target task: say whether a digit is odd, on
    the other images, with `labels_per_digit` labelled examples of each digit. Returns the source model
    trained for `steps` Adam steps, the images, their digits, and the index arrays of the target task's
    training and test images.
    """
    import numpy as np
    import tensorflow as tf

    from tfdl.models import build_model

    x, y = _digits()
    order = np.random.default_rng(seed).permutation(len(x))
    source_rows, target_rows = order[:900], order[900:]
    target_train = np.concatenate([target_rows[y[target_rows] == d][:labels_per_digit] for d in range(10)])
    target_test = np.setdiff1d(target_rows, target_train)
    source = build_model("mlp", {"input_shape": (64,), "num_classes": 10, "hidden_units": (64, 32)})
    feed = tf.data.Dataset.from_tensor_slices((x[source_rows], y[source_rows])).shuffle(900, seed=seed)
    _fit(source, feed.repeat().batch(32), steps=steps, learning_rate=0.003)
    return source, x, y, target_train, target_test


@atlas_entry(
    44,
    formula=r"f_{\text{target}} = g_{\phi} \circ h_{\theta^*},\qquad "
    r"\theta^* = \arg\min_\theta \mathcal L_{\text{source}}(\theta),\qquad "
    r"\phi = \arg\min_\phi \mathcal L_{\text{target}}(g_\phi \circ h_{\theta^*})",
    see=("tfdl.models.build_transfer", "tfdl.models.TransferConfig", "tfdl.training.fine_tune"),
    configs=("shapes_transfer",),
)
def transfer_learning(lesson: Lesson) -> None:
    """**Transfer learning** reuses what a model learned on one task (the *source*, with
    plenty of data) for another (the *target*, usually with little). A network's lower
    layers compute general features — edges, textures and parts for images; word
    meaning and syntax for text — and only the top layers are specific to the source
    task. So one takes a network pretrained on a large dataset (ImageNet, or a
    language model's web-scale corpus), removes its output layer, and puts a new head
    for the target task on the *backbone*. With the backbone frozen it acts as a fixed
    feature extractor and only the head is trained; fine-tuning (question 45) then
    adapts the backbone too.

    It works when the source's features are relevant to the target (similar inputs,
    related structure) and helps most when target labels are few: the head has far
    fewer parameters to fit than a whole network, and the features already encode what
    would be hard to learn from a handful of examples. A distant source can also hurt
    (*negative transfer*). In tfdl `build_model("transfer", ...)` puts a new head on a
    keras.applications backbone, a SavedModel or a TF Hub module.

    The example pretrains an MLP to recognise the 10 digits on 900 images (source), then
    learns a new task, *is the digit odd?*, on other images from only 10 labels — one
    per digit. A network trained from scratch on those 10 examples is compared with a
    linear head on the frozen 32 features of the pretrained network.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.models import build_model

    source, x, digit, train, test = _digits_source_and_target(lesson.seed, labels_per_digit=1,
                                                             steps=lesson.budget(400, 1500))
    odd = digit % 2  # the target task's labels
    feed = tf.data.Dataset.from_tensor_slices((x[train], odd[train])).shuffle(len(train), seed=lesson.seed)
    feed = feed.repeat().batch(len(train))

    scratch = build_model("mlp", {"input_shape": (64,), "num_classes": 2, "hidden_units": (64, 32)})
    _fit(scratch, feed, steps=lesson.budget(300, 1000), learning_rate=0.003)

    backbone = keras.Model(source.input, source.get_layer("dense2_relu").output, name="backbone")
    backbone.trainable = False  # a fixed feature extractor: only the new head learns
    transferred = keras.Sequential([backbone, keras.layers.Dense(2, activation="softmax", name="new_head")])
    _fit(transferred, feed, steps=lesson.budget(300, 1000), learning_rate=0.01)

    accuracy = {name: lesson.number(f"{name}: test accuracy (is it odd?)",
                                    float(np.mean(model(x[test]).numpy().argmax(-1) == odd[test])))
                for name, model in (("from scratch", scratch), ("pretrained features + new head", transferred))}
    trained = {name: int(sum(np.prod(w.shape) for w in model.trainable_weights))
               for name, model in (("from scratch", scratch), ("pretrained features + new head", transferred))}
    lesson.table(f"Is the digit odd? 10 training labels, {len(test)} test images",
                 ("model", "trainable parameters", "test accuracy"),
                 [(name, trained[name], accuracy[name]) for name in accuracy])

    features = backbone(x[test]).numpy()
    centred = features - features.mean(0)
    projection = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T  # first two principal axes
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained", gridspec_kw={"width_ratios": [1.4, 1]})
    for d in range(10):
        points = projection[digit[test] == d]
        axes[0].scatter(*points.T, s=4, color=plt.cm.tab10(d))
        axes[0].annotate(str(d), points.mean(0), fontsize=11, weight="bold")
    axes[0].set_title("test images in the pretrained features (2 principal axes)", fontsize=9)
    axes[0].set_xlabel("axis 1")
    axes[0].set_ylabel("axis 2")
    axes[1].bar(list(accuracy), list(accuracy.values()), color=["tab:gray", "tab:green"])
    axes[1].set_ylim(0.5, 1.0)
    axes[1].set_ylabel("test accuracy, is it odd?")
    axes[1].set_title("10 labelled examples", fontsize=9)
    axes[1].tick_params(axis="x", labelsize=8)
    lesson.figure(fig, "transfer", "Left: the features the source task learned already group the digits, so a new "
                  "task about digits is nearly linear in them. Right: accuracy on the new task from 10 labels.")
    gain = accuracy["pretrained features + new head"] - accuracy["from scratch"]
    lesson.check("with 10 labels, a new head on the pretrained features beats training from scratch by over 0.05 "
                 "accuracy", gain > 0.05, f"{accuracy['from scratch']:.3f} -> "
                 f"{accuracy['pretrained features + new head']:.3f}")
    lesson.check("and it trains 30x fewer parameters", trained["from scratch"] > 30 * trained[
        "pretrained features + new head"], f"{trained['from scratch']} vs {trained['pretrained features + new head']}")


@atlas_entry(
    45,
    formula=r"\text{phase 1: } \min_\phi \mathcal L(g_\phi \circ h_{\theta_0}) \ \ (\theta \text{ frozen}),\qquad "
    r"\text{phase 2: } \min_{\phi,\,\theta} \mathcal L(g_\phi \circ h_\theta) \text{ from } (\phi_1, \theta_0) "
    r"\text{ with } \eta_2 \approx \eta_1 / 10",
    see=("tfdl.training.fine_tune", "tfdl.training.FineTuningConfig", "tfdl.models.build_transfer"),
    configs=("shapes_transfer",),
)
def fine_tuning(lesson: Lesson) -> None:
    """**Fine-tuning** continues training a pretrained network's own weights on the target
    task, instead of only training a new head on its frozen features (question 44).
    The features then adapt to the target data, which gains accuracy when there are
    enough target labels to move millions of weights without overfitting.

    The standard recipe has two phases. *Phase 1*: freeze the backbone and train only the
    new head. A randomly initialized head produces large, meaningless gradients; if the
    backbone were trainable from the start they would flow into it and wreck the
    pretrained features before the head has learned anything. *Phase 2*: unfreeze the
    top layers of the backbone (or all of it) and train on with a learning rate about
    ten times smaller, so the weights move a little from where pretraining left them.
    Batch normalization layers usually stay frozen in inference mode, their statistics
    those of the source data. Lower layers (generic features) are unfrozen last or
    never; with very few labels, phase 1 alone is often best. `tfdl.training.fine_tune`
    runs both phases through tfdl's trainer (`FineTuningConfig`: how many top layers to
    unfreeze, the learning-rate factor, phase 2's epochs).

    The example reuses entry 44's pretrained digit network, now with 300 labels for the
    new task (is the digit odd?). It compares the frozen network with a trained head,
    the two-phase fine-tune, and the shortcut: everything trainable from the start at
    the head's learning rate. It measures accuracy and how far each moved the
    pretrained weights, $\\|\\theta - \\theta_0\\| / \\|\\theta_0\\|$.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    source, x, digit, train, test = _digits_source_and_target(lesson.seed, labels_per_digit=30,
                                                             steps=lesson.budget(400, 1500))
    odd = digit % 2
    feed = tf.data.Dataset.from_tensor_slices((x[train], odd[train])).shuffle(len(train), seed=lesson.seed)
    feed = feed.repeat().batch(32)
    pretrained = [w.numpy() for w in source.trainable_weights[:-2]]  # the backbone's: all but the output layer
    steps = lesson.budget(200, 800)

    def model_on_copy():  # a fresh copy of the pretrained backbone with a new, random head
        copy = keras.models.clone_model(source)
        copy.set_weights(source.get_weights())
        backbone = keras.Model(copy.input, copy.get_layer("dense2_relu").output, name="backbone")
        return keras.Sequential([backbone, keras.layers.Dense(2, activation="softmax", name="new_head")]), backbone

    def moved(backbone):  # relative distance of the backbone's weights from the pretrained ones
        now = np.concatenate([w.numpy().ravel() for w in backbone.trainable_weights or backbone.weights])
        return float(np.linalg.norm(now - np.concatenate([w.ravel() for w in pretrained]))
                     / np.linalg.norm(np.concatenate([w.ravel() for w in pretrained])))

    def accuracy(model):
        return float(np.mean(model(x[test]).numpy().argmax(-1) == odd[test]))

    results = {}
    model, backbone = model_on_copy()
    backbone.trainable = False  # phase 1: the head alone
    _fit(model, feed, steps=steps, learning_rate=0.01)
    results["phase 1: frozen backbone, new head"] = (accuracy(model), moved(backbone))
    backbone.trainable = True  # phase 2: everything, 10x smaller learning rate (recompiled by _fit)
    _fit(model, feed, steps=steps, learning_rate=0.001)
    results["phase 2: unfrozen, lr / 10"] = (accuracy(model), moved(backbone))
    model, backbone = model_on_copy()
    _fit(model, feed, steps=2 * steps, learning_rate=0.01)  # the shortcut: all trainable from the start
    results["all trainable from the start, lr 0.01"] = (accuracy(model), moved(backbone))
    for name, (score, distance) in results.items():
        lesson.number(f"{name}: test accuracy", score)
        lesson.number(f"{name}: relative change of the backbone", distance)
    lesson.table(f"Is the digit odd? 300 training labels, {len(test)} test images",
                 ("training", "test accuracy", "‖θ − θ₀‖ / ‖θ₀‖ of the backbone"),
                 [(name, *values) for name, values in results.items()])

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
    names = list(results)
    short = ["phase 1\n(head only)", "phase 2\n(fine-tuned, lr/10)", "all trainable\nfrom start"]
    axes[0].bar(short, [results[n][0] for n in names], color=["tab:gray", "tab:green", "tab:red"])
    axes[0].set_ylim(0.8, 1.0)
    axes[0].set_ylabel("test accuracy")
    axes[1].bar(short, [results[n][1] for n in names], color=["tab:gray", "tab:green", "tab:red"])
    axes[1].set_ylabel("relative change of the\npretrained weights")
    for ax in axes:
        ax.tick_params(axis="x", labelsize=8)
    lesson.figure(fig, "fine_tuning", "Fine-tuning in two phases gains accuracy over the frozen backbone while moving "
                  "the pretrained weights a little; training everything at once at the head's rate moves them far more.")
    frozen, tuned, shortcut = (results[n] for n in names)
    lesson.check("phase 1 leaves the pretrained weights exactly as they were", frozen[1] == 0.0, f"{frozen[1]:.1e}")
    lesson.check("phase 2 (lr / 10) raises test accuracy over the frozen backbone", tuned[0] > frozen[0],
                 f"{frozen[0]:.3f} -> {tuned[0]:.3f}")
    lesson.check("training everything from the start at the head's rate moves the pretrained weights over 3x "
                 "farther than the two-phase fine-tune", shortcut[1] > 3 * tuned[1],
                 f"{shortcut[1]:.3f} vs {tuned[1]:.3f}")


@atlas_entry(
    46,
    formula=r"\widehat{\mathrm{acc}} = \frac{1}{n}\sum_{i=1}^{n} \mathbb 1[\hat y_i = y_i],\qquad "
    r"\text{95\% interval} \approx \widehat{\mathrm{acc}} \pm 1.96 \sqrt{\frac{\widehat{\mathrm{acc}}"
    r"(1 - \widehat{\mathrm{acc}})}{n}}\quad \text{(or the 2.5 and 97.5 percentiles of bootstrap resamples)}",
    see=("tfdl.pipelines.split_indices", "tfdl.pipelines.SplitConfig", "tfdl.evaluation.classification_metrics",
         "tfdl.evaluation.plot_learning_curves", "tfdl.evaluation.write_report"),
)
def evaluating_a_model(lesson: Lesson) -> None:
    """A model is evaluated on data it never learned from, with metrics that match the
    task's costs. Split the data once, before anything else, into **training** (fit
    the weights), **validation** (choose the architecture, hyperparameters, epoch to
    stop at, decision threshold) and **test** (touched once, at the end, for the
    number you report). The training score is optimistic because the weights were
    fitted to those examples; the validation score becomes optimistic too once many
    choices have been made on it; only the untouched test set estimates performance
    on new data. Split by what must generalize (stratify by class; group by patient or
    user; split by time for forecasts, never shuffling the future into training).
    With little data, k-fold cross-validation replaces the single validation split.

    Then pick metrics for the task (classification: question 47; regression: 48),
    compare with a trivial baseline (the majority class, yesterday's value), look at
    learning curves for over- and underfitting (question 10), at the confusion matrix
    and the errors themselves, and report the uncertainty of the estimate: a test
    accuracy on $n$ examples has a standard error of about
    $\\sqrt{p(1-p)/n}$, so two models 1% apart on 300 test examples are not
    distinguishable. A bootstrap (resample the test set with replacement, recompute
    the metric) gives an interval for any metric.

    The example splits the digits 60/20/20 with `split_indices`, trains three MLPs of
    different width, chooses one on validation, reports its test accuracy with a
    bootstrap interval, and compares that interval with the normal approximation.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.models import build_model
    from tfdl.pipelines import split_indices

    x, y = _digits()
    split = split_indices(y, validation=0.2, test=0.2, seed=lesson.seed)
    feed = tf.data.Dataset.from_tensor_slices((x[split.train], y[split.train]))
    feed = feed.shuffle(len(split.train), seed=lesson.seed).repeat().batch(64)

    def accuracy(model, rows):
        return float(np.mean(model(x[rows]).numpy().argmax(-1) == y[rows]))

    candidates, scores = {}, {}
    for width in (2, 16, 128):  # the choice validation makes
        model = build_model("mlp", {"input_shape": (64,), "num_classes": 10, "hidden_units": (width,)})
        candidates[width] = _fit(model, feed, steps=lesson.budget(300, 1000), learning_rate=0.01)
        scores[width] = {name: accuracy(model, rows) for name, rows in (("train", split.train),
                                                                        ("validation", split.validation))}
    chosen = max(scores, key=lambda width: scores[width]["validation"])
    correct = candidates[chosen](x[split.test]).numpy().argmax(-1) == y[split.test]  # the test set, used once
    test, n = float(correct.mean()), len(correct)
    rng = np.random.default_rng(lesson.seed)
    resamples = correct[rng.integers(0, n, size=(lesson.budget(2000, 10000), n))].mean(axis=1)
    low, high = np.percentile(resamples, [2.5, 97.5])
    normal = 1.96 * np.sqrt(test * (1 - test) / n)
    lesson.table("Candidates (hidden units), accuracy", ("hidden units", "train", "validation", "test"),
                 [(w, s["train"], s["validation"], test if w == chosen else "not used") for w, s in scores.items()])
    lesson.number("chosen model: training accuracy", scores[chosen]["train"])
    lesson.number("chosen model: test accuracy", test)
    lesson.number("bootstrap 95% interval: low", low)
    lesson.number("bootstrap 95% interval: high", high)
    lesson.number("normal approximation: half-width", normal)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    widths = list(scores)
    for offset, name in zip((-0.2, 0.2), ("train", "validation")):
        axes[0].bar(np.arange(3) + offset, [scores[w][name] for w in widths], width=0.4, label=name)
    axes[0].plot(widths.index(chosen), test, "k*", ms=12, label="test (chosen model only)")
    axes[0].set_xticks(range(3), [f"{w} hidden units" for w in widths])
    axes[0].set_ylim(0, 1.05)
    axes[0].set_ylabel("accuracy")
    axes[0].set_title(f"validation chooses {chosen} units", fontsize=10)
    axes[0].legend(fontsize=8, loc="lower right")
    axes[1].hist(resamples, bins=30, color="tab:blue", alpha=0.7)
    axes[1].axvspan(low, high, color="tab:green", alpha=0.2, label=f"bootstrap 95%: [{low:.3f}, {high:.3f}]")
    axes[1].axvline(test, color="k", label=f"test accuracy {test:.3f} (n = {n})")
    axes[1].set_xlabel("test accuracy of a bootstrap resample")
    axes[1].set_ylabel("resamples")
    axes[1].legend(fontsize=8)
    lesson.figure(fig, "evaluation", "Left: training, validation and (for the chosen model only) test accuracy. "
                  "Right: the bootstrap distribution of the test accuracy and its 95% interval.")
    lesson.check("validation rejects the too-small model (2 hidden units)", chosen != 2, f"chose {chosen}")
    lesson.check("the training score is optimistic: the chosen model's training accuracy exceeds its test accuracy",
                 scores[chosen]["train"] > test, f"{scores[chosen]['train']:.3f} vs {test:.3f}")
    lesson.check("the bootstrap interval's half-width agrees with 1.96 sqrt(p(1-p)/n) within 25%",
                 abs((high - low) / 2 - normal) < 0.25 * normal, f"{(high - low) / 2:.4f} vs {normal:.4f}")


@atlas_entry(
    47,
    formula=r"\mathrm{precision} = \frac{TP}{TP + FP},\quad \mathrm{recall} = \frac{TP}{TP + FN},\quad "
    r"F_1 = \frac{2\,\mathrm{precision}\cdot\mathrm{recall}}{\mathrm{precision} + \mathrm{recall}},\quad "
    r"\mathrm{accuracy} = \frac{TP + TN}{N},\quad "
    r"\mathrm{AUC} = P\big(s(x^+) > s(x^-)\big),\quad \mathrm{log\,loss} = -\frac1N\sum_i \log p_i(y_i)",
    see=("tfdl.evaluation.classification_metrics", "tfdl.evaluation.ClassificationMetrics",
         "tfdl.evaluation.anomaly_metrics", "tfdl.evaluation.plot_confusion_matrix"),
)
def classification_metrics_explained(lesson: Lesson) -> None:
    """All the threshold-based metrics come from the **confusion matrix**, which counts
    examples by (true class, predicted class); for one class taken as *positive*: true
    and false positives ($TP$, $FP$), true and false negatives ($TN$, $FN$).

    - **Accuracy**, the share of correct predictions: meaningful only when classes are
      balanced and errors cost the same (question 42).
    - **Precision**, $TP/(TP+FP)$: of what was flagged, how much is right — matters when
      false alarms are costly (spam filters). **Recall** (sensitivity, true positive
      rate), $TP/(TP+FN)$: of what exists, how much was found — matters when misses are
      costly (disease screening). **Specificity** is the recall of the negatives.
    - **F1**, the harmonic mean of the two, is high only if both are; $F_\\beta$ weights
      recall $\\beta$ times as much. For several classes, **macro** averages treat every
      class equally, **micro** (equal to accuracy for single-label problems) every
      example, **weighted** by support.
    - Threshold-free metrics judge the *scores*: **ROC AUC** is the probability that a
      random positive scores above a random negative (0.5 is chance); the area under
      the **precision-recall curve** (average precision) is more telling when positives
      are rare. **Log loss** and the Brier score judge the probabilities themselves,
      i.e. calibration.

    The example trains a small classifier on the digits and computes the metrics with
    tfdl (`classification_metrics`; `anomaly_metrics` for AUC of a yes/no score),
    checking each against scikit-learn's independent implementation and against the
    formulas on the confusion matrix counted in numpy.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf
    from sklearn import metrics as sk

    from tfdl.evaluation import anomaly_metrics, classification_metrics
    from tfdl.models import build_model

    x, y = _digits()
    train, test = slice(0, 1000), slice(1000, None)
    feed = tf.data.Dataset.from_tensor_slices((x[train], y[train])).shuffle(1000, seed=lesson.seed).repeat().batch(64)
    model = _fit(build_model("mlp", {"input_shape": (64,), "num_classes": 10, "hidden_units": (8,)}), feed,
                 steps=lesson.budget(150, 600), learning_rate=0.01)  # small and brief, so that it errs
    probabilities = model(x[test]).numpy()
    truth, predicted = y[test], probabilities.argmax(-1)
    m = classification_metrics(truth, predicted, [str(d) for d in range(10)])

    confusion = np.zeros((10, 10), int)  # counted by hand
    np.add.at(confusion, (truth, predicted), 1)
    tp = np.diag(confusion)
    with np.errstate(invalid="ignore", divide="ignore"):  # a class never predicted: 0/0, counted as 0
        precision, recall = np.nan_to_num(tp / confusion.sum(0)), np.nan_to_num(tp / confusion.sum(1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    by_sklearn = sk.precision_recall_fscore_support(truth, predicted, labels=range(10), zero_division=0)
    differences = {
        "confusion matrix": np.abs(m.confusion - sk.confusion_matrix(truth, predicted, labels=range(10))).max(),
        "accuracy": abs(m.accuracy - sk.accuracy_score(truth, predicted)) + abs(m.accuracy - tp.sum() / len(truth)),
        "precision": np.abs(m.precision - by_sklearn[0]).max() + np.abs(m.precision - precision).max(),
        "recall": np.abs(m.recall - by_sklearn[1]).max() + np.abs(m.recall - recall).max(),
        "F1": np.abs(m.f1 - by_sklearn[2]).max() + np.abs(m.f1 - f1).max(),
        "macro F1": abs(m.macro_f1 - sk.f1_score(truth, predicted, average="macro")),
    }
    positive, score = truth == 9, probabilities[:, 9]  # one class against the rest: "is it a 9?"
    at_half = anomaly_metrics(score, positive, threshold=0.5)
    differences["ROC AUC of 'is it a 9?'"] = abs(at_half.auc - sk.roc_auc_score(positive, score))
    differences["recall of 'is it a 9?' at 0.5"] = abs(at_half.recall - sk.recall_score(positive, score > 0.5))
    lesson.table("tfdl against scikit-learn and the formulas", ("metric", "tfdl", "largest difference"), [
        ("confusion matrix", "10 × 10", differences["confusion matrix"]),
        ("accuracy", m.accuracy, differences["accuracy"]),
        ("precision (per class)", f"mean {m.precision.mean():.3f}", differences["precision"]),
        ("recall (per class)", f"mean {m.recall.mean():.3f}", differences["recall"]),
        ("F1 (per class)", f"mean {m.f1.mean():.3f}", differences["F1"]),
        ("macro F1", m.macro_f1, differences["macro F1"]),
        ("ROC AUC of 'is it a 9?'", at_half.auc, differences["ROC AUC of 'is it a 9?'"]),
        ("recall of 'is it a 9?' at 0.5", at_half.recall, differences["recall of 'is it a 9?' at 0.5"]),
    ])
    lesson.number("accuracy", m.accuracy)
    lesson.number("macro F1", m.macro_f1)
    lesson.number("ROC AUC, is it a 9?", at_half.auc)

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), layout="constrained")
    axes[0].imshow(m.confusion, cmap="Blues")
    for i in range(10):
        for j in range(10):
            if m.confusion[i, j]:
                axes[0].text(j, i, m.confusion[i, j], ha="center", va="center", fontsize=7,
                             color="white" if m.confusion[i, j] > m.confusion.max() / 2 else "black")
    axes[0].set_xticks(range(10))
    axes[0].set_yticks(range(10))
    axes[0].set_xlabel("predicted digit")
    axes[0].set_ylabel("true digit")
    axes[0].set_title(f"confusion matrix (accuracy {m.accuracy:.3f})", fontsize=9)
    false_rate, true_rate, _ = sk.roc_curve(positive, score)
    axes[1].plot(false_rate, true_rate, label=f"AUC {at_half.auc:.3f}")
    axes[1].plot([0, 1], [0, 1], ":", color="0.6", label="chance")
    axes[1].plot(at_half.false_positive_rate, at_half.recall, "ko", label="threshold 0.5")
    axes[1].set_xlabel("false positive rate")
    axes[1].set_ylabel("true positive rate (recall)")
    axes[1].set_title("ROC curve, is it a 9?", fontsize=9)
    axes[1].legend(fontsize=8)
    curve_precision, curve_recall, _ = sk.precision_recall_curve(positive, score)
    axes[2].plot(curve_recall, curve_precision)
    axes[2].plot(at_half.recall, at_half.precision, "ko", label="threshold 0.5")
    axes[2].axhline(positive.mean(), ls=":", color="0.6", label="chance (share of 9s)")
    axes[2].set_xlabel("recall")
    axes[2].set_ylabel("precision")
    axes[2].set_title("precision-recall curve, is it a 9?", fontsize=9)
    axes[2].legend(fontsize=8)
    lesson.figure(fig, "classification_metrics", "A small digit classifier: its confusion matrix, and the ROC and "
                  "precision-recall curves of one class against the rest, with the 0.5 threshold marked.")
    worst = max(differences.values())
    lesson.check("every tfdl metric equals scikit-learn's and the formula on the numpy confusion matrix "
                 "(largest difference < 1e-12)", worst < 1e-12, f"{worst:.1e}")
    lesson.check("the classifier errs, so the metrics are not trivially 1 (accuracy < 0.99, AUC > 0.9)",
                 m.accuracy < 0.99 and at_half.auc > 0.9, f"accuracy {m.accuracy:.3f}, AUC {at_half.auc:.3f}")


@atlas_entry(
    48,
    formula=r"\mathrm{MSE} = \frac1n\sum_i (y_i - \hat y_i)^2,\quad \mathrm{RMSE} = \sqrt{\mathrm{MSE}},\quad "
    r"\mathrm{MAE} = \frac1n\sum_i |y_i - \hat y_i|,\quad "
    r"R^2 = 1 - \frac{\sum_i (y_i - \hat y_i)^2}{\sum_i (y_i - \bar y)^2}",
    see=("tfdl.evaluation.regression_metrics", "tfdl.evaluation.RegressionMetrics", "tfdl.evaluation.plot_forecast"),
    configs=("sine_forecaster",),
)
def regression_metrics_explained(lesson: Lesson) -> None:
    """- **MSE** (mean squared error) averages squared errors: the loss most regression
      networks minimize, optimal for Gaussian noise (its minimizer is the conditional
      *mean*), but in squared units and dominated by the largest errors. **RMSE**, its
      square root, is back in the target's units.
    - **MAE** (mean absolute error) averages absolute errors: in the target's units,
      every error counts in proportion to its size, so it is robust to outliers; its
      minimizer is the conditional *median*. **Huber** loss is quadratic for small
      errors and linear for large ones, between the two.
    - **$R^2$** (coefficient of determination) is the share of the target's variance the
      model explains: 1 is perfect, 0 is no better than predicting the mean, negative is
      worse. It is unitless, so it compares across datasets, but says nothing about
      the size of the errors that matter.
    - **MAPE** (mean absolute percentage error) is relative but explodes near zero
      targets. For forecasts, compare with a naive baseline (the last value, the
      seasonal value): *skill* $= 1 - \\mathrm{MSE}/\\mathrm{MSE}_{\\text{baseline}}$.

    Which to report follows from the cost of errors: MSE/RMSE when large errors are
    disproportionately bad, MAE when every unit of error costs the same or the data has
    outliers. The example fits one linear unit to a line with 5% gross outliers, once
    minimizing MSE and once MAE, checks tfdl's `regression_metrics` against
    scikit-learn and the formulas, and shows what the outliers do to each metric and to
    each fit.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf
    from sklearn import metrics as sk

    from tfdl.evaluation import regression_metrics

    rng = np.random.default_rng(lesson.seed)
    x = rng.uniform(-1, 1, 400).astype("float32")
    y = (2 * x + 1 + 0.1 * rng.normal(size=400)).astype("float32")  # the line y = 2x + 1
    outlier = rng.random(400) < 0.05
    y[outlier] += rng.uniform(5, 10, outlier.sum()).astype("float32")  # gross errors, all upward

    fits = {}
    for loss in ("mse", "mae"):
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        feed = tf.data.Dataset.from_tensor_slices((x[:, None], y[:, None])).shuffle(400, seed=lesson.seed)
        fits[loss] = _fit(model, feed.repeat().batch(50), steps=lesson.budget(600, 2000), learning_rate=0.05, loss=loss)

    rows, worst = [], 0.0
    clean = ~outlier
    for loss, model in fits.items():
        predicted = model(x[:, None]).numpy()[:, 0].astype("float64")
        y = y.astype("float64")  # the metrics in float64 everywhere, so that they compare to 1e-9
        m = regression_metrics(y, predicted, baseline_predicted=y.mean(), baseline="the mean of y")
        error = y - predicted
        worst = max(worst, abs(m.mse - sk.mean_squared_error(y, predicted)) / m.mse,
                    abs(m.mse - np.mean(error**2)) / m.mse,
                    abs(m.mae - sk.mean_absolute_error(y, predicted)) / m.mae,
                    abs(m.r2 - sk.r2_score(y, predicted)), abs(m.r2 - (1 - np.sum(error**2) / np.sum((y - y.mean())**2))))
        slope, intercept = (float(v.numpy().ravel()[0]) for v in model.weights)
        share_mse = np.sum(error[outlier] ** 2) / np.sum(error**2)
        share_mae = np.sum(np.abs(error[outlier])) / np.sum(np.abs(error))
        clean_mae = float(np.mean(np.abs(error[clean])))
        rows.append((f"trained on {loss.upper()}", slope, intercept, m.mse, np.sqrt(m.mse), m.mae, m.r2, clean_mae,
                     share_mse, share_mae))
        lesson.number(f"{loss} fit: slope", slope)
        lesson.number(f"{loss} fit: intercept", intercept)
        lesson.number(f"{loss} fit: MAE on the clean 95%", clean_mae)
        lesson.number(f"{loss} fit: outliers' share of the squared error", share_mse)
        lesson.number(f"{loss} fit: outliers' share of the absolute error", share_mae)
    lesson.table("A line y = 2x + 1 with 5% outliers: one linear unit trained on each loss",
                 ("model", "slope", "intercept", "MSE", "RMSE", "MAE", "R²", "MAE on clean points",
                  "outliers' share of MSE", "outliers' share of MAE"), rows)
    lesson.number("largest difference, tfdl vs scikit-learn and the formulas", worst)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    axes[0].scatter(x[clean], y[clean], s=4, color="0.5", label="data")
    axes[0].scatter(x[outlier], y[outlier], s=10, color="tab:red", label="outliers (5%)")
    line = np.linspace(-1, 1, 2, dtype="float32")
    for loss, model in fits.items():
        axes[0].plot(line, model(line[:, None]).numpy()[:, 0], lw=2, label=f"fit minimizing {loss.upper()}")
    axes[0].set_xlabel("x")
    axes[0].set_ylabel("y")
    axes[0].legend(fontsize=8)
    axes[0].set_title("MSE is pulled toward the outliers; MAE is not", fontsize=9)
    shares = np.array([[r[8], r[9]] for r in rows])
    for offset, (i, loss) in zip((-0.2, 0.2), enumerate(fits)):
        axes[1].bar(np.arange(2) + offset, shares[i], width=0.4, label=f"fit minimizing {loss.upper()}")
    axes[1].axhline(0.05, ls=":", color="0.5", label="their share of the points")
    axes[1].set_xticks(range(2), ["share of the squared error", "share of the absolute error"])
    axes[1].set_ylabel("part due to the 5% outliers")
    axes[1].legend(fontsize=8)
    lesson.figure(fig, "regression_metrics", "Left: a line with 5% outliers, fitted by minimizing MSE and MAE. Right: "
                  "how much of each metric the outliers account for.")
    mse_fit, mae_fit = rows
    lesson.check("tfdl's MSE, MAE and R² equal scikit-learn's and the formulas (relative difference < 1e-9)",
                 worst < 1e-9, f"{worst:.1e}")
    lesson.check("as metrics, MSE is dominated by the few large errors: for the MSE-fitted line, 5% of the points "
                 "make over 85% of the squared error but under 60% of the absolute error",
                 mse_fit[8] > 0.85 and mse_fit[9] < 0.6, f"{mse_fit[8]:.2f}, {mse_fit[9]:.2f}")
    lesson.check("on the clean 95% of the points the MAE fit's absolute error is under a third of the MSE fit's",
                 mae_fit[7] < mse_fit[7] / 3, f"{mae_fit[7]:.3f} vs {mse_fit[7]:.3f}")
    lesson.check("minimizing MAE ignores the outliers: intercept within 0.1 of the true 1, while the MSE fit's is "
                 "pulled up by over 0.2", abs(mae_fit[2] - 1) < 0.1 and mse_fit[2] - 1 > 0.2,
                 f"MAE fit {mae_fit[2]:.3f}, MSE fit {mse_fit[2]:.3f}")


@atlas_entry(
    49,
    formula=r"\tilde x_j = \begin{cases} x_j & x_j \text{ observed} \\ \hat\mu_j & x_j \text{ missing} \end{cases},"
    r"\qquad m_j = \mathbb 1[x_j \text{ missing}],\qquad \text{model input } (\tilde x, m)",
    see=("tfdl.pipelines.fit_imputer", "tfdl.pipelines.drop_missing", "tfdl.pipelines.MissingConfig",
         "tfdl.pipelines.impute_report", "tfdl.layers.MissingValueImputation"),
)
def missing_data(lesson: Lesson) -> None:
    """Networks compute with numbers, so a missing value (NaN, an empty cell) must be dealt
    with before or inside the model. What is right depends on *why* values are missing:
    **completely at random** (a sensor glitch: missingness says nothing), **at random**
    given other observed features, or **not at random** (the value itself drives it:
    high incomes left blank, a test not ordered because the doctor saw no need).

    - **Drop rows**: simple and unbiased only when data is missing completely at
      random; it throws away the other features of those rows, biases the training
      set otherwise, and cannot predict for a new example with a gap.
    - **Impute**: fill with the mean, median or most frequent value *of the training
      split* (never statistics that include validation or test rows), or with a model
      of the feature (k-nearest neighbours, regression, iterative imputation).
    - **Add a missing-indicator** column per feature. The network then knows which values
      were filled in and can learn what missingness itself means — often a strong
      signal when data is missing not at random. Sequence models use masks for the
      same purpose (padding, absent time steps), and some architectures take sets of
      observed (feature, value) pairs.

    The example makes a label that depends on two features, then hides $x_1$ mostly
    when it is high (missing not at random): 55% of the rows with $x_1 > 0.5$ lose it,
    5% of the others. It compares training on complete rows (`drop_missing`; at test
    time the gaps must then be filled anyway), mean imputation (`fit_imputer`), and
    mean imputation with indicators, on test data with the same pattern of gaps.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.models import build_model
    from tfdl.pipelines import DataReport, drop_missing, fit_imputer

    rng = np.random.default_rng(lesson.seed)

    def draw(n):
        x = rng.normal(size=(n, 2))
        labels = (2 * x[:, 0] + x[:, 1] + 0.5 * rng.normal(size=n) > 1).astype("int32")
        hidden = rng.random(n) < np.where(x[:, 0] > 0.5, 0.55, 0.05)  # missing not at random
        x[hidden, 0] = np.nan
        return x, labels

    (x, y), (x_test, y_test) = draw(2000), draw(5000)
    gaps = np.isnan(x_test[:, 0])

    def train_and_test(features, labels, imputer):
        inputs = imputer(features).numpy()
        model = build_model("mlp", {"input_shape": (inputs.shape[1],), "num_classes": 2, "hidden_units": (16,)})
        feed = tf.data.Dataset.from_tensor_slices((inputs, labels)).shuffle(len(labels), seed=lesson.seed)
        _fit(model, feed.repeat().batch(64), steps=lesson.budget(300, 1000), learning_rate=0.01)
        right = model(imputer(x_test).numpy()).numpy().argmax(-1) == y_test
        return float(right.mean()), float(right[gaps].mean()), float(right[~gaps].mean())

    report = DataReport()
    complete_x, complete_y, _ = drop_missing(x, y, report=report)
    results = {
        "drop incomplete rows (mean-fill at test)": train_and_test(complete_x, complete_y,
                                                                   fit_imputer(complete_x, "mean")),
        "mean imputation": train_and_test(x, y, fit_imputer(x, "mean")),
        "mean imputation + indicator": train_and_test(x, y, fit_imputer(x, "mean", indicator=True)),
    }
    lesson.number("training rows dropped", len(x) - len(complete_x))
    lesson.number("positive share, all training rows", float(y.mean()))
    lesson.number("positive share, complete training rows", float(complete_y.mean()))
    for name, (overall, missing_rows, complete_rows) in results.items():
        lesson.number(f"{name}: test accuracy", overall)
        lesson.number(f"{name}: test accuracy on rows missing x1", missing_rows)
    lesson.table(f"Test accuracy ({gaps.sum()} of {len(gaps)} test rows miss x1)",
                 ("strategy", "all rows", "rows missing x1", "complete rows"),
                 [(name, *values) for name, values in results.items()])

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    observed = ~np.isnan(x[:, 0])
    axes[0].hist([x[observed & (y == 1), 0], x[observed & (y == 0), 0]], bins=30, stacked=True,
                 color=["tab:red", "tab:blue"], label=["positive", "negative"])
    axes[0].set_xlabel("$x_1$ where observed")
    axes[0].set_ylabel("training rows")
    axes[0].set_title(f"{(~observed).sum()} rows miss $x_1$, {y[~observed].mean():.0%} of them positive", fontsize=9)
    axes[0].legend(fontsize=8)
    names = list(results)
    for offset, (column, label) in zip((-0.2, 0.2), ((1, "rows missing $x_1$"), (2, "complete rows"))):
        axes[1].bar(np.arange(3) + offset, [results[n][column] for n in names], width=0.4, label=label)
    axes[1].set_xticks(range(3), ["drop rows", "mean", "mean + indicator"])
    axes[1].set_ylim(0.5, 1.0)
    axes[1].set_ylabel("test accuracy")
    axes[1].legend(fontsize=8, loc="lower right")
    lesson.figure(fig, "missing_data", "Left: the training data; a missing x1 mostly means a high x1. Right: test "
                  "accuracy of each strategy on the rows with and without a gap.")
    dropped, mean, indicator = (results[n] for n in names)
    lesson.check("dropping incomplete rows biases the training set (positive share falls by over 0.05)",
                 y.mean() - complete_y.mean() > 0.05, f"{y.mean():.3f} -> {complete_y.mean():.3f}")
    lesson.check("the indicator lets the model use the missingness: on rows missing x1 it beats plain mean "
                 "imputation and dropping by over 0.05 accuracy",
                 indicator[1] > max(mean[1], dropped[1]) + 0.05,
                 f"{dropped[1]:.3f} / {mean[1]:.3f} -> {indicator[1]:.3f}")
    lesson.check("on complete rows all three strategies do about the same (within 0.04)",
                 max(r[2] for r in results.values()) - min(r[2] for r in results.values()) < 0.04,
                 ", ".join(f"{r[2]:.3f}" for r in results.values()))


@atlas_entry(
    50,
    formula=r"\text{training: } \hat x = \frac{x - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}},\ \ y = \gamma \hat x + \beta,"
    r"\qquad \mu \leftarrow m\,\mu + (1 - m)\,\mu_B,\ \ \sigma^2 \leftarrow m\,\sigma^2 + (1 - m)\,\sigma_B^2;"
    r"\qquad \text{inference: } y = \gamma \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta",
    see=("tfdl.models.CNNConfig", "tfdl.models.ResNetConfig"),
)
def batch_normalization(lesson: Lesson) -> None:
    """**Batch normalization** (Ioffe and Szegedy, 2015) standardizes each feature (each
    channel, in a convolution) over the current mini-batch — subtract the batch mean,
    divide by the batch standard deviation — and then rescales with a learned $\\gamma$
    and shifts with a learned $\\beta$, so the layer can still represent any scale,
    including undoing the normalization. During training it uses the batch's
    statistics and keeps exponential moving averages of them; at inference it uses
    those averages, so a prediction does not depend on the other examples in the batch.

    Its role is to make deep networks easy to optimize: every layer receives inputs of
    a controlled scale whatever the weights below did, so activations neither vanish
    nor explode, the loss surface is smoother, and much larger learning rates are
    stable — training takes fewer steps and depends less on initialization. The noise of
    batch statistics also regularizes a little. Its costs come from the batch: it
    behaves poorly with very small batches, differs between training and inference
    (a classic bug is evaluating in training mode, or a momentum so high that the
    moving averages have not settled), and does not suit sequence models, which use
    layer normalization instead.

    The example checks Keras's `BatchNormalization` against the formulas in training
    mode, the moving-average update, and inference mode; then it trains the same
    12-layer ReLU network on the digits without batch-wise normalization at a moderate
    learning rate and, with and without it, at a 10x larger one.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    rng = np.random.default_rng(lesson.seed)
    x = (3 + 2 * rng.normal(size=(64, 4))).astype("float32")  # a batch of 64, 4 features, far from N(0, 1)
    layer = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3)
    layer.build(x.shape)
    gamma, beta = rng.normal(size=4).astype("float32"), rng.normal(size=4).astype("float32")
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    trained = layer(x, training=True).numpy()
    mean, variance = x.mean(0), x.var(0)  # the batch's statistics (biased variance, as Keras uses)
    by_formula = gamma * (x - mean) / np.sqrt(variance + 1e-3) + beta
    moving_mean = 0.9 * 0.0 + 0.1 * mean  # from the initial moving mean 0 and variance 1
    moving_variance = 0.9 * 1.0 + 0.1 * variance
    inferred = layer(x, training=False).numpy()
    at_inference = gamma * (x - moving_mean) / np.sqrt(moving_variance + 1e-3) + beta
    errors = {
        "training mode: output": float(np.abs(trained - by_formula).max()),
        "moving mean after one step": float(np.abs(layer.moving_mean.numpy() - moving_mean).max()),
        "moving variance after one step": float(np.abs(layer.moving_variance.numpy() - moving_variance).max()),
        "inference mode: output": float(np.abs(inferred - at_inference).max()),
    }
    lesson.table("Keras BatchNormalization against the formulas", ("quantity", "largest difference"),
                 list(errors.items()))
    standardized = (trained - beta) / gamma
    lesson.number("training mode: mean of (y - beta) / gamma", float(np.abs(standardized.mean(0)).max()))
    lesson.number("training mode: std of (y - beta) / gamma", float(standardized.std(0).mean()))

    digits, labels = _digits()
    steps = lesson.budget(150, 500)
    runs = {(rate, normalize): _train_stack(digits, labels, depth=12, residual=False, normalize=normalize,
                                            learning_rate=rate, steps=steps, seed=lesson.seed)
            for rate, normalize in ((0.003, False), (0.03, False), (0.03, True))}
    rows = []
    for (rate, normalize), (losses, _, final) in runs.items():
        name = f"lr {rate}, {'with' if normalize else 'without'} normalization"
        lesson.number(f"{name}: final training loss", final)
        rows.append((name, float(np.mean(losses[:50])), final))
    lesson.table(f"12-layer ReLU network on the digits, {steps} Adam steps",
                 ("setting", "mean loss, first 50 steps", "final training loss"), rows)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    feature = 0
    axes[0].hist(x[:, feature], bins=15, alpha=0.6, label="input x (batch)")
    axes[0].hist(trained[:, feature], bins=15, alpha=0.6, label=r"training output $\gamma\hat x+\beta$")
    axes[0].hist(standardized[:, feature], bins=15, alpha=0.6, label=r"$\hat x$: mean 0, std 1")
    axes[0].set_xlabel(f"feature {feature} of 64 examples")
    axes[0].set_ylabel("examples")
    axes[0].set_title("one BatchNormalization layer, training mode", fontsize=9)
    axes[0].legend(fontsize=8)
    for (rate, normalize), (losses, _, _) in runs.items():
        axes[1].plot(_smooth(losses), ls="-" if normalize else "--", color="tab:green" if rate > 0.01 else "tab:blue",
                     label=f"lr {rate}, {'with' if normalize else 'without'} normalization")
    axes[1].set_xlabel("Adam step")
    axes[1].set_ylabel("training loss")
    axes[1].set_ylim(0, 3)
    axes[1].set_title("12 ReLU layers on the digits", fontsize=9)
    axes[1].legend(fontsize=8)
    lesson.figure(fig, "batch_norm", "Left: what one batch normalization layer does to a feature. Right: with "
                  "normalization the deep network trains at a 10x larger learning rate; without it, it does not.")
    worst = max(errors.values())
    lesson.check("Keras's BatchNormalization equals the formulas: batch statistics in training, the moving-average "
                 "update, moving statistics at inference (max difference < 1e-4)", worst < 1e-4, f"{worst:.1e}")
    lesson.check("in training mode the output differs from the inference output (batch vs moving statistics)",
                 float(np.abs(trained - inferred).max()) > 0.1, f"{np.abs(trained - inferred).max():.2f}")
    without, with_norm = runs[(0.03, False)][2], runs[(0.03, True)][2]
    lesson.check("at learning rate 0.03 normalization makes the difference: final loss under 1/3 of the "
                 "network without it", with_norm < without / 3, f"{with_norm:.3f} vs {without:.3f}")
