"""The variational RNN of the tutorial (Yang 2022, section 5.6; Chung et al. 2015).

An image is a sequence of T = 28 rows x_t in {0,1}^28. Per row a latent z_t in R^L (the paper: L = 2).
Recurrence: h_1 = 0 and h_{t+1} = LSTM([x_t, z_t], state_t) (2 layers, hidden 256; h is the top layer's
output). Prior p(z_t|h_t) = N(mu, diag sigma^2) from an MLP 256-500-500 (sigma = softplus); posterior
q(z_t|h_t, x_t) from an MLP on [h_t, x_t] 284-500-500; decoder p(x_t|h_t, z_t) = 28 Bernoullis from an MLP
258-500-500-28.

ELBO (nats per image) = sum_t [ E_q log p(x_t|h_t, z_t) - KL(q(z_t|h_t,x_t) || p(z_t|h_t)) ] with the KL in
closed form and z_t a *reparameterised* sample (the reference's ``.sample()`` cut the reconstruction gradient
to the posterior; Chung et al. 2015, section 3). Images are passed flat, [batch, 784], like every MNIST model
here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from explorer_core.models.base import ELBOTerms, LatentVariableModel
from explorer_core.models.configs import VRNNConfig
from explorer_core.models.layers import gaussian_head, mlp


@dataclass
class RowTerms:
    """Per-row terms of the VRNN's ELBO for a batch, each [batch, T] in nats per row, plus the path taken.

    ``elbo = (reconstruction - kl).sum(-1)``. ``z`` [batch, T, L] are the reparameterised posterior samples,
    ``prior_mean`` [batch, T, L] the means of p(z_t|h_t) along that path, ``posterior_mean`` and
    ``posterior_std`` [batch, T, L] those of q(z_t|h_t, x_t).
    """

    reconstruction: torch.Tensor
    kl: torch.Tensor
    z: torch.Tensor
    prior_mean: torch.Tensor
    posterior_mean: torch.Tensor
    posterior_std: torch.Tensor


@dataclass
class GenerationState:
    """Where a row-by-row generation stands for a batch of n sequences (see :meth:`VRNN.generation_step`).

    Attributes:
        h: the top-layer LSTM output h_t for the next row, [n, H].
        lstm: the LSTM's (h, c) state, each [layers, n, H] (None before the first row).
        rows: how many rows are done.
        means: Bernoulli means of the rows so far, [n, rows, row_dim].
        samples: the sampled binary rows fed back, [n, rows, row_dim].
        prior_means: means of p(z_t|h_t) so far, [n, rows, L].
        kept: rows given rather than generated (completion), an int.
    """

    h: torch.Tensor
    lstm: tuple[torch.Tensor, torch.Tensor] | None
    rows: int = 0
    means: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    samples: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    prior_means: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    kept: int = 0


class VRNN(LatentVariableModel):
    """The tutorial's VRNN (section 5.6). Shapes: x [batch, T*row_dim] binary (flat rows), z [batch, T, L]."""

    conditional = False

    def __init__(self, config: VRNNConfig | None = None):
        super().__init__()
        self.config = config or VRNNConfig()
        c = self.config
        h = list(c.hidden)
        self.rnn = nn.LSTM(c.row_dim + c.latent_dim, c.rnn_hidden, c.rnn_layers, batch_first=True)
        self.prior_net = mlp([c.rnn_hidden, *h], 0.0)
        self.prior_mu = nn.Linear(h[-1], c.latent_dim)
        self.prior_sigma = nn.Linear(h[-1], c.latent_dim)
        self.posterior_net = mlp([c.rnn_hidden + c.row_dim, *h], 0.0)
        self.posterior_mu = nn.Linear(h[-1], c.latent_dim)
        self.posterior_sigma = nn.Linear(h[-1], c.latent_dim)
        self.decoder_net = nn.Sequential(
            mlp([c.rnn_hidden + c.latent_dim, *h], 0.0), nn.Linear(h[-1], c.row_dim)
        )

    # --- parameters -------------------------------------------------------------------------------
    def inference_parameters(self) -> Iterator[nn.Parameter]:
        """phi: the posterior network q(z_t|h_t, x_t)."""
        for module in (self.posterior_net, self.posterior_mu, self.posterior_sigma):
            yield from module.parameters()

    def generative_parameters(self) -> Iterator[nn.Parameter]:
        """theta: the LSTM, the prior network and the decoder."""
        for module in (self.rnn, self.prior_net, self.prior_mu, self.prior_sigma, self.decoder_net):
            yield from module.parameters()

    # --- per-row distributions -----------------------------------------------------------------------
    def _device(self) -> torch.device:
        return self.prior_mu.bias.device

    def rows_of(self, x: torch.Tensor) -> torch.Tensor:
        """Flat images [batch, T*row_dim] -> rows [batch, T, row_dim].

        Raises:
            ValueError: x is not [batch, T*row_dim].
        """
        c = self.config
        if x.dim() != 2 or x.shape[1] != c.data_dim:
            raise ValueError(f"expected images of shape [batch, {c.data_dim}], got {list(x.shape)}.")
        return x.reshape(x.shape[0], c.n_rows, c.row_dim)

    def row_prior(self, h: torch.Tensor) -> Independent:
        """p(z_t|h_t) for h [..., H]: batch [...], event [L]."""
        return gaussian_head(self.prior_net(h), self.prior_mu, self.prior_sigma)

    def row_posterior(self, h: torch.Tensor, x_row: torch.Tensor) -> Independent:
        """q(z_t|h_t, x_t) for h [..., H] and rows [..., row_dim]: batch [...], event [L]."""
        features = self.posterior_net(torch.cat([h, x_row], -1))
        return gaussian_head(features, self.posterior_mu, self.posterior_sigma)

    def row_likelihood(self, h: torch.Tensor, z: torch.Tensor) -> Independent:
        """p(x_t|h_t, z_t): row_dim Bernoullis, batch [...], event [row_dim]."""
        return Independent(Bernoulli(logits=self.decoder_net(torch.cat([h, z], -1)), validate_args=False), 1)

    def _advance(
        self, x_row: torch.Tensor, z: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        out, state = self.rnn(torch.cat([x_row, z], -1).unsqueeze(1), state)
        return out[:, 0], state

    # --- the AEVB estimator ----------------------------------------------------------------------------
    def row_terms(self, x: torch.Tensor) -> RowTerms:
        """Teacher-forced pass over the rows of x [batch, 784] with one reparameterised z_t per row.

        Works at batch size 1. Returns per-row reconstruction log p(x_t|h_t,z_t) and closed-form
        KL(q(z_t|h_t,x_t) || p(z_t|h_t)), each [batch, T] (Chung et al. 2015, eq. 11).
        """
        rows = self.rows_of(x)
        batch, steps = rows.shape[0], rows.shape[1]
        h = rows.new_zeros(batch, self.config.rnn_hidden)
        state = None
        hs, zs, mus, sigmas = [], [], [], []
        for t in range(steps):
            q = self.row_posterior(h, rows[:, t])
            z = q.rsample()
            hs.append(h)
            zs.append(z)
            mus.append(q.base_dist.loc)
            sigmas.append(q.base_dist.scale)
            if t + 1 < steps:
                h, state = self._advance(rows[:, t], z, state)
        h_all, z_all = torch.stack(hs, 1), torch.stack(zs, 1)  # [batch, T, H], [batch, T, L]
        q_all = Independent(Normal(torch.stack(mus, 1), torch.stack(sigmas, 1), validate_args=False), 1)
        prior = self.row_prior(h_all)
        reconstruction = self.row_likelihood(h_all, z_all).log_prob(rows)
        kl = kl_divergence(q_all, prior)
        return RowTerms(reconstruction, kl, z_all, prior.mean, q_all.mean, q_all.stddev)

    def elbo_terms(self, x: torch.Tensor, y: torch.Tensor | None = None, n_samples: int = 1) -> ELBOTerms:
        """Per-image ELBO, [batch], nats per image: the sum over rows of reconstruction minus KL, averaged
        over ``n_samples`` independent passes (labels ``y`` are ignored).

        Raises:
            ValueError: n_samples < 1 or x of the wrong shape.
        """
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}.")
        xs = x.repeat(n_samples, 1) if n_samples > 1 else x
        terms = self.row_terms(xs)
        reconstruction = terms.reconstruction.sum(-1).reshape(n_samples, -1).mean(0)
        kl = terms.kl.sum(-1).reshape(n_samples, -1).mean(0)
        return ELBOTerms(reconstruction - kl, reconstruction, kl)

    # --- protocol methods ------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Independent:
        """The posteriors q(z_t|h_t, x_t) along one sampled path (each row's h_t follows the z drawn for the
        rows before it), as one distribution: batch [batch], event [T, L], the means and standard deviations
        of every row's Gaussian (Chung et al. 2015, eq. 9)."""
        terms = self.row_terms(x)
        return Independent(Normal(terms.posterior_mean, terms.posterior_std, validate_args=False), 2)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> Independent:
        """p(x|z) for a latent path z [batch, T, L]: the recurrence is run with the given z_t and the sampled
        rows fed back; returns the Bernoulli of the flat image, batch [batch], event [T*row_dim]."""
        state = self.start_generation(z.shape[0])
        logits = []
        for t in range(self.config.n_rows):
            px = self.row_likelihood(state.h, z[:, t])
            logits.append(px.base_dist.logits)
            state.h, state.lstm = self._advance(px.sample(), z[:, t], state.lstm)
        return Independent(Bernoulli(logits=torch.cat(logits, -1), validate_args=False), 1)

    def prior(self, y: torch.Tensor | None = None) -> Independent:
        """p(z_1|h_1 = 0), the prior of the first row's latent (later rows' priors depend on h_t)."""
        return self.row_prior(self.prior_mu.bias.new_zeros(self.config.rnn_hidden))

    # --- generation -----------------------------------------------------------------------------------
    def start_generation(self, n: int) -> GenerationState:
        """A fresh state for n sequences: h_1 = 0, no rows yet."""
        c = self.config
        dev = self._device()
        return GenerationState(
            h=torch.zeros(n, c.rnn_hidden, device=dev),
            lstm=None,
            means=torch.zeros(n, 0, c.row_dim, device=dev),
            samples=torch.zeros(n, 0, c.row_dim, device=dev),
            prior_means=torch.zeros(n, 0, c.latent_dim, device=dev),
        )

    @torch.no_grad()
    def generation_step(
        self, state: GenerationState, generator: torch.Generator | None = None
    ) -> GenerationState:
        """Generate the next row of every sequence: z_t ~ p(z_t|h_t), x_t ~ p(x_t|h_t, z_t); the *sampled*
        binary row is fed back into the LSTM, as the model defines (Chung et al. 2015, section 3). Returns a
        new state (the given one is not modified).

        Raises:
            ValueError: all T rows are already generated.
        """
        if state.rows >= self.config.n_rows:
            raise ValueError(f"all {self.config.n_rows} rows are already generated.")
        prior = self.row_prior(state.h)
        eps = torch.randn(prior.mean.shape, generator=generator).to(state.h.device)
        z = prior.mean + prior.stddev * eps
        px = self.row_likelihood(state.h, z)
        u = torch.rand(px.mean.shape, generator=generator).to(state.h.device)
        x_row = (u < px.mean).to(px.mean.dtype)
        h, lstm = self._advance(x_row, z, state.lstm)
        return GenerationState(
            h=h,
            lstm=lstm,
            rows=state.rows + 1,
            means=torch.cat([state.means, px.mean.unsqueeze(1)], 1),
            samples=torch.cat([state.samples, x_row.unsqueeze(1)], 1),
            prior_means=torch.cat([state.prior_means, prior.mean.unsqueeze(1)], 1),
            kept=state.kept,
        )

    @torch.no_grad()
    def start_completion(
        self, x: torch.Tensor, keep_rows: int, generator: torch.Generator | None = None
    ) -> GenerationState:
        """A state whose first ``keep_rows`` rows are the given images' rows, exactly, for x [n, 784]: along
        them z_t ~ q(z_t|h_t, x_t) (the posterior, as in inference); later rows come from
        :meth:`generation_step`.

        Raises:
            ValueError: keep_rows outside 0..T, or x of the wrong shape.
        """
        if not 0 <= keep_rows <= self.config.n_rows:
            raise ValueError(f"keep_rows must be in 0..{self.config.n_rows}, got {keep_rows}.")
        rows = self.rows_of(x.to(self._device()))
        state = self.start_generation(rows.shape[0])
        for t in range(keep_rows):
            q = self.row_posterior(state.h, rows[:, t])
            eps = torch.randn(q.mean.shape, generator=generator).to(rows.device)
            z = q.mean + q.stddev * eps
            prior_mean = self.row_prior(state.h).mean
            h, lstm = self._advance(rows[:, t], z, state.lstm)
            state = GenerationState(
                h=h,
                lstm=lstm,
                rows=t + 1,
                means=torch.cat([state.means, rows[:, t : t + 1]], 1),
                samples=torch.cat([state.samples, rows[:, t : t + 1]], 1),
                prior_means=torch.cat([state.prior_means, prior_mean.unsqueeze(1)], 1),
                kept=t + 1,
            )
        return state

    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
        means: bool = False,
    ) -> torch.Tensor:
        """Generate n images row by row (each sampled row is fed back); returns the sampled rows [n, 784], or
        each row's Bernoulli means when ``means``.

        Raises:
            ValueError: ``y`` is given (the VRNN has no labels).
        """
        if y is not None:
            raise ValueError("the VRNN has no labels: y must be None.")
        state = self.start_generation(n)
        for _ in range(self.config.n_rows):
            state = self.generation_step(state, generator)
        out = state.means if means else state.samples
        return out.reshape(n, -1)
