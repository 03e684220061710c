/*
 * e2e_report: bench/e2e's tables (see e2e.h). Every target line says "met"
 * or "NOT met" from the figures of this run only.
 */
#include <stdbool.h>
#include <stdio.h>

#include "e2e.h"

static double mib(long kb)
{
	return (double)kb / 1024.0;
}

static const char *verdict(bool ok)
{
	return ok ? "met" : "NOT met";
}

static void row(const char *name, double evs, const struct load_result *r)
{
	printf("%-44s %10.0f", name, evs);
	if (r != NULL)
		printf(" %8.2f %8.2f %8.2f %8.2f %7llu", r->p50, r->p99, r->p999, r->max,
		       (unsigned long long)(r->rejected + r->failures));
	printf("\n");
}

static void mem(const char *name, long kb, long children)
{
	printf("%-44s %8.1f MiB", name, mib(kb));
	if (children >= 0)
		printf(" %10.1f MiB", mib(kb + children));
	printf("\n");
}

static void part(const char *name, double a, double b, double c)
{
	printf("%-44s %8.1f %8.1f %8.1f\n", name, a / 1048576.0, b / 1048576.0, c / 1048576.0);
}

void e2e_report(const struct figures *f)
{
	char name[128];
	printf("\n%-44s %10s %8s %8s %8s %8s %7s\n", "run", "events/s", "p50 ms", "p99 ms",
	       "p99.9 ms", "max ms", "errors");
	row("floor: empty nng HTTP handler", f->floor_http.rate, &f->floor_http);
	snprintf(name, sizeof(name), "floor: RocksDB synced batches of %.0f", f->floor_disk.batch);
	row(name, f->floor_disk.rate, NULL);
	snprintf(name, sizeof(name), "ingest: durable 202s (%llu events)",
	         (unsigned long long)f->ingest.accepted);
	row(name, f->ingest.rate, &f->ingest);
	snprintf(name, sizeof(name), "drain: executed+recorded+acked (%llu)",
	         (unsigned long long)f->drained);
	row(name, f->drain_rate, NULL);
	snprintf(name, sizeof(name), "open loop: %.0f/s offered, %.0f s", f->rate, f->open_seconds);
	row(name, f->open.rate, &f->open);

	const struct load_result *in = &f->ingest;
	printf("\ningest: %.2fx the HTTP floor, %.2fx the RocksDB floor; the queue wrote %.1f "
	       "events per synced write, %.0f writes/s (the raw store: %.0f/s)\n",
	       f->floor_http.rate > 0 ? in->rate / f->floor_http.rate : 0,
	       f->floor_disk.rate > 0 ? in->rate / f->floor_disk.rate : 0, f->group,
	       in->elapsed > 0 ? (double)in->accepted / f->group / in->elapsed : 0,
	       f->floor_disk.writes);
	printf("ingest: %.0f events/s over the first tenth, %.0f over the last\n", f->ingest_first,
	       f->ingest_last);
	printf("drain: %llu events in %.2f s; %.0f events/s over the first tenth, %.0f over the "
	       "last\n",
	       (unsigned long long)f->drained, f->drain_s, f->drain_first, f->drain_last);
	printf("open loop: %llu sent, %llu accepted, at most %zu due and waiting for a "
	       "connection, queue depth at most %llu\n",
	       (unsigned long long)f->open.sent, (unsigned long long)f->open.accepted,
	       f->open.max_backlog, (unsigned long long)f->open_max_depth);
	printf("queue at the end: %llu acked, %llu failed attempts and %llu dead after the "
	       "warm-up; %llu records at the Recorder (%.1f per event)\n",
	       (unsigned long long)f->end.acked,
	       (unsigned long long)(f->end.failed - f->warm_failed),
	       (unsigned long long)(f->end.dead - f->warm_dead), (unsigned long long)f->records,
	       f->end.acked > 0 ? (double)f->records / (double)f->end.acked : 0);
	printf("checked %zu sampled accepted ids: %zu executed OK and recorded\n", f->checked,
	       f->ok);
	printf("noetl started in %.2f s; the first event ran %.2f s after it was posted (echo.wasm "
	       "compiled meanwhile; %llu attempts failed as 'unknown event', %llu events dead); "
	       "stopped in %.2f s\n",
	       f->start_s, f->first_s, (unsigned long long)f->warm_failed,
	       (unsigned long long)f->warm_dead, f->stop_s);

	printf("\n%-44s %12s %14s\n", "noetl resident memory (RSS)", "process", "+ runners");
	mem("just started", f->rss_started, -1);
	mem("idle (set up, one event run)", f->rss_idle, f->rss_idle_children);
	snprintf(name, sizeof(name), "ingest: %llu queued", (unsigned long long)(f->events / 10));
	mem(name, f->rss_tenth, -1);
	snprintf(name, sizeof(name), "ingest: %llu queued", (unsigned long long)(f->events / 2));
	mem(name, f->rss_half, -1);
	mem("ingest: most", f->rss_ingest_max, -1);
	snprintf(name, sizeof(name), "%llu queued, 2 s after the ingest",
	         (unsigned long long)f->queued);
	mem(name, f->rss_queued, f->rss_queued_children);
	mem("after the drain", f->rss_drained, -1);
	mem("at the end", f->rss_end, -1);

	const struct memsnap *ms[] = {&f->mem_idle, &f->mem_queued, &f->mem_drained};
	if (ms[0]->valid && ms[1]->valid && ms[2]->valid) {
		printf("\n%-44s %8s %8s %8s\n", "what it is made of (noetl's /metrics), MiB",
		       "idle", "queued", "drained");
		for (int i = 0; i < S_STORES; i++) {
			snprintf(name, sizeof(name), "  RocksDB %s: memtables", e2e_stores[i]);
			part(name, ms[0]->memtables[i], ms[1]->memtables[i], ms[2]->memtables[i]);
			snprintf(name, sizeof(name), "  RocksDB %s: block cache", e2e_stores[i]);
			part(name, ms[0]->cache[i], ms[1]->cache[i], ms[2]->cache[i]);
		}
		part("  RocksDB table readers, all stores", ms[0]->readers, ms[1]->readers,
		     ms[2]->readers);
		double other[3];
		for (int k = 0; k < 3; k++) {
			other[k] = ms[k]->heap_used - ms[k]->readers;
			for (int i = 0; i < S_STORES; i++)
				other[k] -= ms[k]->memtables[i] + ms[k]->cache[i];
		}
		part("  the rest of malloc's heap in use", other[0], other[1], other[2]);
		part("  malloc: free, kept by the allocator", ms[0]->heap_free, ms[1]->heap_free,
		     ms[2]->heap_free);
		part("  not heap: code, libraries, stacks",
		     ms[0]->rss - ms[0]->heap_used - ms[0]->heap_free,
		     ms[1]->rss - ms[1]->heap_used - ms[1]->heap_free,
		     ms[2]->rss - ms[2]->heap_used - ms[2]->heap_free);
		part("  RSS", ms[0]->rss, ms[1]->rss, ms[2]->rss);
	}

	double ratio = in->rate > 0 ? f->drain_rate / in->rate : 0;
	double rss_ratio = f->rss_idle > 0 ? (double)f->rss_queued / (double)f->rss_idle : 0;
	printf("\ntargets\n");
	printf("  drain / ingest          %6.2fx     (>= 0.7x)   %s\n", ratio,
	       verdict(ratio >= 0.7));
	printf("  idle RSS                %6.1f MiB  (<= 50 MiB) %s\n", mib(f->rss_idle),
	       verdict(mib(f->rss_idle) <= 50));
	printf("  RSS queued / idle       %6.2fx     (<= 1.5x)   %s%s\n", rss_ratio,
	       verdict(rss_ratio <= 1.5),
	       f->queued >= 1000000 ? "" : " (fewer than 1M queued: --full queues 1M)");
	uint64_t bad = in->rejected + in->failures + f->open.rejected + f->open.failures;
	if (bad > 0 || f->ok != f->checked)
		printf("  WARNING: %llu requests failed or were refused (last status %d); %zu of "
		       "%zu sampled ids not recorded as executed OK\n",
		       (unsigned long long)bad,
		       in->last_status != 0 ? in->last_status : f->open.last_status,
		       f->checked - f->ok, f->checked);
}
