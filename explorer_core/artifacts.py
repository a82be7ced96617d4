"""Saving and loading trained models: ``<name>.safetensors`` (tensors only) + ``<name>.json``.

The JSON holds the family, the model config (enough to rebuild the module), the training recipe, the
preprocessing, provenance (device, torch version, data checksums, wall time), the metrics on the test set and
the sha256 of the weights file, which is checked at load. Weights are written to a temporary name and then
renamed, so a half-written file is never loadable. No pickle anywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from explorer_core.atomic import save_tensors, write_json
from explorer_core.data import PREPROCESSINGS
from explorer_core.device import available_memory
from explorer_core.families import FAMILIES as FAMILY_RECORDS
from explorer_core.families import (
    UnknownFamilyError,
    is_model_family,
    model_family,
    recipe_field_schemas,
)
from explorer_core.models.base import LatentVariableModel
from explorer_core.paths import PRETRAINED_DIR
from explorer_core.training.recipes import RECIPE_CLASSES
from explorer_core.untrusted import (
    AnyJSON,
    Flag,
    ListOf,
    MapOf,
    Num,
    Obj,
    SchemaError,
    Text,
    UntrustedFileError,
    check,
    inside,
    read_json_object,
    regular_file_size,
)


class ArtifactError(RuntimeError):
    """A model file is missing, corrupt, or does not match its description; the message says which."""


# ------------------------------------------------------------------------------------------------ schema
# A model's JSON is untrusted input (a model folder may hold anything): every field the app reads has a type
# and a range here, and a file that does not fit is listed as one entry with its reason, never loaded.

PREPROCESSING_NAMES = PREPROCESSINGS
#: nats per image beyond which an ELBO (or its terms) is not a trained model's (MNIST has 784 pixels)
ABSURD_NATS = 1e6
#: the JSON description of one model is small (its history is the largest part)
MAX_MODEL_JSON_BYTES = 8 * 2**20
#: a model this app builds has at most this many parameters (the widest config allowed is far below)
MAX_PARAMETERS = 400_000_000
#: loading is refused when the weights need more than this fraction of the free memory
LOAD_MEMORY_FRACTION = 0.5
#: extra bytes a safetensors file may hold beyond its float32 tensors (its JSON header)
SAFETENSORS_SLACK = 16 * 2**20

_NATS = Num(-ABSURD_NATS, ABSURD_NATS)
_NATS_OPT = Num(-ABSURD_NATS, ABSURD_NATS, optional=True)
_INT_OPT = Num(0, 10**9, integer=True, optional=True)
_TEXT_OPT = Text(max_len=10_000, optional=True)

#: the recipe fields whose recipe class checks a rule of its own, with their JSON bounds (the others are
#: derived from the limits written on the recipe and config classes, :func:`recipe_field_schemas`)
_RECIPE_RULES: dict[str, object] = {
    "lr": Num(1e-12, 10),
    "patience": Num(1, 10_000, integer=True, optional=True),
    "max_minutes": Num(1e-6, 7 * 24 * 60, optional=True),
    "max_grad_norm": Num(1e-12, 1e12, optional=True),
    "seed": Num(0, 2**63 - 1, integer=True),
}
_RECIPE_LIMITS = recipe_field_schemas()
#: a training recipe as JSON (a model's ``recipe``, a run's ``config.json``): the fields of every family's
#: recipe class (:mod:`explorer_core.training.recipes`), typed and bounded, in their order;
#: ``TrainConfig.from_dict`` then takes the family's own (a recipe written before each family had its own
#: class holds every family's)
RECIPE_FIELDS: dict[str, object] = {
    "family": Text(choices=tuple(FAMILY_RECORDS)),
    **{
        f.name: _RECIPE_LIMITS[f.name] if f.name in _RECIPE_LIMITS else _RECIPE_RULES[f.name]
        for recipe in RECIPE_CLASSES
        for f in fields(recipe)
        if f.name != "family"
    },
}

#: each family's module config (``model.config.to_dict()``): its record's ``config_schema``
CONFIG_SCHEMAS: dict[str, Obj] = {name: spec.config_schema for name, spec in FAMILY_RECORDS.items()}

HISTORY_ROW = Obj(
    {"epoch": Num(1, 10**6, integer=True), "train_elbo": _NATS_OPT, "val_elbo": _NATS_OPT},
    required=frozenset({"epoch"}),
    extra="scalars",
)
TEST_METRICS = Obj(
    {
        "elbo": _NATS_OPT,
        "elbo_without_log_c": _NATS_OPT,
        "reconstruction": _NATS_OPT,
        "kl": Num(-ABSURD_NATS, ABSURD_NATS, optional=True),
        "conditional_entropy": Num(0, 100, optional=True),
        "cluster_accuracy": Num(0, 1, optional=True),
        "active_units": Num(0, 1024, integer=True, optional=True),
        "n_images": Num(0, 10**7, integer=True, optional=True),
        "iwae_bound": _NATS_OPT,
        "iwae_k": Num(0, 10**6, integer=True, optional=True),
        "nll_estimate": _NATS_OPT,
        "matched_label": ListOf(Num(-1, 9, integer=True), max_len=100, optional=True),
        "cluster_usage": ListOf(Num(0, 1), max_len=100, optional=True),
        "contingency": ListOf(ListOf(Num(0, 10**7, integer=True), max_len=10), max_len=100, optional=True),
        "per_row_reconstruction": ListOf(_NATS, max_len=28, optional=True),
        "per_row_kl": ListOf(_NATS, max_len=28, optional=True),
    },
    extra="scalars",
    optional=True,
)
TRAINING = Obj(
    {
        "epochs_run": _INT_OPT,
        "best_epoch": _INT_OPT,
        "best_val_elbo": _NATS_OPT,
        "stopped": _TEXT_OPT,
        "resumed": Flag(optional=True),
        "wall_seconds": Num(0, 1e9, optional=True),
        "device": Text(max_len=200, optional=True),
        "torch": Text(max_len=200, optional=True),
        "host": Text(max_len=300, optional=True),
        "n_train": _INT_OPT,
        "n_validation": _INT_OPT,
        "history": ListOf(HISTORY_ROW, max_len=100_000, optional=True),
    },
    optional=True,
)
_SHA256 = Text(max_len=64)


def _check_model_description(d: dict) -> None:
    """Rules across fields: the family's module config, sha256 digests."""
    family = d["family"]
    config = check(d.get("config"), CONFIG_SCHEMAS[family], "config")
    try:
        model_family(family).config_class(**config)
    except (TypeError, ValueError) as err:
        raise SchemaError(f"config: {err}") from err
    d["config"] = config
    for where, digest in (
        ("sha256", d.get("sha256")),
        ("views.sha256", (d.get("views") or {}).get("sha256")),
    ):
        if digest is not None and (len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest)):
            raise SchemaError(f"{where} must be 64 lowercase hex digits")


MODEL_SCHEMA = Obj(
    {
        "name": Text(max_len=200, optional=True),
        "family": Text(choices=tuple(FAMILY_RECORDS)),
        "config": AnyJSON(optional=False),
        "recipe": Obj(RECIPE_FIELDS, optional=True),
        "preprocessing": Text(choices=PREPROCESSING_NAMES, optional=True),
        "training": TRAINING,
        "data": Obj(
            {
                "dataset": Text(max_len=200, optional=True),
                "checksums_md5": MapOf(Text(max_len=64), max_len=16, optional=True),
            },
            optional=True,
        ),
        "test_metrics": TEST_METRICS,
        "units": _TEXT_OPT,
        # how the model was chosen (explorer_core.evaluation.selection): a text or a record
        "selection": AnyJSON(),
        "weights": Text(max_len=255),
        "sha256": _SHA256,
        "views": Obj(
            {"file": Text(max_len=255), "sha256": _SHA256},
            required=frozenset({"file", "sha256"}),
            optional=True,
        ),
    },
    required=frozenset({"family", "config", "weights", "sha256"}),
    check=_check_model_description,
    extra="keep",  # fields no page reads (newer writers' additions) travel on untouched
)


def read_model_description(path: str | Path) -> dict[str, Any]:
    """The validated JSON description of a model (see :data:`MODEL_SCHEMA`), with ``path`` added.

    Only a regular file of at most :data:`MAX_MODEL_JSON_BYTES` is read; fields outside the schema are
    dropped; the weights (and views) file names must stay in the JSON's folder.

    Raises:
        ArtifactError: ``"<name>.json: not a model file: <why>"``.
    """
    path = Path(path)
    try:
        raw = read_json_object(path, MAX_MODEL_JSON_BYTES, "model file")
        meta = check(raw, MODEL_SCHEMA)
        inside(path.parent, meta["weights"], "weights file")
        if meta.get("views"):
            inside(path.parent, meta["views"]["file"], "views file")
    except UntrustedFileError as err:
        message = str(err)
        if not message.startswith(f"{path.name}: "):
            message = f"{path.name}: not a model file: {message}"
        raise ArtifactError(message) from err
    except SchemaError as err:
        raise ArtifactError(f"{path.name}: not a model file: {err}.") from err
    if not meta.get("name"):
        meta["name"] = path.stem
    meta["path"] = str(path)
    return meta


def count_model_parameters(family: str, config: dict[str, Any]) -> int:
    """Parameters of ``family``'s module with ``config``, counted on PyTorch's ``meta`` device (nothing
    allocated).

    Raises:
        ArtifactError: unknown family or an invalid config.
    """
    with torch.device("meta"):
        model = build_model(family, config)
    return sum(p.numel() for p in model.parameters())


def check_loadable(family: str, config: dict[str, Any], weights: Path) -> int:
    """Before a model is built: its parameter count, the weights file's size against it, and the memory the
    load needs (the file plus the module, about twice its size) against what is free. Returns the count.

    Raises:
        ArtifactError: too many parameters, a file whose size cannot hold them, or not enough memory.
    """
    params = count_model_parameters(family, config)
    if params > MAX_PARAMETERS:
        raise ArtifactError(f"a {family} with {params:,} parameters is larger than this app loads.")
    try:
        size = regular_file_size(weights)
    except UntrustedFileError as err:
        raise ArtifactError(f"its weights file {err}") from err
    if not 4 * params <= size <= 4 * params + SAFETENSORS_SLACK:
        raise ArtifactError(
            f"{weights.name} holds {size:,} bytes, which does not fit a {family} with {params:,} float32 "
            "parameters: the file is corrupt or does not belong to this description."
        )
    free = available_memory("cpu")
    if free is not None and 2 * size > LOAD_MEMORY_FRACTION * free:
        raise ArtifactError(
            f"loading {weights.name} needs about {2 * size / 2**30:.2f} GiB, but only {free / 2**30:.2f} GiB "
            "is free."
        )
    return params


@dataclass
class LoadedModel:
    """A model rebuilt from disk (in eval mode) and its JSON description."""

    name: str
    family: str
    model: LatentVariableModel
    meta: dict[str, Any]

    @cached_property
    def description(self) -> ModelDescription:
        """The typed description of :attr:`meta` (:func:`describe`), built once."""
        return describe(self.meta)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_model(family: str, config: dict[str, Any]) -> LatentVariableModel:
    """Rebuild an (untrained) module of ``family`` from its config dict.

    Raises:
        ArtifactError: unknown family or an invalid config.
    """
    try:
        spec = model_family(family)
    except UnknownFamilyError as err:
        raise ArtifactError(str(err)) from err
    try:
        return spec.model_class(spec.config_class(**config))
    except (TypeError, ValueError) as err:
        raise ArtifactError(f"invalid {family} config {config}: {err}") from err


def _atomic_save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> str:
    """Write tensors atomically (:func:`explorer_core.atomic.save_tensors`), return the file's sha256."""
    save_tensors(tensors, path, metadata)
    return sha256_of(path)


def model_meta(
    recipe: dict[str, Any],
    preprocessing: str,
    training: dict[str, Any],
    checksums: dict[str, str],
    test_metrics: dict[str, Any],
    units: str,
    **extra: Any,
) -> dict[str, Any]:
    """The description a model JSON carries beside its config (:func:`save_model`'s ``meta``), built in one
    place for the trainer and Watch it learn's export: the ``recipe`` (``TrainConfig.to_dict()``), the
    ``preprocessing``, how it was ``training`` (wall seconds, device, torch ...), the MNIST files'
    ``checksums`` (md5), the ``test_metrics`` (nats per image) and their ``units``; ``extra`` keys are kept
    for the record (the app's schema reads only the fields above)."""
    return {
        "recipe": recipe,
        "preprocessing": preprocessing,
        "training": training,
        "data": {"dataset": "MNIST", "checksums_md5": checksums},
        "test_metrics": test_metrics,
        "units": units,
        **extra,
    }


def save_model(
    model: LatentVariableModel,
    family: str,
    directory: Path,
    name: str,
    meta: dict[str, Any],
    views: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``directory/name.safetensors`` and ``directory/name.json``; returns the JSON path.

    ``meta`` is merged into the JSON (recipe, metrics, provenance); ``family``, ``config``, ``weights`` and
    ``sha256`` are added here. ``views`` (precomputed display data such as a t-SNE embedding) go to
    ``name.views.safetensors``. Every file is written to a temporary name first and renamed; the JSON last.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / f"{name}.safetensors"
    description = {
        "name": name,
        "family": family,
        "config": model.config.to_dict(),
        **meta,
        "weights": weights.name,
        "sha256": _atomic_save_tensors(model.state_dict(), weights, {"family": family}),
    }
    if views:
        views_path = directory / f"{name}.views.safetensors"
        description["views"] = {
            "file": views_path.name,
            "sha256": _atomic_save_tensors(views, views_path, {}),
        }
    path = directory / f"{name}.json"
    write_json(path, description, indent=2)
    return path


def resolve(name_or_path: str | Path) -> Path:
    """The JSON path of a model given as a path (JSON or safetensors) or as a name in ``pretrained/``.

    Raises:
        ArtifactError: nothing by that name.
    """
    p = Path(name_or_path)
    if p.suffix == ".safetensors":
        p = p.with_suffix(".json")
    if p.suffix == ".json" and (p.is_file() or p.is_symlink() or p.exists()):
        return p  # a special file is refused by read_model_description, with its reason
    try:
        candidate = inside(PRETRAINED_DIR, f"{name_or_path}.json", "model")
    except UntrustedFileError:
        candidate = None
    if candidate is not None and candidate.is_file():
        return candidate
    raise ArtifactError(
        f"no model {str(name_or_path)!r}: neither a .json file nor a name in {PRETRAINED_DIR}."
    )


def load_model(name_or_path: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Load a model and check it against its JSON (sha256 of the weights, tensor names and shapes).

    The description is validated first (:func:`read_model_description`), then the size of the weights and
    the memory they need (:func:`check_loadable`), all before anything is allocated.

    Raises:
        ArtifactError: missing files, an invalid description, a sha256 mismatch (corrupt or replaced weights),
            an unknown family, weights that do not fit the described architecture, or not enough memory.
    """
    path = resolve(name_or_path)
    meta = read_model_description(path)
    family, config = meta["family"], meta["config"]
    weights = path.with_name(meta["weights"])
    if not weights.exists():
        raise ArtifactError(f"{path.name}: its weights file {weights.name} is missing.")
    check_loadable(family, config, weights)
    actual = sha256_of(weights)
    if actual != meta.get("sha256"):
        raise ArtifactError(
            f"{weights.name} does not match {path.name} (sha256 {actual[:12]}… instead of "
            f"{str(meta.get('sha256'))[:12]}…): the file is corrupt or was replaced."
        )
    model = build_model(family, config)
    try:
        state = load_file(str(weights))
        model.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError, OSError, ValueError) as err:
        raise ArtifactError(f"{weights.name} does not fit a {family} with config {config}: {err}") from err
    model.to(device).eval()
    return LoadedModel(meta.get("name") or path.stem, family, model, meta)


#: the precomputed display data of a model (a t-SNE of a few thousand points) is small
MAX_VIEWS_BYTES = 256 * 2**20


def load_views(loaded: LoadedModel) -> dict[str, torch.Tensor]:
    """The precomputed display data stored with a model (empty when it has none).

    Raises:
        ArtifactError: the views file is missing, not a regular file, too large, leaves the model's folder or
            does not match its sha256.
    """
    entry = loaded.meta.get("views")
    if not entry:
        return {}
    folder = Path(loaded.meta["path"]).parent
    try:
        path = inside(folder, entry.get("file"), "views file")
        size = regular_file_size(path)
    except UntrustedFileError as err:
        raise ArtifactError(f"{loaded.name}.json: {err}") from err
    if size > MAX_VIEWS_BYTES or sha256_of(path) != entry.get("sha256"):
        raise ArtifactError(f"{path.name} is missing or does not match {loaded.name}.json.")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ArtifactError(f"{path.name}: unreadable ({err}).") from err


def bad_model_entry(path: Path, message: str) -> dict[str, Any]:
    """The listing entry of a model file that cannot be used: its name, the family when the file says one
    clearly, ``error`` (one line: ``"x.json: not a model file: ..."``) and ``path``."""
    family = None
    try:
        raw = read_json_object(path, MAX_MODEL_JSON_BYTES, "model file")
        if is_model_family(raw.get("family")):
            family = raw["family"]
    except UntrustedFileError:
        pass
    return {"name": path.stem, "family": family, "error": message, "path": str(path)}


def list_models(directory: Path = PRETRAINED_DIR, family: str | None = None) -> list[dict[str, Any]]:
    """The validated JSON descriptions of the models in ``directory`` (optionally of one family), by name.

    A file that is not a valid model description is listed as one entry with an ``"error"`` (see
    :func:`bad_model_entry`) instead of being skipped; with ``family`` given, such an entry is listed when the
    file names that family or none that is known.
    """
    found = []
    try:
        paths = sorted(Path(directory).glob("*.json"))
    except OSError:
        return []
    for path in paths:
        try:
            meta = read_model_description(path)
        except ArtifactError as err:
            meta = bad_model_entry(path, str(err))
            if family is None or meta["family"] in (None, family):
                found.append(meta)
            continue
        if family is None or meta.get("family") == family:
            found.append(meta)
    return found


# ------------------------------------------------------------------------------------- typed description
# What the pages read of a model's (validated) JSON, typed once here: every field that the JSON may lack is
# ``None`` (or an empty tuple), so a page reads attributes and shows a dash for a missing figure.


def _number(value: Any) -> float | None:
    """A JSON number as a float; ``None`` for anything else (a bool, a text, a missing field)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _whole(value: Any) -> int | None:
    """A JSON whole number as an int; ``None`` for anything else."""
    number = _number(value)
    return int(number) if number is not None and number == int(number) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _record(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class StoredMetrics:
    """A model's stored test-set figures (its JSON's ``test_metrics``, written by the trainer's final
    evaluation, :mod:`explorer_core.evaluation.metrics`); ``None`` where the JSON has none.

    Attributes:
        elbo: mean ELBO, nats per image (the GMVAE's includes its −log C term; the VRNN's sums its 28 rows).
        elbo_without_log_c: the GMVAE's ELBO without −log C (the reference's convention), nats per image.
        reconstruction: E_q[log p(x|z)], nats per image.
        kl: KL(q ‖ prior), nats per image (the VRNN's: summed over its rows).
        active_units: latent dimensions whose posterior mean varies across the test images with variance
            above :data:`explorer_core.evaluation.metrics.ACTIVE_UNIT_VARIANCE` (a count).
        conditional_entropy: the GMVAE's mean H(q(y|x)), nats.
        cluster_accuracy: the GMVAE's Hungarian-matched cluster accuracy, a fraction in [0, 1].
        iwae_bound, iwae_k: the IWAE bound (nats per image) with k importance samples.
        per_row_reconstruction, per_row_kl: the VRNN's terms per image row [28], nats per row (empty when
            absent).
        n_images: test images evaluated.
    """

    elbo: float | None = None
    elbo_without_log_c: float | None = None
    reconstruction: float | None = None
    kl: float | None = None
    active_units: int | None = None
    conditional_entropy: float | None = None
    cluster_accuracy: float | None = None
    iwae_bound: float | None = None
    iwae_k: int | None = None
    per_row_reconstruction: tuple[float, ...] = ()
    per_row_kl: tuple[float, ...] = ()
    n_images: int | None = None


@dataclass(frozen=True)
class TrainingSummary:
    """How a model was trained (its JSON's ``training``): epochs run, the epoch of the best validation ELBO,
    wall time in seconds; ``None`` where the JSON has none."""

    epochs_run: int | None = None
    best_epoch: int | None = None
    wall_seconds: float | None = None


@dataclass(frozen=True)
class SeedCandidate:
    """One seed of a recipe in its selection record: validation ELBO (the rule's figure), test ELBO (nats per
    image) and test cluster accuracy (a fraction)."""

    seed: int | None
    epochs_run: int | None
    val_elbo: float | None
    test_elbo: float | None
    test_cluster_accuracy: float | None


@dataclass(frozen=True)
class SeedSelection:
    """How a model was chosen among the seeds of its recipe (its JSON's ``selection`` record, written by
    ``python -m explorer_core select``): the rule declared before any test figure was read, the seed it chose,
    every candidate, and the mean and standard deviation of test accuracy across them (fractions)."""

    rule: str | None
    chosen_seed: int | None
    candidates: tuple[SeedCandidate, ...]
    accuracy_mean: float | None
    accuracy_std: float | None


@dataclass(frozen=True)
class ModelDescription:
    """A model's validated JSON description as the pages read it (:func:`describe`).

    Attributes:
        name, family, path: the model's name, its family (a key of ``explorer_core.families.FAMILIES``) and
            the JSON file it was read from.
        latent_dim: L (the VRNN's: per row); hidden: the MLP's hidden widths; likelihood: the pixel
            likelihood's name (``None`` when the config does not say).
        preprocessing: how the images were preprocessed (``binarized`` when the JSON does not say).
        n_clusters, estimator, temperature, straight_through: the GMVAE's config (``None`` otherwise).
        rnn_layers, rnn_hidden: the VRNN's LSTM (``None`` otherwise).
        test: the stored test-set figures; training: the training summary; selection: the seed selection
            record, ``None`` when the JSON has none (or not as a record).
        run_id: the Training page's run that made it, ``None`` for a model file.
    """

    name: str
    family: str
    path: str
    latent_dim: int | None
    hidden: tuple[int, ...]
    likelihood: str | None
    preprocessing: str
    n_clusters: int | None
    estimator: str | None
    temperature: float | None
    straight_through: bool
    rnn_layers: int | None
    rnn_hidden: int | None
    test: StoredMetrics
    training: TrainingSummary
    selection: SeedSelection | None
    run_id: str | None


def _selection(value: Any) -> SeedSelection | None:
    record = _record(value)
    if not isinstance(record.get("candidates"), list):
        return None
    candidates = tuple(
        SeedCandidate(
            seed=_whole(r.get("seed")),
            epochs_run=_whole(r.get("epochs_run")),
            val_elbo=_number(r.get("val_elbo")),
            test_elbo=_number(r.get("test_elbo")),
            test_cluster_accuracy=_number(r.get("test_cluster_accuracy")),
        )
        for r in record["candidates"]
        if isinstance(r, dict)
    )
    return SeedSelection(
        rule=_text(record.get("rule")),
        chosen_seed=_whole(record.get("chosen_seed")),
        candidates=candidates,
        accuracy_mean=_number(record.get("test_cluster_accuracy_mean")),
        accuracy_std=_number(record.get("test_cluster_accuracy_std")),
    )


def _numbers(value: Any) -> tuple[float, ...]:
    if not isinstance(value, list):
        return ()
    numbers = [_number(v) for v in value]
    return () if None in numbers else tuple(numbers)


#: how a JSON value becomes a field of :class:`StoredMetrics` or :class:`TrainingSummary`, by its type
_PARSERS: dict[str, Callable[[Any], Any]] = {
    "float | None": _number,
    "int | None": _whole,
    "tuple[float, ...]": _numbers,
}


def _typed(kind: type, record: dict[str, Any]) -> Any:
    """``kind`` (a dataclass of JSON figures) from ``record``: each field parsed by its type
    (:data:`_PARSERS`)."""
    return kind(**{f.name: _PARSERS[f.type](record.get(f.name)) for f in fields(kind)})


def describe(meta: dict[str, Any]) -> ModelDescription:
    """The typed description of a model from its validated JSON (:func:`read_model_description`, an entry of
    :func:`list_models` without ``error``): every field the pages read, typed once; a figure the JSON lacks
    (or holds as something else than a number) is ``None``.

    Raises:
        KeyError: ``meta`` has no ``family`` or ``path`` (a listing's error entry is not a description).
    """
    config = _record(meta.get("config"))
    metrics = _record(meta.get("test_metrics"))
    training = _record(meta.get("training"))
    hidden = config.get("hidden")
    return ModelDescription(
        name=str(meta.get("name") or Path(meta["path"]).stem),
        family=str(meta["family"]),
        path=str(meta["path"]),
        latent_dim=_whole(config.get("latent_dim")),
        hidden=tuple(int(h) for h in hidden) if isinstance(hidden, list | tuple) else (),
        likelihood=_text(config.get("likelihood")),
        preprocessing=_text(meta.get("preprocessing")) or "binarized",
        n_clusters=_whole(config.get("n_clusters")),
        estimator=_text(config.get("estimator")),
        temperature=_number(config.get("temperature")),
        straight_through=bool(config.get("straight_through", False)),
        rnn_layers=_whole(config.get("rnn_layers")),
        rnn_hidden=_whole(config.get("rnn_hidden")),
        test=_typed(StoredMetrics, metrics),
        training=_typed(TrainingSummary, training),
        selection=_selection(meta.get("selection")),
        run_id=_text(meta.get("run_id")),
    )
