#!/usr/bin/env python3
"""rwkvrtd end to end: a real daemon process on a loopback ephemeral port, real gRPC clients.

Run by CTest (daemon.functional) with the paths of the daemon, the in-process reference tool and
the generated Python stubs; see tests/daemon/CMakeLists.txt.
"""

import os
import random
import signal
import subprocess
import sys
import threading
import time
import unittest

import grpc

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon_support as ds  # noqa: E402
from daemon_support import Daemon, generate, reference, request, request_for, run_parallel, turn  # noqa: E402

MODEL_ID = "rwkv7-kjv-byte"

PROMPTS = [
    "In the beginning", "And the LORD said unto Moses", "Blessed are the", "And it came to pass",
    "The heavens declare", "Then answered Jesus", "Hear, O Israel", "For God so loved",
]


def raw_unary(channel, method, payload):
    """Calls a method with hand-encoded protobuf bytes (health and reflection need no stubs)."""
    return channel.unary_unary(method, request_serializer=None, response_deserializer=None)(payload, timeout=10)


class Base(unittest.TestCase):
    def daemon(self, **kwargs):
        d = Daemon(ds.temp_workdir(self), **kwargs)
        d.start()
        self.addCleanup(d.stop_quietly)
        return d

    def assertStatus(self, code, fn, *args, **kwargs):
        with self.assertRaises(grpc.RpcError) as caught:
            fn(*args, **kwargs)
        self.assertEqual(caught.exception.code(), code, caught.exception.details())
        self.assertTrue(caught.exception.details(), "every error carries a message")
        return caught.exception

    def assertMatchesReference(self, result, expected, what=""):
        self.assertEqual(result.code, grpc.StatusCode.OK, f"{what}: {result.details}")
        self.assertIsNotNone(result.final, what)
        self.assertEqual(result.text, expected["text"], what)
        self.assertEqual(result.tokens, expected["tokens"], what)
        self.assertEqual(result.finish, expected["finish"], what)


class ServingTest(Base):
    """Basics, concurrency and the equality with in-process generation."""

    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.workdir = tempfile.TemporaryDirectory(prefix="rwkvrtd-test-")
        cls.d = Daemon(cls.workdir.name).start()
        cls.stub = cls.d.stub()

    @classmethod
    def tearDownClass(cls):
        code = cls.d.terminate()
        cls.workdir.cleanup()
        assert code == 0, f"rwkvrtd exited with {code}"

    def test_list_models_and_tokenizer(self):
        models = self.stub.ListModels(ds.pb.ListModelsRequest()).models
        self.assertEqual([m.id for m in models], [MODEL_ID])
        m = models[0]
        self.assertEqual((m.n_vocab, m.n_layer, m.tokenizer, m.rwkv_version), (256, 6, "byte", "7.0"))
        self.assertGreater(m.state_blob_bytes, 0)
        ids = list(self.stub.Tokenize(ds.pb.TokenizeRequest(text="abc")).token_ids)
        self.assertEqual(ids, [97, 98, 99])
        self.assertEqual(self.stub.Detokenize(ds.pb.DetokenizeRequest(token_ids=[104, 105])).text, b"hi")
        self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, self.stub.Detokenize,
                          ds.pb.DetokenizeRequest(token_ids=[300]))

    def test_health_and_reflection(self):
        channel = self.d.channel()
        # grpc.health.v1.HealthCheckRequest{service}; HealthCheckResponse{status: SERVING = 1}
        self.assertEqual(raw_unary(channel, "/grpc.health.v1.Health/Check", b""), b"\x08\x01")
        service = b"rwkvrt.v1.Runtime"
        self.assertEqual(raw_unary(channel, "/grpc.health.v1.Health/Check",
                                   b"\x0a" + bytes([len(service)]) + service), b"\x08\x01")
        # ServerReflectionRequest{list_services: ""} (field 7), then file_containing_symbol (field 4).
        reflect = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                        request_serializer=None, response_deserializer=None)
        symbol = b"rwkvrt.v1.Runtime"
        answers = list(reflect(iter([b"\x3a\x00", b"\x22" + bytes([len(symbol)]) + symbol]), timeout=10))
        self.assertEqual(len(answers), 2)
        self.assertIn(b"rwkvrt.v1.Runtime", answers[0])
        self.assertIn(b"grpc.health.v1.Health", answers[0])
        self.assertIn(b"rwkvrt/v1/runtime.proto", answers[1])

    def test_32_concurrent_clients_match_in_process_sessions(self):
        turns = []
        for i in range(32):
            turns.append(turn(PROMPTS[i % len(PROMPTS)], seed=1000 + i, max_tokens=16 + (i % 3) * 4,
                              temperature=[1.0, 0.7, 0.4, 0.0][i % 4], top_p=[1.0, 0.9][i % 2]))
        expected = reference([[t] for t in turns])
        # One channel (connection) per client, all streams started together.
        stubs = [self.d.stub() for _ in turns]
        results = run_parallel([lambda i=i: generate(stubs[i], request_for(turns[i])) for i in range(32)])
        for i, r in enumerate(results):
            self.assertMatchesReference(r, expected[i][0], f"client {i}")
            self.assertEqual(r.started.seed, 1000 + i)
            self.assertEqual(r.final.completion_tokens, len(expected[i][0]["tokens"]))
        # Streams really shared decode steps: more tokens than steps.
        # The streams shared decode steps: some steps advanced more than one of them.
        label = '{model="%s",le="1"}' % MODEL_ID
        single = self.d.metric("rwkvrtd_batch_size_bucket", label)
        steps = self.d.metric("rwkvrtd_batch_size_count", '{model="%s"}' % MODEL_ID)
        self.assertLess(single, steps)
        self.assertIsNotNone(self.d.metric("rwkvrtd_tokens_per_second", '{model="%s"}' % MODEL_ID))
        self.assertGreaterEqual(self.d.metric("rwkvrtd_requests_total", '{method="Generate",code="OK"}'), 32)

    def test_token_prompt_and_stop_string(self):
        t = turn("And God said", seed=7, max_tokens=40, stop=["\n", "the"])
        expected = reference([[t]])[0][0]
        r = generate(self.stub, request_for(t))
        self.assertMatchesReference(r, expected)
        by_tokens = generate(self.stub, request(tokens=list(b"And God said"), seed=7, max_tokens=40,
                                                stop=["\n", "the"]))
        self.assertEqual((by_tokens.text, by_tokens.tokens), (r.text, r.tokens))

    def test_sessions_turns_fork_export_import(self):
        t1 = turn("And the LORD spake", seed=11, max_tokens=20)
        t2 = turn(" And he said", seed=12, max_tokens=20, temperature=0.8)
        expected = reference([[t1, t2]])[0]
        s = self.stub.CreateSession(ds.pb.CreateSessionRequest(model=MODEL_ID))
        r1 = generate(self.stub, request_for(t1, s.session_id))
        self.assertMatchesReference(r1, expected[0], "turn 1")
        self.assertTrue(r1.final.persisted)
        info = self.stub.GetSession(ds.pb.GetSessionRequest(session_id=s.session_id))
        self.assertEqual(info.turns, 1)
        self.assertEqual(info.tokens, len(t1["prompt"]) + 20)

        fork = self.stub.ForkSession(ds.pb.ForkSessionRequest(session_id=s.session_id))
        blob = self.stub.ExportState(ds.pb.ExportStateRequest(session_id=s.session_id)).state_blob
        from_blob = self.stub.CreateSession(ds.pb.CreateSessionRequest(state_blob=blob))
        imported = self.stub.CreateSession(ds.pb.CreateSessionRequest())
        self.stub.ImportState(ds.pb.ImportStateRequest(session_id=imported.session_id, state_blob=blob))
        for sid in (s.session_id, fork.session_id, from_blob.session_id, imported.session_id):
            self.assertMatchesReference(generate(self.stub, request_for(t2, sid)), expected[1], sid)

        listed = {x.session_id for x in self.stub.ListSessions(ds.pb.ListSessionsRequest()).sessions}
        self.assertTrue({s.session_id, fork.session_id, from_blob.session_id} <= listed)
        self.stub.CloseSession(ds.pb.CloseSessionRequest(session_id=fork.session_id))
        self.assertStatus(grpc.StatusCode.NOT_FOUND, self.stub.GetSession,
                          ds.pb.GetSessionRequest(session_id=fork.session_id))
        self.assertFalse(os.path.exists(os.path.join(self.d.state_dir, fork.session_id + ".session")))

    def test_cancel_deadline_disconnect_leave_others_unaffected(self):
        steady = turn("Blessed is the man", seed=5, max_tokens=600, temperature=0.9)
        expected = reference([[steady]])[0][0]
        sessions = [self.stub.CreateSession(ds.pb.CreateSessionRequest()).session_id for _ in range(3)]
        long_req = lambda sid: request("Then said he", seed=9, max_tokens=4000, session_id=sid)  # noqa: E731
        cancel_info = {}

        def cancelled_by_rpc():
            result = ds.Result()
            request_id = None
            for event in self.d.stub().Generate(long_req(sessions[0])):
                kind = event.WhichOneof("event")
                if kind == "started":
                    request_id = event.started.request_id
                elif kind == "chunk":
                    result.tokens += list(event.chunk.token_ids)
                    if "t" not in cancel_info and len(result.tokens) >= 20:
                        cancel_info["t"] = time.time()
                        cancelled = self.stub.Cancel(ds.pb.CancelRequest(request_id=request_id)).cancelled
                        cancel_info["tokens_at_cancel"] = len(result.tokens)
                        self.assertTrue(cancelled)
                elif kind == "final":
                    result.final = event.final
                    cancel_info["latency"] = time.time() - cancel_info["t"]
            return result

        def deadline():
            return generate(self.d.stub(), long_req(sessions[1]), timeout=0.5)

        def disconnect():
            state = {}

            def on_event(event, call):
                if event.WhichOneof("event") == "chunk":
                    state.setdefault("first", time.time())
                    if time.time() - state["first"] > 0.2:
                        call.cancel()
            return generate(self.d.stub(), long_req(sessions[2]), on_event=on_event)

        results = run_parallel([cancelled_by_rpc, deadline, disconnect,
                                lambda: generate(self.d.stub(), request_for(steady))])
        by_rpc, by_deadline, by_disconnect, unaffected = results
        self.assertEqual(by_rpc.finish, "cancelled")
        self.assertLess(by_rpc.final.completion_tokens, 4000)
        self.assertLess(cancel_info["latency"], 2.0)
        # It stopped within a few steps of the cancel, not at max_tokens.
        self.assertLess(by_rpc.final.completion_tokens, cancel_info["tokens_at_cancel"] + 200)
        self.assertTrue(by_rpc.final.persisted)
        self.assertEqual(by_deadline.code, grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertEqual(by_disconnect.code, grpc.StatusCode.CANCELLED)
        self.assertMatchesReference(unaffected, expected, "the stream running beside them")

        # Resources are freed: no stream open, no generation running, every session usable.
        deadline_t = time.time() + 10
        while time.time() < deadline_t and (self.d.metric("rwkvrtd_open_streams") != 0 or
                                             self.d.metric("rwkvrtd_running_generations",
                                                           '{model="%s"}' % MODEL_ID) != 0):
            time.sleep(0.05)
        self.assertEqual(self.d.metric("rwkvrtd_open_streams"), 0)
        self.assertEqual(self.d.metric("rwkvrtd_running_generations", '{model="%s"}' % MODEL_ID), 0)
        for sid in sessions:
            info = self.stub.GetSession(ds.pb.GetSessionRequest(session_id=sid))
            self.assertFalse(info.generating)
            self.assertLessEqual(info.turns, 1)
            r = generate(self.stub, request("More", seed=1, max_tokens=4, session_id=sid))
            self.assertEqual(r.code, grpc.StatusCode.OK, r.details)
        # Cancel of a finished request is not an error; of an unknown session it is.
        self.assertFalse(self.stub.Cancel(ds.pb.CancelRequest(request_id="r-0000000000000000")).cancelled)
        self.assertStatus(grpc.StatusCode.NOT_FOUND, self.stub.Cancel,
                          ds.pb.CancelRequest(session_id="s-00000000000000000000000000000000"))

    def test_busy_session_and_cancel_by_session(self):
        sid = self.stub.CreateSession(ds.pb.CreateSessionRequest()).session_id
        started = threading.Event()
        out = []

        def long_stream():
            out.append(generate(self.d.stub(), request("And", seed=3, max_tokens=4000, session_id=sid),
                                on_event=lambda e, c: started.set()))
        t = threading.Thread(target=long_stream)
        t.start()
        self.assertTrue(started.wait(20))
        busy = generate(self.stub, request("x", session_id=sid))
        self.assertEqual(busy.code, grpc.StatusCode.FAILED_PRECONDITION, busy.details)
        self.assertStatus(grpc.StatusCode.FAILED_PRECONDITION, self.stub.ExportState,
                          ds.pb.ExportStateRequest(session_id=sid))
        self.assertTrue(self.stub.Cancel(ds.pb.CancelRequest(session_id=sid)).cancelled)
        t.join(20)
        self.assertEqual(out[0].finish, "cancelled")


class PrefillTest(Base):
    def test_chunked_prefill_beside_running_streams(self):
        """A long prompt is fed in chunks between the decode steps of running streams; its result
        still equals feeding it whole in-process, and the running stream is unaffected."""
        d = self.daemon(extra=["--prefill-chunk-tokens", "16"])
        long_prompt = " ".join(PROMPTS) * 3
        t_long = turn(long_prompt, seed=8, max_tokens=24)
        t_running = turn("And the", seed=9, max_tokens=400)
        expected = reference([[t_long], [t_running]])
        running = []
        started = threading.Event()
        th = threading.Thread(target=lambda: running.append(
            generate(d.stub(), request_for(t_running), on_event=lambda e, c: started.set())))
        th.start()
        self.assertTrue(started.wait(20))
        r = generate(d.stub(), request_for(t_long))
        th.join(60)
        self.assertMatchesReference(r, expected[0][0], "chunked prompt")
        self.assertMatchesReference(running[0], expected[1][0], "the stream running meanwhile")


class BadRequestTest(Base):
    """Every bad request gets its status and a message, and harms nobody else."""

    def test_bad_requests(self):
        d = self.daemon(extra=["--max-prompt-tokens", "64", "--max-message-bytes", str(1 << 20)])
        stub = d.stub()
        good = turn("And the", seed=2, max_tokens=200)
        expected = reference([[good]])[0][0]
        bystander = []
        t = threading.Thread(target=lambda: bystander.append(generate(d.stub(), request_for(good))))
        t.start()

        def gen_code(req, **kw):
            r = generate(stub, req, **kw)
            self.assertTrue(r.details, f"{r.code} without a message")
            return r.code

        S = grpc.StatusCode
        self.assertEqual(gen_code(request("x", session_id="s-00000000000000000000000000000000")), S.NOT_FOUND)
        self.assertEqual(gen_code(request("x", session_id="../../etc/passwd")), S.INVALID_ARGUMENT)
        self.assertEqual(gen_code(request("x", model="no-such-model")), S.NOT_FOUND)
        self.assertEqual(gen_code(request("x" * 65)), S.INVALID_ARGUMENT)
        self.assertEqual(gen_code(request(tokens=[1, 300])), S.INVALID_ARGUMENT)
        self.assertEqual(gen_code(request(tokens=[-1])), S.INVALID_ARGUMENT)
        self.assertEqual(gen_code(request("")), S.INVALID_ARGUMENT)
        self.assertEqual(gen_code(request("x", max_tokens=100000)), S.INVALID_ARGUMENT)
        self.assertEqual(gen_code(request("x", stop=[""])), S.INVALID_ARGUMENT)
        self.assertEqual(gen_code(request("x", temperature=-1.0)), S.INVALID_ARGUMENT)
        self.assertEqual(gen_code(request("x", top_p=1.5)), S.INVALID_ARGUMENT)

        sid = stub.CreateSession(ds.pb.CreateSessionRequest()).session_id
        blob = stub.ExportState(ds.pb.ExportStateRequest(session_id=sid)).state_blob
        flipped = bytearray(blob)
        flipped[len(blob) // 2] ^= 0xFF
        for bad in (bytes(flipped), blob[: len(blob) // 2], b"not a state blob at all"):
            self.assertStatus(S.INVALID_ARGUMENT, stub.ImportState,
                              ds.pb.ImportStateRequest(session_id=sid, state_blob=bad))
            self.assertStatus(S.INVALID_ARGUMENT, stub.CreateSession, ds.pb.CreateSessionRequest(state_blob=bad))
        # Failed creations leave nothing behind; the failed imports left the session as it was.
        self.assertEqual(len(stub.ListSessions(ds.pb.ListSessionsRequest()).sessions), 1)
        self.assertEqual(stub.ExportState(ds.pb.ExportStateRequest(session_id=sid)).state_blob, blob)
        self.assertStatus(S.RESOURCE_EXHAUSTED, stub.ImportState,
                          ds.pb.ImportStateRequest(session_id=sid, state_blob=b"\0" * (2 << 20)))
        self.assertStatus(S.INVALID_ARGUMENT, stub.CreateSession,
                          ds.pb.CreateSessionRequest(state_file="../outside.pth"))
        self.assertStatus(S.NOT_FOUND, stub.CreateSession, ds.pb.CreateSessionRequest(state_file="missing.pth"))
        self.assertStatus(S.NOT_FOUND, stub.CreateSession, ds.pb.CreateSessionRequest(model="no-such-model"))
        self.assertStatus(S.NOT_FOUND, stub.ForkSession,
                          ds.pb.ForkSessionRequest(session_id="s-00000000000000000000000000000000"))
        self.assertStatus(S.INVALID_ARGUMENT, stub.CloseSession, ds.pb.CloseSessionRequest(session_id=""))
        self.assertStatus(S.INVALID_ARGUMENT, stub.Cancel, ds.pb.CancelRequest())

        t.join(60)
        self.assertMatchesReference(bystander[0], expected, "a client beside the bad requests")
        self.assertMatchesReference(generate(stub, request_for(good)), expected, "after the bad requests")

    def test_limits(self):
        d = self.daemon(extra=["--max-sessions", "3", "--max-streams", "2"])
        stub = d.stub()
        for _ in range(3):
            stub.CreateSession(ds.pb.CreateSessionRequest())
        self.assertStatus(grpc.StatusCode.RESOURCE_EXHAUSTED, stub.CreateSession, ds.pb.CreateSessionRequest())
        started = [threading.Event(), threading.Event()]
        calls = []
        threads = []
        for i in range(2):
            def body(i=i):
                generate(d.stub(), request("And", seed=i, max_tokens=4000),
                         on_event=lambda e, c, i=i: started[i].set(), call_holder=calls)
            threads.append(threading.Thread(target=body))
            threads[-1].start()
        for e in started:
            self.assertTrue(e.wait(20))
        r = generate(stub, request("x"))
        self.assertEqual(r.code, grpc.StatusCode.RESOURCE_EXHAUSTED, r.details)
        for c in calls:
            c.cancel()
        for t in threads:
            t.join(20)

    def test_auth_token_file_and_environment(self):
        workdir = ds.temp_workdir(self)
        token_file = os.path.join(workdir, "tokens")
        with open(token_file, "w") as f:
            f.write("# rwkvrtd tokens\n  secret-token-1  \n")
        d = Daemon(workdir, extra=["--auth-token-file", token_file]).start()
        self.addCleanup(d.stop_quietly)
        stub = d.stub()
        S = grpc.StatusCode
        self.assertStatus(S.UNAUTHENTICATED, stub.ListModels, ds.pb.ListModelsRequest())
        self.assertStatus(S.UNAUTHENTICATED, stub.ListModels, ds.pb.ListModelsRequest(),
                          metadata=[("authorization", "Bearer secret-token-2")])
        self.assertStatus(S.UNAUTHENTICATED, stub.ListModels, ds.pb.ListModelsRequest(),
                          metadata=[("authorization", "secret-token-1")])
        r = generate(stub, request("x"), metadata=[("authorization", "Bearer wrong")])
        self.assertEqual(r.code, S.UNAUTHENTICATED)
        ok = [("authorization", "Bearer secret-token-1")]
        self.assertEqual(len(stub.ListModels(ds.pb.ListModelsRequest(), metadata=ok).models), 1)
        self.assertEqual(generate(stub, request("x", max_tokens=3), metadata=ok).code, S.OK)
        # Health answers without a token (load balancers probe it).
        self.assertEqual(raw_unary(d.channel(), "/grpc.health.v1.Health/Check", b""), b"\x08\x01")

        e = Daemon(ds.temp_workdir(self), env={"RWKVRTD_AUTH_TOKEN": "from-env"}).start()
        self.addCleanup(e.stop_quietly)
        self.assertStatus(S.UNAUTHENTICATED, e.stub().ListModels, ds.pb.ListModelsRequest())
        e.stub().ListModels(ds.pb.ListModelsRequest(), metadata=[("authorization", "Bearer from-env")])

    def test_config_file(self):
        workdir = ds.temp_workdir(self)
        config = os.path.join(workdir, "rwkvrtd.toml")
        with open(config, "w") as f:
            f.write(f'''# rwkvrtd configuration: keys are the long flags
model = ["bible={ds.ARGS.model}"]
listen = "127.0.0.1:0"
state-dir = "{os.path.join(workdir, "state")}"
threads = 1
max-prompt-tokens = 8
log-format = "text"
''')
        d = Daemon(workdir, base=False, metrics=False, extra=["--config", config]).start()
        self.addCleanup(d.stop_quietly)
        stub = d.stub()
        self.assertEqual([m.id for m in stub.ListModels(ds.pb.ListModelsRequest()).models], ["bible"])
        self.assertEqual(generate(stub, request("x" * 9)).code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(generate(stub, request("x" * 8, model="bible", max_tokens=2)).code, grpc.StatusCode.OK)
        self.assertEqual(d.terminate(), 0)

    def test_refuses_remote_listen_without_auth(self):
        workdir = ds.temp_workdir(self)
        proc = subprocess.run([ds.ARGS.daemon, "--model", ds.ARGS.model, "--state-dir",
                               os.path.join(workdir, "s"), "--listen", "0.0.0.0:0"],
                              stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(proc.returncode, 1)
        self.assertIn(b"without authentication", proc.stderr)

    def test_tls_round_trip(self):
        workdir = ds.temp_workdir(self)
        cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        d = Daemon(workdir, extra=["--tls-cert", cert, "--tls-key", key]).start()
        self.addCleanup(d.stop_quietly)
        with open(cert, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        stub = d.stub(creds)
        t = turn("And it came to pass", seed=4, max_tokens=16)
        self.assertMatchesReference(generate(stub, request_for(t)), reference([[t]])[0][0], "over TLS")
        self.assertEqual(raw_unary(d.channel(creds), "/grpc.health.v1.Health/Check", b""), b"\x08\x01")
        # A plaintext client cannot talk to a TLS server.
        self.assertStatus(grpc.StatusCode.UNAVAILABLE, d.stub().ListModels, ds.pb.ListModelsRequest(), timeout=5)


class PersistenceTest(Base):
    """Sessions survive restarts, evictions and kill -9 at any moment."""

    def test_kill9_during_generation_then_resume(self):
        workdir = ds.temp_workdir(self)
        d = Daemon(workdir).start()
        self.addCleanup(d.stop_quietly)
        stub = d.stub()
        first = [turn(PROMPTS[i], seed=20 + i, max_tokens=16) for i in range(4)]
        second = [turn(" And", seed=40 + i, max_tokens=16, temperature=0.8) for i in range(4)]
        expected = reference([[first[i], second[i]] for i in range(4)])
        sids = []
        for i in range(4):
            sid = stub.CreateSession(ds.pb.CreateSessionRequest()).session_id
            self.assertMatchesReference(generate(stub, request_for(first[i], sid)), expected[i][0])
            sids.append(sid)
        # Turn two runs on every session when the daemon dies.
        chunks = [threading.Event() for _ in sids]
        results = [None] * 4

        def doomed(i):
            results[i] = generate(d.stub(), request(" Then", seed=99, max_tokens=4000, session_id=sids[i]),
                                  on_event=lambda e, c: chunks[i].set())
        threads = [threading.Thread(target=doomed, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for e in chunks:
            self.assertTrue(e.wait(20))
        time.sleep(0.1)
        d.kill9()
        for t in threads:
            t.join(20)
        self.assertTrue(all(r.final is None and r.code != grpc.StatusCode.OK for r in results),
                        [r.code for r in results])

        d.start()
        stub = d.stub()
        listed = {s.session_id: s for s in stub.ListSessions(ds.pb.ListSessionsRequest()).sessions}
        self.assertEqual(set(listed), set(sids))
        for i, sid in enumerate(sids):
            self.assertEqual(listed[sid].turns, 1, "the interrupted turn left no trace")
            self.assertMatchesReference(generate(stub, request_for(second[i], sid)), expected[i][1],
                                        f"session {i} after kill -9")
        self.assertEqual(d.terminate(), 0)

    def test_kill9_at_random_moments_never_tears_a_session(self):
        """Sessions take short turns back to back (each persisted) while the daemon is killed at a
        random moment, three times.  After each restart every session loads, at a turn count the
        client can explain, and continues exactly as an uninterrupted session would."""
        workdir = ds.temp_workdir(self)
        d = Daemon(workdir).start()
        self.addCleanup(d.stop_quietly)
        n_sessions = 3
        turn_of = lambda s, k: turn(PROMPTS[(s + k) % len(PROMPTS)], seed=100 * s + k, max_tokens=4)  # noqa: E731
        sids = [d.stub().CreateSession(ds.pb.CreateSessionRequest()).session_id for _ in range(n_sessions)]
        confirmed = [0] * n_sessions  # turns whose final event the client received
        rng = random.Random(1234)
        for _ in range(3):
            stop = threading.Event()

            def worker(s):
                stub = d.stub()
                while not stop.is_set():
                    r = generate(stub, request_for(turn_of(s, confirmed[s]), sids[s]))
                    if r.final is None:
                        return
                    self.assertTrue(r.final.persisted)
                    confirmed[s] += 1
            threads = [threading.Thread(target=worker, args=(s,)) for s in range(n_sessions)]
            for t in threads:
                t.start()
            time.sleep(0.3 + rng.random() * 0.7)
            d.kill9()
            stop.set()
            for t in threads:
                t.join(20)
            d.start()
            for s, sid in enumerate(sids):
                on_disk = d.stub().GetSession(ds.pb.GetSessionRequest(session_id=sid)).turns
                # The turn in flight may have reached the disk before its final reached the client.
                self.assertIn(on_disk, (confirmed[s], confirmed[s] + 1))
                confirmed[s] = on_disk
        self.assertTrue(sum(confirmed) > 0)
        expected = reference([[turn_of(s, k) for k in range(confirmed[s] + 1)] for s in range(n_sessions)])
        for s, sid in enumerate(sids):
            nxt = turn_of(s, confirmed[s])
            self.assertMatchesReference(generate(d.stub(), request_for(nxt, sid)), expected[s][-1],
                                        f"session {s} after {confirmed[s]} turns and 3 crashes")
        leftovers = [f for f in os.listdir(d.state_dir) if not f.endswith(".session")]
        self.assertEqual(leftovers, [], "no temporary or damaged files remain")

    def test_sigterm_persists_and_restart_resumes(self):
        workdir = ds.temp_workdir(self)
        d = Daemon(workdir, extra=["--shutdown-grace", "0.3"]).start()
        self.addCleanup(d.stop_quietly)
        sid = d.stub().CreateSession(ds.pb.CreateSessionRequest()).session_id
        got = threading.Event()
        out = []
        t = threading.Thread(target=lambda: out.append(generate(
            d.stub(), request("And", seed=1, max_tokens=4000, session_id=sid), on_event=lambda e, c: got.set())))
        t.start()
        self.assertTrue(got.wait(20))
        self.assertEqual(d.terminate(), 0)
        t.join(20)
        r = out[0]
        self.assertEqual(r.code, grpc.StatusCode.OK, r.details)
        self.assertEqual(r.finish, "cancelled")
        self.assertTrue(r.final.persisted)
        d.start()
        info = d.stub().GetSession(ds.pb.GetSessionRequest(session_id=sid))
        self.assertEqual(info.turns, 1)
        self.assertEqual(info.tokens, len("And") + r.final.completion_tokens)
        self.assertEqual(generate(d.stub(), request("x", max_tokens=2, session_id=sid)).code, grpc.StatusCode.OK)
        self.assertEqual(d.terminate(), 0)

    def test_eviction_to_disk_loses_nothing(self):
        d = self.daemon(extra=["--max-resident-sessions", "2"])
        stub = d.stub()
        jobs = [[turn(PROMPTS[i], seed=i, max_tokens=8), turn(" And", seed=50 + i, max_tokens=8)] for i in range(5)]
        expected = reference(jobs)
        sids = [stub.CreateSession(ds.pb.CreateSessionRequest()).session_id for _ in jobs]
        for k in range(2):
            for i, sid in enumerate(sids):
                self.assertMatchesReference(generate(stub, request_for(jobs[i][k], sid)), expected[i][k])
        listed = stub.ListSessions(ds.pb.ListSessionsRequest()).sessions
        self.assertEqual(len(listed), 5)
        self.assertLessEqual(sum(1 for s in listed if s.resident), 2)

    def test_damaged_and_temporary_files_at_start(self):
        workdir = ds.temp_workdir(self)
        d = Daemon(workdir).start()
        self.addCleanup(d.stop_quietly)
        sid = d.stub().CreateSession(ds.pb.CreateSessionRequest()).session_id
        self.assertEqual(d.terminate(), 0)
        with open(os.path.join(d.state_dir, "s-0123456789abcdef0123456789abcdef.session"), "wb") as f:
            f.write(b"RWKVRTDS garbage")
        with open(os.path.join(d.state_dir, ".tmp-" + sid + "-1-0"), "wb") as f:
            f.write(b"half a write")
        d.start()
        ids = [s.session_id for s in d.stub().ListSessions(ds.pb.ListSessionsRequest()).sessions]
        self.assertEqual(ids, [sid])
        names = sorted(os.listdir(d.state_dir))
        self.assertIn("s-0123456789abcdef0123456789abcdef.session.damaged", names)
        self.assertFalse(any(n.startswith(".tmp-") for n in names))


if __name__ == "__main__":
    rest = ds.parse_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
