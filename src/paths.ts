// The few path operations daemonize needs; node:path costs more to load than they do.
// Paths are joined, never normalised lexically: ".." after a symlinked directory
// must mean what the kernel says it means.

/** `p` made absolute against `base`. */
export const absolute = (base: string, p: string): string =>
  p.startsWith("/") ? p : `${base === "/" ? "" : base}/${p}`;

export const dirname = (p: string): string => p.slice(0, p.lastIndexOf("/")) || "/";
export const basename = (p: string): string => p.slice(p.lastIndexOf("/") + 1);
