// What every browser script starts with: its arguments, the summary it prints, and
// Debian's chromium launched headless with a fresh profile, reaching for no network but
// the page's origin.
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

/** Every bounded wait of the scripts, in ms. */
export const STEP_MS = 15000;

/** `node SCRIPT BASE_URL [OUT_DIR]`: the arguments, and the summary with its `step`. */
export function start(script) {
  const [, , baseUrl, outDir = 'target/browser'] = process.argv;
  if (!baseUrl) {
    console.error(`usage: node ${script} BASE_URL [OUT_DIR]`);
    process.exit(2);
  }
  mkdirSync(outDir, { recursive: true });
  const summary = { url: baseUrl, steps: [] };
  const step = (name) => { summary.steps.push(name); console.error(`-- ${name}`); };
  return { baseUrl, outDir, summary, step };
}

/** Chromium (`CHROMIUM`, else /usr/bin/chromium), headless, a fresh temporary profile. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-default-apps',
      '--disable-extensions',
      '--metrics-recording-only',
    ],
    timeout: STEP_MS,
  });
}
