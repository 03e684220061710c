/*
 * lat: latency samples of a benchmark run, and their percentiles. Header
 * only (every benchmark is its own program).
 */
#ifndef NOETL_BENCH_LAT_H
#define NOETL_BENCH_LAT_H

#include <stdlib.h>

struct lat {
	double *v; /* milliseconds */
	size_t n, cap;
};

/* Adds one sample; aborts if out of memory (a benchmark has no way on). */
static inline void lat_add(struct lat *l, double ms)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 4096;
		l->v = realloc(l->v, l->cap * sizeof(double));
		if (l->v == NULL)
			abort();
	}
	l->v[l->n++] = ms;
}

static inline int lat_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The p-th fraction (0.5, 0.99 ...) of the samples; 0 if there are none.
 * Sorts them in place. */
static inline double lat_pct(struct lat *l, double p)
{
	if (l->n == 0)
		return 0;
	qsort(l->v, l->n, sizeof(double), lat_cmp);
	return l->v[(size_t)(p * (double)(l->n - 1) + 0.5)];
}

#endif
