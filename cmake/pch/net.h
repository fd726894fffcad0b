// Precompiled for bot/, the fakes and the benchmarks (parley_pch, CMakeLists.txt): base.h and
// Asio with Beast, through the one header that includes them (parley/bot/net.h).
#pragma once

// Blocks apart (clang-format sorts within one): parley/bot/net.h comes before any Boost header.
#include "base.h"
#include "parley/bot/net.h"

#include <boost/beast.hpp>
