"""Factor-analysis page: server time of one gradient step (step + test metrics) and of one frame's figures."""

import json

import torch
from common import summary, time_ms, write_result

from explorer_core.data import make_fa_dataset
from explorer_core.device import limit_cpu_threads
from explorer_core.explore.fa import FAExperiment
from explorer_core.figures.fa import fa_curves_chart, fa_ellipses_chart


def main() -> None:
    limit_cpu_threads(1)  # as the page does
    experiment = FAExperiment(make_fa_dataset())
    experiment.run("joint", 2000)
    step = summary(time_ms(lambda: experiment.run("joint", 1), repeat=500))
    x = experiment.dataset.x_test.numpy()

    def frame() -> None:
        # what one frame of the page computes and sends: the model samples of the 3-D scatter and the two
        # live-chart specs, serialised
        h = experiment.history
        payload = {
            "samples": experiment.model_samples(len(x)).round(3).tolist(),
            "curves": fa_curves_chart(
                h.elbo,
                h.evidence,
                h.gap,
                h.phase_segments(),
                experiment.true_evidence,
                experiment.mle_evidence,
            ),
            "posteriors": fa_ellipses_chart(**experiment.posteriors_of(0)),
        }
        json.dumps(payload)

    figures = summary(time_ms(frame, repeat=40))
    write_result(
        "fa",
        {
            "what": "FA page, server side: one AEVB step with its test metrics (ELBO, exact evidence, exact "
            "gap on 1000 points); one frame's data built and serialised (the scatter's model samples and "
            "the two live-chart specs; history of 2500 steps)",
            "torch_threads": torch.get_num_threads(),
            "step": step,
            "frame_figures": figures,
        },
    )


if __name__ == "__main__":
    main()
