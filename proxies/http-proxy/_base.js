// Base frame for every ssegate node-http-proxy hop: `node {config}` runs this file. A plain Node
// http.createServer on 127.0.0.1 hands every request to http-proxy's createProxyServer in front of the
// origin, the way a hand-written Node gateway or a dev-server proxy does. ssegate fills in the
// double-brace placeholders and puts the profile's lines (proxies/http-proxy/<config>.js) at the
// {{config}} line below, where a profile may call `use(middleware)` to put connect-style middleware
// (req, res, next) in front of the proxy. Nothing here changes how http-proxy proxies: the frame only
// finds Debian's modules, listens on loopback and answers ssegate's readiness check.
'use strict';
// Debian installs node modules in /usr/share/nodejs, which a non-Debian node build does not search:
// add it as if NODE_PATH were set (argv cannot carry an environment).
process.env.NODE_PATH = ['/usr/share/nodejs', '/usr/lib/nodejs', process.env.NODE_PATH || '']
  .filter(Boolean).join(require('path').delimiter);
require('module').Module._initPaths();

const http = require('http');
const httpProxy = require('http-proxy');

const middleware = [];
function use(fn) { middleware.push(fn); }
const proxyOptions = { target: 'http://{{upstream}}' };

// -- profile ------------------------------------------------------------------------------------------
{{config}}
// ------------------------------------------------------------------------------------------------------

const proxy = httpProxy.createProxyServer(proxyOptions);
proxy.on('error', (err, req, res) => {
  process.stderr.write(`proxy error on ${req.url}: ${err.code || err.message}\n`);
  if (res.headersSent) { res.destroy(); return; }
  res.writeHead(502, { 'Content-Type': 'text/plain' });
  res.end('bad gateway\n');
});

const server = http.createServer((req, res) => {
  // ssegate's readiness check: this exact nonce proves that this node, not another process that raced
  // for the port, is answering.
  if (req.url === '/__ssegate_ready') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('{{nonce}}');
    return;
  }
  let i = 0;
  const next = (err) => {
    if (err) { res.statusCode = 500; res.end(); return; }
    const fn = middleware[i++];
    if (fn) fn(req, res, next); else proxy.web(req, res);
  };
  next();
});
server.listen({{port}}, '127.0.0.1', () => process.stderr.write(`listening on 127.0.0.1:{{port}}\n`));
