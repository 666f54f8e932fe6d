"""SavedModelBackbone: a TF SavedModel or TF Hub model as a Keras 3 layer that can be fine-tuned.

TF Hub's `hub.KerasLayer` is a tf-keras layer and does not work inside a
Keras 3 model, and `keras.layers.TFSMLayer` cannot be fine-tuned (its
variables keep TensorFlow's `name:0` names, which the optimizer refuses as
slot names) nor loaded from a `.keras` file in safe mode. This layer loads
the SavedModel with `tf.saved_model.load` and adopts the very `tf.Variable`s
the loaded function reads as the layer's Keras weights, so the optimizer
updates what the function computes with, `layer.trainable = False` freezes
them, and the `.keras` format and `model.export` save them. TensorFlow
backend only.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras


def _resolve(handle: str) -> str:
    """The local folder of a SavedModel given as a folder or a TF Hub handle (URL)."""
    if "://" not in handle:
        folder = Path(handle).expanduser()
        if not (folder / "saved_model.pb").is_file():
            what = "holds no saved_model.pb" if folder.is_dir() else "does not exist"
            raise ValueError(
                f"SavedModelBackbone: path {handle!r} {what}; pass the folder of a TF SavedModel "
                "(the one holding saved_model.pb) or a TF Hub handle URL."
            )
        return str(folder)
    import tensorflow_hub as hub

    try:
        return hub.resolve(handle)
    except OSError as error:
        cache = os.environ.get("TFHUB_CACHE_DIR", "(unset: a temporary folder)")
        raise ValueError(
            f"SavedModelBackbone: could not fetch the TF Hub handle {handle!r} ({error}). Download it where "
            "there is internet (`python -c \"import tensorflow_hub as hub; print(hub.resolve(HANDLE))\"` "
            "prints the folder it lands in), then either pass that local folder as `path`, or copy the "
            f"cache folder here and point TFHUB_CACHE_DIR at it (now {cache}) so the handle resolves offline."
        ) from None


def _concrete_functions(function) -> list:
    # A restored tf.function holds one concrete function per traced signature;
    # a signature is itself a single concrete function.
    return list(getattr(function, "concrete_functions", [function]))


def _training_value(concrete):
    """The Python value `training` is bound to in `concrete`, or None if it takes no `training`."""
    names = list(concrete.function_type.parameters)
    if "training" not in names:
        return None
    args, kwargs = concrete.structured_input_signature
    index = names.index("training")
    return args[index] if index < len(args) else kwargs.get("training")


def _tensor_inputs(concrete) -> list:
    import tensorflow as tf

    return [spec for spec in tf.nest.flatten(concrete.structured_input_signature) if isinstance(spec, tf.TensorSpec)]


def _variable_name(variable) -> str:
    # Keras names may not hold "/" or ":"; "block1/conv/kernel:0" -> "block1_conv_kernel".
    return variable.name.split(":")[0].replace("/", "_")


@keras.saving.register_keras_serializable(package="tfdl")
class SavedModelBackbone(keras.layers.Layer):
    """Calls a TF SavedModel (or TF Hub model) whose variables are this layer's Keras weights.

    The layer computes `endpoint(inputs)` of the loaded SavedModel and, when
    the endpoint returns a dict, picks `output_key`. Each variable the
    endpoint reads becomes a Keras weight of the layer, trainable when the
    SavedModel marks it trainable: fitting the surrounding model updates them,
    and `layer.trainable = False` freezes them all.

    Batch normalization stays in inference mode: an endpoint that takes a
    `training` argument (the TF Hub reusable SavedModel API, a `tf.Module`
    with `__call__(inputs, training=False)`) is always called with
    `training=False`, so its moving statistics are used and never updated,
    and its dropout is off, while its weights fine-tune. Endpoints without the
    argument (Keras `model.export`'s `serve`, signatures) were traced in
    inference mode already. The layer's own `training` call argument is
    therefore ignored. (Fine-tuning a pretrained network with batch
    statistics from small batches is what wrecks it; the Keras transfer
    learning guide keeps BN in inference mode for the same reason.)

    Saving: `get_config` holds the `path` as given, not the weights' source,
    so a `.keras` file reloads by loading the SavedModel from that path again
    (it must still be there) and then the fine-tuned values stored in the
    file. The `.keras` file loads with `safe_mode=True`: a SavedModel is
    TensorFlow graph code, not pickled Python, but it does run when the
    model runs, so trust the folder a `.keras` file names as you trust the
    file. `tfdl.export.export_saved_model` of a model holding the layer
    writes one self-contained SavedModel.

    The layer keeps the loaded SavedModel object, so its variables are held
    once: no copy is made.

    Args:
        path: str. The SavedModel folder (holding `saved_model.pb`), or a TF
            Hub handle URL, which `tensorflow_hub.resolve` downloads (or finds
            in `TFHUB_CACHE_DIR`). Offline, a URL that is not in the cache
            raises a ValueError that says how to fetch it.
        endpoint: str or None. What to call: an attribute of the loaded
            object (`"__call__"` for TF Hub models, `"serve"` for Keras
            exports) or a signature name (`"serving_default"`). `None` (the
            default) picks `__call__`, then `serve`, then `serving_default`,
            whichever the SavedModel has first.
        output_key: str or None. The output to return when the endpoint
            returns a dict; may be left out when the dict has one entry.
            Defaults to `None`.
        trainable: bool. Whether the SavedModel's trainable variables train.
            Defaults to `True`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, ...).

    Call arguments:
        inputs: one tensor the endpoint accepts (its shape is checked when
            the layer is built); cast to the endpoint's input dtype.
        training: ignored (see above).

    Raises:
        ValueError: the path or handle cannot be found or fetched, the
            endpoint or output key does not exist, the endpoint takes more
            than one tensor, or an input shape does not fit the endpoint.

    Example:

    >>> import numpy as np, tempfile, keras
    >>> inputs = keras.Input((4,), name="features")
    >>> encoder = keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs))
    >>> folder = tempfile.mkdtemp() + "/encoder"
    >>> encoder.export(folder, verbose=False)
    >>> backbone = SavedModelBackbone(folder, name="backbone")
    >>> [w.path for w in backbone.trainable_weights]
    ['backbone/dense_kernel', 'backbone/dense_bias']
    >>> x = np.ones((3, 4), "float32")
    >>> bool(np.allclose(backbone(x), encoder(x)))
    True
    """

    def __init__(
        self,
        path: str,
        endpoint: str | None = None,
        output_key: str | None = None,
        trainable: bool = True,
        **kwargs,
    ):
        if keras.backend.backend() != "tensorflow":
            raise ValueError(
                f"SavedModelBackbone runs TensorFlow SavedModels and needs the tensorflow Keras backend; "
                f"the backend is {keras.backend.backend()!r} (set KERAS_BACKEND=tensorflow)."
            )
        super().__init__(trainable=trainable, **kwargs)
        import tensorflow as tf

        # `Layer.path` is the layer's own name path, so the handle lives under another name.
        self.handle = str(path)
        self.endpoint = endpoint
        self.output_key = output_key
        # Tracked, so a checkpoint or an export of the model reaches the
        # restored functions and variables this layer calls.
        self._saved_model = tf.saved_model.load(_resolve(self.handle))
        self._endpoint_name, self._function, self._signature_input = self._find_endpoint()
        concretes = _concrete_functions(self._function)
        self._takes_training = any(_training_value(c) is not None for c in concretes)
        self._inference = [c for c in concretes if not _training_value(c)]
        if not self._inference:
            raise ValueError(
                f"SavedModelBackbone: endpoint {self._endpoint_name!r} of {self.handle!r} was only traced with "
                "training=True; it needs an inference (training=False) trace."
            )
        self._input_specs = [self._one_tensor_input(c) for c in self._inference]
        self._output_key = self._pick_output(self._inference[0].structured_outputs)
        # Assigned to an attribute, the list is tracked: its variables become the layer's weights.
        self._variables_in_order = self._adopt_variables()

    def _has_endpoint(self, name: str) -> bool:
        loaded = self._saved_model
        if name == "__call__":
            return callable(loaded) and hasattr(loaded.__call__, "concrete_functions")
        return hasattr(getattr(loaded, name, None), "concrete_functions") or name in loaded.signatures

    def _find_endpoint(self):
        """(name, callable, input key of a signature or None) of the endpoint to call."""
        loaded = self._saved_model
        signatures = sorted(loaded.signatures)
        defaults = [n for n in ("__call__", "serve", "serving_default") if self._has_endpoint(n)]
        name = self.endpoint or (defaults[0] if defaults else None)
        if name is None or not self._has_endpoint(name):
            raise ValueError(
                f"SavedModelBackbone: {self.handle!r} has "
                f"{'no endpoint ' + repr(name) if name else 'none of the endpoints __call__, serve, serving_default'}; "
                f"pass `endpoint`: a restored tf.function attribute such as '__call__' or 'serve', or one of its "
                f"signatures {signatures}."
            )
        if name == "__call__":
            return name, loaded.__call__, None
        if hasattr(getattr(loaded, name, None), "concrete_functions"):
            return name, getattr(loaded, name), None
        signature = loaded.signatures[name]
        keys = sorted(signature.structured_input_signature[1])
        if len(keys) != 1:
            raise ValueError(
                f"SavedModelBackbone: signature {name!r} of {self.handle!r} takes inputs {keys}; "
                "the layer feeds exactly one tensor."
            )
        return name, signature, keys[0]

    def _one_tensor_input(self, concrete):
        specs = _tensor_inputs(concrete)
        if len(specs) != 1:
            raise ValueError(
                f"SavedModelBackbone: endpoint {self._endpoint_name!r} of {self.handle!r} takes {len(specs)} "
                f"tensors ({specs}); the layer feeds exactly one."
            )
        return specs[0]

    def _pick_output(self, outputs) -> str | None:
        if not isinstance(outputs, dict):
            if self.output_key is not None:
                raise ValueError(
                    f"SavedModelBackbone: endpoint {self._endpoint_name!r} returns one tensor, not a dict; "
                    f"drop output_key={self.output_key!r}."
                )
            return None
        if self.output_key is None and len(outputs) == 1:
            return next(iter(outputs))
        if self.output_key not in outputs:
            raise ValueError(
                f"SavedModelBackbone: output_key={self.output_key!r} is not an output of endpoint "
                f"{self._endpoint_name!r}; pass one of {sorted(outputs)}."
            )
        return self.output_key

    def _adopt_variables(self) -> list:
        """Wrap each variable the endpoint reads as a Keras weight (the same storage, not a copy)."""
        used = {}
        for concrete in self._inference:
            for variable in concrete.variables:
                used.setdefault(id(variable), variable)
        # The SavedModel's own list is in layer order for Keras exports and
        # TF Hub models; `variable_groups` relies on that order.
        listed = [v for v in getattr(self._saved_model, "variables", []) if id(v) in used]
        ordered = listed + [v for key, v in used.items() if key not in {id(w) for w in listed}]
        wrapped = []
        with keras.name_scope(self.name, caller=self):
            for variable in ordered:
                # A keras.Variable built from a tf.Variable adopts it (TensorFlow backend).
                wrapped.append(
                    keras.Variable(
                        initializer=variable,
                        shape=variable.shape,
                        dtype=variable.dtype.name,
                        trainable=variable.trainable,
                        name=_variable_name(variable),
                    )
                )
        return wrapped

    def variable_groups(self) -> list[tuple[str, list]]:
        """The layer's weights grouped by the SavedModel layer they come from, bottom to top.

        A variable named `block2/conv/kernel:0` belongs to group `block2/conv`;
        the order is the SavedModel's own variable order, which Keras
        exports and TF Hub models keep in layer order. Fine-tuning unfreezes
        the last groups (see `tfdl.training.fine_tuning`).

        Returns:
            `(group name, [keras.Variable, ...])` pairs, in order.
        """
        groups: dict[str, list] = {}
        for variable in self._variables_in_order:
            name = variable.value.name.split(":")[0]
            groups.setdefault(name.rsplit("/", 1)[0] if "/" in name else name, []).append(variable)
        return list(groups.items())

    def build(self, input_shape) -> None:
        import tensorflow as tf

        shape = tf.TensorShape(input_shape)
        if not any(spec.shape.is_compatible_with(shape) for spec in self._input_specs):
            raise ValueError(
                f"SavedModelBackbone: inputs of shape {tuple(input_shape)} do not fit endpoint "
                f"{self._endpoint_name!r} of {self.handle!r}, which takes "
                f"{' or '.join(str(tuple(s.shape)) for s in self._input_specs)}."
            )

    def call(self, inputs, training: bool | None = None):
        import tensorflow as tf

        inputs = tf.cast(inputs, self._input_specs[0].dtype)
        if self._signature_input is not None:
            outputs = self._function(**{self._signature_input: inputs})
        elif self._takes_training:
            outputs = self._function(inputs, training=False)
        else:
            outputs = self._function(inputs)
        return outputs[self._output_key] if self._output_key is not None else outputs

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"path": self.handle, "endpoint": self.endpoint, "output_key": self.output_key})
        return config
