"""The AEVB training step, with the EM view's phase control (tutorial sections 3-5).

One step maximises the minibatch mean of the per-example ELBO estimator (Kingma & Welling 2014,
algorithm 1) by gradient ascent with Adam. Inference parameters phi and generative parameters theta have
separate optimizers, so a step can update

* ``joint``: phi and theta together (plain AEVB: tighten and push up the bound at once),
* ``e_step``: phi only, an approximate E-step (variational inference: tighten the bound; theta is
  untouched, bit for bit, and so is the evidence),
* ``m_step``: theta only, an approximate M-step (raise the bound with q fixed).

Every model family of the explorer trains through :func:`aevb_step`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import torch
from torch import nn

if TYPE_CHECKING:
    from explorer_core.models.base import LatentVariableModel

Phase = Literal["joint", "e_step", "m_step"]
PHASES: tuple[str, ...] = get_args(Phase)
MAX_LEARNING_RATE = 10.0


class NonFiniteError(FloatingPointError):
    """A training step produced a NaN or inf loss or gradient; no parameter was updated."""


#: copies of a model's parameters and of its optimizers' states (see :meth:`AEVBOptimizers.snapshot`)
Snapshot = tuple[list[torch.Tensor], list[tuple[torch.optim.Optimizer, dict]]]


@dataclass
class AEVBOptimizers:
    """One Adam optimizer for the inference parameters phi and one for the generative parameters theta."""

    inference: torch.optim.Optimizer | None
    generative: torch.optim.Optimizer | None

    def for_phase(self, phase: Phase) -> list[torch.optim.Optimizer]:
        """The optimizers a step of ``phase`` updates.

        Raises:
            ValueError: unknown phase.
        """
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}.")
        chosen = {
            "joint": [self.inference, self.generative],
            "e_step": [self.inference],
            "m_step": [self.generative],
        }[phase]
        return [opt for opt in chosen if opt is not None]

    def snapshot(
        self, model: nn.Module
    ) -> tuple[list[torch.Tensor], list[tuple[torch.optim.Optimizer, dict]]]:
        """Copies of ``model``'s parameters (in ``parameters()`` order) and of both optimizers' states (Adam's
        moments and step counts): what :meth:`restore` brings back, e.g. the last finite state after a NaN."""
        params = [p.detach().clone() for p in model.parameters()]
        states = [
            (
                opt,
                {
                    k: {n: (t.clone() if torch.is_tensor(t) else t) for n, t in v.items()}
                    for k, v in opt.state.items()
                },
            )
            for opt in (self.inference, self.generative)
            if opt is not None
        ]
        return params, states

    @staticmethod
    def restore(model: nn.Module, snapshot: Snapshot) -> None:
        """Put ``model``'s parameters and the optimizers' states back to a :meth:`snapshot`."""
        params, states = snapshot
        with torch.no_grad():
            for p, saved in zip(model.parameters(), params, strict=True):
                p.copy_(saved)
        for opt, state in states:
            opt.state.clear()
            opt.state.update(state)

    def set_learning_rate(self, lr: float) -> None:
        """Set the learning rate of both optimizers in place (Adam's moment estimates are kept).

        Raises:
            ValueError: lr outside (0, 10].
        """
        check_learning_rate(lr)
        for opt in (self.inference, self.generative):
            if opt is not None:
                for group in opt.param_groups:
                    group["lr"] = lr


def check_learning_rate(lr: float) -> float:
    """Return ``lr`` as a float if it is a usable learning rate.

    Raises:
        ValueError: lr is not a finite number in (0, 10].
    """
    lr = float(lr)
    if not (math.isfinite(lr) and 0.0 < lr <= MAX_LEARNING_RATE):
        raise ValueError(f"learning rate must be in (0, {MAX_LEARNING_RATE:g}], got {lr:g}.")
    return lr


def make_optimizers(model: LatentVariableModel, lr: float = 1e-2) -> AEVBOptimizers:
    """Adam for phi and Adam for theta, both with learning rate ``lr`` (tutorial: 1e-2 for FA).

    A group with no trainable parameter (for example phi is empty for some posterior families) gets
    ``None``.

    Raises:
        ValueError: lr outside (0, 10].
    """
    lr = check_learning_rate(lr)
    phi = [p for p in model.inference_parameters() if p.requires_grad]
    theta = [p for p in model.generative_parameters() if p.requires_grad]
    return AEVBOptimizers(
        inference=torch.optim.Adam(phi, lr=lr) if phi else None,
        generative=torch.optim.Adam(theta, lr=lr) if theta else None,
    )


def aevb_step(
    model: LatentVariableModel,
    optimizers: AEVBOptimizers,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    phase: Phase = "joint",
    n_samples: int = 1,
    max_grad_norm: float | None = None,
    kl_weight: float = 1.0,
) -> float:
    """One AEVB gradient step on a minibatch; returns the minibatch mean ELBO estimate (nats per example)
    measured before the update (the true ELBO, whatever ``kl_weight``).

    Gradients are computed only for the parameters the phase updates; the others are neither differentiated
    nor stepped, so an E-step leaves theta bit-identical and an M-step leaves phi bit-identical.
    Gradient clipping (``max_grad_norm``) happens before the optimizer step.

    Args:
        model: any :class:`LatentVariableModel`.
        optimizers: from :func:`make_optimizers`.
        x: minibatch [batch, ...] on the model's device; y: labels for conditional models.
        phase: ``"joint"``, ``"e_step"`` or ``"m_step"``.
        n_samples: reparameterised samples per example in the estimator.
        max_grad_norm: clip the global gradient norm to this value; ``None`` for no clipping.
        kl_weight: beta of the objective reconstruction - beta * KL that the step ascends (the beta-VAE of
            Higgins et al. 2017; a KL warm-up ramps it to 1); 1 is the ELBO itself. In [0, 100].

    Raises:
        ValueError: unknown phase, or a kl_weight out of range.
        NonFiniteError: the loss or the gradient is NaN or inf; the parameters and the optimizer
            states are left as they were before the call.
    """
    if not (isinstance(kl_weight, (int, float)) and 0.0 <= kl_weight <= 100.0):
        raise ValueError(f"kl_weight must be in [0, 100], got {kl_weight!r}.")
    active = optimizers.for_phase(phase)
    params = [p for opt in active for group in opt.param_groups for p in group["params"]]
    if not params:
        return float("nan")
    model.train()
    for opt in active:
        opt.zero_grad(set_to_none=True)
    if kl_weight == 1.0:
        elbo = model.elbo(x, y, n_samples=n_samples).mean()
        objective = elbo
    else:
        terms = model.elbo_terms(x, y, n_samples=n_samples)
        elbo = terms.elbo.mean()
        objective = (terms.reconstruction - kl_weight * terms.kl).mean()
    (-objective).backward(inputs=params)
    if max_grad_norm is not None:
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    else:
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    elbo_value, norm_value = (float(v) for v in torch.stack([elbo.detach(), grad_norm]).cpu())
    if not (math.isfinite(elbo_value) and math.isfinite(norm_value)):
        for opt in active:
            opt.zero_grad(set_to_none=True)
        what = "ELBO" if not math.isfinite(elbo_value) else "gradient norm"
        raise NonFiniteError(
            f"The {what} became {elbo_value if what == 'ELBO' else norm_value} in a {phase} step; "
            "the step was not applied. Try a smaller learning rate."
        )
    for opt in active:
        opt.step()
    return elbo_value
