"""Loaders of the torch and keras flavors (no user code: the model is its own program).

- torch, ``flavor_options.format`` = ``torchscript``: ``model/model.pt`` read by
  ``torch.jit.load``; ``export``: ``model/model.pt2`` read by ``torch.export.load`` and
  called through ``.module()``. The batch is handed over as one tensor of
  ``flavor_options.input_dtype``; a program exported with a fixed batch size
  (``flavor_options.static_batch``) is fed chunks of that size, the last one padded.
  The output is the tensor (or ``output_index`` of a tuple/list), as numpy.
- keras: ``model/model.keras`` read by ``keras.saving.load_model`` with
  ``KERAS_BACKEND`` = ``flavor_options.backend`` (set before keras is imported, unless the
  environment already sets it), ``model.predict(x, verbose=0)``.

Both run under ``torch.inference_mode()`` (torch backend) with ``torch.set_num_threads``
from ``SLML_NUM_THREADS`` (the bundle sets it to the target's vCPUs), else the CPUs this
process may run on. torch and keras are imported inside the loaders only.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slml.runtime.flavors import Predictor, _option_file, to_array
from slml.runtime.manifest import ArtifactFormatError
from slml.runtime.validation import Batch

THREADS_VAR = "SLML_NUM_THREADS"
TORCH_FILES = {"torchscript": "model/model.pt", "export": "model/model.pt2"}


def thread_count(environ: dict[str, str] | None = None) -> int:
    """The intra-op threads to use: ``SLML_NUM_THREADS`` when it is a positive integer,
    else the CPUs this process may run on (its affinity, not the host's count)."""
    value = (environ if environ is not None else os.environ).get(THREADS_VAR, "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _torch() -> Any:
    import torch

    torch.set_num_threads(thread_count())
    return torch


def open_torch(path: Path, fmt: str) -> Callable[[Any], Any]:
    """The callable saved at ``path`` (TorchScript or a torch.export program)."""
    torch = _torch()
    if fmt == "torchscript":
        with warnings.catch_warnings():  # torch 2.10+ deprecates TorchScript; it still loads
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
        module.eval()
        scripted: Callable[[Any], Any] = module
        return scripted
    if fmt == "export":
        exported: Callable[[Any], Any] = torch.export.load(str(path)).module()
        return exported
    raise ArtifactFormatError(
        f"{path}: flavor_options.format {fmt!r} is not one of {', '.join(TORCH_FILES)}"
    )


def torch_call(
    model: Callable[[Any], Any], options: dict[str, Any]
) -> Callable[[Any], Any]:
    """numpy in, numpy out: the array as one tensor of the saved dtype, under
    inference_mode, in chunks of ``static_batch`` when the program fixed it."""
    import numpy as np

    torch = _torch()
    dtype = getattr(torch, str(options.get("input_dtype") or "float32"))
    index = int(options.get("output_index") or 0)
    static = options.get("static_batch")

    def once(tensor: Any) -> Any:
        out = model(tensor)
        if isinstance(out, tuple | list):
            out = out[index]
        return out.detach().cpu().numpy()

    def call(features: Any) -> Any:
        tensor = torch.as_tensor(np.asarray(features)).to(dtype)
        with torch.inference_mode():
            if not static or tensor.shape[0] == static:
                return once(tensor)
            return np.concatenate([once(c) for c in _chunks(torch, tensor, int(static))])[
                : tensor.shape[0]
            ]

    return call


def _chunks(torch: Any, tensor: Any, size: int) -> list[Any]:
    parts = list(torch.split(tensor, size))
    short = size - parts[-1].shape[0]
    if short:
        pad = torch.zeros((short, *parts[-1].shape[1:]), dtype=tensor.dtype)
        parts[-1] = torch.cat([parts[-1], pad])
    return parts


def load_torch(artifact_dir: Path, manifest: dict[str, Any]) -> Predictor:
    options = dict(manifest.get("flavor_options") or {})
    fmt = str(options.get("format", "torchscript"))
    path = _option_file(artifact_dir, manifest, TORCH_FILES.get(fmt, "model/model.pt"))
    call = torch_call(open_torch(path, fmt), options)

    def predict(batch: Batch) -> Any:
        return call(to_array(batch, as_frame=False))

    return predict


def open_keras(path: Path, backend: str | None) -> Any:
    """The Keras model at ``path``, with ``backend`` unless KERAS_BACKEND is already set.
    Raises ArtifactFormatError when keras was imported with another backend."""
    if backend:
        os.environ.setdefault("KERAS_BACKEND", backend)
    if os.environ.get("KERAS_BACKEND", "torch") == "torch":
        _torch()
    import keras

    running = keras.backend.backend()
    if backend and running != backend:
        raise ArtifactFormatError(
            f"{path}: the model was saved with Keras backend {backend!r} but Keras runs "
            f"{running!r} here (KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r})"
        )
    return keras.saving.load_model(str(path), compile=False)


def keras_call(model: Any, backend: str | None) -> Callable[[Any], Any]:
    """``model.predict(x, verbose=0)``, under inference_mode on the torch backend."""
    import numpy as np

    def call(features: Any) -> Any:
        array = np.asarray(features, dtype="float32") if _floats(features) else features
        if backend != "torch":
            return model.predict(array, verbose=0)
        import torch

        with torch.inference_mode():
            return model.predict(array, verbose=0)

    return call


def _floats(features: Any) -> bool:
    return getattr(getattr(features, "dtype", None), "kind", "") == "f"


def load_keras(artifact_dir: Path, manifest: dict[str, Any]) -> Predictor:
    options = dict(manifest.get("flavor_options") or {})
    backend = options.get("backend")
    path = _option_file(artifact_dir, manifest, "model/model.keras")
    call = keras_call(open_keras(path, backend), backend)

    def predict(batch: Batch) -> Any:
        return call(to_array(batch, as_frame=False))

    return predict
