#!/usr/bin/env python3
"""Login-flood benchmark (`./dev bench-login`): the daemon's memory (RSS) idle, after one
login, at the peak of 300 concurrent wrong logins from 300 loopback addresses, and two
seconds after. Prints figures; asserts nothing. Usage: login_flood.py path/to/docker-watcher
"""
import socket, subprocess, sys, tempfile, time, os, threading, json
binary = sys.argv[1]
d = tempfile.mkdtemp()
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
env = dict(os.environ, DW_LISTEN=f"127.0.0.1:{port}", DW_DATA_DIR=f"{d}/data", DW_ADMIN_PASSWORD="right-password-123",
           DW_DOCKER_HOST="unix:///nonexistent.sock")
p = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def rss():
    for line in open(f"/proc/{p.pid}/status"):
        if line.startswith("VmRSS"): return int(line.split()[1]) // 1024
def post(src, body):
    c = socket.create_connection(("127.0.0.1", port), source_address=(src, 0), timeout=30)
    data = json.dumps(body).encode()
    c.sendall(b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
    out = b""
    while True:
        b = c.recv(4096)
        if not b: break
        out += b
    c.close()
    return int(out.split()[1])
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close(); break
    except OSError: time.sleep(0.1)
time.sleep(1)
print("idle RSS MiB", rss())
# one good login (the UI's first sign-in)
print("login", post("127.0.0.1", {"username": "admin", "password": "right-password-123"}), "RSS", rss())
statuses = []
def worker(i):
    statuses.append(post(f"127.0.{1 + i // 250}.{1 + i % 250}", {"username": f"user{i}", "password": "wrong"}))
ts = [threading.Thread(target=worker, args=(i,)) for i in range(300)]
peak = 0
for t in ts: t.start()
while any(t.is_alive() for t in ts):
    peak = max(peak, rss()); time.sleep(0.05)
from collections import Counter
print("flood answers", dict(Counter(statuses)), "peak RSS MiB", peak)
time.sleep(2)
print("after flood RSS MiB", rss())
p.terminate(); p.wait()
