"""The Python module (bindings/python/t2r.py) against the native t2r-run: the same ids, text and
logits; streaming, sampling, state, batches and sequences; errors as T2rError. Run by .ci/run with
Debian's python3:
  T2R_LIBRARY=build-test/package/libt2r.so T2R_RUN=build-test/t2r-run \
      PYTHONPATH=bindings/python /usr/bin/python3 -m unittest discover -s tests/python
"""
import array
import os
import subprocess
import tempfile
import unittest
from pathlib import Path

import t2r

ROOT = Path(__file__).resolve().parents[2]
MODEL = str(ROOT / "models" / "default.t2r")
RUN = os.environ.get("T2R_RUN", str(ROOT / "build-test" / "t2r-run"))
PROMPT = "In the beginning God created"


def native(*args):
    return subprocess.run([RUN, MODEL, *args], check=True, capture_output=True, text=True).stdout


class ModuleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = t2r.Model(MODEL)

    @classmethod
    def tearDownClass(cls):
        cls.model.close()

    def test_info_is_the_model_files(self):
        info = self.model.info
        self.assertEqual((info["architecture"], info["attention"], info["tokenizer"]), ("llama", "t2r", "byte_bpe"))
        self.assertEqual((info["vocab_size"], info["n_layers"], info["feature_dim"]), (8192, 6, 32))
        self.assertEqual(info["file_bytes"], os.path.getsize(MODEL))

    def test_tokenize_gives_the_native_ids_and_detokenize_the_text(self):
        text = "Héllo, wörld! In the beginning <|endoftext|> was the Word."
        ids = self.model.tokenize(text)
        self.assertEqual(ids, [int(i) for i in native("--tokenize", text).strip().split(",")])
        self.assertEqual(ids, self.model.tokenize(text, bos=False))  # this model adds no BOS
        self.assertNotEqual(ids, self.model.tokenize(text, special_as_text=True))
        self.assertEqual(self.model.detokenize(ids), text)
        self.assertEqual(b"".join(self.model.token_bytes(i) for i in self.model.tokenize("é")), "é".encode())

    def test_greedy_generation_is_the_native_text_piece_by_piece(self):
        with self.model.session() as session:
            pieces = list(session.generate(PROMPT, max_tokens=40))
            self.assertEqual(PROMPT + "".join(pieces) + "\n", native("-p", PROMPT, "-n", "40"))
            self.assertEqual(session.position, len(self.model.tokenize(PROMPT)) + 40)

    def test_logits_are_the_native_ones(self):
        ids = self.model.tokenize("In the beginning God created the heaven and the earth.")
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "logits.f32")
            native("--ids", ",".join(map(str, ids)), "--dump-logits", path)
            expected = array.array("f", Path(path).read_bytes())
        V = self.model.vocab_size
        with self.model.session() as session:
            got = array.array("f")
            for token in ids:
                got.extend(session.step(token))
            self.assertEqual(session.logits, got[-V:])
        self.assertEqual(len(got), len(expected))
        self.assertLessEqual(max(abs(a - b) for a, b in zip(got, expected)), 1e-5)

    def test_sampling_is_reproducible_with_a_seed(self):
        with self.model.session() as session:
            def sample(seed):
                session.reset()
                return "".join(session.generate(PROMPT, max_tokens=24, temperature=0.9, top_k=40, top_p=0.95,
                                                repetition_penalty=1.1, seed=seed))
            first = sample(7)
            self.assertEqual(sample(7), first)
            self.assertNotEqual(sample(8), first)
            self.assertEqual(first, native("-p", PROMPT, "-n", "24", "--temp", "0.9", "--top-k", "40", "--top-p",
                                           "0.95", "--repeat-penalty", "1.1", "--seed", "7")[len(PROMPT):-1])

    def test_a_restored_state_continues_where_it_was_saved(self):
        with self.model.session() as first, self.model.session() as second:
            first.prefill(self.model.tokenize(PROMPT))
            state = first.save_state()
            expected = "".join(first.generate(max_tokens=16))
            second.restore_state(state)
            self.assertEqual("".join(second.generate(max_tokens=16)), expected)
            with self.assertRaises(t2r.T2rError):
                second.restore_state(state[:100])

    def test_a_batch_of_sequences_decodes_as_each_alone(self):
        ids = self.model.tokenize(PROMPT)
        with self.model.session() as session:
            alone = session.prefill(ids)
            alone_next = session.step(11)
        with self.model.context(max_sequences=3, max_batch=32) as context:
            out = context.decode([(token, 0, t, t + 1 == len(ids)) for t, token in enumerate(ids)])
            self.assertEqual(len(out), 1)
            self.assertLessEqual(max(abs(a - b) for a, b in zip(out[0], alone)), 1e-4)
            context.copy(0, 1)
            saved = context.save(1)
            n = len(ids)
            both = context.decode([t2r.BatchRow(11, 0, n, 1), t2r.BatchRow(11, 1, n, 1)])
            self.assertEqual(both[0], both[1])
            self.assertLessEqual(max(abs(a - b) for a, b in zip(both[0], alone_next)), 1e-4)
            self.assertEqual(context.position(1), n + 1)
            context.restore(2, saved)
            self.assertEqual(context.position(2), n)
            context.clear(1)
            self.assertEqual(context.position(1), 0)
            with self.assertRaises(t2r.T2rError):
                context.position(3)
            with self.assertRaises(t2r.T2rError):
                context.decode([(11, 0, 0, 1)])  # not the sequence's next position

    def test_failures_raise_t2r_error_with_the_c_api_message(self):
        with self.assertRaises(t2r.T2rError) as caught:
            t2r.Model("/nonexistent.t2r")
        self.assertEqual(str(caught.exception), "cannot open '/nonexistent.t2r': No such file or directory")
        with self.model.session() as session:
            with self.assertRaises(t2r.T2rError) as caught:
                session.step(99999)
            self.assertEqual(str(caught.exception), "token id 99999 is outside the vocabulary (0..8191)")
            with self.assertRaises(t2r.T2rError):
                session.logits  # an empty session has none


if __name__ == "__main__":
    unittest.main()


TRANSLATE = os.environ.get("T2R_TRANSLATE", str(ROOT / "build-test" / "t2r-translate"))
TRANSLATION_MODEL = str(ROOT / "models" / "translate-es-en.t2r")
SENTENCES = ["VINO pues el rey con Amán á beber con la reina Esther.", "El rey habló."]


class TranslationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = t2r.Model(TRANSLATION_MODEL)

    @classmethod
    def tearDownClass(cls):
        cls.model.close()

    def test_nbest_matches_t2r_translate(self):
        out = subprocess.run([TRANSLATE, TRANSLATION_MODEL, "--nbest", "3", "--scores"], input="\n".join(SENTENCES) + "\n",
                             check=True, capture_output=True, text=True).stdout.splitlines()
        with self.model.translator(beam=5, nbest=3) as translator:
            results = translator.translate(SENTENCES)
        mine = [f"{i}\t{h.score:.6f}\t{h.text}" for i, hypotheses in enumerate(results) for h in hypotheses]
        self.assertEqual(mine, out)
        self.assertEqual(results[0][0].ids[-1], 2)  # every hypothesis ends in </s>

    def test_ids_and_stepping_by_hand(self):
        source = self.model.tokenize_source(SENTENCES[1])
        self.assertEqual(source[-1], 2)
        with self.model.translator(beam=1) as translator:
            greedy = translator.translate_ids([source])[0][0]
        # The same greedy decode, stepped through a context.
        with self.model.context(max_sequences=1, max_batch=1, max_sources=1, max_source_length=len(source)) as context:
            context.encode(0, source)
            context.attach(0, 0)
            token, ids = 2, []
            while len(ids) < 200:
                logits = context.decode([(token, 0, len(ids), True)])[0]
                logits[1] = float("-inf")  # <pad>, as the search does
                if not ids:
                    logits[2] = float("-inf")  # no </s> before min_len (1)
                token = max(range(len(logits)), key=logits.__getitem__)
                ids.append(token)
                if token == 2:
                    break
        self.assertEqual(ids, greedy.ids)

    def test_errors_are_exceptions(self):
        with self.assertRaises(t2r.T2rError) as caught:
            t2r.Model(MODEL).translator()
        self.assertIn("no encoder", str(caught.exception))
