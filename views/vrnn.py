"""Variational RNN page (being built)."""

import streamlit as st

st.title("Variational RNN")
st.info("This page is being built.")
