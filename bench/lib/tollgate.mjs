// Tollgate under test: the Istio YAML it is given, and the ONE function that launches it.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_HOST, TLS_SNI, verifyHttp } from './peers.mjs';
import { startProcess, stopProcess, tail, waitForPort } from './util.mjs';

export const REPO = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
/**
 * The process entry point of the build in `root`: the bundle `npm run build` makes (what `npm start`
 * and the image run), else tsc's bin.js (builds before the bundle), else main.js (before bin.js;
 * main.js then only exports main()).
 */
export function entryPoint(root) {
  const bundle = join(root, 'dist/bundle/bin.js');
  if (existsSync(bundle)) {
    // tsc alone after a bundle leaves the bundle behind the sources: measuring it would be measuring old code.
    const tscInfo = join(root, 'dist/.tsbuildinfo');
    if (existsSync(tscInfo) && statSync(tscInfo).mtimeMs > statSync(bundle).mtimeMs) throw new Error(`${bundle} is older than tsc's last build: run \`npm run build\` (tsc, then the bundle)`);
    return bundle;
  }
  if (existsSync(join(root, 'dist/src/cli/bin.js'))) return join(root, 'dist/src/cli/bin.js');
  return join(root, 'dist/src/cli/main.js');
}
export const MAIN = entryPoint(REPO);
export const NAMESPACE = 'bench';
export const LABELS = 'app=bench';
export const CONNECT_HOST = 'connect.bench.test';

/**
 * Istio config for the bench gateway: a ServiceEntry per backend with a STATIC endpoint on
 * loopback, one Gateway (bound to 127.0.0.1) with an HTTP server and two TCP servers, and the
 * VirtualServices that route Host `up.bench.test` and the two TCP ports.
 * With `tcp.tlsPort`, a TLS PASSTHROUGH server routes SNI `localhost` to the upstream's TLS port.
 * `scale` adds that many extra ServiceEntries (svc-<i>.scale.bench.test, same upstream), each with
 * its own VirtualService host on the HTTP server, so the route table grows with the registry.
 */
export function benchIstioYaml({ httpPort, upstreamPort, tcp, connect = false, scale = 0 }) {
  const docs = [];
  const se = (name, host, port, proto, epPort) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ${name}
  namespace: ${NAMESPACE}
spec:
  hosts:
  - ${host}
  location: MESH_EXTERNAL
  ports:
  - number: ${port}
    name: ${proto.toLowerCase()}
    protocol: ${proto}
  resolution: STATIC
  endpoints:
  - address: 127.0.0.1
    ports:
      ${proto.toLowerCase()}: ${epPort}`;
  const httpVs = (name, host) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ${name}
  namespace: ${NAMESPACE}
spec:
  hosts:
  - ${host}
  gateways:
  - bench-gw
  http:
  - route:
    - destination:
        host: ${host}
        port:
          number: 80`;
  docs.push(se('up', BENCH_HOST, 80, 'HTTP', upstreamPort));
  docs.push(httpVs('up', BENCH_HOST));
  for (let i = 0; i < scale; i++) {
    docs.push(se(`svc-${i}`, `svc-${i}.scale.bench.test`, 80, 'HTTP', upstreamPort));
    docs.push(httpVs(`svc-${i}`, `svc-${i}.scale.bench.test`));
  }
  // CONNECT target: its own host whose registry port is the upstream's real port, so
  // `CONNECT connect.bench.test:<port>` means the same thing to Tollgate (registry) and Squid (hosts file).
  if (connect) docs.push(se('connect', CONNECT_HOST, upstreamPort, 'TCP', upstreamPort));
  // One Gateway server on 127.0.0.1 for every host ("*"); `extra` = more YAML lines at its level.
  const server = (port, name, protocol, extra = '') => `  - port:
      number: ${port}
      name: ${name}
      protocol: ${protocol}
    bind: 127.0.0.1
    hosts:
    - "*"${extra}`;
  const servers = [server(httpPort, 'http', 'HTTP')];
  if (tcp) {
    docs.push(se('iperf', 'iperf.bench.test', 5201, 'TCP', tcp.iperfTarget));
    docs.push(se('tcp-up', 'tcp-up.bench.test', 8080, 'TCP', upstreamPort));
    servers.push(server(tcp.iperfPort, 'tcp-iperf', 'TCP'), server(tcp.httpPort, 'tcp-http', 'TCP'));
    docs.push(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: tcp
  namespace: ${NAMESPACE}
spec:
  hosts:
  - "*"
  gateways:
  - bench-gw
  tcp:
  - match:
    - port: ${tcp.iperfPort}
    route:
    - destination:
        host: iperf.bench.test
        port:
          number: 5201
  - match:
    - port: ${tcp.httpPort}
    route:
    - destination:
        host: tcp-up.bench.test
        port:
          number: 8080`);
    // TLS passthrough: routed by the ClientHello's SNI to the upstream's TLS port, never decrypted.
    if (tcp.tlsPort) {
      docs.push(se('tls-up', 'tls-up.bench.test', 443, 'TLS', tcp.tlsTarget));
      servers.push(server(tcp.tlsPort, 'tls-passthrough', 'TLS', '\n    tls:\n      mode: PASSTHROUGH'));
      docs.push(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: tls
  namespace: ${NAMESPACE}
spec:
  # A short name would mean localhost.bench.svc.cluster.local; "*" with an SNI match means the SNI as sent.
  hosts:
  - "*"
  gateways:
  - bench-gw
  tls:
  - match:
    - port: ${tcp.tlsPort}
      sniHosts:
      - ${TLS_SNI}
    route:
    - destination:
        host: tls-up.bench.test
        port:
          number: 443`);
    }
  }
  docs.push(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: bench-gw
  namespace: ${NAMESPACE}
spec:
  selector:
    app: bench
  servers:
${servers.join('\n')}`);
  return `${docs.join('\n---\n')}\n`;
}

const helpCache = new Map();
/**
 * `tollgate run --help`, cached per entry point; undefined when the CLI is not there or does not
 * answer. `main`: another build's entry point (bench/compare.mjs measures older commits).
 */
export function tollgateRunHelp(main = MAIN) {
  const cached = helpCache.get(main);
  if (cached !== undefined) return cached;
  let help;
  if (!existsSync(main)) {
    help = { ok: false, reason: `${main.replace(`${REPO}/`, '')} missing (npm run build; the CLI may not exist yet)` };
  } else {
    const r = spawnSync(process.execPath, [main, 'run', '--help'], { encoding: 'utf8', timeout: 10_000 });
    const text = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    help = r.status === 0 && /run/.test(text) ? { ok: true, text } : { ok: false, reason: `run --help exited ${r.status}: ${text.trim().split('\n').slice(0, 3).join(' | ')}` };
  }
  helpCache.set(main, help);
  return help;
}

/** True when `run --help` lists `flag` as a whole option (so --access-log does not match --access-log-format). */
export function tollgateSupports(flag, main = MAIN) {
  const h = tollgateRunHelp(main);
  return h.ok && new RegExp(`(^|[\\s,])${flag.replace(/[-]/g, '\\-')}(?=[\\s,=]|$)`, 'm').test(h.text);
}

/** Whether this Tollgate can turn its access log off (otherwise it always logs, to stdout = /dev/null here). */
export function tollgateCanDisableAccessLog() {
  return tollgateSupports('--access-log') || tollgateSupports('--no-access-log');
}

/**
 * THE place that knows how to start Tollgate; its flags are still moving while the data plane is
 * written, so adjust them here and nowhere else. Flags beyond the core set are passed only when
 * `run --help` lists them. Returns { ok: true, name, rec, pid, port, ... } or { ok: false, reason }.
 *
 *   node [nodeArgs] dist/src/cli/bin.js run -f <yaml> --role gateway --namespace bench
 *        --labels app=bench --admin 127.0.0.1:<port> --allow-cidr 127.0.0.0/8
 *        [--explicit-proxy 127.0.0.1:<port> --connect-ports <upstream port>]
 *        [--access-log off | --no-access-log | --access-log-file PATH] [--workers N]
 *
 * The access log goes to stdout, which is /dev/null here, or to the file `accessLog` names (a
 * string): "on" is Tollgate's default; "off" needs a flag, and without one `accessLog: false` still
 * logs (the caller reads tollgateCanDisableAccessLog()).
 * `wrapper` (profile.mjs) replaces the entry script with one that imports it in-process;
 * `launcher` (instructions.mjs: valgrind and its flags) runs node under another program.
 */
export async function launchTollgate({ main = MAIN, dir, name = 'tollgate', configYaml, httpPort, adminPort, connect, cpu, accessLog = true, accessLogFormat, workers, env, nodeArgs = [], wrapper, launcher = [], ipc = false, readyTimeoutMs = 20_000, verify = true, verifyPath = '/1k', verifyHost = BENCH_HOST }) {
  const help = tollgateRunHelp(main);
  if (!help.ok) return { ok: false, reason: help.reason };
  const configFile = join(dir, `${name}.yaml`);
  writeFileSync(configFile, configYaml);
  const args = ['run', '-f', configFile, '--role', 'gateway', '--namespace', NAMESPACE, '--labels', LABELS];
  // Always explicit: the default admin port (15000) would collide between instances.
  if (tollgateSupports('--admin', main)) args.push('--admin', adminPort ? `127.0.0.1:${adminPort}` : 'off');
  if (tollgateSupports('--allow-cidr', main)) args.push('--allow-cidr', '127.0.0.0/8');
  // CONNECT: an explicit-proxy listener, allowed to reach the upstream's port (registry host connect.bench.test).
  if (connect && tollgateSupports('--explicit-proxy', main)) {
    args.push('--explicit-proxy', `127.0.0.1:${connect.port}`);
    if (tollgateSupports('--connect-ports', main)) args.push('--connect-ports', String(connect.targetPort));
  }
  if (!accessLog) {
    if (tollgateSupports('--no-access-log', main)) args.push('--no-access-log');
    else if (tollgateSupports('--access-log', main)) args.push('--access-log', 'off');
  } else if (typeof accessLog === 'string' && tollgateSupports('--access-log-file', main)) args.push('--access-log-file', accessLog);
  if (accessLogFormat !== undefined) args.push('--access-log-format', accessLogFormat);
  // The harness stops it with SIGTERM (SIGKILL after 2 s): keep the drain short.
  if (tollgateSupports('--drain-timeout', main)) args.push('--drain-timeout', '500');
  if (workers !== undefined) {
    if (!tollgateSupports('--workers', main)) return { ok: false, reason: 'no --workers flag in `run --help`' };
    args.push('--workers', String(workers));
  }
  const errFile = join(dir, `${name}.stderr`);
  const script = wrapper ?? main;
  const nodeArgv = [...nodeArgs, script, ...(wrapper ? [main] : []), ...args];
  const rec = startProcess(name, launcher[0] ?? process.execPath, launcher.length > 0 ? [...launcher.slice(1), process.execPath, ...nodeArgv] : nodeArgv, { cpu, cwd: dir, stderrFile: errFile, ipc, ...(env ? { env: { ...process.env, ...env } } : {}) });
  const ready = await waitForPort(httpPort, { rec, timeoutMs: readyTimeoutMs });
  if (!ready.ok) {
    await stopProcess(rec);
    return { ok: false, reason: `${ready.reason}; stderr: ${tail(errFile, 4) || '(empty)'}` };
  }
  // verify: false when the caller checks each listener itself (the main instance: HTTP may fail while TCP works).
  const v = verify ? await verifyHttp(httpPort, verifyPath, verifyHost) : { ok: true };
  if (!v.ok) {
    await stopProcess(rec);
    return { ok: false, reason: `GET ${verifyPath} Host ${verifyHost}: ${v.reason}; stderr: ${tail(errFile, 4) || '(empty)'}` };
  }
  const connectPort = connect && tollgateSupports('--explicit-proxy', main) ? connect.port : undefined;
  return { ok: true, name, rec, pid: rec.child.pid, port: httpPort, adminPort, connectPort, configFile, command: `node ${[...nodeArgs, script.replace(`${REPO}/`, ''), ...args].join(' ')}` };
}
