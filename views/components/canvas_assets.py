"""The files of a canvas component (Streamlit components v2, inline: no build step, nothing fetched at run
time): ``views/components/<folder>/{index.html,style.css,main.js}``, with ``canvas.js`` (what every canvas
component's script shares: ``num``, ``fitCanvas``, ``fitToData``, ``mountState``, the PNG button) put
before its ``main.js``."""

from __future__ import annotations

from pathlib import Path

from explorer_core.export import export_name

HERE = Path(__file__).parent
SHARED_JS = HERE / "canvas.js"


def default_png_name(key: str) -> str:
    """The file name a canvas's PNG button saves under when its page names none: ``aevb-<key>.png``
    (``fa_curves`` -> ``aevb-fa-curves.png``)."""
    return export_name(*key.split("_", 1), "png") if "_" in key else export_name(key, "canvas", "png")


def component_files(folder: str) -> dict[str, str]:
    """``html``, ``css`` and ``js`` of the component in ``views/components/<folder>/`` (keyword arguments of
    ``st.components.v2.component``); ``js`` is ``canvas.js`` followed by the component's ``main.js``."""
    assets = HERE / folder

    def read(path: Path) -> str:
        return path.read_text(encoding="utf-8")

    return {
        "html": read(assets / "index.html"),
        "css": read(assets / "style.css"),
        "js": read(SHARED_JS) + "\n" + read(assets / "main.js"),
    }
