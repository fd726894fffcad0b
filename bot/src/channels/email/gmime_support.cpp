#include "channels/email/gmime_support.h"

#include <gmime/gmime.h>

#include <mutex>

namespace parley::bot::channels::email {

void init_gmime() {
  // g_mime_init counts its callers without a lock: it must run once, before any other call.
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

void GObjectUnref::operator()(void* object) const noexcept {
  if (object != nullptr) g_object_unref(object);
}

}  // namespace parley::bot::channels::email
