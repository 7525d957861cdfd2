// Small behaviours of the engine's value types.
#include "worker/engine/types.hpp"

#include <algorithm>

namespace chorus {

bool Principal::in_role(const std::string& role) const {
  if (anonymous()) return false;
  if (role == login) return true;
  return std::find(groups.begin(), groups.end(), role) != groups.end();
}

}  // namespace chorus
