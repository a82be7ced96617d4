"""Render every ``bench/results/*.json`` into BENCHMARKS.md (run by ``make bench``)."""

import json

from common import RESULTS, ROOT


def _machine_line(m: dict) -> str:
    return (
        f"{m['date']} · {m['cpu']} ({m['cores']} cores, load {m['load_average_1min']} at the start) · "
        f"torch {m['torch']} on {m['device']}, {m['torch_threads']} thread(s) · Python {m['python']}"
    )


def fa_section(r: dict) -> list[str]:
    return [
        "## Factor-analysis page (server side)",
        "",
        _machine_line(r["machine"]),
        "",
        r["what"] + ".",
        "",
        "| what | p50 ms | p95 ms | n |",
        "|---|---|---|---|",
        f"| one step + its test metrics | {r['step']['p50_ms']} | {r['step']['p95_ms']} | {r['step']['n']} |",
        f"| one frame's figures | {r['frame_figures']['p50_ms']} | {r['frame_figures']['p95_ms']} "
        f"| {r['frame_figures']['n']} |",
        "",
    ]


def latent_section(r: dict) -> list[str]:
    lines = [
        "## VAE and CVAE pages: one latent change (server side)",
        "",
        _machine_line(r["machine"]),
        "",
        r["what"],
        "",
        "| model | L | decode p50 / p95 | figure p50 / p95 | serialise p50 / p95 | **total p50 / p95** "
        "| first load s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in r["models"].items():
        cells = [f"{m[k]['p50_ms']} / {m[k]['p95_ms']}" for k in ("decode", "figure", "serialise", "total")]
        lines.append(
            f"| {name} | {m['latent_dim']} | {cells[0]} | {cells[1]} | {cells[2]} | **{cells[3]}** "
            f"| {m['first_load_s']} |"
        )
    return [
        *lines,
        "",
        "Times in milliseconds over the random moves; Streamlit's own transport is not included.",
        "",
    ]


def gmvae_section(r: dict) -> list[str]:
    lines = [
        f"## GMVAE page: {r.get('n', 100)} samples of a picked cluster (server side)",
        "",
        _machine_line(r["machine"]),
        "",
        r["what"],
        "",
        "| model | C | L | hidden | estimator | **sample + PNG p50 / p95** | chart p50 / p95 "
        "| first load s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, m in r["models"].items():
        cells = [f"{m[k]['p50_ms']} / {m[k]['p95_ms']}" for k in ("sample_png", "chart")]
        hidden = "-".join(str(h) for h in m["hidden"])
        lines.append(
            f"| {name} | {m['n_clusters']} | {m['latent_dim']} | {hidden} | {m['estimator']} "
            f"| **{cells[0]}** | {cells[1]} | {m['first_load_s']} |"
        )
    return [
        *lines,
        "",
        f"Times in milliseconds over {r['repeat']} picks; Streamlit's own transport is not included.",
        "",
    ]


def _fmt(value, digits: int = 2) -> str:
    """A number for a table cell; '–' for None."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _quick_note(r: dict) -> list[str]:
    if r.get("mode") == "quick":
        return ["**Smoke run (`--quick`): these are not the benchmark figures; run `make bench`.**", ""]
    return []


def _missing(title: str, target: str) -> list[str]:
    return [f"## {title}", "", f"Not measured yet: run `make {target}`.", ""]


#: which data each family is trained and evaluated on, in words
DATA_WORDS = {
    "dequantized": "dequantized (x + U[0,1)) / 256",
    "binarized": "binarized, fixed threshold >= 128",
    "dynamic_binarized": "dynamically binarized (test set drawn once, fixed seed)",
}


def quality_section() -> list[str]:
    """The shipped models on the test set (bench/results/quality.json) beside the published anchors."""
    title = "Shipped models on the MNIST test set, beside the anchors"
    path = RESULTS / "quality.json"
    if not path.exists():
        return _missing(title, "bench-quality")
    r = json.loads(path.read_text())
    lines = [
        f"## {title}",
        "",
        _machine_line(r["machine"]),
        "",
        *_quick_note(r),
        "Measured by `make bench-quality`: `python -m explorer_core evaluate NAME --json` on every model in "
        "`pretrained/` (an earlier output is reused only while the weights' sha256 is unchanged: column "
        '"cached"). Nats per image, means over the '
        f"{r.get('test_images', 10_000):,} test images, eval mode. "
        "*Italic rows* are published figures (the tutorial, Yang 2022, arXiv 2208.07818, and the papers "
        "it cites), quoted, not measured here. "
        "Continuous Bernoulli (CB) densities are positive and not comparable with binarized nats; "
        "static binarization costs about 2 nats against dynamic binarization.",
        "",
        "| model | data | evaluation | ELBO | IWAE NLL (k) | KL | accuracy | H(q(y\\|x)) | target | met | "
        "cached |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    models = r.get("models", {})
    for family in ("vae", "cvae", "gmvae", "vrnn"):
        for name, m in sorted(models.items()):
            if m.get("family") != family:
                continue
            nll = f"{m['nll_estimate']:.2f} ({m.get('iwae_k')})" if m.get("nll_estimate") is not None else "–"
            data = DATA_WORDS.get(m.get("preprocessing"), m.get("preprocessing"))
            lines.append(
                f"| {name} | {data} | {m['method']} | {_fmt(m.get('elbo'))} | {nll} | {_fmt(m.get('kl'))} "
                f"| {_fmt(m.get('cluster_accuracy'), 4)} "
                f"| {_fmt(m.get('conditional_entropy'), 3)} | {m.get('target') or 'reported'} | {m['met']} "
                f"| {'yes' if m.get('cached') else 'no'} |"
            )
        for a in r.get("anchors", []):
            if a["family"] != family:
                continue
            nll = (
                f"{a['nll_estimate']:.2f}" + (f" ({a['iwae_k']})" if a.get("iwae_k") else "")
                if "nll_estimate" in a
                else "–"
            )
            lines.append(
                f"| *{a['source']}* | *{DATA_WORDS.get(a['data'], a['data'])}* | *{a['method']}* "
                f"| *{_fmt(a.get('elbo'))}* | *{nll}* | – | *{_fmt(a.get('cluster_accuracy'), 4)}* "
                f"| *{_fmt(a.get('conditional_entropy'), 3)}* | anchor | – | – |"
            )
    lines.append("")
    if r.get("missing"):
        lines += [f"Not in `pretrained/` at this run (not measured): {', '.join(r['missing'])}.", ""]
    if r.get("errors"):
        lines += ["Evaluation failed: " + "; ".join(f"{k}: {v}" for k, v in r["errors"].items()) + ".", ""]
    gm = {k: m for k, m in models.items() if m.get("family") == "gmvae" and "elbo_without_log_c" in m}
    if gm:
        lines += [
            "GMVAE ELBOs include the constant -log C (a true bound); the reference notebook omits it: "
            + ", ".join(f"{k} without it: {m['elbo_without_log_c']:.2f}" for k, m in sorted(gm.items()))
            + ".",
            "",
        ]
    return lines


def training_speed_section(r: dict) -> list[str]:
    lines = [
        "## Training speed: our trainer against a reference-style loop",
        "",
        _machine_line(r["machine"]),
        "",
        *_quick_note(r),
        r["what"],
        "",
        f"Throughput (images per second; each variant a fresh model, a few warm-up steps timed apart, then "
        f'whole steps for {r["measure_s"]:g} s; "x ref" = against the reference-style loop of the same '
        f"family). torch.compile here: {r['torch_compile']}.",
        "",
    ]
    rows = r.get("throughput", {})
    names: list[str] = []
    for row in rows.values():
        names += [n for n in row["variants"] if n not in names]
    if rows:
        lines += ["| family (preset) | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    else:
        lines.append("(no throughput measured in this run)")
    for family, row in rows.items():
        cells = []
        for n in names:
            v = row["variants"].get(n)
            if v is None:
                cells.append("–")
            elif "error" in v:
                cells.append(f"failed: {v['error'][:80]}")
            else:
                extra = f" (x{v['vs_reference']})" if "vs_reference" in v and n != "reference" else ""
                if "compile" in n:
                    extra += f", first {v['warmup_steps']} steps {v['warmup_seconds']:.0f} s"
                cells.append(f"{v['images_per_s']:.0f}{extra}")
        lines.append(f"| {family} ({row['preset']}) | " + " | ".join(cells) + " |")
    lines += [
        "",
        "reference: DataLoader over a TensorDataset, batch 100, float32, one Adam on all parameters, "
        "`loss = -elbo.mean()`. ours: `aevb_step` (separate Adam for φ and θ, gradient-norm and NaN check) "
        "on device-resident data, batch 100; each further column changes one thing (bf16 autocast: "
        f"{r.get('bf16_note', '')}; torch.compile: of `model.elbo`, compile time shown apart).",
        "",
    ]
    t = r.get("time_to_elbo")
    if t:
        cap = t["cap_s"]
        ts = t["threshold_seconds"]
        ours_cfg = f"batch {t['ours'].get('batch')}, lr {t['ours'].get('lr')}"

        def when(seconds):
            return f"{seconds:.0f} s" if seconds is not None else f"not reached within {cap:.0f} s"

        def last(run):
            return run["curve"][-1] if run.get("curve") else {}

        lo, lr_ = last(t["ours"]), last(t["reference"])
        lines += [
            f"Time to the reference's final test ELBO, {t['threshold']} nats (VAE, CB, dequantized MNIST; "
            "single-sample test ELBO in eval mode after every epoch; training seconds only, test evaluations "
            f"timed apart; cap {cap:.0f} s of training each):",
            "",
            "| run | reaches 1788.41 after | last test ELBO (at epoch, training s) |",
            "|---|---|---|",
            f"| ours: `training.train` ({ours_cfg}) | {when(ts['ours'])} | "
            f"{_fmt(lo.get('test_elbo'))} ({lo.get('epoch')}, {lo.get('train_s')}) |",
            f"| reference-style loop (batch 100, lr 0.0003) | {when(ts['reference'])} | "
            f"{_fmt(lr_.get('test_elbo'))} ({lr_.get('epoch')}, {lr_.get('train_s')}) |",
            "",
        ]
        if t.get("threshold_ratio"):
            lines += [f"**Speed-up to 1788.41: x{t['threshold_ratio']}** (reference seconds / ours).", ""]
        m = t.get("matched")
        if m:
            ratio = f"**x{m['ratio']}**" if m.get("ratio") else "not available"
            lines += [
                f"Matched quality: the reference-style loop's best test ELBO within its cap, "
                f"{m['test_elbo']}, is reached by ours after {when(m['ours_s'])} and by the reference-style "
                f"loop after "
                f"{when(m['reference_s'])}: speed-up {ratio} (epoch-end resolution).",
                "",
            ]
    return lines


def app_section(r: dict) -> list[str]:
    cs, dl = r["cold_start"], r["cold_deep_link"]
    lines = [
        "## The app in a browser: cold start, the live latent pad, concurrent sessions",
        "",
        _machine_line(r["machine"]),
        "",
        *_quick_note(r),
        r["what"],
        "",
        " ".join(r["method"].split()).replace(" (b) ", "\n\n(b) ").replace(" (c) ", "\n\n(c) "),
        "",
    ]
    if "training_paused" in r:
        lines += [
            f"Background training on this machine paused during the run: {r['training_paused']}; server "
            f"torch threads: {r.get('torch_threads_server', '?')}. Other work on the machine (tests, other "
            "benchmarks) may have run at the same time: see the load average above.",
            "",
        ]
    lines += [
        f"| what (p50 of {r['repeats']}) | seconds from launch | after /_stcore/health |",
        "|---|---|---|",
        f"| cold start: `streamlit run` to the home page rendered, idle | {_fmt(cs['p50_first_page_s'])} | |",
        f"| cold deep link to /vae: first figure | {_fmt(dl['p50_first_figure_s'])} "
        f"| {_fmt(dl.get('p50_first_figure_after_health_s'))} |",
        f"| cold deep link to /vae: page idle | {_fmt(dl['p50_idle_s'])} | |",
        "",
    ]
    floor, key = r.get("trivial_fragment"), r.get("latent_move")
    if floor and key:
        pointer = r.get("pointer_move") or {}
        lines += [
            f"One session, model {r['model']}: input event to the new decoded image on screen",
            "",
            "| what | p50 ms | p95 ms | n |",
            "|---|---|---|---|",
            f"| trivial fragment (slider -> image), Streamlit's floor | {_fmt(floor.get('p50_ms'), 0)} "
            f"| {_fmt(floor.get('p95_ms'), 0)} | {floor.get('n')} |",
            f"| **latent move on the VAE pad (key press)** | {_fmt(key.get('p50_ms'), 0)} "
            f"| **{_fmt(key.get('p95_ms'), 0)}** | {key.get('n')} |",
            f"| latent move on the VAE pad (pointer move, button down) | {_fmt(pointer.get('p50_ms'), 0)} "
            f"| {_fmt(pointer.get('p95_ms'), 0)} | {pointer.get('n')} |",
            "",
            f"Key press p95 / trivial fragment p95: x{r.get('key_p95_over_floor_p95')} (target: p95 <= "
            "150 ms and at most x2).",
            "",
        ]
    drags = r.get("drag") or []
    if drags:
        lines += [
            "Continuous drag across the pad (scripted, mouse button held down):",
            "",
            "| drag s | pointer steps | new images on screen during the drag | images / s | last image = z "
            "under the pointer |",
            "|---|---|---|---|---|",
        ]
        for d in drags:
            lines.append(
                f"| {d['drag_s']} | {d['steps']} | {d['images_during_drag']} | **{d['images_per_s']}** "
                f"| {'yes' if d['last_image_matches'] else 'no'} ({d['last_image_z']} at "
                f"{d['pointer_stopped_at']}) |"
            )
        lines.append("")
    lines += [
        f"Concurrent sessions on one server, model {r['model']}, one move = {r.get('move')}:",
        "",
        "| sessions | moves | latency p50 ms | p95 ms | errors | server CPU ms per move "
        "| opening all pages s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["concurrency"]:
        lines.append(
            f"| {row['sessions']} | {row['moves_done']} of {row['moves_tried']} "
            f"| {_fmt(row.get('p50_ms'), 0)} | {_fmt(row.get('p95_ms'), 0)} | {row['errors']} "
            f"| {_fmt(row.get('server_cpu_ms_per_move'), 1)} | {row['open_all_s']} |"
        )
    return [*lines, ""]


def gpu_section() -> list[str]:
    """Which results ran on a GPU (their device names), or that none did."""
    gpus = {}
    for path in sorted(RESULTS.glob("*.json")):
        try:
            device = json.loads(path.read_text()).get("machine", {}).get("device", "")
        except (OSError, ValueError, AttributeError):
            continue
        if device and not device.startswith(("cpu", "mps")):
            gpus[path.stem] = device
    lines = ["## GPU", ""]
    if gpus:
        lines += [
            "Sections measured on a GPU: " + ", ".join(f"{k} on {v}" for k, v in gpus.items()) + ".",
            "",
        ]
    else:
        lines += [
            "No GPU was available to this run: every figure above was measured on the CPU. The scripts are "
            "device-agnostic and record the device (with the GPU's model) in each result's `machine` field, "
            "so a run on a GPU machine marks its rows here.",
            "",
        ]
    return lines


def training_load_section(r: dict) -> list[str]:
    """The VAE page's latent change, idle and while a training job runs (bench_training_load.py)."""
    idle, loaded = r["idle"], r["while_training"]
    return [
        "## VAE page while a model trains in the background",
        "",
        _machine_line(r["machine"]),
        "",
        r["what"],
        "",
        f"| one latent change on {r['model']} | p50 ms | p95 ms | n |",
        "|---|---|---|---|",
        f"| idle | {idle['p50_ms']} | {idle['p95_ms']} | {idle['n']} |",
        f"| while training | {loaded['p50_ms']} | {loaded['p95_ms']} | {loaded['n']} |",
        f"| **ratio** (target < {r['target_ratio']}x) | **{r['ratio_p50']}x** | **{r['ratio_p95']}x** "
        f"| {'met' if r['met'] else 'not met'} |",
        "",
        f"The job: {r['job']['config']}, {r['job']['threads']} torch thread(s), "
        f"{r['job']['steps_per_s_during_measurement']} steps/s during the measurement.",
        "",
    ]


def vrnn_section(r: dict) -> list[str]:
    """The VRNN page: server time of one generated row (bench/results/vrnn.json, `make bench-vrnn`)."""
    lines = [
        f"## VRNN page: one generated row of a {r.get('digits', 16)}-digit grid (server side)",
        "",
        _machine_line(r["machine"]),
        "",
        r["what"],
        "",
        "| model | architecture | test ELBO | total KL | generation step p50 / p95 | grid image p50 / p95 "
        "| figure p50 / p95 | serialise p50 / p95 | **total p50 / p95** | total CPU time p50 / p95 "
        "| first load s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in r["models"].items():
        cells = [
            f"{m[k]['p50_ms']} / {m[k]['p95_ms']}" if k in m else "–"
            for k in ("step", "grid_image", "figure", "serialise", "total", "total_cpu")
        ]
        lines.append(
            f"| {name} | {m['config']} | {_fmt(m.get('test_elbo'))} | {_fmt(m.get('test_kl'))} | {cells[0]} "
            f"| {cells[1]} | {cells[2]} | {cells[3]} | **{cells[4]}** | {cells[5]} | {m['first_load_s']} |"
        )
    if not r["models"]:
        lines.append("| (no VRNN in pretrained/) | | | | | | | | | | |")
    return [
        *lines,
        "",
        f"Times in milliseconds over {r['repeat']} rows (wall clock; the CPU time column is what the update "
        f"costs the process, which a busy machine does not inflate); the budget is {r['budget_ms']:g} ms per "
        "row. The tutorial's VRNN reaches a test ELBO of -78.29 (its best epoch). Streamlit's transport is "
        "not included.",
        "",
    ]


def gmvae_seeds_section(r: dict) -> list[str]:
    lines = [
        "## GMVAE: every seed trained, and the one the rule chose",
        "",
        _machine_line(r["machine"]),
        "",
    ]
    for estimator, e in sorted(r.get("recipes", {}).items()):
        published = ", ".join(
            f"`{n}` (seed {p['seed']}: {p['role']})" for n, p in sorted(e["published"].items())
        )
        lines += [
            f"**{estimator} estimator.** Rule: {e['rule']}. Published: {published}.",
            "",
            "| seed | epochs | best epoch | validation ELBO (criterion) | test ELBO | test accuracy "
            "| stopped |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in e["candidates"]:
            mark = " **(chosen)**" if c["seed"] == e["chosen_seed"] else ""
            acc = c.get("test_cluster_accuracy")
            lines.append(
                f"| {c['seed']}{mark} | {c['epochs_run']} | {c['best_epoch']} | {c['val_elbo']:.2f} "
                f"| {c['test_elbo']:.2f} | {'' if acc is None else f'{acc:.4f}'} | {c.get('stopped') or ''} |"
            )
        if "test_cluster_accuracy_mean" in e:
            lo, hi = e["test_cluster_accuracy_range"]
            lines += [
                "",
                f"Test accuracy over {len(e['candidates'])} seeds: "
                f"mean {e['test_cluster_accuracy_mean']:.4f}, "
                f"standard deviation {e['test_cluster_accuracy_std']:.4f}, range {lo:.4f}-{hi:.4f}.",
            ]
        lines.append("")
    return lines + _gmvae_v3_lines(r.get("v3") or {})


def _gmvae_v3_lines(v3: dict) -> list[str]:
    """Recipe v3's screening restarts and long runs (issue 36), beside the v2 rows above."""
    screening, long_runs = v3.get("screening"), v3.get("long_runs") or []
    if not screening and not long_runs:
        return []
    lines = [
        "**Recipe v3 (`gmvae-marginal-v3`: fresh binarization of every training minibatch, 200 epochs, the "
        "last kept).**",
        "",
    ]
    if screening and "restarts" in screening:
        lines += [
            f"Screening rule: {screening['rule']}. Kept (best first): {screening['kept']}; skipped: "
            f"{screening['skipped'] or 'none'}.",
            "",
            "| seed | H(q(y\\|x)) at epoch 20 (criterion) | smallest cluster | validation ELBO | test ELBO "
            "| test accuracy (reported only) | rank |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in screening["restarts"]:
            acc, test = r.get("test_cluster_accuracy"), r.get("test_elbo")
            lines.append(
                f"| {r['seed']} | {r['conditional_entropy']:.4f} | {r['min_cluster_usage']:.1%} "
                f"| {r['val_elbo']:.2f} | {'' if test is None else f'{test:.2f}'} "
                f"| {'' if acc is None else f'{acc:.4f}'} | {r['rank'] or 'skipped'} |"
            )
        lines.append("")
    elif screening:
        lines += [f"Screening: {screening.get('error')}", ""]
    if long_runs:
        lines += [
            "| long run: seed | epochs | final H(q(y\\|x)) | validation ELBO | test ELBO | test accuracy |",
            "|---|---|---|---|---|---|",
        ]
        for r in long_runs:
            acc = r.get("test_cluster_accuracy")
            lines.append(
                f"| {r['seed']} | {r['epochs']} | {r['conditional_entropy']:.4f} | {r['val_elbo']:.2f} "
                f"| {r['test_elbo']:.2f} | {'' if acc is None else f'{acc:.4f}'} |"
            )
        lines.append("")
    return lines


def soak_section(r: dict) -> list[str]:
    """Many browser sessions over every page while a job trains (bench/results/soak.json, bench-soak)."""
    lat, mem, ramp = r.get("latency") or {}, r["memory_mb"], r.get("ramp_latency") or {}
    lines = [
        f"## Soak: {r['sessions']} browser sessions over every page for {r['duration_s']:.0f} s "
        "while a job trains",
        "",
        _machine_line(r["machine"]),
        "",
        r["what"],
        "",
        *(
            [
                f"Ramp (every session visits every page once): {r['ramp_visits']} visits in {r['ramp_s']} s, "
                f"errors: **{r['ramp_errors']}**, visit latency p50 {ramp.get('p50_ms')} ms, p95 "
                f"{ramp.get('p95_ms')} ms.",
                "",
            ]
            if "ramp_visits" in r
            else []
        ),
        f"Steady phase: visits: {r['visits']}; errors: **{r['errors']}** (0 expected); visit latency p50 "
        f"{lat.get('p50_ms')} ms, **p95 {lat.get('p95_ms')} ms**. Server memory (VmRSS): {mem['first']} MB "
        f"at the start, {mem.get('at_steady_start', '–')} MB when the steady phase began, peak "
        f"{mem['peak']} MB, {mem['last']} MB at the end; slope over the steady phase "
        f"**{mem.get('slope_mb_per_min_steady', mem.get('slope_mb_per_min_second_half'))} MB/min**"
        + (
            f"; median of its first minute {mem['median_first_minute_steady']} MB, of its last minute "
            f"**{mem['median_last_minute_steady']} MB**. "
            if mem.get("median_last_minute_steady") is not None
            else ". "
        )
        + f"The job: {r['job']['config']}, {r['job']['steps_during_soak']} steps during the soak.",
        *_soak_diagnostics(r),
        "",
        "| page | visits | p50 ms | p95 ms |",
        "|---|---|---|---|",
    ]
    for page, s in r.get("per_page", {}).items():
        lines.append(f"| {page} | {s['n']} | {s['p50_ms']} | {s['p95_ms']} |")
    for example in r.get("error_examples", []):
        lines.append(f"\nError on {example['page']}: `{example['error'][:200]}`")
    lines += _quick_note(r)
    lines.append("")
    return lines


def _soak_diagnostics(r: dict) -> list[str]:
    """The soak's server answer times and CPU by process group, when the result has them."""
    lines = []
    http = r.get("server_http_ms") or {}
    if http:
        lines += [
            "",
            f"The server's answers, sampled every 2 s: health check p50 {http['health']['p50_ms']} ms, p95 "
            f"{http['health']['p95_ms']} ms, max {http['max_health_ms']} ms; the app's HTML page p95 "
            f"{http['page']['p95_ms']} ms, max {http['max_page_ms']} ms.",
        ]
    cpu = (r.get("cpu_cores") or {}).get("steady") or {}
    if cpu.get("cores"):
        used = ", ".join(f"{group} {cores}" for group, cores in cpu["cores"].items())
        lines += [
            "",
            f"CPU used in the steady phase, in cores (this machine has {r['machine']['cores']}): {used}.",
        ]
    return lines


def play_section(r: dict) -> list[str]:
    """Play as the browser shows it (bench/results/play.json, `make bench-play`)."""
    fa, vrnn = r.get("fa") or {}, r.get("vrnn") or {}
    target = r.get("target_per_s", 5)
    paused = r.get("background_trainings") or {}
    lines = [
        "## Play in the browser: FA frames and VRNN rows per second shown",
        "",
        _machine_line(r["machine"]),
        "",
        r.get("method", "") + ".",
        "",
        "| page | shown per second | target | gap between changes p50 / p95 / max ms | notes |",
        "|---|---|---|---|---|",
    ]
    if fa:
        f = fa["frames"]
        redraws = ", ".join(f"{k} {v}" for k, v in (fa.get("redraws_per_s") or {}).items())
        met = "met" if fa["frames_per_s"] >= target else "not met"
        lines.append(
            f"| factor analysis (▶ Play) | **{fa['frames_per_s']} frames** | >= {target:g} ({met}) | "
            f"{f.get('gap_p50_ms', '–')} / {f.get('gap_p95_ms', '–')} / {f.get('gap_max_ms', '–')} | "
            f"redraws per second: {redraws}; camera moved by Play: {fa.get('camera_moved_by_play')} |"
        )
    if vrnn:
        runs = vrnn.get("runs") or [{}]
        met = "met" if vrnn["rows_per_s"] >= target else "not met"
        lines.append(
            f"| VRNN (▶ Play, 1 row per frame) | **{vrnn['rows_per_s']} rows** | >= {target:g} ({met}) | "
            f"{runs[0].get('gap_p50_ms', '–')} / {runs[0].get('gap_p95_ms', '–')} / "
            f"{runs[0].get('gap_max_ms', '–')} (first run) | runs: {[x.get('per_s') for x in runs]} |"
        )
    lines += [
        "",
        f"Background trainings found: {paused.get('found', 0)}, stopped (SIGSTOP) during the run: "
        f"{paused.get('stopped', 0)}. Other processes on the machine (other sessions' tests) are not "
        "controlled; the load average above says how busy it was.",
        "",
    ]
    if r.get("label"):
        lines[-1:-1] = [f"Label of this run: {r['label']}.", ""]
    return lines


def watch_section(r: dict) -> list[str]:
    """The Watch it learn page: frames per second while playing, in Chromium (bench_watch.py)."""
    b, srv, bg = r["browser"], r["server_frame_ms"], r.get("background_training") or {}
    interval = b["frame_interval"]
    paused = (
        "stopped (SIGSTOP) during the run"
        if bg.get("stopped_during_run")
        else ("running" if bg.get("processes") else "none on the machine")
    )
    lines = [
        "## Watch it learn page: frames per second while playing (browser)",
        "",
        _machine_line(r["machine"]),
        "",
        r["method"],
        "",
        f"Target: {r['target']}: **{'met' if r['met'] == 'yes' else 'not met'}**. Background trainings: "
        f"{paused}. {r.get('note', '')}.",
        "",
        "| in Chromium | value |",
        "|---|---|",
        f"| frames per second | **{b['frames_per_s']}** |",
        f"| steps per frame | {b['steps_per_frame']} |",
        f"| steps per second | {b['steps_per_s']} |",
        f"| frame interval p50 / p95 ms | {interval['p50_ms']} / {interval['p95_ms']} |",
        f"| frames recorded / seconds | {b['frames']} / {b['seconds_recorded']} |",
        "",
        "| one frame on the server (no browser) | p50 ms | p95 ms |",
        "|---|---|---|",
    ]
    names = {
        "steps": "waiting for the training thread's steps (they run in parallel with the rest)",
        "evaluation": "evaluation (ELBO, IWAE bound, terms, KL per dimension)",
        "figures": "chart data",
        "images": "images (manifold, reconstructions)",
        "total": "total",
    }
    for key, name in names.items():
        if key in srv:
            lines.append(f"| {name} | {srv[key]['p50_ms']} | {srv[key]['p95_ms']} |")
    if isinstance(srv.get("steps_per_frame"), dict) and srv.get("steps_per_s") is not None:
        lines += [
            "",
            f"Server side alone: {srv['steps_per_frame']['mean']} steps per frame (at least "
            f"{srv['steps_per_frame']['min']}), {srv['steps_per_s']} steps per second.",
        ]
    return [*lines, ""]


def gaps_section(r: dict) -> list[str]:
    """Approximation and amortization gaps of the shipped VAEs and CVAEs (bench/results/gaps.json,
    `make bench-gaps`)."""
    lines = [
        "## Inference gaps on MNIST test images: approximation and amortization",
        "",
        _machine_line(r["machine"]),
        "",
        *_quick_note(r),
        *([r["note"], ""] if r.get("note") else []),
        r["what"] + ". Approximation gap = log p(x) - ELBO(q\\*), amortization gap = ELBO(q\\*) - "
        "ELBO(q_phi), with q\\* the best diagonal Gaussian for each image (Cremer, Li & Duvenaud 2018, "
        "table 1); the last gap column is log p(x) - ELBO of the best full-covariance Gaussian.",
        "",
        "| model | L | likelihood | test images | log p(x) by | log p(x) | ELBO(q_phi) | inference gap "
        "| approximation gap | amortization gap | approximation gap, full-covariance q\\* | s / image |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(m: dict, key: str) -> str:
        if m.get(key + "_stderr") is None:
            return "–"
        median = f" (median {m[key + '_median']:.2f})" if m.get(key + "_median") is not None else ""
        return f"{m[key]:.2f} ± {m[key + '_stderr']:.2f}{median}"

    for name, m in r["models"].items():
        method = m["evidence_method"] + (" (lower bound)" if m["evidence_is_lower_bound"] else "")
        lines.append(
            f"| {name} | {m['latent_dim']} | {m.get('likelihood') or '–'} | {m.get('n', r['n'])} "
            f"| {method} "
            f"| {m['log_evidence']:.2f} | {m['elbo_amortized']:.2f} | {cell(m, 'inference_gap')} "
            f"| **{cell(m, 'approximation_gap')}** | **{cell(m, 'amortization_gap')}** "
            f"| {cell(m, 'approximation_gap_full')} | {m['seconds_per_image']:.2f} |"
        )
    paper = r.get("paper") or {}
    lines += [
        "",
        "Means over the images ± their standard errors (medians in brackets), nats per image. Where log p(x) "
        "is an IWAE estimate "
        "(L > 2) it is a lower bound, which pulls the approximation gap down (a q\\* fit short of its "
        "optimum pushes it up).",
        "",
    ]
    if paper.get("figures"):
        lines += [f"{paper['source']}: {paper['figures']}.", ""]
    elif paper:
        lines += [f"{paper['source']}: {paper['note']}.", ""]
    if paper.get("differences"):
        lines += [f"What differs: {paper['differences']}.", ""]
    return lines


#: the lecturer's timings of bench_class.py (bench_class.timed; the caption: the GMVAE cluster panel's)
CLASS_TIMINGS = (
    ("server_run_ms", "server time (request received to last script_finished sent)"),
    ("run_ms", "run as the page sees it (its drawing included)"),
    ("round_trip_ms", "gesture to the run's end"),
    ("send_delay_ms", "gesture to the rerun request"),
    ("server_ms", "panel's own caption"),
)


def class_section(r: dict) -> list[str]:
    """A class on one server: K visitors pressing Play over the websocket while the lecturer works in
    Chromium (bench/results/class.json, `make bench-class`)."""
    lec, mem, targets = r["lecturer"], r["memory"], r["targets"]
    k = r["visitors"]

    def cell(phase: str, kind: str, key: str) -> str:
        s = ((lec.get(phase) or {}).get(kind) or {}).get(key)
        return f"{s['p50_ms']} / {s['p95_ms']}" if s else "–"

    def verdict(name: str) -> str:
        t = targets.get(name) or {}
        return "**pass**" if t.get("pass") else "**fail**"

    def counts(states: dict | None) -> str:
        return ", ".join(f"{n} {state}" for state, n in (states or {}).items()) or "–"

    timing = r.get("lecturer_target_timing", "run_ms")
    ratios = r.get(f"lecturer_ratio_p50_{timing}") or {}
    in_page = r.get("lecturer_ratio_p50_run_ms") or {}
    measure = "server ms" if timing == "server_run_ms" else "run ms"
    lines = [
        f"## A class: {k} visitors pressing Play (Watch and FA) while the lecturer works",
        "",
        _machine_line(r["machine"]),
        "",
        *_quick_note(r),
        r["what"].replace("``", "`"),
        "",
        "| target | measured | |",
        "|---|---|---|",
        f"| lecturer within 1.5x of K = 0 (p50 {measure}) | picks {_fmt(ratios.get('picks'))}x, moves "
        f"{_fmt(ratios.get('moves'))}x | {verdict('lecturer_within_1.5x_of_k0')} |",
        f"| slot holders on Watch >= 50 steps/s | {_fmt(r['holders_steps_per_s'].get('watch'), 1)} "
        f"| {verdict('watch_holders_at_least_50_steps_s')} |",
        f"| 0 errors | {r['errors']} | {verdict('zero_errors')} |",
        f"| memory {mem.get('target_read_after_s'):g} s after the visitors leave within 5 % of its baseline "
        f"| {_fmt(mem.get('after_mb'), 1)} MB vs {_fmt(mem.get('baseline_mb'), 1)} MB "
        f"({_fmt(mem.get('after_over_baseline'), 3)}x) | {verdict('memory_within_5pct_of_baseline')} |",
        "",
        "| the lecturer (p50 / p95 ms) | K = 0 | K = " + str(k) + " |",
        "|---|---|---|",
    ]
    for kind, name in (("picks", "GMVAE cluster pick"), ("moves", "/vae slider move")):
        for key, what in CLASS_TIMINGS:
            if (lec["k0"].get(kind) or {}).get(key):
                lines.append(f"| {name}: {what} | {cell('k0', kind, key)} | {cell('load', kind, key)} |")
    if "k0_after" in lec:

        def p50(phase: str, kind: str) -> str:
            return _fmt(((lec[phase].get(kind) or {}).get(timing) or {}).get("p50_ms"))

        quiet = "; ".join(f"{k} {p50('k0_before', k)} / {p50('k0_after', k)}" for k in ("picks", "moves"))
        lines += [
            "",
            f"K = 0 is the quiet rounds before and after the visitors together (p50 {measure}, before / "
            f"after: {quiet}). In the page (its own drawing included) the ratios are picks "
            f"{_fmt(in_page.get('picks'))}x, moves {_fmt(in_page.get('moves'))}x. Server trace: "
            f"{r.get('server_trace', '–')}.",
        ]
    lines += [
        "",
        f"Slot holders' steps/s: Watch {_fmt(r['holders_steps_per_s'].get('watch'), 1)}, factor analysis "
        f"{_fmt(r['holders_steps_per_s'].get('factor-analysis'), 1)}. Visitors' states while the lecturer "
        f"measured: {counts(r.get('visitor_states_while_lecturer_measured'))}; at the end: "
        f"{counts(r.get('visitor_states_at_end'))}.",
        "",
        "| visitor | page | at the end | places in line told | s running / waiting / idle | steps "
        "| steps/s running |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in r["visitors_report"]:
        end = v["state_at_end"] or "–"
        if end == "waiting" and v.get("place_at_end"):
            end += f" ({v['place_at_end']} in line)"
        s = v["seconds"]
        places = ", ".join(str(p) for p in v["places_seen"]) or "–"
        lines.append(
            f"| {v['visitor']} | {v['page']} | {end} | {places} | {s['running']:g} / {s['waiting']:g} / "
            f"{s['idle']:g} | {v['steps']} | {_fmt(v['steps_per_s_running'], 1)} |"
        )
    if r.get("waiting_message_example"):
        lines += ["", f'What a waiting visitor reads: "{r["waiting_message_example"]}"']
    phases = (r.get("server") or {}).get("phases") or {}
    if phases:
        lines += [
            "",
            "| server process, per phase | seconds | CPU cores mean / peak | RSS MB median / peak |",
            "|---|---|---|---|",
        ]
        for name, p in phases.items():
            lines.append(
                f"| {name} | {p['seconds']} | {p['cpu_cores_mean']} / {p['cpu_cores_peak']} "
                f"| {p['rss_mb_median']} / {p['rss_mb_peak']} |"
            )
    after = mem.get("after_leave_mb") or {}
    if after:
        lines += [
            "",
            "Server memory after the visitors left: "
            + ", ".join(f"{t} {v} MB" for t, v in after.items())
            + f" (baseline {_fmt(mem.get('baseline_mb'), 1)} MB, peak under load "
            f"{_fmt(mem.get('peak_under_load_mb'), 1)} MB).",
        ]
    for example in r.get("error_examples", [])[:5]:
        lines.append(f"\nError: `{example[:200]}`")
    if r.get("note"):
        lines += ["", r["note"]]
    return [*lines, ""]


def _probe_detail(number: int, k: str, p: dict) -> str:
    """One probe's own numbers at one K, in words (bench_class_probes.py's ``probe``)."""
    c, s = p.get("counts") or {}, p.get("seconds") or {}

    def sec(key: str, what: str = "p50") -> str:
        v = (s.get(key) or {}).get("p50_s" if what == "p50" else "max_s")
        return "–" if v is None else f"{_fmt(v)} s"

    def place() -> str:
        most = p.get("places_told_max")
        told = p.get("visitors_told_a_place", 0)
        return f"{told} visitor(s) told a place in line" + (f" (up to {most})" if most else "")

    if number == 1:
        unanswered = c.get("resets_unanswered_at_the_end", 0) + c.get("resets_unanswered_in_60s", 0)
        resets = (
            f"{c.get('resets', 0)} resets: {c.get('resets_done', 0)} done (p50 {sec('reset')}), "
            f"{c.get('resets_refused', 0)} refused, {c.get('resets_busy', 0)} busy, {unanswered} unanswered"
        )
        return (
            f"K = {k}: {c.get('loads', 0)} loads of the heavy link: {c.get('loads_built', 0)} built, "
            f'{c.get("loads_refused", 0)} refused ("the server is full"), '
            f"{c.get('loads_in_line_when_left', 0)} in line and {c.get('loads_unanswered_when_left', 0)} not "
            f"answered yet when reloaded (first answer p50 {sec('load_answered')}); {resets}; {place()}."
        )
    if number == 2:
        return (
            f"K = {k}: {c.get('l2', 0)} visitor(s) on L = 2, {c.get('l20', 0)} on L = 20; "
            f"{c.get('image_steps', 0)} test-image steps, {c.get('gap_split_presses', 0)} gap-split presses; "
            f"{c.get('results_shown', 0)} results shown (change to result p50 {sec('change_to_result')}, max "
            f'{sec("change_to_result", "max")}); {place()}; {c.get("busy_warnings", 0)} "not computed now".'
        )
    if number == 3:
        parts = []
        for kind, name in (("vrnn", "VRNN GIF"), ("watch_map", "Watch map GIF")):
            if c.get(f"{kind}_requests"):
                parts.append(
                    f"{name}: {c[f'{kind}_requests']} requests, the first answer p50 {sec(f'{kind}_first')}, "
                    f"again p50 {sec(f'{kind}_again')} (max {sec(f'{kind}_again', 'max')}); "
                    f"{c.get(f'{kind}_requests_1s_or_more', 0)} took 1 s or more (built, or waited in line), "
                    f"{c.get(f'{kind}_requests_failed', 0)} failed"
                )
        return f"K = {k}: " + ("; ".join(parts) or "no request answered") + "."
    if number == 4:
        h, presses = p.get("holder_steps_per_s") or {}, c.get("presses", 0)
        return (
            f"K = {k}: the slot holder (factor analysis) {_fmt(h.get('alone'), 1)} steps/s alone, "
            f'{_fmt(h.get("under_clicks"), 1)} under {_fmt(p.get("presses_per_s"), 1)} "Next row" '
            f"presses/s ({_fmt(h.get('while_lecturer_measured'), 1)} while the lecturer measured; issue: "
            f"60 -> 3.3); the clickers' runs that finished: {c.get('runs_finished', 0)} of {presses} presses."
        )
    if number == 5:
        two = p.get("seconds_a_browser_showed_two_places", 0)
        firsts = "; ".join(
            f"{b['browser']}: {', '.join(_fmt(x) for x in b['first_places'])}"
            for b in p.get("per_browser", [])
        )
        return (
            f"K = {k}: {p.get('browsers')} browsers, {p.get('tabs')} tabs ({p.get('refused_tabs', 0)} "
            f"refused); {p.get('browsers_told_a_place', 0)} browsers told a place, "
            f"{p.get('browsers_one_first_place', 0)} of them the same first place in all their tabs; "
            f"seconds a browser's waiting tabs showed two places: {two}; highest place told "
            f"{_fmt(p.get('places_told_max'))} (issue: one client's three tabs took 2, 3 and 4). First place "
            f"per tab, by browser: {firsts}."
        )
    return ""


def class_probes_section(r: dict) -> list[str]:
    """Issue 34's hostile-class probes at K = 6 and 16 (bench/results/class_probes.json,
    `make bench-class-probes`)."""
    timing = r.get("lecturer_target_timing", "server_run_ms")
    ks = ", ".join(str(k) for k in r.get("visitors", []))
    lines = [
        f"## A hostile class: issue 34's five probes with K = {ks} visitors while the lecturer works",
        "",
        _machine_line(r["machine"]),
        "",
        *_quick_note(r),
        r["what"].replace("``", "`"),
        "",
        f"Server memory budget (`AEVB_SERVER_MEMORY_MB`): {r.get('budget_mb')} MB; compute slots: "
        f"{r.get('slots')}. Lecturer gestures per round: {r['gestures_per_round']['picks']} picks, "
        f"{r['gestures_per_round']['steps']} test-image changes; timings are p50 server ms (request received "
        f"to the last script_finished sent), K = 0 both quiet rounds. All probes pass: "
        f"{'**yes**' if r.get('all_pass') else '**no**'}.",
        "",
    ]
    for number, p in sorted((r.get("probes") or {}).items(), key=lambda item: int(item[0])):

        def p50(summary: dict | None) -> str:
            return _fmt(((summary or {}).get(timing) or {}).get("p50_ms"), 1)

        def verdict(t: dict) -> str:
            return "pass" if t.get("pass") else "**fail**"

        k0 = p.get("lecturer_k0") or {}
        base = next(iter(p["k"].values()), {}).get("memory", {}).get("baseline_mb") if p.get("k") else None
        earlier = f" (measured {p['measured']}, an earlier run)" if p.get("measured") else ""
        lines += [
            f"### {number}. {p['title']}{earlier}",
            "",
            "| K | GMVAE pick, ms (x K = 0) | test-image change, ms (x K = 0) | server CPU cores, mean "
            "| RSS peak above baseline, MB (budget) | RSS a minute after (x baseline) | RSS later | errors |",
            "|---|---|---|---|---|---|---|---|",
            f"| 0 | {p50(k0.get('picks'))} | {p50(k0.get('steps'))} | – | baseline {_fmt(base, 1)} MB "
            f"| – | – | {p.get('quiet_errors', 0)} |",
        ]
        phases = (p.get("server") or {}).get("phases") or {}
        for k, row in p.get("k", {}).items():
            t, m, lec = row["targets"], row["memory"], row["lecturer"]
            ratios = row.get("lecturer_ratio_p50_server_run_ms") or {}
            lecturer_ok = verdict(t["lecturer_within_1.5x_of_k0"])
            cpu = (phases.get(f"k{k}") or {}).get("cpu_cores_mean")
            lines.append(
                f"| {k} | {p50(lec.get('picks'))} ({_fmt(ratios.get('picks'))}x) | {p50(lec.get('steps'))} "
                f"({_fmt(ratios.get('steps'))}x) {lecturer_ok} | {_fmt(cpu)} | "
                f"{_fmt(m.get('peak_above_baseline_mb'), 1)} ({m.get('budget_mb')}) "
                f"{verdict(t['memory_within_budget'])} | {_fmt(m.get('after_mb'), 1)} at "
                f"{_fmt(m.get('after_read_at_s'), 0)} s ({_fmt(m.get('after_over_baseline'), 3)}x) "
                f"{verdict(t['memory_within_10pct_after_60s'])} | {_fmt(m.get('later_mb'), 1)} at "
                f"{_fmt(m.get('later_read_at_s'), 0)} s ({_fmt(m.get('later_over_baseline'), 3)}x) "
                f"| {row['errors']} {verdict(t['zero_errors'])} |"
            )
        lines.append("")
        for k, row in p.get("k", {}).items():
            detail = _probe_detail(int(number), k, row.get("probe") or {})
            if detail:
                lines += [detail, ""]
            notes = (row.get("probe") or {}).get("notes") or []
            if notes:
                lines += [f'What a visitor read: "{notes[0][:300]}"', ""]
            for example in row.get("error_examples", [])[:3]:
                lines += [f"Error (K = {k}): `{example[:200]}`", ""]
        for example in p.get("quiet_error_examples", [])[:3]:
            lines += [f"Error (K = 0 or the warm-up): `{example[:200]}`", ""]
    if r.get("note"):
        lines += [r["note"], ""]
    return lines


def publish_section(r: dict) -> list[str]:
    """The published static site (issue 35; bench/results/publish.json, `make bench-publish`)."""
    t = r["targets"]
    mb = r["site_bytes"] / 1e6
    lines = [
        "## Published site: the models in the browser, no server (issue 35)",
        "",
        _machine_line(r["machine"]),
        "",
        r["what"] + ".",
        "",
        "| what | measured | target | pass |",
        "|---|---|---|---|",
        f"| the site's size | {mb:.1f} MB | <= {t['site_mb']} MB | {'yes' if mb <= t['site_mb'] else 'no'} |",
    ]
    for name, m in r["first_picture_ms"].items():
        ok = m["max"] <= 1000 * t["first_picture_s"]
        lines.append(
            f"| first picture after navigation, {name} | median {m['median']:.0f} ms, max {m['max']:.0f} ms "
            f"| <= {t['first_picture_s']} s | {'yes' if ok else 'no'} |"
        )
    for name, m in r["pad_frames_per_s"].items():
        ok = m["observed"] >= t["pad_frames_per_s"]
        lines.append(
            f"| pad drag, {name} | {m['observed']:.1f} new pictures/s observed ({m['moves']} moves); "
            f"{m['frame_ms']:.2f} ms to decode and draw one | >= {t['pad_frames_per_s']}/s "
            f"| {'yes' if ok else 'no'} |"
        )
    v = r["vrnn_row_ms"]
    lines.append(
        f"| one VRNN row | median {v['median']:.1f} ms, max {v['max']:.1f} ms ({v['n']} rows) "
        f"| <= {t['vrnn_row_ms']} ms | {'yes' if v['max'] <= t['vrnn_row_ms'] else 'no'} |"
    )
    return [
        *lines,
        "",
        "The observed drag rate is bounded by how fast Playwright sends pointer moves; the decode-and-draw "
        "time per frame is the page's own cost. Measured beside the GMVAE training runs (the load at the "
        "start is given above).",
        "",
    ]


SECTIONS = {
    "fa": fa_section,
    "latent": latent_section,
    "gmvae": gmvae_section,
    "gmvae_seeds": gmvae_seeds_section,
    "vrnn": vrnn_section,
    "training_speed": training_speed_section,
    "app": app_section,
    "training_load": training_load_section,
    "soak": soak_section,
    "play": play_section,
    "watch": watch_section,
    "gaps": gaps_section,
    "class": class_section,
    "class_probes": class_probes_section,
    "publish": publish_section,
}


README_START, README_END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    try:
        return json.loads(path.read_text()) if path.exists() else None
    except (OSError, ValueError):
        return None


def headline() -> list[str]:
    """The headline rows of BENCHMARKS.md as a short list (for the README); only what has been measured."""
    rows = []
    q = _load("quality")
    if q and q.get("mode") == "full":
        parts = []
        for name, m in sorted(q.get("models", {}).items()):
            if not m.get("target"):
                continue
            if m.get("nll_estimate") is not None:
                value = f"IWAE-{m.get('iwae_k')} NLL {m['nll_estimate']:.2f}"
            elif m.get("cluster_accuracy") is not None:
                value = f"cluster accuracy {m['cluster_accuracy']:.4f}"
            else:
                value = f"test ELBO {m['elbo']:.2f}" + (
                    f", KL {m['kl']:.2f}" if m["family"] == "vrnn" else ""
                )
            parts.append(
                f"`{name}` {value} (target {m['target']}: {'met' if m['met'] == 'yes' else 'not met'})"
            )
        if parts:
            rows.append("Shipped models on the MNIST test set: " + "; ".join(parts) + ".")
    t = _load("training_speed")
    if t and t.get("mode") == "full":
        vae = t.get("throughput", {}).get("vae", {}).get("variants", {})
        ref, ours = vae.get("reference", {}), vae.get("ours", {})
        if "images_per_s" in ref and "images_per_s" in ours:
            best = max(
                ((n, v) for n, v in vae.items() if "images_per_s" in v),
                key=lambda item: item[1]["images_per_s"],
            )
            rows.append(
                f"VAE training throughput: {ours['images_per_s']:.0f} images/s with our trainer (batch 100) "
                f"against {ref['images_per_s']:.0f} for a reference-style loop; fastest variant "
                f'"{best[0]}" {best[1]["images_per_s"]:.0f} images/s.'
            )
        ttt = t.get("time_to_elbo") or {}
        if ttt.get("threshold_ratio"):
            rows.append(
                "Time to the reference's final VAE test ELBO 1788.41, reference-style seconds / ours: "
                f"x{ttt['threshold_ratio']} (above 1: ours is faster)."
            )
        elif ttt:
            m = ttt.get("matched") or {}
            rows.append(
                f"Time to the reference's final VAE test ELBO 1788.41: not reached by both runs within the "
                f"{ttt['cap_s']:.0f} s cap"
                + (
                    f"; to the reference-style loop's best ({m['test_elbo']}), x{m['ratio']}."
                    if m.get("ratio")
                    else "."
                )
            )
    a = _load("app")
    if a and a.get("mode") == "full":
        conc = {r["sessions"]: r for r in a.get("concurrency", [])}
        text = (
            f"App: cold start to the home page {a['cold_start']['p50_first_page_s']} s, cold deep link to "
            f"/vae "
            f"{a['cold_deep_link']['p50_first_figure_s']} s to its first figure (p50)"
        )
        for n in sorted(conc):
            if conc[n].get("p50_ms") is not None:
                text += (
                    f"; latent move with {n} session(s) {conc[n]['p50_ms']:.0f} / {conc[n]['p95_ms']:.0f} ms"
                )
        rows.append(text + " (p50 / p95, key press to new image).")
        drags = a.get("drag") or []
        if drags and a.get("trivial_fragment"):
            rates = [d["images_per_s"] for d in drags]
            key_p95, floor_p95 = a["latent_move"]["p95_ms"], a["trivial_fragment"]["p95_ms"]
            rows.append(
                f"Latent pad: {min(rates)} to {max(rates)} new decoded images per second during a continuous "
                f"drag; one key press to the new image {key_p95:.0f} ms p95 against {floor_p95:.0f} ms for a "
                "trivial Streamlit fragment."
            )
    play = _load("play")
    if play and play.get("fa") and play.get("vrnn") and not play.get("quick"):
        rows.append(
            f"Play in the browser: factor analysis {play['fa']['frames_per_s']} frames per second shown, "
            f"VRNN {play['vrnn']['rows_per_s']} rows per second (target >= {play.get('target_per_s', 5):g})."
        )
    lat = _load("latent")
    if lat:
        totals = [m["total"]["p50_ms"] for m in lat.get("models", {}).values()]
        if totals:
            rows.append(
                f"One latent change on the VAE/CVAE pages: {min(totals):.0f} to {max(totals):.0f} ms of "
                "server time (p50)."
            )
    return [f"- {row}" for row in rows] or ["- Not measured yet: run `make bench`."]


def update_readme() -> None:
    """Replace the README's block between the benchmark markers with :func:`headline` (when they exist)."""
    path = ROOT / "README.md"
    text = path.read_text()
    if README_START not in text or README_END not in text:
        return
    before, rest = text.split(README_START, 1)
    _, after = rest.split(README_END, 1)
    block = "\n".join([README_START, *headline(), README_END])
    path.write_text(before + block + after)
    print("updated the benchmarks block of README.md")


def header() -> list[str]:
    """Title, how the file is made, and the machine of the newest result."""
    targets = ", ".join(f"`make bench-{name.replace('_', '-')}`" for name in ("quality", *SECTIONS))
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `make bench` (sections by {targets}) from `bench/results/*.json`; nothing here is",
        "typed by hand. Each section names the machine, date, torch version and device it was measured on.",
        "",
    ]
    newest = sorted(RESULTS.glob("*.json"), key=lambda p: p.stat().st_mtime)
    for path in reversed(newest):
        try:
            m = json.loads(path.read_text()).get("machine")
        except (OSError, ValueError, AttributeError):
            continue
        if m:
            lines += [f"Latest run: {_machine_line(m)}.", ""]
            break
    return lines


def main() -> None:
    out = header()
    out += quality_section()
    for name, render in SECTIONS.items():
        path = RESULTS / f"{name}.json"
        if path.exists():
            out += render(json.loads(path.read_text()))
    out += gpu_section()
    (ROOT / "BENCHMARKS.md").write_text("\n".join(out))
    print("wrote BENCHMARKS.md")
    update_readme()


if __name__ == "__main__":
    main()
