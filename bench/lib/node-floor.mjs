// Reference peer "node-floor": the least an HTTP/1.1 proxy written in Node can do. It finds the end
// of each request head (and checks its Host), pairs each downstream connection with its own
// upstream connection, and forwards the bytes as received: nothing is parsed into objects or
// re-serialised. Requests with a body are not supported (the bench sends GETs). What Tollgate
// spends per request above this is the cost of being a real proxy in Node.
// Usage: node node-floor.mjs <listenPort> <upstreamPort> <host>
import net from 'node:net';

const [listenPort, upstreamPort, host] = process.argv.slice(2);
const HEAD_END = Buffer.from('\r\n\r\n');
// Host as clients usually spell it; a full proxy would compare case-insensitively.
const HOST_LINES = [Buffer.from(`\r\nHost: ${host}\r\n`), Buffer.from(`\r\nhost: ${host}\r\n`)];
const NOT_FOUND = 'HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n';

net.createServer({ noDelay: true }, (down) => {
  const up = net.connect({ port: Number(upstreamPort), host: '127.0.0.1', noDelay: true });
  let carry = null; // a head cut by the end of a read
  down.on('data', (chunk) => {
    const buf = carry === null ? chunk : Buffer.concat([carry, chunk]);
    let start = 0;
    for (let end = buf.indexOf(HEAD_END, start); end >= 0; end = buf.indexOf(HEAD_END, start)) {
      const head = buf.subarray(start, end + 4);
      if (head.indexOf(HOST_LINES[0]) < 0 && head.indexOf(HOST_LINES[1]) < 0) return void down.end(NOT_FOUND);
      start = end + 4;
    }
    carry = start < buf.length ? buf.subarray(start) : null;
    if (start > 0) up.write(start === buf.length ? buf : buf.subarray(0, start));
  });
  up.on('data', (chunk) => down.write(chunk));
  down.on('error', () => up.destroy());
  up.on('error', () => down.destroy());
  down.on('close', () => up.destroy());
  up.on('close', () => down.destroy());
}).listen(Number(listenPort), '127.0.0.1');

process.on('SIGTERM', () => process.exit(0));
