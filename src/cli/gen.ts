/** `tollgate gen egress`: prints the objects that send one destination through the egress gateway. */
import { writeFileSync } from 'node:fs';
import { egressObjects, intentProblem, type EgressIntent, type TlsMode } from '../author/egress.js';
import { renderYaml } from '../author/render.js';
import { parse, parseLabels, UsageError, type Io } from './common.js';

export const GEN_HELP = `Usage: tollgate gen egress --host HOST [options]

Prints, as YAML ready to apply, the objects that send HOST through an egress gateway: the
ServiceEntry, the gateway's Gateway server, the mesh VirtualService (sidecars -> gateway), the
gateway VirtualService (gateway -> HOST), the DestinationRule with the subset the mesh route
names and, for --tls originate, the DestinationRule that makes the gateway speak TLS to HOST.

  --host HOST                  external host (api.example.com, or *.example.com for passthrough/none)
  --port P                     destination port (default 80 for none, 443 otherwise)
  --tls none|passthrough|originate
                               none: plain HTTP all the way; passthrough: the app speaks TLS, routed
                               by SNI; originate: the app speaks HTTP to port 80, the gateway speaks
                               TLS to HOST:P (default passthrough)
  --gateway-selector k=v[,k=v] gateway pod labels (default istio=egressgateway)
  --gateway-service NAME       the gateway's Service (default istio-egressgateway)
  --gateway-name NAME          the Gateway object (default egressgateway)
  -n, --namespace NS           namespace of the gateway and the objects (default istio-system)
  --source-address IP          fixed source address for HOST (annotation tollgate.io/source-address)
  --ca-cert FILE|SECRET        originate: CA that signs HOST's certificate (a path, or a Secret name)
  --client-cert SECRET         originate: Secret with the client certificate HOST asks for (mutual TLS)
  -o, --output FILE            write to FILE instead of stdout

Check the result: tollgate analyze -f OUT.yaml, and tollgate trace -f OUT.yaml http://HOST/`;

const TLS_MODES: readonly TlsMode[] = ['none', 'passthrough', 'originate'];

export function genCommand(argv: string[], io: Io): number {
  const { values, positionals } = parse(
    argv,
    {
      host: { type: 'string' }, port: { type: 'string' }, tls: { type: 'string' }, 'gateway-selector': { type: 'string' },
      'gateway-service': { type: 'string' }, 'gateway-name': { type: 'string' }, namespace: { type: 'string', short: 'n' },
      'source-address': { type: 'string' }, 'ca-cert': { type: 'string' }, 'client-cert': { type: 'string' },
      output: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help) {
    io.out(GEN_HELP);
    return 0;
  }
  if (positionals[0] !== 'egress' || positionals.length !== 1) throw new UsageError('the only generator is "egress": tollgate gen egress --host HOST');
  if (!values.host) throw new UsageError('--host HOST is required');
  const tls = (values.tls ?? 'passthrough') as TlsMode;
  if (!TLS_MODES.includes(tls)) throw new UsageError(`--tls must be one of ${TLS_MODES.join(', ')}, got "${values.tls}"`);
  if (values.port !== undefined && !/^\d+$/.test(values.port)) throw new UsageError(`--port "${values.port}" is not a number`);
  let selector: Record<string, string>;
  try {
    selector = parseLabels(values['gateway-selector'] ?? 'istio=egressgateway');
  } catch (e) {
    throw new UsageError((e as Error).message.replace('--labels', '--gateway-selector'));
  }
  const intent: EgressIntent = {
    host: values.host.toLowerCase().replace(/\.$/, ''),
    tls,
    gatewaySelector: selector,
    gatewayService: values['gateway-service'] ?? 'istio-egressgateway',
    gatewayName: values['gateway-name'] ?? 'egressgateway',
    namespace: values.namespace ?? 'istio-system',
    ...(values.port !== undefined ? { port: Number(values.port) } : {}),
    ...(values['source-address'] !== undefined ? { sourceAddress: values['source-address'] } : {}),
    ...(values['ca-cert'] !== undefined ? { caCert: values['ca-cert'] } : {}),
    ...(values['client-cert'] !== undefined ? { clientCert: values['client-cert'] } : {}),
  };
  const problem = intentProblem(intent);
  if (problem !== undefined) throw new UsageError(problem);
  const text = renderYaml(egressObjects(intent).map((object) => ({ object })), [`tollgate gen egress: ${intent.host} (tls ${tls})`]);
  if (values.output) writeFileSync(values.output, text);
  else io.out(text.replace(/\n$/, ''));
  return 0;
}
