// Precompiled for the GoogleTest executables of storage/, prompts/ and capabilities/ (parley_pch,
// tests/CMakeLists.txt): base.h and GoogleTest with gMock; no Asio, which they do not link.
#pragma once

#include "base.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
