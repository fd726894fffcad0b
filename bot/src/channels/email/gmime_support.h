// gmime_support: what the email channel's GMime users share, without GMime's headers (so that no
// header of the channel shows a GMime type): GMime's one-time initialisation and an owning
// pointer that drops a GObject reference.
//
// Thread safety: init_gmime may be called from any thread, any number of times.
#pragma once

#include <memory>

namespace parley::bot::channels::email {

// g_mime_init(), exactly once per process (std::call_once); call before any other GMime call.
// GMime is never shut down: its tables live as long as the process.
void init_gmime();

struct GObjectUnref {
  void operator()(void* object) const noexcept;  // g_object_unref; nothing for nullptr
};

// Owns one reference to a GObject (a GMimeMessage, GMimeStream, …).
template <typename T>
using GObjectPtr = std::unique_ptr<T, GObjectUnref>;

}  // namespace parley::bot::channels::email
