/* Allocation helpers. Allocation failure is not a recoverable error in Remora: these abort. */
#ifndef RM_CORE_MEM_H
#define RM_CORE_MEM_H

#include <stddef.h>

void *rm_malloc(size_t n);
void *rm_calloc(size_t count, size_t n);
void *rm_realloc(void *p, size_t n);
/* Returns a new NUL-terminated copy of s (which may be NULL: returns NULL). */
char *rm_strdup(const char *s);
/* Returns a new NUL-terminated copy of the first n bytes of s. */
char *rm_strndup(const char *s, size_t n);
/* printf into a new string. */
char *rm_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define RM_NEW(type)    ((type *)rm_calloc(1, sizeof(type)))
#define RM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
