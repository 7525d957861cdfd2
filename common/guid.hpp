// Guid: a 16-byte identifier (event ids, correlation ids, instance ids) and its two byte orders.
// In memory and in text a Guid is RFC 4122 order; on EventStore's TCP wire it is .NET's
// Guid.ToByteArray() order (first three groups little-endian). Pure functions; any thread.
#pragma once

#include <boost/uuid/uuid.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chorus {

using Guid = boost::uuids::uuid;

// The all-zero Guid; as a BadRequest correlation id it means "connection-wide".
Guid nil_guid();
// A random (version 4) Guid from a thread-local generator.
Guid random_guid();

// 16 bytes in .NET order (for the wire) <-> Guid. `from_dotnet_bytes` needs exactly 16 bytes.
std::string to_dotnet_bytes(const Guid& g);
std::optional<Guid> from_dotnet_bytes(std::string_view bytes);

// Lower-case hyphenated text, as HTTP and JSON show ids.
std::string to_string(const Guid& g);
std::optional<Guid> parse_guid(std::string_view text);

// The 16 RFC-order bytes, for storage.
std::string to_raw_bytes(const Guid& g);
std::optional<Guid> from_raw_bytes(std::string_view bytes);

}  // namespace chorus
