import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_NAMESPACE, findProfile, generateObjects, PROFILES, renderYaml } from '../manifest/generate.js';
import { parse, UsageError, type Io } from './common.js';

function settingsHelp(): string {
  return PROFILES.map((p) => {
    const keys = Object.entries(p.values).map(([k, s]) => `      ${k}=${s.default === '' ? '(empty)' : s.default.replace(/\n/g, '\\n')}  ${s.help}`);
    return [`  ${p.name}: ${p.summary}`, ...(keys.length ? keys : ['      (no settings)'])].join('\n');
  }).join('\n');
}

export const MANIFEST_HELP = `Usage: tollgate manifest generate --profile NAME [--profile NAME]... [--namespace NS] [--set key=value]... [-o DIR]

Prints ready-to-apply Kubernetes YAML for one or more profiles (or writes DIR/<profile>.yaml with -o),
like 'istioctl manifest generate'. Objects go to --namespace (default ${DEFAULT_NAMESPACE}).

  tollgate manifest generate --profile crds | kubectl create -f -      # only CRDs the cluster lacks
  tollgate manifest generate --profile control-plane | kubectl apply -f -
  tollgate manifest generate --profile egress-gateway --set egressNamespaces=shop | kubectl apply -f -
  tollgate proxy-status   # after: kubectl -n ${DEFAULT_NAMESPACE} port-forward deploy/tollgate-control-plane 15010

Profiles and their settings (--set key=value; defaults shown):
${settingsHelp()}`;

export function manifestCommand(argv: string[], io: Io): number {
  const { values, positionals } = parse(argv, {
    profile: { type: 'string', multiple: true },
    namespace: { type: 'string', short: 'n' },
    set: { type: 'string', multiple: true },
    output: { type: 'string', short: 'o' },
    help: { type: 'boolean', short: 'h' },
  }, true);
  if (values.help) {
    io.out(MANIFEST_HELP);
    return 0;
  }
  if (positionals[0] !== 'generate' || positionals.length > 1) throw new UsageError('the subcommand is "generate": tollgate manifest generate --profile NAME');
  const names = values.profile ?? [];
  if (names.length === 0) throw new UsageError(`--profile is required: ${PROFILES.map((p) => p.name).join(', ')}`);
  const namespace = values.namespace ?? DEFAULT_NAMESPACE;
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) throw new UsageError(`--namespace ${namespace}: not a valid namespace name`);
  const sets = values.set ?? [];
  if (names.length > 1) {
    const known = new Set(names.flatMap((n) => Object.keys(findProfile(n)?.values ?? {})));
    const stray = sets.map((s) => s.split('=')[0] ?? '').find((k) => !known.has(k));
    if (stray !== undefined) throw new UsageError(`--set ${stray}: not a setting of any of the profiles ${names.join(', ')}`);
  }
  const outputs: { name: string; text: string }[] = [];
  for (const name of names) {
    const profile = findProfile(name);
    if (!profile) throw new UsageError(`unknown profile "${name}"; profiles: ${PROFILES.map((p) => p.name).join(', ')}`);
    const command = ['tollgate manifest generate', `--profile ${name}`, ...(values.namespace !== undefined ? [`--namespace ${namespace}`] : []), ...sets.map((s) => `--set ${s}`)].join(' ');
    let objects;
    try {
      // Settings are per profile: with several profiles, each takes the keys it declares.
      const mine = names.length > 1 ? sets.filter((s) => Object.hasOwn(profile.values, s.split('=')[0] ?? '')) : sets;
      objects = generateObjects(profile, namespace, mine);
    } catch (err) {
      throw new UsageError(err instanceof Error ? err.message : String(err));
    }
    outputs.push({ name, text: renderYaml(profile, objects, command) });
  }
  if (values.output !== undefined) {
    mkdirSync(values.output, { recursive: true });
    for (const o of outputs) {
      writeFileSync(join(values.output, `${o.name}.yaml`), o.text);
      io.err(`wrote ${join(values.output, `${o.name}.yaml`)}`);
    }
    return 0;
  }
  io.out(outputs.map((o) => o.text).join('').trimEnd());
  return 0;
}
