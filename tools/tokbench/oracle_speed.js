// Encoding speed of transformers.js (@lenml/tokenizers) on the benchmark text, one thread:
//   node oracle_speed.js TOKENIZERS_PACKAGE_DIR TEXT TOKENIZER_DIR...
// Prints MB/s (10^6 bytes) on the first 1 MB and on the whole text, like t2r-tokbench.
const fs = require("fs");
const path = require("path");
const [pkg, textPath, ...dirs] = process.argv.slice(2);
const { TokenizerLoader } = require(path.resolve(pkg, "dist/main.js"));
const bytes = fs.readFileSync(textPath);
const whole = bytes.toString("utf8");
const first = bytes.subarray(0, 1000000).toString("utf8");
for (const dir of dirs) {
  const tok = TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
    tokenizerConfig: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")),
  });
  const rate = (text) => {
    const start = process.hrtime.bigint();
    tok.encode(text, { add_special_tokens: false });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    return Buffer.byteLength(text) / 1e6 / seconds;
  };
  rate(first);  // warm-up: the JIT and the BPE cache of the first megabyte
  console.log(`${dir.padEnd(44)} transformers.js        ${rate(first).toFixed(2).padStart(10)} ${rate(whole).toFixed(2).padStart(12)}`);
}
