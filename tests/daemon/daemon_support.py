"""Shared helpers of the rwkvrtd tests: start a real daemon on a loopback ephemeral port, talk to
it with grpcio, and compute what an in-process session produces (tests/daemon/reference.cpp)."""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import grpc

ARGS = None  # set by parse_args()
pb = None  # rwkvrtd_proto.v1.runtime_pb2
pb_grpc = None  # rwkvrtd_proto.v1.runtime_pb2_grpc

FINISH_NAMES = {1: "stop", 2: "length", 3: "end_of_text", 4: "cancelled"}


def parse_args():
    """Parses the paths CTest passes; returns the arguments left for unittest."""
    global ARGS, pb, pb_grpc
    parser = argparse.ArgumentParser()
    parser.add_argument("--daemon", required=True)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--loadgen", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--python-stubs", required=True)
    ARGS, rest = parser.parse_known_args()
    sys.path.insert(0, ARGS.python_stubs)
    from rwkvrtd_proto.v1 import runtime_pb2, runtime_pb2_grpc  # noqa: E402

    pb, pb_grpc = runtime_pb2, runtime_pb2_grpc
    return rest


class Daemon:
    """One rwkvrtd process.  `state_dir` persists across restarts of the same test."""

    def __init__(self, workdir, state_dir=None, extra=(), env=None, threads=1, metrics=True, base=True):
        self.workdir = workdir
        self.state_dir = state_dir or os.path.join(workdir, "state")
        self.extra = list(extra)
        self.env = env
        self.threads = threads
        self.metrics = metrics
        self.base = base  # False: only --ready-file and `extra` (e.g. a --config file)
        self.proc = None
        self.port = None
        self.metrics_port = None
        self.starts = 0

    def start(self, timeout=60):
        self.starts += 1
        self.ready = os.path.join(self.workdir, f"ready-{self.starts}.json")
        self.log_path = os.path.join(self.workdir, f"daemon-{self.starts}.log")
        cmd = [ARGS.daemon, "--ready-file", self.ready]
        if self.base:
            cmd += ["--model", ARGS.model, "--state-dir", self.state_dir, "--listen", "127.0.0.1:0",
                    "--threads", str(self.threads)]
        if self.metrics:
            cmd += ["--metrics-listen", "127.0.0.1:0"]
        cmd += self.extra
        env = dict(os.environ)
        env.pop("RWKVRTD_AUTH_TOKEN", None)
        env.update(self.env or {})
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log_file, env=env)
        deadline = time.time() + timeout
        while not os.path.exists(self.ready):
            if self.proc.poll() is not None:
                raise RuntimeError(f"rwkvrtd exited with {self.proc.returncode}:\n{self.log()}")
            if time.time() > deadline:
                raise RuntimeError(f"rwkvrtd did not become ready:\n{self.log()}")
            time.sleep(0.02)
        with open(self.ready) as f:
            info = json.load(f)
        self.port, self.metrics_port = info["port"], info["metrics_port"]
        return self

    def address(self):
        return f"127.0.0.1:{self.port}"

    def channel(self, credentials=None):
        options = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_send_message_length", 64 << 20),
                   ("grpc.max_receive_message_length", 64 << 20)]
        if credentials is not None:
            return grpc.secure_channel(self.address(), credentials, options=options)
        return grpc.insecure_channel(self.address(), options=options)

    def stub(self, credentials=None):
        return pb_grpc.RuntimeStub(self.channel(credentials))

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-6000:]
        except OSError:
            return ""

    def terminate(self, timeout=60):
        """SIGTERM and wait; returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.log_file.close()
        return code

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log_file.close()

    def stop_quietly(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        if self.proc:
            self.log_file.close()

    def metrics_text(self):
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as r:
            return r.read().decode()

    def metric(self, name, labels=""):
        """The value of one sample, e.g. metric("rwkvrtd_open_streams")."""
        for line in self.metrics_text().splitlines():
            if line.startswith(name + labels + " "):
                return float(line.split()[-1])
        return None


class Result:
    """What one Generate stream delivered."""

    def __init__(self):
        self.started = None
        self.text = ""
        self.tokens = []
        self.final = None
        self.error = None
        self.code = grpc.StatusCode.OK
        self.details = ""
        self.chunks = 0

    @property
    def finish(self):
        return FINISH_NAMES.get(self.final.finish_reason) if self.final else None


def generate(stub, request, metadata=None, timeout=None, on_event=None, call_holder=None):
    """Runs one Generate stream to its end; never raises for a gRPC status (see .code)."""
    result = Result()
    call = stub.Generate(request, metadata=metadata, timeout=timeout)
    if call_holder is not None:
        call_holder.append(call)
    try:
        for event in call:
            kind = event.WhichOneof("event")
            if kind == "started":
                result.started = event.started
            elif kind == "chunk":
                result.chunks += 1
                result.text += event.chunk.text
                result.tokens += list(event.chunk.token_ids)
            elif kind == "final":
                result.final = event.final
            elif kind == "error":
                result.error = event.error
            if on_event is not None:
                on_event(event, call)
    except grpc.RpcError as e:
        result.code = e.code()
        result.details = e.details()
    return result


def request(prompt=None, tokens=None, seed=1, max_tokens=24, session_id="", model="", temperature=None,
            top_p=None, top_k=0, stop=(), stop_at_eos=None):
    sampling = pb.SamplingParams(seed=seed, top_k=top_k)
    if temperature is not None:
        sampling.temperature = temperature
    if top_p is not None:
        sampling.top_p = top_p
    r = pb.GenerateRequest(session_id=session_id, model=model, sampling=sampling, max_tokens=max_tokens,
                           stop=list(stop))
    if prompt is not None:
        r.text = prompt
    if tokens is not None:
        r.tokens.ids.extend(tokens)
    if stop_at_eos is not None:
        r.stop_at_eos = stop_at_eos
    return r


def turn(prompt, seed=1, max_tokens=24, temperature=1.0, top_p=1.0, top_k=0, stop=()):
    """One turn for reference(): the same fields request() takes."""
    return {"prompt": prompt, "seed": seed, "max_tokens": max_tokens, "temperature": temperature,
            "top_p": top_p, "top_k": top_k, "stop": list(stop)}


def request_for(t, session_id=""):
    return request(prompt=t["prompt"], seed=t["seed"], max_tokens=t["max_tokens"], session_id=session_id,
                   temperature=t["temperature"], top_p=t["top_p"], top_k=t["top_k"], stop=t["stop"])


def reference(jobs, threads=1):
    """For each job (a list of turns on one session), what in-process generation produces:
    a list (per job) of lists (per turn) of {"text": str, "tokens": [...], "finish": name}."""
    spec = json.dumps({"jobs": [{"turns": turns} for turns in jobs]})
    out = subprocess.run([ARGS.reference, "generate", ARGS.model, str(threads)], input=spec.encode(),
                         stdout=subprocess.PIPE, check=True).stdout
    result = []
    for job in json.loads(out)["jobs"]:
        result.append([{"text": bytes.fromhex(t["text_hex"]).decode("utf-8", errors="replace"),
                        "tokens": t["tokens"], "finish": t["finish"]} for t in job["turns"]])
    return result


def run_parallel(functions):
    """Runs the callables in threads started together; returns their results in order."""
    results = [None] * len(functions)
    errors = []
    barrier = threading.Barrier(len(functions))

    def body(i, f):
        try:
            barrier.wait()
            results[i] = f()
        except Exception as e:  # reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i, f)) for i, f in enumerate(functions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def temp_workdir(test):
    d = tempfile.TemporaryDirectory(prefix="rwkvrtd-test-")
    test.addCleanup(d.cleanup)
    return d.name
