"""save_model: detect the flavor, write the artifact in a staging directory, add the
manifest (slml/runtime/manifest.py) and move it into place atomically."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from slml.artifact import requirements as reqs
from slml.artifact import store
from slml.artifact.flavors import Saved, SaveOptions, detect, flavor_module
from slml.artifact.provenance import provenance
from slml.errors import ArtifactError
from slml.runtime.manifest import (
    DIGEST_PREFIX,
    FLAVORS,
    FORMAT_VERSION,
    MANIFEST_FILE,
    ArtifactIntegrityError,
    artifact_digest,
    hash_tree,
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,62}$")
EXPORTS = ("onnx",)


@dataclass(frozen=True)
class ArtifactInfo:
    """A saved artifact: where, what, and its digest (``artifact_digest``: the manifest,
    which lists every file's sha256)."""

    path: Path
    name: str
    version: str
    flavor: str
    sha256: str
    manifest: dict[str, Any]

    @property
    def digest(self) -> str:
        """``sha256:<artifact digest>``: what ``model_digest`` in slml.yaml pins."""
        return DIGEST_PREFIX + self.sha256

    @property
    def files(self) -> tuple[str, ...]:
        """Every file shipped in the artifact (besides the manifest), sorted."""
        return tuple(sorted(self.manifest["files"]))


def save_model(
    model: Any,
    path: str | Path,
    *,
    sample_input: Any = None,
    requirements: Sequence[str] | None = None,
    name: str | None = None,
    version: str | int | None = None,
    flavor: str | None = None,
    code_paths: Sequence[str | Path] | None = None,
    artifacts: dict[str, str | Path] | None = None,
    overwrite: bool = False,
    export: str | None = None,
    method: str | None = None,
    drop_requirements: Sequence[str] | None = None,
    check: bool | None = None,
    serialization: str | None = None,
    signature: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
) -> ArtifactInfo:
    """Save ``model`` as an artifact directory at ``path`` and return its description.

    The flavor is detected (an ONNX graph, then your own class with ``predict``, then the
    estimator API) unless ``flavor`` names one. ``sample_input`` (a few rows) gives the
    signature and is predicted on once as a check. ``requirements`` replace the derived
    pins of the same name and add the others; ``drop_requirements`` names derived pins
    to leave out (``xgboost`` with ``requirements=["xgboost-cpu==3.2.0"]`` swaps).
    ``name`` defaults to the directory's name, ``version`` to ``"1"``.
    ``code_paths``/``artifacts`` are for the python flavor.
    ``export="onnx"`` converts a scikit-learn model to ONNX (parity-checked on the
    sample). ``method`` is the model method the runtime serves (``predict`` by default;
    ``predict_proba`` or ``decision_function`` where the model has them; the response
    then names the classes). An existing artifact is replaced only with
    ``overwrite=True``; a failed save leaves nothing behind. ``check`` loads the saved
    artifact and predicts the sample in a clean process limited to its requirements
    (slml/artifact/serve_check.py); by default for the python flavor, whose code is the
    likeliest to miss a helper module. ``serialization="skops"`` stores a scikit-learn
    model with skops instead of joblib (no pickle; loaded with only the types the
    manifest declares trusted): the choice for models from people you do not fully
    trust. ``signature`` is used when the flavor inferred none (no sample);
    ``source`` records where the model came from (an MLflow URI, run id, registry
    version) in the manifest's ``source``. Raises ArtifactError / UnsupportedModel.
    """
    target = Path(path).absolute()
    store.check_target(target, overwrite=overwrite)
    meta = {"name": _name(name, target), "version": _version(version)}
    options = SaveOptions(
        sample_input=sample_input,
        code_paths=tuple(Path(p) for p in code_paths or ()),
        artifacts={str(k): Path(v) for k, v in (artifacts or {}).items()},
        method=_method(method),
        serialization=serialization,
    )
    _check_flavor_args(flavor, options)
    with store.staging(target) as staged:
        saved, extra = _save_flavor(model, staged, flavor, export, options)
        if saved.signature is None and signature is not None:
            saved = replace(saved, signature=signature)
        if source is not None:
            extra["source"] = source
        pins = reqs.merge(saved.requirements, requirements, drop_requirements)
        manifest = _manifest(saved, meta, pins, target)
        manifest.update(extra)
        manifest["files"] = _hash_staged(staged)
        will_check = bool(check or (check is None and saved.flavor == "python"))
        manifest["serve_check"] = serve_check_state(check, will_check)
        text = json.dumps(manifest, indent=2, sort_keys=False) + "\n"
        (staged / MANIFEST_FILE).write_text(text, encoding="utf-8")
        if will_check:
            from slml.artifact import serve_check

            serve_check.run(staged, manifest, sample_input)
        store.publish(staged, target, overwrite=overwrite)
    return ArtifactInfo(
        target, meta["name"], meta["version"], saved.flavor,
        artifact_digest(manifest), manifest,
    )  # fmt: skip


def serve_check_state(check: bool | None, will_check: bool) -> str:
    """The manifest's ``serve_check``: ``passed`` (the save ran it; a failure saves
    nothing), ``skipped`` (``check=False``: ``slml build`` refuses the artifact,
    slml/artifact/unchecked.py) or ``not_run`` (the API's default for flavors other
    than python)."""
    if will_check:
        return "passed"
    return "skipped" if check is False else "not_run"


def _hash_staged(staged: Path) -> dict[str, str]:
    """The files' sha256; a symlink or special file in the staged artifact is refused."""
    try:
        return hash_tree(staged)
    except ArtifactIntegrityError as exc:
        raise ArtifactError(f"cannot save the artifact: {exc}") from None


def _save_flavor(
    model: Any, staged: Path, flavor: str | None, export: str | None, options: SaveOptions
) -> tuple[Saved, dict[str, Any]]:
    if export is None:
        module = detect(model, flavor=flavor)
        if options.serialization is not None and module.NAME != "sklearn":
            raise ArtifactError(
                f"serialization={options.serialization!r} applies to scikit-learn models (the "
                f"sklearn flavor), not to {module.NAME!r}"
            )
        return _with_loader(module, module.save(model, staged, options=options)), {}
    if options.serialization is not None:
        raise ArtifactError("serialization= and export= cannot be combined")
    if export not in EXPORTS:
        raise ArtifactError(f"export={export!r} is not supported; expected one of {EXPORTS}")
    if detect(model, flavor=flavor).NAME != "sklearn":
        raise ArtifactError("export='onnx' converts scikit-learn models (the sklearn flavor) only")
    from slml.artifact.export import to_onnx

    exported = to_onnx(model, options.sample_input)
    onnx_options = SaveOptions(
        sample_input=options.sample_input, output_index=exported.output_index
    )
    saved = flavor_module("onnx").save(exported.data, staged, options=onnx_options)
    return saved, {"exported_from": exported.exported_from}


def _with_loader(module: Any, saved: Saved) -> Saved:
    """A plug-in flavor the runtime does not know names its loader in flavor_options."""
    if saved.flavor in FLAVORS:
        return saved
    loader = getattr(module, "LOADER", None)
    if not isinstance(loader, str) or ":" not in loader:
        raise ArtifactError(
            f"flavor {saved.flavor!r} is not built into the serving runtime and declares no "
            "LOADER = 'module:function' to load it with"
        )
    return replace(saved, flavor_options={**saved.flavor_options, "loader": loader})


def _manifest(
    saved: Saved, meta: dict[str, str], requirements: list[str], target: Path
) -> dict[str, Any]:
    facts = provenance(target)
    return {
        "format": FORMAT_VERSION,
        "name": meta["name"],
        "version": meta["version"],
        "flavor": saved.flavor,
        "framework": saved.framework,
        "python_version": facts["python_version"],
        "requirements": requirements,
        "signature": saved.signature,
        "flavor_options": saved.flavor_options,
        "created_at": facts["created_at"],
        "created_by": facts["created_by"],
        "git_commit": facts["git_commit"],
        "slml_version": facts["slml_version"],
    }


def _check_flavor_args(flavor: str | None, options: SaveOptions) -> None:
    if (options.code_paths or options.artifacts) and flavor not in (None, "python"):
        raise ArtifactError(
            f"code_paths and artifacts apply to the python flavor only, not {flavor!r}"
        )


METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")


def _method(method: str | None) -> str | None:
    if method is not None and method not in METHODS:
        raise ArtifactError(f"method={method!r} is not one of {', '.join(METHODS)}")
    return method


def default_name(target: Path) -> str:
    """The directory's name made safe: lower case, ``[a-z0-9._-]``, at most 63 chars."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", target.name.lower()).strip("-._")
    return cleaned[:63] or "model"


def _name(name: str | None, target: Path) -> str:
    if name is None:
        return default_name(target)
    if not isinstance(name, str) or not _NAME.match(name):
        raise ArtifactError(
            f"model name {name!r} is not valid: use letters, digits, '.', '_' or '-' "
            "(at most 63, starting with a letter or digit)"
        )
    return name


def _version(version: str | int | None) -> str:
    if version is None:
        return "1"
    text = str(version)
    if isinstance(version, bool) or not _VERSION.match(text):
        raise ArtifactError(
            f"model version {version!r} is not valid: use letters, digits, '.', '_', '+' or '-'"
        )
    return text
