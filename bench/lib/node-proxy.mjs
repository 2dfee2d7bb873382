// Reference peer: the smallest sensible node:http reverse proxy (keep-alive to the upstream, Host
// check, streamed bodies). It is not Tollgate; it shows what Node's own HTTP stack costs on this
// machine, so a Tollgate figure can be read against "plain Node" as well as nginx and HAProxy.
// Usage: node node-proxy.mjs <listenPort> <upstreamPort> <host>
import http from 'node:http';

const [listenPort, upstreamPort, host] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 64 });

const server = http.createServer((req, res) => {
  const h = (req.headers.host ?? '').split(':')[0].toLowerCase();
  if (h !== host) {
    res.writeHead(404, { 'content-length': '0' });
    res.end();
    return;
  }
  const up = http.request({ host: '127.0.0.1', port: Number(upstreamPort), method: req.method, path: req.url, headers: req.headers, agent }, (ures) => {
    res.writeHead(ures.statusCode ?? 502, ures.headers);
    ures.pipe(res);
  });
  up.on('error', () => {
    if (!res.headersSent) res.writeHead(502, { 'content-length': '0' });
    res.end();
  });
  req.pipe(up);
});
server.keepAliveTimeout = 120_000;
server.listen(Number(listenPort), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
