// Converting a finetuned checkpoint into a t2r model: tensors renamed to t2r's names
// (format/SPEC.md), hyperparameters and tokenizer as metadata, T2R feature maps folded
// where the math allows it. Everything is f32 here; the writer picks the stored dtype.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dtype.h"
#include "metadata.h"
#include "model_writer.h"
#include "tokenizer.h"

namespace t2r {

struct ImportedTensor {
  std::string name;
  std::vector<uint64_t> shape;
  std::vector<float> values;  // empty when streamed
  RowReader rows;             // streamed: read from the checkpoint while the file is written
  std::vector<float> read() const;  // every value, either way
};

struct ImportedModel {
  Metadata metadata;
  std::vector<ImportedTensor> tensors;
  std::string description;  // one line: layout, attention, sizes
  std::vector<std::string> warnings;  // what the packer says before writing (e.g. an ids-only model)
  std::vector<std::string> notes;     // settings it chose that the files did not spell out

  void add(std::string name, std::vector<uint64_t> shape, std::vector<float> values);
  // A tensor read from the checkpoint only when written (its values are checked then).
  void add_streamed(std::string name, std::vector<uint64_t> shape, RowReader rows);
  uint64_t parameter_count() const;
};

// LoLCATs adapter checkpoints for a Llama base; empty: the config's "lolcats" block names them.
struct LolcatsFiles {
  std::string distill, lora;
};

// What t2r-pack's flags add to a checkpoint directory.
struct ImportOptions {
  LolcatsFiles lolcats;
};

// fairseq transformer_lm: checkpoint.pt, dict.txt, encoder.json, vocab.bpe.
ImportedModel import_fairseq(const std::string& dir);
// Hugging Face llama, mistral, qwen2: config.json, model.safetensors (or a sharded index), tokenizer.json.
ImportedModel import_huggingface(const std::string& dir, const ImportOptions& options = {});
// Picks the importer from the files in `dir`; throws t2r::Error saying what it looked for.
ImportedModel import_checkpoint(const std::string& dir, const ImportOptions& options = {});

// The dtype `t` is stored in when matrices are asked for as `matrix_dtype`: vectors and biases
// (whatever their shape) stay f32; for block types, a matrix whose rows are not whole blocks and
// the small unfolded T2R feature map fall back to f16.
DType stored_dtype(const ImportedTensor& t, DType matrix_dtype);
// Every tensor in its stored_dtype, streamed ones read a chunk of rows at a time, so that memory
// holds about one chunk of the largest tensor, not the model. Written atomically; `progress` is
// called after each tensor with (tensors written, of, bytes written).
uint64_t write_model(const ImportedModel& model, DType matrix_dtype, const std::string& path,
                     const WriteProgress& progress = {});

}  // namespace t2r
