/*
 * ops.h - the operator's endpoints: health and readiness, the signed-in
 * caller's identity, metrics, governance (audit, outgoing webhooks) and the
 * LiveKit webhook receiver.
 */
#ifndef NC_OPS_H
#define NC_OPS_H

#include "http/http.h"

extern const struct route health_routes[];     /* api_health.c (with /metrics) */
extern const struct route governance_routes[]; /* api_governance.c */
extern const struct route webhook_routes[];    /* webhook.c */

/* webhook.c: deliveries refused with 401 since start-up. */
unsigned long webhook_rejected_count(void);

/* api_metrics.c: GET /metrics, Prometheus text of the counters plus database gauges. */
enum nc_err api_metrics(struct req *r, struct nc_error *err);

#endif
