// Shared by listen.test.ts and reload.test.ts: the test server and client, free ports,
// and what the server says.
import { readFileSync } from "node:fs";
import { waitFor } from "./helpers";

export const SERVER = `${import.meta.dir}/socket-server.py`;
export const CLIENT = `${import.meta.dir}/socket-client.py`;

/** A port that was free a moment ago, found by binding port 0. */
export async function freePort(host = "127.0.0.1", udp = false): Promise<number> {
  if (udp) {
    const s = await Bun.udpSocket({ hostname: host, port: 0 });
    const port = s.port;
    s.close();
    return port;
  }
  const s = Bun.listen({ hostname: host, port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

export interface Report {
  pid: number;
  uid: number;
  fds: number;
  names: string[];
  socks: { family: number; type: number; addr: string }[];
}

/** The server's first line in its log. */
export const report = (log: string): Promise<Report> =>
  waitFor(() => {
    const line = readFileSync(log, "utf8").split("\n").find((l) => l.startsWith("{"));
    return line ? (JSON.parse(line) as Report) : undefined;
  }, "the server's report");

/** One HTTP GET over a fresh connection: the body (pid uid). */
export async function get(host: string, port: number): Promise<string> {
  const r = await fetch(`http://${host.includes(":") ? `[${host}]` : host}:${port}/`, { headers: { connection: "close" }, keepalive: false });
  return (await r.text()).trim();
}

