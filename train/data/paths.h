// Finding the project's shared data (faces, cascades) from wherever the program runs.
#pragma once
#include <string>

namespace ahmsa::data {

// First existing `<dir>/shared/<rel>` or `<dir>/../shared/<rel>` for dir = the executable's folder and
// its parents, then the current folder and its parents; also $AHMSA_SHARED_DIR/<rel>. "" when none.
std::string find_shared_path(const std::string& rel);

}  // namespace ahmsa::data
