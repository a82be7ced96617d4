"""AEVB Explorer's computational core: models, the AEVB step, evaluation and figures. No Streamlit here."""

__version__ = "0.1.0"
