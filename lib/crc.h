/* crc.h - crc32c (Castagnoli) over buffers, computed with ISA-L. */
#ifndef SD_CRC_H
#define SD_CRC_H

#include <stdint.h>
#include <stddef.h>

/* Standard crc32c of len bytes (the "123456789" check value is 0xe3069283).
 * Chain calls by passing the previous result as crc; start with 0. */
uint32_t sd_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
