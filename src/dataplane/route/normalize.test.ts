import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normalizePath as normalize, removeDotSegments, type EncodedSlashPolicy } from './normalize.js';

const normalizePath = (p: string, slash: EncodedSlashPolicy): string | null => normalize(p, 'BASE', slash);

describe('normalizePath at BASE', () => {
  it('returns plain paths unchanged (same string, no allocation)', () => {
    const p = '/api/v1/items';
    assert.equal(normalizePath(p, 'reject'), p);
    assert.equal(normalizePath('/', 'reject'), '/');
    assert.equal(normalizePath('/a//b', 'reject'), '/a//b', 'slashes are not merged (Istio BASE)');
  });

  it('removes dot segments (RFC 3986 5.2.4)', () => {
    const cases: [string, string][] = [
      ['/a/./b', '/a/b'],
      ['/a/../b', '/b'],
      ['/a/b/../../c', '/c'],
      ['/..', '/'],
      ['/../../etc/passwd', '/etc/passwd'],
      ['/a/..', '/'],
      ['/a/.', '/a/'],
      ['/a/b/..', '/a/'],
      ['/.well-known/x', '/.well-known/x'],
      ['/a/.b/..c', '/a/.b/..c'],
    ];
    for (const [input, want] of cases) assert.equal(normalizePath(input, 'reject'), want, input);
  });

  it('decodes escaped unreserved characters, so %2e%2e is a dot segment', () => {
    assert.equal(normalizePath('/%41dmin', 'reject'), '/Admin');
    assert.equal(normalizePath('/public/%2e%2e/admin', 'reject'), '/admin');
    assert.equal(normalizePath('/public/%2E%2E/admin', 'reject'), '/admin');
    assert.equal(normalizePath('/a/.%2e/b', 'reject'), '/b');
    assert.equal(normalizePath('/%7euser', 'reject'), '/~user');
  });

  it('keeps other escapes, with upper-case hex', () => {
    assert.equal(normalizePath('/a%20b', 'reject'), '/a%20b');
    assert.equal(normalizePath('/a%3ab', 'reject'), '/a%3Ab');
    assert.equal(normalizePath('/%e2%82%ac', 'reject'), '/%E2%82%AC');
  });

  it('rejects encoded slashes and backslashes by default, keeps them undecoded with "keep"', () => {
    for (const p of ['/a%2fb', '/a%2Fb', '/public/..%2fadmin', '/a%5cb', '/a%5Cb']) assert.equal(normalizePath(p, 'reject'), null, p);
    assert.equal(normalizePath('/a%2fb', 'keep'), '/a%2Fb');
    assert.equal(normalizePath('/public/..%2fadmin', 'keep'), '/public/..%2Fadmin', 'an encoded slash never becomes a separator');
  });

  it('removeDotSegments on a path without dots is the identity', () => {
    for (const p of ['/', '/a', '/a/b/', '/a//b']) assert.equal(removeDotSegments(p), p);
  });
});

describe('normalizePath levels', () => {
  it('NONE keeps the path as received but still refuses escaped slashes under "reject"', () => {
    assert.equal(normalize('/a/../b//c%41', 'NONE', 'reject'), '/a/../b//c%41');
    assert.equal(normalize('/a%2fb', 'NONE', 'reject'), null);
    assert.equal(normalize('/a%2fb', 'NONE', 'keep'), '/a%2fb');
  });

  it('MERGE_SLASHES merges runs of slashes after removing dot segments', () => {
    const cases: [string, string][] = [
      ['//admin', '/admin'],
      ['///admin//x', '/admin/x'],
      ['/public//../admin', '/public/admin'],
      ['/.//admin', '/admin'],
      ['/a/%2e%2e//admin', '/admin'],
      ['/plain', '/plain'],
    ];
    for (const [input, want] of cases) assert.equal(normalize(input, 'MERGE_SLASHES', 'reject'), want, input);
    assert.equal(normalize('/a%2F%2Fb', 'MERGE_SLASHES', 'keep'), '/a%2F%2Fb', 'escaped slashes are not merged');
  });

  it('DECODE_AND_MERGE_SLASHES decodes %2F and %5C to "/" before dot segments and merging', () => {
    const cases: [string, string][] = [
      ['/foo%2f%2fbar', '/foo/bar'],
      ['/public/..%2Fadmin', '/admin'],
      ['/public%5c..%5cadmin', '/admin'],
      ['/%2Fadmin', '/admin'],
    ];
    for (const [input, want] of cases) assert.equal(normalize(input, 'DECODE_AND_MERGE_SLASHES', 'reject'), want, input);
  });

  it('the result is stable: normalising twice changes nothing', () => {
    for (const level of ['BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const) {
      for (const p of ['//a/./b/../c', '/%2e%2E/x', '/a%3ab//', '/x/%7e/..']) {
        const once = normalize(p, level, 'keep');
        assert.ok(once !== null);
        assert.equal(normalize(once, level, 'keep'), once, `${level} ${p}`);
      }
    }
  });

  it('leaves a stray "%" alone instead of eating the text before it', () => {
    assert.equal(normalize('/a%zz/%41', 'BASE', 'reject'), '/a%zz/A');
  });
});
