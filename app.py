"""AEVB Explorer: the Streamlit entry point (router and shared sidebar).

Run with ``make run`` (or ``streamlit run app.py``). Pages live in ``views/`` (a folder named ``pages/``
would switch on Streamlit's older multipage mode, whose first-visit deep links show a spurious "Page not
found" dialog); all computation lives in ``explorer_core`` (no Streamlit there).
"""

import gc
import sys

import streamlit as st

from explorer_core.device import DeviceError, device_info
from explorer_core.families import FAMILIES
from views.components import lecture

# The script thread hands each element to the event-loop thread (call_soon_threadsafe), which sends it:
# every hand-over waits for the GIL, up to the switch interval (5 ms by default), a dozen times per move.
sys.setswitchinterval(0.001)

st.set_page_config(page_title="AEVB Explorer", page_icon="🧭", layout="wide")


def family_page(name: str) -> st.Page:
    """The explorer page of a model family, as its record in ``explorer_core.families`` describes it."""
    spec = FAMILIES[name]
    return st.Page(spec.page_file, title=spec.page_title, icon=spec.icon, url_path=spec.url_path)


PAGES = [
    st.Page("views/home.py", title="Home", icon="🏠", default=True),
    st.Page("views/factor_analysis.py", title="Factor analysis", icon="📐", url_path="factor-analysis"),
    family_page("vae"),
    st.Page("views/watch.py", title="Watch it learn", icon="👀", url_path="watch"),
    family_page("cvae"),
    family_page("gmvae"),
    family_page("vrnn"),
    st.Page("views/training.py", title="Training", icon="🏋️", url_path="training"),
]

page = st.navigation(PAGES)

with st.sidebar:
    lecture.sidebar_switch()
    try:
        st.caption(f"Device: {device_info().label()}")
    except DeviceError as err:
        st.error(f"Device problem: {err}")

page.run()

# Streamlit's full gc.collect(2) after every run is off (.streamlit/config.toml, runner.postScriptGC): it held
# the GIL ~100 ms per latent move. Python's own collector still runs, and its occasional full collections walk
# ~300,000 objects once torch, plotly and scipy are loaded (0.3-0.7 s on 2 cores). Moving what is alive after
# an import (modules, classes, cached models) to the permanent generation makes those ~1 ms; objects made by
# later runs are still collected.
if len(sys.modules) != getattr(gc, "_aevb_frozen_modules", 0):
    gc.collect()
    gc.freeze()
    gc._aevb_frozen_modules = len(sys.modules)
