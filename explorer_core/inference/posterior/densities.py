"""One image's inputs and densities for the posterior modules: the image and label as the model takes
them, q_phi(z|x) as one full-covariance Gaussian, log p(x, z) on many latents, standard-normal noise.
Every density is the model's own ``torch.distributions`` object (``decode``, ``prior``, ``encode``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.distributions import Independent, MultivariateNormal, Normal

from explorer_core.models.base import LatentVariableModel


class PosteriorError(ValueError):
    """The model, image or label cannot be used here (message says why)."""


def _one_image(
    model: LatentVariableModel, x: torch.Tensor, y: torch.Tensor | int | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """x as [1, D] on the model's device and dtype, y as int64 [1] (or None)."""
    try:
        reference = next(model.parameters())
    except StopIteration:  # a parameter-free model
        reference = torch.zeros((), dtype=x.dtype, device=x.device)
    x = x.to(reference)
    if x.dim() == 1:
        x = x.unsqueeze(0)
    if x.dim() != 2 or x.shape[0] != 1:
        raise PosteriorError(f"one image at a time: x must be [D] or [1, D], got {tuple(x.shape)}.")
    if not torch.isfinite(x).all():
        raise PosteriorError("the image has NaN or infinite pixels.")
    conditional = bool(getattr(model, "conditional", False))
    if y is None:
        if conditional:
            raise PosteriorError("this model is conditional: give the image's label y.")
        return x, None
    if not conditional:
        return x, None  # an unconditional model ignores labels
    y = torch.as_tensor(y, dtype=torch.long, device=x.device).reshape(-1)[:1]
    return x, y


def _amortized_q(model: LatentVariableModel, x: torch.Tensor, y: torch.Tensor | None) -> MultivariateNormal:
    """q_phi(z|x) for one image as a full-covariance ``MultivariateNormal`` (float64), event [L].

    Raises:
        PosteriorError: ``encode`` does not give a Gaussian over one latent vector.
    """
    with torch.no_grad():
        q = model.encode(x, y)
    if not isinstance(q, torch.distributions.Distribution) or q.batch_shape.numel() != 1:
        raise PosteriorError(
            f"{type(model).__name__}: q(z|x) of one image is not one Gaussian (batch shape "
            f"{tuple(getattr(q, 'batch_shape', ()))}): the posterior view needs a VAE or a CVAE."
        )
    prior = model.prior(y)
    if prior.batch_shape.numel() != 1 or prior.event_shape != q.event_shape:
        raise PosteriorError(
            f"{type(model).__name__}: its prior is not one distribution over q(z|x)'s latent (batch shape "
            f"{tuple(prior.batch_shape)}): the posterior view needs a VAE or a CVAE."
        )
    if isinstance(q, MultivariateNormal):
        L = q.event_shape[0]
        mean, cov = q.mean.reshape(-1, L)[0], q.covariance_matrix.reshape(-1, L, L)[0]
    elif isinstance(q, Independent) and isinstance(q.base_dist, Normal) and len(q.event_shape) == 1:
        mean = q.mean.reshape(-1, q.event_shape[0])[0]
        cov = torch.diag(q.variance.reshape(-1, q.event_shape[0])[0])
    else:
        raise PosteriorError(
            f"{type(model).__name__}: q(z|x) is a {type(q).__name__}, not a Gaussian over one latent vector "
            "(the posterior view needs a VAE or a CVAE)."
        )
    return _gaussian(mean.double().cpu(), cov.double().cpu())


def check_model(model: LatentVariableModel) -> int:
    """The latent dimension L of a model this module can use (its q(z|x) of one image is one Gaussian and
    its prior one distribution over the same latent: the VAE and the CVAE).

    Raises:
        PosteriorError: any other model (the message says why).
    """
    config = getattr(model, "config", None)
    data_dim = int(getattr(config, "data_dim", 784))
    x, y = _one_image(model, torch.zeros(1, data_dim), 0)
    try:
        return _amortized_q(model, x, y).event_shape[0]
    except (TypeError, ValueError, RuntimeError, AttributeError, IndexError) as err:
        if isinstance(err, PosteriorError):
            raise
        raise PosteriorError(
            f"{type(model).__name__}: not a model with one Gaussian q(z|x) ({err})."
        ) from err


def _gaussian(mean: torch.Tensor, cov: torch.Tensor) -> MultivariateNormal:
    return MultivariateNormal(mean, covariance_matrix=cov, validate_args=False)


def log_joint(
    model: LatentVariableModel,
    x: torch.Tensor,
    z: torch.Tensor,
    y: torch.Tensor | None = None,
    chunk: int = 4096,
) -> torch.Tensor:
    """log p(x|z) + log p(z) (the CVAE: log p(x|z, y) + log p(z|y)) for one image and many z.

    Args:
        model: a model with ``decode(z, y)`` and ``prior(y)`` (``torch.distributions`` objects).
        x: the image, [1, D] (as :func:`_one_image` gives it).
        z: latents [N, L], any dtype (cast to the model's); gradients flow through when z requires them.
        y: int64 [1] label of a conditional model, else None.
        chunk: decoder calls per batch (memory: chunk x D floats per temporary).

    Returns:
        [N], nats, in the model's dtype.
    """
    prior = model.prior(y)
    z = z.to(x)
    parts = []
    for part in z.split(chunk):
        y_k = None if y is None else y.expand(len(part))
        parts.append(model.decode(part, y_k).log_prob(x) + prior.log_prob(part))
    return torch.cat(parts)


def _noise(shape: Sequence[int], generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(*shape, generator=generator, dtype=torch.float32)
