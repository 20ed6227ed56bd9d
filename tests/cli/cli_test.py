#!/usr/bin/env python3
"""End-to-end tests of the rwkvrt command-line tool: real processes, real files.

Run by CTest with the tool's path and the test data directory:
    cli_test.py RWKVRT_BINARY TESTDATA_DIR
"""
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import unittest

RWKVRT = sys.argv[1] if len(sys.argv) > 1 else "rwkvrt"
TESTDATA = sys.argv[2] if len(sys.argv) > 2 else "../shared/testdata"
GOLDEN = ["v4_L2_C64", "v5_L2_C128", "v6_L2_C128", "v7_L2_C128", "v7_L3_C256"]


def run(*args, check=True):
    proc = subprocess.run([RWKVRT, *args], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"rwkvrt {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def run_bytes(*args, stdin=b"", check=True):
    """Runs the tool with raw bytes on stdin; stdout stays bytes (the text commands' output)."""
    proc = subprocess.run([RWKVRT, *args], input=stdin, capture_output=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"rwkvrt {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stderr.decode(errors='replace')}")
    return proc


def golden(name):
    with open(os.path.join(TESTDATA, "golden", name + ".json")) as f:
        return json.load(f)


def max_abs(a, b):
    assert len(a) == len(b), (len(a), len(b))
    return max(abs(x - y) for x, y in zip(a, b))


class Help(unittest.TestCase):
    def test_every_command_has_help(self):
        top = run("--help").stdout
        commands = ["backends", "info", "logits", "bench", "convert", "random-model", "generate",
                    "chat", "tokenize", "detokenize"]
        for cmd in commands:
            self.assertIn(cmd, top)
            out = run(cmd, "--help").stdout
            self.assertIn("Usage", out)
            self.assertGreater(len(out.splitlines()), 3, cmd)

    def test_unknown_command_fails(self):
        proc = run("frobnicate", check=False)
        self.assertNotEqual(proc.returncode, 0)


class Backends(unittest.TestCase):
    def test_lists_cpu(self):
        out = json.loads(run("backends", "--json").stdout)
        names = {b["name"]: b for b in out["backends"]}
        self.assertIn("cpu", names)
        self.assertTrue(names["cpu"]["usable"])
        self.assertEqual(names["cpu"]["abi"], 1)


class Info(unittest.TestCase):
    def test_reports_version_and_dims(self):
        expect = {"v4_L2_C64": ("4", 64), "v5_L2_C128": ("5.2", 128), "v6_L2_C128": ("6.0", 128),
                  "v7_L3_C256": ("7.0", 256)}
        for name, (version, width) in expect.items():
            info = json.loads(run("info", "--json", os.path.join(TESTDATA, "golden", name + ".pth")).stdout)
            self.assertEqual(info["version"], version)
            self.assertEqual(info["width"], width)
            self.assertEqual(info["format"], "pth")
            self.assertGreater(info["state_floats"], 0)

    def test_missing_file_is_a_clear_error(self):
        proc = run("info", "/nonexistent/model.pth", check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("/nonexistent/model.pth", proc.stderr)

    def test_garbage_file_is_a_clear_error(self):
        with tempfile.NamedTemporaryFile(suffix=".pth") as f:
            f.write(b"this is not a model at all")
            f.flush()
            proc = run("info", f.name, check=False)
            self.assertEqual(proc.returncode, 1)
            self.assertIn("not a model file", proc.stderr)
            self.assertEqual(proc.stdout, "")


class Logits(unittest.TestCase):
    def test_golden_vectors_in_both_modes(self):
        for name in GOLDEN:
            g = golden(name)
            tokens = ",".join(map(str, g["tokens"]))
            model = os.path.join(TESTDATA, "golden", name + ".pth")
            for mode in ([], ["--rnn"]):
                out = json.loads(run("logits", "-q", "--weights", "f32", "--model", model,
                                     "--tokens", tokens, "--all", *mode).stdout)["logits"]
                self.assertEqual(len(out), len(g["tokens"]))
                worst = max(max_abs(a, b) for a, b in zip(out, g["logits_rnn"]))
                self.assertLessEqual(worst, 1e-4, f"{name} {mode}")
            last = json.loads(run("logits", "-q", "-m", model, "-t", tokens).stdout)["logits"]
            self.assertEqual(len(last), 1)
            self.assertLessEqual(max_abs(last[0], g["logits_seq_last"]), 1e-4)

    def test_state_out_then_state_in_continues(self):
        g = golden("v7_L3_C256")
        model = os.path.join(TESTDATA, "golden", "v7_L3_C256.pth")
        with tempfile.TemporaryDirectory() as d:
            state = os.path.join(d, "state.bin")
            run("logits", "-q", "-m", model, "-t", ",".join(map(str, g["tokens"])),
                "--state-out", state)
            self.assertTrue(os.path.getsize(state) > 64)
            out = json.loads(run("logits", "-q", "-m", model, "-t", str(g["next_token"]),
                                 "--state-in", state).stdout)["logits"][0]
            self.assertLessEqual(max_abs(out, g["logits_after_next"]), 1e-4)
            # A state of another model is refused with a reason.
            other = os.path.join(TESTDATA, "golden", "v7_L2_C128.pth")
            proc = run("logits", "-q", "-m", other, "-t", "1", "--state-in", state, check=False)
            self.assertEqual(proc.returncode, 1)
            self.assertIn("state", proc.stderr)

    def test_bad_tokens_are_refused(self):
        model = os.path.join(TESTDATA, "golden", "v7_L2_C128.pth")
        for tokens, needle in (("1,x,3", "'x'"), ("1,,2", "''"), ("-4", "'-4'"), ("500", "500")):
            proc = run("logits", "-q", "-m", model, "-t", tokens, check=False)
            self.assertEqual(proc.returncode, 1, tokens)
            self.assertIn(needle, proc.stderr)
            self.assertEqual(proc.stdout, "")


class Convert(unittest.TestCase):
    def test_convert_gives_identical_logits(self):
        with tempfile.TemporaryDirectory() as d:
            for src in (os.path.join(TESTDATA, "golden", "v6_L2_C128.pth"),
                        os.path.join(TESTDATA, "rwkvcpp", "tiny-rwkv-5v2-730K-Q5_0.bin")):
                out = os.path.join(d, "m.safetensors")
                run("convert", "-q", src, out)
                a = run("logits", "-q", "-m", src, "-t", "34,105,110").stdout
                b = run("logits", "-q", "-m", out, "-t", "34,105,110").stdout
                self.assertEqual(a, b)
                info = json.loads(run("info", "--json", out).stdout)
                self.assertEqual(info["format"], "safetensors")

    def test_random_model_round_trip(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.safetensors")
            run("random-model", "-q", out, "--layers", "1", "--width", "64", "--head-size", "32")
            info = json.loads(run("info", "--json", out).stdout)
            self.assertEqual((info["version"], info["layers"], info["width"], info["vocab"]),
                             ("7.0", 1, 64, 256))


class Bench(unittest.TestCase):
    def test_bench_with_fewer_layers_reports_them(self):
        # --layers cuts a real shape to a few layers (profiling at a real width); the JSON says
        # what ran.  One layer of the 0.1B width on the CPU keeps this quick.
        out = run("bench", "--backend", "cpu", "--shapes", "0.1B", "--layers", "1", "--weights",
                  "f32", "--decode-steps", "2", "--warmup", "1", "--prefill-tokens", "4",
                  "--prefill-runs", "1", "--no-bandwidth", "--no-isolate")
        r = json.loads(out.stdout)["results"][0]
        self.assertEqual((r["shape"], r["layers"], r["width"], r["vocab"]), ("0.1B", 1, 768, 65536))
        self.assertGreater(r["decode_tokens_per_s"], 0)
        self.assertGreater(r["prefill_tokens_per_s"], 0)
        bad = run("bench", "--shapes", "0.1B", "--layers", "300", check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("--layers", bad.stderr)


# The project's default model: byte-level (one token = one byte), so for its ASCII output the
# number of characters is the number of tokens.
DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models",
                             "default", "rwkv7-kjv-byte.pth")
PROMPT = "In the beginning"


WORLD_VOCAB = os.path.join(TESTDATA, "tokenizer", "rwkv_vocab_v20230424.txt")
NEOX_TOKENIZER = os.path.join(TESTDATA, "tokenizer", "20B_tokenizer.json")


def tokenizer_cases(name):
    with open(os.path.join(TESTDATA, "tokenizer", name)) as f:
        return json.load(f)


def text_arg(text):
    """--text as arguments: '--text=T' so that a T starting with '-' is not taken for an option,
    but '--text ""' for the empty text (CLI11 reads '--text=' as a missing value)."""
    return ["--text=" + text] if text else ["--text", ""]


def ids_of(*args):
    return json.loads(run("tokenize", *args).stdout)["ids"]


def id_list(ids):
    return ",".join(map(str, ids))


class Tokenize(unittest.TestCase):
    def test_world_cases_encode_and_decode_exactly(self):
        data = tokenizer_cases("world_tokenizer.json")
        self.assertGreater(len(data["cases"]), 10)
        for case in data["cases"]:
            self.assertEqual(ids_of("--vocab", WORLD_VOCAB, *text_arg(case["text"])), case["ids"])
            out = run_bytes("detokenize", "--vocab", WORLD_VOCAB, "--ids", id_list(case["ids"]))
            self.assertEqual(out.stdout, case["text"].encode())

    def test_world_byte_cases_through_files(self):
        with tempfile.TemporaryDirectory() as d:
            for case in tokenizer_cases("world_tokenizer.json")["byte_cases"]:
                raw = bytes.fromhex(case["bytes_hex"])
                path = os.path.join(d, "input.bin")
                with open(path, "wb") as f:
                    f.write(raw)
                self.assertEqual(ids_of("--vocab", WORLD_VOCAB, "--text-file", path), case["ids"])
                out = run_bytes("detokenize", "--vocab", WORLD_VOCAB, "--ids", id_list(case["ids"]))
                self.assertEqual(out.stdout, raw)

    def test_neox_bpe_cases(self):
        data = tokenizer_cases("neox_tokenizer.json")
        for case in data["cases"]:
            ids = ids_of("--vocab", NEOX_TOKENIZER, *text_arg(case["text"]))
            self.assertEqual(ids, case["ids"])
            out = run_bytes("detokenize", "--vocab", NEOX_TOKENIZER, "--ids", id_list(case["ids"]))
            self.assertEqual(out.stdout.decode(), case["decoded"])

    def test_json_output_replaces_invalid_utf8(self):
        # Bytes e4 b8: the start of a three-byte character, cut short.
        case = next(c for c in tokenizer_cases("world_tokenizer.json")["byte_cases"]
                    if c["bytes_hex"] == "e4b8")
        raw = run_bytes("detokenize", "--vocab", WORLD_VOCAB, "--ids", id_list(case["ids"])).stdout
        self.assertEqual(raw, b"\xe4\xb8")
        text = json.loads(run("detokenize", "--vocab", WORLD_VOCAB, "--ids", id_list(case["ids"]),
                              "--json").stdout)["text"]
        self.assertEqual(text, "\ufffd" * len(text))
        self.assertGreaterEqual(len(text), 1)

    def test_model_and_byte_tokenizers(self):
        # The default model is byte-level: its ids are the bytes.
        self.assertEqual(ids_of("--model", DEFAULT_MODEL, "--text", "In the"), list(b"In the"))
        self.assertEqual(ids_of("--byte", "--text", "\u00e9"), [0xC3, 0xA9])
        out = run("detokenize", "--byte", "--ids", "72,105", "--json").stdout
        self.assertEqual(json.loads(out), {"text": "Hi"})

    def test_errors(self):
        proc = run("tokenize", "--text", "x", check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("--vocab", proc.stderr)
        proc = run("detokenize", "--vocab", WORLD_VOCAB, "--ids", "1,99999999", check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("99999999", proc.stderr)
        proc = run("tokenize", "--vocab", "/nonexistent/vocab.txt", "--text", "x", check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("/nonexistent/vocab.txt", proc.stderr)


def generate(*args, stdin=b""):
    return run_bytes("generate", "-q", *args, stdin=stdin).stdout.decode()


class Generate(unittest.TestCase):
    def test_greedy_is_deterministic_and_the_default_model_is_found(self):
        a = generate("--greedy", "-p", PROMPT, "-n", "40")
        b = generate("--greedy", "-p", PROMPT, "-n", "40", "--model", DEFAULT_MODEL)
        self.assertEqual(a, b)
        self.assertGreater(len(a.strip()), 10)

    def test_seed_reproduces_sampling(self):
        a = generate("--seed", "7", "-p", PROMPT, "-n", "64")
        self.assertEqual(a, generate("--seed", "7", "-p", PROMPT, "-n", "64"))
        self.assertNotEqual(a, generate("--seed", "8", "-p", PROMPT, "-n", "64"))

    def test_max_tokens_bound_and_stats(self):
        for n in (1, 17, 50):
            proc = run_bytes("generate", "-q", "--greedy", "-p", PROMPT, "-n", str(n), "--stats")
            self.assertEqual(len(proc.stdout), n, "byte-level model: one byte per token")
            stats = proc.stderr.decode()
            self.assertIn(f"generated: {n} tokens", stats)
            self.assertIn("finished by max tokens", stats)
            self.assertIn(f"prompt: {len(PROMPT)} tokens", stats)
            self.assertIn("tok/s", stats)

    def test_stop_string_cuts_the_text(self):
        full = generate("--greedy", "-p", PROMPT, "-n", "80")
        stop = full[20:24]
        expected = full[:full.index(stop)]
        self.assertEqual(generate("--greedy", "-p", PROMPT, "-n", "80", "--stop", stop), expected)
        # The same stop string written with \xHH escapes, next to one that never appears.
        escaped = "".join(f"\\x{ord(c):02x}" for c in stop)
        self.assertEqual(generate("--greedy", "-p", PROMPT, "-n", "80", "--stop", "QQQ",
                                  "--stop", escaped), expected)

    def test_prompt_file_and_stdin_equal_prompt(self):
        expected = generate("--greedy", "-p", PROMPT, "-n", "20")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "prompt.txt")
            with open(path, "w") as f:
                f.write(PROMPT)
            self.assertEqual(generate("--greedy", "--prompt-file", path, "-n", "20"), expected)
        self.assertEqual(generate("--greedy", "--prompt-file", "-", "-n", "20",
                                  stdin=PROMPT.encode()), expected)

    def test_state_out_then_state_in_continues_one_long_generation(self):
        """Greedy decoding on the byte-level model, N + M tokens in one run versus two runs.

        The one long run generates `full` = t1..t(N+M).  The first short run generates N tokens and
        saves the state, which has fed the prompt and t1..tN.  A state blob holds no logits, so
        the second run must feed something before it can sample: it feeds t(N+1) -- the token the
        long run sampled next, exactly what the long run fed at that point -- as its prompt, and
        greedy decoding must then reproduce t(N+2)..t(N+M).
        """
        n, m = 24, 40
        full = generate("--greedy", "-p", PROMPT, "-n", str(n + m))
        self.assertEqual(len(full), n + m)
        self.assertTrue(full.isascii(), "one character per token is needed for this comparison")
        with tempfile.TemporaryDirectory() as d:
            state = os.path.join(d, "state.bin")
            first = generate("--greedy", "-p", PROMPT, "-n", str(n), "--state-out", state)
            self.assertEqual(first, full[:n])
            self.assertGreater(os.path.getsize(state), 64)
            rest = generate("--greedy", "--state-in", state, "-p", full[n], "-n", str(m - 1))
            self.assertEqual(rest, full[n + 1:])

    def test_tuned_state_file_becomes_the_initial_state(self):
        """A state-tuning file (blocks.<i>.att.time_state, one (heads, N, N) matrix per layer) on
        a byte-level v6 model of 12 layers of 8 heads of 8 (state tuning applies to v5/v6): all
        zeros equals the model's own initial state, other values change the text, and a file of
        another shape is refused."""
        model = os.path.join(TESTDATA, "rwkvcpp", "tiny-rwkv-6v0-1m-FP32.bin")

        def write_state_file(path, heads, values):
            header, blobs, n = {}, b"", heads * 8 * 8
            for layer in range(12):
                data = struct.pack(f"<{n}f", *values(n))
                header[f"blocks.{layer}.att.time_state"] = {
                    "dtype": "F32", "shape": [heads, 8, 8],
                    "data_offsets": [len(blobs), len(blobs) + len(data)]}
                blobs += data
            head = json.dumps(header).encode()
            with open(path, "wb") as f:
                f.write(struct.pack("<Q", len(head)) + head + blobs)

        # This model writes NUL bytes, which the byte tokenizer takes for end of text.
        args = ("-m", model, "--greedy", "--ignore-eos", "-p", PROMPT, "-n", "40")
        plain = generate(*args)
        self.assertEqual(len(plain), 40)
        rng = random.Random(1)
        with tempfile.TemporaryDirectory() as d:
            zeros, tuned, wrong = (os.path.join(d, name + ".safetensors")
                                   for name in ("zeros", "tuned", "wrong"))
            write_state_file(zeros, 8, lambda n: [0.0] * n)
            write_state_file(tuned, 8, lambda n: [rng.gauss(0, 2) for _ in range(n)])
            write_state_file(wrong, 4, lambda n: [0.0] * n)
            self.assertEqual(generate(*args, "--tuned-state", zeros), plain)
            self.assertNotEqual(generate(*args, "--tuned-state", tuned), plain)
            proc = run("generate", "-q", "-m", model, "-p", PROMPT, "--tuned-state", wrong,
                       check=False)
            self.assertEqual(proc.returncode, 1)
            self.assertIn("time_state", proc.stderr)

    def test_errors_are_clear(self):
        proc = run("generate", "--model", "/nonexistent/model.pth", "-p", "x", check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("/nonexistent/model.pth", proc.stderr)
        self.assertEqual(proc.stdout, "")
        proc = run("generate", "-q", check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("--prompt", proc.stderr)
        proc = run("generate", "-q", "-p", "x", "--temperature", "-1", check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("temperature", proc.stderr)
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:
            f.write(b"not a state")
            f.flush()
            proc = run("generate", "-q", "-p", "x", "--state-in", f.name, check=False)
            self.assertEqual(proc.returncode, 1)
            self.assertIn("state", proc.stderr)
        # A model with no tokenizer to be found says what to do.
        model = os.path.join(TESTDATA, "golden", "v7_L2_C128.pth")
        proc = run("generate", "-q", "-m", model, "-p", "x", check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("--tokenizer", proc.stderr)


def chat(lines, *args, check=True):
    stdin = "".join(line + "\n" for line in lines).encode()
    return run_bytes("chat", "-q", "--greedy", "-n", "40", *args, stdin=stdin, check=check)


class Chat(unittest.TestCase):
    FIRST = "Who made the heaven and the earth?"
    SECOND = "And what did he say?"

    def test_first_reply_is_the_chat_format_continued(self):
        # Piped stdin: only the reply and a newline, no prompts or banners.
        reply = chat([self.FIRST]).stdout.decode()
        expected = generate("--greedy", "-n", "40", "-p", f"User: {self.FIRST}\n\nAssistant:",
                            "--stop", "\\n\\n", "--stop", "\\nUser:")
        self.assertEqual(reply, expected + "\n")
        self.assertGreater(len(reply.strip()), 0)

    def test_save_and_load_continue_the_conversation(self):
        first_only = chat([self.FIRST]).stdout
        with tempfile.TemporaryDirectory() as d:
            state = os.path.join(d, "chat.state")
            both = chat([self.FIRST, "/save " + state, self.SECOND])
            self.assertIn(state, both.stderr.decode())
            self.assertTrue(os.path.getsize(state) > 64)
            resumed = chat(["/load " + state, self.SECOND]).stdout
            self.assertGreater(len(resumed.strip()), 0)
            self.assertEqual(both.stdout, first_only + resumed)

    def test_reset_and_quit(self):
        first_only = chat([self.FIRST]).stdout
        self.assertEqual(chat([self.FIRST, "/reset", self.FIRST]).stdout, first_only * 2)
        self.assertEqual(chat([self.FIRST, "/quit", self.SECOND]).stdout, first_only)

    def test_failing_command_in_a_script_exits_nonzero(self):
        proc = chat(["/load /nonexistent/chat.state", self.FIRST], check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("/nonexistent/chat.state", proc.stderr.decode())
        self.assertEqual(proc.stdout, b"")
        proc = chat(["/frobnicate"], check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("unknown command", proc.stderr.decode())


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)
