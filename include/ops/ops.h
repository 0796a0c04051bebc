/*
 * ops.h - the operator's endpoints: health and readiness, the signed-in
 * caller's identity, governance (audit, outgoing webhooks) and the LiveKit
 * webhook receiver.
 */
#ifndef NC_OPS_H
#define NC_OPS_H

#include "http/http.h"

extern const struct route health_routes[];     /* webhook.c: deliveries refused with 401 since start-up. */
unsigned long webhook_rejected_count(void);

/* api_health.c */
extern const struct route governance_routes[]; /* api_governance.c */
extern const struct route webhook_routes[];    /* webhook.c */

/* webhook.c: deliveries refused with 401 since start-up. */
unsigned long webhook_rejected_count(void);

/* api_health.c */
void api_healthz(struct req *r);
void api_readyz(struct req *r);
void api_me(struct req *r);

/* api_metrics.c: Prometheus text of the counters plus database gauges. */
void api_metrics(struct req *r);

#endif
