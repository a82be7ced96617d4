"""Plotly figure builders and live-chart specs, one module per page (fa, latent, gmvae, vrnn, training,
watch) plus what they share (common): plain data in, figures out; no Streamlit, so unit-tested directly."""
