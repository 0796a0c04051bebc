/*
 * outbox.h - delivery of the durable outgoing-webhook outbox (see outbox.c).
 * Nothing here speaks HTTP to our own clients: the admin API over the outbox
 * lives in ops/ (api_governance.c).
 */
#ifndef NC_OUTBOX_H
#define NC_OUTBOX_H

#include "core/common.h"

struct nc_worker;

#define OUTBOX_SIG_LEN 112

/* "t=<t>,v1=<hex hmac-sha256(secret, "<t>.<body>")>" into out. */
void outbox_sign(const char *secret, int64_t t, const char *body, size_t len, char out[OUTBOX_SIG_LEN]);
/* Claim and deliver one batch of due rows; rows claimed, or -1. */
int outbox_run_once(struct nc_worker *w, int *delivered, int *failed);
/* Periodic job of `serve` (http_server_add_periodic): delivers due batches. */
void outbox_periodic(struct nc_worker *w, void *arg);
/* Free this thread's HTTP handle (worker shutdown). */
void outbox_thread_cleanup(void);

#endif
