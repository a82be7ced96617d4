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
st.page_link("views/gmvae.py", label="Gaussian mixture VAE: pick a cluster, generate from it", icon="🧩")
st.markdown(
    "Ten clusters found without labels: a gallery of samples per cluster ordered by its matched digit, "
    "q(y|x) and the reconstruction under every cluster for any image, the confusion matrix, and the two "
    "estimators (exact marginalisation over y, Gumbel-softmax) side by side."
)
st.page_link("views/vrnn.py", label="Variational RNN: generate a digit row by row", icon="📜")
st.markdown(
    "A latent z_t per row: watch a grid of digits grow one row at a time with the prior's trajectory, "
    "complete the top rows of a test digit or your drawing, and see where the KL is spent row by row."
)
st.page_link("views/training.py", label="Training: train any model in the background", icon="🏋️")
st.markdown(
    "Start a run (the paper's recipe or a one-minute one), watch its learning curves and samples while you "
    "keep exploring, and find it in the model picker of its page when it is done."
)

try:
    st.caption(f"Computing on {device_info().label()}.")
except DeviceError as err:
    st.error(f"Device problem: {err}")
