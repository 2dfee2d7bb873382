// Peers started from Debian's packages, each from a generated config file in the run's temp dir:
// the upstream (nginx serving fixed bodies), nginx and HAProxy as Host-routing reverse proxies,
// HAProxy in TCP mode (the L4 peer), Squid for CONNECT, the iperf3 server, and a plain node:http
// proxy as a reference for what Node itself costs. All listen on 127.0.0.1 only.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandOutput, httpGet, runCommand, startProcess, tail, waitForPort } from './util.mjs';

export const BENCH_HOST = 'up.bench.test';
/** SNI of the TLS passthrough case: wrk sends the URL's host name, and `localhost` resolves without /etc/hosts edits. */
export const TLS_SNI = 'localhost';
export const BODIES = { '1k': 1024, '64k': 65536 };

const isRoot = process.getuid?.() === 0;

function nginxCommon(dir, name) {
  const tmp = join(dir, `${name}-tmp`);
  mkdirSync(tmp, { recursive: true });
  chmodSync(tmp, 0o777);
  return `
worker_processes 1;
daemon off;
master_process on;
pid ${dir}/${name}.pid;
error_log ${dir}/${name}.error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; multi_accept on; }
`;
}

function nginxTemps(dir, name) {
  const tmp = join(dir, `${name}-tmp`);
  return `
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;`;
}

async function startNginx(name, dir, conf, port, cpu) {
  const file = join(dir, `${name}.conf`);
  writeFileSync(file, conf);
  const errFile = join(dir, `${name}.stderr`);
  const rec = startProcess(name, '/usr/sbin/nginx', ['-p', `${dir}/`, '-c', file, '-e', join(dir, `${name}.error.log`)], { cpu, stderrFile: errFile });
  const ready = await waitForPort(port, { rec });
  if (!ready.ok) throw new Error(`${name}: ${ready.reason} ${tail(errFile)} ${tail(join(dir, `${name}.error.log`))}`);
  return { name, rec, pid: rec.child.pid, port, configFile: file };
}

/** A self-signed certificate for TLS_SNI (the TLS passthrough upstream); nothing checks it. */
async function selfSignedCert(dir) {
  const cert = join(dir, 'upstream-tls.crt');
  const key = join(dir, 'upstream-tls.key');
  const r = await runCommand('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${TLS_SNI}`, '-keyout', key, '-out', cert], { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`openssl req: ${r.stderr.trim().slice(0, 200)}`);
  return { cert, key };
}

/**
 * The upstream: one nginx worker serving /1k and /64k with keep-alive, no access log; with
 * `tlsPort`, the same files over TLS (the far end of the TLS passthrough case).
 */
export async function startUpstream(dir, port, cpu, tlsPort) {
  const www = join(dir, 'www');
  mkdirSync(www, { recursive: true });
  for (const [name, size] of Object.entries(BODIES)) writeFileSync(join(www, name), Buffer.alloc(size, 'x'));
  chmodSync(dir, 0o755);
  chmodSync(www, 0o755);
  const tls = tlsPort ? await selfSignedCert(dir) : undefined;
  const conf = `${nginxCommon(dir, 'upstream')}
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_timeout 120s; keepalive_requests 10000000;
  open_file_cache max=16 inactive=60s;
  default_type application/octet-stream;${nginxTemps(dir, 'upstream')}
  server {
    listen 127.0.0.1:${port} default_server backlog=4096;
    root ${www};
    location / { }
  }${
    tls
      ? `
  server {
    listen 127.0.0.1:${tlsPort} ssl backlog=4096;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_session_cache off;
    ssl_session_tickets off;
    root ${www};
    location / { }
  }`
      : ''
  }
}
`;
  return startNginx('upstream', dir, conf, port, cpu);
}

/** nginx as a reverse proxy: 1 worker, upstream keep-alive, Host-based server_name routing. */
export async function startNginxProxy(dir, { port, upstreamPort, accessLog, cpu }) {
  const name = accessLog ? 'nginx-log' : 'nginx';
  const conf = `${nginxCommon(dir, name)}
http {
  ${accessLog ? `access_log ${dir}/${name}.access.log combined;` : 'access_log off;'}
  tcp_nodelay on;
  keepalive_timeout 120s; keepalive_requests 10000000;${nginxTemps(dir, name)}
  upstream bench_up {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:${port} default_server backlog=4096;
    return 404;
  }
  server {
    listen 127.0.0.1:${port};
    server_name ${BENCH_HOST};
    location / {
      proxy_pass http://bench_up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # 64 KiB bodies stay in memory (the default 8 x 4k would spool to temp files).
      proxy_buffer_size 16k;
      proxy_buffers 8 16k;
      proxy_max_temp_file_size 0;
    }
  }
}
`;
  return startNginx(name, dir, conf, port, cpu);
}

/**
 * nginx terminating TLS with HTTP/2 (ALPN h2) and proxying to the upstream over HTTP/1.1
 * keep-alive, as Tollgate does on a Gateway HTTPS server: 1 worker, Host routing, no access log.
 */
export async function startNginxH2Proxy(dir, { port, upstreamPort, cert, key, cpu }) {
  const name = 'nginx-h2';
  const conf = `${nginxCommon(dir, name)}
http {
  access_log off;
  tcp_nodelay on;
  keepalive_timeout 120s; keepalive_requests 10000000;
  http2_max_concurrent_streams 256;${nginxTemps(dir, name)}
  ssl_certificate ${cert};
  ssl_certificate_key ${key};
  ssl_protocols TLSv1.2 TLSv1.3;
  upstream bench_up {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:${port} ssl http2 default_server backlog=4096;
    return 404;
  }
  server {
    listen 127.0.0.1:${port} ssl http2;
    server_name ${BENCH_HOST};
    location / {
      proxy_pass http://bench_up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffer_size 16k;
      proxy_buffers 8 16k;
      proxy_max_temp_file_size 0;
    }
  }
}
`;
  return startNginx(name, dir, conf, port, cpu);
}

/**
 * HAProxy, one thread: http mode with a Host ACL; the log-off instance also carries the TCP-mode
 * frontends used by the L4 scenario (one to iperf3, one to the HTTP upstream for connections/s).
 */
export async function startHaproxy(dir, { port, upstreamPort, accessLog, cpu, tcp }) {
  const name = accessLog ? 'haproxy-log' : 'haproxy';
  const file = join(dir, `${name}.cfg`);
  const conf = `global
  nbthread 1
  maxconn 4000
${accessLog ? '  log stdout format raw local0 info\n' : ''}
defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  timeout http-keep-alive 120s
  option http-keep-alive
${accessLog ? '  log global\n  option httplog\n' : ''}
frontend http_in
  bind 127.0.0.1:${port}
  acl host_up req.hdr(host),field(1,:) -i ${BENCH_HOST}
  http-request return status 404 if !host_up
  use_backend bench_up if host_up

backend bench_up
  http-reuse always
  server s1 127.0.0.1:${upstreamPort}
${
  tcp
    ? `
frontend tcp_iperf
  mode tcp
  bind 127.0.0.1:${tcp.iperfPort}
  default_backend tcp_iperf
backend tcp_iperf
  mode tcp
  server s1 127.0.0.1:${tcp.iperfTarget}

frontend tcp_http
  mode tcp
  bind 127.0.0.1:${tcp.httpPort}
  default_backend tcp_http
backend tcp_http
  mode tcp
  server s1 127.0.0.1:${upstreamPort}
${
  tcp.tlsPort
    ? `
frontend tls_passthrough
  mode tcp
  bind 127.0.0.1:${tcp.tlsPort}
  tcp-request inspect-delay 5s
  tcp-request content accept if { req_ssl_hello_type 1 }
  use_backend tls_up if { req.ssl_sni -i ${TLS_SNI} }
backend tls_up
  mode tcp
  server s1 127.0.0.1:${tcp.tlsTarget}
`
    : ''
}`
    : ''
}`;
  writeFileSync(file, conf);
  const errFile = join(dir, `${name}.stderr`);
  // The access log goes to stdout: a file in the run's directory (as nginx's and Tollgate's).
  const rec = startProcess(name, '/usr/sbin/haproxy', ['-f', file, '-db'], { cpu, stderrFile: errFile, stdoutFile: accessLog ? join(dir, `${name}.access.log`) : undefined });
  const ready = await waitForPort(port, { rec });
  if (!ready.ok) throw new Error(`${name}: ${ready.reason} ${tail(errFile)}`);
  return { name, rec, pid: rec.child.pid, port, configFile: file, tcp };
}

/** Squid as a forward proxy that allows CONNECT from and to loopback; no cache, no access log. */
export async function startSquid(dir, { port, cpu }) {
  const sq = join(dir, 'squid');
  mkdirSync(sq, { recursive: true });
  chmodSync(sq, 0o777);
  writeFileSync(join(sq, 'hosts'), `127.0.0.1 ${BENCH_HOST} connect.bench.test\n`);
  const file = join(sq, 'squid.conf');
  writeFileSync(
    file,
    `http_port 127.0.0.1:${port}
pid_filename ${sq}/squid.pid
cache_log ${sq}/cache.log
access_log none
cache deny all
cache_mem 8 MB
hosts_file ${sq}/hosts
pinger_enable off
netdb_filename none
logfile_rotate 0
coredump_dir ${sq}
shutdown_lifetime 0 seconds
max_filedescriptors 16384
client_persistent_connections on
${isRoot ? 'cache_effective_user proxy\n' : ''}acl lo src 127.0.0.0/8
acl lo_dst dst 127.0.0.0/8
acl CONNECT method CONNECT
http_access allow CONNECT lo lo_dst
http_access deny all
`,
  );
  const errFile = join(sq, 'stderr');
  // -N: no daemon, the master is the (only) worker, so the PID is the process doing the work.
  const rec = startProcess('squid', '/usr/sbin/squid', ['-N', '-f', file], { cpu, stderrFile: errFile });
  const ready = await waitForPort(port, { rec, timeoutMs: 15_000 });
  if (!ready.ok) throw new Error(`squid: ${ready.reason} ${tail(errFile)} ${tail(join(sq, 'cache.log'))}`);
  return { name: 'squid', rec, pid: rec.child.pid, port, configFile: file };
}

export async function startIperfServer(dir, { port, cpu }) {
  const errFile = join(dir, 'iperf3.stderr');
  const rec = startProcess('iperf3-server', '/usr/bin/iperf3', ['-s', '-B', '127.0.0.1', '-p', String(port)], { cpu, stderrFile: errFile });
  const ready = await waitForPort(port, { rec });
  if (!ready.ok) throw new Error(`iperf3 -s: ${ready.reason} ${tail(errFile)}`);
  return { name: 'iperf3-server', rec, pid: rec.child.pid, port };
}

/** A minimal node:http reverse proxy (keep-alive agent, Host check): the "plain Node" reference. */
export function startNodeBaseline(dir, { port, upstreamPort, cpu }) {
  return startNodeScript('node-http', 'node-proxy.mjs', dir, { port, upstreamPort, cpu });
}

/** The node-floor: head-end search, one upstream connection per downstream one, bytes as received. */
export function startNodeFloor(dir, { port, upstreamPort, cpu }) {
  return startNodeScript('node-floor', 'node-floor.mjs', dir, { port, upstreamPort, cpu });
}

async function startNodeScript(name, file, dir, { port, upstreamPort, cpu }) {
  const script = fileURLToPath(new URL(`./${file}`, import.meta.url));
  const errFile = join(dir, `${name}.stderr`);
  const rec = startProcess(name, process.execPath, [script, String(port), String(upstreamPort), BENCH_HOST], { cpu, stderrFile: errFile });
  const ready = await waitForPort(port, { rec });
  if (!ready.ok) throw new Error(`${name}: ${ready.reason} ${tail(errFile)}`);
  return { name, rec, pid: rec.child.pid, port };
}

/** The bare socket.pipe() relay (pipe-relay.mjs), one listener per `[listenPort, upstreamPort]` pair. */
export async function startPipeRelay(dir, { pairs, cpu, launcher = [], readyTimeoutMs }) {
  const script = fileURLToPath(new URL('./pipe-relay.mjs', import.meta.url));
  const errFile = join(dir, 'pipe-relay.stderr');
  const argv = [script, ...pairs.map(([l, u]) => `${l}:${u}`)];
  const rec = startProcess('pipe-relay', launcher[0] ?? process.execPath, launcher.length > 0 ? [...launcher.slice(1), process.execPath, ...argv] : argv, { cpu, stderrFile: errFile });
  for (const [l] of pairs) {
    const ready = await waitForPort(l, { rec, ...(readyTimeoutMs !== undefined ? { timeoutMs: readyTimeoutMs } : {}) });
    if (!ready.ok) throw new Error(`pipe-relay: ${ready.reason} ${tail(errFile)}`);
  }
  return { name: 'pipe-relay', rec, pid: rec.child.pid, port: pairs[0][0] };
}

/** Checks that a Host-routed GET through `port` returns 200 with the expected body length. */
export async function verifyHttp(port, path = '/1k', host = BENCH_HOST) {
  const r = await httpGet(port, path, host);
  const want = BODIES[path.slice(1)];
  if (r.error) return { ok: false, reason: r.error };
  if (r.status !== 200) return { ok: false, reason: `status ${r.status}${r.bodyStart ? ` ${JSON.stringify(r.bodyStart.trim().slice(0, 80))}` : ''}` };
  if (want !== undefined && r.bytes !== want) return { ok: false, reason: `body ${r.bytes} bytes, want ${want}` };
  return { ok: true };
}

export function peerVersions() {
  const first = (s) => s.split('\n')[0].trim();
  return {
    nginx: first(commandOutput('/usr/sbin/nginx', ['-v'])),
    haproxy: first(commandOutput('/usr/sbin/haproxy', ['-v'])),
    squid: first(commandOutput('/usr/sbin/squid', ['-v'])),
    wrk: first(commandOutput('wrk', ['-v'])),
    h2load: first(commandOutput('h2load', ['--version'])),
    iperf3: first(commandOutput('iperf3', ['--version'])),
  };
}
