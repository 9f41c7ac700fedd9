// The daemon's environment. Later sources win: the caller's environment (unless
// --clear-env), then the target user's HOME/USER/LOGNAME, then --env-file, then --env.
import { byteLength } from "./bytes";
import { parseEnvAssignment } from "./cli";
import { fail } from "./errors";
import type { StartOptions } from "./options";
import type { Identity } from "./privileges";
import { ownEnvironment } from "./proc";
import { close, E, fstat, isFile, O, OsError, open, readFd } from "./sys";

const ENV_FILE_LIMIT = 1 << 20;

/** The kernel refuses any single argument or variable longer than this (MAX_ARG_STRLEN). */
export const MAX_STRING = 131072;

/**
 * Parses an env file: NAME=VALUE lines; blank lines and lines starting with # are
 * skipped; one pair of matching quotes around the value is removed, nothing else
 * is interpreted (no escapes, no $expansion).
 */
export function parseEnvFile(text: string, file: string): [string, string][] {
  const out: [string, string][] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).replace(/\r$/, "");
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const [name, raw] = parseEnvAssignment(trimmed.replace(/^export\s+/, ""), `${file} line ${i + 1}:`);
    if (/\s/.test(name)) fail("usage", `${file} line ${i + 1}: "${name}" is not a variable name`);
    const quoted = raw.length >= 2 && (raw[0] === '"' || raw[0] === "'") && raw.at(-1) === raw[0];
    out.push([name, quoted ? raw.slice(1, -1) : raw]);
  }
  return out;
}

function readEnvFile(file: string): [string, string][] {
  let text: string;
  try {
    // O_NONBLOCK: a FIFO with no writer must be refused, not wait forever for one.
    const fd = open(file, O.RDONLY | O.NONBLOCK);
    try {
      if (!isFile(fstat(fd))) fail("noinput", `env file ${file} is not a regular file`);
      text = readFd(fd, ENV_FILE_LIMIT);
    } finally {
      close(fd);
    }
  } catch (e) {
    if (!(e instanceof OsError)) throw e;
    return fail(e.errno === E.ENOENT || e.errno === E.ENOTDIR ? "noinput" : "oserr", `env file ${file}: ${e.message}`);
  }
  if (byteLength(text) > ENV_FILE_LIMIT) fail("usage", `env file ${file} is larger than 1 MiB`);
  if (text.includes("\0")) fail("usage", `env file ${file} is not a text file`);
  return parseEnvFile(text, `env file ${file}`);
}

/** Variables by name (numeric names first, as objects order keys); no prototype, so __proto__ is just a name. */
export type Environment = Record<string, string>;

export function buildEnv(o: StartOptions, who: Identity | undefined, envFile: string | undefined): Environment {
  const env: Environment = Object.assign(o.clearEnv ? Object.create(null) : ownEnvironment(), who?.env);
  if (envFile) for (const [k, v] of readEnvFile(envFile)) env[k] = v;
  for (const [k, v] of o.env) env[k] = v;
  for (const k in env) {
    const v = env[k] as string;
    // UTF-8 needs at most 3 bytes per UTF-16 unit: count the bytes only when that bound reaches the limit.
    if (3 * (k.length + v.length + 1) >= MAX_STRING && byteLength(`${k}=${v}`) >= MAX_STRING)
      fail("usage", `environment variable ${k} is longer than the kernel's limit of ${MAX_STRING} bytes`);
  }
  return env;
}

/** NAME=VALUE strings, as execve takes them. */
export const envp = (env: Environment): string[] => Object.keys(env).map((k) => `${k}=${env[k]}`);
