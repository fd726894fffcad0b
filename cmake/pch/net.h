// Precompiled for bot/, the fakes and the benchmarks (parley_pch, CMakeLists.txt): base.h and
// Asio with Beast, through the one header that includes them (parley/bot/net.h).
#pragma once

#include <boost/beast.hpp>
#include "base.h"
#include "parley/bot/net.h"  // before any Boost header: the coroutine macros
