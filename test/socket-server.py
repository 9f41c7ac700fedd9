#!/usr/bin/python3
# The test server for --listen and reload: takes its sockets as any socket-activated
# server does (LISTEN_FDS, only when LISTEN_PID is its own pid), prints what it got as
# one JSON line, tells --ready notify it is ready, and serves: HTTP on each stream
# socket (the body: its pid and uid), an echo of pid and uid on each datagram one. On
# TERM it accepts nothing more, finishes what it accepted, waits DRAIN_MS and exits.
# argv[1], a file: "fail" exits 3 at once, "hang" never gets ready, "slow" gets ready after 1 s.
# Without sockets from LISTEN_FDS it binds 127.0.0.1:$PORT itself, when PORT is set.
import json, os, select, signal, socket, sys, threading, time

mode = ""
if len(sys.argv) > 1 and os.path.exists(sys.argv[1]):
    mode = open(sys.argv[1]).read().strip()
if mode == "fail":
    sys.exit(3)
mine = os.environ.get("LISTEN_PID") == str(os.getpid())
n = int(os.environ.get("LISTEN_FDS", "0")) if mine else 0
socks = [socket.socket(fileno=3 + i) for i in range(n)]
if not socks and os.environ.get("PORT"):
    # Given no socket (the benchmark's peers), it binds its port itself, as servers do.
    own = socket.socket()
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    own.bind(("127.0.0.1", int(os.environ["PORT"])))
    own.listen(socket.SOMAXCONN)
    socks = [own]
print(json.dumps({
    "pid": os.getpid(), "uid": os.getuid(), "fds": n, "names": os.environ.get("LISTEN_FDNAMES", "").split(":"),
    "socks": [{"family": int(s.family), "type": int(s.type), "addr": str(s.getsockname())} for s in socks],
}), flush=True)

# Set by the TERM handler: a plain flag, as a handler that takes a lock (Event.set) can deadlock
# with the main thread it interrupts while that holds the same lock.
stopping = [False]
busy = [0]
lock = threading.Lock()
body = b"%d %d\n" % (os.getpid(), os.getuid())

def answer(c):
    try:
        c.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data and b"\n\n" not in data:
            more = c.recv(4096)
            if not more:
                break
            data += more
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
    except OSError:
        pass
    finally:
        c.close()
        with lock:
            busy[0] -= 1

def serve(s):
    # Every instance shares the socket: non-blocking, so a connection another took is no hang.
    s.setblocking(False)
    while not stopping[0]:
        if not select.select([s], [], [], 0.05)[0]:
            continue
        try:
            if s.type == socket.SOCK_STREAM:
                c, _ = s.accept()
                c.setblocking(True)
                with lock:
                    busy[0] += 1
                threading.Thread(target=answer, args=(c,), daemon=True).start()
            else:
                _, peer = s.recvfrom(2048)
                s.sendto(body, peer)
        except (BlockingIOError, InterruptedError):
            pass

servers = [threading.Thread(target=serve, args=(s,), daemon=True) for s in socks]
for t in servers:
    t.start()
signal.signal(signal.SIGTERM, lambda *_: stopping.__setitem__(0, True))
if mode == "slow":
    time.sleep(1)
notify = os.environ.get("NOTIFY_SOCKET")
if notify and mode != "hang":
    u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    u.connect("\0" + notify[1:] if notify.startswith("@") else notify)
    u.send(b"READY=1")
while not stopping[0]:
    time.sleep(0.02)
# Whatever a server thread accepted before it saw the stop is counted once it has ended.
for t in servers:
    t.join()
while True:
    with lock:
        if busy[0] == 0:
            break
    time.sleep(0.01)
time.sleep(int(os.environ.get("DRAIN_MS", "0")) / 1000)
sys.exit(0)
