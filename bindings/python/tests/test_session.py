"""Sessions on the default model: streaming generation, determinism, states, fork, cancel, batches,
the prefix cache, lifetimes and typed errors."""

import array
import gc
import threading
import unittest
import weakref

import support
from support import GREEDY, PROMPT

import rwkvrt
from rwkvrt import FinishReason


def argmax(values) -> int:
    return max(range(len(values)), key=values.__getitem__)


def assert_close(test, a, b, tol=1e-3):
    test.assertEqual(len(a), len(b))
    worst = max(abs(x - y) for x, y in zip(a, b))
    test.assertLessEqual(worst, tol)


class SessionTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = support.shared_model()

    def greedy_text(self, prompt=PROMPT, max_tokens=40, **kwargs) -> str:
        with self.model.session() as s:
            return s.generate(prompt, max_tokens=max_tokens, sampling=GREEDY, **kwargs).read()


class GenerateTest(SessionTestCase):
    def test_streams_nonempty_valid_text(self):
        with self.model.session() as s:
            gen = s.generate(PROMPT, max_tokens=48, sampling=GREEDY)
            pieces = list(gen)
            self.assertTrue(pieces)
            self.assertTrue(all(isinstance(p, str) and p for p in pieces))
            self.assertEqual("".join(pieces), gen.text)
            self.assertEqual(gen.finish_reason, FinishReason.LENGTH)
            self.assertEqual(s.last_finish_reason, FinishReason.LENGTH)
            self.assertEqual((gen.n_generated, len(gen.tokens)), (48, 48))
            # A byte model's text is exactly the bytes it sampled, and valid UTF-8.
            self.assertEqual(bytes(gen.tokens).decode("utf-8"), gen.text)
            self.assertNotIn("\ufffd", gen.text)
            self.assertTrue(any(c.isalpha() for c in gen.text))
            self.assertEqual(list(gen), [])  # exhausted

    def test_pieces_report_every_step(self):
        with self.model.session() as s:
            pieces = list(s.generate(PROMPT, max_tokens=10, sampling=GREEDY).pieces())
        self.assertEqual(len(pieces), 10)
        self.assertEqual([p.n_generated for p in pieces], list(range(1, 11)))
        self.assertTrue(pieces[-1].finished)
        self.assertFalse(any(p.finished for p in pieces[:-1]))

    def test_greedy_is_deterministic_and_is_the_argmax(self):
        first = self.greedy_text()
        self.assertEqual(self.greedy_text(), first)
        # The same thing by hand: feed the prompt, then always step the most likely token.
        tok = self.model.tokenizer
        with self.model.session() as s:
            logits = s.feed(tok.encode(PROMPT))
            ids = []
            for _ in range(40):
                ids.append(argmax(logits))
                logits = s.step(ids[-1])
        self.assertEqual(tok.decode(ids), first)

    def test_seed_determinism(self):
        def sample(seed):
            with self.model.session() as s:
                params = rwkvrt.SamplingParams(temperature=1.0, top_p=0.9, seed=seed)
                return s.generate(PROMPT, max_tokens=64, sampling=params).read()

        a = sample(1234)
        self.assertEqual(sample(1234), a)
        self.assertNotEqual(sample(4321), a)

    def test_stop_string_cuts_the_text(self):
        full = self.greedy_text(max_tokens=120)
        stop = full[20:26]
        self.assertEqual(len(stop), 6)
        with self.model.session() as s:
            gen = s.generate(PROMPT, max_tokens=120, sampling=GREEDY, stop=[stop, "no such text"])
            text = gen.read()
        self.assertEqual(gen.finish_reason, FinishReason.STOP)
        self.assertEqual(text, full[:full.index(stop)])

    def test_abandoned_generation_ends_when_the_session_is_used(self):
        with self.model.session() as s:
            gen = s.generate(PROMPT, max_tokens=100, sampling=GREEDY)
            for i, _ in enumerate(gen):
                if i == 2:
                    break
            again = s.generate(" Amen", max_tokens=5, sampling=GREEDY).read()
            self.assertTrue(gen.finished)
            self.assertEqual(gen.finish_reason, FinishReason.CANCELLED)
            self.assertEqual(len(gen.tokens), 3)
            self.assertTrue(again)

    def test_dropped_generation_is_ended_on_next_use(self):
        with self.model.session() as s:
            gen = s.generate(PROMPT, max_tokens=100, sampling=GREEDY)
            next(gen)
            del gen
            s.reset()
            self.assertEqual(s.last_finish_reason, FinishReason.CANCELLED)
            self.assertTrue(s.generate(PROMPT, max_tokens=3, sampling=GREEDY).read())

    def test_dropping_session_and_generation_frees_at_once(self):
        gc.disable()  # no cycle may be needed to free them
        try:
            s = self.model.session()
            gen = s.generate(PROMPT, max_tokens=100, sampling=GREEDY)
            next(gen)
            ref = weakref.ref(s)
            del s, gen
            self.assertIsNone(ref())
        finally:
            gc.enable()

    def test_generation_as_context_manager_closes(self):
        with self.model.session() as s:
            with s.generate(PROMPT, max_tokens=100, sampling=GREEDY) as gen:
                next(gen)
            self.assertEqual(gen.finish_reason, FinishReason.CANCELLED)
            self.assertEqual(s.last_finish_reason, FinishReason.CANCELLED)


class CancelTest(SessionTestCase):
    def test_cancel_from_another_thread_stops_a_long_generation(self):
        tok = self.model.tokenizer
        with self.model.session() as s:
            gen = s.generate(PROMPT, max_tokens=0, sampling=GREEDY)  # 0: no limit
            started = threading.Event()
            failure = []

            def consume():
                try:
                    for _ in gen:
                        started.set()
                except Exception as e:  # reported by the main thread
                    failure.append(e)
                finally:
                    started.set()

            worker = threading.Thread(target=consume)
            worker.start()
            self.assertTrue(started.wait(60))
            s.cancel()
            worker.join(120)
            self.assertFalse(worker.is_alive(), "the generation did not stop")
            self.assertEqual(failure, [])
            self.assertEqual(gen.finish_reason, FinishReason.CANCELLED)
            self.assertEqual(s.last_finish_reason, FinishReason.CANCELLED)
            self.assertGreater(len(gen.tokens), 0)
            # A cancelled generation fed exactly what it sampled: prompt + tokens.
            after = s.export_state()
        with self.model.session() as fresh:
            fresh.feed(tok.encode(PROMPT) + gen.tokens, logits="none")
            assert_close(self, after, fresh.export_state())

    def test_cancel_without_a_generation_is_harmless(self):
        with self.model.session() as s:
            s.cancel()  # discarded: the next generation runs to its limit
            gen = s.generate(PROMPT, max_tokens=5, sampling=GREEDY)
            gen.read()
            self.assertEqual(gen.finish_reason, FinishReason.LENGTH)
        s.cancel()  # closed: no effect


class StateTest(SessionTestCase):
    def test_state_round_trip_continues_identically(self):
        with self.model.session() as original, self.model.session() as restored:
            original.prompt(PROMPT)
            blob = original.state
            self.assertIsInstance(blob, bytes)
            restored.state = blob
            self.assertEqual(restored.state, blob)
            # A loaded state has no logits: both continue with the same next turn.
            a = original.generate(", and there was", max_tokens=40, sampling=GREEDY).read()
            b = restored.generate(", and there was", max_tokens=40, sampling=GREEDY).read()
        self.assertEqual(a, b)
        self.assertEqual(a, self.greedy_text(PROMPT + ", and there was"))

    def test_loaded_state_has_no_logits(self):
        with self.model.session() as s:
            s.prompt(PROMPT)
            blob = s.state
            s.state = blob
            with self.assertRaises(rwkvrt.InvalidArgumentError):
                s.generate(max_tokens=4)

    def test_export_import_round_trip(self):
        info = self.model.info
        layout = self.model.state_tensors
        self.assertEqual(sum(t.size for t in layout), info.state_floats)
        self.assertEqual(len(layout), 3 * info.n_layer)
        with self.model.session() as a, self.model.session() as b:
            a.prompt(PROMPT)
            values = a.export_state()
            self.assertEqual(len(values), info.state_floats)
            self.assertTrue(any(values))
            b.import_state(values)
            self.assertEqual(b.export_state(), values)
            b.reset()
            self.assertFalse(any(b.export_state()))  # the default model's initial state is zero

    def test_corrupt_blob_is_a_corrupt_state_error(self):
        with self.model.session() as s:
            s.prompt(PROMPT)
            blob = bytearray(s.state)
            before = s.export_state()
            blob[len(blob) // 2] ^= 0x40
            with self.assertRaises(rwkvrt.CorruptStateError):
                s.load_state(blob)
            self.assertEqual(s.export_state(), before)  # unchanged on failure

    def test_truncated_or_foreign_blob_is_a_format_error(self):
        with self.model.session() as s:
            s.prompt(PROMPT)
            blob = s.state
            with self.assertRaises(rwkvrt.FormatError):
                s.load_state(blob[: len(blob) // 2])
            with self.assertRaises(rwkvrt.FormatError):
                s.state = b"this is not a state blob, it is words" * 4

    def test_wrong_size_import_is_a_state_mismatch(self):
        with self.model.session() as s:
            with self.assertRaises(rwkvrt.StateMismatchError):
                s.import_state(array.array("f", [0.0] * 10))

    def test_state_of_another_model_is_a_state_mismatch(self):
        other_path = support.testdata("rwkvcpp", "tiny-rwkv-7v0-834K-FP32.bin")
        with rwkvrt.Model(other_path, threads=support.THREADS) as other, other.session() as o:
            o.prompt([1, 2, 3])
            blob = o.state
        with self.model.session() as s:
            with self.assertRaises(rwkvrt.StateMismatchError):
                s.state = blob

    def test_missing_state_tuning_file_is_an_io_error(self):
        with self.model.session() as s:
            with self.assertRaises(rwkvrt.InputOutputError):
                s.load_initial_state(support.REPO_DIR / "no-such-state.pth")


class ForkTest(SessionTestCase):
    def test_fork_copies_then_evolves_independently(self):
        with self.model.session() as s:
            s.prompt(PROMPT)
            before = s.export_state()
            with s.fork() as f:
                self.assertEqual(f.export_state(), before)
                # The fork samples its own way ...
                f.generate(max_tokens=30, sampling=rwkvrt.SamplingParams(seed=7)).read()
                self.assertNotEqual(f.export_state(), before)
                # ... without touching the original, which continues as if never forked.
                self.assertEqual(s.export_state(), before)
                continued = s.generate(max_tokens=40, sampling=GREEDY).read()
                self.assertEqual(continued, self.greedy_text())

    def test_fork_copies_logits_and_sampler(self):
        params = rwkvrt.SamplingParams(temperature=0.8, seed=99)
        with self.model.session() as s:
            s.set_sampling(params)
            s.prompt(PROMPT)
            with s.fork() as f:
                a = f.generate(max_tokens=30).read()
            b = s.generate(max_tokens=30).read()
        self.assertEqual(a, b)


class FeedTest(SessionTestCase):
    def test_step_and_feed_agree(self):
        tok = self.model.tokenizer
        ids = tok.encode(PROMPT)
        n_vocab = self.model.info.n_vocab
        with self.model.session() as a, self.model.session() as b, self.model.session() as c:
            for t in ids:
                stepped = a.step(t)
            last = b.feed(ids)
            every = c.feed(ids, logits=rwkvrt.LogitsMode.ALL)
            self.assertEqual(len(every), len(ids) * n_vocab)
            assert_close(self, stepped, last)
            assert_close(self, every[-n_vocab:], last)
            assert_close(self, b.logits(), last)  # remembered for the next generation
            self.assertIsNone(a.step(ids[0], logits=False))
            with self.assertRaises(rwkvrt.InvalidArgumentError):
                a.logits()  # fed without logits: none remembered
            self.assertIsNone(b.feed(ids[:1], logits="none"))
            assert_close(self, a.export_state(), b.export_state())

    def test_matmul_precision_is_passed_and_checked(self):
        with self.assertRaises(ValueError):
            rwkvrt.Model(support.MODEL_PATH, threads=support.THREADS, matmul="approximate")
        # The CPU backend computes every precision exactly: the fast model gives the same logits.
        ids = self.model.tokenizer.encode(PROMPT)
        with rwkvrt.Model(support.MODEL_PATH, backend="cpu", threads=support.THREADS,
                          matmul="fast") as fast, \
                rwkvrt.Model(support.MODEL_PATH, backend="cpu", threads=support.THREADS) as exact, \
                fast.session() as a, exact.session() as b:
            assert_close(self, a.feed(ids), b.feed(ids), tol=0.0)

    def test_logits_into_a_caller_buffer(self):
        out = array.array("f", [0.0] * (self.model.info.n_vocab + 4))
        with self.model.session() as s:
            result = s.step(65, out=out)
        self.assertIs(result, out)
        self.assertTrue(any(out[:-4]))
        with self.model.session() as s:
            with self.assertRaises(ValueError):
                s.step(65, out=array.array("f", [0.0] * 3))
            with self.assertRaises(TypeError):
                s.step(65, out=bytearray(4096))

    def test_numpy_arrays_are_accepted(self):
        try:
            import numpy as np
        except ImportError:
            self.skipTest("numpy is not installed")
        ids = np.array(list(PROMPT.encode()), dtype=np.int64)
        out = np.zeros(self.model.info.n_vocab, dtype=np.float32)
        with self.model.session() as s, self.model.session() as t:
            s.feed(ids, out=out)
            assert_close(self, list(out), list(t.feed(ids.tolist())), tol=0)

    def test_bad_tokens_are_invalid_arguments(self):
        with self.model.session() as s:
            before = s.export_state()
            with self.assertRaises(rwkvrt.InvalidArgumentError):
                s.step(self.model.info.n_vocab)
            with self.assertRaises(rwkvrt.InvalidArgumentError):
                s.feed([1, 2, -1])
            with self.assertRaises(rwkvrt.InvalidArgumentError):
                s.feed([])
            with self.assertRaises(rwkvrt.InvalidArgumentError):
                s.prompt("")
            self.assertEqual(s.export_state(), before)

    def test_generate_needs_logits_first(self):
        with self.model.session() as s:
            with self.assertRaises(rwkvrt.InvalidArgumentError):
                s.generate(max_tokens=4)
            s.step(65)
            self.assertTrue(s.generate(max_tokens=4, sampling=GREEDY).read())

    def test_bad_parameters_are_invalid_arguments(self):
        with self.model.session() as s:
            s.prompt(PROMPT)
            with self.assertRaises(rwkvrt.InvalidArgumentError):
                s.generate(max_tokens=4, stop=[""])
            with self.assertRaises(rwkvrt.InvalidArgumentError):
                s.set_sampling(rwkvrt.SamplingParams(top_p=1.5))
            with self.assertRaises(rwkvrt.InvalidArgumentError):
                s.set_sampling(rwkvrt.SamplingParams(temperature=-1.0))
            with self.assertRaises(ValueError):  # C strings cannot hold NUL
                s.generate(max_tokens=4, stop=["a\x00b"])
            with self.assertRaises(rwkvrt.InvalidArgumentError):
                s.set_sampling(rwkvrt.SamplingParams(banned=[100000]))

    def test_banned_and_biased_tokens(self):
        greedy = self.greedy_text(max_tokens=20)
        with self.model.session() as s:
            banned = rwkvrt.SamplingParams(temperature=0.0, banned=[ord(" ")])
            text = s.generate(PROMPT, max_tokens=20, sampling=banned).read()
        self.assertNotIn(" ", text)
        self.assertNotEqual(text, greedy)
        with self.model.session() as s:
            biased = rwkvrt.SamplingParams(temperature=0.0, logit_bias={ord("Q"): 100.0})
            self.assertEqual(s.generate(PROMPT, max_tokens=5, sampling=biased).read(), "QQQQQ")


class LifetimeTest(SessionTestCase):
    def test_sessions_keep_the_model_alive(self):
        model = rwkvrt.Model(support.MODEL_PATH, threads=support.THREADS)
        session = model.session()
        model.close()
        self.assertTrue(model.closed)
        with self.assertRaises(ValueError):
            model.session()
        self.assertIsNotNone(model._ptr)  # still needed by the session
        self.assertTrue(session.generate(PROMPT, max_tokens=8, sampling=GREEDY).read())
        session.close()
        self.assertIsNone(model._ptr)
        with self.assertRaises(ValueError):
            session.step(1)
        session.close()  # idempotent

    def test_context_managers_free_deterministically(self):
        with rwkvrt.Model(support.MODEL_PATH, threads=support.THREADS) as model:
            with model.session() as s:
                s.prompt(PROMPT)
            self.assertIsNone(s._ptr)
        self.assertIsNone(model._ptr)

    def test_model_load_errors_are_typed(self):
        with self.assertRaises(rwkvrt.InputOutputError):
            rwkvrt.Model(support.REPO_DIR / "no-such-model.pth")
        with self.assertRaises(rwkvrt.FormatError):
            rwkvrt.Model(support.REPO_DIR / "models" / "default" / "README.md")
        with self.assertRaises(rwkvrt.NoBackendError):
            rwkvrt.Model(support.MODEL_PATH, backend="no-such-backend")
        with self.assertRaises(ValueError):
            rwkvrt.Model(support.MODEL_PATH, weights="f64")

    def test_progress_can_cancel_the_load(self):
        stages = []

        def progress(fraction, stage):
            stages.append((fraction, stage))
            return fraction > 0.3

        with self.assertRaises(rwkvrt.CancelledError):
            rwkvrt.Model(support.MODEL_PATH, threads=support.THREADS, progress=progress)
        self.assertTrue(stages)
        self.assertTrue(all(0.0 <= f <= 1.0 and s for f, s in stages))

    def test_progress_exception_propagates(self):
        class Boom(Exception):
            pass

        def progress(fraction, stage):
            raise Boom()

        with self.assertRaises(Boom):
            rwkvrt.Model(support.MODEL_PATH, threads=support.THREADS, progress=progress)

    def test_weights_option(self):
        with rwkvrt.Model(support.MODEL_PATH, threads=support.THREADS, weights="f32") as m:
            self.assertEqual(m.info.weight_dtype, rwkvrt.DType.F32)
            self.assertEqual(m.info.file_dtype, rwkvrt.DType.BF16)


class BatchTest(SessionTestCase):
    def test_batch_step_equals_individual_steps(self):
        ids_a, ids_b = [65, 110, 100], [84, 104, 101]
        with self.model.batch(4) as batch, self.model.session() as a, \
                self.model.session() as b, self.model.session() as ra, self.model.session() as rb:
            for ta, tb in zip(ids_a, ids_b):
                rows = batch.step([a, b], [ta, tb])
                la, lb = ra.step(ta), rb.step(tb)
            n = self.model.info.n_vocab
            self.assertEqual(len(rows), 2 * n)
            assert_close(self, rows[:n], la)
            assert_close(self, rows[n:], lb)
            with self.assertRaises(ValueError):
                batch.step([a, b], [1])
            with self.assertRaises(rwkvrt.InvalidArgumentError):
                batch.step([a] * 5, [1] * 5)  # more than max_batch

    def test_batch_generation_equals_individual_generations(self):
        prompts = [PROMPT, "Blessed are the meek", "Thou shalt"]
        expected = [self.greedy_text(p, max_tokens=24) for p in prompts]
        sessions = [self.model.session() for _ in prompts]
        try:
            gens = [s.generate(p, max_tokens=24, sampling=GREEDY)
                    for s, p in zip(sessions, prompts)]
            with self.model.batch(len(gens)) as batch:
                active = list(gens)
                while active:
                    batch.generate_next(active)
                    active = [g for g in active if not g.finished]
            self.assertEqual([g.text for g in gens], expected)
            self.assertTrue(all(g.finish_reason == FinishReason.LENGTH for g in gens))
        finally:
            for s in sessions:
                s.close()


class PrefixCacheTest(SessionTestCase):
    def test_cached_prefix_is_reused_with_equal_results(self):
        with self.model.prefix_cache(64 << 20) as cache:
            with self.model.session() as first, self.model.session() as second:
                first.prefix_cache = cache
                second.prefix_cache = cache
                self.assertIs(second.prefix_cache, cache)
                first.prompt(PROMPT)
                self.assertEqual(first.prefix_cache_hit, 0)
                second.prompt(PROMPT + ", and there was light")
                self.assertGreater(second.prefix_cache_hit, 0)
                text = second.generate(max_tokens=30, sampling=GREEDY).read()
                second.prefix_cache = None
                self.assertIsNone(second.prefix_cache)
        self.assertEqual(text, self.greedy_text(PROMPT + ", and there was light", max_tokens=30))

    def test_cache_outlives_its_close_while_attached(self):
        cache = self.model.prefix_cache(1 << 20)
        with self.model.session() as s:
            s.prefix_cache = cache
            cache.close()
            self.assertIsNotNone(cache._ptr)
            s.prompt(PROMPT)
        self.assertIsNone(cache._ptr)


if __name__ == "__main__":
    unittest.main()
