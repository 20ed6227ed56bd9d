"""Tokenizers through the binding: the World vocabulary against the reference ids, the byte
tokenizer, the model's own tokenizer, and typed errors."""

import json
import os
import tempfile
import threading
import unittest

import support

import rwkvrt


class WorldTokenizerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tokenizer = rwkvrt.Tokenizer.load(
            support.testdata("tokenizer", "rwkv_vocab_v20230424.txt"))
        cls.cases = json.loads(support.testdata("tokenizer", "world_tokenizer.json").read_text())

    @classmethod
    def tearDownClass(cls):
        cls.tokenizer.close()

    def test_info(self):
        self.assertEqual(self.tokenizer.kind, "world")
        self.assertEqual(self.tokenizer.eos_id, 0)
        self.assertEqual(self.tokenizer.vocab_size, 65530)

    def test_encode_matches_the_reference_and_decodes_back(self):
        self.assertGreater(len(self.cases["cases"]), 10)
        for case in self.cases["cases"]:
            with self.subTest(text=case["text"][:30]):
                ids = self.tokenizer.encode(case["text"])
                self.assertEqual(ids, case["ids"])
                self.assertEqual(self.tokenizer.decode(ids), case["text"])

    def test_invalid_utf8_bytes_round_trip(self):
        for case in self.cases["byte_cases"]:
            raw = bytes.fromhex(case["bytes_hex"])
            with self.subTest(raw=case["bytes_hex"]):
                self.assertEqual(self.tokenizer.encode(raw), case["ids"])
                self.assertEqual(self.tokenizer.decode_bytes(case["ids"]), raw)
                self.assertEqual(self.tokenizer.decode(case["ids"], errors="replace"),
                                 raw.decode("utf-8", "replace"))

    def test_decode_grows_its_buffer_for_long_tokens(self):
        # One id may stand for many bytes; the binding must retry with the size C reports.
        text = "=" * 64 + " " * 64
        self.assertEqual(self.tokenizer.decode(self.tokenizer.encode(text)), text)

    def test_out_of_vocabulary_id_is_invalid_argument(self):
        with self.assertRaises(rwkvrt.InvalidArgumentError) as ctx:
            self.tokenizer.decode([1, 10**6])
        self.assertIn("1000000", ctx.exception.message)

    def test_concurrent_use(self):
        text = self.cases["cases"][0]["text"]
        expected = self.cases["cases"][0]["ids"]
        results = []

        def work():
            results.append(all(self.tokenizer.encode(text) == expected for _ in range(20)))

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [True] * 4)


class ByteTokenizerTest(unittest.TestCase):
    def test_round_trip(self):
        with rwkvrt.Tokenizer.byte() as tok:
            self.assertEqual((tok.kind, tok.vocab_size), ("byte", 256))
            text = "In the beginning — ἐν ἀρχῇ"
            ids = tok.encode(text)
            self.assertEqual(ids, list(text.encode("utf-8")))
            self.assertEqual(tok.decode(ids), text)
            self.assertEqual(tok.encode(""), [])
            self.assertEqual(tok.decode([]), "")
        self.assertTrue(tok.closed)
        with self.assertRaises(ValueError):
            tok.encode("x")

    def test_ids_must_be_integers(self):
        with rwkvrt.Tokenizer.byte() as tok:
            with self.assertRaises(TypeError):
                tok.decode("abc")


class ModelTokenizerTest(unittest.TestCase):
    def test_byte_model_gets_the_byte_tokenizer(self):
        tok = support.shared_model().tokenizer
        self.assertEqual(tok.kind, "byte")
        self.assertEqual(tok.decode(tok.encode("Amen.")), "Amen.")

    def test_model_tokenizer_keeps_the_model_alive(self):
        model = rwkvrt.Model(support.MODEL_PATH, threads=support.THREADS)
        tok = model.tokenizer
        model.close()
        self.assertEqual(tok.encode("ok"), [111, 107])  # the C model is still there
        tok.close()
        self.assertIsNone(model._ptr)  # ... and freed once its last dependent closed


class TokenizerErrorsTest(unittest.TestCase):
    def test_malformed_vocabulary_is_a_format_error(self):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("1 'a' 1\nthis is not a vocabulary line\n")
        try:
            with self.assertRaises(rwkvrt.FormatError):
                rwkvrt.Tokenizer.load(f.name)
        finally:
            os.unlink(f.name)

    def test_missing_file_is_an_io_error(self):
        with self.assertRaises(rwkvrt.InputOutputError):
            rwkvrt.Tokenizer.load(support.REPO_DIR / "no-such-vocab.txt")


if __name__ == "__main__":
    unittest.main()
