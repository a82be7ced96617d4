// AEVB Explorer, published page: the networks the browser runs.
//
// A model's data (models/<name>.js, written by explorer_core/publish/export.py) holds each network as its
// Linear layers, float32 little-endian in base64: {w [n_out * n_in] row-major, b [n_out], n_in, n_out, act}.
// Every layer computes act(W h + b) with float32 weights and float64 sums (JavaScript's numbers), as
// export.run_layers does in Python; the tests (tests/unit/test_publish_nets.py) compare these functions with
// torch on the same weights. Densities follow the models (explorer_core/models/): a Gaussian head's sigma is
// softplus(.) + min_std; pixels are Bernoulli or Continuous Bernoulli with lambda = sigmoid(logit).
// Plain script (no module): it works from file://, in Node (module.exports) and in the browser (AEVBNets).
(function (root) {
  "use strict";

  function bytesOf(b64) {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function f32(b64) {
    return new Float32Array(bytesOf(b64).buffer);
  }
  function u8(b64) {
    return bytesOf(b64);
  }

  function layer(l) {
    return { w: f32(l.w), b: f32(l.b), nIn: l.n_in, nOut: l.n_out, relu: l.act === "relu" };
  }
  function layers(list) {
    return list.map(layer);
  }
  function headOf(h) {
    return { mu: layer(h.mu), sigma: layer(h.sigma) };
  }

  // act(W h + b) for one layer; h: any array of numbers of length nIn
  function dense(l, h) {
    const out = new Float64Array(l.nOut);
    const w = l.w;
    const nIn = l.nIn;
    for (let o = 0; o < l.nOut; o++) {
      let acc = l.b[o];
      const row = o * nIn;
      for (let q = 0; q < nIn; q++) acc += w[row + q] * h[q];
      out[o] = l.relu && acc < 0 ? 0 : acc;
    }
    return out;
  }
  // the first layer on a sparse input: only the nonzero entries of h count (drawings and binary rows are
  // mostly zero); the same sum, in the same order
  function denseSparse(l, h) {
    const idx = [];
    for (let q = 0; q < l.nIn; q++) if (h[q] !== 0) idx.push(q);
    const out = new Float64Array(l.nOut);
    for (let o = 0; o < l.nOut; o++) {
      let acc = l.b[o];
      const row = o * l.nIn;
      for (let j = 0; j < idx.length; j++) acc += l.w[row + idx[j]] * h[idx[j]];
      out[o] = l.relu && acc < 0 ? 0 : acc;
    }
    return out;
  }
  function run(list, h) {
    let x = h;
    list.forEach((l, i) => {
      x = i === 0 ? denseSparse(l, x) : dense(l, x);
    });
    return x;
  }

  // torch.nn.functional.softplus (beta 1, threshold 20)
  function softplus(a) {
    return a > 20 ? a : Math.log1p(Math.exp(a));
  }
  function gaussian(head, h, minStd) {
    const mu = dense(head.mu, h);
    const s = dense(head.sigma, h);
    const sigma = new Float64Array(s.length);
    for (let i = 0; i < s.length; i++) sigma[i] = softplus(s[i]) + minStd;
    return { mu, sigma };
  }
  function sigmoid(a) {
    return a >= 0 ? 1 / (1 + Math.exp(-a)) : Math.exp(a) / (1 + Math.exp(a));
  }
  // E[x] of a Continuous Bernoulli with logit a (torch's ContinuousBernoulli.mean, in float64: probabilities
  // clamped to [eps, 1 - eps], the Taylor expansion within 0.001 of 1/2)
  const EPS64 = 2.220446049250313e-16;
  function cbMean(a) {
    let p = sigmoid(a);
    p = Math.min(Math.max(p, EPS64), 1 - EPS64);
    if (p > 0.499 && p < 0.501) {
      const x = p - 0.5;
      return 0.5 + (1 / 3 + (16 / 45) * x * x) * x;
    }
    return p / (2 * p - 1) + 1 / (Math.log1p(-p) - Math.log(p));
  }
  // pixel values in [0, 1] of logits: "lambda" (the distribution's parameter) or "mean" (E[x|z])
  function pixels(logits, view, likelihood) {
    const out = new Float64Array(logits.length);
    const cb = view === "mean" && likelihood === "continuous_bernoulli";
    for (let i = 0; i < logits.length; i++) {
      const v = cb ? cbMean(logits[i]) : sigmoid(logits[i]);
      out[i] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
    return out;
  }
  function oneHot(k, n) {
    const out = new Float64Array(n);
    if (k >= 0 && k < n) out[k] = 1;
    return out;
  }
  function concat(a, b) {
    const out = new Float64Array(a.length + b.length);
    out.set(a, 0);
    out.set(b, a.length);
    return out;
  }

  // A seeded generator (mulberry32) with standard normals (Box-Muller): the page's samples are the same
  // for the same seed on every device (not torch's numbers: the browser has no torch generator).
  function rng(seed) {
    let s = seed >>> 0;
    let spare = null;
    const uniform = () => {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = s;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const normal = () => {
      if (spare !== null) {
        const v = spare;
        spare = null;
        return v;
      }
      let u = 0;
      while (u === 0) u = uniform();
      const r = Math.sqrt(-2 * Math.log(u));
      const th = 2 * Math.PI * uniform();
      spare = r * Math.sin(th);
      return r * Math.cos(th);
    };
    return { uniform, normal };
  }

  // ------------------------------------------------------------------------------ VAE and CVAE
  function latentModel(d) {
    const nets = {
      encoder: layers(d.nets.encoder),
      head: headOf(d.nets.encoder_head),
      decoder: layers(d.nets.decoder),
    };
    const L = d.latent_dim;
    const C = d.n_classes;
    const m = {
      data: d,
      L,
      conditional: d.conditional,
      // q(z|x) (the CVAE: q(z|x, y)) for a preprocessed image x [784]: {mu [L], sigma [L]}
      encode(x, y) {
        const input = d.conditional ? concat(x, oneHot(y, C)) : x;
        return gaussian(nets.head, run(nets.encoder, input), d.min_std);
      },
      // the decoder's logits [784] at z [L] (the CVAE: under label y)
      logits(z, y) {
        const input = d.conditional ? concat(oneHot(y, C), z) : z;
        return run(nets.decoder, input);
      },
      decode(z, y, view) {
        return pixels(m.logits(z, y), view, d.likelihood);
      },
    };
    if (d.prior) {
      const mu = f32(d.prior.mu);
      const sigma = f32(d.prior.sigma);
      m.prior = (y) => ({ mu: mu.subarray(y * L, (y + 1) * L), sigma: sigma.subarray(y * L, (y + 1) * L) });
    }
    const map = d.map;
    const centre = f32(map.centre);
    const basis = f32(map.basis);
    m.map = {
      centre,
      basis,
      u: f32(map.u),
      v: f32(map.v),
      labels: u8(map.labels),
      n: map.n,
      bounds: map.bounds,
      explained: map.explained,
    };
    // z = centre + u e1 + v e2
    m.planeToZ = (u, v) => {
      const z = new Float64Array(L);
      for (let i = 0; i < L; i++) z[i] = centre[i] + u * basis[i] + v * basis[L + i];
      return z;
    };
    m.zToPlane = (z) => {
      let u = 0;
      let v = 0;
      for (let i = 0; i < L; i++) {
        u += (z[i] - centre[i]) * basis[i];
        v += (z[i] - centre[i]) * basis[L + i];
      }
      return [u, v];
    };
    // N(mu, diag sigma^2) on the plane: [[cuu, cuv], [cuv, cvv]]
    m.planeCov = (sigma) => {
      let a = 0;
      let b = 0;
      let c = 0;
      for (let i = 0; i < L; i++) {
        const s2 = sigma[i] * sigma[i];
        a += basis[i] * basis[i] * s2;
        b += basis[i] * basis[L + i] * s2;
        c += basis[L + i] * basis[L + i] * s2;
      }
      return [
        [a, b],
        [b, c],
      ];
    };
    return m;
  }

  // ------------------------------------------------------------------------------ GMVAE
  function mixtureModel(d) {
    const nets = {
      qy: layers(d.nets.qy),
      qz: layers(d.nets.qz),
      head: headOf(d.nets.qz_head),
      decoder: layers(d.nets.decoder),
    };
    const L = d.latent_dim;
    const C = d.n_clusters;
    const pmu = f32(d.prior.mu);
    const psig = f32(d.prior.sigma);
    const m = {
      data: d,
      L,
      C,
      // q(y|x): probabilities [C]
      qy(x) {
        const logits = run(nets.qy, x);
        let top = -Infinity;
        for (const a of logits) top = Math.max(top, a);
        const p = new Float64Array(C);
        let sum = 0;
        for (let c = 0; c < C; c++) sum += p[c] = Math.exp(logits[c] - top);
        for (let c = 0; c < C; c++) p[c] /= sum;
        return p;
      },
      // q(z|x, y=c): {mu, sigma}
      qz(x, c) {
        return gaussian(nets.head, run(nets.qz, concat(x, oneHot(c, C))), d.min_std);
      },
      prior(c) {
        return { mu: pmu.subarray(c * L, (c + 1) * L), sigma: psig.subarray(c * L, (c + 1) * L) };
      },
      // Bernoulli means lambda(z) [784]
      decode(z) {
        return pixels(run(nets.decoder, z), "lambda", "bernoulli");
      },
      // z = mu(c) + spread * sigma(c) * eps, eps from the generator
      sampleZ(c, spread, gen) {
        const p = m.prior(c);
        const z = new Float64Array(L);
        for (let i = 0; i < L; i++) z[i] = p.mu[i] + spread * p.sigma[i] * gen.normal();
        return z;
      },
    };
    return m;
  }

  // ------------------------------------------------------------------------------ VRNN
  function lstmLayer(l) {
    return {
      wih: f32(l.w_ih),
      whh: f32(l.w_hh),
      bih: f32(l.b_ih),
      bhh: f32(l.b_hh),
      nIn: l.n_in,
      H: l.n_hidden,
    };
  }
  // one step of torch's LSTM layer (gates i, f, g, o): returns [h', c']
  function lstmStep(l, x, h, c) {
    const H = l.H;
    const gates = new Float64Array(4 * H);
    for (let r = 0; r < 4 * H; r++) {
      let acc = l.bih[r] + l.bhh[r];
      const ri = r * l.nIn;
      for (let q = 0; q < l.nIn; q++) if (x[q] !== 0) acc += l.wih[ri + q] * x[q];
      const rh = r * H;
      for (let q = 0; q < H; q++) acc += l.whh[rh + q] * h[q];
      gates[r] = acc;
    }
    const h2 = new Float64Array(H);
    const c2 = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      const i = sigmoid(gates[j]);
      const f = sigmoid(gates[H + j]);
      const g = Math.tanh(gates[2 * H + j]);
      const o = sigmoid(gates[3 * H + j]);
      c2[j] = f * c[j] + i * g;
      h2[j] = o * Math.tanh(c2[j]);
    }
    return [h2, c2];
  }

  function sequenceModel(d) {
    const nets = {
      lstm: d.nets.lstm.map(lstmLayer),
      prior: layers(d.nets.prior),
      priorHead: headOf(d.nets.prior_head),
      posterior: layers(d.nets.posterior),
      posteriorHead: headOf(d.nets.posterior_head),
      decoder: layers(d.nets.decoder),
    };
    const H = d.rnn_hidden;
    const W = d.row_dim;
    const m = {
      data: d,
      T: d.n_rows,
      W,
      L: d.latent_dim,
      // h_1 = 0, no LSTM state yet (zeros, as torch's default)
      start() {
        return {
          h: new Float64Array(H),
          hs: nets.lstm.map(() => new Float64Array(H)),
          cs: nets.lstm.map(() => new Float64Array(H)),
          rows: [],
          means: [],
          priorMeans: [],
          kept: 0,
        };
      },
      rowPrior(h) {
        return gaussian(nets.priorHead, run(nets.prior, h), d.min_std);
      },
      rowPosterior(h, xRow) {
        return gaussian(nets.posteriorHead, run(nets.posterior, concat(h, xRow)), d.min_std);
      },
      // Bernoulli means [W] of p(x_t | h_t, z_t)
      rowMeans(h, z) {
        return pixels(run(nets.decoder, concat(h, z)), "lambda", "bernoulli");
      },
      // the LSTM reads [x_t, z_t]: the next h (top layer) and the new state
      advance(state, xRow, z) {
        let input = concat(xRow, z);
        const hs = [];
        const cs = [];
        nets.lstm.forEach((l, k) => {
          const [h2, c2] = lstmStep(l, input, state.hs[k], state.cs[k]);
          hs.push(h2);
          cs.push(c2);
          input = h2;
        });
        return { h: input, hs, cs };
      },
      // the next row: z_t ~ p(z_t|h_t), x_t ~ p(x_t|h_t, z_t), the sampled row fed back (as the model does)
      step(state, gen) {
        const p = m.rowPrior(state.h);
        const z = new Float64Array(p.mu.length);
        for (let i = 0; i < z.length; i++) z[i] = p.mu[i] + p.sigma[i] * gen.normal();
        const mean = m.rowMeans(state.h, z);
        const row = new Float64Array(W);
        for (let i = 0; i < W; i++) row[i] = gen.uniform() < mean[i] ? 1 : 0;
        const next = m.advance(state, row, z);
        return {
          ...next,
          rows: [...state.rows, row],
          means: [...state.means, mean],
          priorMeans: [...state.priorMeans, p.mu],
          kept: state.kept,
        };
      },
      // the first k rows of a binary image x [T * W] kept, each z_t ~ q(z_t|h_t, x_t) (completion)
      startCompletion(x, k, gen) {
        let state = m.start();
        for (let t = 0; t < k; t++) {
          const row = Float64Array.from(x.slice(t * W, (t + 1) * W));
          const q = m.rowPosterior(state.h, row);
          const z = new Float64Array(q.mu.length);
          for (let i = 0; i < z.length; i++) z[i] = q.mu[i] + q.sigma[i] * gen.normal();
          const prior = m.rowPrior(state.h);
          const next = m.advance(state, row, z);
          state = {
            ...next,
            rows: [...state.rows, row],
            means: [...state.means, row],
            priorMeans: [...state.priorMeans, prior.mu],
            kept: t + 1,
          };
        }
        return state;
      },
    };
    return m;
  }

  const BUILD = { latent: latentModel, mixture: mixtureModel, sequence: sequenceModel };
  function build(d) {
    const make = BUILD[d.kind];
    if (!make) throw new Error(`no page for a model of kind ${d.kind}`);
    return make(d);
  }

  const api = { build, rng, f32, u8, dense, run, gaussian, softplus, sigmoid, cbMean, pixels, lstmStep };
  root.AEVBNets = api;
  if (typeof module === "object" && module.exports) module.exports = api;
})(typeof window !== "undefined" ? window : globalThis);
