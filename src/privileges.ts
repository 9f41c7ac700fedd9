// Who the daemon runs as. Names are looked up here, in the launcher and outside
// any chroot, so the child only has numbers to apply: groups, then gid, then uid.
import { native } from "../ffi/native";
import { fail } from "./errors";
import { cString, cstr, OsError } from "./sys";

export interface Identity {
  /** -1 leaves the uid as it is (only --group was given). */
  uid: number;
  gid: number;
  /** Exactly the supplementary groups the daemon gets. */
  groups: number[];
  /** HOME, USER and LOGNAME for the daemon, when a user was named. */
  env?: { HOME: string; USER: string; LOGNAME: string };
}

const NUMBER = /^\d{1,10}$/;
const MAX_ID = 0xfffffffe; // (uid_t)-1 means "unchanged" to the kernel

interface Passwd {
  uid: number;
  gid: number;
  home: string;
  name: string;
}

function lookupUser(spec: string): Passwd | undefined {
  const ids = new BigInt64Array(2);
  const home = new Uint8Array(4096);
  const name = new Uint8Array(256);
  const byId = NUMBER.test(spec);
  const r = native.dz_getpw(byId ? null : cstr(spec), byId ? checkId(spec, "uid") : 0, ids, home, home.length, name, name.length);
  if (r < 0) fail("nouser", `looking up user ${spec}: ${new OsError(-r).message}`);
  if (r === 0) return undefined;
  return { uid: Number(ids[0]), gid: Number(ids[1]), home: cString(home), name: cString(name) };
}

function lookupGroup(spec: string): number {
  if (NUMBER.test(spec)) return checkId(spec, "gid");
  const gid = new BigInt64Array(1);
  const r = native.dz_getgr(cstr(spec), gid);
  if (r < 0) fail("nouser", `looking up group ${spec}: ${new OsError(-r).message}`);
  if (r === 0) fail("nouser", `unknown group "${spec}"`);
  return Number(gid[0]);
}

function checkId(spec: string, what: string): number {
  const id = Number(spec);
  if (id > MAX_ID) fail("nouser", `${what} ${spec} is out of range`);
  return id;
}

function groupList(user: string, gid: number): number[] {
  const buf = new Uint32Array(65536);
  const n = native.dz_grouplist(cstr(user), gid, buf, buf.length);
  if (n < 0) fail("oserr", `user ${user} is in more groups than the kernel allows`);
  return [...new Set(buf.subarray(0, n))];
}

/**
 * Resolves --user USER[:GROUP] and --group GROUP. Supplementary groups are the
 * user's own (as initgroups would set them), or only GROUP when USER:GROUP is given,
 * so no group of the caller's (root's group 0 above all) is ever left behind.
 */
export function resolveIdentity(userSpec: string | undefined, groupSpec: string | undefined): Identity | undefined {
  if (userSpec === undefined && groupSpec === undefined) return undefined;
  let user = userSpec;
  let group = groupSpec;
  const colon = userSpec?.indexOf(":") ?? -1;
  if (userSpec !== undefined && colon >= 0) {
    if (groupSpec !== undefined) fail("usage", "give the group once: either --user USER:GROUP or --group GROUP");
    user = userSpec.slice(0, colon);
    group = userSpec.slice(colon + 1);
    if (user === "" || group === "") fail("usage", `--user ${JSON.stringify(userSpec)} is not USER or USER:GROUP`);
  }
  requireRoot(userSpec !== undefined ? "--user" : "--group");
  const gid = group === undefined ? undefined : lookupGroup(group);
  if (user === undefined) return { uid: -1, gid: gid as number, groups: [gid as number] };

  const pw = lookupUser(user);
  if (!pw) {
    if (!NUMBER.test(user)) return fail("nouser", `unknown user "${user}"`);
    if (gid === undefined)
      return fail("nouser", `uid ${user} has no passwd entry, so its group is unknown: give one with --user ${user}:GROUP`);
    const uid = checkId(user, "uid");
    return { uid, gid, groups: [gid], env: { HOME: "/", USER: user, LOGNAME: user } };
  }
  const primary = gid ?? pw.gid;
  const onlyGroup = colon >= 0;
  return {
    uid: pw.uid,
    gid: primary,
    groups: onlyGroup ? [primary] : groupList(pw.name, primary),
    env: { HOME: pw.home, USER: pw.name, LOGNAME: pw.name },
  };
}

export function requireRoot(what: string): void {
  const euid = process.geteuid?.() ?? 0;
  if (euid !== 0) fail("noperm", `${what} needs root (running as uid ${euid})`);
}

/** An NSS lookup can cost a file read or a round trip to a directory server; many daemons share a few users. */
const names = new Map<number, string>();

/** The login name of a uid, or the number when it has none. */
export function userName(uid: number): string {
  let name = names.get(uid);
  if (name === undefined) names.set(uid, (name = lookupUser(String(uid))?.name ?? String(uid)));
  return name;
}
