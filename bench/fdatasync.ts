/**
 * What one fdatasync costs on this machine's disk, the floor under every durable write (issue 18):
 * a small write then `fdatasync`, in two ways —
 *
 * - **append**: each write extends the file (as SQLite's write-ahead log does while it only
 *   grows), so the sync also has to record the new size;
 * - **overwrite**: each write lands in a file already that size (as a WAL that is reused from
 *   its start after a checkpoint), so only the data is flushed.
 *
 * `npm run bench` measures both at the start of every run, in the directory of its SQLite files,
 * prints them in its header and judges the sequential `fsync` rows against the overwrite p50;
 * `--only=fdatasync` prints this table alone. Run alone with `npx tsx bench/fdatasync.ts [samples]`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface FdatasyncResult {
  samples: number;
  /** Bytes per write: one 4 KiB page plus a frame header, about what a small commit adds. */
  bytes: number;
  append: { p50: number; p99: number };
  overwrite: { p50: number; p99: number };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * Milliseconds of each write + fdatasync, `samples` of each kind, alternating in blocks of 50 so
 * that both see the same disk weather. The files are created in `dir` and removed afterwards.
 */
export function measureFdatasync(dir: string, samples = 1000): FdatasyncResult {
  const bytes = 4096 + 24;
  const buf = Buffer.alloc(bytes, 7);
  fs.mkdirSync(dir, { recursive: true });
  const appendPath = path.join(dir, 'fdatasync-append.bin');
  const overwritePath = path.join(dir, 'fdatasync-overwrite.bin');
  const size = bytes * samples;
  // The overwritten file gets its size, and its blocks, before the clock starts.
  fs.writeFileSync(overwritePath, Buffer.alloc(size));
  const ofd = fs.openSync(overwritePath, 'r+');
  fs.fsyncSync(ofd);
  const afd = fs.openSync(appendPath, 'w');
  const times = { append: [] as number[], overwrite: [] as number[] };
  try {
    for (let i = 0; i < samples; i += 50) {
      for (let j = i; j < Math.min(samples, i + 50); j++) {
        const t0 = process.hrtime.bigint();
        fs.writeSync(afd, buf, 0, bytes, j * bytes);
        fs.fdatasyncSync(afd);
        times.append.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      for (let j = i; j < Math.min(samples, i + 50); j++) {
        const t0 = process.hrtime.bigint();
        fs.writeSync(ofd, buf, 0, bytes, j * bytes);
        fs.fdatasyncSync(ofd);
        times.overwrite.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
  } finally {
    fs.closeSync(afd);
    fs.closeSync(ofd);
    fs.rmSync(appendPath, { force: true });
    fs.rmSync(overwritePath, { force: true });
  }
  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return { p50: quantile(s, 0.5), p99: quantile(s, 0.99) };
  };
  return { samples, bytes, append: stats(times.append), overwrite: stats(times.overwrite) };
}

/** The section `npm run bench` prints. */
export function fdatasyncTable(r: FdatasyncResult): string {
  const ms = (x: number) => `${x.toFixed(3)} ms`;
  return [
    '## fdatasync on this disk',
    '',
    '| Write + fdatasync | p50 | p99 |',
    '| :--- | ---: | ---: |',
    `| append (the file grows) | ${ms(r.append.p50)} | ${ms(r.append.p99)} |`,
    `| overwrite (the file has its size) | ${ms(r.overwrite.p50)} | ${ms(r.overwrite.p99)} |`,
    '',
    `${r.samples} writes of ${r.bytes} bytes of each kind, alternating in blocks of 50, in the ` +
      "bench's temporary directory (where its SQLite files are), at the start of the run: the floor under one durable round trip of the SQLite store.",
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const dir = path.join(
    path.dirname(fileURLToPath(import.meta.url)),
    '..',
    '.tmp',
    `fdatasync-${process.pid}`,
  );
  try {
    console.log(fdatasyncTable(measureFdatasync(dir, Number(process.argv[2] ?? 1000))));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
