"""transformers flavor: pipelines saved with save_pretrained, served with strings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import hf_tiny

from slml.artifact import load_model, save_model
from slml.errors import ArtifactError
from slml.runtime.errors import RequestError


@pytest.mark.parametrize("task", ["text-classification", "token-classification",
                                  "feature-extraction", "text-generation"])
def test_each_task_round_trips_with_the_pipelines_own_outputs(tmp_path: Path, task: str) -> None:
    pipe = hf_tiny.pipeline(task)
    info = save_model(pipe, tmp_path / "m", sample_input=hf_tiny.SAMPLE)
    manifest = info.manifest
    assert manifest["flavor"] == "transformers"
    assert manifest["flavor_options"]["task"] == task
    assert manifest["signature"]["inputs"] == {"kind": "tensor", "dtype": "string",
                                               "shape": [-1]}
    names = {r.split("==")[0] for r in manifest["requirements"]}
    assert {"transformers", "torch", "tokenizers"} <= names
    assert not any("+" in r for r in manifest["requirements"])  # no +cpu label
    assert {"model/pipeline/config.json", "model/pipeline/tokenizer.json",
            "model/pipeline/model.safetensors", "model/sample.json"} <= set(info.files)
    assert json.loads((tmp_path / "m" / "model" / "sample.json").read_text()) == hf_tiny.SAMPLE
    served = load_model(tmp_path / "m").predict({"instances": hf_tiny.SAMPLE})
    from slml.runtime.loader import jsonable

    assert served == jsonable(list(pipe(hf_tiny.SAMPLE)))
    assert len(served) == 2
    if task == "text-classification":
        assert {row["label"] for row in served} <= {"NEGATIVE", "POSITIVE"}


def test_requests_must_be_strings(tmp_path: Path) -> None:
    save_model(hf_tiny.pipeline("text-classification"), tmp_path / "m",
               sample_input=hf_tiny.SAMPLE)
    model = load_model(tmp_path / "m")
    with pytest.raises(RequestError, match="expected a string") as caught:
        model.predict({"instances": [1.5]})
    assert caught.value.status == 422


def test_a_sample_that_is_not_strings_and_an_unserved_task_are_refused(tmp_path: Path) -> None:
    pipe = hf_tiny.pipeline("text-classification")
    with pytest.raises(ArtifactError, match="must be a few strings"):
        save_model(pipe, tmp_path / "a", sample_input=[[1.0, 2.0]])
    pipe.task = "fill-mask"
    with pytest.raises(ArtifactError, match="not 'fill-mask'"):
        save_model(pipe, tmp_path / "b")


def test_serving_never_contacts_the_hub(tmp_path: Path) -> None:
    """The runtime sets HF_HUB_OFFLINE before loading; a process with no network proxy
    at all (unroutable) still loads and answers."""
    import os
    import subprocess
    import sys

    save_model(hf_tiny.pipeline("text-classification"), tmp_path / "m",
               sample_input=hf_tiny.SAMPLE)
    code = ("import os, json; from slml.runtime.loader import load; "
            "m = load(os.environ['MODEL']); "
            "print(json.dumps([m.predict({'instances': ['good film']}), "
            "os.environ['HF_HUB_OFFLINE']]))")
    env = {**os.environ, "MODEL": str(tmp_path / "m"), "HF_HOME": str(tmp_path / "empty-home"),
           "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    env.pop("HF_HUB_OFFLINE", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    answer, offline = json.loads(out.stdout.strip().splitlines()[-1])
    assert offline == "1" and answer[0]["label"] in ("NEGATIVE", "POSITIVE")
    assert not (tmp_path / "empty-home").exists()  # no hub cache was created
