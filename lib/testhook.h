/* testhook.h - the pause hook functional tests use to hold a daemon thread at a named point while
 * they change the cluster. */
#ifndef LIB_TESTHOOK_H
#define LIB_TESTHOOK_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Test hook behind SHEEP_TEST_PAUSE_FILE=PATH. When PATH exists and its
 * first line names point, or "point OID" (OID in hex: the object what
 * names, so that a test can pick one object's thread), the first thread of
 * any sheep to get here takes it (renames PATH to PATH.<point>: one
 * thread, once), writes port to PATH.by, and waits while PATH.<point>
 * exists (at most 60 s). The test changes the cluster meanwhile and
 * removes PATH.<point> to let it go on. Does nothing when path is NULL or
 * names another point or object.
 */
void sd_test_pause(const char *path, const char *point, uint16_t port, uint64_t what);
/* Whether PATH exists and names point (for what, when it names an object),
 * without taking it: a caller that must act before it reaches the pause. */
bool sd_test_pause_armed(const char *path, const char *point, uint64_t what);

#endif
