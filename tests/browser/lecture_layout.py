"""What must be on the first screen of each live page in lecture mode, and how to measure it (used by
``test_lecture_fold.py`` and ``docs/take_lecture_screenshots.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from tests.browser.test_browser import open_page, wait_idle


@dataclass(frozen=True)
class LecturePage:
    """A live page: its name (file names), URL path with its query, its title (in the ``h1``), the selector of
    its live picture, and the selectors of the controls a lecturer uses while it plays."""

    name: str
    path: str
    title: str
    picture: str
    controls: tuple[str, ...]


LECTURE_PAGES: tuple[LecturePage, ...] = (
    LecturePage(
        "fa",
        "/factor-analysis",
        "Factor analysis",
        ".st-key-fa_scatter canvas",
        (".st-key-fa_play button", ".st-key-fa_e button", ".st-key-fa_m button", ".st-key-fa_joint button"),
    ),
    LecturePage("vae", "/vae?model=vae-cb-l2", "VAE", ".st-key-vae_pad canvas.canvas", ()),
    LecturePage(
        "watch",
        "/watch",
        "Watch it learn",
        ".st-key-watch_pad canvas.canvas, .st-key-watch_map canvas",  # paused: the pad; playing: its picture
        (".st-key-watch_play button", ".st-key-watch_e button", ".st-key-watch_m button"),
    ),
    LecturePage("cvae", "/cvae", "Conditional VAE", ".st-key-cvae_pad canvas.canvas", ()),
    LecturePage(
        "gmvae", "/gmvae", "Gaussian mixture", ".st-key-gmvae_samples img", (".st-key-gmvae_cluster",)
    ),
    LecturePage(
        "vrnn",
        "/vrnn",
        "Variational RNN",
        ".st-key-vrnn_grid img",
        (".st-key-vrnn_play button", ".st-key-vrnn_next button"),
    ),
)


#: the main live picture(s) of each page, whole on a projector's first screen at any scale (the first one at
#: 150 %, all at 100 and 125 %); on a phone the first must start on the first screen
MAIN_PICTURES: dict[str, tuple[str, ...]] = {
    "fa": (".st-key-fa_scatter canvas", ".st-key-fa_curves canvas"),
    "vae": (".st-key-vae_pad canvas.canvas",),
    "watch": (".st-key-watch_pad canvas.canvas, .st-key-watch_map canvas",),
    "cvae": (".st-key-cvae_pad canvas.canvas",),
    "gmvae": (".st-key-gmvae_pad canvas.canvas",),
    "vrnn": (".st-key-vrnn_grid img",),
}


def open_on_phone(page, base_url: str, spec: LecturePage) -> str:
    """Open ``spec``'s page (normal mode) and wait until its main picture is drawn; returns its selector."""
    selector = MAIN_PICTURES[spec.name][0]
    open_page(page, f"{base_url}{spec.path}", spec.title)
    page.locator(selector).first.wait_for(timeout=90_000)
    wait_idle(page)
    return selector


def open_in_lecture_mode(page, base_url: str, spec: LecturePage, scale: int = 100) -> None:
    """Open ``spec``'s page in lecture mode at ``scale`` % and wait until its picture is drawn."""
    sep = "&" if "?" in spec.path else "?"
    query = "lecture=1" + (f"&scale={scale}" if scale != 100 else "")
    open_page(page, f"{base_url}{spec.path}{sep}{query}", spec.title)
    page.locator(spec.picture).first.wait_for(timeout=90_000)
    wait_idle(page)


def bottoms(page, spec: LecturePage) -> dict[str, float | None]:
    """The bottom edge (CSS pixels from the top of the window, page not scrolled) of the picture, of each main
    picture (:data:`MAIN_PICTURES`: GMVAE's pad as well as its samples) and of each control; ``None`` for one
    that is not on the page."""
    found: dict[str, float | None] = {}
    for selector in dict.fromkeys((spec.picture, *MAIN_PICTURES[spec.name], *spec.controls)):
        locator = page.locator(selector).first
        box = locator.bounding_box() if locator.count() else None
        found[selector] = None if box is None else box["y"] + box["height"]
    return found
