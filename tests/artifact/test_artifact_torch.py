"""The torch flavor: TorchScript and torch.export programs saved and served without the
user's code; a plain nn.Module compiled; a pickled .pt refused with the way out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from artifact_helpers import read_manifest

from slml.artifact import load_model, save_model, save_model_file
from slml.errors import ArtifactError, UnsupportedModel
from slml.runtime.torch_flavor import THREADS_VAR, thread_count

torch = pytest.importorskip("torch")


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.linear(x), dim=1)


class Unscriptable(torch.nn.Module):
    def forward(self, x: Any) -> Any:  # neither TorchScript nor exportable
        return torch.tensor([len(str(type(x))) for _ in range(int(x.sum().item()))])


@pytest.fixture(scope="module")
def net() -> Net:
    torch.manual_seed(0)
    return Net().eval()


@pytest.fixture(scope="module")
def x() -> Any:
    torch.manual_seed(1)
    return torch.randn(6, 4)


def _served(path: Path, rows: Any) -> np.ndarray:
    return np.asarray(load_model(path).predict(np.asarray(rows).tolist()))


def _expected(net: Net, rows: Any) -> np.ndarray:
    with torch.no_grad():
        return net(torch.as_tensor(np.asarray(rows), dtype=torch.float32)).numpy()


def test_torchscript_module_is_saved_natively_with_a_tensor_schema(
    tmp_path: Path, net: Net, x: Any
) -> None:
    info = save_model(torch.jit.script(net), tmp_path / "ts", sample_input=x)
    manifest = read_manifest(info.path)
    assert manifest["flavor"] == "torch"
    assert manifest["flavor_options"]["format"] == "torchscript"
    assert (info.path / "model" / "model.pt").is_file()
    assert manifest["signature"]["inputs"] == {"kind": "tensor", "dtype": "float32",
                                               "shape": [-1, 4]}  # fmt: skip
    assert manifest["signature"]["outputs"]["shape"] == [-1, 3]
    assert manifest["requirements"][0] == f"torch=={torch.__version__.split('+')[0]}"
    assert "+" not in manifest["framework"]["version"]
    assert np.allclose(_served(info.path, x[:2]), _expected(net, x[:2]), atol=1e-6)


def test_export_program_with_a_dynamic_batch_serves_any_batch(
    tmp_path: Path, net: Net, x: Any
) -> None:
    batch = torch.export.Dim("batch")
    program = torch.export.export(net, (x,), dynamic_shapes={"x": {0: batch}})
    info = save_model(program, tmp_path / "ep", sample_input=x)
    options = read_manifest(info.path)["flavor_options"]
    assert options["format"] == "export" and "static_batch" not in options
    assert (info.path / "model" / "model.pt2").is_file()
    for n in (1, 3, 6):
        assert np.allclose(_served(info.path, x[:n]), _expected(net, x[:n]), atol=1e-6)


def test_export_program_with_a_fixed_batch_is_fed_padded_chunks(
    tmp_path: Path, net: Net, x: Any
) -> None:
    program = torch.export.export(net, (x[:4],))
    info = save_model(program, tmp_path / "ep4")
    manifest = read_manifest(info.path)
    assert manifest["flavor_options"]["static_batch"] == 4
    assert manifest["signature"]["inputs"] == {"kind": "tensor", "dtype": "float32",
                                               "shape": [-1, 4]}  # fmt: skip
    assert np.allclose(_served(info.path, x), _expected(net, x), atol=1e-6)  # 6 = 4 + 2
    assert np.allclose(_served(info.path, x[:1]), _expected(net, x[:1]), atol=1e-6)


def test_plain_module_is_exported_with_a_sample_else_scripted(
    tmp_path: Path, net: Net, x: Any
) -> None:
    rows = x.numpy().astype("float64").tolist()  # float64 rows: cast to the weights' dtype
    info = save_model(net, tmp_path / "mod", sample_input=rows)
    options = read_manifest(info.path)["flavor_options"]
    assert options["format"] == "export" and "static_batch" not in options
    assert options["input_dtype"] == "float32"
    assert "torch.export" in options["converted_from"]
    assert np.allclose(_served(info.path, rows[:3]), _expected(net, rows[:3]), atol=1e-6)
    scripted = save_model(net, tmp_path / "scripted")  # no sample: nothing to trace with
    options = read_manifest(scripted.path)["flavor_options"]
    assert options["format"] == "torchscript" and "torch.jit.script" in options["converted_from"]
    assert np.allclose(_served(scripted.path, rows[:2]), _expected(net, rows[:2]), atol=1e-6)


def test_a_module_torchscript_cannot_compile_points_to_export_and_code_paths(
    tmp_path: Path,
) -> None:
    with pytest.raises(UnsupportedModel) as err:
        save_model(Unscriptable(), tmp_path / "bad")
    assert "code_paths" in str(err.value.hint) and "torch.export" in str(err.value.hint)
    assert not (tmp_path / "bad").exists()


def test_pt_and_pt2_files_are_saved_from_their_path(tmp_path: Path, net: Net, x: Any) -> None:
    torch.jit.save(torch.jit.script(net), str(tmp_path / "net.pt"))
    batch = torch.export.Dim("batch")
    program = torch.export.export(net, (x,), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, str(tmp_path / "net.pt2"))
    for name in ("net.pt", "net.pt2"):
        info = save_model_file(tmp_path / name, tmp_path / f"a-{name}", sample_input=x.numpy())
        assert info.flavor == "torch"
        assert (info.path / "model" / f"model{Path(name).suffix}").read_bytes() == (
            tmp_path / name
        ).read_bytes()
        assert np.allclose(_served(info.path, x[:2]), _expected(net, x[:2]), atol=1e-6)


def test_a_pickled_state_dict_pt_is_refused_with_the_way_out(tmp_path: Path, net: Net) -> None:
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ArtifactError) as err:
        save_model_file(tmp_path / "weights.pt", tmp_path / "w")
    assert "not TorchScript" in str(err.value) and "code_paths" in str(err.value.hint)


def test_threads_follow_the_bundle_setting_else_this_process_cpus() -> None:
    assert thread_count({THREADS_VAR: "3"}) == 3
    import os

    assert thread_count({THREADS_VAR: "zero"}) == len(os.sched_getaffinity(0))
    assert thread_count({}) == len(os.sched_getaffinity(0))
