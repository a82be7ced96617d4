"""What the pages compute, without Streamlit: the latent space of the VAE and CVAE (:mod:`.latent`), the
GMVAE's clusters (:mod:`.clusters`) and the VRNN's row-by-row sequences (:mod:`.sequences`)."""
