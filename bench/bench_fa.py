"""Factor-analysis page: server time of one gradient step (step + test metrics) and of one frame's figures."""

import torch
from common import summary, time_ms, write_result

from explorer_core.data import make_fa_dataset
from explorer_core.device import limit_cpu_threads
from explorer_core.explore.fa import FAExperiment
from explorer_core.figures.fa import fa_learning_curves, fa_scatter_3d, posterior_ellipses


def main() -> None:
    limit_cpu_threads(1)  # as the page does
    experiment = FAExperiment(make_fa_dataset())
    experiment.run("joint", 2000)
    step = summary(time_ms(lambda: experiment.run("joint", 1), repeat=500))
    x = experiment.dataset.x_test.numpy()

    def frame() -> None:
        h = experiment.history
        for fig in (
            fa_scatter_3d(x, experiment.model_samples(len(x)), highlight=x[0]),
            fa_learning_curves(
                h.elbo,
                h.evidence,
                h.gap,
                h.phase_segments(),
                experiment.true_evidence,
                experiment.mle_evidence,
            ),
            posterior_ellipses(**experiment.posteriors_of(0)),
        ):
            fig.to_json()

    figures = summary(time_ms(frame, repeat=40))
    write_result(
        "fa",
        {
            "what": "FA page, server side: one AEVB step with its test metrics (ELBO, exact evidence, exact "
            "gap on 1000 points); one frame's three figures built and serialised (history of 2500 steps)",
            "torch_threads": torch.get_num_threads(),
            "step": step,
            "frame_figures": figures,
        },
    )


if __name__ == "__main__":
    main()
