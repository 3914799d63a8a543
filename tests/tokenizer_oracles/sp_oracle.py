#!/usr/bin/env python3
"""SentencePiece oracle (Debian python3-sentencepiece; development time only).

  sp_oracle.py train              trains the small fixture models *.model in this folder from
                                  ../shared/models/mt-data (committed; rerun only to change them)
  sp_oracle.py expect [MT_MODEL]  writes sp_expected.json: the ids each fixture model (and the
                                  translation references' sentencepiece.bpe.model, if given)
                                  gives each text of cases.json, and whether decoding restores it

Run it with /usr/bin/python3 (the interpreter Debian's package is built for)."""
import json
import os
import sys

import sentencepiece as spm

here = os.path.dirname(os.path.abspath(__file__))

# name -> trainer options. Together they cover unigram and BPE, with and without byte
# fallback, the default nmt_nfkc normalizer and the identity one, user-defined pieces,
# and the normalizer's add_dummy_prefix / remove_extra_whitespaces switched off.
fixtures = {
    "unigram_nfkc": dict(model_type="unigram", vocab_size=700, user_defined_symbols=["<|eot_id|>", "[MASK]"]),
    "unigram_bytes": dict(model_type="unigram", vocab_size=700, byte_fallback=True,
                          normalization_rule_name="identity", remove_extra_whitespaces=False),
    "bpe_bytes": dict(model_type="bpe", vocab_size=700, byte_fallback=True, user_defined_symbols=["<|eot_id|>"]),
    "bpe_plain": dict(model_type="bpe", vocab_size=500, normalization_rule_name="identity",
                      add_dummy_prefix=False),
}


def train(corpus_dir):
    text = ""
    for name in ("test.en", "test.es"):
        with open(os.path.join(corpus_dir, name), encoding="utf-8") as f:
            text += f.read()
    corpus = os.path.join(here, "corpus.tmp")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write(text)
    for name, options in fixtures.items():
        spm.SentencePieceTrainer.train(input=corpus, model_prefix=os.path.join(here, name),
                                       character_coverage=0.995, **options)
        os.remove(os.path.join(here, name + ".vocab"))
    os.remove(corpus)


def expect(mt_model):
    with open(os.path.join(here, "cases.json")) as f:
        cases = json.load(f)
    models = {name: os.path.join(here, name + ".model") for name in fixtures}
    if mt_model:
        models["mt"] = mt_model
    out = {}
    for name, path in models.items():
        sp = spm.SentencePieceProcessor(model_file=path)
        rows = []
        for c in cases:
            text = bytes.fromhex(c["hex"])
            ids = sp.encode(text)
            decoded = sp.decode(ids).encode("utf-8")
            rows.append({"name": c["name"], "ids": ids, "round_trips": decoded == text})
        out[name] = rows
    with open(os.path.join(here, "sp_expected.json"), "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train(sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "../../../shared/models/mt-data"))
    else:
        expect(sys.argv[2] if len(sys.argv) > 2 else None)
