"""The building blocks every MNIST model here shares: the paper's MLP and the diagonal Gaussian head.

The Gaussian head is how each family parameterises a Gaussian over a latent (the VAE's q(z|x), the CVAE's
prior p(z|y), the GMVAE's q(z|x, y) and p(z|y), the VRNN's p(z_t|h_t) and q(z_t|h_t, x_t)):
N(mu(h), diag sigma(h)^2) with mu a Linear layer and sigma = softplus(Linear) + MIN_STD (the Gaussian MLP
of Kingma & Welling 2014, appendix C.2, with a softplus scale as in the tutorial, section 5.3). The heads'
Linear layers stay attributes of each model, so the parameter names of the saved weights are the model's.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Independent, Normal

from explorer_core.models.configs import MLPConfig  # noqa: F401 (re-exported: the models' configs share it)

#: the smallest standard deviation a Gaussian head gives (keeps log-densities finite)
MIN_STD = 1e-6


def mlp(sizes: list[int], dropout: float) -> nn.Sequential:
    """Linear-ReLU(-Dropout) blocks through ``sizes`` (the hidden layers of the paper's MLPs).

    Args:
        sizes: [input width, hidden widths...]; one Linear + ReLU per consecutive pair.
        dropout: probability of the Dropout after each ReLU (0: no Dropout module at all, so the parameter
            names are ``0.weight, 0.bias, 2.weight, ...``).
    """
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def gaussian_head(features: torch.Tensor, mu: nn.Module, sigma: nn.Module) -> Independent:
    """N(mu(features), diag sigma^2) with sigma = softplus(sigma(features)) + :data:`MIN_STD`.

    Args:
        features: [..., H], the input of both heads (a hidden layer, or a one-hot label).
        mu, sigma: the two heads, each mapping [..., H] -> [..., L].

    Returns:
        A ``torch.distributions`` Normal over the last axis: batch [...], event [L].
    """
    scale = F.softplus(sigma(features)) + MIN_STD
    return Independent(Normal(mu(features), scale, validate_args=False), 1)
