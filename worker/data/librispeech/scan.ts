// Scan of one LibriSpeech chapter folder (<speaker>/<chapter>/): transcript lines, FLAC headers and last frames,
// a fingerprint of what was read (names, sizes, mtimes). Runs in the index threads; every problem becomes a skip
// record naming the file (and line), never an exception.

import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { FLAC_HEAD_BYTES, FlacError, checkLastFrame, formatMismatch, parseStreamInfo, tailBytes } from '../audio/flac.js';

/** Why an utterance (or a stray entry) did not make it into the index. */
export type SkipReason =
  | 'missing_transcript' // audio with no transcript line (or no trans.txt in its chapter)
  | 'missing_audio' // transcript line with no .flac
  | 'unreadable_flac' // cannot be read, or not a FLAC stream
  | 'truncated_flac' // stream ends early / last frame broken
  | 'bad_transcript_line' // malformed line, id of another chapter, duplicate id, character outside A–Z ' space
  | 'empty_transcript'
  | 'bad_file_name' // .flac not named <speaker>-<chapter>-<utt>.flac
  | 'too_short' // fewer samples than one feature window
  | 'unexpected_entry' // a file or folder where the layout has none
  | 'unreadable_entry'; // a folder that cannot be listed

export const SKIP_REASONS: readonly SkipReason[] = [
  'missing_transcript', 'missing_audio', 'unreadable_flac', 'truncated_flac', 'bad_transcript_line',
  'empty_transcript', 'bad_file_name', 'too_short', 'unexpected_entry', 'unreadable_entry',
];

export interface SkipRecord {
  reason: SkipReason;
  /** The offending file (with :line for transcript lines). */
  path: string;
  message: string;
  /** Utterance id when known. */
  id?: string;
}

/** An indexed utterance as a chapter scan returns it (file relative to the chapter folder). */
export interface UttRecord {
  id: string;
  file: string;
  /** Samples at 16 kHz (from STREAMINFO, confirmed by the last frame). */
  samples: number;
  /** Upper case A–Z, apostrophe, single spaces. */
  transcript: string;
}

export interface ChapterJob {
  /** Absolute chapter folder. */
  dir: string;
  speaker: string;
  chapter: string;
  /** Fingerprint of the cached scan; when the folder still matches, the scan stops after listing it. */
  cachedFingerprint?: string;
  minSamples: number;
}

export interface ChapterResult {
  fingerprint: string;
  files: number;
  unchanged: boolean;
  utterances: UttRecord[];
  skipped: SkipRecord[];
  /** Files in a format other than 16 kHz mono 16-bit: an error for the whole index, named here. */
  formatErrors: { path: string; message: string }[];
}

/** Characters a transcript may hold after upper-casing: the 26 letters, apostrophe, space. */
const TRANSCRIPT_OK = /^[A-Z' ]+$/;

/**
 * Normalise one transcript text: upper case, whitespace runs → one space, trimmed. Returns the text, or a message
 * naming the first character outside A–Z, apostrophe and space (with its 1-based column in `raw`).
 */
export function normaliseTranscript(raw: string): { text: string } | { error: string } {
  const text = raw.toUpperCase().replace(/\s+/g, ' ').trim();
  if (text === '' || TRANSCRIPT_OK.test(text)) return { text };
  const up = raw.toUpperCase();
  for (let i = 0; i < up.length; i++) {
    const ch = up[i]!;
    if (!/[A-Z'\s]/.test(ch)) return { error: `character ${JSON.stringify(raw[i])} (U+${ch.codePointAt(0)!.toString(16).padStart(4, '0').toUpperCase()}) at column ${i + 1} is not a letter, apostrophe or space` };
  }
  return { error: 'unexpected characters' };
}

async function readRange(fh: fs.FileHandle, pos: number, len: number): Promise<Uint8Array> {
  const buf = Buffer.alloc(len);
  const { bytesRead } = await fh.read(buf, 0, len, pos);
  return new Uint8Array(buf.buffer, buf.byteOffset, bytesRead);
}

/** Read a FLAC's head and tail only: its sample count, or a skip / format problem. */
async function probeFlac(file: string, size: number): Promise<{ samples: number } | { skip: SkipReason; message: string } | { format: string }> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(file, 'r');
    const head = await readRange(fh, 0, Math.min(size, FLAC_HEAD_BYTES));
    const info = parseStreamInfo(head);
    const bad = formatMismatch(info);
    if (bad) return { format: bad };
    if (info.audioOffset >= 0 && size <= info.audioOffset) return { skip: 'truncated_flac', message: 'no audio frames after the metadata' };
    const n = Math.min(size, tailBytes(info));
    const tail = await readRange(fh, size - n, n);
    return { samples: checkLastFrame(tail, info) };
  } catch (e) {
    if (e instanceof FlacError) return { skip: e.kind === 'truncated' ? 'truncated_flac' : 'unreadable_flac', message: e.message };
    return { skip: 'unreadable_flac', message: `cannot read: ${(e as Error).message}` };
  } finally {
    await fh?.close();
  }
}

/** Scan one chapter folder. Never throws for the data's sake (a folder that cannot be listed is a skip record). */
export async function scanChapter(job: ChapterJob): Promise<ChapterResult> {
  const { dir, speaker, chapter } = job;
  const res: ChapterResult = { fingerprint: '', files: 0, unchanged: false, utterances: [], skipped: [], formatErrors: [] };
  const skip = (reason: SkipReason, p: string, message: string, id?: string): void => {
    res.skipped.push(id === undefined ? { reason, path: p, message } : { reason, path: p, message, id });
  };
  let entries;
  try {
    entries = (await fs.readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith('.'));
  } catch (e) {
    skip('unreadable_entry', dir, `cannot list the chapter folder: ${(e as Error).message}`);
    return res;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const transName = `${speaker}-${chapter}.trans.txt`;
  const stats = new Map<string, { size: number; mtimeMs: number }>();
  const flacs: string[] = [];
  let hasTrans = false;
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (!e.isFile()) {
      skip('unexpected_entry', p, 'a folder (or link) inside a chapter folder; LibriSpeech has none there');
      continue;
    }
    if (e.name === transName) hasTrans = true;
    else if (e.name.toLowerCase().endsWith('.flac')) flacs.push(e.name);
    else {
      skip('unexpected_entry', p, `not a .flac nor ${transName}`);
      continue;
    }
    try {
      const st = await fs.stat(p);
      stats.set(e.name, { size: st.size, mtimeMs: st.mtimeMs });
    } catch {
      stats.set(e.name, { size: -1, mtimeMs: -1 });
    }
  }
  const h = createHash('sha1');
  for (const [name, st] of stats) h.update(`${name}\t${st.size}\t${st.mtimeMs}\n`);
  res.fingerprint = h.digest('hex');
  res.files = stats.size;
  if (job.cachedFingerprint === res.fingerprint) {
    res.unchanged = true;
    res.skipped = [];
    return res;
  }

  // Transcript: `<speaker>-<chapter>-<utt> TEXT` per line.
  const lines = new Map<string, string>();
  const transPath = path.join(dir, transName);
  const prefix = `${speaker}-${chapter}-`;
  if (hasTrans) {
    let text = '';
    try {
      text = await fs.readFile(transPath, 'utf8');
    } catch (e) {
      skip('unreadable_entry', transPath, `cannot read the transcript: ${(e as Error).message}`);
    }
    text.split(/\r?\n/).forEach((line, i) => {
      if (line.trim() === '') return; // blank lines (a trailing newline) hold no utterance
      const at = `${transPath}:${i + 1}`;
      const m = /^(\S+)(?:\s+(.*))?$/.exec(line.trim());
      const id = m?.[1] ?? '';
      if (!id.startsWith(prefix) || id.length === prefix.length) {
        skip('bad_transcript_line', at, `line starts with '${id}', expected an utterance id ${prefix}<utt> then the text`, id || undefined);
        return;
      }
      if (lines.has(id)) {
        skip('bad_transcript_line', at, `utterance ${id} appears a second time; the first line is kept`, id);
        return;
      }
      const norm = normaliseTranscript(m?.[2] ?? '');
      if ('error' in norm) {
        lines.set(id, ''); // known id, unusable text: its audio is not "missing a transcript"
        skip('bad_transcript_line', at, `${norm.error}; transcripts hold A–Z, apostrophe and spaces`, id);
        return;
      }
      if (norm.text === '') {
        lines.set(id, '');
        skip('empty_transcript', at, `utterance ${id} has no text`, id);
        return;
      }
      lines.set(id, norm.text);
    });
  }

  const seen = new Set<string>();
  for (const name of flacs) {
    const p = path.join(dir, name);
    const id = name.slice(0, -'.flac'.length);
    if (!id.startsWith(prefix) || id.length === prefix.length || /\s/.test(id)) {
      skip('bad_file_name', p, `expected ${prefix}<utt>.flac in ${speaker}/${chapter}/`);
      continue;
    }
    seen.add(id);
    const text = lines.get(id);
    if (text === undefined) {
      skip('missing_transcript', p, hasTrans ? `no line for ${id} in ${transName}` : `the chapter has no ${transName}`, id);
      continue;
    }
    if (text === '') continue; // already counted as a transcript problem
    const probe = await probeFlac(p, stats.get(name)?.size ?? 0);
    if ('format' in probe) {
      res.formatErrors.push({ path: p, message: probe.format });
      continue;
    }
    if ('skip' in probe) {
      skip(probe.skip, p, probe.message, id);
      continue;
    }
    if (probe.samples < job.minSamples) {
      skip('too_short', p, `${probe.samples} samples, fewer than one ${job.minSamples}-sample feature window`, id);
      continue;
    }
    res.utterances.push({ id, file: name, samples: probe.samples, transcript: text });
  }
  for (const id of lines.keys()) {
    if (!seen.has(id)) skip('missing_audio', transPath, `line for ${id} but no ${id}.flac`, id);
  }
  return res;
}
