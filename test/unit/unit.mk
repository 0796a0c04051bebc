# unit.mk - what each unit test links (included by the top-level Makefile).
#
# A unit test links only the modules it tests and what those need, named as
# src/<folder>/<name> (gen/<name> for the protobuf-c code), so it builds from
# a handful of objects and runs with no Postgres, Redis or network.  A link
# error here means a module grew a dependency: add it, or question it.
UNIT_BASE := core/common core/log core/config core/config_parse core/buf core/uuid core/b64
UNIT_GEN := $(patsubst proto/%.proto,gen/%.pb-c,$(PROTOS))

UNIT_MODS_check_config := $(UNIT_BASE)
UNIT_MODS_check_jsonv := core/common core/uuid core/jsonv
UNIT_MODS_check_core_util := $(UNIT_BASE) store/db_row
UNIT_MODS_check_combine := core/common core/combine
UNIT_MODS_check_kvcache := core/kvcache
UNIT_MODS_check_router := core/common http/router
UNIT_MODS_check_auth := $(UNIT_BASE) core/kvcache http/auth
UNIT_MODS_check_turn := $(UNIT_BASE) livekit/turn
UNIT_MODS_check_s3 := $(UNIT_BASE) s3/s3
UNIT_MODS_check_webhook_verify := $(UNIT_BASE) livekit/webhook_verify ops/webhook_event
UNIT_MODS_check_lk_token := $(UNIT_BASE) core/kvcache livekit/lk_token ops/cmd_token
UNIT_MODS_check_lk_proto := $(UNIT_BASE) core/kvcache core/metrics livekit/lk_token livekit/lk_twirp $(UNIT_GEN)

unit_objs = $(patsubst %,$(BUILD)/obj/%.o,$(UNIT_MODS_$(1)))
UNIT_MODS_check_http_framing := $(UNIT_BASE) http/http_framing
UNIT_MODS_check_report_sketch := $(UNIT_BASE) reports/reports_sketch reports/reports_output reports/reports_acc reports/reports_time
UNIT_MODS_check_ratelimit := $(UNIT_BASE) core/metrics http/ratelimit http/router store/cache
UNIT_MODS_check_report_read := $(UNIT_BASE) core/metrics store/db reports/reports_read
