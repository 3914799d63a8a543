// fairseq `transformer` translation checkpoints as the T2R reference code writes them: a softmax
// encoder and a decoder whose self- and cross-attention are softmax, T2R (fc3 causal, fc4 cross) or
// elu+1; post-LN or pre-LN; shared or separate embeddings; sinusoidal positions; a SentencePiece
// model with the source and target dictionaries.
#include <cmath>

#include "error.h"
#include "fairseq_checkpoint.h"
#include "hyperparams.h"
#include "mapped_file.h"
#include "schema.h"
#include "tokenizer_import.h"
#include "tokenizer_metadata.h"

namespace t2r {
ImportedModel import_fairseq_translation(const FairseqCheckpoint& args, const std::string& dir) {
  const std::string& path = args.path();
  for (const char* key : {"encoder_learned_pos", "decoder_learned_pos"}) {
    if (args.flag(key, false)) args.unsupported(std::string("learned positions (") + key + ")");
  }
  args.refuse_set({"no_token_positional_embeddings", "layernorm_embedding", "adaptive_input", "adaptive_softmax_cutoff",
                   "tie_adaptive_weights", "cross_self_attention", "no_cross_attention", "encoder_layers_to_keep",
                   "decoder_layers_to_keep", "use_input_gate", "norm_rescale", "encoder_embed_path",
                   "decoder_embed_path"});
  if (args.string("activation_fn", "relu") != "relu") args.unsupported("activation " + args.string("activation_fn", ""));
  if (args.string("bpe", "sentencepiece") != "sentencepiece") {
    args.unsupported("bpe '" + args.string("bpe", "") + "' (only sentencepiece)");
  }

  const uint64_t d = uint64_t(args.integer("decoder_embed_dim")), L = uint64_t(args.integer("decoder_layers")),
                 H = uint64_t(args.integer("decoder_attention_heads")), F = uint64_t(args.integer("decoder_ffn_embed_dim"));
  const uint64_t eL = uint64_t(args.integer("encoder_layers")), eH = uint64_t(args.integer("encoder_attention_heads")),
                 eF = uint64_t(args.integer("encoder_ffn_embed_dim"));
  if (d == 0 || L == 0 || H == 0 || F == 0 || eL == 0 || eH == 0 || eF == 0 || d % H != 0 || d % eH != 0) {
    args.unsupported("inconsistent sizes in args");
  }
  if (uint64_t(args.integer("encoder_embed_dim")) != d) args.unsupported("encoder_embed_dim differs from decoder_embed_dim");
  for (const char* key : {"decoder_input_dim", "decoder_output_dim"}) {
    if (args.has(key) && uint64_t(args.integer(key)) != d) args.unsupported(std::string(key) + " differs from decoder_embed_dim");
  }
  const uint64_t dh = d / H;
  const FairseqAttention self = args.decoder_attention("decoder.layers.0.fc3", H);
  const FairseqAttention cross = args.decoder_attention("decoder.layers.0.fc4", H);
  const bool share_all = args.flag("share_all_embeddings", false);
  const bool share_output = share_all || args.flag("share_decoder_input_output_embed", false);
  const int64_t V = args.shape("decoder.embed_tokens.weight").at(0), eV = args.shape("encoder.embed_tokens.weight").at(0);
  if (share_all && V != eV) args.unsupported("share_all_embeddings with vocabularies of different sizes");

  LayerSpec layer(FairseqCheckpoint::attention_spec(self, dh));
  layer.has_cross = true;
  layer.cross = FairseqCheckpoint::attention_spec(cross, dh);
  layer.cross.causal = false;
  layer.cross.cross = true;
  Hyperparams hp = args.decoder_hyperparams("fairseq_transformer", V, layer.attention);
  hp.layers.assign(L, layer);
  hp.norm_position = args.flag("decoder_normalize_before", false) ? NormPosition::Pre : NormPosition::Post;
  hp.encoder.vocab_size = eV;
  hp.encoder.n_layers = int64_t(eL);
  hp.encoder.n_heads = int64_t(eH);
  hp.encoder.ffn_dim = int64_t(eF);
  hp.encoder.max_positions = args.has("max_source_positions") ? args.integer("max_source_positions") : 1024;
  hp.encoder.norm_position = args.flag("encoder_normalize_before", false) ? NormPosition::Pre : NormPosition::Post;

  ImportedModel m;
  hp.to_metadata(m.metadata);
  m.metadata.set("general.source", path);
  m.add(schema::kTokenEmbedding, {uint64_t(V), d}, args.tensor("decoder.embed_tokens.weight", {V, int64_t(d)}));
  if (!share_all) {
    m.add(schema::encoder(schema::kTokenEmbedding), {uint64_t(eV), d},
          args.tensor("encoder.embed_tokens.weight", {eV, int64_t(d)}));
  }
  if (!share_output) {
    m.add(schema::kOutput, {uint64_t(V), d}, args.tensor("decoder.output_projection.weight", {V, int64_t(d)}));
  }
  if (hp.norm_position == NormPosition::Pre) args.add_norm(m, "decoder.layer_norm", schema::kOutputNorm, d);
  if (hp.encoder.norm_position == NormPosition::Pre) {
    args.add_norm(m, "encoder.layer_norm", schema::encoder(schema::kOutputNorm), d);
  }

  for (uint64_t l = 0; l < eL; ++l) {
    const std::string src = "encoder.layers." + std::to_string(l);
    const auto dst = [&](const std::string& part) { return schema::encoder(schema::layer(int64_t(l), part)); };
    args.add_norm(m, src + ".self_attn_layer_norm", dst(schema::kAttnNorm), d);
    args.add_attention(m, src + ".self_attn", "", FairseqAttention{}, eH, d, dst);
    args.add_norm(m, src + ".final_layer_norm", dst(schema::kFfnNorm), d);
    args.add_ffn(m, src, d, eF, dst);
  }
  for (uint64_t l = 0; l < L; ++l) {
    const std::string src = "decoder.layers." + std::to_string(l);
    const auto dst = [&](const std::string& part) { return schema::layer(int64_t(l), part); };
    const auto cross_dst = [&](const std::string& part) { return dst(schema::cross(part)); };
    args.add_norm(m, src + ".self_attn_layer_norm", dst(schema::kAttnNorm), d);
    args.add_attention(m, src + ".self_attn", src + ".fc3", self, H, d, dst);
    args.add_norm(m, src + ".encoder_attn_layer_norm", dst(schema::kCrossNorm), d);
    args.add_attention(m, src + ".encoder_attn", src + ".fc4", cross, H, d, cross_dst);
    args.add_norm(m, src + ".final_layer_norm", dst(schema::kFfnNorm), d);
    args.add_ffn(m, src, d, F, dst);
  }

  // The tokenizer of the target side; the source's differs only in its dictionary's numbering.
  const std::string spm = dir + "/sentencepiece.bpe.model";
  const std::string source_dict = dir + "/dict." + args.string("source_lang", "src") + ".txt";
  const std::string target_dict = dir + "/dict." + args.string("target_lang", "tgt") + ".txt";
  for (const std::string& file : {spm, source_dict, target_dict}) {
    if (!is_regular_file(file)) throw Error(file + ": missing (a fairseq translation model needs it)");
  }
  const TokenizerData target = import_fairseq_sentencepiece_tokenizer(spm, target_dict);
  const TokenizerData source = import_fairseq_sentencepiece_tokenizer(spm, source_dict);
  if (target.vocab_size != V) {
    throw Error(target_dict + ": " + std::to_string(target.vocab_size) + " symbols but the decoder embedding has " +
                std::to_string(V) + " rows");
  }
  if (source.vocab_size != eV) {
    throw Error(source_dict + ": " + std::to_string(source.vocab_size) + " symbols but the encoder embedding has " +
                std::to_string(eV) + " rows");
  }
  write_tokenizer_metadata(target, m.metadata);
  if (source.bpe_to_model != target.bpe_to_model) m.metadata.set(kSourceTokenMap, source.bpe_to_model);

  const auto form = [](const FairseqAttention& a) {
    return a.kind + (a.kind == "t2r" ? " (r " + std::to_string(a.features) + ", folded)" : "");
  };
  m.description = "fairseq transformer translation, " + std::string(hp.norm_position == NormPosition::Pre ? "pre" : "post") +
                  "-LN, encoder " + std::to_string(eL) + " layers softmax, decoder " + std::to_string(L) +
                  " layers self " + form(self) + " / cross " + form(cross) + ", d " + std::to_string(d) + ", " +
                  std::to_string(H) + " heads, ffn " + std::to_string(F) + ", vocab " + std::to_string(eV) + " -> " +
                  std::to_string(V);
  return m;
}

}  // namespace t2r
