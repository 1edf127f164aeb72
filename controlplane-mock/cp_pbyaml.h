/* Descriptor-driven decoding of YAML into protobuf-c messages, for the parts of the control-plane
 * snapshot that are passed through to the sidecar unchanged (a cluster's outlier_detection,
 * health_checks, circuit_breakers, common_lb_config, ...).
 *
 * The mapping follows proto-JSON as Envoy applies it to YAML: keys are the proto field names,
 * unknown keys are errors, null means "not set", enums are names (or numbers), Durations are
 * "<decimal>s" strings (or {seconds, nanos}), wrapper types (UInt32Value, BoolValue, ...) are plain
 * scalars, a map field is a YAML mapping, and an Any is a mapping with an "@type" key naming one of
 * the message types listed by rm_cp_pbyaml_any_types(). 64-bit integers may be quoted. bytes fields
 * are not supported. Nothing is validated beyond the wire types: the mock passes on values that the
 * sidecar must reject, on purpose.
 *
 * Errors go through rm_yaml_fail, so they carry the full path ("clusters[0].outlier_detection.
 * interval: invalid duration ..."). Every allocation is made with malloc so that
 * protobuf_c_message_free_unpacked(msg, NULL) frees the result, also after a failure half-way.
 *
 * Not thread-safe (the decoder is per document). */
#ifndef RM_CP_PBYAML_H
#define RM_CP_PBYAML_H

#include "config/yaml_decode.h"

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

/* Decodes node (a mapping, or null: nothing set) into msg, which must be initialised. Returns 0 or -1
 * after rm_yaml_fail. */
int rm_cp_pbyaml_decode_message(rm_yaml_decoder_t *d, yaml_node_t *node, ProtobufCMessage *msg);

/* Decodes node into the field `name` of msg (the decoder's path should already name it). A null node
 * leaves the field unset. Returns 0, or -1 after rm_yaml_fail (also when msg has no such field). */
int rm_cp_pbyaml_decode_field(rm_yaml_decoder_t *d, yaml_node_t *node, ProtobufCMessage *msg,
                              const char *name);

/* A google.protobuf.Duration value: "1.5s" or {seconds, nanos}; never negative. */
int rm_cp_pbyaml_decode_duration(rm_yaml_decoder_t *d, yaml_node_t *node, int64_t *seconds, int32_t *nanos);

/* The "@type" URLs an Any may name, space-separated (for documentation and messages). */
const char *rm_cp_pbyaml_any_types(void);

#endif
