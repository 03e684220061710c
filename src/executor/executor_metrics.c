/*
 * executor_metrics: the executor's /metrics families, for noetl-executor and
 * the all-in-one noetl alike.
 *
 * The families are registered before the executor exists (noetl-executor
 * serves /healthz while it retries reaching Control), so they read the
 * executor through a slot (executor.h) the caller fills once it runs and
 * empties before destroying it; an empty slot renders no samples.
 */
#include "executor.h"

#include <stddef.h>

#include "engine.h"
#include "metrics.h"

enum kind {
	K_EVENTS,
	K_RUNNERS,
	K_CACHE_BYTES,
	K_CACHE_OBJECTS,
	K_CACHE_EVICTED,
	K_LEASES,
	K_COUNT
};

static void emit(struct metrics_emitter *e, void *arg)
{
	const struct executor_metrics_family *f = arg;
	struct executor *ex = atomic_load(&f->slot->running);
	if (ex == NULL)
		return;
	struct executor_stats s;
	struct engine_stats es;
	switch (f->kind) {
	case K_EVENTS: {
		executor_stats(ex, &s);
		const struct {
			const char *outcome;
			uint64_t v;
		} rows[] = {{"leased", s.leased},    {"succeeded", s.succeeded},
		            {"routed", s.routed},    {"failed", s.failed},
		            {"dead", s.dead},        {"settle_errors", s.settle_errors},
		            {"released", s.released}};
		for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
			metrics_emit(e, (const char *[]){rows[i].outcome}, (double)rows[i].v);
		break;
	}
	case K_RUNNERS:
		engine_stats(executor_engine(ex), &es);
		metrics_emit(e, (const char *[]){"spawned"}, (double)es.runners_spawned);
		metrics_emit(e, (const char *[]){"killed"}, (double)es.runners_killed);
		metrics_emit(e, (const char *[]){"crashed"}, (double)es.runners_crashed);
		metrics_emit(e, (const char *[]){"expired"}, (double)es.runners_expired);
		metrics_emit(e, (const char *[]){"alive"}, (double)es.runners_alive);
		break;
	case K_CACHE_BYTES:
		engine_stats(executor_engine(ex), &es);
		metrics_emit(e, NULL, (double)es.cache_bytes);
		break;
	case K_LEASES:
		executor_stats(ex, &s);
		metrics_emit(e, (const char *[]){"extended"}, (double)s.leases_extended);
		metrics_emit(e, (const char *[]){"lost"}, (double)s.leases_lost);
		break;
	case K_CACHE_OBJECTS:
		engine_stats(executor_engine(ex), &es);
		metrics_emit(e, NULL, (double)es.cache_entries);
		break;
	default:
		engine_stats(executor_engine(ex), &es);
		metrics_emit(e, NULL, (double)es.cache_evicted);
		break;
	}
}

void executor_metrics(struct metrics *m, struct executor_metrics_slot *slot)
{
	_Static_assert(K_COUNT == sizeof(slot->families) / sizeof(slot->families[0]),
	               "one family slot per kind");
	struct executor_metrics_family *fams = slot->families;
	for (int k = 0; k < K_COUNT; k++)
		fams[k] = (struct executor_metrics_family){.slot = slot, .kind = k};
	metrics_callback(m, "noetl_executor_events_total", "events by what happened to them",
	                 "outcome", METRICS_COUNTER, emit, &fams[K_EVENTS]);
	metrics_callback(m, "noetl_executor_runners", "runner processes", "state", METRICS_GAUGE,
	                 emit, &fams[K_RUNNERS]);
	metrics_callback(m, "noetl_executor_compile_cache_bytes",
	                 "size of the compiled modules in the cache directory", NULL, METRICS_GAUGE,
	                 emit, &fams[K_CACHE_BYTES]);
	metrics_callback(m, "noetl_executor_compile_cache_objects",
	                 "compiled modules in the cache directory", NULL, METRICS_GAUGE, emit,
	                 &fams[K_CACHE_OBJECTS]);
	metrics_callback(m, "noetl_executor_leases_total",
	                 "leases of running batches extended, or found run out when extended",
	                 "outcome", METRICS_COUNTER, emit, &fams[K_LEASES]);
	metrics_callback(m, "noetl_executor_compile_cache_evicted_total",
	                 "compiled modules removed to keep the cache under its bound", NULL,
	                 METRICS_COUNTER, emit, &fams[K_CACHE_EVICTED]);
}
