/*
 * pbjson: any protobuf-c message as jansson JSON, for noetlctl's -o json and
 * -o yaml output.
 *
 * Members are the proto field names (snake_case); fields at their proto3
 * default (0, "", false, empty, unset message) are left out, as protojson
 * does; enums are their value names ("FILE_WASM"); bytes that are UTF-8
 * text are strings, other bytes base64. 64-bit integers are JSON integers.
 */
#ifndef NOETL_CLI_PBJSON_H
#define NOETL_CLI_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

/* A new JSON object for m (borrowed); NULL only when memory ran out. */
json_t *pbjson_from(const ProtobufCMessage *m);

#endif
