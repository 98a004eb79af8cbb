"""The torch flavor: PyTorch models as programs the runtime loads without your code.

- TorchScript (``torch.jit.script``/``trace``, or a ``.pt`` file from ``torch.jit.save``)
  is written to ``model/model.pt`` and read by ``torch.jit.load``;
- a ``torch.export`` program (``torch.export.export``, or a ``.pt2`` file from
  ``torch.export.save``) is written to ``model/model.pt2`` and read by
  ``torch.export.load``;
- a plain ``nn.Module`` is exported on the sample (dynamic batch dimension) or, without
  a sample or when export fails, compiled with ``torch.jit.script``; when neither works,
  save your own class (``load`` rebuilds the module from its state dict, ``predict``
  calls it) through the python flavor with ``code_paths``.

The input schema comes from the sample tensor (dtype, shape with a dynamic batch
dimension), else from an exported program's input. The runtime side is
slml/runtime/torch_flavor.py. torch is pinned without its local label (``+cpu``): the
bundle resolves the CPU build through find-links or PyTorch's CPU index
(slml/bundle/sources.py).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

from slml.artifact import requirements as reqs
from slml.artifact import schema
from slml.artifact.flavors import Saved, SaveOptions, native
from slml.errors import ArtifactError, UnsupportedModel
from slml.runtime import torch_flavor as runtime

NAME = "torch"
PRIORITY = 12
EXPECTS = (
    "the torch flavor needs TorchScript (torch.jit.script/trace), a torch.export "
    "ExportedProgram, an nn.Module (exported on the sample or scripted), or a .pt/.pt2 path"
)
SUPPORTS = "PyTorch TorchScript (.pt) and torch.export programs (.pt2)"
SUFFIXES = (".pt", ".pt2")
FILE_HELP = (
    "PyTorch: model.pt from torch.jit.save(torch.jit.script(module), ...), or model.pt2 "
    "from torch.export.save(torch.export.export(module, (x,)), ...)"
)
CODE_HINT = (
    "save torch.jit.script(module), torch.export.export(module, (sample,), dynamic_shapes="
    "...), or a class of yours whose load(data_dir) rebuilds the module from its state "
    "dict and predict(rows) calls it, with slml.save_model(obj, ..., code_paths=["
    "'yourpackage/'], artifacts={'weights': 'state.pt'})"
)


def _is_script(model: Any) -> bool:
    return native.is_instance_of(model, "torch", ("ScriptModule", "ScriptFunction"))


def _is_exported(model: Any) -> bool:
    return native.is_instance_of(model, "torch", ("ExportedProgram",))


def _is_module(model: Any) -> bool:
    return native.is_instance_of(model, "torch", ("Module",))


def matches(model: Any) -> bool:
    if isinstance(model, str | Path):
        return str(model).lower().endswith(SUFFIXES)
    return _is_script(model) or _is_exported(model) or _is_module(model)


def load_file(path: Path) -> Any:
    """A .pt/.pt2 file is saved from its path, after checking torch can read it."""
    return path


def save(model: Any, root: Path, *, options: SaveOptions) -> Saved:
    """Write the program; signature from the sample (run once through the runtime's
    own call) or the exported program. Raises ArtifactError / UnsupportedModel."""
    torch = native.require("torch", "torch")
    fmt, program = _program(torch, model, options.sample_input)
    path = native.model_dir(root) / Path(runtime.TORCH_FILES[fmt]).name
    if isinstance(model, str | Path):
        shutil.copyfile(model, path)
    elif fmt == "export":
        torch.export.save(program, str(path))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(program, str(path))
    flavor_options: dict[str, Any] = {"file": runtime.TORCH_FILES[fmt], "format": fmt}
    flavor_options.update(_input_options(program, fmt, options.sample_input))
    if isinstance(model, str | Path) or (not _is_script(model) and not _is_exported(model)):
        flavor_options["converted_from"] = _origin(model, fmt)
    if options.sample_input is not None:  # kept for the ONNX export's parity check
        flavor_options["sample"] = native.save_sample(root, _as_numpy(options.sample_input))
    reloaded = runtime.open_torch(path, fmt)
    call = runtime.torch_call(reloaded, flavor_options)
    return Saved(
        flavor=NAME,
        framework=reqs.framework("torch"),
        requirements=native.pins(["torch", "numpy"], None),
        flavor_options=flavor_options,
        signature=native.signature(_sample(options.sample_input), names=None, width=None,
                                   call=call)
        if options.sample_input is not None or fmt != "export"
        else _program_signature(program),
    )


def _program(torch: Any, model: Any, sample: Any) -> tuple[str, Any]:
    """(format, the program to save) for a model, file or module."""
    if isinstance(model, str | Path):
        return _read_file(torch, Path(model))
    if _is_exported(model):
        return "export", model
    if _is_script(model):
        return "torchscript", model
    return _convert(torch, model.eval(), sample)


def _convert(torch: Any, module: Any, sample: Any) -> tuple[str, Any]:
    """A plain nn.Module as a program: exported on the sample with a dynamic batch
    dimension when there is one, else (or when export fails) compiled by TorchScript."""
    problems = []
    if sample is not None:
        tensor = torch.as_tensor(_as_numpy(sample)).to(_param_dtype(module))
        try:
            batch = torch.export.Dim("batch")
            return "export", torch.export.export(module, (tensor,), dynamic_shapes=({0: batch},))
        except Exception as exc:
            problems.append(f"torch.export: {_first_line(exc)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return "torchscript", torch.jit.script(module)
    except Exception as exc:
        problems.append(f"torch.jit.script: {_first_line(exc)}")
    raise UnsupportedModel(
        f"the {type(module).__name__} cannot be turned into a program that loads without its "
        f"code ({'; '.join(problems)})",
        hint=CODE_HINT,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _param_dtype(module: Any) -> Any:
    import torch

    floats = [p.dtype for p in module.parameters() if p.dtype.is_floating_point]
    return floats[0] if floats else torch.float32


def _read_file(torch: Any, path: Path) -> tuple[str, Any]:
    if path.suffix.lower() == ".pt2":
        try:
            return "export", torch.export.load(str(path))
        except Exception as exc:
            raise ArtifactError(
                f"{path.name} is not a torch.export program ({type(exc).__name__}: {exc})",
                hint="a .pt2 file comes from torch.export.save(torch.export.export(...), path)",
            ) from None
    try:
        return "torchscript", torch.jit.load(str(path), map_location="cpu")
    except Exception:
        raise ArtifactError(
            f"{path.name} is not TorchScript: torch.jit.load cannot read it (a file from "
            "torch.save(model) or a state dict needs the model's code to load)",
            hint=CODE_HINT,
        ) from None


def _origin(model: Any, fmt: str) -> str:
    if isinstance(model, str | Path):
        return f"file {Path(model).name}"
    how = "torch.export" if fmt == "export" else "torch.jit.script"
    return f"{type(model).__module__}.{type(model).__qualname__} ({how})"


def _input_options(program: Any, fmt: str, sample: Any) -> dict[str, Any]:
    """The dtype the input tensor is cast to: an exported program's input, else a torch
    tensor sample's, else the module's first floating parameter's, else float32; and the
    fixed batch size of a program exported without a dynamic batch dimension."""
    found: dict[str, Any] = {"input_dtype": "float32"}
    spec = _exported_input(program) if fmt == "export" else None
    if spec is not None:
        found["input_dtype"] = str(spec.dtype).removeprefix("torch.")
        batch = spec.shape[0] if len(spec.shape) else None
        if isinstance(batch, int):
            found["static_batch"] = batch
    elif _is_tensor(sample):
        found["input_dtype"] = str(sample.dtype).removeprefix("torch.")
    else:
        found["input_dtype"] = str(_param_dtype(program)).removeprefix("torch.")
    return found


def _program_signature(program: Any) -> dict[str, Any] | None:
    """Without a sample: the exported program's input (its dtype, any batch size)."""
    spec = _exported_input(program)
    if spec is None:
        return None
    dims = [d if isinstance(d, int) else -1 for d in spec.shape]
    dtype = str(spec.dtype).removeprefix("torch.")
    return {"inputs": {"kind": "tensor", "dtype": dtype, "shape": [-1, *dims[1:]]},
            "outputs": None}  # fmt: skip


def _exported_input(program: Any) -> Any:
    """The fake tensor of the exported program's first user input, or None."""
    for spec in program.graph_signature.input_specs:
        if str(spec.kind).endswith("USER_INPUT"):
            node = next((n for n in program.graph.nodes if n.name == spec.arg.name), None)
            return None if node is None else node.meta.get("val")
    return None


def _sample(sample: Any) -> Any:
    """A torch tensor sample as numpy (what requests become); anything else as given."""
    return None if sample is None else _as_numpy(sample) if _is_tensor(sample) else sample


def _is_tensor(value: Any) -> bool:
    return native.is_instance_of(value, "torch", ("Tensor",))


def _as_numpy(sample: Any) -> Any:
    import numpy as np

    if _is_tensor(sample):
        return sample.detach().cpu().numpy()
    return np.asarray(schema.as_rows(sample) if isinstance(sample, dict) else sample)

