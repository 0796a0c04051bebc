-- pg_setup.sql - lookup tables for the pgbench ceilings of make bench.
-- @USERS_FILE@ and @CALLS_FILE@ (bench/seed.js output) are replaced by
-- the script (\copy does not expand psql variables).  The
-- pgbench scripts find their rows by number, so each client works on its
-- own rows just as each wrk connection does.
DROP TABLE IF EXISTS bench_users, bench_calls;
CREATE TABLE bench_users (n int PRIMARY KEY, id uuid NOT NULL);
CREATE TABLE bench_calls (n int PRIMARY KEY, call_id uuid NOT NULL, room text NOT NULL);
CREATE TEMP TABLE bench_u_raw (id uuid);
\copy bench_u_raw FROM '@USERS_FILE@'
INSERT INTO bench_users SELECT row_number() OVER () - 1, id FROM bench_u_raw;
\copy bench_calls FROM '@CALLS_FILE@'
GRANT SELECT ON bench_users, bench_calls TO nchat_rtc_system;
ANALYZE bench_users;
ANALYZE bench_calls;
