#include "cp_grpc.h"

#include "core/mem.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <string.h>
#include <time.h>

grpc_byte_buffer *rm_cp_grpc_pack_concat(const ProtobufCMessage *prefix, const uint8_t *body, size_t body_len)
{
    size_t head = prefix != NULL ? protobuf_c_message_get_packed_size(prefix) : 0;
    grpc_slice slice = grpc_slice_malloc(head + body_len);
    uint8_t *p = GRPC_SLICE_START_PTR(slice);
    if (head > 0)
        protobuf_c_message_pack(prefix, p);
    if (body_len > 0)
        memcpy(p + head, body, body_len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return bb;
}

grpc_byte_buffer *rm_cp_grpc_pack(const ProtobufCMessage *msg)
{
    return rm_cp_grpc_pack_concat(msg, NULL, 0);
}

ProtobufCMessage *rm_cp_grpc_unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader reader;
    if (bb == NULL || !grpc_byte_buffer_reader_init(&reader, bb))
        return NULL;
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    ProtobufCMessage *msg =
        protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    return msg;
}

const char *rm_cp_grpc_status_name(grpc_status_code code)
{
    static const char *const names[] = {
        "OK",        "CANCELLED",       "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
        "NOT_FOUND", "ALREADY_EXISTS",  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED",   "OUT_OF_RANGE",    "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
        "DATA_LOSS", "UNAUTHENTICATED",
    };
    if ((unsigned)code < sizeof(names) / sizeof(names[0]))
        return names[code];
    return "UNKNOWN_STATUS";
}

int64_t rm_cp_mono_ms(void)
{
    gpr_timespec t = gpr_now(GPR_CLOCK_MONOTONIC);
    return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

gpr_timespec rm_cp_deadline_ms(int64_t mono_ms)
{
    gpr_timespec t;
    t.clock_type = GPR_CLOCK_MONOTONIC;
    t.tv_sec = mono_ms / 1000;
    t.tv_nsec = (int32_t)((mono_ms % 1000) * 1000000);
    return t;
}

int64_t rm_cp_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
