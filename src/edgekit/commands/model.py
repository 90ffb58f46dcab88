"""``edgekit build`` and ``edgekit info``: make a model file, or describe one."""

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from edgekit.commands import reports_errors

if TYPE_CHECKING:
    from edgekit.models import LayerRow, LoadedModel

DEMO_NOTE = (
    "demo weights by default: seeded initialisation with BatchNorm statistics "
    "measured on the calibration photographs; not a trained discriminator "
    "(pass --weights for yours)"
)


class ModelName(StrEnum):
    """The built-in discriminators."""

    patchgan = "patchgan"
    pix2pix = "pix2pix"


SeedOption = Annotated[
    int, typer.Option(help="Seed of the built-in model's initialisation.", min=0)
]
WeightsOption = Annotated[
    Path | None,
    typer.Option(
        help="Weights to load: Keras 3 .weights.h5 or Keras 2 .h5 (save_weights).",
        dir_okay=False,
    ),
]


@reports_errors
def build(
    model: Annotated[
        ModelName, typer.Option("--model", "-m", help="Which discriminator.")
    ] = ModelName.patchgan,
    seed: SeedOption = 0,
    weights: WeightsOption = None,
    calibration: Annotated[
        Path | None,
        typer.Option(
            help="Photographs for the demo weights [default: calibration/images].",
            file_okay=False,
        ),
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The .keras file to write.")
    ] = Path("model.keras"),
) -> None:
    """Build the discriminator and save it as a .keras file."""
    from edgekit.models import resolve_model, save_keras_file

    loaded = resolve_model(
        model.value, weights=weights, seed=seed, calibration=calibration
    )
    save_keras_file(loaded.model, output)

    typer.echo(
        f"wrote {output}: {loaded.source}; weights sha256 {loaded.weights_sha256[:16]}"
    )


@reports_errors
def info(
    model: Annotated[
        str,
        typer.Argument(help="A built-in model (patchgan, pix2pix) or a .keras file."),
    ] = "patchgan",
    seed: SeedOption = 0,
    weights: WeightsOption = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON on stdout instead of a table.")
    ] = False,
) -> None:
    """Print the model's layer table, parameters and MACs."""
    from edgekit.models import BUILTIN_MODELS, describe, resolve_model

    # The table does not depend on the weights, so the demo statistics (which
    # take a pass over the photographs) are not computed here.
    loaded = resolve_model(model, weights=weights, seed=seed, demo_weights=False)
    builtin_demo = model in BUILTIN_MODELS and weights is None
    rows = describe(loaded.model)

    if json_output:
        typer.echo(json.dumps(_info_json(loaded, rows, builtin_demo), indent=2))
        return
    _print_table(loaded, rows, builtin_demo)


def _source_text(loaded: "LoadedModel", builtin_demo: bool) -> str:
    # ``info`` builds the model without demo statistics (the table does not
    # need them), so the loaded model's own description would mislead.
    if builtin_demo:
        return loaded.source.split(", fresh initialisation")[0]
    return loaded.source


def _weights_text(loaded: "LoadedModel", builtin_demo: bool) -> str:
    if builtin_demo:
        return DEMO_NOTE
    return f"the user's: {loaded.source}; sha256 {loaded.weights_sha256}"


def _info_json(
    loaded: "LoadedModel", rows: list["LayerRow"], builtin_demo: bool
) -> dict[str, Any]:
    keras_model = loaded.model
    total = rows[-1]
    weights: dict[str, Any] = {
        "kind": "demo" if builtin_demo else "user",
        "trained": False if builtin_demo else loaded.trained,
        "description": _weights_text(loaded, builtin_demo),
    }
    if not builtin_demo:
        weights["sha256"] = loaded.weights_sha256

    return {
        "model": loaded.name,
        "source": _source_text(loaded, builtin_demo),
        "weights": weights,
        "inputs": _tensors([t.name for t in keras_model.inputs], keras_model.inputs),
        "outputs": _tensors(keras_model.output_names, keras_model.outputs),
        "layers": [row.to_dict() for row in rows[:-1]],
        "total": {
            "params": total.params,
            "trainable_params": _trainable(keras_model),
            "macs": total.macs,
        },
    }


def _tensors(names: list[str], tensors: list) -> list[dict[str, Any]]:
    return [
        {"name": name, "shape": list(tensor.shape), "dtype": str(tensor.dtype)}
        for name, tensor in zip(names, tensors, strict=True)
    ]


def _trainable(keras_model) -> int:
    return sum(int(_count(v.shape)) for v in keras_model.trainable_weights)


def _count(shape) -> int:
    size = 1
    for dim in shape:
        size *= int(dim)
    return size


def _print_table(
    loaded: "LoadedModel", rows: list["LayerRow"], builtin_demo: bool
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=_source_text(loaded, builtin_demo), title_justify="left")
    for column in ("layer", "type", "configuration", "input shape", "output shape"):
        table.add_column(column)
    table.add_column("params", justify="right")
    table.add_column("MACs", justify="right")

    for row in rows[:-1]:
        table.add_row(
            row.name,
            row.kind,
            row.config,
            _shape_text(row.input_shape),
            _shape_text(row.output_shape),
            f"{row.params:,}",
            _macs_text(row.macs),
        )
    total = rows[-1]
    table.add_section()
    table.add_row("total", "", "", "", "", f"{total.params:,}", _macs_text(total.macs))

    console = Console()
    if not console.is_terminal:
        # Piped or captured output would otherwise wrap at 80 columns.
        console = Console(width=160)
    console.print(table)
    console.print(
        f"{total.params:,} parameters ({_trainable(loaded.model):,} trainable), "
        f"{_macs_text(total.macs)} MACs per image"
    )
    console.print(f"weights: {_weights_text(loaded, builtin_demo)}")


def _shape_text(shape: tuple | None) -> str:
    if shape is None:
        return ""
    if shape and isinstance(shape[0], tuple):
        return " + ".join(_shape_text(part) for part in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _macs_text(macs: int) -> str:
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if macs >= scale:
            return f"{macs / scale:.2f} {unit}"
    return str(macs)
