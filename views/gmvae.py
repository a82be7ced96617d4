"""The Gaussian mixture VAE (tutorial section 5.5): a cluster y ~ Cat(1/C), a style z ~ p(z|y), an image
x ~ p(x|z). See what each cluster generates (rows ordered by the digit Hungarian matching gives them), pick a
cluster and sample from p(z|y) at any spread, see q(y|x) and the image carried to every cluster for a
test image or a drawing, and compare the confusion matrices of two models (the marginalised and the
Gumbel-softmax estimators).

Per model (cached for the process): q(y|x) of the 10,000 test images, the cluster matching and the PCA plane.
Per interaction: a few decoder calls. The cluster picker and its samples share one fragment.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from explorer_core.artifacts import PRETRAINED_DIR, ModelDescription, describe
from explorer_core.evaluation.selection import v3_screening_table
from explorer_core.explore.clusters import (
    ClusterBundle,
    PadTarget,
    cluster_name,
    cluster_sample_png,
    decode_latent,
    gallery,
    gallery_order,
    image_posterior,
    load_cluster_bundle,
    pad_target,
    plane_ranges,
    stored_clusters,
)
from explorer_core.explore.latent import IMAGE_SIDE, view_region
from explorer_core.export import export_name
from explorer_core.families import FAMILIES
from explorer_core.figures.common import DIGIT_COLOURS, Q_COLOUR
from explorer_core.figures.gmvae import (
    cluster_posterior_figure,
    confusion_figure,
    image_rows_figure,
)
from explorer_core.imaging import png_bytes, upscale
from views._models import available_models, model_label, model_picker
from views.components import images as im
from views.components import latent_pad as lp
from views.components import lecture, model_panel
from views.components import pad_fragment as pf
from views.components import page_state as ps
from views.components.charts import plotly_chart
from views.components.compute_slot import gesture_fragment
from views.components.model_metrics import metrics_row
from views.components.publish_button import publish_button

P = "gmvae"
GALLERY_PER_CLUSTER = 15
GALLERY_FACTOR = 2
#: lecture mode: the pad's canvas this tall (CSS px; ``pf.PAD_HEIGHT`` elsewhere), so that it lies whole on a
#: projector's first screen (1280x720) at 100 %: at ``pf.PAD_HEIGHT`` its bottom was at 744 px (issue 33)
LECTURE_PAD_PX = 390
state = st.session_state

#: The samples are sent at 28 px per digit and enlarged by the browser with crisp pixels (cheaper than a PNG
#: enlarged on the server).
PIXELATED_CSS = f"<style>.st-key-{P}_samples img {{ image-rendering: pixelated; }}</style>"


def _forget(prefix: str) -> None:
    """A new model has new clusters: the picked cluster, the chart's selection, the comparison and the pad
    (z, its zoom) restart."""
    for name in ("cluster", "map", "map__seen", "cmp_a", "cmp_b"):
        state.pop(f"{prefix}_{name}", None)
    ps.forget_page_state(prefix)


@st.cache_resource(
    show_spinner="Loading the GMVAE and computing q(y|x) for the 10,000 test images…", max_entries=4
)
def _cached_bundle(json_path: str, stamp: str, device: str) -> ClusterBundle:
    return load_cluster_bundle(json_path, device)


@st.cache_resource(show_spinner=False, max_entries=32)
def _cached_gallery(model_key: str, _bundle: ClusterBundle, seed: int, spread: float) -> bytes:
    """The gallery (one row of samples per cluster, in matched-digit order) as PNG bytes."""
    grid = gallery(_bundle.model, _bundle.order, GALLERY_PER_CLUSTER, seed, spread)
    return png_bytes(grid, GALLERY_FACTOR)


@st.cache_resource(show_spinner=False, max_entries=64)
def _cached_samples(
    model_key: str, _bundle: ClusterBundle, cluster: int, n: int, seed: int, spread: float
) -> bytes:
    """N samples of one cluster as PNG bytes, cached so a drag on the pad does not redraw them."""
    return cluster_sample_png(_bundle.model, cluster, n, seed, spread, n_cols=10, factor=1)


def seeds_panel(d: ModelDescription) -> None:
    """ "Initialisation matters": every seed of this model's recipe (its JSON's ``selection`` record, written
    by ``python -m explorer_core select``), the declared rule, and the spread of test accuracy."""
    selection = d.selection
    if selection is None:
        return
    rows = selection.candidates
    with st.expander(f"Initialisation matters: {len(rows)} seeds of this recipe", expanded=False):
        st.caption(f"Chosen by the rule declared before any test figure was read: {selection.rule or '–'}.")
        st.dataframe(
            [
                {
                    "seed": r.seed,
                    "epochs": r.epochs_run,
                    "validation ELBO (rule)": model_panel.number(r.val_elbo, "{:.2f}"),
                    "test ELBO": model_panel.number(r.test_elbo, "{:.2f}"),
                    "test accuracy": model_panel.number(r.test_cluster_accuracy, "{:.2%}"),
                    "chosen": "✓" if r.seed == selection.chosen_seed else "",
                }
                for r in rows
            ],
            hide_index=True,
        )
        mean, std = selection.accuracy_mean, selection.accuracy_std
        if mean is not None and std is not None:
            st.caption(
                f"Test accuracy across seeds: mean {mean:.2%}, standard deviation {std:.2%}. The same recipe "
                "and data, only the random initialisation differs."
            )
        if (d.estimator or "marginal") == "marginal":
            v3_rows(cached_v3_screening())


@st.cache_data(ttl=600, show_spinner=False)
def cached_v3_screening() -> dict[str, Any] | None:
    """The v3 screening table of ``pretrained/seeds/`` (read again at most every 10 minutes)."""
    return v3_screening_table(PRETRAINED_DIR / "seeds")


def v3_rows(record: dict[str, Any] | None) -> None:
    """The next recipe's restarts (issue 36: fresh binarization), as far as they have been screened."""
    if not record:
        return
    st.markdown("**The next recipe (v3), being trained:** fresh binarization of every training minibatch.")
    if "restarts" not in record:
        st.caption(f"Its restarts cannot be screened yet: {record.get('error')}")
        return
    st.caption(f"Screening rule, declared before the first restart: {record['rule']}.")
    st.dataframe(
        [
            {
                "seed": r["seed"],
                "H(q(y|x)) at epoch 20 (rule)": model_panel.number(r["conditional_entropy"], "{:.4f}"),
                "smallest cluster": model_panel.number(r["min_cluster_usage"], "{:.1%}"),
                "validation ELBO": model_panel.number(r["val_elbo"], "{:.2f}"),
                "test accuracy at epoch 20": model_panel.number(r["test_cluster_accuracy"], "{:.2%}"),
                "rank": str(r["rank"]) if r["rank"] is not None else "skipped",  # one type per column
            }
            for r in record["restarts"]
        ],
        hide_index=True,
    )


# ------------------------------------------------------------------------------------------ the page
st.title(":material/extension: Gaussian mixture VAE: clusters without labels")
lecture.intro(
    "The GMVAE (tutorial section 5.5, after Rui Shu) puts a **mixture** prior on the latent space: a cluster "
    "y ~ Cat(1/C), a style z ~ p(z|y) = N(μ(y), diag σ(y)²), an image x ~ p(x|z) (Bernoulli pixels). It "
    "never sees a label, yet its clusters come to stand for digits. The encoder has two parts, q(y|x) (which "
    "cluster) and q(z|x, y) (which style). Below, each cluster is named **y → d** after the digit d that "
    "Hungarian matching of clusters to test labels gives it."
)

st.html(PIXELATED_CSS)
ps.model_from_url("gmvae", P)
meta = model_picker("gmvae", P, on_change=_forget)
description = None if meta is None else describe(meta)
loaded = None
if meta is not None:
    metrics_row(description)
    seeds_panel(description)
    loaded = model_panel.load_or_explain(meta, _cached_bundle, "to match clusters to digits")

ps.url_in(
    P,
    {
        "cluster": (f"{P}_cluster", ps.int_in(0, 999)),
        "img": (f"{P}_index", ps.int_in(0, 9999)),
        "seed": (f"{P}_seed", ps.int_in(0, 2**31 - 1)),
        "u": (lambda u: setattr(ps.page_state(P).pad, "u", u), ps.finite_float),
        "v": (lambda v: setattr(ps.page_state(P).pad, "v", v), ps.finite_float),
    },
)
ps.init_state(
    {
        f"{P}_seed": 0,
        f"{P}_spread": 1.0,
        f"{P}_n": 100,
        f"{P}_index": 0,
        f"{P}_source": "test",
    }
)
ps.apply_pending(P)


def gallery_section(bundle: ClusterBundle, model_key: str) -> None:
    """One row of fresh samples per cluster, rows ordered by matched digit, with usage and digit."""
    st.subheader("Cluster gallery: fresh samples of every cluster")
    spread_col, seed_col, _ = st.columns([2, 1, 2], vertical_alignment="bottom")
    spread_col.slider(
        "Prior spread (sampling temperature)",
        0.0,
        2.0,
        step=0.1,
        key=f"{P}_spread",
        help="z = μ(y) + spread · σ(y) · ε: 1 samples the learned prior p(z|y); 0 decodes its mean; above 1 "
        "goes further out into the tails.",
    )
    seed_col.button(
        "Reseed",
        icon=ps.RESEED_ICON,
        key=f"{P}_reseed",
        on_click=lambda: state.update({f"{P}_seed": ps.next_seed(state.get(f"{P}_seed", 0))}),
    )
    seed, spread = int(state[f"{P}_seed"]), float(state[f"{P}_spread"])
    png = _cached_gallery(model_key, bundle, seed, spread)
    side = IMAGE_SIDE + 1
    width = (GALLERY_PER_CLUSTER * side - 1) * GALLERY_FACTOR
    height = (len(bundle.order) * side - 1) * GALLERY_FACTOR
    labels = [f"{cluster_name(c, bundle.matched_label)} · {bundle.usage[c]:.1%}" for c in bundle.order]
    plotly_chart(
        image_rows_figure(png, width, height, labels),
        "gmvae",
        f"gallery-rows-seed{seed}",
        model=Path(model_key).stem,
        config={"displayModeBar": False, "staticPlot": True},  # saved by the PNG button below
        key=f"{P}_gallery",
        width="content",
    )
    name = export_name("gmvae", f"gallery-seed{seed}", "png", model=Path(model_key).stem)
    im.png_download(png, name, f"{P}_gallery_png")
    st.caption(
        f"Row y: {GALLERY_PER_CLUSTER} decodings (Bernoulli means λ(z)) of z ~ N(μ(y), ({spread:g}·σ(y))²). "
        "Rows are ordered by the digit each cluster is matched to (Hungarian matching of the clusters × "
        "labels table of the test set, computed, not arranged by hand); the percentage is the cluster's "
        "usage, the share of test images whose most probable cluster it is. Seed "
        f"{seed}."
    )


def chosen_input(bundle: ClusterBundle) -> tuple[Any, np.ndarray, str, int | None]:
    """The image of the q(y|x) panel: the drawing or a test image; (x [784], image [28, 28], name, index)."""
    chosen = im.chosen_input(P, len(bundle.labels), lambda i: bundle.x[i], bundle.image)
    if chosen.drawn:
        return chosen.x, chosen.image, "your drawing", None
    name = f"test image {chosen.index} (digit {int(bundle.labels[chosen.index])})"
    return chosen.x, chosen.image, name, chosen.index


def _goto_cluster(bundle: ClusterBundle, cluster: int) -> None:
    """Pick ``cluster`` and move the pad's z to its prior mean mu(y) (on the plane)."""
    state[f"{P}_cluster"] = int(cluster)
    u, v = bundle.prior_coords[int(cluster)]
    pad = ps.page_state(P).pad
    pad.u, pad.v = float(u), float(v)


def _picked_or_first(bundle: ClusterBundle) -> int:
    """The picked cluster (the pills' value), or the first in gallery order when none is."""
    picked = state.get(f"{P}_cluster")
    return int(picked) if isinstance(picked, int) and 0 <= picked < bundle.n_clusters else bundle.order[0]


def cluster_marks(bundle: ClusterBundle, picked: int, highlight: np.ndarray | None) -> list[dict]:
    """The pad's marks: each cluster's prior mean as a disc in its matched digit's colour (a click picks it),
    a black ring round the picked one, a red ring round the image classified below."""
    marks = []
    for c in range(bundle.n_clusters):
        digit = int(bundle.matched_label[c])
        colour = DIGIT_COLOURS[digit] if 0 <= digit < len(DIGIT_COLOURS) else "#7f7f7f"
        text = str(digit) if digit >= 0 else "–"
        marks.append(lp.mark(bundle.prior_coords[c], colour, "disc", 11.0, text=text, pick=c))
    marks.append(lp.mark(bundle.prior_coords[picked], "#111111", "ring", 16.0, width=3.0))
    if highlight is not None:
        marks.append(lp.mark(highlight, Q_COLOUR, "ring", 7.0, width=2.5))
    return marks


def _pad_target(bundle: ClusterBundle, cluster: int, uv) -> PadTarget:
    """What the pad decodes at uv [2] with ``cluster`` picked (``explore.clusters.pad_target``): mu(y) itself
    while z is on the cluster's disc, the plane point lifted to the latent space elsewhere."""
    return pad_target(
        bundle.projection, bundle.prior_means, bundle.prior_coords, cluster, uv, bundle.matched_label
    )


def cluster_pad(
    bundle: ClusterBundle, model_key: str, cluster: int, ranges, region, highlight: np.ndarray | None
) -> pf.PadSpec:
    """The pad of the PCA plane (:func:`views.components.pad_fragment.show_pad`, run by :func:`pad_panel`). A
    click on a cluster's disc picks that cluster: z goes to its disc and the pad decodes the cluster's mean
    mu(y) itself (the server decodes it: mu(y) is off the plane); a drag or an arrow key moves z off the disc,
    and the pad decodes the plane point under the pointer lifted to the latent space (in the browser, once it
    holds the decoder), rerunning only the pad. A click on a test point classifies that image below; a pick,
    or a wheel notch, changes what the rest of the page shows: the page reruns (once). The title, caption and
    view follow z now (:func:`explorer_core.explore.clusters.pad_target`)."""
    points = pf.test_points(model_key, "pca", bundle.coords, bundle.labels)
    projection = bundle.projection

    def on_point(i: int) -> None:
        state[f"{P}_index"], state[f"{P}_source"] = int(points.index[i]), "test"

    def decode(uv: np.ndarray) -> tuple[bytes, None]:
        return png_bytes(decode_latent(bundle.model, _pad_target(bundle, cluster, uv).z)), None

    ex = projection.explained
    spec = pf.PadSpec(
        prefix=P,
        points=points,
        ranges=ranges,
        region=region,
        decode=decode,
        decoder=lp.cached_browser_decoder(
            model_key, "pca", bundle.model, projection.centre, projection.basis, (None,)
        ),
        view="lambda",
        z_default=(float(bundle.prior_coords[cluster][0]), float(bundle.prior_coords[cluster][1])),
        on_point=on_point,
        on_mark=lambda c: _goto_cluster(bundle, c),
        n_marks=bundle.n_clusters,
        axes=(f"PC 1 ({ex[0]:.0%})", f"PC 2 ({ex[1]:.0%})"),
        hint="Drag: decode the plane point under the pointer · click a disc: pick that cluster and decode "
        "its μ(y) · click a dot: classify that test image below · arrow keys: move z · wheel: zoom",
        overlays={"lines": [], "marks": cluster_marks(bundle, cluster, highlight)},
        url=("u", "v"),
        height_px=LECTURE_PAD_PX if lecture.lecture_mode() else pf.PAD_HEIGHT,
    )
    target = _pad_target(bundle, cluster, spec.z())
    return replace(spec, title=target.title, caption_format=target.caption_format, view=target.view)


@gesture_fragment
def pad_panel(bundle: ClusterBundle, model_key: str, ranges, region, highlight: np.ndarray | None) -> None:
    """The pad in a fragment of its own that builds its spec afresh on every run (a drag reruns only this),
    so that its title, caption and view follow z: off the picked cluster's disc after a drag, back on it
    after a pick."""
    pf.show_pad(cluster_pad(bundle, model_key, _picked_or_first(bundle), ranges, region, highlight))


@gesture_fragment
def cluster_panel(bundle: ClusterBundle, model_key: str, highlight: np.ndarray | None) -> None:
    """Pick a cluster (its prior mean on the pad, or a pill), drag on the pad to decode any z of the plane,
    and sample N images from p(z|y)."""
    panel_start = time.perf_counter()
    pf.rerun_app_if_asked(P)
    names = {c: cluster_name(c, bundle.matched_label) for c in range(bundle.n_clusters)}
    if state.get(f"{P}_cluster") not in names:
        _goto_cluster(bundle, bundle.order[0])
    cluster = st.pills(
        "Cluster y → matched digit (or click a cluster's disc on the map)",
        bundle.order,
        format_func=names.get,
        key=f"{P}_cluster",
        required=True,
        on_change=lambda: _goto_cluster(bundle, _picked_or_first(bundle)),
    )
    cluster = bundle.order[0] if cluster is None else int(cluster)
    ranges = plane_ranges(np.concatenate([bundle.coords, bundle.prior_coords]))
    ex = bundle.projection.explained
    pad = ps.page_state(P).pad
    region = view_region(ranges, pad.centre, float(pad.zoom if pad.zoom in pf.ZOOMS else 1))

    map_col, sample_col = st.columns([1.25, 1], gap="medium")
    with map_col:
        pad_panel(bundle, model_key, ranges, region, highlight)
        st.caption(
            "The latent space on the plane of its first two principal components "
            f"({ex[0]:.0%} and {ex[1]:.0%} of the variance): each dot is a test image's posterior mean "
            "E[z|x, ŷ] under its most probable cluster ŷ, coloured by its true digit; the discs are the "
            "cluster prior means μ(y), labelled and coloured by their matched digit (the black ring: the "
            "picked cluster, the red ring: the image classified below). A pick decodes the cluster's "
            f"mean μ(y) itself, all L = {bundle.prior_means.shape[1]} coordinates; a drag decodes the "
            "point of the plane under the pointer, lifted back to the latent space: z = centre + u·e1 + "
            "v·e2, the centre being the mean of the test encodings (a disc is only μ(y)'s shadow: its lift "
            "is another z). The plane is a 2-D shadow of that space: clusters that overlap here may be apart."
        )
    with sample_col:
        lecture_on = lecture.lecture_mode()
        # lecture mode: the samples first, the N slider under them (a projector's first screen)
        image_slot = st.container() if lecture_on else contextlib.nullcontext()
        n = st.slider("Samples N", 10, 200, step=10, key=f"{P}_n")
        seed, spread = int(state[f"{P}_seed"]), float(state[f"{P}_spread"])
        start = time.perf_counter()
        png = _cached_samples(model_key, bundle, cluster, n, seed, spread)
        sample_s = time.perf_counter() - start
        with image_slot, st.container(key=f"{P}_samples"):
            im.show_image(
                png,
                f"{n} samples from cluster {names[cluster]} (spread {spread:g}, seed {seed})",
                width="stretch",
            )
        im.png_download(
            png,
            export_name("gmvae", f"cluster{cluster}-samples-seed{seed}", "png", model=Path(model_key).stem),
            f"{P}_samples_png",
        )
        st.button("New samples", icon=ps.RESEED_ICON, key=f"{P}_resample", on_click=_new_samples)
        st.caption(
            f"z ~ N(μ(y), ({spread:g}·σ(y))²) for y = {cluster}, decoded to Bernoulli means λ(z). The spread "
            f"slider and the seed are shared with the gallery {'below' if lecture_on else 'above'}. "
            ":material/timer: Server time: "
            f"{(time.perf_counter() - panel_start) * 1e3:.0f} ms in all; sampling and PNG "
            f"{sample_s * 1e3:.1f} ms, decode under the pointer {ps.page_state(P).pad.decode_s * 1e3:.1f} "
            "ms (a move reruns only the pad); the model and q(y|x) of the test set were "
            f"computed once, in {bundle.seconds:.1f} s."
        )
    ps.url_out({"cluster": cluster, "seed": seed})


def _new_samples() -> None:
    """The button "New samples": the next seed. The gallery shares it and the URL carries it, so the whole
    page reruns (once: :func:`views.components.pad_fragment.rerun_app_if_asked` at the top of
    :func:`cluster_panel`), not only the panel whose button it is: the gallery, its caption and the link
    then show the seed of the samples."""
    state[f"{P}_seed"] = ps.next_seed(state.get(f"{P}_seed", 0))
    ps.page_state(P).pad.rerun_app = True


def posterior_section(bundle: ClusterBundle) -> None:
    """For a test image or a drawing: q(y|x) as bars and the image carried to every cluster."""
    st.subheader("Classify an image: q(y|x), and the image in every cluster")
    x, image, name, _ = chosen_input(bundle)
    post = image_posterior(bundle.model, x)
    names = [cluster_name(c, bundle.matched_label) for c in range(bundle.n_clusters)]
    pick_col, draw_col, bar_col = st.columns([0.9, 0.9, 2.2], gap="medium")
    with pick_col:
        n_test = len(bundle.labels)
        im.source_radio(P)
        st.number_input(
            f"Test image (0–{n_test - 1}, or click a dot on the chart)",
            0,
            n_test - 1,
            key=f"{P}_index",
            step=1,
        )
        if state[f"{P}_source"] == "drawing" and state.get(f"{P}_drawing") is None:
            st.info(
                "Nothing drawn yet: draw a digit in the box on the right. Meanwhile the test image is used."
            )
        im.show_image(image, name, factor=5)
    with draw_col:
        im.drawing_panel(
            P,
            bundle.preprocessing,
            "**Draw a digit** (white on black)",
            ":material/edit: Draw a digit above: it is binarized as the test set was and classified.",
            "As the model sees it (28×28, binarized):",
        )
    with bar_col:
        best = post.best
        plotly_chart(
            cluster_posterior_figure(
                post.probs,
                bundle.order,
                names,
                bundle.matched_label,
                title=f"q(y|x) of {name}<br>most probable cluster {names[best]}, H = {post.entropy:.3f} nats",
            ),
            "gmvae",
            f"qyx-{name}",
            model=Path(model_key).stem,
            key=f"{P}_qy",
            width="stretch",
        )
        order = bundle.order
        restyled = [upscale(post.restyled[c], 3) for c in order]
        st.markdown(
            "**This image in every cluster**: its place in its own cluster, ε = (z − μ(ŷ)) / σ(ŷ), carried "
            "to each cluster's prior, z = μ(y) + σ(y)·ε, and decoded (λ(z)), in gallery order"
        )
        st.image(
            restyled,
            caption=[f"{names[c]}: q = {post.probs[c]:.2f}" for c in order],
            width=90,
            clamp=True,
        )
        st.caption(
            f"The ELBO weighs each cluster's reconstruction and KL term by q(y|x): here cluster "
            f"{names[best]} carries {post.probs[best]:.1%} of the weight, and its image above is the "
            "reconstruction. The others keep the image's offset within its cluster and take another "
            "cluster's mean and spread: the GMVAE's counterpart of the CVAE's 'same z, every label'. (Its "
            "reconstruction under each cluster, z = E[z|x, y], would show ten near-identical images: x "
            "depends on z only, and q(z|x, y) hardly depends on y.)"
        )


def _comparison_defaults(described: dict[str, ModelDescription], current: str | None) -> tuple[str, str]:
    """Left: the model open in the sidebar (else the preferred one); right: preferably one trained with the
    other estimator (the preferred names first), else the next model. ``described``: the readable models
    by path."""
    paths = list(described)
    named = [p for name in FAMILIES["gmvae"].preferred_models for p in paths if described[p].name == name]
    first = current if current in described else (named or paths)[0]
    others = [p for p in dict.fromkeys(named + paths) if p != first]
    different = [p for p in others if described[p].estimator != described[first].estimator]
    return first, (different or others or [first])[0]


def comparison_column(
    d: ModelDescription, meta: dict[str, Any], current: tuple[str, ClusterBundle] | None, key: str
) -> None:
    """One model of the comparison (``d`` describes it, ``meta`` is its JSON): its estimator, stored metrics
    and confusion matrix."""
    detail = {
        "marginal": "sum over all C clusters (exact expectation over y)",
        "gumbel": f"Gumbel-softmax relaxation (τ = {d.temperature}"
        + (", straight-through)" if d.straight_through else ")"),
    }.get(d.estimator, "")
    st.markdown(f"**{d.name}** · {d.estimator or '?'} estimator: {detail}")
    c1, c2, c3 = st.columns(3)
    c1.metric("Test ELBO", model_panel.number(d.test.elbo, "{:.2f}"), help="with −log C, nats per image")
    c2.metric("H(q(y|x))", model_panel.number(d.test.conditional_entropy, "{:.3f}"), help="nats")
    c3.metric(
        "Accuracy",
        model_panel.number(d.test.cluster_accuracy, "{:.1%}"),
        help="Hungarian-matched cluster accuracy",
    )
    wall, trained = d.training.wall_seconds, d.training
    st.caption(
        f"Trained {_or_unknown(trained.epochs_run)} epochs (best validation ELBO at epoch "
        f"{_or_unknown(trained.best_epoch)})"
        + (f", {wall / 60:.0f} min" if wall is not None else "")
        + f"; {d.preprocessing} MNIST."
    )
    clusters = stored_clusters(meta)
    if clusters is None and current is not None and current[0] == d.path:
        clusters = current[1].clusters
    if clusters is None:
        st.info("This model's JSON stores no contingency table; open it in the sidebar to see its clusters.")
        return
    names = [cluster_name(c, clusters["matched_label"]) for c in range(len(clusters["matched_label"]))]
    order = gallery_order(clusters["matched_label"], clusters["usage"])
    plotly_chart(
        confusion_figure(
            clusters["contingency"], order, names, clusters["matched_label"], clusters["accuracy"]
        ),
        "gmvae",
        "confusion",
        model=d.name,
        key=key,
        width="stretch",
    )


def _or_unknown(value: Any) -> str:
    return "?" if value is None else str(value)


def comparison_section(current: tuple[str, ClusterBundle] | None) -> None:
    """Two GMVAE models side by side: stored metrics and confusion matrices (clusters x labels)."""
    st.subheader("Confusion matrix, and the two estimators side by side")
    st.markdown(
        "Rows: clusters (argmax q(y|x)), ordered by matched digit; columns: true digits; cells: test images. "
        "The red boxes are the Hungarian matching; the cluster accuracy is the share of images inside them. "
        "Pick two models, for instance one trained with the **marginalised** estimator (the expectation over "
        "y summed exactly, C decoder passes per image) and one with the **Gumbel-softmax** estimator (one "
        "relaxed sample of y, one decoder pass)."
    )
    models = available_models("gmvae")
    if not models:
        return
    by_path = {m["path"]: m for m in models}
    paths = list(by_path)
    names = [m.get("name") for m in models]
    labels = {p: model_label(by_path[p], names.count(by_path[p].get("name")) > 1) for p in paths}
    described = {p: describe(m) for p, m in by_path.items() if not m.get("error")}
    if not described:
        return
    first, second = _comparison_defaults(described, state.get(f"{P}_model"))
    for key, default in ((f"{P}_cmp_a", first), (f"{P}_cmp_b", second)):
        if state.get(key) not in by_path:
            state[key] = default
    cols = st.columns(2, gap="large")
    for col, key, title in zip(cols, (f"{P}_cmp_a", f"{P}_cmp_b"), ("Left", "Right"), strict=True):
        with col:
            path = st.selectbox(f"{title} model", paths, format_func=labels.get, key=key)
            if path not in described:
                entry = by_path[path]
                st.error(f"**{entry.get('name')}**: unreadable description ({entry.get('error')}).")
                continue
            with st.container(key=f"{P}_cmp_{title.lower()}"):
                comparison_column(described[path], by_path[path], current, f"{P}_confusion_{title.lower()}")
    if len(paths) == 1:
        st.info("Only one GMVAE is available: train a second one (another estimator) to compare them.")


if loaded is not None:
    bundle, model_key = loaded
    x_chosen, _, _, chosen_index = chosen_input(bundle)
    if chosen_index is not None:
        highlight = bundle.coords[chosen_index]
    else:
        highlight = bundle.projection(image_posterior(bundle.model, x_chosen).z_mean)
    lecture_on = lecture.lecture_mode()
    if not lecture_on:
        gallery_section(bundle, model_key)
    st.subheader("Pick a cluster and sample from p(z|y)")
    cluster_panel(bundle, model_key, highlight)
    if lecture_on:  # the live part first on a projector: pick a cluster, generate from it
        gallery_section(bundle, model_key)
    posterior_section(bundle)
    ps.url_out({"model": description.name, "img": int(state[f"{P}_index"]), "seed": int(state[f"{P}_seed"])})

if description is not None:
    comparison_section(None if loaded is None else (description.path, loaded[0]))

publish_button(description)
