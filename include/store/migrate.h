/*
 * migrate.h - apply sql/NNNN_name.sql files in order.
 *
 * Each file runs in its own transaction and is recorded (version, name,
 * SHA-256 of its text) in nchat_rtc_migrations.  A session-level advisory
 * lock serialises concurrent runners, so several instances may run
 * `nchat-rtc migrate` at once: one applies, the others find nothing to do.
 * A recorded file whose text has changed is reported and stops the run.
 */
#ifndef NC_MIGRATE_H
#define NC_MIGRATE_H

#include "core/common.h"

struct migrate_result {
	int applied;       /* files applied by this run */
	int total;         /* files found */
	int current;       /* highest version recorded after the run */
};

/* 0 on success, -1 with a one-line reason in errbuf. */
int migrate_run(const char *conninfo, const char *sql_dir, struct migrate_result *out,
		char *errbuf, size_t errlen) NC_MUSTCHECK;

#endif
