"""The floor of a Streamlit interaction, for ``bench_app.py``: a fragment with one slider and one image.

A key press on the slider reruns the fragment, which sends a new 224 x 224 PNG (a 28 x 28 random image
enlarged 8 times), as the latent pages' decoded image used to be sent. Run by the benchmark as its own app.
"""

import numpy as np
import streamlit as st

st.set_page_config(page_title="fragment probe", layout="wide")


@st.fragment
def panel() -> None:
    k = st.slider("k", 0, 1000, key="k")
    image = np.random.default_rng(k).random((28, 28))
    st.image(np.kron(image, np.ones((8, 8))), caption=f"k = {k}", output_format="PNG", clamp=True)


panel()
