"""The slml commands. Each parses its options, calls slml.api and renders the result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from slml import api
from slml.cli import (
    ConfigOpt,
    JsonOpt,
    ProviderOpt,
    StageOpt,
    _opts,
    _run,
    app,
    err,
    out,
    render,
)
from slml.cli.payload import load_payload
from slml.config import CONFIG_FILE
from slml.errors import UsageError
from slml.providers import pulumi_cli


@app.command()
def init(
    model: Annotated[Path, typer.Argument(help="The model artifact directory to serve.")],
    name: Annotated[str | None, typer.Option(help="Project name (default: from the "
                                             "artifact's directory).")] = None,
    provider: Annotated[str, typer.Option("--provider", "-p", help="Default provider.")] = "local",
    force: Annotated[bool, typer.Option(help="Overwrite an existing slml.yaml.")] = False,
) -> None:
    """Write a commented slml.yaml for MODEL in the current directory."""
    from slml.project_init import init_project

    written = init_project(model=model, cwd=Path.cwd(), name=name, provider=provider, force=force)
    out.print(f"wrote {written.path}")
    if not written.model_exists:
        err.print(f"[yellow]note:[/] {escape(str(model))} does not exist yet; save the model "
                  "there first")


@app.command()
def save(
    model: Annotated[str, typer.Argument(help="A model file made elsewhere (.joblib, "
                                         ".pkl/.pickle, .onnx, XGBoost .json/.ubj, LightGBM "
                                         ".txt, CatBoost .cbm, PyTorch .pt (TorchScript) / "
                                         ".pt2 (torch.export), Keras .keras), a transformers "
                                         "save_pretrained directory, an MLflow model "
                                         "directory (with an MLmodel file), or an MLflow URI: "
                                         "models:/NAME/VERSION, models:/NAME@ALIAS, "
                                         "runs:/RUN_ID/PATH (from MLFLOW_TRACKING_URI).")],
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Artifact directory "
                                                 "(default: artifacts/STEM, the file's stem "
                                                 "or the model's name).")] = None,
    name: Annotated[str | None, typer.Option(help="Model name.")] = None,
    version: Annotated[str | None, typer.Option(help="Model version.")] = None,
    flavor: Annotated[str | None, typer.Option(help="sklearn, onnx, python, xgboost, "
                                               "lightgbm, catboost, statsmodels, torch, "
                                               "keras (default: "
                                               "detected).")] = None,
    sample: Annotated[Path | None, typer.Option(help="A few rows (.csv with a header, .json "
                                                "or .parquet) to infer the input schema "
                                                "from; a model fit on a DataFrame keeps "
                                                "its column names and dtypes.")] = None,
    method: Annotated[str | None, typer.Option(help="The method to serve: predict "
                                               "(default), predict_proba, "
                                               "decision_function.")] = None,
    requirement: Annotated[list[str] | None, typer.Option("--requirement", "-r", help="A "
                           "pinned requirement (repeatable); replaces the derived pin of the "
                           "same name, adds new names.")] = None,
    drop: Annotated[list[str] | None, typer.Option("--drop", help="A derived requirement "
                    "to leave out, by name (repeatable); with -r, swaps it: --drop xgboost "
                    "-r xgboost-cpu==3.2.0.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing artifact.")] = False,
    check: Annotated[bool, typer.Option("--check/--no-check", help="Load and predict the "
                     "sample in a clean process limited to the requirements before "
                     "keeping the artifact.")] = True,
    serialization: Annotated[str | None, typer.Option(help="scikit-learn models: joblib "
                             "(default) or skops (no pickle; loaded with only the types the "
                             "manifest lists as trusted: for models from people you do not "
                             "fully trust).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Save MODEL as an slml artifact: the model plus its manifest (flavor, schema,
    pinned requirements, sha256 of every file, who and when). An MLflow model is saved
    as slml's native flavor where one exists (sklearn, xgboost, lightgbm, onnx, pytorch,
    keras, transformers), else served through mlflow.pyfunc; its URI, run id and
    registry version are recorded."""
    from slml.artifact import save_model_file
    from slml.artifact.mlflow_source import default_name, is_mlflow_source, save_mlflow_model
    from slml.cli.payload import load_sample

    common = {
        "sample_input": load_sample(sample) if sample is not None else None,
        "requirements": requirement or None, "drop_requirements": drop or None,
        "method": method, "check": check, "name": name, "version": version,
        "overwrite": overwrite,
    }  # fmt: skip
    if is_mlflow_source(model):
        if flavor is not None or serialization is not None:
            raise UsageError("--flavor and --serialization do not apply to an MLflow model",
                             hint="slml takes the flavor and serialization from its MLmodel")
        target = out_dir or Path("artifacts") / default_name(model)
        info = save_mlflow_model(model, target, **common)
    elif Path(model).is_file() or Path(model).is_dir():
        info = save_model_file(Path(model), out_dir or Path("artifacts") / Path(model).stem,
                               flavor=flavor, serialization=serialization, **common)
    else:
        raise UsageError(f"{model} is neither a model file nor an MLflow model",
                         hint="give a model file such as model.joblib, model.onnx or "
                         "model.json, a transformers save_pretrained directory, a directory "
                         "with an MLmodel file, or models:/NAME/1")
    if json_out:
        render.print_json(out, info)
        return
    out.print(f"saved [bold]{info.name}[/] version {info.version} ({info.flavor}) to {info.path}")
    out.print(f"  {len(info.files)} files: {', '.join(info.files[:8])}"
              + (", ..." if len(info.files) > 8 else ""))
    trusted = info.manifest["flavor_options"].get("trusted_types")
    if trusted is not None:
        out.print(f"  skops trusted types: {', '.join(trusted) or 'none beyond skops defaults'}")
    out.print("  to deploy only this artifact, pin its digest in slml.yaml:")
    out.print(f"  model_digest: {info.digest}", soft_wrap=True)


@app.command()
def build(config: ConfigOpt = None, provider: ProviderOpt = None, stage: StageOpt = None,
          json_out: JsonOpt = False,
          allow_unchecked: Annotated[bool, typer.Option(help="Build an artifact saved with "
                                     "--no-check (its serve check skipped) anyway; for "
                                     "deploy and preview: SLML_ALLOW_UNCHECKED=1.")] = False,
          ) -> None:
    """Build the bundle for the provider (no cloud calls) and report its size."""
    if allow_unchecked:
        import os

        from slml.artifact.unchecked import ENV

        os.environ[ENV] = "1"
    result = _run(lambda r: api.build(reporter=r, **_opts(config, provider, stage)),
                  json_mode=json_out)
    render.print_json(out, result) if json_out else render.bundle(out, result)


CanaryOpt = Annotated[float | None, typer.Option("--canary", min=0, max=99.99, help="Deploy "
                     "beside the live version with this percent of traffic (0: rollout."
                     "canary_percent of slml.yaml).")]
ShadowOpt = Annotated[bool, typer.Option("--shadow", help="Deploy beside the live version, "
                      "sent a copy of its traffic; answers captured, never returned.")]


def _rollout(canary: float | None, shadow: bool) -> dict:
    return {k: v for k, v in (("canary", canary), ("shadow", shadow)) if v not in (None, False)}


@app.command()
def preview(config: ConfigOpt = None, provider: ProviderOpt = None, stage: StageOpt = None,
            canary: CanaryOpt = None, shadow: ShadowOpt = False,
            json_out: JsonOpt = False) -> None:
    """Show what `slml deploy` would do (with --canary/--shadow: the traffic change).
    Without the Pulumi CLI or credentials, the cloud providers print an offline plan
    (the same program run under Pulumi's mocks)."""
    result = _run(lambda r: api.preview(reporter=r, **_rollout(canary, shadow),
                                        **_opts(config, provider, stage)), json_mode=json_out)
    render.print_json(out, result) if json_out else render.plan(out, result)


GuardOpt = Annotated[bool, typer.Option("--guard", help="After a --canary deploy, watch the "
                     "canary (rollout.guard thresholds) and roll it back when it breaches.")]
AutoPromoteOpt = Annotated[bool, typer.Option("--auto-promote", help="Promote a canary the "
                           "guard held for its window.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask: install the Pulumi "
                   "CLI into slml's cache if a cloud deploy needs it and it is missing.")]


def _consent(yes: bool) -> None:
    if yes:
        pulumi_cli.allow_install()


@app.command()
def deploy(config: ConfigOpt = None, provider: ProviderOpt = None, stage: StageOpt = None,
           canary: CanaryOpt = None, shadow: ShadowOpt = False, guard: GuardOpt = False,
           auto_promote: AutoPromoteOpt = False, yes: YesOpt = False,
           json_out: JsonOpt = False) -> None:
    """Build and deploy; prints the endpoint URL. If the new version fails, the previous
    one keeps serving. --canary P / --shadow deploy beside the live version; `slml
    promote` then gives it all traffic, `slml rollback` drops it."""
    _consent(yes)
    opts = _opts(config, provider, stage)
    if (guard or auto_promote) and canary is None:
        raise UsageError("--guard and --auto-promote watch a canary: add --canary PERCENT",
                         hint="`slml guard` judges a canary that is already live")
    guarding = canary is not None and (guard or _guarded_by_config(opts))
    result = _run(lambda r: api.deploy(reporter=r, **_rollout(canary, shadow), **opts),
                  json_mode=json_out)
    if not guarding:
        render.print_json(out, result) if json_out else render.deployed(out, result)
        return
    if not json_out:
        render.deployed(out, result)
    verdict = _guard(opts, auto_promote or None, json_out)
    if json_out:
        render.print_json(out, {"deploy": result, "guard": verdict})


def _guarded_by_config(opts: dict) -> bool:
    return api.open_session(**opts).ctx.config.rollout.guard is not None


def _guard(opts: dict, auto_promote: bool | None, json_out: bool) -> dict:
    """Run the guard, print its verdict (unless ``json_out``); the verdict as data."""
    verdict = _run(lambda r: api.guard(reporter=r, auto_promote=auto_promote, **opts),
                   json_mode=json_out)
    data = {"outcome": verdict.outcome, "reason": verdict.reason,
            "metrics": verdict.metrics.to_json()}  # fmt: skip
    if not json_out:
        colour = {"breached": "red", "held": "green"}.get(verdict.outcome, "yellow")
        out.print(f"guard: [{colour}]{verdict.outcome}[/]: {escape(verdict.reason)}")
    return data


@app.command("guard")
def guard_(config: ConfigOpt = None, provider: ProviderOpt = None, stage: StageOpt = None,
           auto_promote: AutoPromoteOpt = False, yes: YesOpt = False,
           json_out: JsonOpt = False) -> None:
    """Watch the live canary for the guard's window (rollout.guard in slml.yaml): roll it
    back when its error rate or p99 breaches, promote it with --auto-promote if held."""
    _consent(yes)
    verdict = _guard(_opts(config, provider, stage), auto_promote or None, json_out)
    if json_out:
        render.print_json(out, verdict)


@app.command()
def promote(
    from_stage: Annotated[str | None, typer.Option("--from", help="Promote what serves "
                          "this stage (same artifact digest and lock) ...")] = None,
    to_stage: Annotated[str | None, typer.Option("--to", help="... to this stage, with "
                        "its own config.")] = None,
    config: ConfigOpt = None, provider: ProviderOpt = None, stage: StageOpt = None,
    yes: YesOpt = False, json_out: JsonOpt = False,
) -> None:
    """Give the canary (or shadow) all traffic and retire the old primary; with --from
    and --to, deploy one stage's exact bundle to another."""
    _consent(yes)
    result = _run(lambda r: api.promote(reporter=r, from_stage=from_stage, to_stage=to_stage,
                                        **_opts(config, provider, stage)), json_mode=json_out)
    render.print_json(out, result) if json_out else render.deployed(out, result)


@app.command()
def status(config: ConfigOpt = None, provider: ProviderOpt = None, stage: StageOpt = None,
           json_out: JsonOpt = False) -> None:
    """Show whether the deployment is up, its URL, and its live versions with their
    share of traffic (`--json`: "traffic": [{"version", "percent", "role"}])."""
    result = api.status(**_opts(config, provider, stage))
    render.print_json(out, result) if json_out else render.status(out, result)


@app.command("list")
def list_(config: ConfigOpt = None, json_out: JsonOpt = False) -> None:
    """List every recorded deployment of this project (all stages and providers)."""
    records = api.deployments(config)
    render.print_json(out, records) if json_out else render.deployments(out, records)


@app.command()
def history(config: ConfigOpt = None, json_out: JsonOpt = False) -> None:
    """Show every deploy, failed deploy, rollback and destroy of this project."""
    events = api.history(config)
    render.print_json(out, events) if json_out else render.history(out, events)


@app.command()
def rollback(
    to: Annotated[int | None, typer.Option("--to", min=1, help="The version to bring back "
                                           "(default: the one before the current).")] = None,
    config: ConfigOpt = None, provider: ProviderOpt = None, stage: StageOpt = None,
    yes: YesOpt = False, json_out: JsonOpt = False,
) -> None:
    """With a canary or shadow live: drop it, all traffic back to the primary. Otherwise
    serve an earlier version again, as a new version (blue/green like deploy)."""
    _consent(yes)
    result = _run(lambda r: api.rollback(version=to, reporter=r,
                                         **_opts(config, provider, stage)), json_mode=json_out)
    render.print_json(out, result) if json_out else render.deployed(out, result)


@app.command()
def invoke(
    data: Annotated[str | None, typer.Argument(help="JSON: {\"instances\": [...]}, "
                                               "{\"inputs\": {...}} or a list of rows.")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="A .json or .csv file "
                                              "(CSV: one row per instance).")] = None,
    config: ConfigOpt = None, provider: ProviderOpt = None, stage: StageOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Send inputs to the deployed endpoint and print the predictions."""
    payload = load_payload(data, file, schema=_input_schema(config) if file else None)
    result = api.invoke(payload, **_opts(config, provider, stage))
    if json_out:
        render.print_json(out, result)
        return
    render.predictions(out, result)


def _input_schema(config: Path | None) -> dict | None:
    """The project's model input schema (to type CSV cells), or None when unreadable."""
    import json

    from slml.config import load_config
    from slml.errors import SlmlError
    from slml.runtime.manifest import MANIFEST_FILE

    path = config or Path.cwd() / CONFIG_FILE
    try:
        model = load_config(path if path.is_file() else path / CONFIG_FILE).model
        manifest = json.loads((model / MANIFEST_FILE).read_text(encoding="utf-8"))
        return (manifest.get("signature") or {}).get("inputs")
    except (SlmlError, OSError, ValueError, AttributeError):
        return None


@app.command()
def logs(
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, help="How many lines.")] = 100,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines "
                                         "(Ctrl-C stops).")] = False,
    config: ConfigOpt = None, provider: ProviderOpt = None, stage: StageOpt = None,
) -> None:
    """Print the deployment's logs (one JSON line per request)."""
    for line in api.logs(lines=lines, follow=follow, **_opts(config, provider, stage)):
        out.print(line.rstrip("\n"), highlight=False, markup=False, soft_wrap=True)


@app.command()
def destroy(
    config: ConfigOpt = None, provider: ProviderOpt = None, stage: StageOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask (cloud providers "
                                      "ask before deleting resources; installs the Pulumi "
                                      "CLI if it is missing).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Also when the deployment record is "
                                        "unreadable: stop what it ran, set it aside.")] = False,
) -> None:
    """Stop and remove the deployment (its record stays in .slml/history.jsonl)."""
    _consent(yes)
    chosen = api.open_session(**_opts(config, provider, stage)).ctx.config
    if not yes and chosen.provider != "local":
        typer.confirm(
            f"Destroy every {chosen.provider} resource of {chosen.name} (stage {chosen.stage})?",
            abort=True,
        )
    # the provider reports what it stopped, or that nothing was deployed
    _run(lambda r: api.destroy(reporter=r, force=force, **_opts(config, provider, stage)),
         json_mode=False)
