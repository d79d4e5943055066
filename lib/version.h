/* version.h - the version stamped into every program at build time (scripts/version). */
#ifndef LIB_VERSION_H
#define LIB_VERSION_H

/* "0.1.0+git123.gabcdef012345" in a git checkout, configure's version
 * otherwise. Never NULL. */
const char *sd_version(void);

#endif
