/* driver.c - main() for a fuzz target outside libFuzzer: runs LLVMFuzzerTestOneInput once on each
 * file named (the regression inputs in make check). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/fuzz/fuzz.h"

/* A target without an initializer leaves this weak symbol NULL. */
#pragma weak LLVMFuzzerInitialize

int main(int argc, char **argv)
{
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (!f) {
			perror(argv[i]);
			return 1;
		}
		uint8_t *buf = NULL;
		size_t len = 0, cap = 0;
		for (;;) {
			if (len == cap) {
				cap = cap ? 2 * cap : 4096;
				uint8_t *nb = realloc(buf, cap);
				if (!nb) {
					fprintf(stderr, "%s: out of memory\n", argv[i]);
					return 1;
				}
				buf = nb;
			}
			size_t n = fread(buf + len, 1, cap - len, f);
			if (!n)
				break;
			len += n;
		}
		fclose(f);
		LLVMFuzzerTestOneInput(buf, len);
		free(buf);
	}
	printf("%s: %d input(s) ran\n", argv[0], argc - 1);
	return 0;
}
