// The README's screenshots (docs/screenshots/): the truth check of the app
// (e2e/truth-app.mjs) plays the whole demo from the presenter bar at 1280x720 and at
// 1920x1080, taking a screenshot of every step; the steps the README shows are kept,
// optimised (stripped, 256-colour palette PNG). A run whose window disagreed with its node
// keeps no picture: a screenshot of a wrong window is no documentation.
// Run by hand after building the app (each run gets its own `dbus-run-session`):
//   cargo build -p lattice-app --features custom-protocol && node e2e/demo-shots.mjs
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, ARTIFACTS } from './lib.mjs';

const OUT = join(ROOT, 'docs', 'screenshots');
const SIZES = (process.env.SHOT_SIZES || '1280x720,1920x1080').split(',');
/** Step name in truth-app's file names -> the README's picture. */
const KEEP = { 'demo-p2p': 'p2p', 'cut-countdown': 'countdown', 'http-fallback': 'http-fallback', 'written-during-cut': 'written-during-cut', restored: 'restored', 'presentation-http-fallback': 'presentation-http-fallback' };
mkdirSync(OUT, { recursive: true });

const raw = mkdtempSync(join(tmpdir(), 'lattice-shots-'));
let failed = false;
try {
  for (const size of SIZES) {
    const [w, h] = size.split('x');
    // Each run on its own session bus, so no instance of an earlier run can be found.
    const r = spawnSync('dbus-run-session', [process.execPath, join(ROOT, 'e2e', 'truth-app.mjs')], {
      stdio: 'inherit', timeout: 400_000, killSignal: 'SIGTERM',
      env: { ...process.env, TRUTH_WIDTH: w, TRUTH_HEIGHT: h, TRUTH_SHOTS_DIR: raw },
    });
    if (r.status !== 0) {
      failed = true;
      // Its pictures go to artifacts/e2e/ as evidence (the moment it was wrong, the end).
      for (const f of readdirSync(raw).filter((x) => x.startsWith(`truth-app-${size}-`))) copyFileSync(join(raw, f), join(ARTIFACTS, f));
      console.error(`demo-shots: the ${size} run failed (${r.status ?? r.signal}); its pictures are in artifacts/e2e/, not in docs/`);
      continue;
    }
    for (const f of readdirSync(raw).filter((x) => x.startsWith(`truth-app-${size}-`))) {
      const step = f.replace(/^truth-app-\d+x\d+-\d+-/, '').replace(/\.png$/, '');
      if (!KEEP[step]) continue;
      const out = join(OUT, `app-${size}-${KEEP[step]}.png`);
      const c = spawnSync('convert', [join(raw, f), '-strip', '-colors', '256', '-define', 'png:compression-level=9', `PNG8:${out}`], { stdio: 'inherit' });
      if (c.status !== 0) throw new Error(`convert failed on ${f}`);
      console.log(`demo-shots: ${out} (${Math.round(statSync(out).size / 1024)} KiB)`);
    }
  }
} finally {
  rmSync(raw, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
