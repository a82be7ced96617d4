"""Home: what AEVB is, and a card per explorer (a picture drawn from the shipped models, a click opens it)."""

from pathlib import Path

import streamlit as st

from explorer_core.cards import CARDS_DIR, CardUnavailableError, card_png
from explorer_core.device import DeviceError, device_info
from views.pages import PAGES

ROOT = Path(__file__).resolve().parents[1]

st.title("AEVB Explorer")
st.markdown(
    """
**Auto-Encoding Variational Bayes** (AEVB; Kingma & Welling, 2014) fits a latent variable model
p<sub>θ</sub>(x, z) by maximising the **ELBO**, a lower bound on the evidence log p<sub>θ</sub>(x), with
an **amortized posterior** q<sub>φ</sub>(z|x) and **reparameterised samples** z = μ + σ·ε.

Seen through EM (the view of the tutorial *Training Latent Variable Models with AEVB*, Yang 2022):

* an approximate **E-step** updates the inference parameters φ: it *tightens* the bound, closing the gap
  KL(q(z|x) ‖ p(z|x)) while the evidence stays where it is;
* an approximate **M-step** updates the generative parameters θ: it *raises* the bound, usually lifting
  the evidence with it; the true posterior moves, so the gap can narrow or widen (the FA page measures it);
* plain AEVB does both at once, one minibatch gradient step at a time.
""",
    unsafe_allow_html=True,
)


# (page file, card picture, link label, icon, what it shows), from each page's facts (views/pages.py: the
# pages with a summary); the pictures are drawn from the shipped models by `python -m explorer_core.cards`
# (pretrained/cards/*.png), or computed once per process when missing
EXPLORERS = [
    (page.file, page.card_picture, page.card_label or page.title, page.icon, page.summary)
    for page in PAGES.values()
    if page.summary
]
CARDS_PER_ROW = 3


@st.cache_data(show_spinner=False, max_entries=16)
def card_picture(page: str, stamp: float) -> bytes | None:
    """The card's PNG: the file written by ``python -m explorer_core.cards``, else drawn now (once per
    process and file version ``stamp``); ``None`` when a model it needs is missing."""
    path = CARDS_DIR / f"{page}.png"
    if path.exists():
        return path.read_bytes()
    try:
        return card_png(page)
    except (CardUnavailableError, OSError, ValueError, RuntimeError):
        return None


def explorers() -> list[tuple[str, str, str, str, str]]:
    """The pages with a card: those whose file exists (a page being added appears once it is there)."""
    return [e for e in EXPLORERS if (ROOT / e[0]).exists()]


st.subheader("What there is to explore")
shown = explorers()
for start in range(0, len(shown), CARDS_PER_ROW):
    columns = st.columns(CARDS_PER_ROW)
    row = shown[start : start + CARDS_PER_ROW]
    for column, (path, page, label, icon, blurb) in zip(columns[: len(row)], row, strict=True):
        card = column.container(border=True, key=f"home_card_{page}")
        file = CARDS_DIR / f"{page}.png"
        picture = card_picture(page, file.stat().st_mtime if file.exists() else 0.0)
        if picture is not None:
            card.image(picture, width="stretch", output_format="PNG")  # crisp: no JPEG re-encoding
        card.page_link(path, label=label, icon=icon)
        card.caption(blurb)

try:
    st.caption(f"Computing on {device_info().label()}.")
except DeviceError as err:
    st.error(f"Device problem: {err}")
