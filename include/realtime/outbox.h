/*
 * outbox.h - delivery of the durable outgoing-webhook outbox (see outbox.c),
 * and the admin API over it.
 */
#ifndef NC_OUTBOX_H
#define NC_OUTBOX_H

#include "core/common.h"
#include "http/http.h"

struct nc_worker;

#define OUTBOX_SIG_LEN 112

/* "t=<t>,v1=<hex hmac-sha256(secret, "<t>.<body>")>" into out. */
void outbox_sign(const char *secret, int64_t t, const char *body, size_t len, char out[OUTBOX_SIG_LEN]);
/* Claim and deliver one batch of due rows; rows claimed, or -1. */
int outbox_run_once(struct nc_worker *w, int *delivered, int *failed);
/* Timer job for `serve`. */
void outbox_periodic(struct req *r);
/* Free this thread's HTTP handle (worker shutdown). */
void outbox_thread_cleanup(void);

#endif
