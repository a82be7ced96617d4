"""The Gaussian mixture VAE of the tutorial (Yang 2022, section 5.5; Rui Shu's explicit GMVAE, 2016).

Generative model:  y ~ Cat(1/C) (uniform),  z | y ~ N(mu(y), diag sigma(y)^2) (one Linear(C, L) head each),
x | z ~ prod_d Bernoulli(x_d; lambda_d(z)), decoder MLP L-512-512-784 (ReLU). x depends on z only.

Amortized posterior:  q(y|x) = Cat(pi(x)), MLP 784-512-512-C on logits;  q(z|x, y) = N(mu(x, y),
diag sigma(x, y)^2), MLP on [x, y] 794-512-512 with two heads (sigma = softplus). The first layer of
q(z|x, y) is kept as ``W_x x + W_y y + b`` (two Linear modules), the same function as one Linear on the
concatenation, so the x-part is computed once per image rather than once per cluster.

Two AEVB estimators of the ELBO (nats per image):

* ``"marginal"`` (tutorial section 5.5, the one the reference trains): the expectation over y is a sum over
  all C clusters, one reparameterised z per (x, y):
  ELBO = sum_y q(y|x) [log p(x|z_y) - KL(q(z|x,y) || p(z|y))] - KL(q(y|x) || p(y)),
  where KL(q(y|x) || Uniform(C)) = log C - H(q(y|x)): the -log C the reference omits is included, so the value
  is a true lower bound on log p(x).
* ``"gumbel"`` (tutorial section 5.5, Jang et al. 2017 / Maddison et al. 2017): a relaxed one-hot
  y~ ~ RelaxedOneHotCategorical(tau, pi(x)) (optionally straight-through: the forward pass uses the hard
  one-hot, the gradient the relaxed sample), then z ~ q(z|x, y~), and
  ELBO ~ log p(x|z) - KL(q(z|x,y~) || p(z|y~)) - KL(q(y|x) || p(y)) with the categorical KL analytic.

Evaluation and model selection always use the marginal estimator (:meth:`GMVAE.evaluation_elbo`), the
exact sum over y, whichever estimator trained the model.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import (
    Bernoulli,
    Categorical,
    Independent,
    RelaxedOneHotCategorical,
    kl_divergence,
)

from explorer_core.models.base import ELBOTerms, LatentVariableModel
from explorer_core.models.configs import ESTIMATORS, GMVAEConfig  # noqa: F401 (re-exported)
from explorer_core.models.layers import gaussian_head, mlp


def glorot_normal_(module: nn.Module) -> None:
    """Glorot-normal weights and zero biases for every Linear in ``module`` (the reference's init)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class GMVAE(LatentVariableModel):
    """The tutorial's GMVAE (section 5.5). Shapes: x [batch, 784] binary; y int [batch] or one-hot [.., C];
    z [..., L]."""

    conditional = False

    def __init__(self, config: GMVAEConfig | None = None):
        super().__init__()
        self.config = config or GMVAEConfig()
        c = self.config
        self.temperature = c.temperature
        h = list(c.hidden)
        # q(y|x)
        self.qy = nn.Sequential(mlp([c.data_dim, *h], 0.0), nn.Linear(h[-1], c.n_clusters))
        # q(z|x,y): first layer split as W_x x + W_y y + b
        self.qz_x = nn.Linear(c.data_dim, h[0])
        self.qz_y = nn.Linear(c.n_clusters, h[0], bias=False)
        self.qz_body = nn.Sequential(nn.ReLU(), mlp(h, 0.0))
        self.qz_mu = nn.Linear(h[-1], c.latent_dim)
        self.qz_sigma = nn.Linear(h[-1], c.latent_dim)
        # p(z|y)
        self.pz_mu = nn.Linear(c.n_clusters, c.latent_dim)
        self.pz_sigma = nn.Linear(c.n_clusters, c.latent_dim)
        # p(x|z)
        self.decoder = nn.Sequential(mlp([c.latent_dim, *h[::-1]], 0.0), nn.Linear(h[0], c.data_dim))
        glorot_normal_(self)

    # --- parameters -------------------------------------------------------------------------------
    def inference_parameters(self) -> Iterator[nn.Parameter]:
        """phi: q(y|x) and q(z|x, y)."""
        for module in (self.qy, self.qz_x, self.qz_y, self.qz_body, self.qz_mu, self.qz_sigma):
            yield from module.parameters()

    def generative_parameters(self) -> Iterator[nn.Parameter]:
        """theta: p(z|y) and p(x|z)."""
        for module in (self.pz_mu, self.pz_sigma, self.decoder):
            yield from module.parameters()

    # --- distributions ---------------------------------------------------------------------------
    def _one_hot(self, y: torch.Tensor) -> torch.Tensor:
        """int labels [...] -> one-hot [..., C]; float one-hot (or relaxed) inputs pass through."""
        if y.is_floating_point():
            return y
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.config.n_clusters):
            raise ValueError(f"clusters must be in 0..{self.config.n_clusters - 1}.")
        return F.one_hot(y.long(), self.config.n_clusters).to(self.decoder[-1].weight.dtype)

    def cluster_posterior(self, x: torch.Tensor) -> Categorical:
        """q(y|x), batch [batch], C categories."""
        return Categorical(logits=self.qy(x), validate_args=False)

    def cluster_prior(self) -> Categorical:
        """p(y) = Uniform over the C clusters."""
        zeros = self.decoder[-1].bias.new_zeros(self.config.n_clusters)
        return Categorical(logits=zeros, validate_args=False)

    def _qz(self, x_features: torch.Tensor, y_onehot: torch.Tensor) -> Independent:
        return gaussian_head(self.qz_body(x_features + self.qz_y(y_onehot)), self.qz_mu, self.qz_sigma)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Independent:
        """q(z|x, y) for a batch x [batch, 784]. ``y``: cluster ints [batch] or one-hots [batch, C]; when
        None, the most probable cluster argmax q(y|x) of each image. Batch [batch], event [L]."""
        if y is None:
            y = self.cluster_posterior(x).probs.argmax(-1)
        return self._qz(self.qz_x(x), self._one_hot(y))

    def encode_all_clusters(self, x: torch.Tensor) -> Independent:
        """q(z|x, y=c) for every cluster c at once: batch [C, batch], event [L]."""
        eye = torch.eye(self.config.n_clusters, dtype=x.dtype, device=x.device)
        return self._qz(self.qz_x(x).unsqueeze(0), eye.unsqueeze(1))

    def decoder_input(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """What the decoder's first layer reads: z [..., L] itself (x depends on z only)."""
        return z

    def decoder_layers(self) -> list[nn.Linear]:
        """The decoder's Linear layers in order (ReLU between them), the last giving the Bernoulli logits
        [..., 784] (:class:`explorer_core.models.base.MLPDecoder`)."""
        return [m for m in self.decoder.modules() if isinstance(m, nn.Linear)]

    def pixel_likelihood(self, logits: torch.Tensor) -> Independent:
        """The pixel distributions for decoder logits [..., 784]: independent Bernoullis, event [784]."""
        return Independent(Bernoulli(logits=logits, validate_args=False), 1)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> Independent:
        """p(x|z): 784 independent Bernoullis, for z [..., L] (y is ignored: x depends on z only)."""
        return self.pixel_likelihood(self.decoder(z))

    def prior(self, y: torch.Tensor | None = None) -> Independent:
        """p(z|y) = N(mu(y), diag sigma(y)^2). ``y``: ints [...] or (relaxed) one-hots [..., C]; None gives
        all C components (batch [C]). Event [L]."""
        if y is None:
            y = torch.arange(self.config.n_clusters, device=self.decoder[-1].bias.device)
        return gaussian_head(self._one_hot(y), self.pz_mu, self.pz_sigma)

    # --- the AEVB estimators -----------------------------------------------------------------------
    def marginal_elbo_terms(self, x: torch.Tensor, n_samples: int = 1) -> ELBOTerms:
        """The marginalised ELBO (sum over all C clusters, vectorised), [batch], nats per image, with the
        -log C term. ``reconstruction`` = sum_y q(y|x) E_q(z|x,y) log p(x|z); ``kl`` = sum_y q(y|x)
        KL(q(z|x,y) || p(z|y)) + KL(q(y|x) || p(y)). Tutorial section 5.5 (and its note on -log C).
        """
        qy = self.cluster_posterior(x)
        qz = self.encode_all_clusters(x)  # batch [C, batch]
        z = qz.rsample((n_samples,))  # [K, C, batch, L]
        log_px = self.decode(z).log_prob(x).mean(0)  # [C, batch]
        clusters = torch.arange(self.config.n_clusters, device=x.device).unsqueeze(1)
        kl_z = kl_divergence(qz, self.prior(clusters))  # [C, batch]
        weights = qy.probs.T  # [C, batch]
        reconstruction = (weights * log_px).sum(0)
        kl = (weights * kl_z).sum(0) + kl_divergence(qy, self.cluster_prior())
        return ELBOTerms(reconstruction - kl, reconstruction, kl)

    def gumbel_elbo_terms(self, x: torch.Tensor, n_samples: int = 1) -> ELBOTerms:
        """The Gumbel-softmax estimate, [batch], nats per image: relaxed y~ (temperature
        ``self.temperature``; straight-through if configured), z ~ q(z|x, y~), analytic categorical KL.
        Tutorial section 5.5; Jang et al. 2017, section 2."""
        qy = self.cluster_posterior(x)
        relaxed = RelaxedOneHotCategorical(
            torch.tensor(self.temperature, device=x.device), logits=qy.logits, validate_args=False
        )
        y = relaxed.rsample((n_samples,))  # [K, batch, C]
        if self.config.straight_through:
            hard = F.one_hot(y.argmax(-1), self.config.n_clusters).to(y.dtype)
            y = hard + y - y.detach()
        qz = self._qz(self.qz_x(x), y)  # batch [K, batch]
        z = qz.rsample()
        reconstruction = self.decode(z).log_prob(x).mean(0)
        kl_z = kl_divergence(qz, self.prior(y)).mean(0)
        kl = kl_z + kl_divergence(qy, self.cluster_prior())
        return ELBOTerms(reconstruction - kl, reconstruction, kl)

    def elbo_terms(self, x: torch.Tensor, y: torch.Tensor | None = None, n_samples: int = 1) -> ELBOTerms:
        """The training estimator chosen by ``config.estimator`` (labels ``y`` are ignored: unsupervised).

        Raises:
            ValueError: n_samples < 1.
        """
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}.")
        if self.config.estimator == "gumbel":
            return self.gumbel_elbo_terms(x, n_samples)
        return self.marginal_elbo_terms(x, n_samples)

    def evaluation_elbo_terms(self, x: torch.Tensor, y: torch.Tensor | None = None) -> ELBOTerms:
        """The bound reported on validation and test data: always the marginal estimator (a true bound)."""
        return self.marginal_elbo_terms(x)

    def log_weights(self, x: torch.Tensor, y: torch.Tensor | None = None, k: int = 1) -> torch.Tensor:
        """Importance log-weights log p(x, y, z) - log q(y, z|x) for k draws (y, z) ~ q(y|x) q(z|x,y),
        [k, batch]. Their log-mean-exp is the IWAE bound (Burda et al. 2016, eq. 8) on log p(x)."""
        qy = self.cluster_posterior(x)
        y = qy.sample((k,))  # [k, batch]
        qz = self.encode(x.expand(k, *x.shape), y)
        z = qz.sample()
        log_joint = self.cluster_prior().log_prob(y) + self.prior(y).log_prob(z) + self.decode(z).log_prob(x)
        return log_joint - qy.log_prob(y) - qz.log_prob(z)

    # --- generation ---------------------------------------------------------------------------------
    def prior_noise_to_z(self, eps: torch.Tensor, y: torch.Tensor, spread: float = 1.0) -> torch.Tensor:
        """z = mu(y) + spread * sigma(y) * eps for standard-normal noise eps [n, L] and clusters y [n]."""
        eps = eps.to(self.decoder[-1].bias.device)
        p = self.prior(y.to(eps.device))
        return p.mean + spread * p.stddev * eps

    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
        means: bool = False,
        *,
        spread: float = 1.0,
    ) -> torch.Tensor:
        """Draw n images from clusters ``y`` [n] (default: cycling 0..C-1): z ~ p(z|y) with its standard
        deviation scaled by ``spread`` (sampling temperature), then binary samples x ~ p(x|z), or the
        Bernoulli means lambda(z) when ``means``. Returns [n, 784] in [0, 1]."""
        if y is None:
            y = torch.arange(n) % self.config.n_clusters
        eps = torch.randn(n, self.config.latent_dim, generator=generator)
        px = self.decode(self.prior_noise_to_z(eps, y, spread))
        return px.mean if means else px.sample()

    def reconstructions_per_cluster(self, x: torch.Tensor) -> torch.Tensor:
        """Bernoulli means of p(x|z) at z = mean of q(z|x, y=c), for every cluster c: [C, batch, 784]."""
        return self.decode(self.encode_all_clusters(x).mean).mean
