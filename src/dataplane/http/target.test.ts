import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkAuthority, parseTarget, sameAuthority } from './target.js';

test('parseTarget: the four forms', () => {
  assert.deepEqual(parseTarget('GET', '/a?b'), { form: 'origin', scheme: undefined, authority: undefined, path: '/a?b' });
  assert.deepEqual(parseTarget('GET', 'HTTPS://Api.Example:8443'), { form: 'absolute', scheme: 'https', authority: 'Api.Example:8443', path: '/' });
  assert.deepEqual(parseTarget('CONNECT', 'api.example:443'), { form: 'authority', scheme: undefined, authority: 'api.example:443', path: '' });
  assert.deepEqual(parseTarget('OPTIONS', '*'), { form: 'asterisk', scheme: undefined, authority: undefined, path: '*' });
  assert.notEqual(typeof parseTarget('OPTIONS', 'http://a.example/'), 'string', 'OPTIONS may use other forms');
});

test('parseTarget: faults are described', () => {
  for (const [method, target] of [
    ['GET', '*'], ['GET', 'a.example:80'], ['CONNECT', '/'], ['CONNECT', 'a.example'], ['GET', '/a#b'],
    ['GET', '/%'], ['GET', '/%g0'], ['GET', 'ws://a.example/'], ['GET', 'http://u@a.example/'], ['GET', '/a|b'],
  ] as const) {
    assert.equal(typeof parseTarget(method, target), 'string', `${method} ${target}`);
  }
});

test('checkAuthority', () => {
  for (const ok of ['a.example', 'a.example:1', 'a.example:65535', '10.0.0.1:80', '[::1]:443', '[2001:db8::1]', 'under_score.example', 'a~b']) {
    assert.equal(checkAuthority(ok, false), undefined, ok);
  }
  for (const bad of ['', ':80', 'a.example:', 'a.example:0', 'a.example:65536', 'a.example:08', 'a.example:123456', 'a@b', 'a b', '[::1', '[]', '[v1.x]', 'a%41', 'a,b', 'a.example:80:80']) {
    assert.notEqual(checkAuthority(bad, false), undefined, bad);
  }
  assert.notEqual(checkAuthority('a.example', true), undefined, 'CONNECT needs a port');
  assert.equal(checkAuthority('[::1]:8080', true), undefined);
});

test('sameAuthority: host case-insensitive, default ports per scheme', () => {
  assert.ok(sameAuthority('A.Example', 'a.example', '80'));
  assert.ok(sameAuthority('a.example:80', 'a.example', '80'));
  assert.ok(!sameAuthority('a.example:443', 'a.example', '80'));
  assert.ok(sameAuthority('[::1]:443', '[::1]', '443'));
  assert.ok(sameAuthority('a.example:443', 'a.example', undefined), 'CONNECT: Host without port matches');
  assert.ok(!sameAuthority('a.example:443', 'a.example:8443', undefined));
  assert.ok(!sameAuthority('a.example', 'b.example', '80'));
});
