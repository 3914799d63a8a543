// t2r-pack: convert a finetuned checkpoint directory into a t2r model file.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include <unistd.h>

#include "checkpoint_import.h"
#include "error.h"
#include "model_file.h"

namespace {

const char kUsage[] =
    "usage: t2r-pack CHECKPOINT_DIR -o MODEL.t2r [--dtype f32|f16|bf16|q8_0|q4_0]\n"
    "                [--lolcats-distill DISTILL.pt --lolcats-lora LORA.pt]\n"
    "\n"
    "Reads a fairseq transformer_lm checkpoint (checkpoint.pt, dict.txt, encoder.json, vocab.bpe)\n"
    "or a Hugging Face checkpoint (config.json, model.safetensors or a sharded index,\n"
    "tokenizer.json: llama, mistral, qwen2, gpt2, liger_mistral_gla; openlm with\n"
    "pytorch_model.bin), with softmax, T2R or ELU attention, and writes one t2r model file.\n"
    "LoLCATs: a Llama 3.1 base directory plus its two adapter checkpoints, named by a \"lolcats\"\n"
    "block in config.json or by --lolcats-distill and --lolcats-lora (LoRA merged at pack time).\n"
    "Matrices are stored in --dtype (default f16); norms and biases stay f32. q8_0 and q4_0 are\n"
    "ggml's block formats; a matrix whose rows are not whole 32-element blocks, and the small\n"
    "unfolded T2R and Hedgehog feature maps, are stored as f16 then (each is listed).\n";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "t2r-pack: %s\n\n%s", message.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string input, output;
  t2r::ImportOptions options;
  t2r::DType dtype = t2r::DType::F16;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "-o" || arg == "--output" || arg == "--dtype" || arg == "--lolcats-distill" ||
               arg == "--lolcats-lora") {
      if (i + 1 >= argc) return usage_error(arg + " needs a value");
      const std::string value = argv[++i];
      if (arg == "--lolcats-distill") {
        options.lolcats.distill = value;
      } else if (arg == "--lolcats-lora") {
        options.lolcats.lora = value;
      } else if (arg == "--dtype") {
        if (!t2r::dtype_from_name(value, &dtype)) return usage_error("unknown dtype '" + value + "' (f32, f16, bf16, q8_0, q4_0)");
      } else {
        output = value;
      }
    } else if (!arg.empty() && arg[0] == '-') {
      return usage_error("unknown option '" + arg + "'");
    } else if (input.empty()) {
      input = arg;
    } else {
      return usage_error("more than one checkpoint directory given");
    }
  }
  if (input.empty()) return usage_error("no checkpoint directory given");
  if (output.empty()) return usage_error("no output file given (-o MODEL.t2r)");

  try {
    const auto start = std::chrono::steady_clock::now();
    t2r::ImportedModel model = t2r::import_checkpoint(input, options);
    std::printf("read     %s\n         %s\n         %.2fM parameters in %zu tensors\n", input.c_str(),
                model.description.c_str(), double(model.parameter_count()) / 1e6, model.tensors.size());
    for (const auto& note : model.notes) std::printf("used     %s\n", note.c_str());
    for (const auto& warning : model.warnings) std::fprintf(stderr, "warning  %s\n", warning.c_str());
    for (const auto& t : model.tensors) {
      const t2r::DType stored = t2r::stored_dtype(t, dtype);
      if (t2r::dtype_is_block(dtype) && stored != dtype && stored != t2r::DType::F32) {
        std::printf("note     %s %s stored as %s\n", t.name.c_str(), t2r::shape_string(t.shape).c_str(),
                    std::string(t2r::dtype_name(stored)).c_str());
      }
    }
    // A large model takes minutes: on a terminal one progress line, rewritten after each tensor;
    // into a log a line per GB written.
    const bool terminal = isatty(fileno(stdout));
    uint64_t reported_gb = 0;
    const auto progress = [&](size_t done, size_t total, uint64_t written) {
      if (terminal) {
        std::printf("\rwriting  tensor %zu of %zu, %.2f GB%s", done, total, double(written) / 1e9, done == total ? "\n" : "");
      } else if (written / 1000000000 > reported_gb) {
        reported_gb = written / 1000000000;
        std::printf("writing  tensor %zu of %zu, %.2f GB\n", done, total, double(written) / 1e9);
      }
      std::fflush(stdout);
    };
    const uint64_t bytes = t2r::write_model(model, dtype, output, progress);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("wrote    %s\n         %.2f MB, matrices %s, in %.2f s\n", output.c_str(), double(bytes) / 1e6,
                std::string(t2r::dtype_name(dtype)).c_str(), seconds);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "t2r-pack: %s\n", e.what());
    return 1;
  }
  return 0;
}
