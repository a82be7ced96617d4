"""Gaussian mixture VAE page (being built)."""

import streamlit as st

st.title("Gaussian mixture VAE")
st.info("This page is being built.")
