#!/usr/bin/env node
// Writes docs/errors.md from the catalogue (src/catalogue/catalogue.ts). Run after tsc: npm run docs:errors
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const { renderErrorsDoc } = await import(join(root, 'dist', 'src', 'catalogue', 'errors-doc.js'));
writeFileSync(join(root, 'docs', 'errors.md'), renderErrorsDoc());
console.log('docs/errors.md written');
