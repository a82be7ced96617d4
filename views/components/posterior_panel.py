"""The true posterior p(z|x) beside the amortized q(z|x) on the VAE and CVAE pages, for a 2-D model.

What it shows (the computation is :mod:`explorer_core.explore.posterior`): the posterior's highest-density
contours (on the latent pad and in a chart of their own), the evidence log p(x) by quadrature, the ELBO of
q_phi, the gap KL(q_phi || p(z|x)), the IWAE bounds for k = 1 ... 1000 closing on log p(x), and the per-image
E-step: q*(z|x) fitted to this one image, animated from q_phi (▶ Play), then the gap split into approximation
and amortization (Cremer, Li & Duvenaud 2018).

Costs: the posterior of an image is computed once per (model, image, label) and kept for the process
(:class:`explorer_core.shared_cache.OnceCache`, bounded in count and bytes, shared by every session); the q*
fit's frames likewise, when Play is first pressed. The animation replays the kept frames, so playing it
computes nothing. Each computation is heavy one-off work of the visitor's: it waits for a slot of the
server's compute budget (:func:`views.components.compute_slot.heavy_work`) and the visitor sees its place
in line meanwhile; the operator never waits.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import streamlit as st

from explorer_core.compute_budget import ComputeBusyError
from explorer_core.explore.posterior import (
    PosteriorPicture,
    QStarFrame,
    image_key,
    posterior_picture,
    qstar_frames,
    seeded_gap_split,
)
from explorer_core.figures.common import EXACT_COLOUR
from explorer_core.figures.posterior import posterior_chart
from explorer_core.inference.posterior import (
    EVIDENCE_K,
    EVIDENCE_TOLERANCE,
    MC_ERROR_SES,
    GapSplit,
    PosteriorError,
    worse_mode_tolerance,
)
from explorer_core.shared_cache import OnceCache, approx_nbytes
from views.components import latent_pad as lp
from views.components.compute_slot import heavy_work
from views.components.live_chart import live_chart
from views.components.player import Player

if TYPE_CHECKING:
    from torch import Tensor

#: images whose posterior is kept per process (each a few hundred kB)
KEPT_PICTURES = 48
#: the bytes those may take at most (each cache)
KEPT_BYTES = 64 * 2**20
#: seconds between the q* animation's frames
FRAME_SECONDS = 0.15


#: computed posteriors, q* fits and gap splits, shared by every session: each is computed once per (model,
#: image, label), bounded in count and bytes (issue 34)
PICTURES: OnceCache[PosteriorPicture] = OnceCache(KEPT_PICTURES, KEPT_BYTES, size=approx_nbytes)
FRAMES: OnceCache[tuple[list[QStarFrame], GapSplit]] = OnceCache(
    KEPT_PICTURES, KEPT_BYTES, size=approx_nbytes
)
SPLITS: OnceCache[GapSplit] = OnceCache(KEPT_PICTURES, KEPT_BYTES, size=approx_nbytes)


def _picture(model_key: str, key: str, label: int | None, model: Any, x: Tensor) -> PosteriorPicture:
    def build() -> PosteriorPicture:
        with heavy_work("the true posterior of this image"):
            return posterior_picture(model, x, label)

    return PICTURES.get_or_build((model_key, key, label), build)


def _frames(
    model_key: str, key: str, label: int | None, model: Any, x: Any, picture: Any
) -> tuple[list[QStarFrame], GapSplit]:
    def build() -> tuple[list[QStarFrame], GapSplit]:
        with heavy_work("the per-image E-step"):
            return qstar_frames(model, x, picture, label)

    return FRAMES.get_or_build((model_key, key, label), build)


def _split(model_key: str, key: str, label: int | None, model: Any, x: Tensor) -> GapSplit:
    def build() -> GapSplit:
        with heavy_work("the gap split"):
            return seeded_gap_split(model, x, label)

    return SPLITS.get_or_build((model_key, key, label), build)


def shown(prefix: str, latent_dim: int) -> bool:
    """Whether the page shows the true posterior (a 2-D model, and the checkbox ``{prefix}_post_show``)."""
    return latent_dim == 2 and bool(st.session_state.get(f"{prefix}_post_show"))


def picture_for(
    prefix: str, model: Any, model_key: str, x: Tensor, label: int | None
) -> PosteriorPicture | None:
    """The posterior of image ``x`` [D] (``label``: the CVAE's y), computed once per (model, image, label);
    None, with a one-line warning, when it cannot be computed."""
    try:
        return _picture(model_key, image_key(x), label, model, x)
    except PosteriorError as err:
        st.warning(f"The true posterior cannot be computed for this image: {err}", icon=":material/warning:")
        return None
    except ComputeBusyError as err:
        st.warning(f"The true posterior is not computed now. {err}", icon=":material/hourglass_top:")
        return None


def contour_lines(picture: PosteriorPicture, to_plane) -> list[dict[str, Any]]:
    """The posterior's contours as the latent pad's line overlays (``to_plane``: z [n, 2] -> pad plane)."""
    lines = []
    for i, polylines in enumerate(picture.contours):
        for xy in polylines:
            lines.append(lp.line(to_plane(xy), EXACT_COLOUR, 2.5 if i == 0 else 1.5))
    return lines


def section_heading() -> None:
    """The section's heading (one wording for every page that shows it)."""
    st.subheader("The true posterior p(z|x) beside q(z|x): the gap, and where it comes from")


def posterior_section(
    prefix: str,
    model: Any,
    model_key: str,
    x: Tensor,
    label: int | None,
    name: str,
    latent_dim: int,
    picture: PosteriorPicture | None,
    *,
    on_pad: bool = True,
    heading: bool = True,
) -> None:
    """The section under the encoder view: the switch, and with it the chart, the numbers and the q* fit.

    ``on_pad``: whether the page draws the posterior's contours on its latent pad too (the VAE and CVAE
    pages do; the Watch page shows them in the chart only). ``heading``: False when the caller has already
    written :func:`heading` (to put its own image picker under it)."""
    if heading:
        section_heading()
    if latent_dim != 2:
        _split_estimate(prefix, model, model_key, x, label, name, latent_dim)
        return
    st.checkbox(
        "Compute the true posterior of the chosen image"
        + (" (and draw it on the pad, green)" if on_pad else " (drawn in the chart, green)"),
        key=f"{prefix}_post_show",
        help="p(z|x) = p(x|z) p(z) / p(x) on a fine grid over the region that holds its mass; the evidence "
        "log p(x) by quadrature. About a second per new image on a 2-core CPU; kept once computed.",
    )
    if picture is None:
        st.caption(
            "The ELBO is a lower bound on the evidence log p(x); the gap is KL(q(z|x) ‖ p(z|x)), how far the "
            "amortized posterior q is from the true one. For a 2-D model both can be computed exactly."
        )
        return
    chart_col, numbers_col = st.columns([1.05, 1], gap="medium")
    with numbers_col:
        st.markdown(f"**{name[0].upper() + name[1:]}**, nats per image")
        a, b, c = st.columns(3)
        a.metric("Evidence log p(x)", f"{picture.log_evidence:.2f}", help=evidence_help(picture))
        b.metric("ELBO of q_φ", f"{picture.elbo_q:.2f}", help="E_q[log p(x, z) − log q(z|x)], on the grid.")
        c.metric(
            "Gap KL(q‖p)",
            f"{picture.kl_q:.3f}",
            help="log p(x) − ELBO = KL(q(z|x) ‖ p(z|x)): what the approximate E-step leaves open.",
        )
        st.markdown(iwae_table(picture))
        st.caption(
            f"Grid: {picture.decoder_calls:,} decodings in {picture.grid_seconds:.2f} s (computed once for "
            f"this image); {grid_error_sentence(picture)} Contours: the smallest regions holding 39 % and "
            "86 % of the posterior's mass, as q's 1σ and 2σ ellipses hold of q, so where the two shapes "
            "differ, q misses the posterior."
        )
    with chart_col:
        _qstar_player(prefix, model, model_key, x, label, picture)


def evidence_help(picture: PosteriorPicture) -> str:
    """The evidence metric's help: how it is computed and its stated error."""
    return (
        f"By quadrature on the grid, refined until log p(x) moves by less than {EVIDENCE_TOLERANCE} nats "
        f"when the grid's spacing is halved: it moved by {picture.evidence_error:.4f} nats."
    )


def grid_error_sentence(picture: PosteriorPicture) -> str:
    """What the page says of the quadrature's error (computed from the grid's last refinement)."""
    refined = picture.grid.refinements
    how = (
        "halving the grid's spacing"
        if refined == 0
        else f"the last of {refined} halvings of the grid's spacing"
        if refined > 1
        else "the one halving of the grid's spacing it needed"
    )
    if picture.evidence_error < EVIDENCE_TOLERANCE:
        return (
            f"{how} moved log p(x) by {picture.evidence_error:.4f} nats, under the {EVIDENCE_TOLERANCE}-nat "
            "tolerance."
        )
    return (
        f"{how} still moved log p(x) by {picture.evidence_error:.3f} nats, more than the "
        f"{EVIDENCE_TOLERANCE}-nat tolerance: log p(x) is uncertain by about that much."
    )


def _pm(value: float, stderr: float) -> str:
    """``value ± stderr`` (3 decimals; the standard error left out when there is none)."""
    return f"{value:.3f}" if not math.isfinite(stderr) else f"{value:.3f} ± {stderr:.3f}"


def iwae_table(picture: PosteriorPicture) -> str:
    """The IWAE bounds as a markdown table of means ± standard errors, each judged against log p(x)
    (:func:`explorer_core.explore.posterior.iwae_row`): a mean above log p(x) within its allowance is shown
    as log p(x) (†), one beyond it is shown as it is and flagged (‡), with a note under the table that says
    by how much."""
    rows, notes = [], []
    for r in picture.iwae:
        excess = r.mean - picture.log_evidence
        error = (
            f"its error ({r.allowance:.3f}: {MC_ERROR_SES:g} standard errors, the grid's error and float32 "
            "rounding)"
        )
        if r.verdict == "below":
            rows.append(f"| {r.k:,} | {r.repeats:,} | {_pm(r.mean, r.stderr)} | {r.gap:.3f} |")
        elif r.verdict == "at":
            rows.append(f"| {r.k:,} | {r.repeats:,} | = log p(x) † | 0 within error † |")
            notes.append(
                f"† k = {r.k:,}: the mean of the repeats, {_pm(r.mean, r.stderr)}, lies {excess:.3f} above "
                f"log p(x), within {error}. A bound cannot pass log p(x), so that is Monte Carlo noise: the "
                "bound is shown as log p(x)."
            )
        else:
            rows.append(f"| {r.k:,} | {r.repeats:,} | {_pm(r.mean, r.stderr)} ‡ | {r.gap:.3f} ‡ |")
            notes.append(
                f"‡ k = {r.k:,}: the mean lies {excess:.3f} above log p(x), beyond {error}. A bound cannot "
                "do that: the grid has missed some of the posterior's mass, so log p(x) here is too low."
            )
    return (
        "**IWAE bound** (Burda et al. 2016) with k samples of q_φ: its expectation rises with k towards "
        "log p(x) and never passes it (k = 1: the ELBO). Each is the mean of independent repeats ± its "
        "standard error.\n\n"
        "| k | repeats | IWAE bound | log p(x) − bound |\n|---:|---:|---:|---:|\n"
        + "\n".join(rows)
        + "".join(f"\n\n{n}" for n in notes)
    )


def _qstar_player(
    prefix: str, model: Any, model_key: str, x: Tensor, label: int | None, picture: PosteriorPicture
) -> None:
    """The chart with the per-image E-step: ▶ Play fits q* and animates it from q_phi; then the split."""
    state = st.session_state
    key = image_key(x)
    frame_slot = f"{prefix}_qstar_frame"
    if state.get(f"{prefix}_qstar_for") != (model_key, key, label):
        state[f"{prefix}_qstar_for"] = (model_key, key, label)
        state[frame_slot] = 0
    player = Player(f"{prefix}_qstar", FRAME_SECONDS)

    def frames() -> list[QStarFrame]:
        return _frames(model_key, key, label, model, x, picture)[0]

    def on_play() -> bool:
        fitted = FRAMES.get((model_key, key, label))  # (a callback computes nothing: the frame does)
        if fitted is not None and state.get(frame_slot, 0) >= len(fitted[0]) - 1:
            state[frame_slot] = 0  # replay from q_phi
        return False

    player.button(
        on_play=on_play,
        help="The per-image E-step: a Gaussian q*(z|x) fitted to this image alone by gradient ascent on its "
        "ELBO, started from q_φ's output (Cremer, Li & Duvenaud 2018).",
    )

    def frame(playing: bool) -> bool:
        fitted = state.get(frame_slot, 0) > 0 or playing
        try:
            seq = frames() if fitted else None
        except ComputeBusyError as err:
            st.warning(f"The per-image E-step is not computed now. {err}", icon=":material/hourglass_top:")
            return False
        if playing and seq is not None:
            state[frame_slot] = min(state.get(frame_slot, 0) + 1, len(seq) - 1)
        current = seq[min(state.get(frame_slot, 0), len(seq) - 1)] if seq else None
        qstar = None if current is None else (current.mean, current.cov)
        title = (
            "p(z|x) against q_φ(z|x)"
            if current is None
            else f"q* from the posterior's top mode: ELBO(q*) {current.elbo:.2f}"
            if current.from_mode
            else f"per-image E-step: step {current.step}, ELBO(q*) {current.elbo:.2f}"
        )
        live_chart(
            f"{prefix}_posterior_chart",
            posterior_chart(picture.contours, picture.q_mean, picture.q_cov, qstar, title=title),
            frame=state.get(frame_slot, 0),
        )
        if seq is not None and state.get(frame_slot, 0) >= len(seq) - 1:
            _gap_split(_frames(model_key, key, label, model, x, picture)[1])
            return False
        return True

    # the first frame after ▶ Play computes the fit's frames (a second at most); later frames replay them
    player.frames(frame)
    if not state.get(frame_slot):
        st.caption("▶ Play runs the per-image E-step and then splits the gap.")


def mode_note(split: GapSplit) -> str:
    """The sentence on the two starts of the q* fit, from the worse-mode rule
    (:func:`explorer_core.inference.posterior.phi_on_worse_mode`): "q_φ sits on a worse mode" exactly when
    the fit from the posterior's top mode beats the fit from q_φ by more than the tolerance, otherwise that
    both reach the same ELBO within it; empty when there is no fit from the mode (L > 2)."""
    if not (math.isfinite(split.elbo_from_phi) and math.isfinite(split.elbo_from_mode)):
        return ""
    tolerance = worse_mode_tolerance(split.elbo_difference_stderr)
    difference = split.elbo_from_mode - split.elbo_from_phi
    if split.phi_on_worse_mode:
        return (
            f" Here q_φ sits on a worse mode of the posterior than its highest one: the fit from q_φ reaches "
            f"ELBO {split.elbo_from_phi:.2f}, a fit from the top mode {split.elbo_from_mode:.2f}, "
            f"{difference:.2f} nats more, beyond the {tolerance:g}-nat tolerance. Gradient ascent from q_φ "
            "stays on its mode, the best q* (last frame) starts from the top mode, and the difference is "
            "amortization gap: the encoder sent this image to the wrong place."
        )
    return (
        f" A second fit, started from the posterior's top mode, reaches ELBO {split.elbo_from_mode:.2f}, "
        f"{difference:+.3f} nats from the fit from q_φ ({split.elbo_from_phi:.2f}): the same within the "
        f"{tolerance:g}-nat tolerance, so q_φ is not on a worse mode."
    )


def _gap_split(split: GapSplit) -> None:
    """The gap split as Cremer et al. define it (``explorer_core.inference.posterior.gap_split``), under the
    chart, with :func:`mode_note`."""
    st.markdown(
        f"**The gap split** (nats): gap {split.inference_gap:.3f} = approximation "
        f"{split.approximation_gap:.3f} (log p(x) − ELBO(q*), what no diagonal Gaussian can close) + "
        f"amortization {split.amortization_gap:.3f} (ELBO(q*) − ELBO(q_φ), what the encoder loses by serving "
        f"every image with one network). A full-covariance q* reaches {split.elbo_optimal_full:.2f}: of the "
        f"approximation gap, {split.approximation_gap - split.approximation_gap_full:.3f} is the diagonal "
        "assumption." + mode_note(split)
    )


def _split_estimate(
    prefix: str, model: Any, model_key: str, x: Tensor, label: int | None, name: str, latent_dim: int
) -> None:
    """For L > 2: no grid; on request, the gap split with log p(x) estimated by IWAE (a lower bound)."""
    st.caption(
        f"This model's latent space has {latent_dim} dimensions: p(z|x) ∝ p(x|z) p(z) cannot be drawn on a "
        "grid (pick a 2-D model, L = 2, to see it). Its gap can still be split, with the evidence log p(x) "
        f"estimated by the IWAE bound with k = {EVIDENCE_K:,}, a lower bound: the split below is an estimate "
        "(a low log p(x) shrinks the approximation gap, a q* fit that stops short enlarges it)."
    )
    key = (model_key, image_key(x), label)
    if st.button("Estimate the gap split of this image (a few seconds)", key=f"{prefix}_split_go"):
        st.session_state[f"{prefix}_split_for"] = key
    if st.session_state.get(f"{prefix}_split_for") != key:
        return
    try:
        with st.spinner("Fitting q* and estimating log p(x) ..."):
            split = _split(model_key, key[1], label, model, x)
    except PosteriorError as err:
        st.warning(f"The gap cannot be split for this image: {err}", icon=":material/warning:")
        return
    except ComputeBusyError as err:
        st.warning(f"The gap split is not computed now. {err}", icon=":material/hourglass_top:")
        return
    a, b, c, d = st.columns(4)
    a.metric("log p(x) ≥", f"{split.log_evidence:.2f}", help=f"IWAE bound, k = {EVIDENCE_K:,}.")
    b.metric("ELBO of q_φ", f"{split.elbo_amortized:.2f}")
    c.metric(
        "Approximation gap (est.)",
        f"{split.approximation_gap:.3f}",
        help="log p(x) − ELBO(q*): log p(x) is a lower bound (pulls it down) and q* may stop short of the "
        "best Gaussian (pushes it up), so this is an estimate, not a bound.",
    )
    d.metric("Amortization gap", f"{split.amortization_gap:.3f}", help="ELBO(q*) − ELBO(q_φ).")
    st.caption(
        f"{name[0].upper() + name[1:]}, nats per image. q* is the best diagonal Gaussian for this image "
        "alone, fitted by stochastic gradient ascent on its ELBO from q_φ (both ELBOs re-estimated on 1,000 "
        f"shared draws); a full-covariance q* reaches {split.elbo_optimal_full:.2f}. {split.seconds:.1f} s."
    )
