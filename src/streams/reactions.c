/*
 * reactions.c - stream reactions written in batches (streams.h).
 *
 * Reactions come in bursts on one stream, and Postgres spends most of a
 * one-row reaction on the statement around the row (executor start-up,
 * locks of the tables and their indexes, the commit, the counting
 * trigger), so the reactions of every worker waiting at one moment go in
 * one statement (streams_db_reactions) on one worker's connection.  Two
 * batches may run at once, so a worker that comes while one runs waits
 * at most for the one after it.  A reaction alone is written at once,
 * with the one-row statement.
 */
#include "streams/streams.h"
#include "core/metrics.h"

#define REACT_LEADERS 2
#define REACT_BATCH_MAX 32

static void run_batch(void *ctx, struct comb_item **items, size_t n)
{
	streams_react_batch(ctx, (struct streams_react_job *const *)items, n);
}

static struct combiner reactions = COMBINER_INIT(run_batch, REACT_LEADERS, REACT_BATCH_MAX);

void streams_react(struct db_conn *db, struct streams_react_job *job)
{
	combine(&reactions, &job->link, db);
}

/* A reaction alone: the one-row statement, cheaper than an array of one. */
static enum nc_err one(struct db_conn *db, struct streams_react_job *j)
{
	return streams_db_reaction(db, j->in.stream_id, &j->in.c, j->in.session_id, j->in.type,
				   &j->out, &j->err);
}

void streams_react_batch(struct db_conn *db, struct streams_react_job *const *jobs, size_t n)
{
	struct streams_reaction_in in[COMBINE_MAX];
	struct streams_reaction out[COMBINE_MAX];
	struct nc_error e = { 0 };
	enum nc_err rc;

	if (n == 0)
		return;
	if (n > COMBINE_MAX) {
		streams_react_batch(db, jobs, COMBINE_MAX);
		streams_react_batch(db, jobs + COMBINE_MAX, n - COMBINE_MAX);
		return;
	}
	if (n == 1) {
		struct streams_react_job *j = jobs[0];

		j->rc = one(db, j);
		metrics_inc(M_REACTION_BATCHES);
		metrics_inc(M_REACTION_BATCHED);
		return;
	}
	for (size_t i = 0; i < n; i++)
		in[i] = jobs[i]->in;
	rc = streams_db_reactions(db, n, in, out, &e);
	metrics_inc(M_REACTION_BATCHES);
	metrics_add(M_REACTION_BATCHED, n);
	for (size_t i = 0; i < n; i++) {
		struct streams_react_job *j = jobs[i];

		/* retried alone only when a row's data failed the statement (a
		 * foreign key, a check, a unique key); a timeout or a lost
		 * connection would fail each again, n times slower */
		if (rc != NC_EBADREQ && rc != NC_ECONFLICT) {
			j->rc = rc;
			j->out = out[i];
			j->err = e;
			continue;
		}
		/* the statement wrote nothing: each on its own */
		j->rc = one(db, j);
		metrics_inc(M_REACTION_BATCHES);
		metrics_inc(M_REACTION_BATCHED);
	}
}
