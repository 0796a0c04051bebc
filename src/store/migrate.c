/*
 * migrate.c - the schema migration runner (see migrate.h).
 */
#include "store/migrate.h"
#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Arbitrary constant shared by every instance: "nchatrtc" in ASCII-ish hex. */
#define MIGRATE_LOCK_KEY "7236271828"
#define MAX_FILES 1000
#define MAX_SQL_BYTES (4 * 1024 * 1024)

struct mfile {
	long version;
	char *name;     /* file name */
	char *path;
};

static int cmp_mfile(const void *a, const void *b)
{
	const struct mfile *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

/* NNNN_name.sql -> version; -1 if the name does not fit. */
static long file_version(const char *name)
{
	size_t len = strlen(name);
	char digits[16];
	size_t n = 0;
	long v;

	if (len < 6 || strcmp(name + len - 4, ".sql") != 0)
		return -1;
	while (n < len && n < sizeof(digits) - 1 && name[n] >= '0' && name[n] <= '9') {
		digits[n] = name[n];
		n++;
	}
	digits[n] = '\0';
	if (n == 0 || name[n] != '_' || parse_long(digits, 1, 999999, &v) != 0)
		return -1;
	return v;
}

static int list_files(const char *dir, struct mfile **out, int *count, char *errbuf, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct mfile *files = NULL;
	int n = 0;

	if (d == NULL) {
		snprintf(errbuf, errlen, "migrate: cannot open %s: %s", dir, strerror(errno));
		return -1;
	}
	files = xcalloc(MAX_FILES, sizeof(*files));
	while ((de = readdir(d)) != NULL) {
		long v = file_version(de->d_name);

		if (v < 0)
			continue;
		if (n == MAX_FILES)
			break;
		files[n].version = v;
		files[n].name = xstrdup(de->d_name);
		files[n].path = xasprintf("%s/%s", dir, de->d_name);
		n++;
	}
	closedir(d);
	qsort(files, (size_t)n, sizeof(*files), cmp_mfile);
	for (int i = 1; i < n; i++) {
		if (files[i].version == files[i - 1].version) {
			snprintf(errbuf, errlen, "migrate: two files with version %ld", files[i].version);
			for (int j = 0; j < n; j++) {
				free(files[j].name);
				free(files[j].path);
			}
			free(files);
			return -1;
		}
	}
	*out = files;
	*count = n;
	return 0;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL)
		return NULL;
	buf = xmalloc(MAX_SQL_BYTES + 1);
	n = fread(buf, 1, MAX_SQL_BYTES, f);
	fclose(f);
	if (n == MAX_SQL_BYTES) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)data, len, md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + i * 2, 3, "%02x", md[i]);
}

static bool exec_ok(PGconn *pg, const char *sql, char *errbuf, size_t errlen, const char *what)
{
	PGresult *res = PQexec(pg, sql);
	ExecStatusType st = PQresultStatus(res);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok)
		snprintf(errbuf, errlen, "migrate: %s: %.*s", what,
			 (int)strcspn(PQerrorMessage(pg), "\n"), PQerrorMessage(pg));
	PQclear(res);
	return ok;
}

/* Apply one file in a transaction and record it. */
static int apply_one(PGconn *pg, const struct mfile *f, const char *sql, const char *sum,
		     char *errbuf, size_t errlen)
{
	char ver[24];
	const char *params[3];
	PGresult *res;

	if (!exec_ok(pg, "BEGIN", errbuf, errlen, "BEGIN"))
		return -1;
	if (!exec_ok(pg, sql, errbuf, errlen, f->name)) {
		PQclear(PQexec(pg, "ROLLBACK"));
		return -1;
	}
	snprintf(ver, sizeof(ver), "%ld", f->version);
	params[0] = ver;
	params[1] = f->name;
	params[2] = sum;
	res = PQexecParams(pg,
			   "INSERT INTO nchat_rtc_migrations (version, name, checksum) VALUES ($1, $2, $3)",
			   3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		snprintf(errbuf, errlen, "migrate: recording %s: %.*s", f->name,
			 (int)strcspn(PQerrorMessage(pg), "\n"), PQerrorMessage(pg));
		PQclear(res);
		PQclear(PQexec(pg, "ROLLBACK"));
		return -1;
	}
	PQclear(res);
	if (!exec_ok(pg, "COMMIT", errbuf, errlen, "COMMIT"))
		return -1;
	log_info("migrate: applied %s", f->name);
	return 0;
}

/* Look up a recorded version: 1 recorded (checksum into out), 0 not, -1 error. */
static int recorded(PGconn *pg, long version, char out[65], char *errbuf, size_t errlen)
{
	char ver[24];
	const char *params[1] = {ver};
	PGresult *res;
	int rc;

	snprintf(ver, sizeof(ver), "%ld", version);
	res = PQexecParams(pg, "SELECT checksum FROM nchat_rtc_migrations WHERE version = $1", 1,
			   NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(errbuf, errlen, "migrate: reading nchat_rtc_migrations: %.*s",
			 (int)strcspn(PQerrorMessage(pg), "\n"), PQerrorMessage(pg));
		PQclear(res);
		return -1;
	}
	rc = PQntuples(res) > 0;
	if (rc)
		snprintf(out, 65, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

int migrate_run(const char *conninfo, const char *sql_dir, struct migrate_result *out,
		char *errbuf, size_t errlen)
{
	PGconn *pg = NULL;
	struct mfile *files = NULL;
	int nfiles = 0, rc = -1;
	bool locked = false;

	memset(out, 0, sizeof(*out));
	if (list_files(sql_dir, &files, &nfiles, errbuf, errlen) != 0)
		return -1;
	out->total = nfiles;
	pg = PQconnectdb(conninfo);
	if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
		snprintf(errbuf, errlen, "migrate: cannot connect to the database: %.*s",
			 pg ? (int)strcspn(PQerrorMessage(pg), "\n") : 13,
			 pg ? PQerrorMessage(pg) : "out of memory");
		goto out;
	}
	PQclear(PQexec(pg, "SET client_min_messages = warning"));
	if (!exec_ok(pg, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", errbuf, errlen, "lock"))
		goto out;
	locked = true;
	if (!exec_ok(pg,
		     "CREATE TABLE IF NOT EXISTS nchat_rtc_migrations ("
		     " version integer PRIMARY KEY,"
		     " name text NOT NULL,"
		     " checksum text NOT NULL,"
		     " applied_at timestamptz NOT NULL DEFAULT now())",
		     errbuf, errlen, "creating nchat_rtc_migrations"))
		goto out;
	for (int i = 0; i < nfiles; i++) {
		char have[65], sum[65];
		size_t len = 0;
		char *sql = read_file(files[i].path, &len);
		int r;

		if (sql == NULL) {
			snprintf(errbuf, errlen, "migrate: cannot read %s", files[i].name);
			goto out;
		}
		sha256_hex(sql, len, sum);
		r = recorded(pg, files[i].version, have, errbuf, errlen);
		if (r < 0) {
			free(sql);
			goto out;
		}
		if (r == 1) {
			free(sql);
			if (strcmp(have, sum) != 0) {
				snprintf(errbuf, errlen,
					 "migrate: %s was changed after it was applied (checksum mismatch)",
					 files[i].name);
				goto out;
			}
			out->current = (int)files[i].version;
			continue;
		}
		r = apply_one(pg, &files[i], sql, sum, errbuf, errlen);
		free(sql);
		if (r != 0)
			goto out;
		out->applied++;
		out->current = (int)files[i].version;
	}
	rc = 0;
out:
	if (locked)
		PQclear(PQexec(pg, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
	if (pg != NULL)
		PQfinish(pg);
	for (int i = 0; i < nfiles; i++) {
		free(files[i].name);
		free(files[i].path);
	}
	free(files);
	return rc;
}
