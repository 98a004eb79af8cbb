"""The keras flavor: a Keras 3 model (detected before the sklearn and python flavors,
which would pickle it), or a ``.keras`` file, written to ``model/model.keras`` in
Keras's own format and read back by ``keras.saving.load_model``.

The backend Keras runs here (``torch``, ``jax`` or ``tensorflow``) is recorded in the
manifest (``framework.backend``, ``flavor_options.backend``, and ``flavor_options.env``
= ``{"KERAS_BACKEND": ...}``, which every target's environment receives), and its
package is among the requirements. ``predict`` is called with ``verbose=0``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from slml.artifact import requirements as reqs
from slml.artifact.flavors import Saved, SaveOptions, native
from slml.errors import ArtifactError
from slml.runtime import torch_flavor as runtime

NAME = "keras"
PRIORITY = 11
EXPECTS = "the keras flavor needs a Keras 3 model (keras.Model) or a .keras file"
SUPPORTS = "Keras 3 models and .keras files (torch, jax or tensorflow backend)"
SUFFIXES = (".keras",)
FILE_HELP = "Keras 3: model.keras, from model.save('model.keras')"
FILE = "model/model.keras"
#: the distributions each backend needs besides keras
BACKEND_PACKAGES = {"torch": ("torch",), "jax": ("jax", "jaxlib"), "tensorflow": ("tensorflow",)}


def matches(model: Any) -> bool:
    if isinstance(model, str | Path):
        return str(model).lower().endswith(SUFFIXES)
    return native.is_instance_of(model, "keras", ("Model",))


def load_file(path: Path) -> Any:
    """A .keras file is saved from its path (its bytes are copied as they are)."""
    return path


def save(model: Any, root: Path, *, options: SaveOptions) -> Saved:
    """Write the .keras file; reload it as the runtime will and predict the sample."""
    keras = native.require("keras", "keras")
    backend = str(keras.backend.backend())
    path = native.model_dir(root) / "model.keras"
    if isinstance(model, str | Path):
        shutil.copyfile(model, path)
    else:
        model.save(str(path))
    try:
        reloaded = runtime.open_keras(path, backend)
    except Exception as exc:
        raise ArtifactError(
            f"Keras cannot load the saved model ({type(exc).__name__}: {exc})",
            hint="a .keras file comes from model.save('model.keras') with Keras 3",
        ) from None
    framework = {**reqs.framework("keras"), "backend": backend}
    dists = ["keras", *BACKEND_PACKAGES.get(backend, ()), "numpy"]
    flavor_options = {"file": FILE, "backend": backend, "env": {"KERAS_BACKEND": backend}}
    if options.sample_input is not None:  # kept for the ONNX export's parity check
        flavor_options["sample"] = native.save_sample(root, options.sample_input)
    return Saved(
        flavor=NAME,
        framework=framework,
        requirements=native.pins(dists, None),
        flavor_options=flavor_options,
        signature=native.signature(
            options.sample_input, names=None, width=None,
            call=runtime.keras_call(reloaded, backend),
        ),
    )

