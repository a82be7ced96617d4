"""Latent variable models, one module per family; all densities and KLs are torch.distributions objects."""
