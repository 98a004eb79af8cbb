"""ONNX export of torch-flavor programs (TorchScript ``.pt``, ``torch.export`` ``.pt2``)
and of Keras 3 models on the torch backend (a Keras model there is an ``nn.Module``).

The program is exported with ``torch.onnx.export`` on the sample kept in the artifact
(``flavor_options.sample``, ``model/sample.npy``) with a dynamic batch dimension:
TorchScript-based export first, the dynamo exporter (onnxscript) when that fails. The
exported graph is saved as an onnx-flavor artifact and checked against the original on
the sample, and on its first row alone (the batch dimension must stay dynamic): the
outputs must agree within ``ATOL`` (max abs diff reported). Used by onnx_export.py.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from slml.errors import ArtifactError

ATOL = 1e-4
OPSET = 18


def no_converter(manifest: dict[str, Any]) -> str | None:
    """Why this torch/keras artifact cannot be exported, or None."""
    options = manifest.get("flavor_options") or {}
    if manifest.get("flavor") == "keras" and options.get("backend") != "torch":
        return (f"a Keras model on the {options.get('backend')} backend has no torch "
                "module to export (slml exports Keras models on the torch backend)")  # fmt: skip
    if options.get("static_batch"):
        return f"the program was exported with a fixed batch size of {options['static_batch']}"
    if not options.get("sample"):
        return (
            "the artifact has no saved sample to export on and check parity with "
            "(save it with sample_input)"
        )
    return None


def export_program(
    artifact_dir: Path, manifest: dict[str, Any], target: Path
) -> tuple[Path, dict[str, Any]]:
    """The torch/keras artifact as an onnx-flavor artifact at ``target / "artifact"``
    and the parity figures. Raises ArtifactError naming what failed."""
    import numpy as np

    from slml.artifact import save_model

    sample = np.load(artifact_dir / manifest["flavor_options"]["sample"], allow_pickle=False)
    options = manifest["flavor_options"]
    module, call, dtype = _open(artifact_dir, manifest)
    target.mkdir(parents=True)
    graph = target / "model.onnx"
    how = _export(module, sample, dtype, int(options.get("output_index") or 0), graph)
    info = save_model(graph, target / "artifact", sample_input=sample,
                      name=manifest["name"], version=manifest["version"])  # fmt: skip
    parity = check_parity(call, info.path, sample)
    return info.path, {**parity, "exporter": how}


def _open(artifact_dir: Path, manifest: dict[str, Any]) -> tuple[Any, Callable[[Any], Any], str]:
    """(the module to export, the runtime's own call, the input dtype)."""
    from slml.runtime import torch_flavor as runtime
    from slml.runtime.flavors import _option_file

    options = manifest["flavor_options"]
    if manifest["flavor"] == "keras":
        path = _option_file(artifact_dir, manifest, "model/model.keras")
        try:
            model = runtime.open_keras(path, "torch")
        except Exception as exc:
            raise ArtifactError(f"Keras cannot load the model here ({exc})") from None
        return model, runtime.keras_call(model, "torch"), "float32"
    fmt = str(options.get("format", "torchscript"))
    path = _option_file(artifact_dir, manifest, runtime.TORCH_FILES.get(fmt, "model/model.pt"))
    program = runtime.open_torch(path, fmt)
    return (
        program,
        runtime.torch_call(program, options),
        str(options.get("input_dtype") or "float32"),
    )


def _export(module: Any, sample: Any, dtype: str, index: int, path: Path) -> str:
    """``torch.onnx.export`` with a dynamic batch dimension; returns which exporter
    worked. Raises ArtifactError with both exporters' errors."""
    import torch

    # TorchScript exports as it is (a graph with several outputs serves the first, as
    # the torch flavor does); anything else through a module that picks the output
    scripted = isinstance(module, torch.jit.ScriptModule)
    wrapped = module if scripted else _selected(module, index)
    tensor = torch.as_tensor(sample).to(getattr(torch, dtype))
    problems = []
    for dynamo in (False, True):
        try:
            with warnings.catch_warnings(), torch.no_grad(), redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                kwargs: dict[str, Any] = (
                    {"dynamic_shapes": ({0: torch.export.Dim("batch", min=1)},)}
                    if dynamo
                    else {"dynamic_axes": {"input": {0: "batch"}, "output": {0: "batch"}}}
                )
                torch.onnx.export(wrapped, (tensor,), str(path), input_names=["input"],
                                  output_names=["output"], opset_version=OPSET,
                                  dynamo=dynamo, **kwargs)  # fmt: skip
            readable_ir(path)
            return "torch.onnx.export (dynamo)" if dynamo else "torch.onnx.export (TorchScript)"
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            name = "dynamo" if dynamo else "TorchScript"
            problems.append(f"{name}: {type(exc).__name__}: {first}")
            path.unlink(missing_ok=True)
    raise ArtifactError(f"torch.onnx.export failed ({'; '.join(problems)})")


def _selected_class() -> type:
    import torch

    class Selected(torch.nn.Module):
        """The program's output ``index`` when it answers a tuple or list."""

        def __init__(self, inner: Any, index: int) -> None:
            super().__init__()
            self.inner = inner
            self.index = index

        def forward(self, x: Any) -> Any:
            out = self.inner(x)
            return out[self.index] if isinstance(out, tuple | list) else out

    return Selected


def _selected(inner: Any, index: int) -> Any:
    return _selected_class()(inner, index)


def readable_ir(path: Path, highest: int = 10) -> None:
    """Keep the graph's IR version within what onnxruntime reads."""
    import onnx

    proto = onnx.load(str(path))
    if proto.ir_version > highest:
        proto.ir_version = highest
        onnx.save(proto, str(path))


def check_parity(call: Callable[[Any], Any], exported: Path, sample: Any) -> dict[str, Any]:
    """The original (through the runtime's own call) and the exported artifact on the
    sample and on its first row: max abs diff within ATOL. Raises ArtifactError."""
    import numpy as np

    from slml.artifact import load_model

    served = load_model(exported)
    diffs = []
    for rows in (sample, sample[:1]):
        want = np.asarray(call(rows), dtype="float64")
        got = np.asarray(served.predict({"instances": rows.tolist()}), dtype="float64")
        if got.shape != want.shape:
            raise ArtifactError(f"the ONNX export answers shape {list(got.shape)} where the "
                                f"model answers {list(want.shape)}")  # fmt: skip
        diffs.append(float(np.max(np.abs(got - want))) if want.size else 0.0)
    diff = max(diffs)
    if not diff <= ATOL:
        raise ArtifactError(f"the ONNX export differs from the model on the sample (max abs "
                            f"diff {diff:.3g}, allowed {ATOL})")  # fmt: skip
    return {"rows": len(sample), "check": "outputs allclose (sample and its first row)",
            "atol": ATOL, "max_abs_diff": diff}  # fmt: skip
