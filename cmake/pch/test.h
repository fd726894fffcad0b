// Precompiled for the GoogleTest executables (parley_pch, tests/CMakeLists.txt): net.h and
// GoogleTest with gMock.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include "net.h"
