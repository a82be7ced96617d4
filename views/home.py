"""Home: what AEVB is, and what each page shows."""

import streamlit as st

from explorer_core.device import DeviceError, device_info

st.title("AEVB Explorer")
st.markdown(
    """
**Auto-Encoding Variational Bayes** (AEVB; Kingma & Welling, 2014) fits a latent variable model
p<sub>θ</sub>(x, z) by maximising the **ELBO**, a lower bound on the evidence log p<sub>θ</sub>(x), with
an **amortized posterior** q<sub>φ</sub>(z|x) and **reparameterised samples** z = μ + σ·ε.

Seen through EM (the view of the tutorial *Training Latent Variable Models with AEVB*, Yang 2022):

* an approximate **E-step** updates the inference parameters φ: it *tightens* the bound, closing the gap
  KL(q(z|x) ‖ p(z|x)) while the evidence stays where it is;
* an approximate **M-step** updates the generative parameters θ: it *raises* the bound, and the evidence
  with it, while the bound loosens again;
* plain AEVB does both at once, one minibatch gradient step at a time.
""",
    unsafe_allow_html=True,
)

st.subheader("Pages")
st.page_link("views/factor_analysis.py", label="Factor analysis: step through E- and M-phases", icon="📐")
st.markdown(
    "Watch the ELBO close on the exact evidence, with the data, the model's samples and the posteriors live."
)
st.page_link(
    "views/vae.py", label="VAE latent space: drag z, see the decoder and the encoder at work", icon="🌀"
)
st.markdown(
    "A VAE on MNIST: decode any point of the latent map, see q(z|x) and the reparameterisation "
    "z = μ + σ·ε for a test image or your own drawing, the ELBO split into reconstruction and KL, "
    "and interpolations."
)
st.page_link("views/cvae.py", label="Conditional VAE: the label sets the class, z the style", icon="🏷️")
st.markdown(
    "Decode one z under all ten labels, re-label an image, see the learned priors p(z|y), and draw the "
    "paper's 10 × 15 grid of class-conditional samples."
)

try:
    st.caption(f"Computing on {device_info().label()}.")
except DeviceError as err:
    st.error(f"Device problem: {err}")
