#!/usr/bin/env node
/**
 * Measures `tollgate analyze` against Istio's own test data (a checkout of the corpus described in
 * docs/analyze-and-trace.md: analyzers/, validation/, pilot-testdata/, samples/, docs-egress/, context/).
 *
 *   npx tsc -p tsconfig.json && node scripts/istio-conformance.mjs /path/to/istio-corpus [--verbose]
 *
 * 1. Analyzer table: for each case of Istio's analyzer test grid (scripts/istio-analyzer-cases.json), runs
 *    analyze over the case's inputs plus the default ingress Pod+Service Istio adds, and counts the expected
 *    messages Tollgate reports with the same Istio message name on the same resource.
 * 2. Valid configs: analyzes every document Istio accepts and counts files where Tollgate raises an error.
 *    Errors that only say a referenced object is missing from that one file (Istio's own analyzers say the
 *    same when the file is analyzed alone) are listed apart.
 * 3. Crashes: every file of the corpus, valid or not, must be analyzed without an exception.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const { analyzePaths } = await import(join(here, '..', 'dist', 'src', 'analyze', 'analyze.js'));

const args = process.argv.slice(2);
const verbose = args.includes('--verbose');
const corpus = args.find((a) => !a.startsWith('--'));
if (!corpus || !existsSync(join(corpus, 'analyzers'))) {
  console.error('usage: node scripts/istio-conformance.mjs CORPUS_DIR [--verbose]   (CORPUS_DIR holds analyzers/, validation/, samples/ ...)');
  process.exit(2);
}
const defaultIngress = join(corpus, 'context', 'istio-default-ingress.yaml');

/** Messages of one run, as [IstioName, Kind, namespace, name] — Tollgate diagnostics that carry an Istio code. */
function istioMessages(diags) {
  return diags.filter((d) => d.istio && d.resource).map((d) => ({ name: d.istio.name, kind: d.resource.kind, ns: d.resource.namespace, res: d.resource.name, severity: d.severity, message: d.message }));
}

function parseOrigin(origin) {
  const [kind, rest] = origin.split(' ');
  const [ns, name] = rest.includes('/') ? rest.split('/') : [undefined, rest];
  return { kind, ns, name };
}

function analyzerTable() {
  const { cases } = JSON.parse(readFileSync(join(here, 'istio-analyzer-cases.json'), 'utf8'));
  const perAnalyzer = new Map();
  let expectedTotal = 0, matchedTotal = 0, extraTotal = 0;
  for (const c of cases) {
    const files = c.files.map((f) => join(corpus, 'analyzers', f));
    if (c.meshConfig) files.push(join(corpus, 'analyzers', c.meshConfig));
    files.push(defaultIngress);
    let got;
    try {
      got = istioMessages(analyzePaths(files).diagnostics);
    } catch (e) {
      console.log(`CRASH in case "${c.name}": ${e.stack}`);
      got = [];
    }
    const names = new Set(c.expected.map(([n]) => n));
    const pool = [...got];
    let matched = 0;
    const missed = [];
    for (const [name, origin] of c.expected) {
      const o = parseOrigin(origin);
      const i = pool.findIndex((m) => m.name === name && m.kind === o.kind && m.res === o.name && (o.ns === undefined || m.ns === o.ns));
      if (i >= 0) { matched++; pool.splice(i, 1); } else missed.push(`${name} ${origin}`);
    }
    // Extra: messages of this case's analyzer family (same Istio names, or any when none expected) that Istio does not expect.
    const family = ANALYZER_MESSAGES[c.analyzer] ?? names;
    const extra = pool.filter((m) => family.has(m.name));
    const a = perAnalyzer.get(c.analyzer) ?? { cases: 0, expected: 0, matched: 0, extra: 0, casesFull: 0 };
    a.cases++; a.expected += c.expected.length; a.matched += matched; a.extra += extra.length;
    if (missed.length === 0 && extra.length === 0) a.casesFull++;
    perAnalyzer.set(c.analyzer, a);
    expectedTotal += c.expected.length; matchedTotal += matched; extraTotal += extra.length;
    if (verbose && (missed.length || extra.length)) {
      console.log(`case "${c.name}":`);
      for (const m of missed) console.log(`  missed  ${m}`);
      for (const m of extra) console.log(`  extra   ${m.name} ${m.kind} ${m.ns}/${m.res}: ${m.message}`);
    }
  }
  console.log('\n## Istio analyzer test grid (cases whose subject Tollgate models)\n');
  console.log('| Istio analyzer | cases | cases exactly right | expected messages | reported (same message, same resource) | unexpected messages |');
  console.log('|---|---|---|---|---|---|');
  for (const [name, a] of perAnalyzer) console.log(`| ${name} | ${a.cases} | ${a.casesFull} | ${a.expected} | ${a.matched} | ${a.extra} |`);
  console.log(`| **total** | ${cases.length} | ${[...perAnalyzer.values()].reduce((s, a) => s + a.casesFull, 0)} | ${expectedTotal} | ${matchedTotal} | ${extraTotal} |`);
}

/** Istio message names each analyzer can produce, to count unexpected ones. */
const ANALYZER_MESSAGES = {
  'gateway.IngressGatewayPortAnalyzer': new Set(['GatewayPortNotDefinedOnService', 'ReferencedResourceNotFound']),
  'gateway.SecretAnalyzer': new Set(['ReferencedResourceNotFound', 'InvalidGatewayCredential']),
  'gateway.ConflictingGatewayAnalyzer': new Set(['ConflictingGateways']),
  'gateway.CertificateAnalyzer': new Set(['GatewayDuplicateCertificate']),
  'service.PortNameAnalyzer': new Set(['PortNameIsNotUnderNamingConvention', 'ExternalNameServiceTypeInvalidPortName']),
  'sidecar.SelectorAnalyzer': new Set(['MultipleSidecarsWithoutWorkloadSelectors', 'ConflictingSidecarWorkloadSelectors', 'IneffectivePolicy']),
  'virtualservice.ConflictingMeshGatewayHostsAnalyzer': new Set(['ConflictingMeshGatewayVirtualServiceHosts']),
  'virtualservice.DestinationHostAnalyzer': new Set(['VirtualServiceDestinationPortSelectorRequired', 'IngressRouteRulesNotAffected']),
  'virtualservice.DestinationRuleAnalyzer': new Set([]),
  'virtualservice.GatewayAnalyzer': new Set(['VirtualServiceHostNotFoundInGateway', 'ReferencedInternalGateway']),
  'schema.ValidationAnalyzer.VirtualService': new Set(['VirtualServiceUnreachableRule', 'VirtualServiceIneffectiveMatch']),
  'destinationrule.CaCertificateAnalyzer': new Set(['NoServerCertificateVerificationDestinationLevel', 'NoServerCertificateVerificationPortLevel']),
  'destinationrule.PodNotSelectedAnalyzer': new Set(['UnknownDestinationRuleHost', 'DestinationRuleSubsetNotSelectPods']),
  'serviceentry.ProtocolAddressesAnalyzer': new Set(['ServiceEntryAddressesRequired']),
  'deployment.ServiceAssociationAnalyzer': new Set(['DeploymentAssociatedToMultipleServices', 'DeploymentConflictingPorts']),
  'authz.AuthorizationPoliciesAnalyzer': new Set(['NoMatchingWorkloadsFound']),
};

function walk(dir) {
  const out = [];
  for (const e of readdirSync(dir).sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (/\.(ya?ml|json)$/.test(e)) out.push(p);
  }
  return out;
}

/** Codes that say "an object this file refers to is not in the input" — expected when a file is analyzed alone. */
const REFERENCE_ISTIO = new Set(['ReferencedResourceNotFound']);

function validConfigs() {
  const groups = [
    ['validation/crds (valid)', readdirSync(join(corpus, 'validation', 'crds')).filter((d) => d.endsWith('-valid')).flatMap((d) => walk(join(corpus, 'validation', 'crds', d)))],
    ['validation/dataset', walk(join(corpus, 'validation', 'dataset'))],
    ['pilot-testdata', walk(join(corpus, 'pilot-testdata'))],
    ['samples', walk(join(corpus, 'samples'))],
    ['docs-egress', walk(join(corpus, 'docs-egress'))],
  ];
  console.log('\n## Configs Istio accepts: files where analyze raises an error (each file analyzed alone, with the default ingress and egress gateway Pods+Services)\n');
  console.log('| set | files | files with an error | of which only "referenced object not in this file" | crashes |');
  console.log('|---|---|---|---|---|');
  const context = [defaultIngress, join(corpus, 'context', 'istio-egressgateway.yaml')];
  let total = 0, bad = 0, refOnly = 0, crashes = 0;
  for (const [label, files] of groups) {
    let gBad = 0, gRef = 0, gCrash = 0;
    for (const f of files) {
      let diags;
      try {
        diags = analyzePaths([f, ...context]).diagnostics;
      } catch (e) {
        gCrash++;
        console.log(`CRASH ${relative(corpus, f)}: ${e.stack}`);
        continue;
      }
      const errors = diags.filter((d) => d.severity === 'error');
      if (errors.length === 0) continue;
      const real = errors.filter((d) => !(d.istio && REFERENCE_ISTIO.has(d.istio.name)));
      if (real.length === 0) { gRef++; continue; }
      gBad++;
      if (verbose) for (const d of real) console.log(`  ${relative(corpus, f)}: [${d.code}${d.istio ? ' ' + d.istio.code : ''}] ${d.resource ? d.resource.kind + ' ' + d.resource.name : ''} ${d.message}`);
    }
    console.log(`| ${label} | ${files.length} | ${gBad + gRef} | ${gRef} | ${gCrash} |`);
    total += files.length; bad += gBad; refOnly += gRef; crashes += gCrash;
  }
  console.log(`| **total** | ${total} | ${bad + refOnly} | ${refOnly} | ${crashes} |`);
  return crashes;
}

function everyFile() {
  let n = 0, crashes = 0;
  for (const f of walk(corpus)) {
    n++;
    try { analyzePaths([f]); } catch (e) { crashes++; console.log(`CRASH ${relative(corpus, f)}: ${e.message}`); }
  }
  console.log(`\n## Every corpus file analyzed alone: ${n} files, ${crashes} crash(es)`);
  return crashes;
}

analyzerTable();
const c1 = validConfigs();
const c2 = everyFile();
process.exitCode = c1 + c2 > 0 ? 1 : 0;
