/* json.c - dog's JSON writer for --json / -f json: a streaming, indented writer of objects,
 * arrays, strings and numbers (pure, unit-tested). */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "dog/dog.h"

void dog_json_init(struct dog_json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
}

/* Newline and indentation before a member or element, with the comma
 * that separates it from the previous one. */
static void next_item(struct dog_json *j)
{
	if (j->depth == 0)
		return;
	if (j->count[j->depth])
		fputc(',', j->f);
	fputc('\n', j->f);
	for (int i = 0; i < j->depth; i++)
		fputs("  ", j->f);
	j->count[j->depth]++;
}

void dog_json_string_value(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

static void key(struct dog_json *j, const char *k)
{
	next_item(j);
	if (k) {
		dog_json_string_value(j->f, k);
		fputs(": ", j->f);
	}
}

static void open_(struct dog_json *j, const char *k, char c)
{
	key(j, k);
	fputc(c, j->f);
	if (j->depth + 1 < DOG_JSON_MAX_DEPTH)
		j->depth++;
	j->count[j->depth] = 0;
}

static void close_(struct dog_json *j, char c)
{
	bool empty = j->count[j->depth] == 0;
	if (j->depth > 0)
		j->depth--;
	if (!empty) {
		fputc('\n', j->f);
		for (int i = 0; i < j->depth; i++)
			fputs("  ", j->f);
	}
	fputc(c, j->f);
	if (j->depth == 0)
		fputc('\n', j->f);
}

void dog_json_obj_begin(struct dog_json *j, const char *k)
{
	open_(j, k, '{');
}

void dog_json_obj_end(struct dog_json *j)
{
	close_(j, '}');
}

void dog_json_arr_begin(struct dog_json *j, const char *k)
{
	open_(j, k, '[');
}

void dog_json_arr_end(struct dog_json *j)
{
	close_(j, ']');
}

void dog_json_str(struct dog_json *j, const char *k, const char *v)
{
	key(j, k);
	dog_json_string_value(j->f, v ? v : "");
}

/* A fixed-size char field that may lack its terminating NUL. */
void dog_json_strn(struct dog_json *j, const char *k, const char *v, size_t max)
{
	char buf[1024];
	size_t n = strnlen(v, max < sizeof(buf) - 1 ? max : sizeof(buf) - 1);
	memcpy(buf, v, n);
	buf[n] = '\0';
	dog_json_str(j, k, buf);
}

void dog_json_u64(struct dog_json *j, const char *k, uint64_t v)
{
	key(j, k);
	fprintf(j->f, "%" PRIu64, v);
}

void dog_json_i64(struct dog_json *j, const char *k, int64_t v)
{
	key(j, k);
	fprintf(j->f, "%" PRId64, v);
}

void dog_json_double(struct dog_json *j, const char *k, double v)
{
	key(j, k);
	/* JSON has no NaN or infinity. */
	if (!isfinite(v))
		fputs("null", j->f);
	else
		fprintf(j->f, "%.1f", v);
}

void dog_json_bool(struct dog_json *j, const char *k, bool v)
{
	key(j, k);
	fputs(v ? "true" : "false", j->f);
}

void dog_json_null(struct dog_json *j, const char *k)
{
	key(j, k);
	fputs("null", j->f);
}
