/* Small helpers around the gRPC C core API shared by remora-cp and remora-cpctl: protobuf-c messages
 * to and from grpc_byte_buffer, status code names, and clock conversions. */
#ifndef RM_CP_GRPC_H
#define RM_CP_GRPC_H

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/support/time.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* A new byte buffer holding the serialized message (the caller destroys it). */
grpc_byte_buffer *rm_cp_grpc_pack(const ProtobufCMessage *msg);
/* A new byte buffer holding prefix then body (two serialized messages concatenate into their merge). */
grpc_byte_buffer *rm_cp_grpc_pack_concat(const ProtobufCMessage *prefix, const uint8_t *body,
                                         size_t body_len);
/* The message in bb (borrowed), or NULL if it does not parse. Free with protobuf_c_message_free_unpacked. */
ProtobufCMessage *rm_cp_grpc_unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb);

/* "OK", "NOT_FOUND", ... */
const char *rm_cp_grpc_status_name(grpc_status_code code);

/* Milliseconds on the monotonic clock, and a monotonic deadline for completion-queue waits. */
int64_t rm_cp_mono_ms(void);
gpr_timespec rm_cp_deadline_ms(int64_t mono_ms);
/* Milliseconds since the Unix epoch. */
int64_t rm_cp_wall_ms(void);

#endif
