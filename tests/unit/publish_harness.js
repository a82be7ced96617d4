// Runs a published model's networks (explorer_core/publish/site/nets.js) in Node on given inputs, for
// tests/unit/test_publish_nets.py. Usage: node publish_harness.js SITE_DIR MODEL_NAME INPUTS_JSON OUT_JSON
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");

const [site, name, inputsPath, outPath] = process.argv.slice(2);
globalThis.window = globalThis;
globalThis.atob = globalThis.atob || ((s) => Buffer.from(s, "base64").toString("binary"));
for (const file of ["nets.js", `models/${name}.js`]) {
  vm.runInThisContext(fs.readFileSync(path.join(site, file), "utf8"), { filename: file });
}
const nets = globalThis.AEVBNets;
const data = globalThis.AEVB_MODEL_DATA[name];
const m = nets.build(data);
const inputs = JSON.parse(fs.readFileSync(inputsPath, "utf8"));
const arr = (a) => Array.from(a);
const out = {};
const t0 = process.hrtime.bigint();
if (data.kind === "latent") {
  out.encode = inputs.x.map((x, i) => {
    const q = m.encode(Float64Array.from(x), inputs.y[i]);
    return [arr(q.mu), arr(q.sigma)];
  });
  out.lambda = inputs.z.map((z, i) => arr(m.decode(Float64Array.from(z), inputs.y[i], "lambda")));
  out.mean = inputs.z.map((z, i) => arr(m.decode(Float64Array.from(z), inputs.y[i], "mean")));
} else if (data.kind === "mixture") {
  out.qy = inputs.x.map((x) => arr(m.qy(Float64Array.from(x))));
  out.qz = inputs.x.map((x, i) => {
    const q = m.qz(Float64Array.from(x), inputs.c[i]);
    return [arr(q.mu), arr(q.sigma)];
  });
  out.decode = inputs.z.map((z) => arr(m.decode(Float64Array.from(z))));
} else {
  // teacher-forced rows with given noise: per row the prior and posterior of z_t and the row's means
  out.rows = inputs.x.map((x, i) => {
    let state = m.start();
    const rows = [];
    for (let t = 0; t < inputs.rows; t++) {
      const row = Float64Array.from(x.slice(t * m.W, (t + 1) * m.W));
      const prior = m.rowPrior(state.h);
      const q = m.rowPosterior(state.h, row);
      const eps = inputs.eps[i][t];
      const z = q.mu.map((mu, j) => mu + q.sigma[j] * eps[j]);
      const means = m.rowMeans(state.h, z);
      rows.push([arr(prior.mu), arr(prior.sigma), arr(q.mu), arr(q.sigma), arr(means)]);
      state = { ...state, ...m.advance(state, row, z) };
    }
    return rows;
  });
}
out.ms = Number(process.hrtime.bigint() - t0) / 1e6;
fs.writeFileSync(outPath, JSON.stringify(out));
