"""The model picker shared by every MNIST page: where trained models are found, how they are labelled, and
what identifies a model version for the caches.

Where models come from: ``explorer_core.artifacts.PRETRAINED_DIR`` plus the directories in the environment
variable ``AEVB_MODEL_DIRS`` (separated by ``os.pathsep``), for example a folder of your own trained runs,
plus the finished runs of the Training page (``runs/<id>/``, root ``AEVB_RUNS_DIR``; see
``explorer_core.jobs``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from explorer_core.access import class_mode
from explorer_core.artifacts import MAX_MODEL_JSON_BYTES, PRETRAINED_DIR, list_models
from explorer_core.families import FAMILIES
from explorer_core.jobs import done_models, runs_root
from explorer_core.untrusted import read_bytes

ENV_MODEL_DIRS = "AEVB_MODEL_DIRS"


def config_caption(meta: dict[str, Any]) -> str:
    """One line describing a model's architecture and data, e.g. ``L = 2 · bernoulli · binarized MNIST``."""
    config = meta.get("config") or {}
    parts = [f"L = {config.get('latent_dim')}"]
    if "n_clusters" in config:
        parts.append(f"C = {config['n_clusters']} · {config.get('estimator')} estimator")
    if "rnn_hidden" in config:
        parts.append(f"LSTM {config.get('rnn_layers')}×{config['rnn_hidden']}")
    parts += [
        str(config.get("likelihood", "?")).replace("_", " "),
        f"{meta.get('preprocessing', '?')} MNIST",
        f"hidden {config.get('hidden')}",
    ]
    return " · ".join(parts)


def model_dirs() -> list[Path]:
    """``PRETRAINED_DIR``, then every directory named in ``AEVB_MODEL_DIRS`` (os.pathsep-separated)."""
    dirs = [PRETRAINED_DIR]
    for part in os.environ.get(ENV_MODEL_DIRS, "").split(os.pathsep):
        if part.strip():
            dirs.append(Path(part.strip()).expanduser())
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def available_models(family: str) -> list[dict[str, Any]]:
    """The validated JSON descriptions of the ``family`` models in every model directory (see
    :func:`model_dirs`), then those of the finished training runs (``explorer_core.jobs.done_models``, newest
    first; their entries also carry ``run_id``). A file that is not a valid model is one entry with an
    ``error`` (``"x.json: not a model file: ..."``); :func:`model_picker` lists those apart."""
    found = []
    for directory in model_dirs():
        if directory.is_dir():
            found.extend(list_models(directory, family))
    seen = {str(Path(m["path"]).resolve()) for m in found}
    found.extend(m for m in done_models(family) if str(Path(m["path"]).resolve()) not in seen)
    return found


#: how the model pickers mark a training run's model (plain text: a select box's options show no icons, and
#: an emoji is an empty box on a machine without an emoji font)
RUN_MARK = "[run]"


def model_label(meta: dict[str, Any], duplicate: bool = False) -> str:
    """``name · test ELBO 1788.4`` (with the folder when two models share a name)."""
    name = str(meta.get("name", Path(meta["path"]).stem))
    if meta.get("run_id"):
        name = f"{RUN_MARK} {name}"
    if duplicate:
        name += f" ({Path(meta['path']).parent.name})"
    if meta.get("error"):
        return f"{name} · unreadable description"
    elbo = (meta.get("test_metrics") or {}).get("elbo")
    return f"{name} · test ELBO {elbo:.1f}" if isinstance(elbo, int | float) else f"{name} · no test ELBO"


def _escape_markdown(text: str) -> str:
    for char in "\\`*_[]<>#|$~":
        text = text.replace(char, "\\" + char)
    return text


def unusable_models_warning(broken: list[dict[str, Any]]) -> None:
    """One line per model file that cannot be used (``x.json: not a model file: ...``), in one warning."""
    if not broken:
        return
    lines = [_escape_markdown(str(m.get("error")).splitlines()[0][:400]) for m in broken]
    st.warning(
        f"{len(broken)} model file{'s' if len(broken) > 1 else ''} cannot be used (the others can):  \n"
        + "  \n".join(f"• {line}" for line in lines),
        icon=":material/warning:",
    )


#: shown where models of both likelihoods are listed side by side (their ELBOs have opposite signs)
LIKELIHOOD_NOTE = (
    "Continuous-Bernoulli ELBOs (positive, e.g. +1820) are log *densities* of continuous pixel values; "
    "Bernoulli ELBOs (negative, e.g. −92.7) are log *probabilities* of binary pixels: the two are not "
    "comparable."
)


def model_picker(
    family: str, prefix: str, on_change: Callable[[str], None] | None = None
) -> dict[str, Any] | None:
    """The sidebar's model selectbox (key ``{prefix}_model``) of the valid models of ``family``, and below it
    one warning listing the model files that cannot be used; an ``st.info`` and ``None`` when there is no
    usable model. ``on_change(prefix)`` runs when the user picks another model. What it names and opens
    first is the family's record in ``explorer_core.families`` (``short_name``, ``preferred_models``).

    Raises:
        KeyError: ``family`` is not a family of ``explorer_core.families.FAMILIES``.
    """
    spec = FAMILIES[family]
    found = available_models(family)
    models = [m for m in found if not m.get("error")]
    broken = [m for m in found if m.get("error")]
    if not models:
        with st.sidebar:
            unusable_models_warning(broken)
        where = ", ".join(f"`{d}`" for d in [*model_dirs(), runs_root()])
        if class_mode():
            where = "the model folders and the finished runs"
        st.info(
            f"No trained {spec.short_name} found (looked in {where}). Train one on the Training page, or "
            "for example "
            f"`python -m explorer_core train {family} --preset {spec.preferred_models[0]} "
            "--out pretrained`, "
            f"or point the environment variable `{ENV_MODEL_DIRS}` at a folder of trained models."
        )
        return None
    by_path = {m["path"]: m for m in models}
    names = [m.get("name") for m in models]
    labels = {m["path"]: model_label(m, names.count(m.get("name")) > 1) for m in models}
    paths = list(by_path)
    key = f"{prefix}_model"
    # Streamlit drops a widget's state on a run that does not draw it (a visit to another page); the choice
    # is kept under a key of its own too, so coming back to the page shows the model the visitor chose
    kept = f"{prefix}_model_kept"
    if st.session_state.get(key) not in by_path:
        preferred = [p for name in spec.preferred_models for p in paths if by_path[p].get("name") == name]
        chosen = st.session_state.get(kept)
        st.session_state[key] = chosen if chosen in by_path else (preferred or paths)[0]
    with st.sidebar:
        path = st.selectbox(
            f"{spec.short_name} model",
            paths,
            format_func=labels.get,
            key=key,
            on_change=on_change,
            args=(prefix,) if on_change else None,
            help="The shipped models and the finished runs of the Training page (marked [run])."
            if class_mode()
            else f"Models in {', '.join(str(d) for d in model_dirs())} (more folders: {ENV_MODEL_DIRS}), "
            f"and the finished runs of the Training page (marked [run], in {runs_root()}).",
        )
        st.session_state[kept] = path
        meta = by_path[path]
        config = meta.get("config") or {}
        if config:
            st.caption(config_caption(meta))
        likelihoods = {(m.get("config") or {}).get("likelihood") for m in models}
        if {"continuous_bernoulli", "bernoulli"} <= likelihoods:
            st.caption(LIKELIHOOD_NOTE)
        unusable_models_warning(broken)
    return meta


def model_stamp(json_path: str) -> str:
    """What identifies a model version for the caches: the JSON's sha256 and its files' sizes and times."""
    path = Path(json_path)
    digest = hashlib.sha256(read_bytes(path, MAX_MODEL_JSON_BYTES))
    for sibling in sorted(path.parent.glob(f"{path.stem}.*safetensors")):
        stat = sibling.stat()
        digest.update(f"{sibling.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()
