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


SECTIONS = {"fa": fa_section, "latent": latent_section}


def main() -> None:
    out = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (sections by `make bench-fa`, `make bench-latent`) from",
        "`bench/results/*.json`; nothing here is typed by hand.",
        "",
    ]
    for name, render in SECTIONS.items():
        path = RESULTS / f"{name}.json"
        if path.exists():
            out += render(json.loads(path.read_text()))
    (ROOT / "BENCHMARKS.md").write_text("\n".join(out))
    print("wrote BENCHMARKS.md")


if __name__ == "__main__":
    main()
