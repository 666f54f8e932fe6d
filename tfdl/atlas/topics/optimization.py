"""Atlas entries 11-17: gradient descent and its variants, learning-rate schedules, momentum, Adam, initialization."""

from __future__ import annotations

from tfdl.atlas.entry import atlas_entry
from tfdl.atlas.lesson import Lesson


def _ill_conditioned_quadratic(eigenvalues: tuple[float, float], degrees: float = 30.0):
    """The matrix A of f(w) = ½ wᵀAw: the given eigenvalues, axes turned by `degrees` (so the valley is diagonal)."""
    import numpy as np

    angle = np.deg2rad(degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return rotation @ np.diag(eigenvalues) @ rotation.T


def _contours(ax, a, span: float = 5.0) -> None:
    """Level sets of ½ wᵀAw on [-span, span]², for drawing optimizer paths over."""
    import numpy as np

    grid = np.linspace(-span, span, 201)
    w1, w2 = np.meshgrid(grid, grid)
    f = 0.5 * (a[0, 0] * w1 * w1 + 2 * a[0, 1] * w1 * w2 + a[1, 1] * w2 * w2)
    ax.contour(grid, grid, f, levels=np.geomspace(0.05, f.max(), 14), colors="0.75", linewidths=0.7)
    ax.plot(0, 0, "k*", ms=9)
    ax.set_xlabel("$w_1$")
    ax.set_ylabel("$w_2$")
    ax.set_aspect("equal")


def _keras_path(optimizer, a, start, steps: int):
    """Run a Keras optimizer on f(w) = ½ wᵀAw from `start`, gradients by tf.GradientTape; returns every iterate."""
    import numpy as np
    import tensorflow as tf

    w = tf.Variable(np.asarray(start, "float32"))
    matrix = tf.constant(a, tf.float32)
    optimizer.build([w])  # its slots (velocity, moments) are created outside the compiled loop

    @tf.function
    def run():
        path = tf.TensorArray(tf.float32, size=steps + 1).write(0, w)
        for step in tf.range(steps):
            with tf.GradientTape() as tape:
                loss = 0.5 * tf.reduce_sum(w * tf.linalg.matvec(matrix, w))
            optimizer.apply_gradients([(tape.gradient(loss, w), w)])
            path = path.write(step + 1, w.read_value())
        return path.stack()

    return run().numpy()


@atlas_entry(
    11,
    formula=r"w_{t+1} = w_t - \eta\, \nabla_w \mathcal L(w_t);\qquad "
    r"\text{on } \mathcal L = \tfrac12 w^\top A w:\ \ w_t = (I - \eta A)^t w_0,\ "
    r"\text{converging iff } 0 < \eta < \frac{2}{\lambda_{\max}(A)},\ \text{at rate } \max_i |1 - \eta \lambda_i|",
    see=("tfdl.training.OptimizerConfig", "tfdl.training.make_optimizer"),
)
def gradient_descent(lesson: Lesson) -> None:
    """**Gradient descent** minimizes a loss $\\mathcal L(w)$ by repeatedly stepping
    against its gradient: the gradient points in the direction of steepest increase,
    so a small step $-\\eta \\nabla \\mathcal L$ lowers the loss, to first order, by
    $\\eta \\lVert \\nabla \\mathcal L \\rVert^2$. Training a network is this loop: a
    forward pass computes the loss, backpropagation its gradient with respect to
    every weight, and the optimizer moves every weight a step of size set by the
    **learning rate** $\\eta$. It stops at a point where the gradient vanishes — for
    a network, a local minimum or a flat region, not necessarily the global minimum.

    The learning rate decides everything. Near a minimum the loss is roughly a
    quadratic whose curvatures are the eigenvalues $\\lambda_i$ of the Hessian; along
    each eigendirection one step multiplies the error by $1 - \\eta\\lambda_i$. Too
    small a rate crawls along the flat directions; past $2/\\lambda_{\\max}$ the step
    overshoots the steepest direction by more than it corrects, and the iterates
    oscillate with growing amplitude — the loss diverges.

    The example runs Keras's `SGD` optimizer on a two-dimensional quadratic with
    curvatures 1 and 10, differentiating with `tf.GradientTape`, and checks every
    iterate against the update rule written in numpy; three learning rates show
    crawling, converging and diverging, at the rates the formula predicts.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    curvatures = (1.0, 10.0)
    a = _ill_conditioned_quadratic(curvatures)
    start = np.array([-4.0, 0.0])
    steps = lesson.budget(40, 60)
    limit = 2 / max(curvatures)  # the largest stable learning rate, 0.2
    rates = {"η = 0.02 (too small)": 0.02, "η = 0.15 (good)": 0.15, "η = 0.205 (> 2/λmax)": 0.205}

    def loss(w):
        return 0.5 * np.einsum("...i,ij,...j->...", w, a, w)

    paths, worst = {}, 0.0
    for name, rate in rates.items():
        by_keras = _keras_path(keras.optimizers.SGD(rate), a, start, steps)
        by_hand = [start]
        for _ in range(steps):  # the update rule, with the gradient A w written out
            by_hand.append(by_hand[-1] - rate * a @ by_hand[-1])
        worst = max(worst, float(np.abs(by_keras - np.array(by_hand)).max() / np.abs(by_hand).max()))
        paths[name] = by_keras

    rows, measured_rates = [], {}
    for name, rate in rates.items():
        f = loss(paths[name].astype("float64"))
        predicted = max(abs(1 - rate * c) for c in curvatures)
        # per-step factor of the distance to the minimum, over the last ten steps
        distance = np.linalg.norm(paths[name], axis=1)
        measured = (distance[-1] / distance[-11]) ** 0.1
        measured_rates[name] = (measured, predicted)
        rows.append((name, rate < limit, predicted, measured, f[-1] / f[0]))
    lesson.table(f"Gradient descent for {steps} steps on curvatures {curvatures}",
                 ("learning rate", "η < 2/λmax", "rate max|1 - ηλ|", "measured rate", "final / initial loss"), rows)
    lesson.number("largest relative difference, Keras SGD vs the update rule in numpy", worst)
    final = {name: lesson.number(f"{name}: final / initial loss", loss(paths[name][-1]) / loss(start))
             for name in rates}

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    _contours(axes[0], a)
    for name in rates:
        axes[0].plot(*paths[name][:16].T, "o-", ms=2.5, lw=1, label=name)
    axes[0].set_xlim(-5, 5)
    axes[0].set_ylim(-5, 5)
    axes[0].set_title("first 15 steps on ½ wᵀAw, curvatures 1 and 10", fontsize=10)
    axes[0].legend(fontsize=8, loc="lower right")
    for name in rates:
        axes[1].semilogy(loss(paths[name].astype("float64")), label=name)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("loss")
    axes[1].set_title("loss per step (Keras SGD)", fontsize=10)
    axes[1].legend(fontsize=8)
    lesson.figure(fig, "gradient_descent", "Gradient descent on a quadratic valley: a small rate crawls along the "
                  "flat direction, a good one converges, one above 2/λmax oscillates across the valley and diverges.")

    lesson.check("every iterate of keras.optimizers.SGD equals w - η A w computed in numpy (relative error < 1e-5)",
                 worst < 1e-5, f"{worst:.1e}")
    agree = all(abs(measured - predicted) < 0.01 for measured, predicted in measured_rates.values())
    lesson.check("each run contracts (or grows) per step at the predicted rate max|1 - ηλ| (within 0.01)", agree,
                 "; ".join(f"{m:.4f} vs {p:.4f}" for m, p in measured_rates.values()))
    small, good, large = final.values()
    lesson.check("below 2/λmax the loss falls (η = 0.15 to under 1e-3 of its start, η = 0.02 not yet under 1e-2); "
                 "above it the loss grows", good < 1e-3 and 1e-2 < small < 1 and large > 1,
                 f"final / initial: {small:.2e}, {good:.2e}, {large:.2e}")


@atlas_entry(
    12,
    formula=r"g_B(w) = \frac{1}{B} \sum_{i \in \mathcal B} \nabla \ell_i(w),\qquad "
    r"\mathbb E\, g_B = \nabla \mathcal L,\qquad "
    r"\mathbb E \lVert g_B - \nabla \mathcal L \rVert^2 = \frac{N - B}{B (N - 1)}\, s^2,\quad "
    r"s^2 = \frac1N \sum_{i=1}^{N} \lVert \nabla \ell_i - \nabla \mathcal L \rVert^2",
    see=("tfdl.pipelines.load_sklearn_dataset", "tfdl.training.TrainingConfig"),
    configs=("digits_mlp",),
)
def batch_stochastic_minibatch(lesson: Lesson) -> None:
    """The three differ only in how many training examples $B$ go into each gradient
    estimate, and so in how many updates one pass over the data (an **epoch**) buys.
    **Batch** gradient descent uses all $N$ examples: the exact gradient of the
    training loss, a smooth, steadily falling loss, and one update per epoch.
    **Stochastic** gradient descent uses one example: $N$ cheap, noisy updates per
    epoch — the loss zigzags, but it makes progress long before batch GD has taken
    its second step, and the noise can shake it out of sharp minima; with a fixed
    learning rate it never settles exactly. **Mini-batch** gradient descent
    ($B$ of 32 to a few thousand) is the compromise everyone uses: the estimate is
    unbiased and its variance falls as $1/B$ (the formula; the factor $(N-B)/(N-1)$
    is for drawing without replacement), and a batch fills the vector units of a
    CPU or GPU, so $B$ examples cost little more time than one.

    In Keras the choice is the batch size of the data (`dataset.batch(B)` or
    `fit(batch_size=B)`); "SGD" as an optimizer name means the update rule, whatever
    the batch size. The example trains softmax regression on the digits in numpy
    with the same learning rate and the three batch sizes, and measures the gradient
    noise of each batch size against the formula.
    """
    import time

    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.pipelines import load_sklearn_dataset

    digits = load_sklearn_dataset("digits")
    x = np.c_[digits.features[:1400] / 16.0, np.ones(1400)]  # pixels scaled to [0, 1], and a bias input
    y = np.eye(10)[digits.labels[:1400]]
    n, learning_rate, epochs = len(x), 0.3, lesson.budget(5, 20)

    def probabilities(w, rows):
        z = x[rows] @ w
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def loss(w):  # mean cross-entropy over the whole training set
        return float(-np.mean(np.log(np.sum(probabilities(w, slice(None)) * y, 1))))

    def gradient(w, rows):  # mean gradient over the examples `rows`
        return x[rows].T @ (probabilities(w, rows) - y[rows]) / len(x[rows])

    rng = np.random.default_rng(lesson.seed)
    sizes = {"batch (B = N = 1400)": n, "mini-batch (B = 32)": 32, "stochastic (B = 1)": 1}
    runs = {}
    for name, size in sizes.items():
        w, step, seconds = np.zeros((65, 10)), 0, 0.0
        recorded = [(0, loss(w))]  # (update, training loss)
        passes = max(epochs, 200) if size == n else epochs  # batch GD: enough epochs to compare per update
        for _ in range(passes):
            order = rng.permutation(n)
            for first in range(0, n, size):
                start = time.perf_counter()
                w -= learning_rate * gradient(w, order[first:first + size])
                seconds += time.perf_counter() - start
                step += 1
                if step <= 200 or step % 20 == 0:  # every update in the first 200, then every 20th
                    recorded.append((step, loss(w)))
        updates, losses = np.array(recorded).T
        runs[name] = {"updates": updates, "loss": losses, "per_epoch": -(-n // size), "seconds": seconds / passes}

    def loss_after(run, update):
        return float(run["loss"][np.searchsorted(run["updates"], update)])

    batch, mini, single = runs.values()
    rows = []
    for name, run in runs.items():
        rows.append((name, run["per_epoch"], loss_after(run, run["per_epoch"]),
                     loss_after(run, epochs * run["per_epoch"]), loss_after(run, 100), 1000 * run["seconds"]))
    lesson.table(f"Softmax regression on 1400 digits, learning rate {learning_rate}",
                 ("gradient descent", "updates per epoch", "loss after 1 epoch", f"loss after {epochs} epochs",
                  "loss after 100 updates", "ms per epoch (numpy)"), rows)
    rises = {}
    for name, run in runs.items():  # how often one update raised the training loss (over the first 200 updates)
        first = run["loss"][:201]
        rises[name] = lesson.number(f"{name}: fraction of updates that raised the loss",
                                    float(np.mean(np.diff(first) > 0)))

    # Gradient noise at the starting point: every per-example gradient, then many random batches of each size.
    w0 = np.zeros((65, 10))
    per_example = np.einsum("ni,nk->nik", x, probabilities(w0, slice(None)) - y).reshape(n, -1)
    full = per_example.mean(0)
    spread = float(np.mean(np.sum((per_example - full) ** 2, 1)))  # s² of the formula
    noise_rows, noise_error = [], 0.0
    for size in (1, 8, 32, 256):
        draws = [per_example[rng.choice(n, size, replace=False)].mean(0) for _ in range(lesson.budget(1000, 4000))]
        measured = float(np.mean(np.sum((np.array(draws) - full) ** 2, 1)))
        predicted = (n - size) / (size * (n - 1)) * spread
        noise_error = max(noise_error, abs(measured / predicted - 1))
        noise_rows.append((size, predicted, measured))
    lesson.table("Mean squared error of a batch-of-B gradient against the full gradient, at w = 0",
                 ("B", "formula (N - B) s² / (B (N - 1))", "measured over random batches"), noise_rows)
    lesson.number("largest relative gap, measured gradient noise vs formula", noise_error)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for name, run in runs.items():
        shown = run["updates"] <= epochs * run["per_epoch"]
        width = 3 if run is batch else 1  # wide: the mini-batch curve runs over it per update
        axes[0].plot(run["updates"][shown] / run["per_epoch"], run["loss"][shown], label=name, lw=width)
        axes[1].plot(run["updates"][1:], run["loss"][1:], label=name, lw=width)
    axes[0].set_xlabel("epoch (passes over the 1400 examples)")
    axes[0].set_title("per epoch: the same examples seen", fontsize=10)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("update (optimizer step)")
    axes[1].set_title("per update: the same number of steps", fontsize=10)
    for ax in axes:
        ax.set_ylabel("training loss (cross-entropy)")
        ax.legend(fontsize=8)
    lesson.figure(fig, "batch_sizes", "Batch, mini-batch and stochastic gradient descent with the same learning "
                  "rate: per epoch, small batches win by taking many more steps; per step, the full batch wins and "
                  "its loss falls smoothly while single examples make it zigzag.")

    lesson.check("per epoch, stochastic and mini-batch GD are far ahead: after one epoch their loss is under half "
                 "of batch GD's",
                 max(loss_after(mini, mini["per_epoch"]), loss_after(single, n)) < 0.5 * loss_after(batch, 1),
                 f"batch {loss_after(batch, 1):.3f}, mini-batch {loss_after(mini, mini['per_epoch']):.3f}, "
                 f"stochastic {loss_after(single, n):.3f}")
    lesson.check("per update, batch GD is ahead: after 100 updates its loss is below stochastic GD's",
                 loss_after(batch, 100) < loss_after(single, 100),
                 f"batch {loss_after(batch, 100):.3f}, stochastic {loss_after(single, 100):.3f}")
    lesson.check("batch GD's loss never rises; single-example updates raise it at least 20% of the time",
                 rises["batch (B = N = 1400)"] == 0 and rises["stochastic (B = 1)"] >= 0.2,
                 ", ".join(f"{v:.2f}" for v in rises.values()))
    lesson.check("the gradient noise of each batch size matches (N - B) s² / (B (N - 1)) within 10%",
                 noise_error < 0.1, f"largest gap {noise_error:.1%}")


@atlas_entry(
    13,
    formula=r"\begin{aligned}"
    r"&\text{step: } \eta_0\, d^{\lfloor t / s \rfloor} \qquad \text{exponential: } \eta_0\, r^{t / s} \qquad "
    r"\text{cyclic: } \eta_{\min} + (\eta_{\max} - \eta_{\min}) \max\big(0, 1 - \lvert t/s - 2c + 1 \rvert\big),"
    r"\ c = \lfloor 1 + t / 2s \rfloor\\"
    r"&\text{warmup + cosine: } \eta_{\max} \tfrac{t}{W} \ (t < W),\ \ "
    r"\eta_{\max} \Big(\alpha + (1 - \alpha) \tfrac12 \big(1 + \cos \pi \tfrac{t - W}{T - W}\big)\Big) "
    r"\ (t \ge W) \qquad "
    r"\text{transformer: } k\, d_{\text{model}}^{-1/2} \min\big(n^{-1/2},\, n\, W^{-3/2}\big),\ n = t + 1"
    r"\end{aligned}",
    see=("tfdl.schedules.build_schedule", "tfdl.schedules.StepDecay", "tfdl.schedules.ExponentialDecay",
         "tfdl.schedules.CosineDecayWithWarmup", "tfdl.schedules.CyclicLearningRate",
         "tfdl.schedules.TransformerSchedule", "tfdl.training.ScheduleConfig"),
    configs=("cifar10_resnet",),
)
def learning_rate_schedules(lesson: Lesson) -> None:
    """A **learning-rate schedule** makes the step size a function of the training step
    $t$ instead of a constant. It matters because no single rate is right for the
    whole run. Early on, a large rate crosses the loss landscape quickly; but with
    stochastic gradients a constant rate never settles — the iterates keep bouncing
    around the minimum in a cloud whose size grows with the rate, so the loss stalls
    at a noise floor. Lowering the rate later averages that noise away. A small rate
    from the start would settle, but only after far more steps.

    The common shapes: **step decay** (divide by a factor every few epochs),
    **exponential decay** (the same, smoothly), **cosine decay** (falls slowly, then
    fast, then slowly to a floor), **warmup** (a linear ramp from near zero over the
    first steps, which keeps Adam's early, poorly estimated updates and large
    batches from blowing up — standard for transformers, as is the original
    Transformer schedule, a warmup followed by $1/\\sqrt t$ decay), and **cyclical**
    rates (bounce between two bounds, to escape poor regions and to find a good
    rate range quickly). In Keras a schedule is a `LearningRateSchedule` passed as
    the optimizer's `learning_rate`; the optimizer evaluates it at its own step
    counter before every update.

    The example evaluates each of tfdl's schedules against its formula written in
    numpy, checks that a Keras optimizer's $t$-th update uses the rate at $t$, and
    runs SGD on a noisy regression three ways: a constant large rate, a constant
    small rate, and cosine decay from the large rate.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.schedules import build_schedule

    t = np.arange(1000)
    schedules = {  # name: (the tfdl schedule, its formula in numpy)
        "step": (build_schedule("step", initial_learning_rate=0.1, drop=0.5, every_steps=250),
                 0.1 * 0.5 ** np.floor(t / 250)),
        "exponential": (build_schedule("exponential", initial_learning_rate=0.1, decay_steps=250, decay_rate=0.5),
                        0.1 * 0.5 ** (t / 250)),
        "cosine_warmup": (build_schedule("cosine_warmup", peak_learning_rate=0.1, warmup_steps=100, decay_steps=1000),
                          np.where(t < 100, 0.1 * t / 100, 0.1 * 0.5 * (1 + np.cos(np.pi * (t - 100) / 900)))),
        "cyclic": (build_schedule("cyclic", base_learning_rate=0.01, max_learning_rate=0.1, step_size=125),
                   0.01 + 0.09 * np.maximum(0, 1 - np.abs(t / 125 - 2 * np.floor(1 + t / 250) + 1))),
        "transformer": (build_schedule("transformer", d_model=64, warmup_steps=100, scale=8.0),
                        8.0 * 64**-0.5 * np.minimum((t + 1) ** -0.5, (t + 1) * 100**-1.5)),
    }
    errors = {name: float(np.max(np.abs(np.asarray(schedule(t)) - formula) / formula.max()))
              for name, (schedule, formula) in schedules.items()}
    lesson.table("Each tfdl schedule against its formula in numpy, steps 0-999",
                 ("schedule", "rate at 0", "largest rate", "rate at 999", "largest relative error"),
                 [(name, formula[0], formula.max(), formula[-1], errors[name])
                  for name, (_, formula) in schedules.items()])

    # A Keras optimizer evaluates its schedule at its step counter: on loss = sum(w), whose gradient is 1,
    # update t moves every weight by exactly the rate at t.
    cosine = schedules["cosine_warmup"][0]
    w = tf.Variable(tf.zeros(3))
    optimizer = keras.optimizers.SGD(learning_rate=cosine)
    moves = []
    for _ in range(120):
        before = w.numpy()[0]
        optimizer.apply_gradients([(tf.ones(3), w)])
        moves.append(before - w.numpy()[0])
    applied_error = float(np.max(np.abs(np.array(moves) - schedules["cosine_warmup"][1][:120])))
    lesson.number("largest |SGD update t - schedule(t)|, first 120 updates", applied_error)

    # Noisy least squares, mini-batches of 8: a constant rate stalls at its noise floor, a small one crawls.
    rng = np.random.default_rng(lesson.seed)
    x = rng.normal(size=(1000, 20)) * np.geomspace(1, 0.2, 20)  # feature scales 1 to 0.2: slow directions too
    y = x @ rng.normal(size=20) + rng.normal(size=1000)
    floor = np.mean((x @ np.linalg.lstsq(x, y, rcond=None)[0] - y) ** 2) / 2
    steps = lesson.budget(1000, 2000)
    rates = {"constant 0.1": np.full(steps, 0.1), "constant 0.01": np.full(steps, 0.01),
             "cosine decay from 0.1": np.asarray(build_schedule("cosine_warmup", peak_learning_rate=0.1,
                                                                warmup_steps=0, decay_steps=steps)(np.arange(steps)))}
    excess = {}
    for name, rate in rates.items():
        draw, w, curve = np.random.default_rng(lesson.seed + 100), np.zeros(20), []
        for step in range(steps):
            rows = draw.integers(0, 1000, 8)
            w -= rate[step] * x[rows].T @ (x[rows] @ w - y[rows]) / 8
            if step % 10 == 9:
                curve.append(np.mean((x @ w - y) ** 2) / 2 - floor)
        excess[name] = np.array(curve)
    final = {name: lesson.number(f"{name}: excess loss, mean of the last 10%", float(curve[-len(curve) // 10:].mean()))
             for name, curve in excess.items()}

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for name, (schedule, _) in schedules.items():
        axes[0].plot(t, np.asarray(schedule(t)), label=name)
    axes[0].set_xlabel("optimizer step t")
    axes[0].set_ylabel("learning rate")
    axes[0].set_title("tfdl.schedules", fontsize=10)
    axes[0].legend(fontsize=8)
    for name, curve in excess.items():
        axes[1].semilogy(np.arange(10, steps + 1, 10), curve, label=name)
    axes[1].set_xlabel("SGD step (batches of 8)")
    axes[1].set_ylabel("training loss - its minimum")
    axes[1].set_title("noisy least squares", fontsize=10)
    axes[1].legend(fontsize=8)
    lesson.figure(fig, "schedules", "Left: the learning-rate schedules of tfdl. Right: SGD with a constant large "
                  "rate stalls at a noise floor, a constant small rate is slow; decaying the large rate gets both "
                  "the speed and the low floor.")

    worst = max(errors.values())
    lesson.check("every tfdl schedule equals its formula in numpy (relative error < 1e-5)", worst < 1e-5,
                 ", ".join(f"{name} {error:.1e}" for name, error in errors.items()))
    lesson.check("keras.optimizers.SGD's t-th update uses the schedule's rate at t (error < 1e-6)",
                 applied_error < 1e-6, f"{applied_error:.1e}")
    large, small, decayed = final.values()
    lesson.check("cosine decay ends with under half the excess loss of either constant rate",
                 decayed < 0.5 * min(large, small),
                 f"constant 0.1: {large:.2e}, constant 0.01: {small:.2e}, cosine: {decayed:.2e}")


@atlas_entry(
    14,
    formula=r"v_{t+1} = \beta v_t - \eta \nabla \mathcal L(w_t),\qquad w_{t+1} = w_t + v_{t+1};\qquad "
    r"\text{on a quadratic: error} \sim \sqrt{\beta}^{\,t}\ \text{ when } (1 - \sqrt{\eta \lambda_i})^2 \le \beta "
    r"\text{ for all } i,\ \text{ vs } (1 - \eta \lambda_{\min})^t \text{ without momentum}",
    see=("tfdl.training.OptimizerConfig", "tfdl.training.make_optimizer"),
    configs=("cifar10_resnet",),
)
def momentum(lesson: Lesson) -> None:
    """**Momentum** gives gradient descent a velocity: each update is the previous update
    scaled by $\\beta$ (typically 0.9) plus the new gradient step, so the step is an
    exponentially weighted sum of past gradients, about $1/(1-\\beta)$ of them.
    Where successive gradients agree — along a long, shallow valley — the steps add
    up and the optimizer accelerates to up to $1/(1-\\beta)$ times the plain step.
    Where they alternate in sign — across a steep, narrow valley, where plain
    gradient descent zigzags — they cancel and the oscillation is damped.

    That is exactly the difficulty of an **ill-conditioned** loss, whose curvatures
    differ by a large factor $\\kappa$: the learning rate must stay below $2/\\lambda_{\\max}$
    for the steep direction, and at that rate plain gradient descent needs on the
    order of $\\kappa$ steps to cross the flat one. With momentum (the "heavy ball")
    the error shrinks like $\\sqrt\\beta^{\\,t}$ instead, and with $\\beta$ tuned to the
    curvatures only on the order of $\\sqrt\\kappa$ steps are needed. **Nesterov**
    momentum evaluates the gradient at the point the velocity is about to carry the
    weights to, a correction that damps overshooting further. In Keras both are
    options of `SGD` (`momentum=0.9, nesterov=True`).

    The example runs Keras's `SGD` with and without momentum 0.9, at the same
    learning rate, on a quadratic with curvatures 1 and 200, checks the Keras updates
    against the velocity formula in numpy, and counts the steps each needs to lower
    the loss a millionfold.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    curvatures, rate, beta = (1.0, 200.0), 0.009, 0.9  # η λmax = 1.8: stable, but zigzagging
    a = _ill_conditioned_quadratic(curvatures)
    start = np.array([-4.0, 1.0])
    steps = 1000

    def loss(w):
        return 0.5 * np.einsum("...i,ij,...j->...", w, a, w)

    paths = {"plain SGD": _keras_path(keras.optimizers.SGD(rate), a, start, steps),
             "SGD, momentum 0.9": _keras_path(keras.optimizers.SGD(rate, momentum=beta), a, start, steps)}
    by_hand = {}
    for name, b in (("plain SGD", 0.0), ("SGD, momentum 0.9", beta)):  # the update written out, in float64
        w, v, by_hand[name] = start.copy(), np.zeros(2), [start]
        for _ in range(steps):
            v = b * v - rate * a @ w
            w = w + v
            by_hand[name].append(w)
    formula_error = max(float(np.abs(paths[name] - np.array(by_hand[name])).max() / np.abs(start).max())
                        for name in paths)
    lesson.number("largest relative difference, Keras SGD vs the formula in numpy", formula_error)

    needed, rows = {}, []
    predicted = {"plain SGD": 1 - rate * min(curvatures), "SGD, momentum 0.9": np.sqrt(beta)}
    for name, path in paths.items():
        ratio = loss(path.astype("float64")) / loss(start)
        below = np.flatnonzero(ratio < 1e-6)
        needed[name] = int(below[0]) if len(below) else steps
        lesson.number(f"{name}: steps to lower the loss 1e6-fold", needed[name])
        distance = np.linalg.norm(by_hand[name], axis=1)  # float64: no floor at float32's precision
        rows.append((name, needed[name], predicted[name], (distance[600] / distance[300]) ** (1 / 300)))
    lesson.table(f"Curvatures {curvatures}, learning rate {rate}",
                 ("optimizer", "steps to loss / 1e6", "predicted rate per step", "measured rate, steps 300-600"),
                 rows)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    _contours(axes[0], a, span=4.5)
    for name, path in paths.items():
        axes[0].plot(*path[:60].T, ".-", ms=3, lw=0.8, label=name)
    axes[0].set_xlim(-4.5, 4.5)
    axes[0].set_ylim(-4.5, 2.5)
    axes[0].set_title("first 60 steps, curvatures 1 and 200", fontsize=10)
    axes[0].legend(fontsize=8, loc="lower right")
    for name, path in paths.items():
        axes[1].semilogy(loss(path.astype("float64")) / loss(start), label=f"{name}: {needed[name]} steps", lw=1)
    axes[1].axhline(1e-6, color="0.5", ls="--", lw=0.8)
    axes[1].set_ylim(1e-9, 2)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("loss / initial loss")
    axes[1].set_title(f"learning rate {rate} for all", fontsize=10)
    axes[1].legend(fontsize=8)
    lesson.figure(fig, "momentum", "Plain SGD crawls along the flat direction of an ill-conditioned quadratic; with "
                  "momentum the steps along it add up and the loss falls a millionfold in a fraction of the steps.")

    lesson.check("keras.optimizers.SGD, with momentum 0.9 and without, follows v ← βv - η∇L, w ← w + v "
                 "(relative error < 1e-5)",
                 formula_error < 1e-5, f"{formula_error:.1e}")
    measured = {row[0]: row[3] for row in rows}
    lesson.check("the measured rates match the theory: 1 - ηλmin = 0.991 without momentum, √β = 0.949 with "
                 "(±0.01)",
                 all(abs(measured[name] - value) < 0.01 for name, value in predicted.items()),
                 ", ".join(f"{measured[name]:.4f} vs {value:.4f}" for name, value in predicted.items()))
    plain, heavy = needed["plain SGD"], needed["SGD, momentum 0.9"]
    lesson.check("momentum reaches loss / 1e6 in under a third of plain SGD's steps", 3 * heavy < plain,
                 f"{heavy} vs {plain} steps")


@atlas_entry(
    15,
    formula=r"\begin{aligned}"
    r"m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, & v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2,\\"
    r"\hat m_t &= \frac{m_t}{1 - \beta_1^t}, & \hat v_t &= \frac{v_t}{1 - \beta_2^t},\qquad "
    r"w_t = w_{t-1} - \eta\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}"
    r"\end{aligned}",
    see=("tfdl.training.OptimizerConfig", "tfdl.training.make_optimizer"),
    configs=("digits_mlp",),
)
def adam_optimizer(lesson: Lesson) -> None:
    """**Adam** (adaptive moment estimation) keeps two running averages per parameter:
    $m$, of the gradient (momentum, question 14), and $v$, of the squared gradient.
    It steps along $m$ divided by $\\sqrt v$, the gradient's recent root mean square,
    so every parameter gets **its own step size**: about $\\eta$ when its gradient is
    consistent, smaller when the gradient is noisy or keeps changing sign —
    whatever the gradient's scale. Both averages start at zero, which biases them
    towards zero early on; dividing by $1 - \\beta^t$ removes that bias (so the very
    first update is exactly $-\\eta\\,\\operatorname{sign}(g)$). Defaults
    $\\beta_1 = 0.9$, $\\beta_2 = 0.999$, $\\epsilon \\approx 10^{-7}$ to $10^{-8}$, and
    $\\eta = 10^{-3}$ work for a wide range of networks.

    Plain (stochastic) gradient descent uses one learning rate for all parameters
    and steps in proportion to the raw gradient. Its rate must suit the steepest
    direction, so parameters with small gradients — rare features, embeddings of
    rare words, layers deep in a badly scaled network — barely move, and its
    behaviour changes if the loss is multiplied by a constant. Adam is invariant to
    rescaling each parameter's gradient, converges much faster with little tuning,
    and is the default for transformers; well-tuned SGD with momentum still often
    generalizes as well or better on image classification. AdamW decouples the
    weight decay from the adaptive step (question 18).

    The example checks Keras's `Adam` step by step against the formula in numpy,
    then runs it and SGD on a quadratic whose two curvatures differ a thousandfold.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    a = np.diag([10.0, 0.01])  # curvatures a thousandfold apart
    start = np.array([-2.0, 3.0])
    steps, rate = lesson.budget(300, 400), 0.05

    def loss(w):
        return 0.5 * np.einsum("...i,ij,...j->...", w, a, w)

    paths = {"SGD, η = 0.15 (near its limit 2/10)": _keras_path(keras.optimizers.SGD(0.15), a, start, steps),
             f"Adam, η = {rate}": _keras_path(keras.optimizers.Adam(rate), a, start, steps)}

    beta1, beta2, epsilon = 0.9, 0.999, 1e-7  # Keras's defaults
    w, m, v, by_hand = start.copy(), np.zeros(2), np.zeros(2), [start]
    for t in range(1, steps + 1):  # Adam written out, in float64
        g = a @ w
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        w = w - rate * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + epsilon)
        by_hand.append(w)
    adam = paths[f"Adam, η = {rate}"]
    formula_error = lesson.number("largest |Keras Adam - formula| / |w0|", float(np.abs(adam - by_hand).max() / 3))
    first_step = np.abs(adam[1] - start)
    lesson.table("Adam's first update, per parameter", ("parameter", "gradient", "|update|"),
                 [(f"w{i + 1}", (a @ start)[i], first_step[i]) for i in range(2)])
    scaled = _keras_path(keras.optimizers.Adam(rate), 1000 * a, start, steps)
    invariance = lesson.number("largest |Adam path on 1000·L - Adam path on L| / |w0|",
                               float(np.abs(scaled - adam).max() / 3))

    final = {name: lesson.number(f"{name}: loss after {steps} steps / initial",
                                 loss(p[-1].astype("float64")) / loss(start)) for name, p in paths.items()}
    flat = {name: abs(float(p[-1, 1])) for name, p in paths.items()}
    lesson.table(f"After {steps} steps from w = (-2, 3)", ("optimizer", "loss / initial", "|w2| (flat direction)"),
                 [(name, final[name], flat[name]) for name in paths])

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    grid1, grid2 = np.linspace(-2.5, 2.5, 201), np.linspace(-1, 3.5, 201)
    w1, w2 = np.meshgrid(grid1, grid2)
    axes[0].contour(grid1, grid2, 0.5 * (10 * w1 * w1 + 0.01 * w2 * w2), levels=np.geomspace(0.01, 30, 12),
                    colors="0.75", linewidths=0.7)
    for name, p in paths.items():
        axes[0].plot(*p.T, ".-", ms=2.5, lw=0.8, label=name)
        axes[1].semilogy(loss(p.astype("float64")) / loss(start), label=name)
    axes[0].plot(0, 0, "k*", ms=9)
    axes[0].set_xlabel("$w_1$ (curvature 10)")
    axes[0].set_ylabel("$w_2$ (curvature 0.01)")
    axes[0].set_title(f"paths over {steps} steps (axes not to scale)", fontsize=10)
    axes[0].legend(fontsize=8)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("loss / initial loss")
    axes[1].set_title("loss", fontsize=10)
    axes[1].legend(fontsize=8)
    lesson.figure(fig, "adam", "SGD's rate is set by the steep direction, so it barely moves along the flat one; "
                  "Adam divides each gradient by its own running RMS and moves both parameters at the same pace.")

    lesson.check("keras.optimizers.Adam follows the formula in numpy, step by step (error < 1e-4 of |w0|)",
                 formula_error < 1e-4, f"{formula_error:.1e}")
    gradient = np.abs(a @ start)
    lesson.check("the first Adam update is η in every parameter, though their gradients differ over 500-fold",
                 bool(np.allclose(first_step, rate, rtol=1e-3)) and gradient[0] > 500 * gradient[1],
                 f"gradients {gradient[0]:.3g} and {gradient[1]:.3g}; "
                 f"|update| {first_step[0]:.5f}, {first_step[1]:.5f}")
    lesson.check("Adam takes the same path when the loss is multiplied by 1000 (difference < 1e-3 of |w0|)",
                 invariance < 1e-3, f"{invariance:.1e}")
    sgd, adam_loss = final.values()
    lesson.check(f"after {steps} steps Adam's loss is over 1000x lower than SGD's", adam_loss * 1000 < sgd,
                 f"SGD {sgd:.2e}, Adam {adam_loss:.2e}")


def _activation_scales(initializers: dict, activation, *, depth: int, width: int, seed: int) -> dict:
    """Push standard-normal inputs through `depth` dense layers of `width` units (biases zero) for each entry of
    `initializers` (name: a Keras initializer class and its arguments); returns, per name, the root mean square of
    the activations at each layer, and the last layer's activations."""
    import numpy as np

    h0 = np.random.default_rng(seed).normal(size=(200, width)).astype("float32")
    scales = {}
    for name, (initializer, arguments) in initializers.items():
        h, rms = h0, []
        for layer in range(depth):  # a seed per layer: a seeded Keras initializer repeats its draw
            h = activation(h @ np.asarray(initializer(seed=seed * 1000 + layer, **arguments)((width, width))))
            rms.append(float(np.sqrt(np.mean(np.square(h, dtype="float64")))))
        scales[name] = (rms, h)
    return scales


@atlas_entry(
    16,
    formula=r"z^{(l)} = W^{(l)} h^{(l-1)},\qquad "
    r"\operatorname{Var} z^{(l)}_j = n_{l-1}\, \operatorname{Var} W^{(l)}_{jk}\ "
    r"\mathbb E\big[(h^{(l-1)}_k)^2\big]\quad\Rightarrow\quad \operatorname{Var} z^{(L)} \propto "
    r"\prod_{l=1}^{L} g\, n_{l-1} \operatorname{Var} W^{(l)}",
    see=("tfdl.models.MLPConfig", "tfdl.models.build_mlp"),
)
def weight_initialization(lesson: Lesson) -> None:
    """**Weight initialization** is the choice of the random values the weights start from.
    It matters for two reasons. First, **symmetry**: if all the weights into a layer
    start equal (all zero, or any constant), every unit of that layer computes the
    same function and receives the same gradient, so they stay identical forever and
    the layer is worth one unit. All-zero weights are worse: with tanh or ReLU the
    hidden kernels' gradients are exactly zero, so the network never learns to use
    its input. Random weights break the symmetry. (Biases may start at zero.)

    Second, **scale**. Each layer multiplies the variance of its input by roughly
    $n_\\text{in} \\operatorname{Var} W$ times a factor $g$ of the activation (the
    formula), and backpropagation multiplies the gradient's variance by a similar
    factor on the way down. Through many layers those factors compound: a little
    too small and activations and gradients shrink geometrically to nothing, a
    little too large and they blow up — or, with tanh and sigmoid, the units
    saturate, where their derivative is zero (questions 8 and 9). A good scheme
    sets $\\operatorname{Var} W$ from the layer's fan-in and fan-out so that the
    factor is one: Xavier/Glorot for tanh and sigmoid, He for ReLU (question 17).
    Normalization layers and residual connections make a network less sensitive to
    its initialization, but do not remove the need for a sensible one.

    The example starts tfdl's MLP on the digits from all-zero and from constant
    hidden weights, then pushes random inputs through 20 tanh and 20 ReLU layers of 256
    units initialized too small, too large, and by Xavier or He.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.models import build_model
    from tfdl.pipelines import load_sklearn_dataset

    # Symmetry. All-zero hidden kernels: their gradients are exactly zero, at this step and so at every step after
    # it. A constant: the units of the first layer get equal gradients, and stay equal while training.
    digits = load_sklearn_dataset("digits")
    x, y = digits.features / 16.0, digits.labels

    def tanh_mlp(value):
        model = build_model("mlp", {"input_shape": (64,), "num_classes": 10, "hidden_units": (32, 32),
                                    "activation": "tanh", "kernel_initializer": "zeros"})
        for layer in ("dense1", "dense2"):
            model.get_layer(layer).kernel.assign(np.full(model.get_layer(layer).kernel.shape, value, "float32"))
        return model

    zeros = tanh_mlp(0.0)
    below = [zeros.get_layer("dense1").kernel, zeros.get_layer("dense1").bias, zeros.get_layer("dense2").kernel]
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(y[:512], zeros(x[:512]))
    zero_gradient = lesson.number("all-zero start: largest |gradient| of the hidden kernels and first bias",
                                  max(float(tf.reduce_max(tf.abs(g))) for g in tape.gradient(loss, below)))

    constant = tanh_mlp(0.05)
    before = constant.get_layer("dense1").kernel.numpy()
    steps = lesson.budget(100, 400)
    feed = tf.data.Dataset.from_tensor_slices((x[:1400], y[:1400])).shuffle(1400, seed=lesson.seed).repeat().batch(64)
    constant.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", steps_per_execution=steps)
    constant.fit(feed, steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0)
    kernel = constant.get_layer("dense1").kernel.numpy()
    moved = lesson.number("constant start: largest change of a first-layer weight",
                          float(np.abs(kernel - before).max()))
    spread = lesson.number("constant start: largest difference between two first-layer units' weights",
                           float(np.abs(kernel - kernel[:, :1]).max()))

    # Scale: activation statistics through 20 layers.
    depth, width = 20, 256
    normal = keras.initializers.RandomNormal
    tanh_inits = {"N(0, 0.01²): too small": (normal, {"stddev": 0.01}),
                  "N(0, 0.5²): too large": (normal, {"stddev": 0.5}),
                  "Xavier (glorot_normal)": (keras.initializers.GlorotNormal, {})}
    relu_inits = {**tanh_inits, "He (he_normal)": (keras.initializers.HeNormal, {})}
    del relu_inits["Xavier (glorot_normal)"]
    tanh = _activation_scales(tanh_inits, np.tanh, depth=depth, width=width, seed=lesson.seed)
    relu = _activation_scales(relu_inits, lambda z: np.maximum(z, 0), depth=depth, width=width, seed=lesson.seed)
    saturated = {name: lesson.number(f"tanh, {name}: fraction of layer-{depth} units with |h| > 0.99",
                                     float(np.mean(np.abs(h) > 0.99))) for name, (_, h) in tanh.items()}
    tanh = {name: rms for name, (rms, _) in tanh.items()}
    relu = {name: rms for name, (rms, _) in relu.items()}
    rows = [(f"tanh, {name}", rms[0], rms[-1]) for name, rms in tanh.items()]
    rows += [(f"ReLU, {name}", rms[0], rms[-1]) for name, rms in relu.items()]
    lesson.table(f"Root mean square of the activations, {depth} layers of {width} units, inputs N(0, 1)",
                 ("activation, initialization", "layer 1", f"layer {depth}"), rows)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for ax, scales, title in ((axes[0], tanh, "tanh"), (axes[1], relu, "ReLU")):
        for name, rms in scales.items():
            ax.semilogy(range(1, depth + 1), rms, "o-", ms=3, label=name)
        ax.set_xlabel("layer")
        ax.set_ylabel("root mean square of the activations")
        ax.set_title(f"{depth} {title} layers of {width} units", fontsize=10)
        ax.legend(fontsize=8)
    lesson.figure(fig, "initialization", "Activation size through 20 layers: too small an initialization shrinks the "
                  "signal geometrically, too large a one saturates tanh and blows ReLU up; Xavier (tanh) and He "
                  "(ReLU) keep it level.")

    lesson.check("from all-zero kernels both hidden kernels and the first bias get exactly zero gradient, so they "
                 "never move and the network never sees its input",
                 zero_gradient == 0, f"largest |gradient| {zero_gradient:.1e}")
    lesson.check(f"from a constant, the first layer's 32 units move but stay identical through {steps} Adam steps "
                 "(differences < 1e-6)", moved > 1e-2 and spread < 1e-6,
                 f"moved {moved:.3f}, largest difference between units {spread:.1e}")
    small = max(tanh["N(0, 0.01²): too small"][-1], relu["N(0, 0.01²): too small"][-1])
    lesson.check(f"too small: the signal vanishes (RMS at layer {depth} below 1e-10)", small < 1e-10, f"{small:.1e}")
    large_relu = relu["N(0, 0.5²): too large"][-1]
    lesson.check("too large: tanh saturates (over half the units at |h| > 0.99, under 1% with Xavier) and ReLU "
                 "explodes (RMS > 1e5)",
                 saturated["N(0, 0.5²): too large"] > 0.5 and saturated["Xavier (glorot_normal)"] < 0.01
                 and large_relu > 1e5,
                 f"{saturated['N(0, 0.5²): too large']:.0%} vs {saturated['Xavier (glorot_normal)']:.0%} saturated, "
                 f"ReLU RMS {large_relu:.1e}")
    xavier, he = tanh["Xavier (glorot_normal)"], relu["He (he_normal)"]
    lesson.check(f"Xavier keeps tanh's signal alive (RMS at layer {depth} > 0.1) and He keeps ReLU's within 2x of "
                 "layer 1's", xavier[-1] > 0.1 and 0.5 < he[-1] / he[0] < 2,
                 f"Xavier {xavier[0]:.3f} -> {xavier[-1]:.3f}, He {he[0]:.3f} -> {he[-1]:.3f}")


@atlas_entry(
    17,
    formula=r"\text{Xavier/Glorot: } \operatorname{Var} W = \frac{2}{n_\text{in} + n_\text{out}},\ "
    r"W \sim U\big[\pm\sqrt{6 / (n_\text{in} + n_\text{out})}\big];\qquad "
    r"\text{He: } \operatorname{Var} W = \frac{2}{n_\text{in}},\ W \sim \mathcal N\big(0, 2 / n_\text{in}\big);\qquad "
    r"\mathbb E\big[(h^{(l)})^2\big] = \tfrac12\, n_\text{in} \operatorname{Var} W\ \mathbb E\big[(h^{(l-1)})^2\big]"
    r"\ \text{(ReLU)}",
    see=("tfdl.models.MLPConfig", "tfdl.models.build_mlp"),
)
def xavier_and_he_initialization(lesson: Lesson) -> None:
    """Both draw each weight independently with mean zero and a variance chosen so that,
    at the start of training, a layer neither shrinks nor grows the signal passing
    through it (question 16).

    **Xavier (Glorot) initialization** (Glorot and Bengio, 2010) was derived for
    activations that are linear near zero, such as tanh. Keeping the variance of the
    activations equal going forward needs $\\operatorname{Var} W = 1/n_\\text{in}$;
    keeping the variance of the gradients equal going backward needs
    $1/n_\\text{out}$; Xavier takes the compromise $2/(n_\\text{in} + n_\\text{out})$,
    as a uniform distribution on $\\pm\\sqrt{6/(n_\\text{in}+n_\\text{out})}$ or a
    normal distribution (Keras draws a normal truncated at two standard deviations,
    widened so its variance is still the formula's). It is Keras's default
    (`glorot_uniform`).

    **He (Kaiming) initialization** (He et al., 2015) corrects this for ReLU, which
    zeroes half of its inputs and so halves the mean square of the signal at every
    layer: doubling the variance to $2/n_\\text{in}$ restores the balance. With
    Xavier weights a deep ReLU network's activations shrink by $\\sqrt 2$ per layer
    (for square layers), a thousandfold over 20 layers; with He weights they hold
    steady, which is what let very deep ReLU networks train from scratch. Use He
    (`he_normal`, `he_uniform`) for ReLU and its relatives, Xavier for tanh,
    sigmoid and linear layers; LeCun ($1/n_\\text{in}$) goes with SELU.

    The example measures the variance of the weights Keras's initializers draw
    against the formulas, then pushes random inputs through 20 ReLU layers with each,
    comparing the per-layer factor with the formula's $\\tfrac12 n_\\text{in}\\operatorname{Var} W$.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    formulas = {  # name: the variance as a function of (fan_in, fan_out)
        "glorot_uniform": lambda fan_in, fan_out: 2 / (fan_in + fan_out),
        "glorot_normal": lambda fan_in, fan_out: 2 / (fan_in + fan_out),
        "he_uniform": lambda fan_in, fan_out: 2 / fan_in,
        "he_normal": lambda fan_in, fan_out: 2 / fan_in,
    }
    rows, worst = [], 0.0
    for fan_in, fan_out in ((256, 512), (512, 128)):
        for name, formula in formulas.items():
            weights = np.asarray(keras.initializers.get({"class_name": name, "config": {"seed": lesson.seed}})(
                (fan_in, fan_out)))
            gap = abs(weights.var() / formula(fan_in, fan_out) - 1)
            worst = max(worst, gap)
            rows.append((name, f"{fan_in} × {fan_out}", formula(fan_in, fan_out), float(weights.var()),
                         float(np.abs(weights).max())))
    lesson.table("Variance of the weights Keras draws, against the formula",
                 ("initializer", "kernel (fan_in × fan_out)", "formula", "measured", "largest |w|"), rows)
    lesson.number("largest relative gap, measured variance vs formula", worst)
    limit = np.sqrt(6 / (256 + 512))
    uniform = np.asarray(keras.initializers.GlorotUniform(seed=lesson.seed)((256, 512)))
    lesson.number("glorot_uniform 256 × 512: largest |w| / sqrt(6 / (fan_in + fan_out))",
                  np.abs(uniform).max() / limit)

    depth, width = 20, 256
    setups = {"ReLU, Xavier (glorot_normal)": (keras.initializers.GlorotNormal, "relu"),
              "ReLU, He (he_normal)": (keras.initializers.HeNormal, "relu"),
              "tanh, Xavier (glorot_normal)": (keras.initializers.GlorotNormal, "tanh")}
    functions = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh}
    rms, factor = {}, {}
    for name, (initializer, activation) in setups.items():
        rms[name] = _activation_scales({name: (initializer, {})}, functions[activation], depth=depth, width=width,
                                       seed=lesson.seed)[name][0]
        # the mean square's average factor per layer, layers 1 to 20
        factor[name] = lesson.number(f"{name}: mean-square factor per layer",
                                     (rms[name][-1] / rms[name][0]) ** (2 / (depth - 1)))
    predicted = {"ReLU, Xavier (glorot_normal)": 0.5 * width * formulas["glorot_normal"](width, width),
                 "ReLU, He (he_normal)": 0.5 * width * formulas["he_normal"](width, width)}
    lesson.table(f"{depth} layers of {width} units, inputs N(0, 1)",
                 ("activation, initialization", "RMS at layer 1", f"RMS at layer {depth}", "factor per layer",
                  "formula ½ n Var W"),
                 [(name, rms[name][0], rms[name][-1], factor[name], predicted.get(name, "-")) for name in setups])

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    bins = np.linspace(-0.2, 0.2, 81)
    for name in ("glorot_uniform", "glorot_normal", "he_normal"):
        weights = np.asarray(keras.initializers.get({"class_name": name, "config": {"seed": lesson.seed}})((256, 512)))
        axes[0].hist(weights.ravel(), bins=bins, histtype="step", density=True,
                     label=f"{name}: std {weights.std():.4f}")
    axes[0].set_xlabel("weight")
    axes[0].set_ylabel("density")
    axes[0].set_title("a 256 × 512 kernel from each initializer", fontsize=10)
    axes[0].legend(fontsize=7, loc="upper right")
    for name in setups:
        axes[1].semilogy(range(1, depth + 1), rms[name], "o-", ms=3, label=name)
    axes[1].set_xlabel("layer")
    axes[1].set_ylabel("root mean square of the activations")
    axes[1].set_title(f"{depth} layers of {width} units", fontsize=10)
    axes[1].legend(fontsize=8)
    lesson.figure(fig, "xavier_he", "Left: the weights each initializer draws for a 256 × 512 kernel; He's, set by "
                  "the fan-in alone, are wider. Right: under ReLU, Xavier's signal shrinks by √2 per layer and He's "
                  "holds steady.")

    lesson.check("every Keras initializer draws weights with the variance of its formula (within 3%)", worst < 0.03,
                 f"largest gap {worst:.1%}")
    lesson.check("glorot_uniform stays inside ±sqrt(6 / (fan_in + fan_out)) and reaches near it",
                 0.99 < np.abs(uniform).max() / limit <= 1.0,
                 f"largest |w| / limit {np.abs(uniform).max() / limit:.4f}")
    xavier, he = factor["ReLU, Xavier (glorot_normal)"], factor["ReLU, He (he_normal)"]
    lesson.check("under ReLU the mean square changes per layer by the formula's factor ½ n Var W: ½ with Xavier, 1 "
                 "with He (±0.05)", all(abs(factor[name] - value) < 0.05 for name, value in predicted.items()),
                 f"Xavier {xavier:.3f}, He {he:.3f}")
    lesson.check(f"so after {depth} ReLU layers Xavier's signal is over 100x smaller than He's",
                 rms["ReLU, Xavier (glorot_normal)"][-1] * 100 < rms["ReLU, He (he_normal)"][-1],
                 f"{rms['ReLU, Xavier (glorot_normal)'][-1]:.1e} vs {rms['ReLU, He (he_normal)'][-1]:.2f}")
