// --listen and socket activation: the addresses parsed and checked here, the sockets made by
// ffi/sockets.c while the launcher is still root, and handed to the program by the child path
// (ffi/handon.c) as fds 3, 4, ... with the systemd protocol's LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES.
import { byteLength } from "./bytes";
import { fail } from "./errors";
import { absolute } from "./paths";
import type { Environment } from "./env";

/** One --listen, as parsed. */
export interface Listen {
  /** As given, for messages. */
  text: string;
  name?: string;
  kind: "tcp" | "udp" | "unix";
  /** tcp and udp: the address bytes (4 or 16), or undefined for every address. */
  addr?: Uint8Array;
  port: number;
  /** unix: the path, absolute. */
  path?: string;
}

/** Linux's sun_path holds 108 bytes with the NUL. */
const UNIX_PATH_MAX = 107;
const NAME = /^[A-Za-z0-9_.-]{1,255}$/;

const usage = (text: string, why: string): never => fail("usage", `--listen ${JSON.stringify(text)}: ${why}`);

function ipv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) < 256)) return undefined;
  return Uint8Array.from(parts.map(Number));
}

function ipv6(text: string): Uint8Array | undefined {
  let head = text;
  let tail4: Uint8Array | undefined;
  // An IPv4 address in the last 32 bits (::ffff:127.0.0.1) stands for two groups until it is copied in.
  if (text.includes(".")) {
    const last = text.lastIndexOf(":");
    tail4 = ipv4(text.slice(last + 1));
    if (!tail4) return undefined;
    head = `${text.slice(0, last + 1)}0:0`;
  }
  const want = 8;
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const left = groups(halves[0] as string);
  const right = halves.length === 2 ? groups(halves[1] as string) : [];
  const missing = want - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...left, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...right];
  if (!all.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    const v = Number.parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  if (tail4) out.set(tail4, 12);
  return out;
}

/** [NAME=]ADDR, ADDR one of tcp:[HOST:]PORT, udp:[HOST:]PORT, unix:PATH. */
export function parseListen(text: string, cwd: string): Listen {
  const eq = text.indexOf("=");
  const colon = text.indexOf(":");
  const named = eq >= 0 && (colon < 0 || eq < colon);
  const name = named ? text.slice(0, eq) : undefined;
  const addr = named ? text.slice(eq + 1) : text;
  if (name !== undefined && !NAME.test(name)) usage(text, "NAME must be 1 to 255 letters, digits, _, - or .");
  const kind = addr.slice(0, addr.indexOf(":"));
  const rest = addr.slice(kind.length + 1);
  if (kind === "unix") {
    if (rest === "") usage(text, "unix: needs a PATH");
    const path = absolute(cwd, rest);
    if (byteLength(path) > UNIX_PATH_MAX) usage(text, `the path is longer than a socket address holds (${UNIX_PATH_MAX} bytes)`);
    if (path.endsWith("/")) usage(text, "the path names a directory");
    return { text, name, kind, port: 0, path };
  }
  if (kind !== "tcp" && kind !== "udp") return usage(text, "ADDR must be tcp:[HOST:]PORT, udp:[HOST:]PORT or unix:PATH");
  const m = /^(?:(\[[^\]]*\]|[^:[\]]*):)?(\d{1,5})$/.exec(rest);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) return usage(text, "PORT must be a number from 1 to 65535");
  const host = m[1];
  let bytes: Uint8Array | undefined;
  if (host !== undefined) {
    bytes = host.startsWith("[") ? ipv6(host.slice(1, -1)) : ipv4(host);
    if (!bytes) usage(text, "HOST must be an IPv4 address or an IPv6 address in brackets (names are not looked up)");
  }
  return { text, name, kind, addr: bytes, port: Number(m[2]) };
}

/** The sockets a start hands on: fds in the launcher, in the order the program gets them, and their names. */
export interface Sockets {
  fds: number[];
  names: string[];
}

/**
 * Socket activation: the sockets daemonize itself was given (a systemd socket unit,
 * systemd-socket-activate), when LISTEN_PID names this process; else none.
 */
export function activated(env: Record<string, string | undefined> = process.env): Sockets {
  const count = env.LISTEN_FDS;
  if (env.LISTEN_PID !== String(process.pid) || count === undefined || !/^\d{1,4}$/.test(count)) return { fds: [], names: [] };
  const given = (env.LISTEN_FDNAMES ?? "").split(":");
  const fds = Array.from({ length: Number(count) }, (_, i) => 3 + i);
  return { fds, names: fds.map((_, i) => given[i] || "unknown") };
}

/** The digits the child path fills in with its own pid (ffi/handon.c): room for any pid. */
export const LISTEN_PID_SLOT = "0000000000";

/** The program's environment with the protocol's variables for these sockets, and none of an activator's left. */
export function listenEnvironment(env: Environment, s: Sockets): Environment {
  if (s.fds.length === 0) return env;
  const out: Environment = Object.assign(Object.create(null), env);
  delete out.LISTEN_FDS;
  delete out.LISTEN_PID;
  delete out.LISTEN_FDNAMES;
  return Object.assign(out, { LISTEN_FDS: String(s.fds.length), LISTEN_PID: LISTEN_PID_SLOT, LISTEN_FDNAMES: s.names.join(":") });
}
