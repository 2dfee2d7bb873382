// Reference peer for L4: the smallest sensible Node TCP relay. Each accepted connection is paired
// with one upstream connection and both directions are joined with socket.pipe(); no inspection,
// no logging, no metrics. It shows what Node itself costs to move bytes, so Tollgate's TCP and TLS
// passthrough figures can be read against "plain Node" as well as HAProxy.
// Usage: node pipe-relay.mjs <listenPort>:<upstreamPort> [<listenPort>:<upstreamPort> ...]
import net from 'node:net';

for (const pair of process.argv.slice(2)) {
  const [listenPort, upstreamPort] = pair.split(':').map(Number);
  net
    .createServer({ noDelay: true }, (down) => {
      const up = net.connect({ host: '127.0.0.1', port: upstreamPort, noDelay: true });
      down.pipe(up);
      up.pipe(down);
      down.on('error', () => up.destroy());
      up.on('error', () => down.destroy());
    })
    .listen(listenPort, '127.0.0.1');
}
process.on('SIGTERM', () => process.exit(0));
