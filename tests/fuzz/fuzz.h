/* fuzz.h - what every fuzz target defines (libFuzzer's entry points). */
#ifndef TESTS_FUZZ_FUZZ_H
#define TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Run one input; returns 0. A crash, a sanitizer report or a failed
 * assertion is the finding. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Once, before the first input (optional). */
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
