import fs from 'node:fs';

/** Bytes of zeros added at a time: one slower fdatasync per this much WAL, the first time. */
const CHUNK_BYTES = 1024 * 1024;
/** Extend once the writes come this close to the end of the reserved space. */
const MARGIN_BYTES = 256 * 1024;
/** The WAL header, before the first frame. */
const WAL_HEADER_BYTES = 32;
/** Each WAL frame is a page plus this header. */
const FRAME_HEADER_BYTES = 24;

/**
 * Keeps the WAL file extended with zeros ahead of SQLite's writes, so that a commit writes into
 * blocks the file already has instead of growing it.
 *
 * Why: on ext4 (and most file systems) an fdatasync after an append must also commit the new
 * size and block allocation to the file system's journal; after an overwrite inside the file's
 * size it only writes the data. `npm run bench -- --only=fdatasync` measures both on the machine
 * at hand (here: p50 0.32–0.38 ms appending vs 0.19–0.20 ms overwriting). SQLite appends to the
 * WAL until a checkpoint RESTARTs it, after which it overwrites it from its start; so a fresh
 * WAL (every start of the process: SQLite deletes the WAL when the last connection closes) paid
 * the append price for its first `checkpointBytes` (16 MiB by default) of writes.
 *
 * Why this is safe for SQLite: the zeros are only ever written past the file's current size,
 * where no valid frame can be, and only while this connection holds the WAL write lock (inside
 * a write transaction, before its frames are written), so no other connection can append
 * meanwhile. SQLite reads the WAL frame by frame and stops at the first frame whose salt and
 * checksum do not match its header: a zero frame never does, so recovery ignores them, exactly
 * like the stale frames a RESTARTed WAL leaves behind.
 */
export class WalReserve {
  /** The file size as of the last extension: the WAL is reserved up to here. */
  private reservedTo = 0;
  private readonly frameBytes: number;
  private readonly zeros = Buffer.alloc(CHUNK_BYTES);
  /** Bytes of zeros written, for the stats. */
  written = 0;

  constructor(
    private readonly fd: number,
    pageSize: number,
    /** Never reserve past this size (the checkpoint threshold plus a chunk). */
    private readonly limitBytes: number,
  ) {
    this.frameBytes = pageSize + FRAME_HEADER_BYTES;
  }

  /** Whether a write that follows `frames` frames comes close to the end of the reserved space. */
  needed(frames: number): boolean {
    return (
      this.reservedTo < this.limitBytes &&
      WAL_HEADER_BYTES + frames * this.frameBytes + MARGIN_BYTES > this.reservedTo
    );
  }

  /**
   * How many more frames may follow `frames` before {@link needed} says yes (Infinity once the
   * reserve reached its limit): lets the caller read the WAL's size less often.
   */
  framesLeft(frames: number): number {
    if (this.reservedTo >= this.limitBytes) return Infinity;
    const room = this.reservedTo - MARGIN_BYTES - WAL_HEADER_BYTES;
    return Math.max(0, Math.floor(room / this.frameBytes) - frames);
  }

  /**
   * Extends the file by a chunk of zeros past its current size. Call only while holding the WAL
   * write lock (inside a write transaction). Throws what the file system throws.
   */
  extend(): void {
    const size = fs.fstatSync(this.fd).size;
    if (size >= this.limitBytes) {
      this.reservedTo = size;
      return;
    }
    const end = Math.min(size + CHUNK_BYTES, this.limitBytes);
    let at = size;
    while (at < end) at += fs.writeSync(this.fd, this.zeros, 0, end - at, at);
    this.written += end - size;
    this.reservedTo = end;
  }
}
