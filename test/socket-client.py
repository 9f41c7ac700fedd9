#!/usr/bin/python3
# A client that connects without pause, bounded in count and time, until STOPFILE exists:
#   socket-client.py HOST PORT MAX_COUNT MAX_SECONDS STOPFILE [http|connect]
# http: one GET per connection, an answer with a 200 counts as ok; connect: a connect that
# works counts. Prints one JSON line: ok, refused (ECONNREFUSED), failed (anything else), and the
# slowest attempt in ms. STOPFILE.started is created once the first attempt is over.
import json, os, socket, sys, time

host, port, count, seconds, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
mode = sys.argv[6] if len(sys.argv) > 6 else "http"
family = socket.AF_INET6 if ":" in host else socket.AF_INET
ok = refused = failed = 0
slowest = 0.0
errors = {}
end = time.monotonic() + seconds
while ok + refused + failed < count and time.monotonic() < end and not os.path.exists(stop):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(10)
    began = time.monotonic()
    try:
        s.connect((host, port))
        if mode == "http":
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                more = s.recv(4096)
                if not more:
                    break
                data += more
            if not data.startswith(b"HTTP/1.0 200"):
                raise OSError("no answer")
        ok += 1
    except ConnectionRefusedError:
        refused += 1
    except OSError as e:
        failed += 1
        errors[str(e)] = errors.get(str(e), 0) + 1
    finally:
        s.close()
        slowest = max(slowest, (time.monotonic() - began) * 1000)
        if ok + refused + failed == 1:
            open(stop + ".started", "w").close()
print(json.dumps({"ok": ok, "refused": refused, "failed": failed, "slowestMs": round(slowest, 1), "errors": errors}), flush=True)
