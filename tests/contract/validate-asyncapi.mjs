// Validates an AsyncAPI document with the official parser (@asyncapi/parser, pinned in
// package.json): `node validate-asyncapi.mjs FILE` (or the document on stdin).
// Prints every diagnostic; exits 1 when any has severity error (0), 2 on usage errors.
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';

const SEVERITY = ['error', 'warning', 'info', 'hint'];
const file = process.argv[2];
let text;
try {
  text = readFileSync(file ?? 0, 'utf8');
} catch (e) {
  console.error(`cannot read ${file ?? 'stdin'}: ${e.message}`);
  process.exit(2);
}

const parser = new Parser();
const { document, diagnostics } = await parser.parse(text);
let errors = 0;
for (const d of diagnostics) {
  const severity = SEVERITY[d.severity] ?? String(d.severity);
  if (d.severity === 0) errors++;
  console.log(`${severity}: ${d.code}: ${d.message} at /${(d.path ?? []).join('/')}`);
}
if (errors || !document) {
  console.log(`INVALID: ${errors} error(s)`);
  process.exit(1);
}
const operations = document.operations().length;
const messages = document.allMessages().length;
const schemas = document.components().schemas().length;
// What the parser made of the protocol every service has: `resume`'s answers, the
// correlation ids of messages, and the top-level fields a message's payload adds
// through `allOf` (`seq` / `epoch` on room frames).
const resume = document.operations().get('resume');
const resumeReplies = resume?.reply()?.messages().all().map((m) => m.id()) ?? [];
const correlated = {};
const messageFields = {};
for (const m of document.components().messages().all()) {
  if (m.hasCorrelationId()) correlated[m.id()] = m.correlationId().location();
  const added = new Set();
  for (const part of m.payload()?.allOf() ?? []) {
    if (part.properties() && part.title() === 'RoomStamp') for (const k of Object.keys(part.properties())) added.add(k);
  }
  if (added.size) messageFields[m.id()] = [...added].sort();
}
console.log(JSON.stringify({
  valid: true, version: document.version(), operations, messages, schemas, resumeReplies, correlated, messageFields,
}));
