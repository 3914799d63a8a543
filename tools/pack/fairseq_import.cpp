// fairseq transformer_lm checkpoints as written by the T2R reference code (pre-LN decoder,
// sinusoidal positions, tied embeddings; softmax, T2R 'mlp' or 'elu' attention).
#include <cmath>

#include "checkpoint_import.h"
#include "error.h"
#include "fairseq_checkpoint.h"
#include "hyperparams.h"
#include "schema.h"
#include "tokenizer_import.h"
#include "tokenizer_metadata.h"

namespace t2r {

ImportedModel import_fairseq(const std::string& dir) {
  const FairseqCheckpoint checkpoint(dir + "/checkpoint.pt");
  const std::string arch = checkpoint.string("arch", "");
  if (arch.rfind("transformer_lm", 0) == 0) return import_fairseq_lm(checkpoint, dir);
  if (arch.rfind("transformer", 0) == 0 && checkpoint.string("task", "translation") == "translation") {
    return import_fairseq_translation(checkpoint, dir);
  }
  checkpoint.unsupported("arch '" + arch + "' (expected transformer_lm, or transformer with task translation)");
}

ImportedModel import_fairseq_lm(const FairseqCheckpoint& args, const std::string& dir) {
  const std::string& path = args.path();
  if (!args.flag("decoder_normalize_before", false)) args.unsupported("post-LN decoder (decoder_normalize_before)");
  if (args.flag("decoder_learned_pos", false)) args.unsupported("learned positions");
  if (args.flag("no_token_positional_embeddings", false)) args.unsupported("no positional embeddings");
  if (args.flag("layernorm_embedding", false)) args.unsupported("layernorm_embedding");
  if (args.flag("adaptive_input", false)) args.unsupported("adaptive input");
  if (args.has("adaptive_softmax_cutoff")) args.unsupported("adaptive softmax");
  if (args.string("activation_fn", "relu") != "relu") args.unsupported("activation " + args.string("activation_fn", ""));
  if (args.flag("use_rfa", false) && args.flag("use_input_gate", false)) args.unsupported("use_input_gate");

  const uint64_t L = uint64_t(args.integer("decoder_layers")), d = uint64_t(args.integer("decoder_embed_dim")),
                 F = uint64_t(args.integer("decoder_ffn_embed_dim")),
                 H = uint64_t(args.integer("decoder_attention_heads"));
  if (L == 0 || d == 0 || F == 0 || H == 0 || d % H != 0) args.unsupported("inconsistent sizes in args");
  const uint64_t dh = d / H;
  const FairseqAttention attention = args.decoder_attention("decoder.layers.0.fc3", H);
  const int64_t V = args.shape("decoder.embed_tokens.weight").at(0);

  ImportedModel m;
  Hyperparams hp = args.decoder_hyperparams("fairseq_transformer_lm", V, FairseqCheckpoint::attention_spec(attention, dh));
  hp.to_metadata(m.metadata);
  m.metadata.set("general.source", path);

  m.add(schema::kTokenEmbedding, {uint64_t(V), d}, args.tensor("decoder.embed_tokens.weight", {V, int64_t(d)}));
  if (!args.flag("share_decoder_input_output_embed", false)) {
    m.add(schema::kOutput, {uint64_t(V), d}, args.tensor("decoder.output_projection.weight", {V, int64_t(d)}));
  }
  args.add_norm(m, "decoder.layer_norm", schema::kOutputNorm, d);
  for (uint64_t l = 0; l < L; ++l) {
    const std::string src = "decoder.layers." + std::to_string(l);
    const auto dst = [&](const std::string& part) { return schema::layer(int64_t(l), part); };
    args.add_norm(m, src + ".self_attn_layer_norm", dst(schema::kAttnNorm), d);
    args.add_attention(m, src + ".self_attn", src + ".fc3", attention, H, d, dst);
    args.add_norm(m, src + ".final_layer_norm", dst(schema::kFfnNorm), d);
    args.add_ffn(m, src, d, F, dst);
  }

  TokenizerData tokenizer = import_fairseq_tokenizer(dir);
  if (tokenizer.vocab_size != V) {
    throw Error(path + ": dict.txt gives " + std::to_string(tokenizer.vocab_size) + " symbols but the embedding has " +
                std::to_string(V) + " rows");
  }
  write_tokenizer_metadata(tokenizer, m.metadata);
  m.description = "fairseq transformer_lm, " + attention.kind + " attention" +
                  (attention.kind == "t2r" ? " (feature size " + std::to_string(attention.features) + ", folded into q/k)" : "") +
                  ", " + std::to_string(L) + " layers, d " + std::to_string(d) + ", " + std::to_string(H) + " heads, ffn " +
                  std::to_string(F) + ", vocab " + std::to_string(V);
  return m;
}

}  // namespace t2r
