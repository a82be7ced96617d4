"""Streamlit pieces that several pages share (the latent pad, :mod:`views.components.latent_pad`)."""
