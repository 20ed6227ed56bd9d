#!/usr/bin/env python3
"""rwkvrtd load run (CTest label "bench", bounded in time): generated tokens per second with 1, 8
and 32 concurrent clients through the daemon, against the same work done in-process with
rwkvrt_batch_generate_next (tests/daemon/reference.cpp bench).  Prints a table and one JSON line;
timings are reported, never asserted.

Environment: RWKVRTD_BENCH_TOKENS (tokens per client, default 128), RWKVRTD_BENCH_THREADS (CPU
threads of the model in both runs, default 1), RWKVRTD_BENCH_REPEATS (best of N, default 3).
"""

import json
import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon_support as ds  # noqa: E402

PROMPT = "And it came to pass, when men began to multiply on the face of the earth,"


def main():
    ds.parse_args()
    tokens = int(os.environ.get("RWKVRTD_BENCH_TOKENS", "128"))
    threads = int(os.environ.get("RWKVRTD_BENCH_THREADS", "1"))
    repeats = int(os.environ.get("RWKVRTD_BENCH_REPEATS", "3"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="rwkvrtd-load-") as workdir:
        daemon = ds.Daemon(workdir, threads=threads, metrics=False,
                           extra=["--max-streams", "64", "--max-batch", "32", "--log-level", "warn"]).start()
        try:
            for clients in (1, 8, 32):
                def through_daemon():
                    out = subprocess.run([ds.ARGS.loadgen, daemon.address(), str(clients), str(tokens), PROMPT],
                                         stdout=subprocess.PIPE, check=True, timeout=300).stdout
                    return json.loads(out)

                def in_process():
                    out = subprocess.run([ds.ARGS.reference, "bench", ds.ARGS.model, str(threads), str(clients),
                                          str(tokens), PROMPT], stdout=subprocess.PIPE, check=True,
                                         timeout=300).stdout
                    return json.loads(out)

                # Interleaved, best of each: other load on the machine hits both alike.
                runs = [(through_daemon(), in_process()) for _ in range(repeats)]
                d = max((r[0] for r in runs), key=lambda r: r["tokens_per_s"])
                p = max((r[1] for r in runs), key=lambda r: r["tokens_per_s"])
                overhead = 1.0 - d["tokens_per_s"] / p["tokens_per_s"]
                rows.append({"clients": clients, "tokens_per_client": tokens, "threads": threads,
                             "daemon_tokens_per_s": round(d["tokens_per_s"], 1),
                             "in_process_tokens_per_s": round(p["tokens_per_s"], 1),
                             "daemon_overhead": round(overhead, 4), "failures": d["failures"]})
        finally:
            code = daemon.terminate()
    print(f"{'clients':>8} {'daemon tok/s':>14} {'in-process tok/s':>18} {'overhead':>9}")
    for r in rows:
        print(f"{r['clients']:>8} {r['daemon_tokens_per_s']:>14.1f} {r['in_process_tokens_per_s']:>18.1f} "
              f"{100 * r['daemon_overhead']:>8.1f}%")
    print(json.dumps({"daemon_load": rows}))
    if code != 0 or any(r["failures"] for r in rows):
        print("FAILED: streams failed or the daemon did not stop cleanly", file=sys.stderr)
        return 1
    if rows[-1]["daemon_overhead"] > 0.10:
        print("note: daemon overhead at 32 clients is above the 10% target", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
