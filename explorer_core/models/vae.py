"""The variational autoencoder and the conditional VAE of the tutorial (Yang 2022, sections 5.3 and 5.4).

VAE (Kingma & Welling 2014):  p(z) = N(0, I_L);  p(x|z) = prod_d CB(x_d; lambda_d(z)) (Continuous Bernoulli,
Loaiza-Ganem & Cunningham 2019) on dequantized data, or prod_d Bernoulli(x_d; lambda_d(z)) on binarized data;
q(z|x) = N(mu(x), diag sigma(x)^2) with sigma = softplus (:func:`explorer_core.models.layers.gaussian_head`).
Encoder MLP 784-500-500 (ReLU, dropout) with two heads; decoder MLP L-500-500-784 (ReLU, dropout) whose output
is the logit of lambda.

CVAE (Sohn et al. 2015): a learned prior p(z|y) = N(mu(y), diag sigma(y)^2) (one linear layer each on the
one-hot label), decoder on [y, z], encoder on [x, y].

Images are flat: x is [batch, 784] in [0, 1]; labels y are int64 [batch] in 0..9.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import (
    Bernoulli,
    ContinuousBernoulli,
    Distribution,
    Independent,
    Normal,
    kl_divergence,
)

from explorer_core.models.base import ELBOTerms, LatentVariableModel
from explorer_core.models.configs import LIKELIHOODS, VAEConfig  # noqa: F401 (re-exported)
from explorer_core.models.layers import gaussian_head, mlp


@dataclass(frozen=True)
class ImportanceTerms:
    """What :meth:`VAE.importance_terms` computes from one set of k samples of q(z|x).

    Attributes:
        log_weights: log p(x, z_k) - log q(z_k|x), [k, batch] (nats).
        elbo: the ELBO, its reconstruction term (mean over the k samples) and closed-form KL, each [batch],
            nats per image.
        kl_per_dim: KL(q(z_l|x) || p(z_l)) per latent dimension, [batch, L] (nats).
        posterior: q(z|x), batch [batch], event [L].
    """

    log_weights: torch.Tensor
    elbo: ELBOTerms
    kl_per_dim: torch.Tensor
    posterior: Independent


class VAE(LatentVariableModel):
    """The tutorial's VAE (section 5.3). Shapes: x [batch, 784], z [..., batch, L]."""

    conditional = False

    def __init__(self, config: VAEConfig | None = None):
        super().__init__()
        self.config = config or VAEConfig()
        c = self.config
        extra = c.n_classes if self.conditional else 0
        self.encoder = mlp([c.data_dim + extra, *c.hidden], c.dropout)
        self.encoder_mu = nn.Linear(c.hidden[-1], c.latent_dim)
        self.encoder_sigma = nn.Linear(c.hidden[-1], c.latent_dim)
        self.decoder = mlp([c.latent_dim + extra, *c.hidden[::-1]], c.dropout)
        self.decoder_out = nn.Linear(c.hidden[0], c.data_dim)

    # --- parameters -------------------------------------------------------------------------------
    def _inference_modules(self) -> list[nn.Module]:
        return [self.encoder, self.encoder_mu, self.encoder_sigma]

    def _generative_modules(self) -> list[nn.Module]:
        return [self.decoder, self.decoder_out]

    def inference_parameters(self) -> Iterator[nn.Parameter]:
        """phi: the encoder and its two heads."""
        for module in self._inference_modules():
            yield from module.parameters()

    def generative_parameters(self) -> Iterator[nn.Parameter]:
        """theta: the decoder (and, in the CVAE, the prior network)."""
        for module in self._generative_modules():
            yield from module.parameters()

    # --- distributions ---------------------------------------------------------------------------
    def _inputs(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return x

    def _latents(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return z

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Independent:
        """q(z|x) = N(mu(x), diag sigma(x)^2), batch [batch], event [L]."""
        return gaussian_head(self.encoder(self._inputs(x, y)), self.encoder_mu, self.encoder_sigma)

    def decoder_input(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """What the decoder's first layer reads: z [..., L] (the CVAE: [one-hot(y), z], [..., C + L])."""
        return self._latents(z, y)

    def decoder_layers(self) -> list[nn.Linear]:
        """The decoder's Linear layers in order (ReLU between them), the last giving logit(lambda) [..., 784]
        (:class:`explorer_core.models.base.MLPDecoder`)."""
        return [m for m in self.decoder if isinstance(m, nn.Linear)] + [self.decoder_out]

    def decoder_logits(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """logit(lambda(z)), [..., 784]."""
        return self.decoder_out(self.decoder(self._latents(z, y)))

    def pixel_likelihood(self, logits: torch.Tensor) -> Independent:
        """The pixel distributions for decoder logits [..., 784]: independent Continuous Bernoullis (or
        Bernoullis) with parameter lambda = sigmoid(logits), event [784]."""
        if self.config.likelihood == "continuous_bernoulli":
            return Independent(ContinuousBernoulli(logits=logits, validate_args=False), 1)
        return Independent(Bernoulli(logits=logits, validate_args=False), 1)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> Independent:
        """p(x|z): 784 independent Continuous Bernoullis (or Bernoullis) with parameter lambda(z)."""
        return self.pixel_likelihood(self.decoder_logits(z, y))

    def prior(self, y: torch.Tensor | None = None) -> Distribution:
        """p(z) = N(0, I_L), event [L]."""
        zeros = self.decoder_out.bias.new_zeros(self.config.latent_dim)
        return Independent(Normal(zeros, torch.ones_like(zeros), validate_args=False), 1)

    # --- the AEVB estimator ------------------------------------------------------------------------
    def elbo_terms(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        n_samples: int = 1,
        eps: torch.Tensor | None = None,
    ) -> ELBOTerms:
        """Per-example ELBO estimate (nats per image), [batch]: the mean of log p(x|z_k) over ``n_samples``
        reparameterised z_k ~ q(z|x), minus KL(q(z|x) || p(z)) in closed form (Kingma & Welling 2014, eq. 10).
        ``eps`` [n_samples, batch, L], when given, is the standard-normal noise of the samples
        (z_k = mu + sigma * eps_k, differentiable); otherwise ``q.rsample``.

        Raises:
            ValueError: n_samples < 1, an ``eps`` of another shape, or a CVAE called without labels.
        """
        q = self.encode(x, y)
        z = self._latent_samples(q, n_samples, eps, reparameterised=True)
        y_k = None if y is None else y.expand(n_samples, *y.shape)
        reconstruction = self.decode(z, y_k).log_prob(x).mean(0)
        kl = kl_divergence(q, self.prior(y))
        return ELBOTerms(reconstruction - kl, reconstruction, kl)

    def log_weights(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        k: int = 1,
        eps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Importance log-weights log p(x, z_k) - log q(z_k|x) for k samples z_k ~ q(z|x), [k, batch].

        Their log-mean-exp over k is the IWAE bound (Burda et al. 2016, eq. 8). ``eps`` [k, batch, L], when
        given, is the standard-normal noise of the samples (z_k = mu + sigma * eps_k), so that a caller with
        its own ``torch.Generator`` gets reproducible weights; otherwise z_k ~ q(z|x) from torch's global
        generator.

        Raises:
            ValueError: an ``eps`` of another shape, or a CVAE called without labels.
        """
        return self.importance_terms(x, y, k, eps).log_weights

    def importance_terms(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        k: int = 1,
        eps: torch.Tensor | None = None,
    ) -> ImportanceTerms:
        """Both bounds from ONE set of k samples z_k of q(z|x) (one decoder pass): the importance log-weights
        [k, batch] (IWAE bound, Burda et al. 2016, eq. 8) and the ELBO terms (the reconstruction is the mean
        of the same log p(x|z_k); the KL is closed form), nats per image. ``eps`` as :meth:`log_weights`.

        Raises:
            ValueError: an ``eps`` of another shape, or a CVAE called without labels.
        """
        q = self.encode(x, y)
        z = self._latent_samples(q, k, eps, reparameterised=False)
        y_k = None if y is None else y.expand(k, *y.shape)
        prior = self.prior(y)
        log_likelihood = self.decode(z, y_k).log_prob(x)  # [k, batch]
        log_weights = log_likelihood + prior.log_prob(z) - q.log_prob(z)
        reconstruction = log_likelihood.mean(0)
        kl_per_dim = kl_divergence(q.base_dist, prior.base_dist)  # [batch, L]
        kl = kl_per_dim.sum(-1)
        return ImportanceTerms(log_weights, ELBOTerms(reconstruction - kl, reconstruction, kl), kl_per_dim, q)

    @staticmethod
    def _latent_samples(
        q: Independent, k: int, eps: torch.Tensor | None, reparameterised: bool
    ) -> torch.Tensor:
        """k samples [k, batch, L] of q: mu + sigma * eps for given noise ``eps`` [k, batch, L] (detached
        unless ``reparameterised``), else ``q.rsample`` / ``q.sample``."""
        if k < 1:
            raise ValueError(f"the number of samples must be >= 1, got {k}.")
        if eps is None:
            return q.rsample((k,)) if reparameterised else q.sample((k,))
        eps = eps.to(q.mean)
        if eps.shape != (k, *q.mean.shape):
            raise ValueError(f"eps must have shape {(k, *q.mean.shape)}, got {tuple(eps.shape)}.")
        z = q.mean + q.stddev * eps
        return z if reparameterised else z.detach()

    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
        means: bool = False,
    ) -> torch.Tensor:
        """Draw n images: z from the prior (noise from ``generator``), then x ~ p(x|z), or E[x|z] when
        ``means``. Returns [n, 784].

        Raises:
            ValueError: ``y`` given to the (unconditional) VAE.
        """
        if y is not None and not self.conditional:
            raise ValueError("the VAE has no labels: y must be None (the CVAE takes them).")
        z = self.prior_noise_to_z(torch.randn(n, self.config.latent_dim, generator=generator), y)
        px = self.decode(z, y)
        return px.mean if means else px.sample()

    def prior_noise_to_z(self, eps: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """z = mu_prior + sigma_prior * eps for standard-normal noise eps [n, L] (any device)."""
        eps = eps.to(self.decoder_out.bias.device)
        prior = self.prior(y)
        return prior.mean + prior.stddev * eps


class CVAE(VAE):
    """The tutorial's conditional VAE (section 5.4): learned prior p(z|y), decoder on [y, z], encoder
    on [x, y]."""

    conditional = True

    def __init__(self, config: VAEConfig | None = None):
        super().__init__(config)
        c = self.config
        self.prior_mu = nn.Linear(c.n_classes, c.latent_dim)
        self.prior_sigma = nn.Linear(c.n_classes, c.latent_dim)

    def _generative_modules(self) -> list[nn.Module]:
        return [*super()._generative_modules(), self.prior_mu, self.prior_sigma]

    def one_hot(self, y: torch.Tensor | None) -> torch.Tensor:
        """One-hot labels [..., n_classes] (float) from int labels [...].

        Raises:
            ValueError: labels are missing or outside 0..n_classes-1.
        """
        if y is None:
            raise ValueError("the CVAE needs labels y.")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.config.n_classes):
            raise ValueError(f"labels must be in 0..{self.config.n_classes - 1}.")
        return F.one_hot(y.long(), self.config.n_classes).to(self.decoder_out.weight.dtype)

    def _inputs(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return torch.cat([x, self.one_hot(y)], dim=-1)

    def _latents(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        onehot = self.one_hot(y).expand(*z.shape[:-1], self.config.n_classes)
        return torch.cat([onehot, z], dim=-1)

    def prior(self, y: torch.Tensor | None = None) -> Independent:
        """p(z|y) = N(mu(y), diag sigma(y)^2), batch [batch], event [L]."""
        return gaussian_head(self.one_hot(y), self.prior_mu, self.prior_sigma)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
        means: bool = False,
    ) -> torch.Tensor:
        """Draw n images for labels y [n] (default: n // 10 of each class, cycling): z ~ p(z|y), then
        x ~ p(x|z, y), or its mean E[x|z, y] when ``means``. Returns [n, 784]."""
        if y is None:
            y = torch.arange(n, device=self.decoder_out.bias.device) % self.config.n_classes
        return super().sample(n, generator, y, means)
