"""Training page: train a model of any family while the other pages stay usable (runs in the background).

A run is a separate process managed by ``explorer_core.jobs.JobManager`` (one per server, in
``st.cache_resource``); everything about it is on disk under ``runs/<id>/``, so every browser session sees the
same runs and closing the tab does not stop one. The run list is a fragment that reruns itself every second
while some run is queued or running (and not at all otherwise); a finished run's model appears in the model
picker of its family's page.

In class mode (``make serve``, see ``explorer_core.access``) visitors see every run, but starting, cancelling,
resuming and deleting runs needs the operator's passphrase; every session may have at most a few runs of its
own queued or running. A value the form cannot take disables Start (the widgets have no bounds of their own,
so a wrong value reaches the page instead of leaving the previous one in place).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from explorer_core.access import (
    PASSPHRASE_GATE,
    class_mode,
    may_change,
    passphrase_configured,
    session_run_limit,
)
from explorer_core.artifacts import PRETRAINED_DIR, ArtifactError, read_model_description
from explorer_core.device import available_memory
from explorer_core.families import FAMILIES, RecipeVariant, is_model_family
from explorer_core.figures.training import curves_from_metrics, family_metrics_figure, learning_curves
from explorer_core.imaging import tile
from explorer_core.jobs import (
    ConfigRejectedError,
    JobError,
    JobManager,
    RunInfo,
    RunProblem,
    estimate_memory,
    eta_text,
    read_preview,
    runs_root,
    validate_config,
)
from explorer_core.jobs.manager import shared_manager
from explorer_core.models.configs import parse_widths
from explorer_core.training.recipes import TrainConfig
from explorer_core.training.trainer import PRESETS, config_from_args
from views.components.charts import plotly_chart
from views.components.page_state import session_id
from views.pages import FAMILY_PAGES, PAGES
from views.training_form import TrainingChoice

POLL_S = 1.0
#: the family list's entries by key (every family's ``training`` entries in ``views/pages.py``)
CHOICES: dict[str, TrainingChoice] = {
    c.key: c for page in FAMILY_PAGES.values() for c in page.family.training
}
#: the family each entry trains
FAMILY_OF: dict[str, str] = {c.key: name for name, page in FAMILY_PAGES.items() for c in page.family.training}
#: a run's state as a Material icon (markdown only: the table and the select box show the state's word)
STATE_ICONS = {
    "queued": ":material/hourglass_top:",
    "running": ":material/directions_run:",
    "done": ":material/check_circle:",
    "failed": ":material/error:",
    "cancelled": ":material/stop_circle:",
    "interrupted": ":material/warning:",
}
DATA_LIMITS = {
    0: "all of MNIST",
    10_000: "first 10,000 of each split",
    1_000: "first 1,000 of each split",
    300: "first 300 of each split",
}


#: the shipped model whose training history the page shows before any run exists
EXAMPLE_MODEL = "vae-cb-l2"


def unlocked() -> bool:
    """Whether this session may change runs (see ``explorer_core.access.may_change``)."""
    return may_change(bool(st.session_state.get("tr_operator")))


def operator_panel() -> None:
    """Class mode only: the passphrase box that unlocks starting, cancelling, resuming and deleting runs."""
    if not class_mode():
        return
    if st.session_state.get("tr_operator"):
        c1, c2 = st.columns([4, 1])
        c1.success("Operator mode: you can start, cancel, resume and delete runs in this browser session.")
        if c2.button("Lock", key="tr_lock"):
            st.session_state.tr_operator = False
            st.rerun()
        return
    if not passphrase_configured():
        st.info(
            "This app is served to a class in read-only mode: explore every run and model; nobody can start "
            "or delete runs (no operator passphrase is set on the server)."
        )
        return
    with st.form("tr_unlock_form", clear_on_submit=True, border=True):
        st.markdown(
            "**Served to a class.** Explore every run and model freely; starting, cancelling, resuming or "
            "deleting a run needs the operator's passphrase."
        )
        c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
        given = c1.text_input("Operator passphrase", type="password", key="tr_passphrase")
        if c2.form_submit_button("Unlock", key="tr_unlock"):
            # rate-limited per session and per process (explorer_core.access.PassphraseGate)
            attempt = PASSPHRASE_GATE.attempt(session_id(), given)
            if attempt.ok:
                st.session_state.tr_operator = True
                st.rerun()
            else:
                st.error(attempt.message())


def my_active_runs(manager: JobManager) -> list[str]:
    """The runs this browser session started that are still queued or running."""
    mine = set(st.session_state.get("tr_mine", []))
    return [r.id for r in manager.runs() if r.id in mine and r.active]


def job_manager(root: str) -> JobManager:
    """The server's one job manager for the runs folder ``root`` (a new folder gets its own): one per
    process (``explorer_core.jobs.manager.shared_manager``), not in ``st.cache_resource``, which any
    connection may clear."""
    return shared_manager(root)


def page_of(family: str) -> str:
    """The title of the page whose model picker lists the models of ``family`` (``"?"`` if unknown)."""
    page = PAGES.get(family) if is_model_family(family) else None
    return page.title if page is not None else "?"


def variant_of(choice: str) -> RecipeVariant:
    """The variant of its family that the entry ``choice`` trains (its fixed recipe fields, its runs'
    names)."""
    return FAMILIES[FAMILY_OF[choice]].variant(CHOICES[choice].run_slug)


def presets_for(choice: str) -> list[str]:
    """``quick`` (the default: a lecture-sized run), then the family's shipped recipes (``PRESETS``) that fit
    the choice."""
    variant = variant_of(choice)
    names = [name for name in FAMILIES[FAMILY_OF[choice]].presets if variant.matches(PRESETS[name])]
    return ["quick", *names]


def quick_label(choice: str) -> str:
    """The quick recipe's label, with its measured duration on this kind of machine when there is one."""
    seconds = FAMILY_PAGES[FAMILY_OF[choice]].family.quick_seconds
    took = f"{seconds:.0f} s" if seconds else "about a minute"
    return f"quick (a lecture-sized run: {took} on a 2-core CPU)"


def base_config(choice: str, preset: str) -> TrainConfig:
    """The preset's config for the choice (``quick``: the family's short recipe, its ``quick``)."""
    family = FAMILY_OF[choice]
    if preset == "quick":
        return config_from_args("quick", family, dict(variant_of(choice).fixed))
    return config_from_args(preset, family, {})


def hyperparameter_form(choice: str, preset: str, base: TrainConfig) -> dict:
    """The main hyperparameters, with the preset's values as defaults; returns the chosen overrides."""
    k = f"{choice}_{preset}"
    c = st.columns(5)
    values = {
        "epochs": c[0].number_input("Epochs", value=base.epochs, step=1, key=f"tr_epochs_{k}"),
        "batch_size": c[1].number_input("Batch size", value=base.batch_size, step=1, key=f"tr_batch_{k}"),
        "lr": c[2].number_input(
            "Learning rate (Adam)", value=float(base.lr), step=1e-4, format="%.1e", key=f"tr_lr_{k}"
        ),
        "latent_dim": c[3].number_input("Latent dim L", value=base.latent_dim, step=1, key=f"tr_latent_{k}"),
        "seed": c[4].number_input("Seed", value=base.seed, step=1, key=f"tr_seed_{k}"),
    }
    c = st.columns(5)
    values["hidden"] = c[0].text_input(
        "Hidden layers",
        ", ".join(str(h) for h in base.hidden),
        key=f"tr_hidden_{k}",
        help="widths, e.g. 500, 500",
    )
    # the family's own hyperparameters (its ``form`` in views/pages.py) in the columns between
    shown = [f for f in FAMILY_PAGES[base.family].family.form if f.shown_for(base)]
    for column, spec in zip(c[1:4], shown, strict=False):
        values[spec.name] = column.number_input(
            spec.label, value=spec.value_for(base), step=spec.step, key=f"{spec.key}_{k}"
        )
    c[4].selectbox(
        "Training data",
        list(DATA_LIMITS),
        format_func=DATA_LIMITS.get,
        key="tr_data_limit",
        help="All: 50,000 training, 10,000 validation and 10,000 test images. Or only the first N images of "
        "each split: a faster demo (the final test metrics then use N test images too).",
    )
    return values


def new_run_panel(manager: JobManager) -> None:
    """Family, preset and hyperparameters; the memory estimate; Start."""
    st.subheader("New run")
    c1, c2 = st.columns([1, 2])
    choice = c1.selectbox(
        "Model family", list(CHOICES), format_func=lambda k: CHOICES[k].label, key="tr_family"
    )
    presets = presets_for(choice)
    preset = c2.radio(
        "Recipe",
        presets,
        format_func=lambda p: quick_label(choice) if p == "quick" else p,
        horizontal=True,
        key=f"tr_preset_{choice}",
        help="The paper's recipe as shipped (the family's presets in explorer_core/families.py), or a short "
        "one.",
    )
    base = base_config(choice, preset)
    values = hyperparameter_form(choice, preset, base)
    data_limit = int(st.session_state.get("tr_data_limit") or 0) or None
    config = problem = None
    try:
        values["hidden"] = parse_widths(values["hidden"])
        merged = {**base.to_dict(), **values}
        n_train = data_limit if data_limit else None
        config = validate_config(merged, manager.device, n_train)
    except (ValueError, ConfigRejectedError) as err:
        problem = str(err)
    locked = not unlocked()
    busy = my_active_runs(manager)
    limit = session_run_limit()
    left, right = st.columns([1, 4])
    start = left.button(
        "Start training",
        icon=":material/play_arrow:",
        type="primary",
        key="tr_start",
        disabled=problem is not None or locked or len(busy) >= limit,
    )
    if problem:
        right.error(f"Cannot start: {problem}")
    elif locked:
        right.info(
            "Starting a run needs the operator's passphrase (above). You can still explore everything."
        )
    elif len(busy) >= limit:
        right.warning(
            f"This browser session already has {len(busy)} run(s) queued or running (at most {limit}): "
            "wait for one to finish or cancel one."
        )
    else:
        estimate = estimate_memory(config, data_limit, manager.device)
        free = available_memory(manager.device)
        free_text = f" of {free / 2**30:.1f} GiB free" if free else ""
        right.caption(
            f"{config.family.upper()}: {estimate.parameters:,} parameters, likelihood "
            f"{config.likelihood.replace('_', ' ')} on {config.preprocessing} MNIST; about "
            f"{estimate.total_bytes / 2**30:.2f} GiB needed{free_text} on {manager.device}. Runs in its own "
            "process: keep exploring the other pages meanwhile."
        )
    if (
        start
        and config is not None
        and problem is None
        and unlocked()
        and len(my_active_runs(manager)) < limit
    ):
        try:
            run_id = manager.start(config, label=CHOICES[choice].label, preset=preset, data_limit=data_limit)
        except ConfigRejectedError as err:
            st.error(f"Not started: {err}")
        else:
            st.session_state.tr_selected = run_id
            st.session_state.setdefault("tr_mine", []).append(run_id)
            st.toast(f"Started {run_id}")


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%H:%M:%S") if ts else "–"


def _duration(run: RunInfo) -> str:
    start, end = run.status.get("started"), run.status.get("finished")
    if not start:
        return "–"
    seconds = int((end or dt.datetime.now().timestamp()) - start)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def run_header(run: RunInfo) -> str:
    preset = run.options.get("preset")
    bits = [f"{STATE_ICONS.get(run.state, '')} **{run.label}** · `{run.id}` · {run.state}"]
    if preset:
        bits.append(f"recipe {preset}")
    bits.append(f"started {_when(run.status.get('started'))}" if run.status.get("started") else "waiting")
    bits.append(f"on {run.status.get('device', '?')}")
    return " · ".join(bits)


def run_body(manager: JobManager, run: RunInfo) -> None:
    """Progress, curves, family metrics, preview and the actions of one run."""
    rows = run.metrics()
    progress = run.progress(rows)
    if run.active:
        if run.state == "queued":
            st.progress(0.0, text="queued: starts when the run before it ends")
        elif not rows:
            st.progress(0.0, text="starting: the process loads torch and MNIST…")
        else:
            st.progress(
                progress.fraction,
                text=f"epoch {progress.epoch} of {progress.epochs} · step {progress.step:,} of "
                f"{progress.total_steps:,} · {eta_text(progress.eta_s)}",
            )
        if (
            st.button(
                "Cancel",
                icon=":material/stop:",
                key=f"tr_cancel_{run.id}",
                disabled=not unlocked(),
                help="ends this epoch's steps, then evaluates and keeps the best epoch",
            )
            and unlocked()
        ):
            manager.cancel(run.id)
            st.toast(f"Cancelling {run.id}: its best epoch is kept…")
    else:
        message = run.status.get("error") or run.status.get("message") or ""
        page = page_of(run.family)
        elbo = run.status.get("test_elbo")
        elbo_text = f"test ELBO {elbo:.2f} nats" if isinstance(elbo, int | float) else "no test ELBO"
        if run.state == "done":
            st.success(
                f"Done in {_duration(run)}: {elbo_text}, best epoch {run.status.get('best_epoch')} "
                f"({message}). It is in the model picker of the **{page}** page as `{run.id}`."
            )
        elif run.state == "failed":
            st.error(f"Failed: {message}")
            if run.status.get("traceback") and (not class_mode() or unlocked()):
                with st.expander("Traceback"):
                    st.code(run.status["traceback"], language="text")
        elif run.state == "interrupted":
            st.warning(
                f"Interrupted: {message}"
                + (" It can be resumed from its checkpoint." if run.resumable else "")
            )
        elif run.model_json is not None:
            st.info(
                f"Cancelled after {_duration(run)}; its best epoch ({run.status.get('best_epoch')}) was kept "
                f"and evaluated: {elbo_text}. It is in the model picker of the **{page}** page as `{run.id}`."
            )
        else:
            st.info(f"Cancelled after {_duration(run)}.")
    curves = curves_from_metrics(rows, progress.epochs)
    left, right = st.columns([2, 1])
    with left:
        if rows:
            plotly_chart(
                learning_curves(curves, progress.epochs),
                "training",
                f"learning-curves-{run.id}",
                key=f"tr_curves_{run.id}",
                width="stretch",
            )
            extra = family_metrics_figure(curves)
            if extra is not None:
                plotly_chart(
                    extra, "training", f"metrics-{run.id}", key=f"tr_family_{run.id}", width="stretch"
                )
        else:
            st.caption("No step reported yet (the process loads torch and MNIST first).")
    with right:
        preview = read_preview(run.path)
        if preview is not None:
            images, epoch = preview
            grid = tile(images.reshape(-1, 28, 28), min(4, len(images)), pad=2, pad_value=0.4, border=True)
            st.image(grid, caption=f"samples after epoch {epoch}", width="stretch")
        else:
            st.caption("Samples appear after the first epoch.")
        if not run.active:
            actions(manager, run)


def _reader(path: Path, max_bytes: int = 2**31):
    """A callable that reads ``path`` when the download is asked for (not on every rerun)."""

    def read() -> bytes:
        from explorer_core.untrusted import read_bytes

        return read_bytes(path, max_bytes)

    return read


def actions(manager: JobManager, run: RunInfo) -> None:
    """Download the weights and the JSON of a run with a model (read only when a download is asked for);
    resume an interrupted or cancelled run from its checkpoint; delete a finished run."""
    path = run.model_json
    if path is not None:
        try:
            weights = path.with_name(read_model_description(path)["weights"])
        except ArtifactError as err:
            st.error(str(err))
        else:
            c1, c2 = st.columns(2)
            c1.download_button(
                "weights",
                _reader(weights),
                weights.name,
                "application/octet-stream",
                icon=":material/download:",
                key=f"tr_dl_w_{run.id}",
                on_click="ignore",
            )
            c2.download_button(
                "JSON",
                _reader(path),
                path.name,
                "application/json",
                icon=":material/download:",
                key=f"tr_dl_j_{run.id}",
                on_click="ignore",
            )
    allowed = unlocked()

    def resume() -> None:
        manager.resume(run.id)
        st.session_state.setdefault("tr_mine", []).append(run.id)

    if (
        run.resumable
        and st.button(
            "Resume",
            icon=":material/resume:",
            key=f"tr_resume_{run.id}",
            type="primary",
            disabled=not allowed,
            help="continue from the last whole epoch's checkpoint, in the background, to its epochs",
        )
        and allowed
    ):
        _act(resume, f"Resuming {run.id}")
    if (
        st.button(
            "Delete run",
            icon=":material/delete:",
            key=f"tr_delete_{run.id}",
            help="removes runs/<id>/ and its model",
            disabled=not allowed,
        )
        and allowed
    ):
        _act(lambda: manager.delete(run.id), f"Deleted {run.id}")


def _act(action: Callable[[], None], done: str | None = None) -> None:
    """Run a pressed button's ``action`` on a run (resume, delete): a refusal (``JobError``) is shown as an
    error; otherwise ``done`` is toasted and the page reruns to show the change."""
    try:
        action()
    except JobError as err:
        st.error(str(err))
    else:
        if done is not None:
            st.toast(done)
        st.rerun()


def problems_panel(manager: JobManager, problems: list[RunProblem]) -> None:
    """One line per run folder whose files are not a valid run, with a Delete button each."""
    if not problems:
        return
    st.warning(
        f"{len(problems)} run folder{'s' if len(problems) > 1 else ''} cannot be read (the other runs are "
        "fine):",
        icon=":material/warning:",
    )
    for problem in problems:
        c1, c2 = st.columns([6, 1])
        c1.text(problem.message.splitlines()[0][:400])
        if (
            c2.button(
                "Delete", icon=":material/delete:", key=f"tr_delete_bad_{problem.id}", disabled=not unlocked()
            )
            and unlocked()
        ):
            _act(lambda problem=problem: manager.delete(problem.id))


def example_panel() -> None:
    """Before any run: what one looks like, from a shipped model's training history."""
    try:
        meta = read_model_description(PRETRAINED_DIR / f"{EXAMPLE_MODEL}.json")
    except ArtifactError:
        return
    history = (meta.get("training") or {}).get("history") or []
    epochs = len(history)
    if not epochs:
        return
    rows = [
        {"kind": "epoch", **{k: v for k, v in h.items() if isinstance(v, int | float)}}
        for h in history
        if isinstance(h.get("train_elbo"), int | float)
    ]
    best = (meta.get("training") or {}).get("best_epoch")
    if rows and best is not None:
        rows[-1]["best_epoch"] = best
    st.markdown(
        f"**What a run looks like**: the learning curves of the shipped `{EXAMPLE_MODEL}` "
        f"({epochs} epochs, {config_caption_short(meta)}). A run started here draws the same curves live, "
        "with its progress, ETA and samples after every epoch."
    )
    curves = curves_from_metrics(rows, epochs)
    plotly_chart(
        learning_curves(curves, epochs),
        "training",
        "learning-curves",
        model=EXAMPLE_MODEL,
        key="tr_example_curves",
        width="stretch",
    )


def config_caption_short(meta: dict) -> str:
    """``L = 2, hidden [500, 500]``."""
    config = meta.get("config") or {}
    return f"L = {config.get('latent_dim')}, hidden {config.get('hidden')}"


def runs_panel() -> None:
    """Active runs in full, then one finished run to inspect; reruns itself while a run is active."""
    manager = job_manager(str(runs_root()))
    runs = manager.runs()
    active = [r for r in runs if r.active]
    finished = [r for r in runs if not r.active]
    head, refresh = st.columns([5, 1])
    head.subheader("Runs")
    refresh.button("↻ Refresh", key="tr_refresh", help="see runs started from other browser sessions")
    problems_panel(manager, manager.problems())
    if not runs:
        st.caption("No runs yet." if class_mode() else f"No runs yet in `{manager.root}`.")
        example_panel()
    for run in active:
        with st.container(border=True):
            st.markdown(run_header(run))
            run_body(manager, run)
    if finished:
        st.markdown("**Finished runs**")
        st.dataframe(
            [
                {
                    "run": r.id,
                    "family": r.label,
                    "state": r.state,
                    "started": _when(r.status.get("started")),
                    "took": _duration(r),
                    "test ELBO": None
                    if r.status.get("test_elbo") is None
                    else round(r.status["test_elbo"], 2),
                    "epochs": r.status.get("epochs_run"),
                }
                for r in finished
            ],
            hide_index=True,
            width="stretch",
            key="tr_table",
        )
        ids = [r.id for r in finished]
        if st.session_state.get("tr_inspect") not in ids:
            selected = st.session_state.get("tr_selected")
            st.session_state.tr_inspect = selected if selected in ids else ids[0]
        by_id = {r.id: r for r in finished}
        chosen = st.selectbox(
            "Inspect a finished run",
            ids,
            format_func=lambda i: f"{i} ({by_id[i].state})",
            key="tr_inspect",
        )
        with st.container(border=True):
            st.markdown(run_header(by_id[chosen]))
            run_body(manager, by_id[chosen])
    polling = bool(active)
    if polling != st.session_state.get("tr_polling", False):
        st.session_state.tr_polling = polling
        st.rerun()  # start or stop the timer (and let the rest of the page see the change)


st.title(f"{PAGES['training'].icon} Training")
st.markdown(
    "Train a model on MNIST with AEVB, exactly as `python -m explorer_core train` does, in a separate "
    "process on the server's device. Keep exploring the other pages while it runs: a finished run shows up "
    "in the model picker of its family's page, next to the pretrained models. Runs are shared by every "
    "browser session and go on when you leave this page or close the tab."
)
manager = job_manager(str(runs_root()))
operator_panel()
new_run_panel(manager)
st.divider()
if "tr_polling" not in st.session_state:
    st.session_state.tr_polling = any(r.active for r in manager.runs())
st.fragment(runs_panel, run_every=POLL_S if st.session_state.tr_polling else None)()
