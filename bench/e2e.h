/*
 * e2e: what one run of bench/e2e measured (e2e.c), and the report printed
 * from it (e2e_report.c).
 */
#ifndef NOETL_BENCH_E2E_H
#define NOETL_BENCH_E2E_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "e2e_platform.h"
#include "loadgen.h"

/* Synced RocksDB write batches, one writer. */
struct disk_floor {
	double batch;  /* puts per synced write */
	double writes; /* synced writes per second */
	double rate;   /* puts per second */
};

/* What noetl's /metrics says its memory is made of, in bytes. */
enum { S_CONTROL, S_REPOSITORY, S_QUEUE, S_RECORDER, S_STORES };
extern const char *const e2e_stores[S_STORES];

struct memsnap {
	bool valid;                  /* noetl exports the families */
	double memtables[S_STORES];  /* RocksDB memtables per store */
	double cache[S_STORES];      /* block cache in use per store */
	double readers;              /* table readers, all stores */
	double heap_used, heap_free; /* malloc: in use (RocksDB's included), free but kept */
	double rss;                  /* resident */
};

struct figures {
	/* the run */
	uint64_t events; /* to queue */
	int conns;
	double rate; /* open loop offered */
	double open_seconds;
	long cpus;

	/* floors */
	struct load_result floor_http;
	struct disk_floor floor_disk;

	/* ingest, executor paused */
	struct load_result ingest;
	double ingest_first, ingest_last; /* events/s over the first and last tenth */
	double group;                     /* the queue's ops per synced write meanwhile */
	uint64_t queued;                  /* queue depth afterwards */

	/* drain */
	uint64_t drained;
	double drain_s, drain_rate;
	double drain_first, drain_last;

	/* open loop, executor running */
	struct load_result open;
	uint64_t open_max_depth;

	/* checks */
	size_t checked, ok;   /* sampled accepted ids; recorded as executed OK */
	struct qstats end;    /* the queue at the end */
	uint64_t warm_failed; /* attempts failed before the module was loaded */
	uint64_t warm_dead;   /* warm-up events dead-lettered meanwhile */
	uint64_t records;     /* at the Recorder, for the bench tenant */
	double start_s, first_s, stop_s;

	/* resident memory of noetl, KiB */
	long rss_started, rss_idle, rss_idle_children;
	long rss_ingest_max, rss_tenth, rss_half; /* during the ingest */
	long rss_queued, rss_queued_children;
	long rss_drained, rss_end;
	struct memsnap mem_idle, mem_queued, mem_drained;
};

/* Prints the tables, ratios and targets. */
void e2e_report(const struct figures *f);

#endif
