/**
 * WCAG AA for every place the styles put text on a colour, in both themes. The colours are
 * read from tokens.css itself, so a palette change that loses contrast fails here, not in
 * front of an audience. The pairs are listed by hand from the style sheets: a new text on
 * colour combination in the CSS belongs in this list.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const STYLES = join(__dirname, '..', 'src', 'styles');
const tokens = readFileSync(join(STYLES, 'tokens.css'), 'utf8');
const lungsCss = readFileSync(join(STYLES, 'lungs.css'), 'utf8');

/** How far lungs.css dims a standby lung's title and values (the rule that sets it). */
const STANDBY_OPACITY = (() => {
  const m = /\.lung\.is-off \.lung__title \{\s*opacity:\s*([\d.]+);/.exec(lungsCss);
  if (!m) throw new Error('lungs.css no longer dims standby lung titles where this test looks');
  return Number(m[1]);
})();

type Rgb = [number, number, number];

/** The custom properties declared in the first rule whose selector list contains `selector`. */
function block(css: string, selector: string): Map<string, string> {
  const rules = [...css.replace(/\/\*[\s\S]*?\*\//g, '').matchAll(/([^{}]+)\{([^{}]*)\}/g)];
  const rule = rules.find((r) => r[1]!.split(',').map((x) => x.trim()).includes(selector));
  if (!rule) throw new Error(`tokens.css has no rule for ${selector}`);
  const vars = new Map<string, string>();
  for (const m of rule[2]!.matchAll(/--([\w-]+)\s*:\s*([^;]+);/g)) vars.set(m[1]!, m[2]!.trim());
  return vars;
}

function hex(v: string): Rgb {
  const m = /^#([0-9a-f]{6})$/i.exec(v.trim());
  if (!m) throw new Error(`not a #rrggbb colour: ${v}`);
  const n = parseInt(m[1]!, 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

const lin = (c: number) => {
  const s = c / 255;
  return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
};
const luminance = ([r, g, b]: Rgb) => 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);

export function ratio(a: Rgb, b: Rgb): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/** `a` laid over `b` at `alpha` (what opacity and color-mix in srgb do). */
const over = (a: Rgb, b: Rgb, alpha: number): Rgb => a.map((c, i) => c * alpha + b[i]! * (1 - alpha)) as Rgb;

const light = block(tokens, ":root");
const dark = new Map([...light, ...block(tokens, "[data-theme='dark']")]);
// `:root` is shared with the light theme rule; merge in the light block's own values.
for (const [k, v] of block(tokens, "[data-theme='light']")) light.set(k, v);

function colour(theme: Map<string, string>, name: string): Rgb {
  if (name.startsWith('#')) return hex(name);
  const v = theme.get(name);
  if (v == null) throw new Error(`tokens.css defines no --${name}`);
  const ref = /^var\(--([\w-]+)\)$/.exec(v);
  return ref ? colour(theme, ref[1]!) : hex(v);
}

/**
 * A background: a token, or `accent@0.16/surface` for an accent wash over a surface
 * (the carrying lung's radial gradient at its strongest).
 */
function background(theme: Map<string, string>, bg: string): Rgb {
  const wash = /^([\w-]+)@([\d.]+)\/([\w-]+)$/.exec(bg);
  return wash ? over(colour(theme, wash[1]!), colour(theme, wash[3]!), Number(wash[2])) : colour(theme, bg);
}

interface Pair {
  /** Where the styles use it. */
  where: string;
  fg: string;
  bg: string;
  /** The text's own opacity, if the style dims it. */
  alpha?: number;
}

const PAIRS: Pair[] = [
  // Body text, secondary text, labels on every surface.
  ...['bg', 'bg-grad', 'surface', 'surface-2'].flatMap((bg) => [
    { where: `body text on ${bg}`, fg: 'text', bg },
    { where: `secondary text on ${bg}`, fg: 'text-2', bg },
    { where: `muted labels on ${bg}`, fg: 'muted', bg },
  ]),
  // Inverted chips: toast, active mode button, presentation toggle, active log filter.
  { where: 'toast, active segmented button, active log filter', fg: 'surface', bg: 'text' },
  // Lung accents as text: lung titles, carrier pill, P2P/HTTP kinds, timer lines, links.
  { where: 'P2P lung title, links, timer accents', fg: 'p2p', bg: 'surface' },
  { where: 'HTTP lung title, HTTP timer line', fg: 'http', bg: 'surface' },
  { where: 'P2P lung title over the carrying glow', fg: 'p2p', bg: 'p2p@0.16/surface' },
  { where: 'HTTP lung title over the carrying glow', fg: 'http', bg: 'http@0.16/surface' },
  { where: '"Sync via P2P" pill, P2P kind tags', fg: 'p2p', bg: 'p2p-soft' },
  { where: '"Sync via HTTP" pill, HTTP kind tags', fg: 'http', bg: 'http-soft' },
  // Semantic text.
  { where: 'Cut P2P button, failing lung note, errors', fg: 'bad', bg: 'surface' },
  { where: 'store-failure banner', fg: 'bad', bg: 'bad-soft' },
  { where: 'Restore button, verified proof', fg: 'ok', bg: 'surface' },
  { where: '"in sync" badge', fg: 'ok', bg: 'ok-soft' },
  { where: 'countdown line, reconnecting label', fg: 'warn', bg: 'surface' },
  { where: '"diverged" badge, "P2P lost — HTTP in N s" pill', fg: 'warn', bg: 'warn-soft' },
  // Text on solid accents: --on-accent is the text colour made for them.
  { where: 'primary buttons, active P2P mode, "CARRYING SYNC" on P2P', fg: 'on-accent', bg: 'p2p' },
  { where: 'active HTTP mode, "CARRYING SYNC" on HTTP', fg: 'on-accent', bg: 'http' },
  { where: '"CUT" / "FAILING" badge, error toast', fg: 'on-accent', bg: 'bad' },
  { where: 'success toast', fg: 'on-accent', bg: 'ok' },
  { where: 'presenter bar countdown chip', fg: 'on-accent', bg: 'warn' },
  // Dimmed standby lung: its title and values keep AA.
  { where: 'standby P2P lung title', fg: 'p2p', bg: 'surface', alpha: STANDBY_OPACITY },
  { where: 'standby HTTP lung title', fg: 'http', bg: 'surface', alpha: STANDBY_OPACITY },
  { where: 'standby lung values', fg: 'text', bg: 'surface', alpha: STANDBY_OPACITY },
  // What the core decided, made visible (state.css).
  { where: '"All N ledgers identical" banner', fg: 'ok', bg: 'ok-soft' },
  { where: '"checked 40 s ago" on a stale machine', fg: 'warn', bg: 'surface' },
  { where: '"Isolated" pill', fg: 'bad', bg: 'bad-soft' },
  { where: '"Isolated" pill of a lone node (calm)', fg: 'text-2', bg: 'surface-2' },
  { where: 'lost-node banner', fg: 'warn', bg: 'warn-soft' },
  { where: 'open development ledger chip', fg: 'warn', bg: 'warn-soft' },
  { where: 'countdown / P2P-down lung badge', fg: 'warn', bg: 'warn-soft' },
  { where: 'welcome card text', fg: 'text-2', bg: 'surface' },
  { where: 'machine row "linked by P2P + HTTP"', fg: 'muted', bg: 'surface' },
  // Stale values lose their colour, not their contrast.
  { where: 'stale badges, pills and a lost node\'s lung badges (greyed)', fg: 'text-2', bg: 'surface-2' },
  { where: 'stale counts and root chip', fg: 'text-2', bg: 'surface' },
];

describe.each([
  ['light', light],
  ['dark', dark],
] as const)('the %s theme', (_name, theme) => {
  it.each(PAIRS)('gives $where at least 4.5:1', ({ fg, bg, alpha }) => {
    const back = background(theme, bg);
    const front = alpha == null ? colour(theme, fg) : over(colour(theme, fg), back, alpha);
    expect(ratio(front, back)).toBeGreaterThanOrEqual(4.5);
  });
});

describe('the style sheets', () => {
  it('take every text colour from the tokens, so the pairs above are the ones on screen', () => {
    const literal: string[] = [];
    for (const f of readdirSync(STYLES).filter((n) => n.endsWith('.css') && n !== 'tokens.css')) {
      const css = readFileSync(join(STYLES, f), 'utf8');
      for (const m of css.matchAll(/(?:^|[\s;{])(color|fill)\s*:\s*([^;]+);/g)) {
        if (!/^(var\(--[\w-]+\)|inherit|currentColor|transparent|none)$/.test(m[2]!.trim())) literal.push(`${f}: ${m[0].trim()}`);
      }
    }
    expect(literal).toEqual([]);
  });
});

describe('the contrast check itself', () => {
  it('measures the WCAG ratio: black on white is 21:1, a colour on itself 1:1', () => {
    expect(ratio([0, 0, 0], [255, 255, 255])).toBeCloseTo(21, 5);
    expect(ratio([118, 118, 118], [255, 255, 255])).toBeCloseTo(4.54, 2);
    expect(ratio([79, 157, 255], [79, 157, 255])).toBe(1);
  });
});
