/*
 * gdpr.h - data-subject rights and data retention.
 *
 *   GET    /api/users/me/export   everything the service holds about the caller
 *   DELETE /api/users/{id}/data   erasure (the user themself or an admin)
 *   nchat-rtc sweep-data          retention: delete old chat, reactions, viewer
 *                                 sessions, connection stats, webhook event ids
 *
 * Erasure deletes the user's own content (stream chat messages, reactions,
 * viewer sessions, connection stats) and pseudonymises their call
 * participation (user_id, livekit_identity and livekit_participant_id NULL,
 * pseudonymised_at set; calls they initiated lose initiator_id) and their
 * recording download records (an audit trail of access to other people's
 * recordings: user_id NULL, pseudonymised_at set, the row and its time
 * stay), all in one service transaction with a `user.erase`
 * audit row.  Stream counters (total_views, unique_viewers,
 * total_chat_messages, total_reactions, per-type reaction counts) are
 * anonymous aggregates and are kept: the counter triggers fire on INSERT and
 * UPDATE only, so deleting the rows behind them changes nothing (a count
 * still pending is folded as usual; it names a session id, never a user).
 * current_viewers is recomputed from open sessions by the viewer reconcile.
 * Audit rows where the user is the actor are kept (accountability record)
 * and exported.
 */
#ifndef NC_GDPR_H
#define NC_GDPR_H

#include "core/config.h"
#include "http/router.h"

/* Rows deleted per statement by sweep-data (each batch its own transaction). */
#define GDPR_SWEEP_BATCH 1000

extern const struct route gdpr_routes[];   /* api_gdpr.c */

/* `nchat-rtc sweep-data` (argv[0] is the subcommand name); exit status. */
int cmd_sweep_data(int argc, char **argv, const struct nc_config *cfg);

/* The GDPR routes (api_gdpr.c). */
extern const struct route gdpr_routes[];

#endif
