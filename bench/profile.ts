/**
 * Summarizes a V8 `.cpuprofile` (as `node --cpu-prof` writes it): self time per function and
 * per file, largest first.
 *
 *   node --import tsx bench/profile.ts path/to/file.cpuprofile [top=15]
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface CpuProfile {
  nodes: Array<{
    id: number;
    children?: number[];
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  }>;
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface HotSpot {
  name: string;
  where: string;
  selfMs: number;
  pct: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  functions: HotSpot[];
  files: HotSpot[];
  /** Coarse areas: GC, SQLite (native calls from the store), node-postgres, socket I/O, each src/ folder, Node internals. */
  areas: HotSpot[];
}

type Frame = CpuProfile['nodes'][number]['callFrame'];

/** Which part of the system a sample belongs to; natives go by their JavaScript caller. */
function area(cf: Frame, caller: Frame | undefined, root: string): string {
  if (!cf.url && !caller)
    return cf.functionName.startsWith('(') ? `V8 ${cf.functionName}` : 'native, no JS caller';
  const url = shortUrl((caller ?? cf).url, root);
  const native = caller !== undefined;
  if (native && url.startsWith('src/store/') && !url.startsWith('src/store/postgres/'))
    return 'SQLite (native statement calls from src/store)';
  if (native && url.startsWith('node_modules/better-sqlite3'))
    return 'SQLite (native statement calls from src/store)';
  if (native && cf.functionName === 'fdatasync') return 'fdatasync dispatch (native)';
  if (native && url.startsWith('node:internal/stream_base_commons'))
    return 'socket writes (native)';
  const m = /^src\/[^/]+/.exec(url);
  const where = m
    ? m[0]
    : url.startsWith('node:')
      ? 'Node internals (http, streams, events, fs)'
      : /^node_modules\/pg(-[a-z]+)?\//.test(url)
        ? 'node-postgres (pg, pg-protocol, pg-pool)'
        : url.startsWith('node_modules/')
          ? 'node_modules'
          : url;
  return native ? `${where} (native calls)` : where;
}

function shortUrl(url: string, root: string): string {
  if (url === '') return '';
  let u = url.startsWith('file://') ? fileURLToPath(url) : url;
  if (u.startsWith(root)) u = u.slice(root.length + 1);
  return u.replace(/^.*node_modules\//, 'node_modules/');
}

export function summarizeProfile(file: string, root = process.cwd()): ProfileSummary {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) {
    // timeDeltas[i] is the time since the previous sample; attribute the next delta to this sample.
    const dt = prof.timeDeltas[i + 1] ?? 0;
    const id = prof.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
  }
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const jsCaller = (id: number): CpuProfile['nodes'][number]['callFrame'] | undefined => {
    for (let p = parent.get(id); p !== undefined; p = parent.get(p)) {
      const cf = byId.get(p)!.callFrame;
      if (cf.url) return cf;
    }
    return undefined;
  };
  const fns = new Map<string, HotSpot>();
  const files = new Map<string, HotSpot>();
  const areas = new Map<string, HotSpot>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const cf = n.callFrame;
    total += us;
    if (cf.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const name = cf.functionName || '(anonymous)';
    let where: string;
    let fileKey: string;
    if (cf.url) {
      where = `${shortUrl(cf.url, root)}:${cf.lineNumber + 1}`;
      fileKey = shortUrl(cf.url, root);
    } else if (name.startsWith('(')) {
      // (garbage collector), (program): V8 itself.
      where = '';
      fileKey = name;
    } else {
      // A native (C++) function: attribute it to the nearest JavaScript caller, which says
      // what it is (better-sqlite3's Statement#run called from the store is SQLite).
      const caller = jsCaller(id);
      where = caller
        ? `native, called by \`${caller.functionName || '(anonymous)'}\` ${shortUrl(caller.url, root)}:${caller.lineNumber + 1}`
        : 'native';
      fileKey = caller ? `${shortUrl(caller.url, root)} (native calls)` : '(native)';
    }
    const key = `${name}@${where}`;
    const f = fns.get(key) ?? { name, where, selfMs: 0, pct: 0 };
    f.selfMs += us / 1000;
    fns.set(key, f);
    const g = files.get(fileKey) ?? { name: fileKey, where: '', selfMs: 0, pct: 0 };
    g.selfMs += us / 1000;
    files.set(fileKey, g);
    const areaKey = area(cf, cf.url || name.startsWith('(') ? undefined : jsCaller(id), root);
    const a = areas.get(areaKey) ?? { name: areaKey, where: '', selfMs: 0, pct: 0 };
    a.selfMs += us / 1000;
    areas.set(areaKey, a);
  }
  const busyMs = (total - idle) / 1000;
  const finish = (m: Map<string, HotSpot>): HotSpot[] =>
    [...m.values()]
      .map((h) => ({ ...h, pct: busyMs > 0 ? (100 * h.selfMs) / busyMs : 0 }))
      .sort((a, b) => b.selfMs - a.selfMs);
  return {
    totalMs: total / 1000,
    idleMs: idle / 1000,
    functions: finish(fns),
    files: finish(files),
    areas: finish(areas),
  };
}

export function formatSummary(s: ProfileSummary, top = 15): string {
  const busy = s.totalMs - s.idleMs;
  const lines = [
    `Profile: ${s.totalMs.toFixed(0)} ms sampled, ${busy.toFixed(0)} ms busy (${((100 * busy) / (s.totalMs || 1)).toFixed(1)}%), ${s.idleMs.toFixed(0)} ms idle. Percentages are of busy time.`,
    '',
    `Top ${top} functions by self time:`,
    '',
    '| # | self ms | % busy | function | where |',
    '| -: | -: | -: | --- | --- |',
    ...s.functions
      .slice(0, top)
      .map(
        (h, i) =>
          `| ${i + 1} | ${h.selfMs.toFixed(1)} | ${h.pct.toFixed(1)} | \`${h.name}\` | ${h.where} |`,
      ),
    '',
    'By area (natives counted with their JavaScript caller):',
    '',
    '| self ms | % busy | area |',
    '| -: | -: | --- |',
    ...s.areas.map((h) => `| ${h.selfMs.toFixed(1)} | ${h.pct.toFixed(1)} | ${h.name} |`),
    '',
    `Top ${top} files by self time:`,
    '',
    '| # | self ms | % busy | file |',
    '| -: | -: | -: | --- |',
    ...s.files
      .slice(0, top)
      .map((h, i) => `| ${i + 1} | ${h.selfMs.toFixed(1)} | ${h.pct.toFixed(1)} | ${h.name} |`),
  ];
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node --import tsx bench/profile.ts file.cpuprofile [top]');
    process.exit(2);
  }
  console.log(formatSummary(summarizeProfile(file), Number(process.argv[3] ?? 15)));
}
