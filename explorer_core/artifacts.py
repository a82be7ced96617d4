"""Saving and loading trained models: ``<name>.safetensors`` (tensors only) + ``<name>.json``.

The JSON holds the family, the model config (enough to rebuild the module), the training recipe, the
preprocessing, provenance (device, torch version, data checksums, wall time), the metrics on the test set and
the sha256 of the weights file, which is checked at load. Weights are written to a temporary name and then
renamed, so a half-written file is never loadable. No pickle anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from explorer_core.models.base import LatentVariableModel
from explorer_core.models.gmvae import GMVAE, GMVAEConfig
from explorer_core.models.vae import CVAE, VAE, VAEConfig
from explorer_core.models.vrnn import VRNN, VRNNConfig

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
FAMILIES: dict[str, tuple[type[LatentVariableModel], type]] = {
    "vae": (VAE, VAEConfig),
    "cvae": (CVAE, VAEConfig),
    "gmvae": (GMVAE, GMVAEConfig),
    "vrnn": (VRNN, VRNNConfig),
}


class ArtifactError(RuntimeError):
    """A model file is missing, corrupt, or does not match its description; the message says which."""


@dataclass
class LoadedModel:
    """A model rebuilt from disk (in eval mode) and its JSON description."""

    name: str
    family: str
    model: LatentVariableModel
    meta: dict[str, Any]


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
    if family not in FAMILIES:
        raise ArtifactError(f"unknown model family {family!r}; known: {sorted(FAMILIES)}.")
    cls, config_cls = FAMILIES[family]
    try:
        return cls(config_cls(**config))
    except (TypeError, ValueError) as err:
        raise ArtifactError(f"invalid {family} config {config}: {err}") from err


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _atomic_save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> str:
    """Write tensors to a temporary name, rename into place, return the file's sha256."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return sha256_of(path)


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
    _atomic_write_text(path, json.dumps(description, indent=2, sort_keys=False) + "\n")
    return path


def resolve(name_or_path: str | Path) -> Path:
    """The JSON path of a model given as a path (JSON or safetensors) or as a name in ``pretrained/``.

    Raises:
        ArtifactError: nothing by that name.
    """
    p = Path(name_or_path)
    if p.suffix == ".safetensors":
        p = p.with_suffix(".json")
    if p.suffix == ".json" and p.is_file():
        return p
    candidate = PRETRAINED_DIR / f"{name_or_path}.json"
    if candidate.is_file():
        return candidate
    raise ArtifactError(
        f"no model {str(name_or_path)!r}: neither a .json file nor a name in {PRETRAINED_DIR}."
    )


def load_model(name_or_path: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Load a model and check it against its JSON (sha256 of the weights, tensor names and shapes).

    Raises:
        ArtifactError: missing files, unreadable JSON, a sha256 mismatch (corrupt or replaced weights),
            an unknown family, or weights that do not fit the described architecture.
    """
    path = resolve(name_or_path)
    try:
        meta = json.loads(path.read_text())
        family, config, weights_name = meta["family"], meta["config"], meta["weights"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ArtifactError(f"{path.name}: not a readable model description ({err}).") from err
    weights = path.with_name(weights_name)
    if not weights.is_file():
        raise ArtifactError(f"{path.name}: its weights file {weights.name} is missing.")
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
    except (SafetensorError, RuntimeError, OSError) as err:
        raise ArtifactError(f"{weights.name} does not fit a {family} with config {config}: {err}") from err
    model.to(device).eval()
    meta["path"] = str(path)
    return LoadedModel(meta.get("name", path.stem), family, model, meta)


def load_views(loaded: LoadedModel) -> dict[str, torch.Tensor]:
    """The precomputed display data stored with a model (empty when it has none).

    Raises:
        ArtifactError: the views file is missing or does not match its sha256.
    """
    entry = loaded.meta.get("views")
    if not entry:
        return {}
    path = Path(loaded.meta["path"]).with_name(entry["file"])
    if not path.is_file() or sha256_of(path) != entry.get("sha256"):
        raise ArtifactError(f"{path.name} is missing or does not match {loaded.name}.json.")
    return load_file(str(path))


def list_models(directory: Path = PRETRAINED_DIR, family: str | None = None) -> list[dict[str, Any]]:
    """The JSON descriptions of the models in ``directory`` (optionally of one family), sorted by name.

    Unreadable JSON files are listed with an ``"error"`` entry instead of being skipped silently.
    """
    found = []
    for path in sorted(Path(directory).glob("*.json")):
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            meta = {"name": path.stem, "family": None, "error": str(err)}
        meta["path"] = str(path)
        if family is None or meta.get("family") == family:
            found.append(meta)
    return found
