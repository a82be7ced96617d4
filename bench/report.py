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


#: The anchors of ../shared/REFERENCE.md each shipped model is measured against.
ANCHORS = {
    "vae-cb-l20": ("test ELBO >= 1788.41 (reference notebook, final epoch)", "elbo", 1788.41, "ge"),
    "cvae-cb-l20": ("test ELBO >= 1820.10 (reference notebook, final epoch)", "elbo", 1820.10, "ge"),
    "vae-bernoulli-l20": (
        "IWAE NLL <= 90.0 (pythae VAE 89.78; Burda et al. 86.76)",
        "nll_estimate",
        90.0,
        "le",
    ),
}


def quality_section() -> list[str]:
    """The shipped models' test metrics, as recorded by the trainer's final `evaluate` (pretrained/*.json)."""
    from explorer_core.artifacts import PRETRAINED_DIR, list_models

    lines = [
        "## Shipped models on the MNIST test set",
        "",
        "From each model's JSON in `pretrained/`, written by `python -m explorer_core train`, whose final",
        "step is the same code as `python -m explorer_core evaluate`; `tests/unit/test_pretrained.py`",
        "re-evaluates them.",
        "Nats per image, means over the 10,000 test images, eval mode, one reparameterised sample per image",
        "for the ELBO; CB densities are not comparable with binarized nats.",
        "",
        "| model | data | test ELBO | reconstruction | KL | active units | IWAE NLL (k) | anchor | met | "
        "epochs (best) | train time |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for meta in list_models(PRETRAINED_DIR):
        t, tr = meta.get("test_metrics", {}), meta.get("training", {})
        if not t:
            continue
        nll = f"{t['nll_estimate']:.2f} ({t['iwae_k']})" if "nll_estimate" in t else "–"
        anchor, met = "best validation ELBO", "–"
        if meta["name"] in ANCHORS:
            anchor, key, bound, sense = ANCHORS[meta["name"]]
            value = t.get(key)
            met = (
                "yes" if value is not None and (value >= bound if sense == "ge" else value <= bound) else "no"
            )
        lines.append(
            f"| {meta['name']} | {meta.get('preprocessing')} | {t['elbo']:.2f} | {t['reconstruction']:.2f} | "
            f"{t['kl']:.2f} | {t['active_units']} | {nll} | {anchor} | {met} | "
            f"{tr.get('epochs_run')} ({tr.get('best_epoch')}) | {tr.get('wall_seconds', 0) / 60:.0f} min |"
        )
    return [*lines, ""]


SECTIONS = {"fa": fa_section, "latent": latent_section}


def main() -> None:
    out = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (sections by `make bench-fa`, `make bench-latent`) from",
        "`bench/results/*.json`; nothing here is typed by hand.",
        "",
    ]
    out += quality_section()
    for name, render in SECTIONS.items():
        path = RESULTS / f"{name}.json"
        if path.exists():
            out += render(json.loads(path.read_text()))
    (ROOT / "BENCHMARKS.md").write_text("\n".join(out))
    print("wrote BENCHMARKS.md")


if __name__ == "__main__":
    main()
