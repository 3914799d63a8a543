/* Many continuations of one prompt with the C API's contexts: the prompt is read once into
 * sequence 0, copied to the others, and every step decodes one token of each sequence in one batch
 * (one read of the weights for all of them).
 *
 *   ./build/example-parallel models/default.t2r "In the beginning" 4 24
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t2r.h"

#define MAX_SEQUENCES 64
#define MAX_PROMPT 256
#define MAX_TEXT 4096

static int fail(const char* what) {
  fprintf(stderr, "%s: %s\n", what, t2r_last_error());
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s MODEL.t2r PROMPT SEQUENCES TOKENS\n", argv[0]);
    return 2;
  }
  const char* prompt = argv[2];
  const int sequences = atoi(argv[3]), tokens = atoi(argv[4]);
  if (sequences < 1 || sequences > MAX_SEQUENCES || tokens < 1) {
    fprintf(stderr, "SEQUENCES must be in 1..%d and TOKENS positive\n", MAX_SEQUENCES);
    return 2;
  }

  t2r_model* model = t2r_model_load(argv[1]);
  if (!model) return fail("load");
  int32_t ids[MAX_PROMPT];
  const int64_t n = t2r_tokenize(model, prompt, strlen(prompt), ids, MAX_PROMPT);
  if (n < 1 || n > MAX_PROMPT) return fail("tokenize (needs 1..256 tokens)");

  t2r_context_options options = t2r_context_default_options();
  options.max_sequences = sequences;
  options.max_batch = MAX_PROMPT; /* the whole prompt in one batch */
  t2r_context* context = t2r_context_create(model, &options);
  if (!context) return fail("context");
  printf("[context of %d sequences: %zu bytes, fixed for any length]\n", sequences, t2r_context_bytes(context));

  t2r_batch_row rows[MAX_PROMPT];
  for (int64_t i = 0; i < n; ++i) rows[i] = (t2r_batch_row){ids[i], 0, i, i + 1 == n};
  const float* logits = t2r_decode(context, rows, (size_t)n, NULL);
  if (!logits) return fail("prefill");
  for (int s = 1; s < sequences; ++s) {
    if (t2r_sequence_copy(context, 0, s) != 0) return fail("copy");
  }

  t2r_model_info info;
  t2r_model_get_info(model, &info);
  t2r_sampler* samplers[MAX_SEQUENCES];
  t2r_text_stream* streams[MAX_SEQUENCES];
  static char texts[MAX_SEQUENCES][MAX_TEXT];
  size_t text_length[MAX_SEQUENCES] = {0};
  for (int s = 0; s < sequences; ++s) {
    t2r_sampler_options sampling = t2r_sampler_default_options();
    sampling.temperature = 0.8f;
    sampling.top_p = 0.95f;
    sampling.seed = (uint64_t)s;
    samplers[s] = t2r_sampler_create(model, &sampling);
    streams[s] = t2r_text_stream_create(model);
    if (!samplers[s] || !streams[s]) return fail("sampler");
  }

  for (int step = 0; step < tokens; ++step) {
    for (int s = 0; s < sequences; ++s) {
      /* Sequence 0's prompt logits serve every sequence's first token. */
      const float* own = step == 0 ? logits : logits + (size_t)s * (size_t)info.vocab_size;
      const int32_t next = t2r_sample(samplers[s], own);
      size_t length;
      const char* piece = t2r_text_stream_push(streams[s], next, &length);
      if (text_length[s] + length < MAX_TEXT) {
        memcpy(texts[s] + text_length[s], piece, length);
        text_length[s] += length;
      }
      rows[s] = (t2r_batch_row){next, s, n + step, 1};
    }
    if (step + 1 == tokens) break;
    logits = t2r_decode(context, rows, (size_t)sequences, NULL);
    if (!logits) return fail("decode");
  }
  for (int s = 0; s < sequences; ++s) {
    printf("[%d] %s%.*s\n", s, prompt, (int)text_length[s], texts[s]);
    t2r_text_stream_free(streams[s]);
    t2r_sampler_free(samplers[s]);
  }
  t2r_context_free(context);
  t2r_model_free(model);
  return 0;
}
