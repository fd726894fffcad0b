#include "parley/bot/pipeline/access.h"

#include <algorithm>

namespace parley::bot::pipeline {

AccessPolicy::Decision AccessPolicy::decide(const std::string& channel,
                                            const std::string& sender) const {
  Decision d;
  d.admin = std::any_of(admins.begin(), admins.end(), [&](const std::string& a) {
    return a == channel + ":*" || a == channel + ":" + sender;
  });
  if (d.admin) {
    d.allowed = true;
    return d;
  }
  if (auto it = allow.find(channel); it != allow.end()) {
    d.allowed = std::any_of(it->second.begin(), it->second.end(),
                            [&](const std::string& s) { return s == "*" || s == sender; });
    return d;
  }
  d.allowed = mode == Mode::open;
  return d;
}

}  // namespace parley::bot::pipeline
