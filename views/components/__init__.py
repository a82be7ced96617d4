"""Streamlit pieces that several pages share: the latent pad (:mod:`.latent_pad`, a components v2 canvas, and
how a page mounts it), live charts and 3-D scatters (:mod:`.live_chart`, :mod:`.scatter3d`), model loading
and the metrics row (:mod:`.model_panel`), page state and the URL (:mod:`.page_state`), and images with the
drawing canvas (:mod:`.images`)."""
