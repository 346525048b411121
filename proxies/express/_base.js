// Base frame for every ssegate Express hop: `node {config}` runs this file. An Express 4 app on
// 127.0.0.1 that forwards every request to the origin by piping a plain http.request, as hand-written
// Express gateways do. ssegate fills in the double-brace placeholders and puts the profile's lines
// (proxies/express/<config>.js) at the {{config}} line below, where a profile may `app.use(...)`
// middleware that runs before the forwarding handler. Nothing here changes how the app answers: the
// frame only finds Debian's modules, listens on loopback and answers ssegate's readiness check.
'use strict';
// Debian installs node modules in /usr/share/nodejs, which a non-Debian node build does not search:
// add it as if NODE_PATH were set (argv cannot carry an environment).
process.env.NODE_PATH = ['/usr/share/nodejs', '/usr/lib/nodejs', process.env.NODE_PATH || '']
  .filter(Boolean).join(require('path').delimiter);
require('module').Module._initPaths();

const http = require('http');
const express = require('express');

const upstream = '{{upstream}}';
const [upstreamHost, upstreamPort] = [upstream.slice(0, upstream.lastIndexOf(':')),
  Number(upstream.slice(upstream.lastIndexOf(':') + 1))];
const app = express();

// ssegate's readiness check: this exact nonce proves that this node, not another process that raced for
// the port, is answering.
app.get('/__ssegate_ready', (req, res) => { res.type('text/plain').send('{{nonce}}'); });

// -- profile ------------------------------------------------------------------------------------------
{{config}}
// ------------------------------------------------------------------------------------------------------

app.use((req, res) => {
  const up = http.request({
    host: upstreamHost, port: upstreamPort, method: req.method, path: req.originalUrl,
    headers: req.headers,
  }, (ures) => {
    res.writeHead(ures.statusCode, ures.headers);
    ures.pipe(res);
  });
  up.on('error', (err) => {
    process.stderr.write(`upstream error on ${req.url}: ${err.code || err.message}\n`);
    if (res.headersSent) res.destroy(); else res.status(502).end('bad gateway\n');
  });
  res.on('close', () => up.destroy());
  req.pipe(up);
});

app.listen({{port}}, '127.0.0.1', () => process.stderr.write(`listening on 127.0.0.1:{{port}}\n`));
