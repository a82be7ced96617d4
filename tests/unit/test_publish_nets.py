"""The published page's networks (explorer_core/publish/site/nets.js, run in Node) agree with torch on the
weights as published: 100 random inputs per shipped model, within 1e-4 (issue 35).

Two references: the model as the app runs it (float32 torch), and the same model in float64 (the page sums in
float64, and the Continuous Bernoulli's mean is computed in float64 as the app's pad tables are: torch's
float32 mean loses precision near lambda = 1/2 and clamps lambda at float32's epsilon).
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer_core.artifacts import load_model
from explorer_core.data import MNISTUnavailable, load_mnist_splits
from explorer_core.paths import PRETRAINED_DIR
from explorer_core.publish import build_site
from explorer_core.publish.site import write_site

HARNESS = Path(__file__).with_name("publish_harness.js")
NODE = shutil.which("node")
#: the models `make publish` ships
MODELS = ("vae-cb-l2", "cvae-cb-l2", "vae-cb-l20", "cvae-cb-l20", "gmvae-marginal", "vrnn")
N = 100
TOL = 1e-4
#: rows of the VRNN's teacher-forced pass compared per input
VRNN_ROWS = 6


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if NODE is None:
        pytest.skip("not on this machine: no node to run the page's JavaScript")
    missing = [m for m in MODELS if not (PRETRAINED_DIR / f"{m}.json").is_file()]
    if missing:
        pytest.skip(f"shipped models missing: {missing}")
    try:
        load_mnist_splits(n_validation=0)
    except MNISTUnavailable as err:
        pytest.skip(f"MNIST missing: {err}")
    out = tmp_path_factory.mktemp("site")
    write_site(build_site(MODELS), out)
    return out


def run_js(site: Path, name: str, inputs: dict, tmp_path: Path) -> dict:
    """The harness's outputs for ``inputs`` (lists), as a dict of lists."""
    src, dst = tmp_path / f"{name}-in.json", tmp_path / f"{name}-out.json"
    src.write_text(json.dumps(inputs))
    subprocess.run([NODE, str(HARNESS), str(site), name, str(src), str(dst)], check=True, timeout=300)
    return json.loads(dst.read_text())


def worst(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def random_images(gen: torch.Generator, binary: bool) -> torch.Tensor:
    """N images [N, 784]: about a fifth of the pixels on (like a digit), binary or in (0, 1)."""
    on = torch.rand(N, 784, generator=gen) < 0.2
    if binary:
        return on.float()
    return torch.where(on, torch.rand(N, 784, generator=gen), torch.rand(N, 784, generator=gen) / 256)


@pytest.mark.parametrize("name", [m for m in MODELS if "vae-" in m and not m.startswith("gmvae")])
def test_latent_nets_agree_with_torch(site, name, tmp_path):
    loaded = load_model(name)
    model = loaded.model
    m64 = copy.deepcopy(model).double()
    gen = torch.Generator().manual_seed(35)
    x = random_images(gen, binary=loaded.meta.get("preprocessing") != "dequantized")
    y = torch.randint(0, 10, (N,), generator=gen)
    z = 2 * torch.randn(N, model.config.latent_dim, generator=gen)
    yy = y if model.conditional else None
    out = run_js(site, name, {"x": x.tolist(), "y": y.tolist(), "z": z.tolist()}, tmp_path)
    with torch.inference_mode():
        q = model.encode(x, yy)
        q64 = m64.encode(x.double(), yy)
        lam = torch.sigmoid(model.decoder_logits(z, yy))
        mean64 = m64.decode(z.double(), yy).mean
    js_mu = [e[0] for e in out["encode"]]
    js_sigma = [e[1] for e in out["encode"]]
    errors = {
        "mu": worst(js_mu, q.mean),
        "sigma": worst(js_sigma, q.stddev),
        "lambda": worst(out["lambda"], lam),
        "mu (float64)": worst(js_mu, q64.mean),
        "mean (float64)": worst(out["mean"], mean64.clamp(0, 1)),
    }
    print(name, errors)  # the measured agreement (pytest -s shows it)
    assert max(errors.values()) < TOL, errors


def test_mixture_nets_agree_with_torch(site, tmp_path):
    loaded = load_model("gmvae-marginal")
    model = loaded.model
    gen = torch.Generator().manual_seed(36)
    x = random_images(gen, binary=True)
    c = torch.randint(0, model.config.n_clusters, (N,), generator=gen)
    with torch.inference_mode():
        prior = model.prior(c)
        z = prior.mean + prior.stddev * torch.randn(prior.mean.shape, generator=gen)
    out = run_js(site, "gmvae-marginal", {"x": x.tolist(), "c": c.tolist(), "z": z.tolist()}, tmp_path)
    with torch.inference_mode():
        qy = model.cluster_posterior(x).probs
        qz = model.encode(x, c)
        px = model.decode(z).mean
    errors = {
        "q(y|x)": worst(out["qy"], qy),
        "mu": worst([e[0] for e in out["qz"]], qz.mean),
        "sigma": worst([e[1] for e in out["qz"]], qz.stddev),
        "decoder": worst(out["decode"], px),
    }
    print("gmvae-marginal", errors)
    assert max(errors.values()) < TOL, errors


def test_sequence_nets_agree_with_torch(site, tmp_path):
    loaded = load_model("vrnn")
    model = loaded.model
    c = model.config
    gen = torch.Generator().manual_seed(37)
    x = random_images(gen, binary=True)
    eps = torch.randn(N, VRNN_ROWS, c.latent_dim, generator=gen)
    out = run_js(site, "vrnn", {"x": x.tolist(), "eps": eps.tolist(), "rows": VRNN_ROWS}, tmp_path)
    rows = model.rows_of(x)
    names = ("prior mu", "prior sigma", "posterior mu", "posterior sigma", "row means")
    errors = dict.fromkeys(names, 0.0)
    with torch.inference_mode():
        h = torch.zeros(N, c.rnn_hidden)
        state = None
        for t in range(VRNN_ROWS):
            prior = model.row_prior(h)
            q = model.row_posterior(h, rows[:, t])
            z = q.mean + q.stddev * eps[:, t]
            means = model.row_likelihood(h, z).mean
            torch_terms = (prior.mean, prior.stddev, q.mean, q.stddev, means)
            for k, (label, ref) in enumerate(zip(names, torch_terms, strict=True)):
                js = [out["rows"][i][t][k] for i in range(N)]
                errors[label] = max(errors[label], worst(js, ref))
            h, state = model._advance(rows[:, t], z, state)
    print("vrnn", errors)
    assert max(errors.values()) < TOL, errors
