/**
 * Proves that the Node runtime the project pins parses JSON object keys written with escapes
 * correctly. Every event body, request and projection row passes through JSON.parse, and the
 * hashes in contracts (canonical JSON) are taken over what it returns.
 *
 * Why this exists: Node 24.10–24.21 and 25 (their V8) return the key `"\u0000"` as `"\\"` (a
 * backslash) once a one-character string `\` is interned; canonical-json.spec's property test
 * found it. The project pins Node 22 (`node` devDependency, .nvmrc) until a fixed release; this
 * test fails on an affected runtime, in a fresh process so the interning state is the trigger's.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const program = `
const interned = { '\\\\': 1 };
const keys = [];
for (const text of ['{"\\\\u0000":1}', '{"a\\\\u0000b":1}', '{"\\\\u005c":1}', '{"\\\\"":1}', '{"\\\\n":1}']) keys.push(Object.keys(JSON.parse(text))[0]);
process.stdout.write(JSON.stringify({ keys: keys.map((k) => [...k].map((c) => c.charCodeAt(0))), interned: Object.keys(interned).length }));
`;

describe('the pinned runtime', () => {
  it('parses escaped object keys to the characters they escape, whatever strings are interned', () => {
    const out = JSON.parse(execFileSync(process.execPath, ['-e', program], { encoding: 'utf8' })) as { keys: number[][] };
    expect(out.keys).toEqual([[0], [0x61, 0, 0x62], [0x5c], [0x22], [0x0a]]);
  });
});
