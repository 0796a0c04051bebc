/*
 * reports_sketch.c - the report sketches: HyperLogLog for distinct counts,
 * log-scale histograms for percentiles (see reports.h; their text forms
 * are described in sql/0010_reports.sql).
 *
 * HyperLogLog: register = the hash's low 10 bits; rank = 1 + the trailing
 * zero bits of the next 15 bits (16 when they are all zero).  Merging keeps
 * the larger rank of each register, so a merged sketch is exactly the
 * sketch of the union.
 *
 * Histograms: bucket 0 holds [0, unit), bucket b >= 1 holds
 * [unit 1.05^(b-1), unit 1.05^b), bucket 399 is open-ended.  A bucket is
 * represented by the harmonic mean of its bounds, which is within
 * (1.05 - 1) / (1.05 + 1) = 2.44 % of any value in it.
 */
#include "reports/reports.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sparse text while at most this many registers are set. */
#define HLL_SPARSE_MAX 256

uint64_t rpt_hash(const char *key)
{
	uint64_t h = 14695981039346656037ULL;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

void rpt_hll_add(struct rpt_hll *h, uint64_t hash)
{
	unsigned reg = (unsigned)(hash & (RPT_HLL_REGISTERS - 1));
	unsigned w = (unsigned)((hash >> 10) & 0x7fff), rank = 1;

	if (w == 0) {
		rank = RPT_HLL_MAX_RANK;
	} else {
		while ((w & 1) == 0) {
			w >>= 1;
			rank++;
		}
	}
	if (rank > h->reg[reg])
		h->reg[reg] = (uint8_t)rank;
}

void rpt_hll_merge(struct rpt_hll *dst, const struct rpt_hll *src)
{
	for (int i = 0; i < RPT_HLL_REGISTERS; i++)
		if (src->reg[i] > dst->reg[i])
			dst->reg[i] = src->reg[i];
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'g')
		return c - 'a' + 10;
	return -1;
}

int rpt_hll_decode(struct rpt_hll *h, const char *text)
{
	size_t len;

	if (text == NULL)
		return 0;
	len = strlen(text);
	if (text[0] == 'D') {
		if (len != 1 + RPT_HLL_REGISTERS)
			return -1;
		for (int i = 0; i < RPT_HLL_REGISTERS; i++) {
			int v = hexval(text[1 + i]);

			if (v < 0 || v > RPT_HLL_MAX_RANK)
				return -1;
			if (v > h->reg[i])
				h->reg[i] = (uint8_t)v;
		}
		return 0;
	}
	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v = 0;

		for (size_t k = 0; k < 4; k++) {
			int d = hexval(text[i + k]);

			if (d < 0 || d > 15)
				return -1;
			v = v * 16 + d;
		}
		if ((v & 31) == 0 || (v & 31) > RPT_HLL_MAX_RANK)
			return -1;
		if ((v & 31) > h->reg[v >> 5])
			h->reg[v >> 5] = (uint8_t)(v & 31);
	}
	return 0;
}

char *rpt_hll_encode(const struct rpt_hll *h)
{
	static const char digits[] = "0123456789abcdefg";
	int set = 0;
	char *out, *p;

	for (int i = 0; i < RPT_HLL_REGISTERS; i++)
		set += h->reg[i] != 0;
	if (set == 0)
		return NULL;
	if (set > HLL_SPARSE_MAX) {
		out = xmalloc(2 + RPT_HLL_REGISTERS);
		out[0] = 'D';
		for (int i = 0; i < RPT_HLL_REGISTERS; i++)
			out[1 + i] = digits[h->reg[i]];
		out[1 + RPT_HLL_REGISTERS] = '\0';
		return out;
	}
	p = out = xmalloc((size_t)set * 4 + 1);
	for (int i = 0; i < RPT_HLL_REGISTERS; i++) {
		if (h->reg[i] == 0)
			continue;
		snprintf(p, 5, "%04x", (unsigned)(i * 32 + h->reg[i]));
		p += 4;
	}
	*p = '\0';
	return out;
}

double rpt_hll_estimate(const struct rpt_hll *h)
{
	const double m = RPT_HLL_REGISTERS;
	const double alpha = 0.7213 / (1.0 + 1.079 / m);
	double z = 0.0, e;
	int zeros = 0;

	static const double pow2neg[RPT_HLL_MAX_RANK + 1] = {
		1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625,
		0.001953125, 0.0009765625, 0.00048828125, 0.000244140625, 0.0001220703125,
		0.00006103515625, 0.000030517578125, 0.0000152587890625,
	};

	for (int i = 0; i < RPT_HLL_REGISTERS; i++) {
		z += pow2neg[h->reg[i]];
		zeros += h->reg[i] == 0;
	}
	if (zeros == RPT_HLL_REGISTERS)
		return 0.0;
	e = alpha * m * m / z;
	/* small range: linear counting is the better estimator */
	if (e <= 2.5 * m && zeros > 0)
		e = m * log(m / zeros);
	return e;
}

/* ---- histograms ---- */

int rpt_hist_bucket(double v, double unit)
{
	int b;

	if (!(v >= unit))  /* also NaN */
		return 0;
	b = 1 + (int)floor(log(v / unit) / log(RPT_HIST_RATIO));
	return b < RPT_HIST_BUCKETS - 1 ? b : RPT_HIST_BUCKETS - 1;
}

void rpt_hist_add(struct rpt_hist *h, int bucket, uint64_t count)
{
	uint32_t lo = 0, hi = h->n;

	if (count == 0)
		return;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (h->e[mid].b < bucket)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < h->n && h->e[lo].b == bucket) {
		h->e[lo].c += count;
		return;
	}
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 8;
		h->e = xrealloc(h->e, h->cap * sizeof(*h->e));
	}
	memmove(h->e + lo + 1, h->e + lo, (h->n - lo) * sizeof(*h->e));
	h->e[lo].b = (uint16_t)bucket;
	h->e[lo].c = count;
	h->n++;
}

/*
 * Merge n sorted entries into h in one linear pass: in place when every
 * bucket is there already (a report's totals, after a few buckets), else
 * from the back into room grown once.
 */
static void merge_sorted(struct rpt_hist *h, const struct rpt_hist_entry *e, uint32_t n)
{
	uint32_t i = 0, j = 0, fresh = 0;

	if (n == 0)
		return;
	/* count the buckets h does not have, adding to those it has */
	while (j < n) {
		if (i < h->n && h->e[i].b < e[j].b) {
			/* skip ahead: a bucket's few entries into a report's totals */
			uint32_t lo = i + 1, hi = h->n;

			while (lo < hi) {
				uint32_t mid = lo + (hi - lo) / 2;

				if (h->e[mid].b < e[j].b)
					lo = mid + 1;
				else
					hi = mid;
			}
			i = lo;
		} else if (i < h->n && h->e[i].b == e[j].b) {
			h->e[i++].c += e[j++].c;
		} else {
			fresh++;
			j++;
		}
	}
	if (fresh == 0)
		return;
	if (h->n + fresh > h->cap) {
		uint32_t cap = h->cap ? h->cap : 8;

		while (cap < h->n + fresh)
			cap *= 2;
		h->e = xrealloc(h->e, (size_t)cap * sizeof(*h->e));
		h->cap = cap;
	}
	/* the shared buckets hold their sums already: place the fresh ones */
	{
		uint32_t k = h->n + fresh;

		i = h->n;
		j = n;
		while (j > 0) {
			if (i > 0 && h->e[i - 1].b > e[j - 1].b) {
				h->e[--k] = h->e[--i];
			} else if (i > 0 && h->e[i - 1].b == e[j - 1].b) {
				h->e[--k] = h->e[--i];   /* summed above */
				j--;
			} else {
				h->e[--k] = e[--j];
			}
		}
		h->n += fresh;
	}
}

void rpt_hist_merge(struct rpt_hist *dst, const struct rpt_hist *src)
{
	merge_sorted(dst, src->e, src->n);
}

/* Parse unsigned decimal digits at *p; false if there are none. */
static bool digits_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (uint64_t)(*s - '0');
	*p = s;
	*out = v;
	return true;
}

int rpt_hist_decode(struct rpt_hist *h, const char *text)
{
	struct rpt_hist_entry stack[64], *e = stack;
	uint32_t n = 0, cap = 64;
	const char *p = text;
	int rc = -1;

	if (p == NULL || *p == '\0')
		return 0;
	for (;;) {
		uint64_t b, c;

		if (!digits_u64(&p, &b) || *p != ':' || b >= RPT_HIST_BUCKETS)
			goto out;
		p++;
		if (!digits_u64(&p, &c))
			goto out;
		if (n > 0 && b <= e[n - 1].b) {   /* not sorted: take the slow path */
			rpt_hist_add(h, (int)b, c);
		} else {
			if (n == cap) {
				struct rpt_hist_entry *bigger = xmalloc(cap * 2 * sizeof(*e));

				memcpy(bigger, e, n * sizeof(*e));
				if (e != stack)
					free(e);
				e = bigger;
				cap *= 2;
			}
			e[n].b = (uint16_t)b;
			e[n++].c = c;
		}
		if (*p == '\0')
			break;
		if (*p++ != ',')
			goto out;
	}
	merge_sorted(h, e, n);
	rc = 0;
out:
	if (e != stack)
		free(e);
	return rc;
}

char *rpt_hist_encode(const struct rpt_hist *h)
{
	size_t cap = (size_t)h->n * 26 + 1, off = 0;
	char *out;

	if (h->n == 0)
		return NULL;
	out = xmalloc(cap);
	for (uint32_t i = 0; i < h->n; i++) {
		int n = snprintf(out + off, cap - off, "%s%u:%llu", i ? "," : "", (unsigned)h->e[i].b,
				 (unsigned long long)h->e[i].c);

		if (n < 0 || (size_t)n >= cap - off)
			abort();   /* cannot happen: 26 bytes fit any entry */
		off += (size_t)n;
	}
	return out;
}

void rpt_hist_free(struct rpt_hist *h)
{
	free(h->e);
	memset(h, 0, sizeof(*h));
}

uint64_t rpt_hist_count(const struct rpt_hist *h)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < h->n; i++)
		n += h->e[i].c;
	return n;
}

double rpt_hist_value(int bucket, double unit)
{
	if (bucket <= 0)
		return unit / 2.0;
	/* harmonic mean of unit r^(b-1) and unit r^b */
	return 2.0 * unit * pow(RPT_HIST_RATIO, bucket) / (1.0 + RPT_HIST_RATIO);
}

/* The bucket holding the element of 0-based rank `rank` (rank < total). */
static int bucket_of_rank(const struct rpt_hist *h, uint64_t rank)
{
	uint64_t seen = 0;

	for (uint32_t i = 0; i < h->n; i++) {
		seen += h->e[i].c;
		if (rank < seen)
			return h->e[i].b;
	}
	return h->n ? h->e[h->n - 1].b : 0;
}

bool rpt_hist_percentile(const struct rpt_hist *h, double unit, double p, double *out)
{
	uint64_t n = rpt_hist_count(h), k;
	double pos, frac, lo, hi;

	if (n == 0)
		return false;
	pos = p * (double)(n - 1);
	k = (uint64_t)floor(pos);
	frac = pos - (double)k;
	lo = rpt_hist_value(bucket_of_rank(h, k), unit);
	hi = frac > 0 && k + 1 < n ? rpt_hist_value(bucket_of_rank(h, k + 1), unit) : lo;
	*out = lo + frac * (hi - lo);
	return true;
}
