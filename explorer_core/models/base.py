"""The protocol every latent variable model of the explorer follows.

A model is an ``nn.Module`` whose distributions are ``torch.distributions`` objects. It exposes the
per-example ELBO estimate (the AEVB estimator of Kingma & Welling 2014, section 2.3; tutorial section 5)
and splits its parameters into inference parameters phi (the amortized posterior q(z|x)) and generative
parameters theta (prior and likelihood), so that :mod:`explorer_core.inference.aevb` can run approximate
E-steps (phi only), approximate M-steps (theta only) or joint AEVB steps.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import torch
from torch import nn
from torch.distributions import Distribution


@runtime_checkable
class MLPDecoder(Protocol):
    """A typed capability: the likelihood's parameter is an MLP of the decoder input, so the decoder can be
    exported as plain matrices (the latent pad runs it in the browser,
    :mod:`explorer_core.explore.browser_decoder`). The VAE, the CVAE and the GMVAE have it.

    ``decoder_input(z [..., L], y)`` is what the first layer reads ([..., D_in]: z, or [one-hot(y), z] for
    the CVAE); ``decoder_layers()`` are its Linear layers in order, a ReLU after each but the last, whose
    output are the logits [..., 784] of the pixel distributions ``pixel_likelihood(logits)`` (Bernoullis or
    Continuous Bernoullis, event [784]): ``decode(z, y)`` is
    ``pixel_likelihood(layers(decoder_input(z, y)))``. Dropout (a no-op in eval mode) is left out.
    """

    def decoder_input(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor: ...

    def decoder_layers(self) -> list[nn.Linear]: ...

    def pixel_likelihood(self, logits: torch.Tensor) -> Distribution: ...


@dataclass(frozen=True)
class ELBOTerms:
    """The per-example ELBO and its two terms, each a tensor [batch] in nats per example.

    ``elbo = reconstruction - kl``, where ``reconstruction`` is the Monte Carlo estimate of
    E_q[log p(x|z)] and ``kl`` is KL(q(z|x) || p(z)), in closed form where the family allows it.
    """

    elbo: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor


class LatentVariableModel(nn.Module, abc.ABC):
    """Base class of the explorer's models: the AEVB model protocol (Kingma & Welling 2014, section 2;
    tutorial section 5). What a family adds beyond it is listed in :mod:`explorer_core.families`.

    Attributes:
        conditional: a class constant; True when the model is conditioned on the label y (the CVAE), so
            that every method takes the labels and callers must pass them; False when ``y`` is ignored or
            means something else (the GMVAE's cluster).
    """

    conditional: ClassVar[bool] = False

    @abc.abstractmethod
    def elbo_terms(self, x: torch.Tensor, y: torch.Tensor | None = None, n_samples: int = 1) -> ELBOTerms:
        """Per-example ELBO estimate with ``n_samples`` reparameterised samples per example.

        Args:
            x: a batch of observations, [batch, ...].
            y: labels for conditional models, else ``None``.
            n_samples: K >= 1; the reconstruction term is the mean over K reparameterised samples.
        """

    def elbo(self, x: torch.Tensor, y: torch.Tensor | None = None, n_samples: int = 1) -> torch.Tensor:
        """The per-example ELBO estimate, [batch], nats per example (see :meth:`elbo_terms`)."""
        return self.elbo_terms(x, y, n_samples).elbo

    def evaluation_elbo_terms(self, x: torch.Tensor, y: torch.Tensor | None = None) -> ELBOTerms:
        """The bound reported on validation and test data and used for model selection, [batch] nats per
        example. The training estimator by default; a model trained with a relaxed estimator (the Gumbel
        GMVAE) overrides it with an exact one."""
        return self.elbo_terms(x, y)

    @abc.abstractmethod
    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Distribution:
        """The amortized posterior q(z|x) for a batch, batch shape [batch]."""

    @abc.abstractmethod
    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> Distribution:
        """The likelihood p(x|z) for a batch of latents [..., latent_dim]."""

    @abc.abstractmethod
    def prior(self, y: torch.Tensor | None = None) -> Distribution:
        """The prior p(z) (or p(z|y))."""

    @abc.abstractmethod
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
        means: bool = False,
    ) -> torch.Tensor:
        """Draw ``n`` observations from the generative model, [n, D]: z from the prior (p(z|y) for the label
        or cluster ``y`` [n] of a family that has one; others take ``None``), then x ~ p(x|z), or the mean
        E[x|z] when ``means``. The noise comes from ``generator``.

        Raises:
            ValueError: ``y`` given to a family without labels or clusters.
        """

    @abc.abstractmethod
    def inference_parameters(self) -> Iterator[nn.Parameter]:
        """phi: the parameters of q(z|x), updated by an approximate E-step."""

    @abc.abstractmethod
    def generative_parameters(self) -> Iterator[nn.Parameter]:
        """theta: the parameters of p(z) and p(x|z), updated by an approximate M-step."""
