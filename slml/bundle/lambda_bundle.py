"""The AWS Lambda bundle: dependencies in a layer keyed by the lock, model in the function.

Layout of ``out_dir``::

    layer.zip          python/<packages> (+ lib/: native libraries Lambda's base image
                       lacks, e.g. libgomp.so.1, see lambda_native.py); cached
                       under <cache>/lambda-layers/<key>/ (lambda_layer.py),
                       where key = lock hash + runtime + platform + the model's
                       requirement names (+ the compiling interpreter's version when
                       bytecode ships), so a model-only change reuses it byte for
                       byte (Pulumi sees no diff)
    function/          slml/ (the runtime), model/ (verified copy), slml_handler.py
    function.zip       function/ zipped
    requirements.lock  the pins
    image/             only for large_bundle: image (Dockerfile + context)

Dependencies are installed with uv for the runtime's manylinux platform, binary wheels
only, checked to be ELF files for the target machine, then slimmed, and their shared
libraries stripped of symbol tables and debug info (lambda_layer.py). boto3, botocore,
s3transfer and jmespath are left out of the layer when nothing but a transitive
dependency pulls them in: the Lambda runtime ships them. When the model's own
requirements pin one of them, the pinned version ships.

Bytecode (``aws.bytecode``, see bytecode.py): after slimming, the layer and the function
are compiled by an interpreter of the runtime's exact version (unchecked-hash, Lambda
paths), so cold starts do not compile every module; the layer keeps the bytecode of
what importing the model's frameworks reads, as bytecode only once importing them again
without those sources proved it, the rest ships as source (layer_bytecode.py;
``aws.bytecode: full`` keeps every module's bytecode and every source,
``requirements.source_code: keep`` every source). Skipped, with a note, when
there is no such interpreter here or when the bytecode alone would cross the 250 MB
limit.

Limits, checked before anything is uploaded: zips up to 50 MB go up directly; a larger
layer or function zip goes through an S3 object; more than 250 MB unzipped (layer and
function together) needs a container image (``aws.large_bundle: image``) or fails with
PackageTooLarge saying what to do. ``Bundle.notes`` say which path was taken and why;
``Bundle.outputs`` (a ``LambdaBuildOutputs``) holds the files and the choice as fields.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

from slml.artifact.store import copy_artifact, verified_manifest
from slml.bundle.bytecode import (
    TASK_ROOT,
    Finder,
    Interpreter,
    Mode,
    bytecode_size,
    choose_interpreter,
    compile_tree,
)
from slml.bundle.lambda_delivery import (  # noqa: F401  (re-exported)
    DIRECT_UPLOAD_LIMIT,
    UNZIPPED_LIMIT,
    Delivery,
    choose_delivery,
    delivery,
    lambda_outputs,
    unavoidable_image,
)
from slml.bundle.lambda_image import write_image_context
from slml.bundle.lambda_layer import (  # noqa: F401  (re-exported)
    RUNTIME_PROVIDED,
    build_layer,
    excluded_runtime_packages,
    layer_key,
)
from slml.bundle.lock import Lock, Target, resolve_lock, runtime_requirements
from slml.bundle.onnx_export import export_for_function
from slml.bundle.runtime_files import copy_runtime
from slml.bundle.size import human, measure, package_sizes, zip_dir
from slml.bundle.uvtool import Runner
from slml.bundle.variants import keeps_sources, keeps_symbols, model_requirements
from slml.errors import PackagingError
from slml.pipeline import Bundle, LambdaBuildOutputs, NullReporter, Reporter, SizeReport
from slml.runtime.manifest import artifact_digest

HANDLER_MODULE = "slml_handler"
HANDLER = f"{HANDLER_MODULE}.handler"
_HANDLER_SOURCE = '''"""Lambda entrypoint (slml_handler.handler). Importing it loads the model."""

from slml.runtime.lambda_handler import handler  # noqa: F401
'''


@dataclass(frozen=True)
class LambdaOptions:
    """What the build needs from ``aws:`` in slml.yaml."""

    runtime: str = "python3.12"
    architecture: str = "x86_64"
    large_bundle: Literal["fail", "image"] = "fail"
    bytecode: Mode = "auto"
    requirements: Any = None  # slml.yaml's requirements: (RequirementsConfig)


def build_function(
    artifact_dir: Path,
    out_dir: Path,
    *,
    interpreter: Interpreter | None = None,
    runner: Runner = subprocess.run,
    manifest: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """``out_dir/function/`` (runtime, model, handler module) and its zip; compiled to
    bytecode (paths under /var/task) by ``interpreter`` when given. With ``manifest``
    the artifact copied must still be the one it describes."""
    function = Path(out_dir) / "function"
    if function.exists():
        shutil.rmtree(function)
    copy_runtime(function)
    copy_artifact(artifact_dir, function / "model", manifest=manifest)
    (function / f"{HANDLER_MODULE}.py").write_text(_HANDLER_SOURCE, encoding="utf-8")
    if interpreter is not None:
        compile_tree(interpreter, function, lambda_path=TASK_ROOT, runner=runner, skip="model")
    zipped = zip_dir(function, Path(out_dir) / "function.zip", bytecode=interpreter is not None)
    return function, zipped


@dataclass(frozen=True)
class _Parts:
    """The layer and the function as built, with their sizes."""

    layer_zip: Path
    python: Path
    reused: bool
    layer_notes: list[str]
    function: Path
    function_zip: Path
    size: SizeReport


def _assemble(
    artifact_dir: Path,
    out_dir: Path,
    *,
    layer: Callable[..., tuple[Path, Path, bool, list[str]]],
    interpreter: Interpreter | None,
    runner: Runner,
    reporter: Reporter,
    manifest: dict[str, Any],
) -> _Parts:
    """Build (or reuse) the layer with ``layer(interpreter=...)`` (build_layer, its other
    arguments bound), copy it to ``out_dir``, build the function, measure both."""
    reporter.step("building the dependency layer")
    layer_zip, python, reused, notes = layer(interpreter=interpreter)
    shutil.copyfile(layer_zip, out_dir / "layer.zip")
    reporter.step("packaging the runtime and the model")
    function, function_zip = build_function(
        artifact_dir, out_dir, interpreter=interpreter, runner=runner, manifest=manifest
    )
    size = _size(
        python, function, out_dir / "layer.zip", function_zip, bytecode=interpreter is not None
    )
    return _Parts(layer_zip, python, reused, notes, function, function_zip, size)


def _bytecode_bytes(parts: _Parts) -> int:
    return bytecode_size(parts.python)[1] + bytecode_size(parts.function)[1]


def _with_bytecode(
    assemble: Callable[[Interpreter | None], _Parts], interpreter: Interpreter | None, why: str
) -> tuple[_Parts, str]:
    """Assemble with ``interpreter``; without it when its bytecode alone would cross
    Lambda's 250 MB unzipped limit. Returns the parts and the bytecode note."""
    parts = assemble(interpreter)
    if interpreter is None:
        return parts, why
    extra = _bytecode_bytes(parts)
    if parts.size.unzipped > UNZIPPED_LIMIT >= parts.size.unzipped - extra:
        note = (
            f"bytecode left out: with it the bundle would be {human(parts.size.unzipped)} "
            f"unzipped, over Lambda's 250 MB limit (+{human(extra)} of .pyc); cold starts "
            "recompile (set aws.bytecode: never to silence)"
        )
        return assemble(None), note
    return parts, (
        f"bytecode compiled with Python {interpreter.version} for python{interpreter.minor} "
        f"(unchecked-hash): faster cold starts, {human(extra)} of .pyc"
    )


def _resolve(requirements: list[str], *, target: Target, options: LambdaOptions,
             cache_dir: Path, runner: Runner) -> Lock:  # fmt: skip
    """resolve_lock, with the advice that fits Lambda when nothing resolves."""
    try:
        return resolve_lock(requirements, target=target, cache_dir=cache_dir, runner=runner)
    except PackagingError as exc:
        if options.runtime != "python3.11" or target.platform is None:
            raise
        raise PackagingError(
            exc.message,
            hint="python3.11 functions run on Amazon Linux 2 (glibc 2.26), where wheels "
            "built for manylinux_2_28 or newer (recent scikit-learn, SciPy, ...) cannot "
            "load; set aws.runtime: python3.12 (Amazon Linux 2023), or save the model "
            "with versions that ship manylinux2014 wheels",
        ) from None


def build_lambda_bundle(
    artifact_dir: Path,
    out_dir: Path,
    *,
    options: LambdaOptions,
    cache_dir: Path,
    target: Target | None = None,
    reporter: Reporter | None = None,
    runner: Runner = subprocess.run,
    finder: Finder | None = None,
) -> Bundle:
    """Build the Lambda bundle for ``artifact_dir`` into ``out_dir``. Local only (uv
    may download wheels). ``target`` overrides the Lambda platform (a host build for
    tests: no ELF machine check then). ``finder`` finds the interpreter that compiles
    bytecode (default: bytecode.find_interpreter). Raises PackagingError and its
    subclasses (for ``aws.bytecode: always`` without an interpreter, before any work)."""
    from slml.bundle.lambda_platform import lambda_target

    reporter = reporter or NullReporter()
    manifest = verified_manifest(artifact_dir)
    digest = artifact_digest(manifest)  # the model as saved, even when ONNX is served
    exported = export_for_function(artifact_dir, manifest, Path(out_dir))
    if exported.artifact is not None:
        reporter.step("exported the model to ONNX for the function (parity checked)")
        artifact_dir, manifest = exported.artifact, verified_manifest(exported.artifact)
    target = target or lambda_target(options.runtime, options.architecture)
    interpreter, why = choose_interpreter(options.bytecode, target.python_version, finder=finder)
    model_reqs, variant_notes = model_requirements(manifest, options.requirements, cpu=True)
    requirements = [*model_reqs, *runtime_requirements(("lambda",))]
    reporter.step(f"resolving dependencies for {target.describe()}")
    lock = _resolve(requirements, target=target, options=options, cache_dir=cache_dir,
                    runner=runner)  # fmt: skip
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(lock.path, out_dir / "requirements.lock")
    layer = partial(
        build_layer, lock, target=target, cache_dir=cache_dir, runner=runner,
        machine=options.architecture if target.platform else None,
        exclude=excluded_runtime_packages(manifest.get("requirements", [])),
        keep=model_reqs, full=options.bytecode == "full",
        keep_sources=keeps_sources(options.requirements),
        keep_symbols=keeps_symbols(options.requirements),
    )  # fmt: skip
    parts, bytecode_note = _with_bytecode(
        lambda compiler: _assemble(
            artifact_dir, out_dir, layer=layer, interpreter=compiler, runner=runner,
            reporter=reporter, manifest=manifest,
        ),
        interpreter,
        why,
    )  # fmt: skip
    notes = (*exported.notes, *variant_notes, *((bytecode_note,) if bytecode_note else ()))
    forced = unavoidable_image(unzipped=parts.size.unzipped, largest=parts.size.largest,
                               export_notes=exported.notes,
                               flavor=manifest.get("flavor"))  # fmt: skip
    if forced is not None and options.large_bundle != "image":
        options = replace(options, large_bundle="image")
        notes = (*notes, f"no Lambda zip can hold this model ({forced}): building a "
                 "container image instead (set aws.large_bundle: image to say so)")
    bundle = _bundle(parts, out_dir, lock, manifest, target, options, notes, reporter)
    return replace(bundle, model_sha256=digest)


def _bundle(
    parts: _Parts,
    out_dir: Path,
    lock: Lock,
    manifest: dict[str, Any],
    target: Target,
    options: LambdaOptions,
    extra_notes: tuple[str, ...],
    reporter: Reporter,
) -> Bundle:
    """Choose the delivery and describe the result."""
    size = parts.size
    mode, why = choose_delivery(
        layer_zip=size.parts["layer_zipped"], function_zip=size.parts["function_zipped"],
        unzipped=size.unzipped, large_bundle=options.large_bundle, largest=size.largest,
        manifest=manifest,
    )  # fmt: skip
    files = {"layer": out_dir / "layer.zip", "zip": parts.function_zip}
    files |= {"function": parts.function, "layer_dir": parts.python}
    if mode == "image":
        files["image"] = write_image_context(
            out_dir, python=parts.python, function=parts.function, target=target,
            name=manifest["name"],
        )  # fmt: skip
    notes = (
        f"dependencies for {target.describe()}"
        + (" (layer reused from cache: lock unchanged)" if parts.reused else ""),
        *parts.layer_notes,
        *extra_notes,
        f"delivery: {mode}: {why}",
    )
    for note in notes:
        reporter.detail(note)
    return Bundle(
        provider="aws", path=out_dir, lock_hash=lock.hash,
        model_sha256=artifact_digest(manifest), python_version=target.python_version,
        platform=target.platform or "host", size=size, files=files, notes=notes,
        reused=parts.reused,
        outputs=LambdaBuildOutputs(
            function_zip=parts.function_zip, layer_zip=files["layer"],
            function_dir=parts.function, layer_dir=parts.python, delivery=mode, reason=why,
            image_context=files.get("image"),
        ),
    )  # fmt: skip


def _size(
    python: Path, function: Path, layer_zip: Path, function_zip: Path, *, bytecode: bool
) -> SizeReport:
    layer = measure(python, bytecode=bytecode)
    function_size = sum(s for _, s in package_sizes(function, bytecode=bytecode))
    parts = {
        "layer": layer.unzipped,
        "layer_zipped": layer_zip.stat().st_size,
        "function": function_size,
        "function_zipped": function_zip.stat().st_size,
    }
    return SizeReport(
        unzipped=layer.unzipped + function_size,
        zipped=parts["layer_zipped"] + parts["function_zipped"],
        largest=layer.largest,
        parts=parts,
    )
