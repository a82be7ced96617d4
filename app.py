"""AEVB Explorer: the Streamlit entry point (router and shared sidebar).

Run with ``make run`` (or ``streamlit run app.py``). Pages live in ``views/`` (a folder named ``pages/``
would switch on Streamlit's older multipage mode, whose first-visit deep links show a spurious "Page not
found" dialog); all computation lives in ``explorer_core`` (no Streamlit there).
"""

import gc
import sys

import streamlit as st

from explorer_core.device import DeviceError, device_info

st.set_page_config(page_title="AEVB Explorer", page_icon="🧭", layout="wide")

PAGES = [
    st.Page("views/home.py", title="Home", icon="🏠", default=True),
    st.Page("views/factor_analysis.py", title="Factor analysis", icon="📐", url_path="factor-analysis"),
    st.Page("views/vae.py", title="VAE latent space", icon="🌀", url_path="vae"),
    st.Page("views/watch.py", title="Watch it learn", icon="👀", url_path="watch"),
    st.Page("views/cvae.py", title="Conditional VAE", icon="🏷️", url_path="cvae"),
    st.Page("views/gmvae.py", title="Gaussian mixture VAE", icon="🧩", url_path="gmvae"),
    st.Page("views/vrnn.py", title="Variational RNN", icon="📜", url_path="vrnn"),
    st.Page("views/training.py", title="Training", icon="🏋️", url_path="training"),
]

page = st.navigation(PAGES)

with st.sidebar:
    try:
        st.caption(f"Device: {device_info().label()}")
    except DeviceError as err:
        st.error(f"Device problem: {err}")

page.run()

# Streamlit runs gc.collect(2) after every run, fragment runs included (runner.postScriptGC). With torch,
# plotly and scikit-learn loaded that full collection walks ~300,000 objects: 0.3-0.7 s on a 2-core machine,
# after every frame of Play and every drag step. Moving what is alive after an import (modules, classes,
# cached models) to the permanent generation makes it ~1 ms; objects made by later runs are still collected.
if len(sys.modules) != getattr(gc, "_aevb_frozen_modules", 0):
    gc.collect()
    gc.freeze()
    gc._aevb_frozen_modules = len(sys.modules)
