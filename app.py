"""AEVB Explorer: the Streamlit entry point (router and shared sidebar).

Run with ``make run`` (or ``streamlit run app.py``). Pages live in ``views/`` (a folder named ``pages/``
would switch on Streamlit's older multipage mode, whose first-visit deep links show a spurious "Page not
found" dialog); all computation lives in ``explorer_core`` (no Streamlit there).
"""

import sys
from pathlib import Path

import streamlit as st

from explorer_core.compute_budget import process_budget
from explorer_core.device import PAGE_THREADS, DeviceError, device_info, limit_cpu_threads
from views.components import lecture
from views.components.compute_slot import announce_gestures_on_arrival, gesture_owner
from views.pages import PAGES as PAGE_FACTS

# The script thread hands each element to the event-loop thread (call_soon_threadsafe), which sends it:
# every hand-over waits for the GIL, up to the switch interval (5 ms by default), a dozen times per move.
sys.setswitchinterval(0.001)

# lecture mode at a projector scale above 100 % (a prepared link, or the scale just chosen) folds the sidebar
# (❯ opens it): on a 1280 px projector the zoomed page needs the width
st.set_page_config(
    page_title="AEVB Explorer",
    # a local picture (a compass): an emoji favicon is an empty box without an emoji font, and a Material
    # icon favicon is fetched online
    page_icon=Path(__file__).parent / "views" / "favicon.svg",
    layout="wide",
    initial_sidebar_state=lecture.sidebar_state(),
)


PAGES = [st.Page("views/home.py", title="Home", icon=":material/home:", default=True)] + [
    st.Page(p.file, title=p.title, icon=p.icon, url_path=p.url_path) for p in PAGE_FACTS.values()
]

page = st.navigation(PAGES)

with st.sidebar:
    lecture.sidebar_switch()
    try:
        st.caption(f"Device: {device_info().label()}")
    except DeviceError as err:
        st.error(f"Device problem: {err}")

limit_cpu_threads(PAGE_THREADS)  # every page's computation is small: one torch thread (explorer_core.device)
announce_gestures_on_arrival()  # paced trainers hold back from a gesture's arrival, not only from its run
# a whole run answers a gesture: paced trainers hold back meanwhile (a visitor's, within its gesture rate)
with process_budget().gesture(*gesture_owner()):
    page.run()

# Streamlit's full gc.collect(2) after every run is off (.streamlit/config.toml, runner.postScriptGC): it
# holds the GIL on every latent move. Python's own collector still runs; what the imports made is in the
# permanent generation (serve.py's settle(), gc.freeze() before the server starts), so its occasional full
# collections stay short. Nothing is frozen here, after a run: that would pin whatever sessions are alive at
# that moment (a class's, when a first ▶ Play imports a module lazily) for the life of the process.
