/* Translation with the C API: a translator over a translation model, beam search over a batch of
 * sentences, and the n-best hypotheses of each with their scores.
 *
 *   ./build/example-translate models/translate-es-en.t2r 3 "Y dijo Dios: Sea la luz." "El rey habló."
 */
#include <stdio.h>
#include <stdlib.h>

#include "t2r.h"

static int fail(const char* what) {
  fprintf(stderr, "%s: %s\n", what, t2r_last_error());
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s MODEL.t2r NBEST SENTENCE...\n", argv[0]);
    return 2;
  }
  const int nbest = atoi(argv[2]);
  if (nbest < 1 || nbest > 5) {
    fprintf(stderr, "NBEST must be in 1..5 (the beam is 5)\n");
    return 2;
  }
  t2r_model* model = t2r_model_load(argv[1]);
  if (!model) return fail("load");

  t2r_translator_options options = t2r_translator_default_options();
  options.beam = 5;
  options.nbest = nbest;
  t2r_translator* translator = t2r_translator_create(model, &options);
  if (!translator) return fail("translator");

  const size_t count = (size_t)(argc - 3);
  if (t2r_translate(translator, (const char* const*)(argv + 3), count) != 0) return fail("translate");
  for (size_t i = 0; i < count; ++i) {
    for (size_t k = 0; k < t2r_translation_count(translator, i); ++k) {
      printf("%zu\t%.4f\t%s\n", i, t2r_translation_score(translator, i, k), t2r_translation_text(translator, i, k));
    }
  }
  t2r_translator_free(translator);
  t2r_model_free(model);
  return 0;
}
