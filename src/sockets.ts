// --listen's sockets, made while the launcher is still root and before the fork
// (ffi/sockets.c), after the checks only TypeScript makes: the unix socket's directory
// by the pidfile's trust rules.
import { native } from "../ffi/native";
import { fail } from "./errors";
import { activated, type Listen, type Sockets } from "./listen";
import { dirname } from "./paths";
import { judge } from "./pidfile";
import type { Identity } from "./privileges";
import { close, cstr, denied, E, isInheritable, strerror, unlink } from "./sys";

/** The calls ffi/sockets.c names in *call, in its order. */
const CALLS = ["socket", "setsockopt", "bind", "listen", "chown", "chmod", "replace"] as const;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
/** The socket file's mode: the target user and its group may connect (see README). */
export const UNIX_MODE = 0o660;

export interface Opened extends Sockets {
  /** Unix socket files made here: removed when the start fails. */
  created: string[];
  /** The launcher's copies closed: the daemon (or monitor) has its own. */
  close(): void;
  /** A failed start: closed, and the socket files removed. */
  discard(): void;
}

function failed(l: Listen, call: number, errno: number): never {
  const what = `--listen ${l.text}`;
  if (CALLS[call] === "replace")
    fail("cantcreat", errno === E.EEXIST ? `${what}: ${l.path} is not a socket; refusing to replace it` : errno === E.EADDRINUSE ? `${what}: something listens on ${l.path} already` : `${what}: ${l.path}: ${strerror(errno)}`);
  const refused = denied(errno);
  const hint = refused && CALLS[call] === "bind" && l.port > 0 && l.port < 1024 ? " (a port below 1024 needs root or CAP_NET_BIND_SERVICE)" : "";
  return fail(refused ? "noperm" : "cantcreat", `${what}: ${CALLS[call]}: ${strerror(errno)}${hint}`);
}

function bindOne(l: Listen, who: Identity | undefined, unsafe: boolean): number {
  const call = new Int32Array(1);
  let fd: number;
  if (l.kind === "unix") {
    const path = l.path as string;
    const verdict = judge(dirname(path), unsafe, `--listen ${l.text}: directory`);
    if (verdict && "walkError" in verdict) fail("cantcreat", `--listen ${l.text}: ${dirname(path)}: ${verdict.walkError}`);
    if (verdict) fail("noperm", verdict.refusal);
    fd = native.dz_listen_unix(cstr(path), who?.uid ?? -1, who ? who.gid : -1, UNIX_MODE, call);
  } else {
    const type = l.kind === "tcp" ? SOCK_STREAM : SOCK_DGRAM;
    // No host: every address, IPv6 and IPv4 on one socket; IPv4 alone where IPv6 is missing.
    const addr = l.addr ?? new Uint8Array(16);
    fd = native.dz_listen_inet(type, addr.length === 4 ? AF_INET : AF_INET6, addr, l.port, l.addr ? 1 : 0, call);
    if (fd === -E.EAFNOSUPPORT && !l.addr) fd = native.dz_listen_inet(type, AF_INET, new Uint8Array(4), l.port, 0, call);
  }
  if (fd < 0) failed(l, call[0] as number, -fd);
  return fd;
}

/** The activator's sockets, then each --listen in the order given. Fails leaving nothing open or made. */
export function openSockets(listens: Listen[], who: Identity | undefined, unsafe: boolean): Opened {
  const given = activated();
  for (const fd of given.fds)
    if (!isInheritable(fd)) fail("usage", `socket activation: LISTEN_FDS=${given.fds.length}, but fd ${fd} is not open`);
  const opened: Opened = {
    fds: [...given.fds],
    names: [...given.names],
    created: [],
    close: () => {
      for (const fd of opened.fds.slice(given.fds.length)) close(fd);
    },
    discard: () => {
      opened.close();
      for (const path of opened.created) {
        try {
          unlink(path);
        } catch {
          // Gone already: nothing is left.
        }
      }
    },
  };
  try {
    for (const l of listens) {
      opened.fds.push(bindOne(l, who, unsafe));
      opened.names.push(l.name ?? "unknown");
      if (l.path) opened.created.push(l.path);
    }
  } catch (e) {
    opened.discard();
    throw e;
  }
  return opened;
}
