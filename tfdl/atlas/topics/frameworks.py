"""Atlas entries 51-60: TensorFlow, Keras, computation graphs, tf.data and custom losses, and PyTorch beside them."""

from __future__ import annotations

from tfdl.atlas.entry import atlas_entry
from tfdl.atlas.lesson import Lesson


def _seconds_per_call(function, *args, calls: int) -> float:
    """Mean wall time of `function(*args)` over `calls` calls, after one untimed warm-up call."""
    import time

    function(*args)
    start = time.perf_counter()
    for _ in range(calls):
        function(*args)
    return (time.perf_counter() - start) / calls


@atlas_entry(
    51,
    formula=r"f(x) = x^3 \sin x,\qquad f'(x) = 3x^2 \sin x + x^3 \cos x",
    see=("tfdl.training.train", "tfdl.pipelines.make_feed", "tfdl.export.export_saved_model"),
)
def what_is_tensorflow(lesson: Lesson) -> None:
    """**TensorFlow** is Google's open-source library for numerical computing with
    tensors, built for machine learning. Programs are written in Python as operations
    on `tf.Tensor`s (n-dimensional arrays with a dtype and shape) and `tf.Variable`s
    (mutable tensors that hold weights); each operation has kernels for CPU, GPU and
    TPU, and TensorFlow places it on a device for you (or where `tf.device` says).

    Its key features, each something the example or another tfdl entry shows:

    - **Eager execution** by default: operations run as Python calls them, so code is
      debugged like numpy.
    - **Graphs** with `tf.function`: a Python function is traced once into a dataflow
      graph that runs without the Python interpreter, is optimized (constant folding,
      op fusion, optionally XLA with `jit_compile=True`) and can be saved (question 54).
    - **Automatic differentiation**: `tf.GradientTape` records operations and computes
      exact gradients of any of them by reverse mode (question 6).
    - **Keras** (`tf.keras`, Keras 3) as the high-level API for layers, models,
      losses, optimizers and `fit` (question 53).
    - **tf.data** input pipelines that read, transform, shuffle, batch and prefetch in
      parallel with training (question 55); **tf.distribute** strategies for many
      GPUs, TPUs and machines.
    - **Deployment**: the language-neutral SavedModel format, TensorFlow Serving for
      servers, TensorFlow Lite (LiteRT) for phones and microcontrollers, TensorFlow.js
      for browsers; TensorBoard for watching training.

    The example shows three of them with numbers: the same small computation run
    eagerly and as a `tf.function` graph, a gradient from `tf.GradientTape` against
    the derivative worked out by hand, and where TensorFlow placed each tensor.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    # Eager vs graph: twenty small layers, the regime where Python's per-op overhead dominates.
    rng = np.random.default_rng(lesson.seed)
    weights = tf.Variable(rng.normal(scale=0.3, size=(16, 16)).astype("float32"))
    batch = tf.constant(rng.normal(size=(8, 16)).astype("float32"))

    def forward(x):
        for _ in range(20):
            x = tf.tanh(x @ weights) + 0.1 * x
        return tf.reduce_sum(x)

    graph_forward = tf.function(forward)
    calls = lesson.budget(100, 1000)
    eager = lesson.number("eager: microseconds per call", 1e6 * _seconds_per_call(forward, batch, calls=calls))
    graph = lesson.number("tf.function: microseconds per call",
                          1e6 * _seconds_per_call(graph_forward, batch, calls=calls))
    same = float(abs(forward(batch) - graph_forward(batch)))
    ops = len(graph_forward.get_concrete_function(batch).graph.get_operations())

    # Automatic differentiation against the derivative by hand.
    x = tf.constant(np.linspace(-4.0, 4.0, 401))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = x**3 * tf.sin(x)
    by_tape = tape.gradient(y, x).numpy()
    xs = x.numpy()
    by_hand = 3 * xs**2 * np.sin(xs) + xs**3 * np.cos(xs)
    gradient_error = lesson.number("largest |GradientTape - hand derivative|", float(np.abs(by_tape - by_hand).max()))

    # Device placement: where each tensor lives, and pinning one with tf.device.
    devices = [device.name for device in tf.config.list_logical_devices()]
    with tf.device("/CPU:0"):
        pinned = tf.matmul(batch, weights)
    lesson.table("Devices and placement", ("", "value"), [
        ("logical devices", ", ".join(devices)),
        ("GPUs visible", len(tf.config.list_physical_devices("GPU"))),
        ("device of an eager result", batch.device),
        ("device of a result under tf.device('/CPU:0')", pinned.device),
        ("operations in the traced graph", ops),
    ])

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
    axes[0].bar(["eager", "tf.function"], [eager, graph], color=["tab:orange", "tab:blue"])
    axes[0].set_ylabel("microseconds per call")
    axes[0].set_title(f"20 small layers: graph {eager / graph:.1f}x faster", fontsize=9)
    axes[1].plot(xs, by_hand, color="0.7", lw=4, label="$3x^2\\sin x + x^3\\cos x$ (by hand)")
    axes[1].plot(xs, by_tape, "--", color="tab:blue", label="tf.GradientTape")
    axes[1].set_xlabel("x")
    axes[1].set_ylabel("f'(x)")
    axes[1].set_title("derivative of $x^3 \\sin x$", fontsize=9)
    axes[1].legend(fontsize=8)
    lesson.figure(fig, "tensorflow", "Left: the same computation eagerly and as a tf.function graph. "
                  "Right: the derivative from tf.GradientTape on the one worked out by hand.")
    lesson.check("the tf.function graph computes what eager execution does, over 2x faster per call",
                 same < 1e-4 and eager > 2 * graph, f"{eager:.0f} µs eager, {graph:.0f} µs graph, "
                 f"{eager / graph:.1f}x; outputs differ by {same:.1e}")
    lesson.check("tf.GradientTape's derivative equals 3x² sin x + x³ cos x (max error < 1e-9, float64)",
                 gradient_error < 1e-9, f"{gradient_error:.1e}")
    lesson.check("an eager result sits on one of the listed devices, and tf.device('/CPU:0') places on the CPU",
                 batch.device.split("/job:localhost/replica:0/task:0")[-1] in devices
                 and pinned.device.endswith("CPU:0"), f"{batch.device}; {pinned.device}")


_PYTORCH_VS_TENSORFLOW = r"""
The same training loop in PyTorch (the example above runs the Keras one):

```python
import torch
from torch import nn

model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
loss_fn = nn.CrossEntropyLoss()  # takes logits

model.train()  # dropout and batch norm in training mode
for x, y in loader:  # a torch.utils.data.DataLoader
    optimizer.zero_grad()  # .grad accumulates across backward() calls
    loss = loss_fn(model(x), y)
    loss.backward()  # gradients into each parameter's .grad
    optimizer.step()
```

| | PyTorch | TensorFlow / Keras |
|---|---|---|
| execution | eager; `torch.compile` captures graphs from Python bytecode and falls back to Python at a graph break | eager; `tf.function` traces the Python function into a graph (per input signature), which can be saved |
| gradients | `loss.backward()` adds into `param.grad`; call `zero_grad()` each step | `tf.GradientTape` records a block and returns gradients as values; nothing accumulates |
| training loop | you write it (or use Lightning) | `model.fit` runs it; a custom loop or an overridden `train_step` when you need one |
| layer sizes | given in full: `nn.Linear(64, 32)` | inferred at first call: `Dense(32)` builds its kernel from the input |
| train/eval mode | `model.train()` / `model.eval()` switch the model's state | `training=True/False` passed on each call (`fit` and `predict` pass it) |
| devices | explicit: `model.to("cuda")`, `x.to("cuda")` | automatic placement; `tf.device` to pin; strategies for many devices |
| image layout | `NCHW` | `NHWC` by default |
| classification loss | `CrossEntropyLoss` expects logits | Keras losses expect probabilities unless `from_logits=True` |
| data | `Dataset` + `DataLoader` (question 57) | `tf.data.Dataset` (question 55) |
| deployment | TorchScript / `torch.export`, ONNX, ExecuTorch | SavedModel, TensorFlow Serving, TFLite (LiteRT), TensorFlow.js |
| scaling out | DDP, FSDP | `tf.distribute` strategies (mirrored, multi-worker, TPU) |

Both compute the same mathematics: the example shows Keras's `fit` and a loop written the
PyTorch way ending at the same weights. Keras 3 can also run on PyTorch as its backend
(`KERAS_BACKEND=torch`); tfdl uses the TensorFlow backend.
"""


@atlas_entry(
    52,
    see=("tfdl.models.build_mlp", "tfdl.training.train"),
    pytorch=_PYTORCH_VS_TENSORFLOW,
)
def pytorch_vs_tensorflow(lesson: Lesson) -> None:
    """PyTorch and TensorFlow are both tensor libraries with GPU/TPU kernels, automatic
    differentiation and a neural-network layer API; a model written in one can be
    written line for line in the other. They differ in style more than in power.
    **PyTorch** is Python first: models are `nn.Module`s, you write the training loop
    yourself, gradients accumulate in each parameter's `.grad` after
    `loss.backward()`, and graphs are an optional compilation step (`torch.compile`).
    It dominates research, where that directness pays.

    **TensorFlow** is eager by default too, but its design centres on the graph:
    `tf.function` traces Python into a portable dataflow graph that the SavedModel
    format stores, which is why TensorFlow's deployment path (TensorFlow Serving,
    TFLite on phones and microcontrollers, TensorFlow.js, TPUs) is the more complete.
    Its modelling API is Keras, with `compile` and `fit` running the loop for you;
    gradients come from a `tf.GradientTape` as values. Smaller differences (inferred
    layer sizes, NHWC images, losses that expect probabilities) are tabled below.

    The example trains the same network on digits twice from the same initial weights:
    once with Keras's `fit`, once with a loop written the way PyTorch code is
    (forward, loss, gradient, optimizer step — here `GradientTape` and
    `apply_gradients`), run both eagerly and as a `tf.function`. The weights agree; only
    the speed differs.
    """
    import time

    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.models import build_model
    from tfdl.pipelines import load_sklearn_dataset

    digits = load_sklearn_dataset("digits")
    x, y = (digits.features / 16.0).astype("float32"), digits.labels
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)  # 29 batches, the same order every time
    epochs = lesson.budget(4, 12)

    def mlp():
        return build_model("mlp", {"input_shape": (64,), "num_classes": 10, "hidden_units": (32, 16)})

    start_weights = mlp().get_weights()
    results, seconds = {}, {}

    # Keras: compile and fit run the loop.
    model = mlp()
    model.set_weights(start_weights)
    model.compile(keras.optimizers.SGD(0.3), "sparse_categorical_crossentropy")
    ends = []  # each epoch's end; speed is taken after the first epoch, which traces the graph
    clock = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter()))
    history = model.fit(batches, epochs=epochs, shuffle=False, verbose=0, callbacks=[clock])
    seconds["Keras fit"] = ends[-1] - ends[0]
    results["Keras fit"] = (model.get_weights(), history.history["loss"])

    # The loop written the PyTorch way: forward, loss, gradients, optimizer step.
    for name, compiled in (("hand-written loop, eager", False), ("hand-written loop, tf.function", True)):
        model = mlp()
        model.set_weights(start_weights)
        optimizer = keras.optimizers.SGD(0.3)
        loss_fn = keras.losses.SparseCategoricalCrossentropy()

        def train_step(features, labels):
            with tf.GradientTape() as tape:
                loss = loss_fn(labels, model(features, training=True))
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            return loss

        step = tf.function(train_step) if compiled else train_step
        losses, ends = [], []
        for _ in range(epochs):
            epoch_loss = [float(step(features, labels)) for features, labels in batches]
            losses.append(float(np.mean(epoch_loss)))
            ends.append(time.perf_counter())
        seconds[name] = ends[-1] - ends[0]
        results[name] = (model.get_weights(), losses)

    reference = results["Keras fit"][0]
    difference = {name: max(float(np.abs(a - b).max()) for a, b in zip(weights, reference))
                  for name, (weights, _) in results.items()}
    examples = (epochs - 1) * len(x)  # timed from the end of the first epoch
    lesson.table(f"The same {epochs} epochs of SGD, three ways (speed after the first epoch)",
                 ("training loop", "examples / s", "last epoch's mean loss", "largest weight difference to fit"),
                 [(name, examples / seconds[name], results[name][1][-1], difference[name]) for name in results])
    speed = {name: lesson.number(f"{name}: examples / s", examples / seconds[name]) for name in results}
    largest = lesson.number("largest weight difference, hand-written loops vs fit",
                            max(difference["hand-written loop, eager"], difference["hand-written loop, tf.function"]))

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
    for (name, (_, losses)), style in zip(results.items(), ("-o", "--s", ":x")):
        axes[0].plot(range(1, epochs + 1), losses, style, ms=8, mfc="none", label=name)
    axes[0].set_xticks(range(1, epochs + 1))
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("mean training loss")
    axes[0].set_title("three loops, one trajectory", fontsize=9)
    axes[0].legend(fontsize=8)
    axes[1].barh(list(speed), list(speed.values()), color=["tab:blue", "tab:orange", "tab:green"])
    axes[1].set_xlabel("examples / s")
    axes[1].set_title("speed of each loop", fontsize=9)
    lesson.figure(fig, "loops", "Keras fit and a PyTorch-style loop (GradientTape + apply_gradients) from the same "
                  "start: the same losses and weights; tf.function makes the hand-written loop fast.")
    lesson.check("a PyTorch-style GradientTape loop ends at fit's weights (largest difference < 1e-5)",
                 largest < 1e-5, f"{largest:.1e}")
    eager, compiled = speed["hand-written loop, eager"], speed["hand-written loop, tf.function"]
    lesson.check("compiling the step with tf.function makes the hand-written loop over 1.3x faster",
                 compiled > 1.3 * eager, f"{compiled:.0f} vs {eager:.0f} examples/s ({compiled / eager:.1f}x)")
    first, last = results["Keras fit"][1][0], results["Keras fit"][1][-1]
    lesson.check("the network learns (the loss falls by half)", last < 0.5 * first, f"{first:.3f} -> {last:.3f}")


@atlas_entry(
    53,
    see=("tfdl.models.build_model", "tfdl.models.build_mlp", "tfdl.layers.ResidualBlock"),
    configs=("digits_mlp",),
)
def keras_and_tensorflow(lesson: Lesson) -> None:
    """**Keras** is a high-level API for building and training neural networks: layers,
    models, losses, metrics, optimizers, callbacks, and `compile` / `fit` / `evaluate`
    / `predict`, with one file format (`.keras`) for a whole model. It began in 2015 as
    an independent library over several engines (Theano, TensorFlow, CNTK), was built
    into TensorFlow as `tf.keras` and became its official high-level API with
    TensorFlow 2, and with **Keras 3** is again multi-backend: the same model code
    runs on TensorFlow, JAX or PyTorch, chosen by `KERAS_BACKEND`. Since TensorFlow 2.16, `tf.keras` *is* Keras 3.

    On the TensorFlow backend Keras is a layer over TensorFlow, not beside it: a layer's
    weights are `tf.Variable`s, its outputs `tf.Tensor`s, `fit` compiles its train step
    with `tf.function`, reads `tf.data` datasets, and runs under `tf.distribute`
    strategies; a model exports to a SavedModel for TensorFlow Serving and TFLite. So
    TensorFlow code (a `GradientTape` loop, a `tf.data` pipeline) and Keras code mix
    freely.

    Keras offers three ways to define a model: **Sequential** (a plain stack),
    the **Functional** API (a graph of layers: several inputs or outputs, branches,
    shared layers) and **subclassing** `keras.Model` (arbitrary Python in `call`).
    The example builds one network all three ways *from the same layer objects*,
    trains one of them and shows the other two changed with it, since they share
    those layers' weights.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from tfdl.pipelines import load_sklearn_dataset

    digits = load_sklearn_dataset("digits")
    x, y = (digits.features / 16.0).astype("float32"), digits.labels
    hidden = keras.layers.Dense(32, activation="relu", name="hidden")
    output = keras.layers.Dense(10, activation="softmax", name="probabilities")

    sequential = keras.Sequential([keras.Input((64,)), hidden, output], name="sequential")

    inputs = keras.Input((64,), name="pixels")
    functional = keras.Model(inputs, output(hidden(inputs)), name="functional")

    class Subclassed(keras.Model):
        def __init__(self, hidden_layer, output_layer, **kwargs):
            super().__init__(**kwargs)
            self.hidden_layer, self.output_layer = hidden_layer, output_layer

        def call(self, features):
            return self.output_layer(self.hidden_layer(features))

    subclassed = Subclassed(hidden, output, name="subclassed")
    models = {"Sequential": sequential, "Functional": functional, "subclassed keras.Model": subclassed}
    before = {name: model(x).numpy() for name, model in models.items()}

    sequential.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    feed = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=lesson.seed).batch(64)
    sequential.fit(feed, epochs=lesson.budget(3, 10), shuffle=False, verbose=0)  # trains only the Sequential model
    after = {name: model(x).numpy() for name, model in models.items()}

    rows = []
    for name, model in models.items():
        accuracy = float(np.mean(after[name].argmax(-1) == y))
        rows.append((name, model.count_params(), float(np.abs(after[name] - before[name]).max()),
                     float(np.abs(after[name] - after["Sequential"]).max()), accuracy))
    lesson.table("One network, three APIs, after fitting only the Sequential one",
                 ("model", "parameters", "largest output change", "largest difference to Sequential", "accuracy"), rows)
    counts = {model.count_params() for model in models.values()}
    spread = lesson.number("largest output difference between the three models",
                           max(float(np.abs(after[name] - after["Sequential"]).max()) for name in models))
    changed = min(float(np.abs(after[name] - before[name]).max()) for name in models)
    lesson.number("smallest output change from fitting", changed)
    lesson.table("Keras on the TensorFlow backend", ("", "value"), [
        ("keras.config.backend()", keras.config.backend()),
        ("keras version / TensorFlow version", f"{keras.__version__} / {tf.__version__}"),
        ("tf.keras.Model is keras.Model", tf.keras.Model is keras.Model),
        ("type of a weight's storage", type(hidden.kernel.value).__name__),
        ("type of a model's output", type(sequential(x[:2])).__name__),
    ])
    lesson.check("Keras runs on TensorFlow here: the backend is 'tensorflow', tf.keras is Keras 3, weights are "
                 "tf.Variables and outputs tf.Tensors",
                 keras.config.backend() == "tensorflow" and tf.keras.Model is keras.Model
                 and isinstance(hidden.kernel.value, tf.Variable) and isinstance(sequential(x[:2]), tf.Tensor),
                 f"backend {keras.config.backend()}")
    lesson.check("the three definitions have the same parameter count, (64+1)·32 + (32+1)·10 = 2410",
                 counts == {(64 + 1) * 32 + (32 + 1) * 10}, f"{sorted(counts)}")
    lesson.check("fitting the Sequential model changed all three identically (they share the layers' weights)",
                 spread == 0.0 and changed > 0.1, f"outputs changed by >= {changed:.3f}, differ by {spread:.1e}")


def _draw_graph(ax, graph, labels: dict[str, str]) -> None:
    """Draw a small tf.Graph left to right: one box per operation, arrows along its tensors.

    `labels` names the placeholders (inputs and captured variable handles) by op name.
    """
    ops = [op for op in graph.get_operations() if op.type != "NoOp"]
    depth = {}
    for op in ops:  # get_operations() lists each op after its inputs
        depth[op.name] = 1 + max((depth.get(t.op.name, -1) for t in op.inputs), default=-1)
    taken: dict[int, set[int]] = {}
    place = {}
    for op in ops:  # keep an op in its first input's row where free, so chains run straight
        column = depth[op.name]
        row = -int(place[op.inputs[0].op.name][1]) if op.inputs else 0
        while row in taken.setdefault(column, set()):
            row += 1
        taken[column].add(row)
        place[op.name] = (1.6 * column, -row)
    for op in ops:
        for tensor in op.inputs:
            ax.annotate("", place[op.name], place[tensor.op.name],
                        arrowprops=dict(arrowstyle="->", color="0.4", shrinkA=34, shrinkB=34))
    for op in ops:
        label = labels.get(op.name, op.type)
        ax.text(*place[op.name], label, ha="center", va="center", fontsize=8,
                bbox=dict(boxstyle="round", fc="tab:blue" if op.type != "Placeholder" else "0.85", alpha=0.35))
    ax.set_xlim(-0.8, 1.6 * max(depth.values()) + 0.8)
    ax.set_ylim(-max(max(rows) for rows in taken.values()) - 0.6, 0.6)
    ax.axis("off")


@atlas_entry(
    54,
    see=("tfdl.export.input_signature", "tfdl.export.export_saved_model"),
)
def computation_graph(lesson: Lesson) -> None:
    """A **computation graph** is a program written as data: nodes are operations
    (`MatMul`, `AddV2`, `Relu`, `ReadVariableOp`), edges are the tensors that flow
    between them. Because the whole computation is known before it runs, TensorFlow
    can optimize it (fold constants, prune unused branches, fuse operations, compile
    with XLA), run independent operations in parallel, place them on devices, run it
    without the Python interpreter, and save it in a SavedModel that C++ servers and
    phones execute. Gradients are graphs too: `GradientTape` adds the backward
    operations of each forward one.

    TensorFlow 1 made you build the graph explicitly and run it in a `Session`.
    TensorFlow 2 runs eagerly and builds graphs with **`tf.function`**: the first call
    *traces* the Python function — runs it once with symbolic tensors, recording every
    TensorFlow operation — and **AutoGraph** rewrites Python `for`/`while`/`if` on
    tensors into graph control flow (`While`, `If`). Later calls with the same *input
    signature* (dtypes and shapes of tensor arguments, values of Python arguments) reuse
    the graph; a new signature traces again. Python side effects (a `print`, appending
    to a list) run only while tracing, which is how the example counts traces. Passing
    changing Python numbers, or tensors of ever-new shapes, retraces on every call — a
    common slowdown that an `input_signature` with `None` dimensions prevents.

    The example counts traces over a sequence of calls, draws the graph traced for a
    dense layer, lists the operations AutoGraph made of a Python loop, and times that
    loop eagerly and as a graph.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    traces = []

    def scale(x, factor):
        traces.append(x.shape)  # a Python side effect: runs only while tracing
        return x * factor

    calls = [  # (what changes, x, factor)
        ("first call: float32 (8, 4), tensor factor", tf.ones((8, 4)), tf.constant(2.0)),
        ("same signature, other values", tf.zeros((8, 4)), tf.constant(3.0)),
        ("same signature again", tf.fill((8, 4), 5.0), tf.constant(4.0)),
        ("new shape (16, 4)", tf.ones((16, 4)), tf.constant(2.0)),
        ("new dtype float64", tf.ones((8, 4), tf.float64), tf.constant(2.0, tf.float64)),
        ("Python float factor 2.0", tf.ones((8, 4)), 2.0),
        ("Python float factor 3.0", tf.ones((8, 4)), 3.0),
    ]
    free = tf.function(scale)
    fixed = tf.function(scale, input_signature=[tf.TensorSpec((None, 4), tf.float32), tf.TensorSpec((), tf.float32)])
    rows, counts = [], {}
    for name, function in (("no signature", free), ("input_signature (None, 4) float32", fixed)):
        traces.clear()
        for change, x, factor in calls:
            if name.startswith("input_signature") and x.dtype != tf.float32:
                continue  # the declared signature accepts float32 only
            function(x, factor)
            rows.append((name, change, len(traces)))
        counts[name] = lesson.number(f"traces, {name}", len(traces))
    lesson.table("Traces so far after each call of a tf.function", ("tf.function", "call", "traces so far"), rows)

    weights, bias = tf.Variable(tf.ones((4, 3))), tf.Variable(tf.zeros(3))

    @tf.function
    def dense(x):
        return tf.nn.relu(tf.matmul(x, weights) + bias)

    dense_graph = dense.get_concrete_function(tf.TensorSpec((None, 4), tf.float32)).graph

    @tf.function
    def halve_until_small(x, steps):
        for _ in tf.range(steps):  # AutoGraph: a tf.while_loop
            if tf.reduce_max(x) > 1.0:  # AutoGraph: a tf.cond
                x = x * 0.5
            else:
                x = x + 0.1
        return x

    loop_graph = halve_until_small.get_concrete_function(tf.TensorSpec((None,), tf.float32),
                                                         tf.TensorSpec((), tf.int32)).graph
    loop_ops = [op.type for op in loop_graph.get_operations()]
    lesson.table("Operations of the traced graphs", ("function", "operations"), [
        ("dense: relu(x @ W + b)", " → ".join(op.type for op in dense_graph.get_operations())),
        ("Python for + if on tensors", ", ".join(loop_ops)),
    ])

    x, steps = tf.constant(np.random.default_rng(lesson.seed).uniform(0, 100, 64).astype("float32")), tf.constant(50)
    repeats = lesson.budget(5, 30)
    eager = lesson.number("loop of 50, eager: ms per call",
                          1e3 * _seconds_per_call(halve_until_small.python_function, x, steps, calls=repeats))
    graph = lesson.number("loop of 50, graph: ms per call",
                          1e3 * _seconds_per_call(halve_until_small, x, steps, calls=repeats))
    agree = float(tf.reduce_max(tf.abs(halve_until_small(x, steps) - halve_until_small.python_function(x, steps))))

    fig, ax = plt.subplots(figsize=(9, 2.6))
    _draw_graph(ax, dense_graph, {"x": "input x", "MatMul/ReadVariableOp/resource": "variable W",
                                  "add/ReadVariableOp/resource": "variable b"})
    ax.set_title("the graph tf.function traced for relu(x @ W + b)", fontsize=9)
    lesson.figure(fig, "dense_graph", "The dataflow graph of a dense layer: the input and the handles of the two "
                  "variables (grey placeholders) feed ReadVariableOp, MatMul, AddV2 and Relu.")
    lesson.check("one trace serves every call with the same signature; a new shape, a new dtype and each new "
                 "Python number trace again (5 traces for 7 calls)", counts["no signature"] == 5,
                 f"{counts['no signature']:.0f} traces")
    lesson.check("with input_signature (None, 4) the six float32 calls trace once",
                 counts["input_signature (None, 4) float32"] == 1,
                 f"{counts['input_signature (None, 4) float32']:.0f} trace")
    lesson.check("AutoGraph turned the Python loop into one While operation; the dense graph is MatMul, AddV2, Relu",
                 sum("While" in op for op in loop_ops) == 1
                 and {"MatMul", "AddV2", "Relu"} <= {op.type for op in dense_graph.get_operations()},
                 ", ".join(op for op in loop_ops if "While" in op))
    lesson.check("the graph computes what eager does, over 1.3x faster", agree < 1e-5 and eager > 1.3 * graph,
                 f"{eager:.2f} ms eager, {graph:.2f} ms graph ({eager / graph:.1f}x)")


@atlas_entry(
    55,
    formula=r"T_{\text{epoch}} \approx \begin{cases} B\,(n\,t_{\text{load}} + t_{\text{step}}) & \text{sequential} \\ "
    r"B \max\!\big(n\,t_{\text{load}} / p,\ t_{\text{step}}\big) & \text{map with } p \text{ parallel calls, prefetch}"
    r"\end{cases}",
    see=("tfdl.pipelines.make_feed", "tfdl.pipelines.make_dataset", "tfdl.pipelines.feed_options",
         "tfdl.pipelines.build_pipeline"),
)
def dataset_api(lesson: Lesson) -> None:
    """The **`tf.data` API** builds input pipelines: a `tf.data.Dataset` is a sequence of
    elements (tensors, tuples or dicts of them) made from a source —
    `from_tensor_slices` on arrays in memory, `TFRecordDataset` and `list_files` on
    files, `from_generator` on Python code — and transformed by chained methods:
    `map` (decode, augment, tokenize), `filter`, `shuffle`, `batch` /
    `padded_batch`, `cache`, `repeat`, `interleave` (read many files at once),
    `prefetch`. Keras's `fit`, `evaluate` and `predict` consume a dataset directly,
    and `tf.distribute` splits one across replicas.

    Its purpose is to keep the accelerator busy. The transformations run in
    TensorFlow's C++ runtime, not in the Python interpreter, so they run in parallel
    threads without the GIL: `map(..., num_parallel_calls=p)` processes $p$ elements
    at once, and `prefetch(k)` prepares the next $k$ batches while the model trains
    on the current one, overlapping input work with compute. `tf.data.AUTOTUNE` picks
    these degrees at run time. Datasets larger than memory stream from disk; `cache`
    keeps the result of expensive early stages after the first epoch.

    The example builds the same pipeline four ways around a slow per-example load
    (4 ms, standing for a disk or network read) and a 30 ms training step, and
    measures batches per second: sequential, with prefetch, with a parallel map, and
    with both — against the times the formula predicts for $B$ batches of $n$
    examples with $p$ parallel calls. (By default tf.data already
    parallelizes a stateless map, fuses map and batch into one asynchronous stage and
    injects a prefetch; the example turns those automatic optimizations off so that
    each variant does only what it says.)
    """
    import time

    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    load_seconds, step_seconds, batch_size = 0.004, 0.030, 8
    batches = lesson.budget(9, 40)
    images = np.random.default_rng(lesson.seed).random((batches * batch_size, 8, 8), dtype="float32")

    def slow_load(image):  # stands for reading and decoding one example
        time.sleep(load_seconds)
        return image

    def load(image, label):
        image = tf.numpy_function(slow_load, [image], tf.float32, stateful=False)
        return tf.reshape(image, (8, 8)), label

    # tf.data's default optimizations parallelize a stateless map, fuse map and batch into one
    # asynchronous stage and add a prefetch by themselves; they are turned off here so that each
    # variant does only what it says.
    options = tf.data.Options()
    options.experimental_optimization.map_parallelization = False
    options.experimental_optimization.map_and_batch_fusion = False
    options.experimental_optimization.inject_prefetch = False
    options.threading.private_threadpool_size = 8  # waiting reads, not compute: more threads than cores

    def pipeline(parallel: bool, prefetch: bool) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices((images, np.arange(len(images))))
        ds = ds.map(load, num_parallel_calls=8, deterministic=True) if parallel else ds.map(load)
        ds = ds.batch(batch_size)
        return (ds.prefetch(2) if prefetch else ds).with_options(options)

    variants = {"sequential": (False, False), "prefetch(2)": (False, True), "map(num_parallel_calls=8)": (True, False),
                "parallel map + prefetch": (True, True)}
    sequential_time = batches * (batch_size * load_seconds + step_seconds)
    predicted = {"sequential": sequential_time,
                 "prefetch(2)": batches * max(batch_size * load_seconds, step_seconds),
                 "map(num_parallel_calls=8)": batches * (batch_size * load_seconds / 8 + step_seconds),
                 "parallel map + prefetch": batches * max(batch_size * load_seconds / 8, step_seconds)}
    rate, seen = {}, {}
    for name, (parallel, prefetch) in variants.items():
        ds = pipeline(parallel, prefetch)
        best = 0.0
        for _ in range(2):  # the better of two epochs: other work on the machine only ever slows one down
            labels = []
            for _, label in ds:
                if not labels:  # the steady state is timed: from the first batch's arrival on
                    start = time.perf_counter()
                time.sleep(step_seconds)  # stands for the training step on this batch
                labels.append(label.numpy())
            best = max(best, (batches - 1) / (time.perf_counter() - start))
        rate[name] = lesson.number(f"{name}: batches / s", best)
        seen[name] = np.concatenate(labels)
    lesson.table("Element spec of the pipeline", ("component", "spec"),
                 [("image batch", pipeline(True, True).element_spec[0]),
                  ("label batch", pipeline(True, True).element_spec[1]),
                  ("batches per epoch (cardinality)", int(pipeline(True, True).cardinality()))])
    lesson.table(f"{batches} batches of {batch_size}, {1e3 * load_seconds:.0f} ms load per example, "
                 f"{1e3 * step_seconds:.0f} ms per step",
                 ("pipeline", "batches / s", "predicted batches / s", "speed-up"),
                 [(name, rate[name], batches / predicted[name], rate[name] / rate["sequential"]) for name in variants])

    fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
    names = list(variants)
    ax.barh(names, [rate[n] for n in names], color="tab:blue", label="measured")
    ax.plot([batches / predicted[n] for n in names], names, "k|", ms=18, mew=2, label="predicted by the formula")
    ax.set_xlabel("batches per second")
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)
    ax.set_title(f"batches of {batch_size}: {1e3 * load_seconds:.0f} ms to load each example, "
                 f"{1e3 * step_seconds:.0f} ms per training step", fontsize=9)
    lesson.figure(fig, "throughput", "Batches per second of four versions of one tf.data pipeline: prefetch "
                  "overlaps loading with training, a parallel map loads 8 examples at once, together they hide "
                  "the loading.")
    same = all(np.array_equal(seen[name], seen["sequential"]) for name in variants)
    lesson.check("all four pipelines yield the same examples in the same order (deterministic parallel map)", same)
    gain = {name: rate[name] / rate["sequential"] for name in variants}
    lesson.check("prefetch alone and a parallel map alone are each over 1.3x faster than the sequential pipeline "
                 "(the formula: 1.9x and 1.8x)", gain["prefetch(2)"] > 1.3 and gain["map(num_parallel_calls=8)"] > 1.3,
                 f"{gain['prefetch(2)']:.2f}x and {gain['map(num_parallel_calls=8)']:.2f}x")
    lesson.check("with both, the loading is hidden: over 1.6x faster than sequential (the formula: 2.1x, the "
                 "training step's own speed)", gain["parallel map + prefetch"] > 1.6,
                 f"{gain['parallel map + prefetch']:.2f}x; {rate['parallel map + prefetch']:.1f} batches/s, "
                 f"the step alone allows {1 / step_seconds:.1f}")


@atlas_entry(
    56,
    formula=r"\mathcal L = \frac1N \sum_{i=1}^N -\,w_{t,i}\,(1 - p_{t,i})^\gamma \log p_{t,i},\qquad "
    r"p_t = \begin{cases} p & y = 1 \\ 1 - p & y = 0 \end{cases},\quad "
    r"w_t = \begin{cases} \alpha & y = 1 \\ 1 - \alpha & y = 0 \end{cases}",
    see=("tfdl.losses.BinaryFocalLoss", "tfdl.losses.SparseCategoricalFocalLoss", "tfdl.losses.DiceLoss"),
)
def custom_loss_function(lesson: Lesson) -> None:
    """A loss is any differentiable function of the labels and the model's outputs that
    returns a number per example; Keras averages it over the batch and
    `GradientTape` differentiates it. TensorFlow gives two ways to write one:

    - **A function** `loss(y_true, y_pred)` written with `keras.ops` (or `tf`)
      operations, returning one value per example, passed as
      `model.compile(loss=loss)`. Quick, but a model saved with it needs the function
      again at load time (`custom_objects=`), and it cannot carry settings except by
      closure.
    - **A subclass of `keras.losses.Loss`** that takes its settings in `__init__`,
      computes per-example values in `call(y_true, y_pred)`, and returns every
      setting from `get_config`. Registered with
      `keras.saving.register_keras_serializable`, it is saved inside the `.keras`
      file with its settings and loads with `safe_mode=True`; `Loss` handles the
      reduction over the batch and `sample_weight` for it.

    Either way, use only tensor operations (no numpy, no Python `if` on tensor values)
    so that gradients flow and the loss runs inside `tf.function`; clip probabilities
    or work from logits so a `log(0)` cannot appear. tfdl's losses (focal,
    Dice, masked cross-entropy) are registered `Loss` subclasses. The example writes
    the binary focal loss as a function, checks it and tfdl's `BinaryFocalLoss`
    against the formula in numpy and against each other's gradients, trains a model
    with the class on imbalanced data, and saves and reloads the model with its loss.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf
    from keras import ops

    from tfdl.losses import BinaryFocalLoss

    def focal_loss(y_true, y_pred, alpha=0.25, gamma=2.0):  # the same loss as a plain function
        y_pred = ops.clip(y_pred, 1e-7, 1 - 1e-7)
        p_t = y_true * y_pred + (1 - y_true) * (1 - y_pred)
        w_t = y_true * alpha + (1 - y_true) * (1 - alpha)
        return ops.mean(-w_t * (1 - p_t) ** gamma * ops.log(p_t), axis=-1)

    def by_numpy(y, p, alpha=0.25, gamma=2.0):  # the formula, independently
        p = np.clip(p, 1e-7, 1 - 1e-7)
        p_t = np.where(y == 1, p, 1 - p)
        return np.mean(-np.where(y == 1, alpha, 1 - alpha) * (1 - p_t) ** gamma * np.log(p_t))

    rng = np.random.default_rng(lesson.seed)
    y_check = (rng.random((256, 1)) < 0.3).astype("float32")
    p_check = rng.random((256, 1)).astype("float32")
    reference = by_numpy(y_check, p_check)
    class_error = abs(float(BinaryFocalLoss()(y_check, p_check)) - reference) / reference
    function_error = abs(float(ops.mean(focal_loss(y_check, p_check))) - reference) / reference
    lesson.number("relative error, BinaryFocalLoss vs numpy", class_error)
    lesson.number("relative error, the function vs numpy", function_error)

    # An imbalanced problem: 10% positives, shifted to the upper right.
    n = 2000
    y = (rng.random(n) < 0.1).astype("float32")[:, None]
    x = (rng.normal(size=(n, 2)) + 1.8 * y).astype("float32")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    # What training uses is the gradient: the function's and the class's agree on every weight.
    gradients = {}
    for name, loss in (("BinaryFocalLoss", BinaryFocalLoss(alpha=0.25, gamma=2.0)),
                       ("function", lambda labels, outputs: ops.mean(focal_loss(labels, outputs)))):
        with tf.GradientTape() as tape:
            value = loss(y, model(x))
        gradients[name] = tape.gradient(value, model.trainable_variables)
    gradient_gap = max(float(np.abs(a - b).max() / np.abs(b).max())
                       for a, b in zip(gradients["function"], gradients["BinaryFocalLoss"]))
    lesson.number("largest relative gradient difference, function vs class", gradient_gap)

    model.compile(keras.optimizers.Adam(0.02), loss=BinaryFocalLoss(alpha=0.25, gamma=2.0))
    feed = tf.data.Dataset.from_tensor_slices((x, y)).batch(100)
    history = model.fit(feed, epochs=lesson.budget(6, 30), shuffle=False, verbose=0).history["loss"]

    path = lesson.out_dir / "focal_model.keras"
    lesson.out_dir.mkdir(parents=True, exist_ok=True)
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)  # no custom_objects: the loss is registered
    before = float(model.loss(y, model(x)))
    after = float(loaded.loss(y, loaded(x)))
    path.unlink()
    lesson.table("The loss inside the reloaded .keras file", ("", "value"), [
        ("type", type(loaded.loss).__name__),
        ("alpha, gamma", f"{loaded.loss.alpha}, {loaded.loss.gamma}"),
        ("loss on the data before saving", before),
        ("loss on the data after loading", after),
    ])

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
    p_t = np.linspace(0.01, 1, 200)
    for gamma in (0, 0.5, 2, 5):
        label = f"γ = {gamma}" + (" (cross-entropy)" if gamma == 0 else "")
        axes[0].plot(p_t, -(1 - p_t) ** gamma * np.log(p_t), label=label)
    axes[0].set_xlabel("$p_t$, probability given to the true class")
    axes[0].set_ylabel("loss per example (α omitted)")
    axes[0].set_ylim(0, 3)
    axes[0].set_title("focal loss down-weights easy examples", fontsize=9)
    axes[0].legend(fontsize=8)
    axes[1].plot(range(1, len(history) + 1), history, "-o")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("training loss")
    axes[1].set_title("training with BinaryFocalLoss, 10% positives", fontsize=9)
    lesson.figure(fig, "focal", "Left: the focal loss against p_t for several γ. Right: a small classifier "
                  "trained with tfdl's BinaryFocalLoss on imbalanced data.")
    lesson.check("BinaryFocalLoss and the plain function both equal the formula in numpy (relative error < 1e-5)",
                 class_error < 1e-5 and function_error < 1e-5, f"{class_error:.1e}, {function_error:.1e}")
    lesson.check("the function and the class give the same gradient for every weight (relative difference < 1e-5)",
                 gradient_gap < 1e-5, f"{gradient_gap:.1e}")
    lesson.check("training with BinaryFocalLoss halves the loss", history[-1] < 0.5 * history[0],
                 f"{history[0]:.4f} -> {history[-1]:.4f}")
    lesson.check("the .keras file reloads with safe_mode=True and the same loss (type, settings, value)",
                 isinstance(loaded.loss, BinaryFocalLoss) and loaded.loss.get_config() == model.loss.get_config()
                 and abs(after - before) < 1e-6,
                 f"{before:.6f} before, {after:.6f} after")


_PYTORCH_DATALOADER = r"""
The same job in PyTorch: a map-style `Dataset` reads one example by index, and a
`DataLoader` shuffles the indices each epoch, calls the dataset in worker processes,
collates examples into batches and prefetches:

```python
import torch
from torch.utils.data import DataLoader, Dataset


class Digits(Dataset):
    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):  # one example, in a worker process
        image = torch.as_tensor(self.images[index], dtype=torch.float32) / 16.0
        if torch.rand(()) < 0.5:
            image = image.flip(-1)
        return image, int(self.labels[index])


loader = DataLoader(Digits(images, labels), batch_size=32, shuffle=True, num_workers=8,
                    prefetch_factor=2, persistent_workers=True,
                    generator=torch.Generator().manual_seed(0))
for epoch in range(2):
    for x, y in loader:  # every example once per epoch, in a new order
        ...
```

| | `torch.utils.data.DataLoader` | `tf.data.Dataset` |
|---|---|---|
| model of the data | indices drawn by a `Sampler`; `Dataset.__getitem__(i)` returns one example | a stream of elements, transformed by a chain of stages |
| parallel work | `num_workers` processes, each running Python (no GIL contention; examples are pickled between processes) | threads of TensorFlow's C++ runtime: `map(..., num_parallel_calls=)`, on a pool sized to the cores unless `options.threading.private_threadpool_size` says more; Python inside a map (`tf.numpy_function`) takes the GIL |
| shuffling | a full random permutation of the indices each epoch | `shuffle(buffer_size)`: uniform only when the buffer holds the whole dataset; reshuffled each epoch by default |
| batching | `collate_fn` stacks examples; `drop_last` | `batch()` / `padded_batch()` / `bucket_by_sequence_length`; `drop_remainder` |
| read-ahead | `prefetch_factor` batches per worker | `prefetch(n)` / `AUTOTUNE` anywhere in the chain |
| caching, files | yours to write; `IterableDataset` for streams | `cache()`, `TFRecordDataset`, `interleave` over many files |
| many devices | `DistributedSampler` | `tf.distribute` shards the dataset (by file or by element) |

tfdl's feeds (`tfdl.pipelines.make_feed`) are such `tf.data` chains: load in parallel,
cache, shuffle with a seed, batch, augment, prefetch.
"""


@atlas_entry(
    57,
    see=("tfdl.pipelines.make_feed", "tfdl.pipelines.make_dataset", "tfdl.pipelines.feed_options"),
    pytorch=_PYTORCH_DATALOADER,
)
def pytorch_dataloader(lesson: Lesson) -> None:
    """PyTorch's **`DataLoader`** feeds a training loop. It wraps a `Dataset` — an
    object with `__len__` and `__getitem__(i)` returning one example — and each epoch
    draws a fresh random permutation of the indices (`shuffle=True`), fetches the
    examples in `num_workers` background processes, stacks them into batches with a
    `collate_fn`, and keeps `prefetch_factor` batches ready per worker, so the model
    rarely waits for data. Iterating over it again starts a new epoch in a new order.

    In TensorFlow the same job is done by a **`tf.data` pipeline**:
    `from_tensor_slices` (or a file source) for the examples, `shuffle` for the
    order (reshuffled each epoch), `map(load, num_parallel_calls=...)` for the
    per-example work in parallel threads, `batch` for collation and `prefetch` for
    read-ahead; `model.fit` iterates it once per epoch. The semantics match; the
    machinery differs (threads in TensorFlow's runtime rather than Python processes,
    a shuffle buffer rather than a permutation of indices), as tabled below.

    The example feeds digit images whose per-example read takes 2 ms (standing for a
    file read) two ways: a plain Python generator that does what `DataLoader` with
    `num_workers=0` does, and a `tf.data` pipeline with a parallel map and prefetch.
    It measures examples per second and checks that each epoch of each feed delivers
    every example exactly once, in a new order.
    """
    import time

    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.pipelines import load_sklearn_dataset

    digits = load_sklearn_dataset("digits")
    count, batch_size, epochs = lesson.budget(192, 1024), 32, 2
    images = digits.features[:count].reshape(-1, 8, 8).astype("float32")

    def read(index):  # one example by index, as Dataset.__getitem__; the sleep stands for a file read
        time.sleep(0.002)
        return images[index]

    def python_batches(rng):  # what DataLoader(shuffle=True, num_workers=0) does, in plain Python
        order = rng.permutation(count)
        for start in range(0, count, batch_size):
            chosen = order[start:start + batch_size]
            batch = np.stack([read(i) for i in chosen]) / 16.0
            flips = rng.random(len(chosen)) < 0.5
            batch[flips] = batch[flips, :, ::-1]
            yield batch, chosen

    def load(index):
        image = tf.numpy_function(read, [index], tf.float32, stateful=False)
        image = tf.reshape(image, (8, 8)) / 16.0
        flip = tf.random.stateless_uniform((), seed=tf.stack([tf.cast(index, tf.int32), lesson.seed])) < 0.5
        return tf.where(flip, tf.reverse(image, axis=[1]), image), index

    # Parallel stages share a thread pool sized to the CPU cores; reads that wait on I/O rather than
    # compute can use more threads than cores, as DataLoader's num_workers can exceed them.
    options = tf.data.Options()
    options.threading.private_threadpool_size = 8
    pipeline = (tf.data.Dataset.range(count)
                .shuffle(count, seed=lesson.seed, reshuffle_each_iteration=True)  # the whole set: a permutation
                .map(load, num_parallel_calls=8)
                .batch(batch_size)
                .prefetch(tf.data.AUTOTUNE)
                .with_options(options))

    rng = np.random.default_rng(lesson.seed)
    feeds = {"Python generator (DataLoader, num_workers=0)": lambda: python_batches(rng),
             "tf.data: shuffle, parallel map, batch, prefetch": lambda: pipeline}
    speed, orders = {}, {}
    for name, feed in feeds.items():
        orders[name] = []
        start = time.perf_counter()
        for _ in range(epochs):
            seen = [np.asarray(indices) for _, indices in feed()]
            orders[name].append(np.concatenate(seen))
        speed[name] = lesson.number(f"{name}: examples / s", epochs * count / (time.perf_counter() - start))

    rows, complete, reshuffled = [], True, True
    for name, epoch_orders in orders.items():
        for epoch, order in enumerate(epoch_orders, start=1):
            once = bool(np.array_equal(np.sort(order), np.arange(count)))
            complete &= once
            rows.append((name, epoch, once, " ".join(str(i) for i in order[:8]) + " ..."))
        reshuffled &= not np.array_equal(epoch_orders[0], epoch_orders[1])
    lesson.table("Each epoch's order", ("feed", "epoch", "every example exactly once", "first indices"), rows)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained",
                             gridspec_kw={"width_ratios": [1.2, 1]})
    for epoch, order in enumerate(orders["tf.data: shuffle, parallel map, batch, prefetch"], start=1):
        axes[0].plot(order, ".", ms=3, label=f"epoch {epoch}")
    axes[0].set_xlabel("position in the epoch")
    axes[0].set_ylabel("example index")
    axes[0].set_title("tf.data: every index once per epoch, a new order", fontsize=9)
    axes[0].legend(fontsize=8)
    axes[1].barh(["Python\ngenerator", "tf.data"], list(speed.values()), color=["tab:orange", "tab:blue"])
    axes[1].set_xlabel("examples / s")
    axes[1].set_title("2 ms read per example", fontsize=9)
    lesson.figure(fig, "feeds", "Left: the order in which the tf.data pipeline delivered the examples in two "
                  "epochs. Right: examples per second of the two feeds.")
    lesson.check("every epoch of both feeds delivers every example exactly once, and the second epoch's order "
                 "differs from the first", complete and reshuffled)
    python_speed, pipeline_speed = speed.values()
    lesson.check("the tf.data pipeline, reading 8 examples at a time, is over 2x faster than the Python generator",
                 pipeline_speed > 2 * python_speed,
                 f"{pipeline_speed:.0f} vs {python_speed:.0f} examples/s ({pipeline_speed / python_speed:.1f}x)")


_PYTORCH_MODULE = r"""
The same two classes as PyTorch modules:

```python
import torch
from torch import nn


class GatedLinear(nn.Module):
    def __init__(self, in_features: int, units: int):
        super().__init__()
        self.linear = nn.Linear(in_features, 2 * units)  # the input size is needed now

    def forward(self, x):
        value, gate = self.linear(x).chunk(2, dim=-1)
        return value * torch.sigmoid(gate)


class DigitsNet(nn.Module):
    def __init__(self, hidden: int = 32, classes: int = 10):
        super().__init__()
        self.gated = GatedLinear(64, hidden)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.out(self.gated(x))  # logits: nn.CrossEntropyLoss applies the softmax


model = DigitsNet()
print(sum(p.numel() for p in model.parameters()))  # 4490
for name, p in model.named_parameters():
    print(name, tuple(p.shape))  # gated.linear.weight (64, 64): (out, in), transposed to Keras's kernel
torch.save(model.state_dict(), "digits_net.pt")
restored = DigitsNet()  # the code rebuilds the architecture; the file holds tensors only
restored.load_state_dict(torch.load("digits_net.pt", weights_only=True))
```

| | `torch.nn.Module` | `keras.layers.Layer` / `keras.Model` |
|---|---|---|
| methods | `__init__`, `forward` | `__init__`, `build(input_shape)`, `call`, `get_config` |
| weights created | in `__init__`, so input sizes are arguments (`nn.LazyLinear` defers them) | in `build`, from the first input's shape |
| weights registered by | assigning `nn.Parameter`s and submodules to attributes | `add_weight` and assigning layers to attributes |
| listing them | `parameters()`, `named_parameters()`, `state_dict()` | `weights`, `trainable_weights`, `get_weights()` |
| dense weight layout | `weight` is `(out, in)`, `y = x Wᵀ + b` | `kernel` is `(in, out)`, `y = x W + b` |
| training mode | a flag on the module: `train()` / `eval()` | the `training` argument of `call` |
| saved | the `state_dict` (tensors); your code rebuilds the object | `.keras`: the config from `get_config` plus the weights; `load_model` rebuilds the object from a registered class |
"""


@atlas_entry(
    58,
    formula=r"\mathrm{GatedDense}(x) = (x W_v + b_v) \odot \sigma(x W_g + b_g)",
    see=("tfdl.layers.ResidualBlock", "tfdl.layers.TransformerEncoderBlock", "tfdl.layers.Sampling"),
    pytorch=_PYTORCH_MODULE,
)
def pytorch_custom_module(lesson: Lesson) -> None:
    """In PyTorch a custom layer or model is a subclass of **`torch.nn.Module`**: its
    `__init__` creates the parameters (`nn.Parameter`) and sub-modules and assigns them
    to attributes, which registers them; its `forward(x)` computes the output from
    them with any Python. `model.parameters()` then yields every weight for the
    optimizer, `state_dict()` holds them for saving, and `train()` / `eval()` switch
    dropout and batch normalization. Modules nest: a model is a module of modules.

    Keras has the same design in two classes. A **`keras.layers.Layer`** subclass
    stores its settings in `__init__`, creates its weights in `build(input_shape)`
    with `add_weight` — from the shape of the first input it sees, so no input size is
    passed — computes in `call(inputs, training=None)`, and returns its settings from
    `get_config`. A **`keras.Model`** subclass composes layers the same way and adds
    `compile`, `fit`, `evaluate`, `predict` and `save`. Registered with
    `keras.saving.register_keras_serializable`, both round-trip through a `.keras`
    file: Keras rebuilds the objects from their configs and loads the weights into
    them. tfdl's layers (`ResidualBlock`, the transformer blocks, `Sampling`) are
    written this way.

    The example writes a gated dense layer and a small model from it, shows the
    weights appear at the first call with the shapes `build` derives, checks the
    layer against its formula in numpy, trains the model on digits, and reloads it
    from a `.keras` file with identical outputs.
    """
    import keras
    import numpy as np
    import tensorflow as tf
    from keras import ops

    from tfdl.pipelines import load_sklearn_dataset

    @keras.saving.register_keras_serializable(package="atlas")
    class GatedDense(keras.layers.Layer):
        """`(x W_v + b_v) * sigmoid(x W_g + b_g)`, with `units` outputs."""

        def __init__(self, units: int, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):  # weights from the input's size, known only now
            self.kernel = self.add_weight(shape=(input_shape[-1], 2 * self.units), initializer="glorot_uniform",
                                          name="kernel")
            self.bias = self.add_weight(shape=(2 * self.units,), initializer="zeros", name="bias")

        def call(self, inputs):
            value, gate = ops.split(ops.matmul(inputs, self.kernel) + self.bias, 2, axis=-1)
            return value * ops.sigmoid(gate)

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    @keras.saving.register_keras_serializable(package="atlas")
    class DigitsNet(keras.Model):
        def __init__(self, hidden: int = 32, classes: int = 10, **kwargs):
            super().__init__(**kwargs)
            self.hidden, self.classes = hidden, classes
            self.gated = GatedDense(hidden)
            self.out = keras.layers.Dense(classes, activation="softmax")

        def call(self, inputs):
            return self.out(self.gated(inputs))

        def get_config(self):
            return {**super().get_config(), "hidden": self.hidden, "classes": self.classes}

    digits = load_sklearn_dataset("digits")
    x, y = (digits.features / 16.0).astype("float32"), digits.labels
    model = DigitsNet(hidden=32, classes=10, name="digits_net")
    weights_before_call = len(model.weights)
    model(x[:1])  # the first call builds every layer
    lesson.table("Weights after the first call (what named_parameters() lists in PyTorch)",
                 ("weight", "shape", "trainable"),
                 [(w.path, tuple(w.shape), w.trainable) for w in model.weights])
    expected = (64 + 1) * 2 * 32 + (32 + 1) * 10
    lesson.number("parameters", model.count_params())

    # The layer against its formula, in numpy.
    kernel, bias = model.gated.kernel.numpy(), model.gated.bias.numpy()
    z = x[:100] @ kernel + bias
    by_numpy = z[:, :32] / (1 + np.exp(-z[:, 32:]))
    formula_error = lesson.number("largest |GatedDense - numpy formula|",
                                  float(np.abs(model.gated(x[:100]).numpy() - by_numpy).max()))

    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    feed = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=lesson.seed).batch(64)
    model.fit(feed, epochs=lesson.budget(3, 10), shuffle=False, verbose=0)
    accuracy = lesson.number("training accuracy", float(np.mean(model(x).numpy().argmax(-1) == y)))

    path = lesson.out_dir / "digits_net.keras"
    lesson.out_dir.mkdir(parents=True, exist_ok=True)
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)  # rebuilt from the registered classes' configs
    path.unlink()
    difference = lesson.number("largest |reloaded output - original output|",
                               float(np.abs(loaded(x).numpy() - model(x).numpy()).max()))
    lesson.table("After the .keras round trip", ("", "original", "reloaded"), [
        ("class", type(model).__name__, type(loaded).__name__),
        ("its GatedDense layer", type(model.gated).__name__, type(loaded.gated).__name__),
        ("config: hidden, classes", *(f"{m.get_config()['hidden']}, {m.get_config()['classes']}" for m in (model, loaded))),
        ("parameters", model.count_params(), loaded.count_params()),
    ])
    lesson.check("no weights exist before the first call; after it, build has made (64+1)·64 + (32+1)·10 = 4490",
                 weights_before_call == 0 and model.count_params() == expected
                 and tuple(model.gated.kernel.shape) == (64, 64), f"{weights_before_call} -> {model.count_params()}")
    lesson.check("the layer computes its formula (max error < 1e-5 against numpy)", formula_error < 1e-5,
                 f"{formula_error:.1e}")
    lesson.check("the model trains (training accuracy >= 0.9)", accuracy >= 0.9, f"{accuracy:.3f}")
    lesson.check("it reloads from .keras with safe_mode=True as the same classes, config and outputs (difference 0)",
                 isinstance(loaded, DigitsNet) and isinstance(loaded.gated, GatedDense) and difference == 0.0
                 and loaded.get_config() == model.get_config(), f"{difference:.1e}")


_PYTORCH_OPTIM = r"""
The same step in PyTorch, for any optimizer of `torch.optim`:

```python
import torch

model = torch.nn.Linear(5, 1)
optimizer = torch.optim.Adam(model.parameters(), lr=0.05)  # or SGD(..., lr=0.05, momentum=0.9, nesterov=True)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=100, gamma=0.5)

for x, y in loader:
    optimizer.zero_grad()  # gradients accumulate in .grad otherwise
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
    scheduler.step()  # schedules are separate objects that edit optimizer.param_groups

torch.save(optimizer.state_dict(), "optimizer.pt")  # momentum buffers, Adam moments, step count
```

| | `torch.optim` | `keras.optimizers` |
|---|---|---|
| which weights | given at construction: `Adam(model.parameters())`, or param groups with their own settings | given at each step: `apply_gradients(zip(grads, variables))`; built on first use |
| gradients | read from each parameter's `.grad`; `zero_grad()` between steps | passed in as values from `tf.GradientTape`; nothing to clear |
| learning-rate schedule | an `lr_scheduler` object you `step()` | a `LearningRateSchedule` passed as `learning_rate`, read from the step count |
| momentum form | `b ← μb + g`, `w ← w − ηb` | `v ← μv − ηg`, `w ← w + v`: the same iterates for a fixed η (`v = −ηb`) |
| Adam's ε | added to $\sqrt{\hat v_t}$, default `1e-8` | added to $\sqrt{v_t}$ before the bias correction, default `1e-7` (the example measures the difference) |
| weight decay | `weight_decay=` adds `λw` to the gradient (L2); `AdamW` decouples it | `weight_decay=` is decoupled in every Keras optimizer |
| state | `optimizer.state_dict()` | `optimizer.variables`, saved inside a `.keras` file with the model |
"""


@atlas_entry(
    59,
    formula=r"\begin{aligned}"
    r"&\text{SGD: } w \leftarrow w - \eta g \qquad "
    r"\text{momentum: } v \leftarrow \mu v - \eta g,\ \ w \leftarrow w + v \qquad "
    r"\text{Nesterov: } w \leftarrow w + \mu v - \eta g \\"
    r"&\text{Adam: } m \leftarrow \beta_1 m + (1 - \beta_1) g,\ \ s \leftarrow \beta_2 s + (1 - \beta_2) g^2,\ \ "
    r"w \leftarrow w - \eta \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t} \frac{m}{\sqrt{s} + \epsilon}"
    r"\end{aligned}",
    see=("tfdl.training.make_optimizer", "tfdl.training.OptimizerConfig", "tfdl.training.ScheduleConfig"),
    pytorch=_PYTORCH_OPTIM,
)
def pytorch_optim(lesson: Lesson) -> None:
    """**`torch.optim`** is PyTorch's package of optimization algorithms: `SGD` (with
    momentum, Nesterov and weight decay), `Adam`, `AdamW`, `RMSprop`, `Adagrad`,
    `LBFGS` and more, plus `lr_scheduler` for changing the learning rate during
    training. An optimizer is constructed with the parameters it updates; after
    `loss.backward()` has filled each parameter's `.grad`, `optimizer.step()` applies
    the algorithm's update rule to every parameter, keeping per-parameter state
    (momentum buffers, Adam's moment estimates) between steps, and `zero_grad()`
    clears the gradients for the next step.

    TensorFlow's counterpart is **`keras.optimizers`** (`SGD`, `Adam`, `AdamW`,
    `RMSprop`, ...): the gradients come from a `tf.GradientTape` and
    `optimizer.apply_gradients(zip(gradients, variables))` is the `step()`; `fit`
    calls both for you. The algorithms are the same, written in slightly different but
    equivalent forms, with two differences that change numbers: Keras adds Adam's
    $\\epsilon$ before the bias correction (and defaults it to $10^{-7}$), and its
    `weight_decay` is always decoupled. tfdl builds its optimizers from a typed config
    (`OptimizerConfig` → `make_optimizer`).

    The example runs SGD, momentum, Nesterov momentum and Adam from tfdl's configs on
    a linear regression, with gradients from `GradientTape` and steps by
    `apply_gradients`, and repeats every step in numpy from the update rules, with the
    gradient written by hand — in Keras's form and in PyTorch's.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.training import OptimizerConfig, make_optimizer

    rng = np.random.default_rng(lesson.seed)
    x = rng.normal(size=(128, 5)) * np.array([0.2, 0.5, 1.0, 2.0, 3.0])  # badly scaled features
    y = x @ rng.normal(size=5) + 0.5 + 0.1 * rng.normal(size=128)
    start = np.zeros(6)  # five weights and a bias
    steps = lesson.budget(60, 200)
    configs = {
        "SGD": OptimizerConfig(name="sgd", learning_rate=0.05),
        "SGD, momentum 0.9": OptimizerConfig(name="sgd", learning_rate=0.05, momentum=0.9),
        "SGD, Nesterov 0.9": OptimizerConfig(name="sgd", learning_rate=0.05, momentum=0.9, nesterov=True),
        "Adam": OptimizerConfig(name="adam", learning_rate=0.05),
    }

    def gradient(w):  # of the mean squared error, by hand
        residual = x @ w[:5] + w[5] - y
        return np.concatenate([2 * x.T @ residual, [2 * residual.sum()]]) / len(y)

    def mse(w):
        return float(np.mean((x @ w[:5] + w[5] - y) ** 2))

    def numpy_path(name, config, pytorch_form=False):
        w, v, m, s = start.copy(), np.zeros(6), np.zeros(6), np.zeros(6)
        # Keras holds the learning rate in a float32 variable and casts μ and β from float32 numbers:
        # both forms use those same roundings, to compare to machine precision.
        def f32(value):
            return float(np.float32(value))

        lr, mu, b1, b2, path = f32(config.learning_rate), f32(config.momentum), f32(0.9), f32(0.999), [start.copy()]
        for t in range(1, steps + 1):
            g = gradient(w)
            if name == "SGD":
                w = w - lr * g
            elif not name.startswith("Adam") and not pytorch_form:  # Keras: v <- mu v - lr g
                v = mu * v - lr * g
                w = w + (mu * v - lr * g if config.nesterov else v)
            elif not name.startswith("Adam"):  # PyTorch: b <- mu b + g
                v = mu * v + g
                w = w - lr * (g + mu * v if config.nesterov else v)
            else:
                m = 0.9 * m + 0.1 * g
                s = 0.999 * s + 0.001 * g * g
                if pytorch_form:  # epsilon 1e-8 on the bias-corrected sqrt(s)
                    w = w - lr * (m / (1 - 0.9**t)) / (np.sqrt(s / (1 - 0.999**t)) + 1e-8)
                else:  # Keras: epsilon 1e-7 before the bias correction
                    w = w - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(s) + 1e-7)
            path.append(w.copy())
        return np.array(path)

    def keras_path(config):
        weights = tf.Variable(start[:5, None], dtype=tf.float64)
        bias = tf.Variable(start[5:], dtype=tf.float64)
        optimizer = make_optimizer(config)
        features, targets = tf.constant(x), tf.constant(y[:, None])
        path = [start.copy()]
        for _ in range(steps):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean((features @ weights + bias - targets) ** 2)
            gradients = tape.gradient(loss, [weights, bias])
            optimizer.apply_gradients(zip(gradients, [weights, bias]))
            path.append(np.concatenate([weights.numpy()[:, 0], bias.numpy()]))
        return np.array(path)

    rows, worst, forms, curves = [], 0.0, {}, {}
    for name, config in configs.items():
        by_keras, by_numpy = keras_path(config), numpy_path(name, config)
        by_pytorch_form = numpy_path(name, config, pytorch_form=True)
        error = float(np.abs(by_keras - by_numpy).max() / np.abs(by_numpy).max())
        form_gap = float(np.abs(by_pytorch_form - by_numpy).max())
        worst, forms[name] = max(worst, error), form_gap
        curves[name] = ([mse(w) for w in by_keras], [mse(w) for w in by_numpy])
        rows.append((name, error, form_gap, curves[name][0][-1]))
    lesson.table(f"{steps} steps on a linear regression (float64)",
                 ("optimizer", "Keras vs numpy update rule (relative)", "Keras form vs PyTorch form (absolute)",
                  "final loss"), rows)
    lesson.number("largest relative difference, Keras optimizers vs numpy", worst)
    lesson.number("Adam: largest difference between the epsilon conventions", forms["Adam"])

    fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
    for name, (keras_losses, numpy_losses) in curves.items():
        line, = ax.semilogy(keras_losses, label=f"{name} (Keras)")
        ax.semilogy(range(0, steps + 1, 4), numpy_losses[::4], "o", color=line.get_color(), ms=4, mfc="none")
    ax.set_xlabel("step")
    ax.set_ylabel("mean squared error")
    ax.set_title("lines: keras.optimizers + GradientTape; circles: the update rules in numpy", fontsize=9)
    ax.legend(fontsize=8)
    lesson.figure(fig, "optimizers", "Four optimizers on a linear regression: Keras's iterates (lines) and the "
                  "update rules computed in numpy (circles) coincide.")
    lesson.check("every Keras optimizer follows its update rule computed in numpy (relative difference < 1e-9)",
                 worst < 1e-9, f"{worst:.1e}")
    momentum_gap = max(forms[name] for name in ("SGD, momentum 0.9", "SGD, Nesterov 0.9"))
    lesson.check("Keras's and PyTorch's ways of writing momentum give the same iterates (< 1e-9)",
                 momentum_gap < 1e-9, f"{momentum_gap:.1e}")
    lesson.check("their Adam epsilon conventions give different iterates (by over 1e-9), though by under 1e-4 here",
                 1e-9 < forms["Adam"] < 1e-4,
                 f"{forms['Adam']:.1e}")
    lesson.check("momentum and Adam reach a lower loss than plain SGD in the same steps",
                 max(curves[name][0][-1] for name in ("SGD, momentum 0.9", "Adam")) < curves["SGD"][0][-1],
                 ", ".join(f"{name} {curves[name][0][-1]:.4f}" for name in configs))


_PYTORCH_SAVING = r"""
The PyTorch ways to save and load, beside the Keras ones the example runs:

```python
import torch

# 1. The recommended way: the state_dict (a dict of tensors); your code rebuilds the model.
torch.save(model.state_dict(), "model.pt")
model = DigitsNet()
model.load_state_dict(torch.load("model.pt", weights_only=True))
model.eval()  # before inference: dropout off, batch norm on its running statistics

# 2. A checkpoint to resume training: model and optimizer state, and where you were.
torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}, "checkpoint.pt")
checkpoint = torch.load("checkpoint.pt", weights_only=True)
model.load_state_dict(checkpoint["model"])
optimizer.load_state_dict(checkpoint["optimizer"])

# 3. The whole object, pickled: needs the same class definitions importable at load time,
#    and loading a pickle runs code from the file (weights_only=False), so never load untrusted ones.
torch.save(model, "model_object.pt")

# 4. For serving without the Python class: a graph.
torch.export.save(torch.export.export(model, (torch.randn(1, 64),)), "model.pt2")
```

| job | PyTorch | Keras / TensorFlow (tfdl) |
|---|---|---|
| weights only | `torch.save(model.state_dict())` + `load_state_dict` | `model.save_weights("m.weights.h5")` + `load_weights` into a rebuilt model |
| resume training | a dict of model and optimizer `state_dict`s you assemble | `model.save("m.keras")`: architecture, weights, compile settings and optimizer state in one file; `keras.callbacks.BackupAndRestore` / `ModelCheckpoint` during `fit` |
| whole model | pickled object (`weights_only=False`; runs code on load) | `.keras` is a zip of JSON config and weights, no pickle: `load_model(safe_mode=True)` rebuilds registered classes |
| serve without Python code | `torch.export` / TorchScript, ONNX | SavedModel (`model.export`, `tfdl.export.export_saved_model`): graph + weights with named signatures, for TensorFlow Serving, TFLite conversion, `tf.saved_model.load` |
| inference mode | call `model.eval()` yourself | `predict` and serving signatures run with `training=False` |
"""


@atlas_entry(
    60,
    see=("tfdl.export.export_saved_model", "tfdl.export.export_serving_model", "tfdl.export.check_parity",
         "tfdl.training.BackupConfig"),
    configs=("digits_mlp",),
    pytorch=_PYTORCH_SAVING,
)
def pytorch_saving_and_loading(lesson: Lesson) -> None:
    """PyTorch saves with **`torch.save`**, which pickles any Python object, and loads
    with **`torch.load`**. The recommended unit is the model's `state_dict()` — an
    ordered dict from parameter and buffer names to tensors — saved on its own; to
    load, you construct the model from your code and call `load_state_dict`, then
    `model.eval()` before inference. To resume training, save a checkpoint dict with
    the optimizer's `state_dict` (momentum buffers, Adam moments, step count), the
    epoch and anything else the loop needs. Pickling the whole model also works but
    ties the file to your class definitions and runs code when loaded, so
    `torch.load(weights_only=True)` is the safe default. For serving without Python,
    `torch.export` (or TorchScript, ONNX) saves a graph.

    Keras and TensorFlow split the same jobs across three formats. **`model.save("m.keras")`**
    writes one zip with the architecture (each layer's config), the weights, the
    compile settings and the optimizer's state: `keras.models.load_model` rebuilds
    the model, ready to continue training, with no pickle involved. **`save_weights`**
    writes only the weights (`.weights.h5`), for a model your code rebuilds — the
    `state_dict` counterpart. A **SavedModel** (`model.export`, tfdl's
    `export_saved_model`) stores the computation as a graph with named serving
    signatures, which TensorFlow Serving, the TFLite converter and
    `tf.saved_model.load` run without the model's Python code.

    The example trains a digits classifier, saves it all three ways, and reloads each:
    identical predictions from all three, and only the `.keras` file brings the
    optimizer back, so training resumes from it exactly as if never interrupted.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from tfdl.export import export_saved_model
    from tfdl.models import build_model
    from tfdl.pipelines import load_sklearn_dataset

    digits = load_sklearn_dataset("digits")
    x, y = (digits.features / 16.0).astype("float32"), digits.labels
    feed = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)

    def build():
        return build_model("mlp", {"input_shape": (64,), "num_classes": 10, "hidden_units": (32, 16)})

    model = build()
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(feed, epochs=lesson.budget(2, 10), shuffle=False, verbose=0)
    reference = model(x).numpy()

    folder = lesson.out_dir / "saved"
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "digits.keras")  # architecture + weights + compile settings + optimizer state
    model.save_weights(folder / "digits.weights.h5")  # weights only
    export_saved_model(model, folder / "digits_savedmodel")  # graph + weights + serving signature

    from_keras = keras.models.load_model(folder / "digits.keras", safe_mode=True)
    from_weights = build()  # the code rebuilds the architecture, as for a state_dict
    from_weights.load_weights(folder / "digits.weights.h5")
    serving = tf.saved_model.load(str(folder / "digits_savedmodel")).signatures["serving_default"]
    predictions = {
        ".keras (keras.models.load_model)": from_keras(x).numpy(),
        ".weights.h5 (load_weights into build())": from_weights(x).numpy(),
        "SavedModel (tf.saved_model.load)": serving(features=tf.constant(x))["probabilities"].numpy(),
    }
    difference = {name: float(np.abs(p - reference).max()) for name, p in predictions.items()}

    def size(path):
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size

    iterations = {"original": int(model.optimizer.iterations), ".keras": int(from_keras.optimizer.iterations)}
    lesson.table("Three formats, reloaded", ("format", "KB", "keeps the architecture", "keeps optimizer state",
                                             "needs the model's Python code", "largest prediction difference"), [
        (".keras", size(folder / "digits.keras") / 1024, "yes (configs)", f"yes ({iterations['.keras']} steps)",
         "only registered custom classes", difference[".keras (keras.models.load_model)"]),
        (".weights.h5", size(folder / "digits.weights.h5") / 1024, "no", "no", "yes: build() first",
         difference[".weights.h5 (load_weights into build())"]),
        ("SavedModel", size(folder / "digits_savedmodel") / 1024, "yes (a graph)", "no (inference graph)",
         "no", difference["SavedModel (tf.saved_model.load)"]),
    ])

    # Resume: one more epoch from the original and from the reloaded .keras model.
    model.fit(feed, epochs=1, shuffle=False, verbose=0)
    from_keras.fit(feed, epochs=1, shuffle=False, verbose=0)
    resumed_gap = lesson.number("largest weight difference, resumed from .keras vs never interrupted",
                                max(float(np.abs(a - b).max()) for a, b in
                                    zip(model.get_weights(), from_keras.get_weights())))
    fresh = build()
    fresh.load_weights(folder / "digits.weights.h5")
    fresh.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    fresh.fit(feed, epochs=1, shuffle=False, verbose=0)
    restarted_gap = lesson.number("largest weight difference, weights-only restart (a fresh Adam) vs never "
                                  "interrupted", max(float(np.abs(a - b).max()) for a, b in
                                                     zip(model.get_weights(), fresh.get_weights())))
    for name, value in difference.items():
        lesson.number(f"{name}: largest prediction difference", value)
    for path in sorted(folder.rglob("*"), reverse=True):  # the artifacts are not part of the page
        path.rmdir() if path.is_dir() else path.unlink()
    folder.rmdir()

    lesson.check("all three formats reload to the same predictions (largest difference < 1e-6)",
                 max(difference.values()) < 1e-6, ", ".join(f"{v:.1e}" for v in difference.values()))
    lesson.check("the .keras file brings back the optimizer: training resumed from it matches training never "
                 "interrupted (difference < 1e-6)", iterations[".keras"] == iterations["original"]
                 and resumed_gap < 1e-6, f"{iterations['.keras']} optimizer steps restored; {resumed_gap:.1e}")
    lesson.check("from weights alone, a fresh optimizer (no Adam moments) trains to different weights (> 1e-3)",
                 restarted_gap > 1e-3, f"{restarted_gap:.2e}")
