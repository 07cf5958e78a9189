/**
 * Command-line values that yargs cannot check by itself, checked before
 * anything runs: a bad one is bad input (exit 1, a message naming the
 * option), never a run that fails on every host or an internal error.
 *
 * yargs turns a word given to a number option into NaN, so the word itself is
 * lost by the time it reaches us: such values are reported as "not a number".
 */
import fs from 'node:fs';
import { ConfigError } from '../config/diagnostics.js';
import { errorMessage } from '../errors.js';
import type { ParsedArgs } from './io.js';

/** setTimeout's limit, 2^31 - 1 ms: Node fires longer delays at once. */
export const MAX_SECONDS = 2_147_483;

function invalid(summary: string): ConfigError {
  return new ConfigError([{ severity: 'error', summary }]);
}

/** The number given to `--name`; `want` says what a good value is. */
export function numberOption(args: ParsedArgs, name: string, want: string): number {
  const value = args[name];
  if (Array.isArray(value)) throw invalid(`--${name}: given ${value.length} times; give it once`);
  if (typeof value !== 'number' || Number.isNaN(value)) throw invalid(`--${name}: not a number; ${want}`);
  return value;
}

/** A whole number, 1 or more (`--forks`). */
export function countOption(args: ParsedArgs, name: string, what: string): number {
  const want = `give ${what}, 1 or more`;
  const value = numberOption(args, name, want);
  if (!Number.isSafeInteger(value) || value < 1) throw invalid(`--${name} ${value}: ${want}`);
  return value;
}

/** Seconds, more than 0 (or at least `atLeast`), at most MAX_SECONDS (`--connect-timeout`). */
export function secondsOption(args: ParsedArgs, name: string, atLeast?: number): number {
  const want = atLeast === undefined ? 'give seconds, more than 0' : `give seconds, at least ${atLeast}`;
  const value = numberOption(args, name, want);
  const tooLow = atLeast === undefined ? !(value > 0) : !(value >= atLeast);
  if (tooLow) throw invalid(`--${name} ${value}: ${want}`);
  if (!(value <= MAX_SECONDS)) throw invalid(`--${name} ${value}: give seconds, at most ${MAX_SECONDS}`);
  return value;
}

/** A TCP port, 1 to 65535 (`--port`). */
export function portOption(args: ParsedArgs, name: string): number {
  const want = 'give a TCP port, 1 to 65535';
  const value = numberOption(args, name, want);
  if (!Number.isInteger(value) || value < 1 || value > 65535) throw invalid(`--${name} ${value}: ${want}`);
  return value;
}

/**
 * A file that must be readable now (`--private-key`): one missing or
 * unreadable key would otherwise make every host look unreachable.
 */
export function readableFileOption(args: ParsedArgs, name: string): string | undefined {
  const value = args[name];
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw invalid(`--${name}: given ${value.length} times; give it once`);
  const file = String(value);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    throw invalid(`--${name} ${file}: cannot read it: ${errorMessage(error)}`);
  }
  try {
    if (!fs.fstatSync(fd).isFile()) throw invalid(`--${name} ${file}: not a file`);
  } finally {
    fs.closeSync(fd);
  }
  return file;
}
