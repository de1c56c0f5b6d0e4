#!/usr/bin/env python3
"""ui_hol.py SIDE.json [TRIES] - head-of-line blocking on the server's pool
threads (bench/ui_ab.sh): a session, eight kept-alive connections; per try a
spectrum of every channel of the snapshot is asked for on the first, then a
window's samples (binary, 1..50 s at 920 columns) on each of the other
seven in turn, then the spectrum is read.  With 4 pool threads (the
default) at least one of the seven shares the spectrum's thread: the
slowest of the seven says whether it waited for the FFTs.  Prints per side
the median of the spectrum and the median and max of the slowest samples
answer per try."""
import http.client
import json
import statistics
import sys
import time

side = json.load(open(sys.argv[1]))
tries = int(sys.argv[2]) if len(sys.argv) > 2 else 12
host, port = side['BASE'].replace('http://', '').split(':')
port = int(port)
login = http.client.HTTPConnection(host, port)
login.request('POST', '/api/v1/session', json.dumps({'username': side['USERNAME'], 'password': side['PASSWORD']}),
              {'Content-Type': 'application/json'})
r = login.getresponse()
r.read()
hdr = {'Cookie': r.getheader('Set-Cookie').split(';')[0]}
snap = side['SNAPSHOT']
conns = [http.client.HTTPConnection(host, port) for _ in range(8)]
for c in conns:
    c.request('GET', '/healthz', headers=hdr)
    c.getresponse().read()
window = f'/api/v1/snapshots/{snap}/samples?px=920&format=bin&from_s=1&to_s=50'
conns[1].request('GET', window, headers=hdr)      # decoded and cached, as once the page is open
conns[1].getresponse().read()
worst, spectrum = [], []
for _ in range(tries):
    t0 = time.perf_counter()
    conns[0].request('GET', f'/api/v1/snapshots/{snap}/spectrum?from_s=0&to_s=100&bins=1024', headers=hdr)
    time.sleep(0.005)                               # the spectrum is on its way first
    lat = []
    for c in conns[1:]:
        a = time.perf_counter()
        c.request('GET', window, headers=hdr)
        rr = c.getresponse()
        rr.read()
        assert rr.status == 200, rr.status
        lat.append((time.perf_counter() - a) * 1e3)
    rr = conns[0].getresponse()
    rr.read()
    assert rr.status == 200, rr.status
    spectrum.append((time.perf_counter() - t0) * 1e3)
    worst.append(max(lat))
print(f"{side['name']}: spectrum of every channel median {statistics.median(spectrum):.0f} ms; "
      f"slowest of 7 samples answers per try median {statistics.median(worst):.1f} ms, "
      f"max {max(worst):.1f} ms; tries over 50 ms: {sum(w > 50 for w in worst)}/{len(worst)}")
