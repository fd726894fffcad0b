// Precompiled for the GoogleTest executables (parley_pch, tests/CMakeLists.txt): net.h and
// GoogleTest with gMock.
#pragma once

#include "net.h"  // first: parley/bot/net.h before any Boost header

#include <gmock/gmock.h>
#include <gtest/gtest.h>
