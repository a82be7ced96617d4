"""The config dataclass of each model family: everything needed to rebuild a module, validated on
construction, with its JSON form (``to_dict``). Plain dataclasses: importing this module imports no torch and
no model, so a training recipe (``explorer_core.training.recipes``) can check an architecture without
building one. Each model module re-exports its config (``from explorer_core.models.vae import VAEConfig``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: the likelihoods of the VAE and the CVAE
LIKELIHOODS = ("continuous_bernoulli", "bernoulli")
#: the GMVAE's training estimators
ESTIMATORS = ("marginal", "gumbel")


class MLPConfig:
    """What a model's config dataclass with MLP widths ``hidden`` (a tuple) shares: the check of the widths
    and its JSON form."""

    def _check_hidden(self) -> None:
        """Store ``hidden`` as a tuple of ints (through ``object.__setattr__``: the configs are frozen) and
        check it; each config's ``__post_init__`` calls this.

        Raises:
            ValueError: no hidden layer, or a width outside 1..8192.
        """
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if not self.hidden or not all(1 <= h <= 8192 for h in self.hidden):
            raise ValueError(f"hidden sizes must be in 1..8192, got {self.hidden}.")

    def to_dict(self) -> dict:
        """JSON-ready data (``hidden`` as a list): what ``artifacts`` writes as the model's config."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


@dataclass(frozen=True)
class VAEConfig(MLPConfig):
    """Everything needed to rebuild a :class:`VAE` or :class:`CVAE`.

    Attributes:
        latent_dim: L.
        hidden: widths of the hidden layers of both MLPs (the paper: 500, 500).
        dropout: dropout probability after each hidden layer (the paper: 0.1).
        likelihood: ``"continuous_bernoulli"`` (dequantized data) or ``"bernoulli"`` (binarized data).
        data_dim: pixels per image.
        n_classes: label classes (used by the CVAE only).
    """

    latent_dim: int = 20
    hidden: tuple[int, ...] = (500, 500)
    dropout: float = 0.1
    likelihood: str = "continuous_bernoulli"
    data_dim: int = 784
    n_classes: int = 10

    def __post_init__(self) -> None:
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}.")
        if not 1 <= self.latent_dim <= 1024:
            raise ValueError(f"latent_dim must be in 1..1024, got {self.latent_dim}.")
        self._check_hidden()
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")


@dataclass(frozen=True)
class GMVAEConfig(MLPConfig):
    """Everything needed to rebuild a :class:`GMVAE`.

    Attributes:
        n_clusters: C, the number of mixture components (the paper: 10).
        latent_dim: L (the paper: 64).
        hidden: widths of the hidden layers of every MLP (the paper: 512, 512).
        estimator: the training estimator, ``"marginal"`` or ``"gumbel"``.
        temperature: tau of the relaxed categorical (gumbel only; the trainer may anneal it).
        straight_through: gumbel only; forward with the hard one-hot, backward through the relaxed sample.
        data_dim: pixels per image.
        likelihood: always ``"bernoulli"`` (binary images).
    """

    n_clusters: int = 10
    latent_dim: int = 64
    hidden: tuple[int, ...] = (512, 512)
    estimator: str = "marginal"
    temperature: float = 1.0
    straight_through: bool = False
    data_dim: int = 784
    likelihood: str = "bernoulli"

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}.")
        if self.likelihood != "bernoulli":
            raise ValueError("the GMVAE has a Bernoulli likelihood (binarized images).")
        if not 2 <= self.n_clusters <= 100:
            raise ValueError(f"n_clusters must be in 2..100, got {self.n_clusters}.")
        if not 1 <= self.latent_dim <= 1024:
            raise ValueError(f"latent_dim must be in 1..1024, got {self.latent_dim}.")
        self._check_hidden()
        if not 0.01 <= self.temperature <= 100:
            raise ValueError(f"temperature must be in [0.01, 100], got {self.temperature}.")


@dataclass(frozen=True)
class VRNNConfig(MLPConfig):
    """Everything needed to rebuild a :class:`VRNN`.

    Attributes:
        n_rows, row_dim: T and the width of a row (28 x 28 for MNIST).
        latent_dim: L, the size of each z_t (the paper: 2).
        rnn_hidden, rnn_layers: the LSTM (the paper: 256, 2).
        hidden: hidden widths of the prior, posterior and decoder MLPs (the paper: 500, 500).
        likelihood: always ``"bernoulli"``.
    """

    n_rows: int = 28
    row_dim: int = 28
    latent_dim: int = 2
    rnn_hidden: int = 256
    rnn_layers: int = 2
    hidden: tuple[int, ...] = (500, 500)
    likelihood: str = "bernoulli"

    def __post_init__(self) -> None:
        if self.likelihood != "bernoulli":
            raise ValueError("the VRNN has a Bernoulli likelihood (binarized images).")
        for name, value, hi in (
            ("n_rows", self.n_rows, 1024),
            ("row_dim", self.row_dim, 4096),
            ("latent_dim", self.latent_dim, 256),
            ("rnn_hidden", self.rnn_hidden, 4096),
            ("rnn_layers", self.rnn_layers, 8),
        ):
            if not 1 <= int(value) <= hi:
                raise ValueError(f"{name} must be in 1..{hi}, got {value}.")
        self._check_hidden()

    @property
    def data_dim(self) -> int:
        """Pixels per image (T * row width)."""
        return self.n_rows * self.row_dim
