"""AEVB Explorer: the Streamlit entry point (router and shared sidebar).

Run with ``make run`` (or ``streamlit run app.py``). Pages live in ``views/`` (a folder named ``pages/``
would switch on Streamlit's older multipage mode, whose first-visit deep links show a spurious "Page not
found" dialog); all computation lives in ``explorer_core`` (no Streamlit there).
"""

import streamlit as st

from explorer_core.device import DeviceError, device_info

st.set_page_config(page_title="AEVB Explorer", page_icon="🧭", layout="wide")

PAGES = [
    st.Page("views/home.py", title="Home", icon="🏠", default=True),
    st.Page("views/factor_analysis.py", title="Factor analysis", icon="📐", url_path="factor-analysis"),
    st.Page("views/vae.py", title="VAE latent space", icon="🌀", url_path="vae"),
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
